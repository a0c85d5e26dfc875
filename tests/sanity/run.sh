#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection at .../ansible_collections/badgateway/k8s,
# with ansible-test's internet-only pip bootstrap replaced by tests/sanity/get_pip_offline.py.
set -euo pipefail
venv=${1:?usage: run.sh VENV [ansible-test options]}; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$venv/bin/python
pyver=$($py -c 'import sys; print("%d.%d" % sys.version_info[:2])')

pip_ver=$($py -c 'import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])') || pip_ver=""
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
if [ -n "$pip_ver" ]; then
  cp "$root/tests/sanity/get_pip_offline.py" "$cache/get_pip_${pip_ver//./_}.py"
else
  echo "WARNING: could not learn ansible-test's pip version; the sanity venvs may fail to bootstrap"
fi

# Outside the repository: inside it, ansible-test would ask git, which ignores build/.
work=$(mktemp -d "${TMPDIR:-/tmp}/badgateway-k8s-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/badgateway/k8s
mkdir -p "$dest"
# What the collection ships: the files git knows, less galaxy.yml's build_ignore (the lab,
# benchmarks, CI glue), exactly as `ansible-galaxy collection build` would leave them out.
(cd "$root" && git ls-files -co --exclude-standard | "$py" -c '
import fnmatch, sys, yaml
ignore = yaml.safe_load(open("galaxy.yml")).get("build_ignore") or []
for path in sys.stdin.read().splitlines():
    if not any(fnmatch.fnmatch(path, pat) or path.startswith(pat.rstrip("/") + "/") for pat in ignore):
        print(path)
' | tr '\n' '\0' | xargs -0 cp --parents -t "$dest")
cd "$dest"
echo "== ansible-test sanity (Python $pyver) in $dest"
"$venv/bin/ansible-test" sanity --python "$pyver" --requirements --color no "$@"
