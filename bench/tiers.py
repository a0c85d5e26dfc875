"""The lab's two tiers side by side (issue 11): what the real tier costs, in one run.

Prints:
- the build of the real tier: with ``--cold``, a build from nothing (an empty module and build
  cache in a temporary folder: the download and every package compiled), timed here; without it,
  the figures of the last build in the cache (``build.log``, which says whether it was cold);
- the warm start of the control plane (binaries built, fresh etcd each time): etcd, kube-apiserver
  and the kubelet stand-in, each from its start to ready, and the whole (target <= 20 s);
- ``badlab up`` of the seed scenario on each tier (median);
- the curated scenarios of tests/lab/test_tiers.py on each tier: the role's run (remediation on,
  least-privilege kubeconfig), seconds side by side, with the verdict.

    python bench/tiers.py [--runs 3] [--cold] [--no-scenarios]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "lab"), str(ROOT / "build" / "collections")]

from accuracy import run_all  # noqa: E402
from badlab.fixture import scenario_path, start_lab, stop_lab  # noqa: E402
from realk8s.controlplane import find_binaries, running  # noqa: E402
from test_tiers import CURATED  # noqa: E402

WARM_START_TARGET = 20.0


def cold_build() -> None:
    """build.sh with an empty cache folder: wall and CPU time of the whole, then its log."""
    with tempfile.TemporaryDirectory(prefix="realk8s-cold-") as cache:
        env = dict(os.environ, REALK8S_CACHE=cache)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        proc = subprocess.run(
            ["bash", str(ROOT / "tests/lab/realk8s/build.sh")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            sys.exit(f"the cold build failed:\n{proc.stderr[-3000:]}")
        print(
            f"cold build (download + compile, empty cache): wall {wall:.0f} s, "
            f"CPU {cpu:.0f} s ({cpu / 60:.1f} CPU-minutes)"
        )
        log = Path(proc.stdout.strip().splitlines()[-1]) / "build.log"
        print("  " + log.read_text().replace("\n", "\n  ").rstrip())


def last_build() -> None:
    log = find_binaries() / "build.log"
    print(f"last build in the cache ({log}; --cold measures one from nothing):")
    print("  " + log.read_text().replace("\n", "\n  ").rstrip())


def warm_starts(runs: int) -> None:
    totals = []
    for run in range(1, runs + 1):
        started = time.monotonic()
        with running(standin=True) as plane:
            ready = time.monotonic() - started
            timings = dict(plane.timings)
        totals.append(ready)
        print(f"  warm start {run}: {ready:.2f} s to ready; each part: {timings}")
    median = statistics.median(totals)
    verdict = "within" if median <= WARM_START_TARGET else "OVER"
    print(f"warm start median {median:.2f} s ({verdict} the {WARM_START_TARGET:.0f} s target)")


def lab_ups(runs: int, work: Path) -> None:
    seed = scenario_path("stale_upstream")
    for tier in ("emulated", "real"):
        times = []
        for run in range(runs):
            lab_dir = work / f"up-{tier}-{run}"
            started = time.monotonic()
            start_lab(seed, lab_dir, owner_pid=os.getpid(), tier=tier)
            times.append(time.monotonic() - started)
            stop_lab(lab_dir)
        print(
            f"badlab up, seed scenario, {tier:8s}: median {statistics.median(times):.2f} s {[round(t, 2) for t in times]}"
        )


def scenarios(work: Path) -> None:
    files = [scenario_path(name) for name in CURATED]
    by_tier = {
        tier: {o.name: o for o in run_all(files, work / tier, 1, tier=tier, least_privilege=True)}
        for tier in ("emulated", "real")
    }
    print(f"{'scenario':36s} {'emulated s':>10s} {'real s':>8s}  verdict (emulated / real)")
    sums = {"emulated": 0.0, "real": 0.0}
    for name in CURATED:
        e, r = by_tier["emulated"][name], by_tier["real"][name]
        sums["emulated"] += e.role_seconds
        sums["real"] += r.role_seconds
        marks = "/".join(("ok" if o.correct else f"WRONG {o.verdict or o.error}") for o in (e, r))
        print(f"{name:36s} {e.role_seconds:10.2f} {r.role_seconds:8.2f}  {marks}")
    print(f"{'total':36s} {sums['emulated']:10.2f} {sums['real']:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="time a build from an empty cache")
    parser.add_argument("--no-scenarios", action="store_true")
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()}")
    if args.cold:
        cold_build()
    else:
        last_build()
    warm_starts(args.runs)
    with tempfile.TemporaryDirectory(prefix="bench-tiers-") as tmp:
        lab_ups(args.runs, Path(tmp))
        if not args.no_scenarios:
            scenarios(Path(tmp))
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
