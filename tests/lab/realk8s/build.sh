#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and the lab's kubelet stand-in for the real
# control plane tier from the Go module proxy, once per key (Kubernetes version, Go version, the
# module graph, the build flags, the stand-in's sources), into a cache folder outside the repository:
#   $REALK8S_CACHE/gomod        Go module cache (GOMODCACHE)
#   $REALK8S_CACHE/gobuild      Go build cache (GOCACHE)
#   $REALK8S_CACHE/<version>/bin  the binaries, with build.key and build.log beside them
# REALK8S_CACHE defaults to $HOME/.cache/badgateway-k8s/realk8s (the Makefile passes its own).
# Usage: build.sh            build if the key changed, then print the bin folder
#        build.sh --bin-dir  print the bin folder if it is built for the current key, else fail
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(tr -d '[:space:]' <"$here/VERSION")
cache=${REALK8S_CACHE:-$HOME/.cache/badgateway-k8s/realk8s}
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gobuild GOFLAGS=-mod=readonly CGO_ENABLED=0
bin=$cache/$version/bin

command -v go >/dev/null || {
	echo "build.sh: no 'go' on PATH: the real tier is built with Go (>= the go line of go.mod)" >&2
	exit 1
}

minor=${version#v1.}
minor=${minor%%.*}
x=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	x="$x -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

ldflags="-s -w$x"
# Bump when the build's commands change in a way the key would not see.
build_format=2
modules=$(cd "$here" && go list -m all | sha256sum)
standin=$(find "$here/cmd/kubelet-standin" -name "*.go" ! -name "*_test.go" -exec cat {} + | sha256sum)
key=$(printf '%s\n' "$version" "$(go version)" "$modules" "$ldflags" "$build_format" "$standin" | sha256sum | cut -d' ' -f1)

if [ "${1:-}" = --bin-dir ]; then
	if [ "$(cat "$bin/build.key" 2>/dev/null)" = "$key" ]; then
		echo "$bin"
		exit 0
	fi
	echo "build.sh: the real tier's binaries for $version are not built (or are stale) in $bin: run 'make realk8s-build'" >&2
	exit 1
fi

if [ "$(cat "$bin/build.key" 2>/dev/null)" = "$key" ]; then
	echo "$bin"
	exit 0
fi

"$here/gen-gomod.sh" --check
mkdir -p "$cache/$version"
tmp=$(mktemp -d "$cache/$version/bin.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log=$tmp/build.log
{
	echo "version: $version"
	echo "go: $(go version)"
	echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$log"
echo "build.sh: building etcd, kube-apiserver, kube-controller-manager $version and the kubelet stand-in into $bin (cold: many CPU-minutes)" >&2
cd "$here"
# The etcd server's main package is go.etcd.io/etcd/server/v3 (its binary name would be
# 'server'), so it gets its own -o. /usr/bin/time's figures go to the log.
/usr/bin/time -a -o "$log" -f 'etcd: wall %e s, user %U s, sys %S s, max RSS %M KB' \
	go build -trimpath -ldflags "$ldflags" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
/usr/bin/time -a -o "$log" -f 'kube-apiserver, kube-controller-manager: wall %e s, user %U s, sys %S s, max RSS %M KB' \
	go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
/usr/bin/time -a -o "$log" -f 'kubelet-standin: wall %e s, user %U s, sys %S s, max RSS %M KB' \
	go build -trimpath -ldflags "-s -w" -o "$tmp/kubelet-standin" ./cmd/kubelet-standin
{
	echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "Go build cache: $(du -sh "$GOCACHE" | cut -f1), module cache: $(du -sh "$GOMODCACHE" | cut -f1)"
	(cd "$tmp" && ls -l etcd kube-apiserver kube-controller-manager kubelet-standin)
} >>"$log"
echo "$key" >"$tmp/build.key"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
cat "$bin/build.log" >&2
echo "$bin"
