"""Fleet wall time: diagnose_502 over 1 target, then over 50 targets with forks 10, and the ratio.

Starts a fleet of labs (tests/lab/fleet.py: live targets with a mix of causes plus three that
cannot be checked), runs playbooks/diagnose_502.yml over it, checks that the fleet summary
counts every target's cause correctly, and prints the figures. BENCH_FLEET_TARGETS changes 50.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TARGETS = int(os.environ.get("BENCH_FLEET_TARGETS", "50"))
FORKS = 10


def run(inventory, limit, reports):
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    cmd = [
        str(Path(PY).parent / "ansible-playbook"),
        "-i",
        str(inventory),
        str(ROOT / "playbooks/diagnose_502.yml"),
        "-f",
        str(FORKS),
        "-e",
        "diagnose_502_hosts=" + limit,
        "-e",
        "diagnose_502_fleet_report_dir=" + str(reports),
        "-e",
        "diagnose_502_show_report=false",
    ]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if "Traceback" in proc.stdout + proc.stderr:
        sys.exit("traceback in the run:\n" + proc.stdout[-4000:])
    summary = reports / "fleet-summary.json"
    # One target that finds a problem fails the only host of the first play: ansible-playbook
    # then ends there, and the fleet summary play does not run (nothing to summarize).
    return took, json.loads(summary.read_text()) if summary.exists() else None


def main():
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    fleet = work / "fleet"
    t0 = time.monotonic()
    subprocess.run(
        [
            PY,
            str(ROOT / "tests/lab/fleet.py"),
            "up",
            "--dir",
            str(fleet),
            "--targets",
            str(TARGETS),
        ],
        check=True,
    )
    print("fleet up: %d labs in %.1f s" % (TARGETS, time.monotonic() - t0))
    try:
        expected = json.loads((fleet / "expected.json").read_text())
        first = sorted(h for h in expected if expected[h] != "could_not_check")[0]
        (work / "one").mkdir()
        (work / "all").mkdir()
        one_time, _ = run(fleet / "inventory.yml", first, work / "one")
        all_time, summary = run(fleet / "inventory.yml", "fleet", work / "all")
    finally:
        subprocess.run(
            [PY, str(ROOT / "tests/lab/fleet.py"), "down", "--dir", str(fleet)], check=False
        )
    if summary is None:
        sys.exit("the fleet run wrote no fleet summary")
    got = {row["target"]: row["cause"] for row in summary["rows"]}
    wrong = {t: (expected[t], got.get(t)) for t in expected if got.get(t) != expected[t]}
    print("1 target: %.1f s" % one_time)
    print("%d targets (forks %d): %.1f s" % (len(expected), FORKS, all_time))
    print(
        "ratio %d targets / 1 target: %.1f (serial would be %d)"
        % (len(expected), all_time / one_time, len(expected))
    )
    print("summary counts: %s" % json.dumps(summary["counts"], sort_keys=True))
    if wrong:
        sys.exit(
            "fleet summary disagrees with the scenarios for %d targets: %s" % (len(wrong), wrong)
        )
    print("fleet summary correct for all %d targets" % len(expected))


if __name__ == "__main__":
    main()
