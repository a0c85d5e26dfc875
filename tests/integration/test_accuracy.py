"""Every lab scenario through the diagnose_502 role, remediation ON: the verdict is the scenario's
cause, and only stale_upstream scenarios are ever reloaded, and then only their stale replicas.

The same runs as ``make accuracy`` (tests/lab/accuracy.py), one scenario per test.
"""
import json
from pathlib import Path

import jsonschema
import pytest

from accuracy import STALE, expected_stale_replicas, reloaded_replicas, run_role
from badlab import scenario as scenario_mod
from badlab.fixture import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "result.schema.json").read_text())
ALL_SCENARIOS = sorted(SCENARIOS.glob("*.yml"))

pytestmark = pytest.mark.lab


def explain(proc, result):
    verdict = (result or {}).get("verdict") or {}
    return "exit %s\nverdict: %s\nsummary: %s\nevidence: %s\n--- stdout\n%s\n--- stderr\n%s" % (
        proc.returncode, verdict.get("cause"), verdict.get("summary"), verdict.get("evidence"),
        proc.stdout[-4000:], proc.stderr[-2000:])


def test_every_cause_of_the_reference_has_a_scenario():
    """Each cause a plain nginx proxy can show is reproduced by at least one scenario file."""
    causes = {scenario_mod.load(path).expect["cause"] for path in ALL_SCENARIOS}
    wanted = {"stale_upstream", "no_endpoints", "backend_not_ready", "backend_down", "port_mismatch",
              "dns_failure", "backend_crash", "keepalive_mismatch", "rollout_race", "header_too_big",
              "protocol_mismatch", "network_blocked", "backend_502", "healthy"}
    assert wanted <= causes, sorted(wanted - causes)


@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.stem)
def test_verdict_matches_the_cause_and_reloads_only_stale_replicas(lab_factory, tmp_path, path):
    spec = scenario_mod.load(path)
    lab = lab_factory(path.stem)
    proc, result = run_role(lab.dir / "vars.yml", tmp_path / "result.json")
    assert result is not None, explain(proc, result)
    assert "Traceback" not in proc.stdout + proc.stderr, explain(proc, result)
    jsonschema.validate(result, SCHEMA)
    verdict, remediation = result["verdict"], result["remediation"]
    assert verdict["cause"] == spec.expect["cause"], explain(proc, result)
    assert verdict["summary"].startswith(spec.expect["cause"] + ":")
    assert verdict["evidence"], explain(proc, result)
    assert verdict["recommendation"]["fix"]
    reloaded = reloaded_replicas(result)
    if spec.expect["cause"] != STALE:
        assert not remediation["performed"] and reloaded == [], remediation
        assert verdict["reload_safe"] is False
        assert spec.expect["cause"] in remediation["reason"]
    else:
        stale = expected_stale_replicas(spec, lab.info["proxy_pods"])
        assert verdict["stale_replicas"] == stale, explain(proc, result)
        assert reloaded == stale, remediation
        assert remediation["verified"] is True, remediation
        assert lab.http_status() == 200
