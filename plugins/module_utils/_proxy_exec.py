# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: what the proxy modules run inside an nginx pod.

Picking the nginx container, reading nginx's processes (master PID, worker start times) from
``/proc`` with plain ``sh`` (no ``ps`` needed), and an HTTP probe with curl or wget.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import parse_nginx_t

PID_FILES = ("/run/nginx.pid", "/var/run/nginx.pid", "/tmp/nginx.pid",
             "/var/run/nginx/nginx.pid", "/etc/nginx/logs/nginx.pid")

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


def pod_ref(pod):
    """``namespace/name`` of a raw pod."""
    meta = pod.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace"), meta.get("name"))


# Image names (the last path part, without tag or digest) that are nginx itself.
NGINX_IMAGES = ("nginx", "nginx-unprivileged", "nginx-plus", "openresty")


def _image_name(image):
    """``docker.io/nginxinc/nginx-unprivileged:1.27@sha256:...`` -> ``nginx-unprivileged``."""
    last = (image or "").split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def pick_container(client, pod, wanted=None):
    """Name of the nginx container of a raw pod; K8sError when it cannot be told.

    ``wanted`` wins. Else a container named ``nginx`` or running an nginx image, when exactly
    one does; else the only container; else the first in which ``nginx -v`` runs, trying those
    whose name or image merely mention nginx (an ``nginx-prometheus-exporter`` sidecar does)
    before the others.
    """
    containers = (pod.get("spec") or {}).get("containers") or []
    names = [c.get("name") for c in containers]
    meta = pod.get("metadata") or {}
    if wanted:
        if wanted not in names:
            raise K8sError('pod %s has no container "%s" (it has: %s)'
                           % (pod_ref(pod), wanted, ", ".join(names)))
        return wanted
    strong = [c.get("name") for c in containers
              if c.get("name") == "nginx" or _image_name(c.get("image")) in NGINX_IMAGES]
    if len(strong) == 1:
        return strong[0]
    if len(names) == 1:
        return names[0]
    weak = [c.get("name") for c in containers
            if "nginx" in (c.get("name") or "") or "nginx" in (c.get("image") or "")]
    order = list(dict.fromkeys(strong + weak + names))
    for name in order:
        try:
            result = client.exec(meta.get("namespace"), meta.get("name"), ["nginx", "-v"],
                                 container=name)
        except K8sError as exc:
            if exc.status == 400:   # this container cannot run anything now: try the next
                continue
            raise
        if result.rc == 0:
            return name
    raise K8sError("pod %s: no container runs nginx (tried nginx -v in %s); set container"
                   % (pod_ref(pod), ", ".join(order)))


def _start_time(starttime_ticks, btime, hz):
    seconds = btime + starttime_ticks / float(hz)
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "%02dZ" % (stamp.microsecond // 10000)


def _boot_from_clock(value):
    """Boot time (float seconds) from ``"<now s.ns> <uptime s>"``, or None."""
    parts = value.split()
    try:
        return float(parts[0]) - float(parts[1]) if len(parts) == 2 else None
    except ValueError:
        return None


def parse_proc_output(text):
    """Parse PROC_SCRIPT output into ``{master_pid, workers: [{pid, start_time}], problem}``.

    The master is the one named in the pid file, else the only ``nginx: master`` process;
    workers are its children whose command line says ``worker process`` (all its children
    when command lines are unreadable). Workers are sorted by start time, then PID.
    """
    btime = hz = pidfile_pid = boot = None
    uptime = None
    procs = []
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
                procs.append({"pid": int(head.split(" ", 1)[0]), "ppid": int(fields[1]),
                              "ticks": int(fields[19]), "cmd": ""})
        elif key == "cmd" and procs:
            procs[-1]["cmd"] = value.strip()
    result = {"master_pid": None, "workers": [], "problem": None, "last_reload_age": None}
    if boot is not None and (btime is None or abs(boot - btime) < 2):
        btime = boot
    if btime is None:
        result["problem"] = "could not read btime from /proc/stat"
        return result
    pids = {p["pid"] for p in procs}
    if pidfile_pid in pids:
        master = pidfile_pid
    else:
        masters = [p["pid"] for p in procs
                   if p["cmd"].startswith("nginx: master") or
                   (not p["cmd"] and p["ppid"] not in pids)]
        if len(masters) != 1:
            result["problem"] = ("found %d nginx master processes and no readable pid file; "
                                 "cannot tell which one serves this pod" % len(masters)
                                 if masters else "no nginx master process is running")
            return result
        master = masters[0]
    result["master_pid"] = master
    children = [p for p in procs if p["ppid"] == master]
    workers = [p for p in children if "worker process" in p["cmd"]] or \
        [p for p in children if not p["cmd"]]
    result["workers"] = sorted(({"pid": p["pid"],
                                 "start_time": _start_time(p["ticks"], btime, hz or 100)}
                                for p in workers), key=lambda w: (w["start_time"], w["pid"]))
    if not result["workers"]:
        result["problem"] = "nginx master %d has no worker process" % master
    else:
        # Seconds since the last reload: the newest worker's age, when the workers are younger
        # than the master by more than a second (at a plain start they are the same age).
        # uptime and a process's start ticks both count from boot: no controller clock involved.
        hz = float(hz or 100)
        newest = max(p["ticks"] for p in workers) / hz
        master_start = next(p["ticks"] for p in procs if p["pid"] == master) / hz
        if uptime is not None and newest - master_start > 1.0:
            result["last_reload_age"] = round(max(0.0, uptime - newest), 2)
    return result


def read_processes(client, namespace, pod, container, pid_files=PID_FILES):
    """Run PROC_SCRIPT in the pod; return parse_proc_output's dict (``problem`` on failure)."""
    result = client.exec(namespace, pod, ["sh", "-c", PROC_SCRIPT, "sh"] + list(pid_files),
                         container=container)
    if result.rc != 0:
        why = result.error or result.stderr.strip() or "exit %s" % result.rc
        return {"master_pid": None, "workers": [],
                "problem": "cannot read nginx processes from /proc: %s" % why}
    return parse_proc_output(result.stdout)


_HTTP_STATUS = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
_WGET_ERROR = re.compile(r"ERROR (\d{3})")


def probe(client, namespace, pod, container, url, timeout):
    """Request ``url`` from inside the pod with curl, else wget; the proxy_probe fact.

    ``ran`` says whether a client ran and its outcome is evidence (an answer, a refusal, a
    timeout); when it is false, ``error`` says why nothing could be learnt (the exec call
    failed, or the container has neither curl nor wget) and ``status`` is None: that is "could
    not check", never a failed request.
    """
    fact = {"namespace": namespace, "name": pod, "url": url, "tool": None, "status": None,
            "ok": False, "error": None, "time_total": None, "rc": None, "ran": False}
    try:
        return _probe(client, namespace, pod, container, url, timeout, fact)
    except K8sError as exc:
        fact.update(tool=None, status=None, rc=None, ran=False,
                    error="could not run the probe: %s" % exc)
        return fact


def _probe(client, namespace, pod, container, url, timeout, fact):
    limit = "%g" % timeout
    exec_timeout = timeout + client.timeout
    curl = client.exec(namespace, pod,
                       ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                        "--max-time", limit, url], container=container, timeout=exec_timeout)
    if curl.rc is not None and curl.rc != 127:
        fact.update(tool="curl", rc=curl.rc, ran=True)
        parts = curl.stdout.split()
        if parts and parts[0].isdigit() and parts[0] != "000":
            fact["status"] = int(parts[0])
            fact["time_total"] = float(parts[1]) if len(parts) > 1 else None
        if curl.rc != 0:
            fact["error"] = curl.stderr.strip() or "curl exited %s" % curl.rc
    elif curl.timed_out:
        fact.update(tool="curl", error=curl.error, ran=True)
    else:
        wget = client.exec(namespace, pod, ["wget", "-q", "-S", "-O", "/dev/null", "-T", limit,
                                            url], container=container, timeout=exec_timeout)
        if (wget.rc is None and not wget.timed_out) or wget.rc == 127:
            fact["error"] = ("neither curl nor wget can run in container %s of pod %s/%s "
                             "(curl: %s; wget: %s): nothing could be probed from there"
                             % (container, namespace, pod, curl.error or "exit 127",
                                wget.error or "exit 127"))
            return fact
        fact.update(tool="wget", rc=wget.rc, ran=True)
        codes = _HTTP_STATUS.findall(wget.stderr) or _WGET_ERROR.findall(wget.stderr)
        if codes:
            fact["status"] = int(codes[-1])
        if wget.rc != 0 and fact["status"] is None:
            fact["error"] = wget.error or wget.stderr.strip() or "wget exited %s" % wget.rc
    fact["ok"] = fact["status"] is not None and fact["status"] < 500
    return fact


def read_config(client, namespace, pod, container):
    """Run ``nginx -T``; return ``(parsed config or None, problem or None)``."""
    result = client.exec(namespace, pod, ["nginx", "-T"], container=container)
    if result.rc != 0:
        why = result.error or result.stderr.strip()[-2000:] or "exit %s" % result.rc
        return None, "nginx -T failed: %s" % why
    return parse_nginx_t(result.stdout), None


def listen_ports(client, namespace, pod, container):
    """The replica's listen ports from its running config; ``(ports, problem)``."""
    parsed, problem = read_config(client, namespace, pod, container)
    if parsed is None:
        return [], problem
    return parsed["listen_ports"], None if parsed["listen_ports"] else "nginx listens on no port"
