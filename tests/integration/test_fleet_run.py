"""A fleet run: many targets with forks, one summary, broken targets reported while others finish."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture
def fleet(tmp_path):
    directory = tmp_path / "fleet"
    cmd = [sys.executable, str(ROOT / "tests/lab/fleet.py")]
    subprocess.run(
        cmd
        + [
            "up",
            "--dir",
            str(directory),
            "--targets",
            "4",
            "--scenarios",
            "stale_upstream,healthy,no_endpoints,stale_upstream-one_replica",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield directory
    finally:
        subprocess.run(cmd + ["down", "--dir", str(directory)], check=False, capture_output=True)


def test_fleet_summary_counts_every_target_and_names_the_broken_ones(fleet, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_SHOW_CUSTOM_STATS="1",
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(fleet / "inventory.yml"),
            str(ROOT / "playbooks/diagnose_502.yml"),
            "-f",
            "4",
            "-e",
            "diagnose_502_hosts=fleet",
            "-e",
            "diagnose_502_fleet_report_dir=" + str(reports),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    # Broken targets make the run fail, after the summary of every target was written.
    assert proc.returncode != 0, out[-4000:]
    assert "3 of 7 targets could not be checked" in out
    summary = json.loads((reports / "fleet-summary.json").read_text())
    expected = json.loads((fleet / "expected.json").read_text())
    assert {row["target"]: row["cause"] for row in summary["rows"]} == expected
    counts = {}
    for cause in expected.values():
        counts[cause] = counts.get(cause, 0) + 1
    assert summary["counts"] == counts
    reasons = {c["target"]: c["reason"] for c in summary["could_not_check"]}
    assert "127.0.0.1:9" in reasons["dead-api"]
    assert "401" in reasons["wrong-token"]
    assert "no-such-kubeconfig" in reasons["missing-kubeconfig"]
    markdown = (reports / "fleet-summary.md").read_text()
    assert "| stale_upstream | 2 |" in markdown and "## Could not check" in markdown
    # The job's artifacts: every target's result by name (none on its own: several targets),
    # and the fleet summary as written.
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("RUN:"))
    artifacts = json.loads(line.split("RUN:", 1)[1])
    assert set(artifacts) == {"diagnose_502_results", "diagnose_502_fleet"}
    results = artifacts["diagnose_502_results"]
    found = {
        t: "could_not_check"
        if r["outcome"]["outcome"] == "could_not_check"
        else r["verdict"]["cause"]
        for t, r in results.items()
    }
    assert found == expected
    assert artifacts["diagnose_502_fleet"] == summary
