# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx, the first proxy kind behind the adapter seam (``proxy_adapter.ProxyAdapter``).

Its commands (``nginx -v``, ``-T``, ``-t``, ``-s reload``), its config parser
(``nginx_conf``), its log parser (``nginx_log``), its processes (master PID, worker start
times) read from ``/proc`` with plain ``sh`` (no ``ps`` needed), and the error log files its
config writes to (``error_log`` to a file rather than stderr) read with ``sh`` and ``tail``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import (
    STD_STREAMS,
    error_log_plan,
    parse_nginx_t,
    upstream_hosts,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    lines_since,
    merge_logs,
    parse_utc_offset,
    summarize,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import ProxyAdapter

PID_FILES = (
    "/run/nginx.pid",
    "/var/run/nginx.pid",
    "/tmp/nginx.pid",
    "/var/run/nginx/nginx.pid",
    "/etc/nginx/logs/nginx.pid",
)

# Prints: "pidfile PATH PID", "btime N", "hz N", "clock <now as s.ns> <uptime s>", then per
# nginx process "stat <stat line>" followed by "cmd <cmdline with NULs as spaces>". A first
# argument "--comm=NAME" reads the processes of another program (haproxy); a process in
# another mount namespace than the shell's (another pod's, where pods share a PID namespace,
# as the lab's do) is not this container's and is left out when the kernel can tell. A process
# whose namespace cannot be read is listed only while it runs: an exiting one (its memory, then
# its namespaces released: no command line) or an exited one not yet reaped (a zombie) is not,
# so another pod's short-lived process that ends while this reads is never taken for ours. POSIX sh
# only; tr, getconf and a date with %N are optional. btime is whole seconds; now - uptime
# gives the boot time to about 10 ms when date knows %N (uptime is read first, so every
# sample is late, never early: the smallest of three is kept). The processes: when the pid
# file names a running nginx and the kernel lists its children (/proc/PID/task/*/children),
# that master and its children; else every process the container sees (a container that
# shares its node's or its pod's process namespace sees many).
# Shell: `ours /proc/PID` is true when that process is in the shell's mount namespace (when the
# kernel can tell) and still runs, its stat line then in $s. Shared by the process readers
# (PROC_SCRIPT here, proxy_haproxy's FIND_SCRIPT).
OURS_FUNCTION = r"""
ours() {
  untold=
  if [ -e /proc/self/ns/mnt ]; then
    if [ -e "$1/ns/mnt" ]; then
      [ "$1/ns/mnt" -ef /proc/self/ns/mnt ] || return 1
    else
      untold=1
    fi
  fi
  read -r s < "$1/stat" 2>/dev/null || return 1
  case "${s##*) }" in Z*|X*) return 1 ;; esac
  if [ -n "$untold" ]; then
    a=; read -r a < "$1/cmdline" 2>/dev/null
    [ -n "$a" ] || return 1
  fi
  return 0
}
"""
PROC_SCRIPT = (
    OURS_FUNCTION
    + r"""
comm=nginx
case "$1" in --comm=*) comm=${1#--comm=}; shift ;; esac
for f in "$@"; do
  if [ -r "$f" ]; then read -r p < "$f" && echo "pidfile $f $p" && break; fi
done
while read -r k v rest; do [ "$k" = btime ] && echo "btime $v"; done < /proc/stat
echo "hz $(getconf CLK_TCK 2>/dev/null || echo 100)"
for i in 1 2 3; do
  read -r up rest < /proc/uptime && echo "clock $(date +%s.%N 2>/dev/null) $up"
done
show() {
  ours "$1" || return 0
  case "$s" in
    *"($comm)"*)
      echo "stat $s"
      echo "cmd $(tr '\000' ' ' < "$1/cmdline" 2>/dev/null)" ;;
  esac
}
via=
case "$p" in
  ''|*[!0-9]*) ;;
  *)
    if read -r s < "/proc/$p/stat" 2>/dev/null; then
      case "$s" in
        *"($comm)"*)
          via=children
          list=$p
          for t in /proc/$p/task/*; do
            if [ -r "$t/children" ]; then
              c=; read -r c < "$t/children"; list="$list $c"
            else
              via=
            fi
          done ;;
      esac
    fi ;;
esac
if [ -n "$via" ]; then
  for n in $list; do show "/proc/$n"; done
else
  for d in /proc/[0-9]*; do show "$d"; done
fi
"""
)


# Reads one error log file: "$1" the path as the config writes it ("" for nginx's compiled-in
# error log; a relative one is under nginx's prefix, both from `nginx -V`), "$2" the most bytes
# to read. Prints "path P", "now <epoch>", "zone <date +%z>", then "link <target>" for a
# symbolic link ("link stderr" alone when the built-in error log is stderr, as Debian's is),
# then one of "missing", "notfile", "denied", or "size N" and a line "--"
# followed by the file's last N bytes at most (tail -c). POSIX sh, tail, wc; readlink and
# date optional.
LOG_FILE_SCRIPT = r"""
f=$1
case "$f" in
  /*) ;;
  *)
    v=$(nginx -V 2>&1)
    p=/usr/local/nginx
    case "$v" in *--prefix=*) p=${v#*--prefix=}; p=${p%% *} ;; esac
    if [ -z "$f" ]; then
      f=logs/error.log
      case "$v" in *--error-log-path=*) f=${v#*--error-log-path=}; f=${f%% *} ;; esac
    fi
    case "$f" in /*|stderr) ;; *) f=${p%/}/$f ;; esac ;;
esac
if [ "$f" = stderr ]; then echo "path stderr"; echo "link stderr"; exit 0; fi
echo "path $f"
echo "now $(date +%s 2>/dev/null)"
echo "zone $(date +%z 2>/dev/null)"
if [ -L "$f" ]; then echo "link $(readlink "$f" 2>/dev/null || ls -l "$f")"; fi
if [ ! -e "$f" ]; then echo missing; exit 0; fi
if [ ! -f "$f" ]; then echo notfile; exit 0; fi
if [ ! -r "$f" ]; then echo denied; exit 0; fi
echo "size $(wc -c < "$f")"
echo --
exec tail -c "$2" "$f"
"""

# An exec's output is capped (``_ws_exec.DEFAULT_MAX_OUTPUT``, 16 MiB); a cut would drop the
# NEWEST lines of a tail, so a file is never read past this many bytes.
MAX_LOG_FILE_BYTES = 15 * 1024 * 1024

# Image names (the last path part, without tag or digest) that are nginx itself.
NGINX_IMAGES = ("nginx", "nginx-unprivileged", "nginx-plus", "openresty")


def _start_time(starttime_ticks: int, btime: float, hz: int) -> str:
    seconds = btime + starttime_ticks / float(hz)
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%02dZ" % (stamp.microsecond // 10000)


def _boot_from_clock(value: str) -> float | None:
    """Boot time (float seconds) from ``"<now s.ns> <uptime s>"``, or None."""
    parts = value.split()
    try:
        return float(parts[0]) - float(parts[1]) if len(parts) == 2 else None
    except ValueError:
        return None


def parse_proc_output(
    text: str,
    program: str = "nginx",
    master_cmd: str | None = "nginx: master",
    worker_cmd: str | None = "worker process",
) -> dict[str, Any]:
    """Parse PROC_SCRIPT output into ``{master_pid, workers: [{pid, start_time}], problem}``.

    The master is the one named in the pid file, else the only process whose command line
    starts with ``master_cmd`` (nginx's ``nginx: master``; with None, the only one whose parent
    is not the ``program`` too: haproxy's master-worker mode); workers are its children whose
    command line says ``worker_cmd`` (all its children when command lines are unreadable, or
    with None). Workers are sorted by start time, then PID.
    """
    btime: float | None = None
    hz: int | None = None
    pidfile_pid: int | None = None
    boot: float | None = None
    uptime: float | None = None
    procs: list[dict[str, Any]] = []
    for line in text.splitlines():
        key, _sep, value = line.partition(" ")
        if key == "pidfile":
            parts = value.split()
            if len(parts) == 2 and parts[1].isdigit():
                pidfile_pid = int(parts[1])
        elif key == "btime" and value.strip().isdigit():
            btime = int(value)
        elif key == "hz" and value.strip().isdigit():
            hz = int(value)
        elif key == "clock":
            try:
                uptime = max(uptime or 0.0, float(value.split()[-1]))
            except (ValueError, IndexError):
                pass
            sample = _boot_from_clock(value)
            if sample is not None and (boot is None or sample < boot):
                boot = sample
        elif key == "stat":
            head, _sep, rest = value.rpartition(")")
            fields = rest.split()
            if len(fields) > 19 and head.split(" ", 1)[0].isdigit():
                procs.append(
                    {
                        "pid": int(head.split(" ", 1)[0]),
                        "ppid": int(fields[1]),
                        "ticks": int(fields[19]),
                        "cmd": "",
                    }
                )
        elif key == "cmd" and procs:
            procs[-1]["cmd"] = value.strip()
    result: dict[str, Any] = {
        "master_pid": None,
        "workers": [],
        "problem": None,
        "last_reload_age": None,
    }
    if boot is not None and (btime is None or abs(boot - btime) < 2):
        btime = boot
    if btime is None:
        result["problem"] = "could not read btime from /proc/stat"
        return result
    pids = {p["pid"] for p in procs}
    master: int
    if pidfile_pid is not None and pidfile_pid in pids:
        master = pidfile_pid
    else:
        masters = [
            p["pid"]
            for p in procs
            if (master_cmd is not None and p["cmd"].startswith(master_cmd))
            or ((master_cmd is None or not p["cmd"]) and p["ppid"] not in pids)
        ]
        if len(masters) != 1:
            result["problem"] = (
                "found %d %s master processes and no readable pid file; "
                "cannot tell which one serves this pod" % (len(masters), program)
                if masters
                else "no %s master process is running" % program
            )
            return result
        master = masters[0]
    result["master_pid"] = master
    children = [p for p in procs if p["ppid"] == master]
    workers = (
        children
        if worker_cmd is None
        else [p for p in children if worker_cmd in p["cmd"]]
        or [p for p in children if not p["cmd"]]
    )
    result["workers"] = sorted(
        (
            {"pid": p["pid"], "start_time": _start_time(p["ticks"], btime, hz or 100)}
            for p in workers
        ),
        key=lambda w: (w["start_time"], w["pid"]),
    )
    if not result["workers"]:
        result["problem"] = "%s master %d has no worker process" % (program, master)
    else:
        # Seconds since the last reload: the newest worker's age, when the workers are younger
        # than the master by more than a second (at a plain start they are the same age).
        # uptime and a process's start ticks both count from boot: no controller clock involved.
        rate = float(hz or 100)
        newest = max(p["ticks"] for p in workers) / rate
        master_start = next(p["ticks"] for p in procs if p["pid"] == master) / rate
        if uptime is not None and newest - master_start > 1.0:
            result["last_reload_age"] = round(max(0.0, uptime - newest), 2)
    return result


class NginxAdapter(ProxyAdapter):
    """nginx (and images built on it: openresty, nginx-unprivileged, nginx-plus)."""

    kind = "nginx"
    images = NGINX_IMAGES
    version_argv = ("nginx", "-v")
    config_dump_argv = ("nginx", "-T")
    config_test_argv = ("nginx", "-t")
    reload_argv = ("nginx", "-s", "reload")

    def parse_config(self, text: str, namespace: str | None, cluster_domain: str) -> dict[str, Any]:
        """``nginx -T`` output as the adapter's config shape (``nginx_conf.parse_nginx_t``)."""
        parsed = parse_nginx_t(text)
        return {
            "listen_ports": parsed["listen_ports"],
            "upstream_hosts": upstream_hosts(parsed, namespace, cluster_domain),
            "upstream_keepalive": [
                {
                    "upstream": group["name"],
                    "keepalive": group["keepalive"],
                    "keepalive_timeout": group["keepalive_timeout"],
                }
                for group in parsed.get("upstreams") or []
                if group.get("keepalive")
            ],
            "error_logs": error_log_plan(parsed),
            "errors": parsed["errors"],
        }

    def read_processes(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        pid_files: tuple[str, ...] = PID_FILES,
    ) -> dict[str, Any]:
        """Run PROC_SCRIPT in the pod; parse_proc_output's dict (``problem`` on failure)."""
        result = self._run(
            namespace, pod, container, ["sh", "-c", PROC_SCRIPT, "sh"] + list(pid_files)
        )
        if result.rc != 0:
            why = result.error or result.stderr.strip() or "exit %s" % result.rc
            return {
                "master_pid": None,
                "workers": [],
                "last_reload_age": None,
                "problem": "cannot read nginx processes from /proc: %s" % why,
            }
        return parse_proc_output(result.stdout)

    def read_log_files(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        config: dict[str, Any] | None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
    ) -> dict[str, Any]:
        """The error log files the config writes to (``error_log`` to a file, not stderr), each
        read in the pod by LOG_FILE_SCRIPT and bounded like the container log: its last
        ``limit_bytes`` (``tail -c``; a first line cut in the middle is dropped), then its last
        ``tail_lines`` lines, then those of the last ``since_seconds`` by the pod's clock.

        A file that is a link to the container's stdout/stderr (the official image's
        ``/var/log/nginx/error.log -> /dev/stderr``) is in the container log: not read, not a
        problem. Whatever cannot be read (a missing file, no permission, something that is not
        a file, the exec refused or failed; syslog, memory and ``/dev/null`` destinations) is a
        line of ``problems`` naming the file and the call: never taken for an empty log.
        """
        out: dict[str, Any] = {"files": [], "local_offset": 0, "problems": []}
        plan = (config or {}).get("error_logs") or {"files": [], "unreadable": []}
        out["problems"].extend(plan["unreadable"])
        limit = min(int(limit_bytes or MAX_LOG_FILE_BYTES), MAX_LOG_FILE_BYTES)
        for wanted in plan["files"]:
            shown = wanted["path"] or "nginx's built-in error log (nginx -V)"
            what = "error log file %s (error_log at %s)" % (shown, wanted["where"])
            try:
                result = self._run(
                    namespace,
                    pod,
                    container,
                    ["sh", "-c", LOG_FILE_SCRIPT, "sh", wanted["path"], str(limit)],
                )
            except K8sError as exc:
                out["problems"].append("%s: %s" % (what, exc))
                continue
            read = parse_log_file_output(result.stdout, limit)
            if read["path"]:
                what = "error log file %s (error_log at %s)" % (read["path"], wanted["where"])
            if read["local_offset"] is not None:
                out["local_offset"] = read["local_offset"]
            problem = read["problem"]
            if problem is None and (result.rc != 0 or read["lines"] is None):
                problem = "tail failed: %s" % (
                    result.error or result.stderr.strip()[-500:] or "exit %s" % result.rc
                )
            if problem is None and result.truncated:
                problem = "the exec's output was cut"
            if read["stream"]:
                continue  # a link to the container's stdout/stderr: read as the container log
            if problem is not None:
                out["problems"].append(
                    "%s: %s (exec of sh -c LOG_FILE_SCRIPT in pod %s/%s)"
                    % (what, problem, namespace, pod)
                )
                continue
            lines = read["lines"]
            if tail_lines is not None and len(lines) > tail_lines:
                lines = lines[-tail_lines:]
            if since_seconds is not None and read["now"] is not None:
                since = datetime.datetime.fromtimestamp(
                    read["now"] - since_seconds, tz=datetime.timezone.utc
                )
                lines = lines_since(lines, since, out["local_offset"])
            out["files"].append(
                {
                    "path": read["path"],
                    "lines": lines,
                    "lines_read": len(lines),
                    "bytes_read": read["bytes_read"],
                    "truncated": read["truncated"],
                }
            )
        return out

    def summarize_log(
        self,
        lines: Iterable[str],
        reload_time: str | None = None,
        max_errors: int = 50,
        files: dict[str, Any] | None = None,
        worker_pids: list[int] | None = None,
        runtime: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``nginx_log.summarize`` (error and access lines interleaved) of the container log,
        merged in time order with the error log files ``read_log_files`` read (``files``)."""
        if files and files["files"]:
            offset = files["local_offset"]
            merged = merge_logs([lines] + [f["lines"] for f in files["files"]], offset)
            return summarize(
                merged,
                reload_time=reload_time,
                max_errors=max_errors,
                local_offset=offset,
                worker_pids=worker_pids,
            )
        return summarize(
            lines, reload_time=reload_time, max_errors=max_errors, worker_pids=worker_pids
        )


def parse_log_file_output(text: str, limit: int) -> dict[str, Any]:
    """LOG_FILE_SCRIPT's output as ``{path, now (epoch or None), local_offset (minutes or
    None), stream (a link to stdout/stderr), problem (or None), lines (None when nothing was
    read), bytes_read, truncated}``."""
    head, sep, body = text.partition("\n--\n")
    if not sep and text.endswith("\n--"):
        head, sep, body = text[:-3], "x", ""
    read: dict[str, Any] = {
        "path": None,
        "now": None,
        "local_offset": None,
        "stream": False,
        "problem": None,
        "lines": None,
        "bytes_read": 0,
        "truncated": False,
    }
    size = None
    link = None
    for line in head.splitlines():
        key, _sep, value = line.partition(" ")
        value = value.strip()
        if key == "path":
            read["path"] = value
        elif key == "now" and value.isdigit():
            read["now"] = int(value)
        elif key == "zone":
            read["local_offset"] = parse_utc_offset(value)
        elif key == "link":
            link = value
        elif key == "size" and value.isdigit():
            size = int(value)
        elif key in ("missing", "notfile", "denied"):
            read["problem"] = {
                "missing": "no such file",
                "notfile": "not a regular file%s" % (" (a link to %s)" % link if link else ""),
                "denied": "permission denied",
            }[key]
    if link is not None and any(link == s or link.endswith(" " + s) for s in STD_STREAMS):
        read["stream"] = True
        read["problem"] = None
    if read["problem"] is not None or not sep:
        return read
    read["bytes_read"] = len(body.encode("utf-8", "replace"))
    read["truncated"] = size is not None and size > limit
    lines = body.splitlines()
    if read["truncated"] and lines:
        lines = lines[1:]  # tail -c started in the middle of a line
    read["lines"] = lines
    return read
