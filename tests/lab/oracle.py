"""The reload oracle: whether a reload of each proxy replica was needed, measured on the lab.

The collection's one action is ``nginx -s reload`` of proxy replicas. Its ground truth is not
written by hand here but measured, replica by replica, on a running lab:

1. ``before(lab, spec)`` BEFORE the diagnosis: a few GETs straight to each replica's own pod
   address (``http://<pod IP>:<nginx port><proxy path>``, as the timeline's ``requests`` step
   sends them); each answer is recorded.
2. The diagnosis runs (and may reload replicas).
3. ``after(lab, replicas, reloaded)``: a replica that failed before and that the collection did
   not reload is reloaded by the oracle itself, as the lab's ``exec`` step does it (``nginx -t``,
   then ``nginx -s reload`` in the pod's mount namespace, then wait until the old workers are
   gone); every replica is then asked again.

Classes: ``needed`` (failed before, no failure after a reload: the collection's or the
oracle's), ``useless`` (failed before and still after a reload; also when the configuration no
longer passes ``nginx -t``, so no reload can take), ``not_failing`` (no failure before). A
failure is a 5xx answer or no HTTP answer at all.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from badlab.runtime import CONTAINER_PATH, HAPROXY_CFG, _children, http_get_status
from badlab.scenario import PROXY_KINDS

REQUESTS = 3  # per replica and phase
NEEDED, USELESS, NOT_FAILING = "needed", "useless", "not_failing"


@dataclass
class Replica:
    """One proxy replica as the oracle sees it."""

    key: str  # namespace/name
    url: str  # its own address
    container: str  # the proxy's container
    kind: str = "nginx"  # its kind (badlab's container kinds: nginx, haproxy)
    before: list[int | None] = field(default_factory=list)
    after: list[int | None] = field(default_factory=list)
    reloaded_by: str | None = None  # "collection", "oracle" or None
    oracle_reload: str | None = None  # what the oracle's own reload did
    cls: str | None = None

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "reloaded_by": self.reloaded_by,
            "oracle_reload": self.oracle_reload,
            "class": self.cls,
        }


def failed(statuses: list[int | None]) -> bool:
    """Any 5xx, or any request without an HTTP answer."""
    return any(s is None or s >= 500 for s in statuses)


def replicas(lab_info: dict[str, Any], spec: Any) -> list[Replica]:
    """The proxy replicas of a running lab (lab.json) and its scenario (badlab's Scenario)."""
    pods = {f"{p.namespace}/{p.name}": p for p in spec.pods}
    out = []
    for key in lab_info["proxy_pods"]:
        pod = pods[key]
        proxy = next(c for c in pod.containers if c.kind in PROXY_KINDS)
        port = proxy.ports[0]["containerPort"]
        ip = lab_info["pods"][key]["ip"]
        out.append(Replica(key, f"http://{ip}:{port}{spec.proxy['path']}", proxy.name, proxy.kind))
    return out


async def _ask(urls: list[str], count: int) -> list[list[int | None]]:
    """``count`` GETs to each URL, all at once; the statuses per URL."""
    answers = await asyncio.gather(
        *(http_get_status(url, timeout=10) for url in urls for _ in range(count))
    )
    return [list(answers[i * count : (i + 1) * count]) for i in range(len(urls))]


def before(reps: list[Replica], count: int = REQUESTS) -> None:
    """Ask every replica before the diagnosis."""
    for rep, statuses in zip(reps, asyncio.run(_ask([r.url for r in reps], count))):
        rep.before = statuses


def nginx_master(lab_dir: Path, key: str, container: str) -> int | None:
    """PID of the running nginx master of ``key``'s container (the lab's ``pids`` file)."""
    pid = None
    try:
        lines = (lab_dir / "pids").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] == "container" and parts[3] == f"{key}/{container}":
            pid = int(parts[0])
    if pid is None:
        return None
    try:  # alive and the lab's (it works in the lab directory)
        if not os.readlink(f"/proc/{pid}/cwd").startswith(str(lab_dir.resolve()) + "/"):
            return None
    except OSError:
        return None
    return pid


def reload(lab_dir: Path, key: str, container: str, wait: float = 5.0, kind: str = "nginx") -> str:
    """``nginx -t`` then ``nginx -s reload`` inside the replica (haproxy: ``haproxy -c``, then
    SIGUSR2 to its master, the master-worker reload), then wait for the old workers to go (as
    the lab's ``exec`` step does); says what happened."""
    master = nginx_master(lab_dir, key, container)
    if master is None:
        return "no running %s master" % kind
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    program = shutil.which(kind, path=CONTAINER_PATH) or "/usr/sbin/%s" % kind
    enter = [nsenter, "--target", str(master), "--mount", "--", program]
    check = ["-c", "-f", HAPROXY_CFG] if kind == "haproxy" else ["-t"]
    test = subprocess.run([*enter, *check], capture_output=True, text=True, timeout=30, check=False)
    if test.returncode != 0:
        last = (test.stderr or test.stdout).strip().splitlines()[-1:]
        return "%s %s failed, not reloaded: %s" % (kind, check[0], " ".join(last))
    workers = set(_children(master))
    if kind == "haproxy":
        os.kill(master, signal.SIGUSR2)
    else:
        sent = subprocess.run(
            [*enter, "-s", "reload"], capture_output=True, text=True, timeout=30, check=False
        )
        if sent.returncode != 0:
            return f"nginx -s reload exited {sent.returncode}: {sent.stderr.strip()[-300:]}"
    deadline = time.monotonic() + wait
    while set(_children(master)) & workers and time.monotonic() < deadline:
        time.sleep(0.01)
    if set(_children(master)) & workers:
        return f"reloaded; old workers still running after {wait:g}s"
    return "reloaded"


def after(lab_dir: Path, reps: list[Replica], reloaded: set[str], count: int = REQUESTS) -> None:
    """After the diagnosis: reload what failed and was not reloaded, ask again, classify.

    ``reloaded``: ``namespace/name`` of the replicas the collection reloaded."""
    for rep in reps:
        if rep.key in reloaded:
            rep.reloaded_by = "collection"
        elif failed(rep.before):
            rep.oracle_reload = reload(lab_dir, rep.key, rep.container, kind=rep.kind)
            rep.reloaded_by = "oracle" if rep.oracle_reload.startswith("reloaded") else None
    for rep, statuses in zip(reps, asyncio.run(_ask([r.url for r in reps], count))):
        rep.after = statuses
        if not failed(rep.before):
            rep.cls = NOT_FAILING
        elif rep.reloaded_by is None:  # no reload could take (nginx -t failed): none helps
            rep.cls = USELESS
        else:
            rep.cls = USELESS if failed(rep.after) else NEEDED


def classes(reps: list[Replica]) -> dict[str, str | None]:
    """{replica name: class}."""
    return {rep.name: rep.cls for rep in reps}
