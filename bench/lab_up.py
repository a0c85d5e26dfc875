"""How long ``python -m badlab up`` takes for the seed scenario (wall time, several runs).

Each run starts the lab in a fresh directory with the real CLI (validation, API server with
TLS, the network namespaces and nftables ruleset, pods, the whole timeline) and stops it afterwards; the time measured is from
starting the command until it returned with the lab ready. Prints every run and the median.

    python bench/lab_up.py [--runs 5] [--scenario tests/lab/scenarios/stale_upstream.yml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 3.0


def main() -> int:
    """Run the benchmark; exit 1 if a run fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", default=str(ROOT / "tests/lab/scenarios/stale_upstream.yml"))
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "tests/lab"), env.get("PYTHONPATH")])
    )
    times = []
    with tempfile.TemporaryDirectory(prefix="badlab-bench-") as tmp:
        for run in range(1, args.runs + 1):
            lab_dir = Path(tmp) / f"run{run}"
            started = time.monotonic()
            up = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "badlab",
                    "up",
                    "--scenario",
                    args.scenario,
                    "--dir",
                    str(lab_dir),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            elapsed = time.monotonic() - started
            subprocess.run(
                [sys.executable, "-m", "badlab", "down", "--dir", str(lab_dir)],
                capture_output=True,
                text=True,
                env=env,
            )
            if up.returncode != 0:
                print(f"run {run}: lab-up failed:\n{up.stdout}{up.stderr}", file=sys.stderr)
                return 1
            times.append(elapsed)
            print(f"run {run}: lab-up {elapsed:.3f} s")
    median = statistics.median(times)
    verdict = "within" if median < TARGET_SECONDS else "OVER"
    print(
        f"lab-up of {Path(args.scenario).name}: median {median:.3f} s over {len(times)} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}); {verdict} the {TARGET_SECONDS:g} s target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
