"""Fleet wall time: diagnose_502 over 1 target, then over 50 targets with forks 10, and the ratio.

Starts a fleet of labs (tests/lab/fleet.py: live targets with a mix of causes plus three that
cannot be checked), runs playbooks/diagnose_502.yml over it, checks that the fleet summary
counts every target's cause correctly, and prints the figures. BENCH_FLEET_TARGETS changes 50.
BENCH_KEEP=1 keeps the labs' folders (removed otherwise).
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TARGETS = int(os.environ.get("BENCH_FLEET_TARGETS", "50"))
FORKS = 10


def labs_cpu(fleet_dir):
    """CPU seconds used so far by the fleet's labs: every process whose command line names
    ``fleet_dir`` and all their descendants (API servers, nginx, backends, the processes an exec
    starts), with the children they have reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue  # gone meanwhile
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        used = sum(int(value) for value in fields[11:15])
        procs[int(entry)] = (int(fields[1]), used, str(fleet_dir).encode() in cmdline)
    counted = {pid for pid, (_ppid, _used, root) in procs.items() if root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _used, _root) in procs.items():
            if ppid in counted and pid not in counted:
                counted.add(pid)
                grew = True
    return sum(procs[pid][1] for pid in counted) / tick


def run(inventory, limit, reports, cpu=None):
    """Seconds of one playbook run over ``limit`` and its fleet summary (None when not
    written). ``cpu`` (a dict): filled with the CPU seconds of ansible-playbook (with its
    workers) and of the fleet's labs during the run."""
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    labs_before = labs_cpu(Path(inventory).parent)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if cpu is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["ansible"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        cpu["labs"] = labs_cpu(Path(inventory).parent) - labs_before
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
        cpu = {}
        all_time, summary = run(fleet / "inventory.yml", "fleet", work / "all", cpu)
    finally:
        subprocess.run(
            [PY, str(ROOT / "tests/lab/fleet.py"), "down", "--dir", str(fleet)], check=False
        )
        # The labs are down: their folders go too, unless BENCH_KEEP=1 keeps them.
        if os.environ.get("BENCH_KEEP") == "1":
            print("kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if summary is None:
        sys.exit("the fleet run wrote no fleet summary")
    got = {row["target"]: row["cause"] for row in summary["rows"]}
    wrong = {t: (expected[t], got.get(t)) for t in expected if got.get(t) != expected[t]}
    print("1 target: %.1f s" % one_time)
    print("%d targets (forks %d): %.1f s" % (len(expected), FORKS, all_time))
    print(
        "CPU of that run: ansible-playbook and its workers %.1f s, the labs %.1f s"
        % (cpu["ansible"], cpu["labs"])
    )
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
