# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy behind the adapter seam (``proxy_adapter.ProxyAdapter``), in master-worker mode (the
official image's ``haproxy -W -db``, Debian's service).

* config: the files the running master was started with (its ``-f`` arguments, read from
  /proc; else the official image's and Debian's paths), tested by ``haproxy -c`` and printed
  with a ``# configuration file PATH:`` header each (``haproxy_log.parse_config``);
* processes: the master and its workers from /proc (``proxy_nginx.PROC_SCRIPT`` with
  ``--comm=haproxy``);
* runtime: ``show servers state`` over the ``stats socket`` the config declares, with
  ``socat`` in the container: the address each server has NOW in the workers;
* log: the HTTP log lines (``option httplog``) of the container log, attributed to those
  addresses (``haproxy_log.summarize``);
* reload: ``haproxy -c`` first, then the master CLI's ``reload`` when the master was started
  with ``-S`` (and socat is there), else ``kill -USR2`` of the master, which is the same
  (management guide, master-worker mode); proof: new worker PIDs, none of the old ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.haproxy_log import (
    parse_config,
    parse_servers_state,
    summarize,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import ProxyAdapter, _why
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import (
    OURS_FUNCTION,
    PROC_SCRIPT,
    parse_proc_output,
)

HAPROXY_IMAGES = ("haproxy", "haproxy-debian", "haproxy-alpine", "haproxy-ubuntu")
PID_FILES = ("/run/haproxy.pid", "/var/run/haproxy.pid")

# Sets, for the scripts below: $master (the running master's PID, or empty), $cfgs (its -f
# arguments, one per line; else the first default path that exists) and $msock (its -S socket,
# or empty). The master is the haproxy process whose parent is not haproxy, in the shell's
# mount namespace (pods that share a PID namespace, as the lab's do, see each other's), and
# running (OURS_FUNCTION).
FIND_SCRIPT = (
    OURS_FUNCTION
    + r"""
master=
for d in /proc/[0-9]*; do
  read -r c < "$d/comm" 2>/dev/null || continue
  [ "$c" = haproxy ] || continue
  ours "$d" || continue
  pp=${s##*) }; set -- $pp; pp=$2
  read -r pc < "/proc/$pp/comm" 2>/dev/null || pc=
  [ "$pc" = haproxy ] && continue
  master=${d#/proc/}
  break
done
cfgs=
msock=
if [ -n "$master" ]; then
  prev=
  for a in $(tr '\000' '\n' < "/proc/$master/cmdline"); do
    case "$prev" in
      -f) cfgs="$cfgs
$a" ;;
      -S) msock=${a%%,*} ;;
    esac
    prev=$a
  done
fi
if [ -z "$cfgs" ]; then
  for f in /usr/local/etc/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg; do
    if [ -r "$f" ]; then cfgs=$f; break; fi
  done
fi
cfgs=$(printf '%s\n' "$cfgs" | sed '/^$/d')
"""
)

# Tests the config ("haproxy -c" on every -f), prints it with a header per file (a directory:
# its *.cfg files in order); exits 2 with a message when no config can be found.
CONFIG_SCRIPT = (
    FIND_SCRIPT
    + r"""
[ -n "$cfgs" ] || { echo "no haproxy config found (no running master with -f, no default path)" >&2; exit 2; }
args=
for f in $cfgs; do args="$args -f $f"; done
haproxy -c -q $args || exit $?
for f in $cfgs; do
  if [ -d "$f" ]; then
    for g in "$f"/*.cfg; do [ -r "$g" ] && { echo "# configuration file $g:"; cat "$g"; }; done
  else
    echo "# configuration file $f:"; cat "$f"
  fi
done
"""
)

TEST_SCRIPT = (
    FIND_SCRIPT
    + r"""
[ -n "$cfgs" ] || { echo "no haproxy config found (no running master with -f, no default path)" >&2; exit 2; }
args=
for f in $cfgs; do args="$args -f $f"; done
exec haproxy -c $args
"""
)

# The master CLI's reload when the master has a -S socket and socat is there (three tries: the
# master does not accept on its CLI while it re-executes itself), else SIGUSR2 to the master,
# which is the same reload (management guide, master-worker mode).
RELOAD_SCRIPT = (
    FIND_SCRIPT
    + r"""
[ -n "$master" ] || { echo "no haproxy master process is running" >&2; exit 3; }
if [ -n "$msock" ] && command -v socat >/dev/null 2>&1; then
  case "$msock" in
    /*) addr=unix-connect:$msock ;;
    unix@*) addr=unix-connect:${msock#unix@} ;;
    ipv4@*) addr=tcp4-connect:${msock#ipv4@} ;;
    *) addr=tcp-connect:$msock ;;
  esac
  for try in 1 2 3; do
    if echo reload | socat stdio "$addr"; then echo "master CLI $msock: reload"; exit 0; fi
    sleep 1
  done
  echo "master CLI $msock refused the connection three times: kill -USR2 $master instead"
fi
echo "kill -USR2 $master (master-worker reload)"
exec kill -USR2 "$master"
"""
)

# "show servers state" over a stats socket ("$1" as the config writes it).
RUNTIME_SCRIPT = r"""
command -v socat >/dev/null 2>&1 || { echo "socat is not installed in the container" >&2; exit 127; }
s=$1
case "$s" in
  /*) addr=unix-connect:$s ;;
  unix@*) addr=unix-connect:${s#unix@} ;;
  ipv4@*) addr=tcp4-connect:${s#ipv4@} ;;
  ipv6@*) addr=tcp6-connect:${s#ipv6@} ;;
  *) echo "stats socket $s: not a unix or ip socket" >&2; exit 2 ;;
esac
echo "show servers state" | socat -t 5 stdio "$addr"
"""


class HaproxyAdapter(ProxyAdapter):
    """HAProxy (the official image, Debian's package), master-worker mode."""

    kind = "haproxy"
    images = HAPROXY_IMAGES
    version_argv = ("haproxy", "-v")
    config_dump_argv = ("sh", "-c", CONFIG_SCRIPT, "sh")
    config_test_argv = ("sh", "-c", TEST_SCRIPT, "sh")
    reload_argv = ("sh", "-c", RELOAD_SCRIPT, "sh")

    @property
    def config_dump_step(self) -> str:
        return "haproxy -c -f <the master's config> and its text"

    @property
    def config_test_step(self) -> str:
        return "haproxy -c -f <the master's config>"

    @property
    def reload_step(self) -> str:
        return "reload through the master CLI (or kill -USR2 of the master)"

    def parse_config(self, text: str, namespace: str | None, cluster_domain: str) -> dict[str, Any]:
        """The config text as the adapter's config shape (``haproxy_log.parse_config``)."""
        return parse_config(text, namespace, cluster_domain)

    def read_processes(self, namespace: str, pod: str, container: str | None) -> dict[str, Any]:
        """The master and workers from /proc (``problem`` on failure)."""
        result = self._run(
            namespace,
            pod,
            container,
            ["sh", "-c", PROC_SCRIPT, "sh", "--comm=haproxy"] + list(PID_FILES),
        )
        if result.rc != 0:
            return {
                "master_pid": None,
                "workers": [],
                "last_reload_age": None,
                "problem": "cannot read haproxy processes from /proc: %s" % _why(result),
            }
        return parse_proc_output(result.stdout, "haproxy", None, None)

    def read_runtime(
        self, namespace: str, pod: str, container: str | None, config: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]] | None, str | None]:
        """``show servers state`` over the config's first stats socket: ``(servers, None)``, or
        ``(None, why not)`` naming the socket and the call."""
        sockets = (config or {}).get("sockets") or []
        if not sockets:
            return None, (
                "the config declares no `stats socket`: the runtime API (show servers state) "
                "cannot be read; add `stats socket /run/haproxy/admin.sock mode 660 level admin` "
                "to its global section"
            )
        result = self._run(
            namespace, pod, container, ["sh", "-c", RUNTIME_SCRIPT, "sh", sockets[0]]
        )
        what = "show servers state over %s (exec of sh -c RUNTIME_SCRIPT in pod %s/%s)" % (
            sockets[0],
            namespace,
            pod,
        )
        if result.rc != 0:
            return None, "%s: %s" % (what, _why(result))
        try:
            return parse_servers_state(result.stdout), None
        except ValueError as exc:
            return None, "%s: %s" % (what, exc)

    def summarize_log(
        self,
        lines: Iterable[str],
        reload_time: str | None = None,
        max_errors: int = 50,
        files: dict[str, Any] | None = None,
        worker_pids: list[int] | None = None,
        runtime: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``haproxy_log.summarize`` of the container log with the runtime's servers."""
        return summarize(lines, runtime or [], reload_time=reload_time, max_errors=max_errors)

    def apply_reload(self, namespace: str, pod: str, container: str | None) -> str | None:
        """The master CLI's ``reload`` (or SIGUSR2 to the master); None when it was sent."""
        result = self._run(namespace, pod, container, self.reload_argv)
        if result.rc == 0:
            return None
        return _why(result)
