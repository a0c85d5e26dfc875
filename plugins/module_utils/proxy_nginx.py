# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx, the first proxy kind behind the adapter seam (``proxy_adapter.ProxyAdapter``).

Its commands (``nginx -v``, ``-T``, ``-t``, ``-s reload``), its config parser
(``nginx_conf``), its log parser (``nginx_log``), and its processes (master PID, worker start
times) read from ``/proc`` with plain ``sh`` (no ``ps`` needed).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import (
    parse_nginx_t,
    upstream_hosts,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import summarize
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import ProxyAdapter

PID_FILES = (
    "/run/nginx.pid",
    "/var/run/nginx.pid",
    "/tmp/nginx.pid",
    "/var/run/nginx/nginx.pid",
    "/etc/nginx/logs/nginx.pid",
)

# Prints: "pidfile PATH PID", "btime N", "hz N", "clock <now as s.ns> <uptime s>", then per
# nginx process "stat <stat line>" followed by "cmd <cmdline with NULs as spaces>". POSIX sh
# only; tr, getconf and a date with %N are optional. btime is whole seconds; now - uptime
# gives the boot time to about 10 ms when date knows %N (uptime is read first, so every
# sample is late, never early: the smallest of three is kept).
PROC_SCRIPT = r"""
for f in "$@"; do
  if [ -r "$f" ]; then read -r p < "$f" && echo "pidfile $f $p" && break; fi
done
while read -r k v rest; do [ "$k" = btime ] && echo "btime $v"; done < /proc/stat
echo "hz $(getconf CLK_TCK 2>/dev/null || echo 100)"
for i in 1 2 3; do
  read -r up rest < /proc/uptime && echo "clock $(date +%s.%N 2>/dev/null) $up"
done
for d in /proc/[0-9]*; do
  read -r s < "$d/stat" 2>/dev/null || continue
  case "$s" in
    *"(nginx)"*)
      echo "stat $s"
      echo "cmd $(tr '\000' ' ' < "$d/cmdline" 2>/dev/null)" ;;
  esac
done
"""


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


def parse_proc_output(text: str) -> dict[str, Any]:
    """Parse PROC_SCRIPT output into ``{master_pid, workers: [{pid, start_time}], problem}``.

    The master is the one named in the pid file, else the only ``nginx: master`` process;
    workers are its children whose command line says ``worker process`` (all its children
    when command lines are unreadable). Workers are sorted by start time, then PID.
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
            if p["cmd"].startswith("nginx: master") or (not p["cmd"] and p["ppid"] not in pids)
        ]
        if len(masters) != 1:
            result["problem"] = (
                "found %d nginx master processes and no readable pid file; "
                "cannot tell which one serves this pod" % len(masters)
                if masters
                else "no nginx master process is running"
            )
            return result
        master = masters[0]
    result["master_pid"] = master
    children = [p for p in procs if p["ppid"] == master]
    workers = [p for p in children if "worker process" in p["cmd"]] or [
        p for p in children if not p["cmd"]
    ]
    result["workers"] = sorted(
        (
            {"pid": p["pid"], "start_time": _start_time(p["ticks"], btime, hz or 100)}
            for p in workers
        ),
        key=lambda w: (w["start_time"], w["pid"]),
    )
    if not result["workers"]:
        result["problem"] = "nginx master %d has no worker process" % master
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

    def summarize_log(
        self, lines: Iterable[str], reload_time: str | None = None, max_errors: int = 50
    ) -> dict[str, Any]:
        """``nginx_log.summarize`` (error and access lines interleaved)."""
        return summarize(lines, reload_time=reload_time, max_errors=max_errors)
