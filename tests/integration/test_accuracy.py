"""Every lab scenario through the diagnose_502 role, remediation ON: the verdict is the scenario's
cause, and only stale_upstream scenarios are ever reloaded, and then only their stale replicas.

The same runs as ``make accuracy`` (tests/lab/accuracy.py): every scenario's lab is started, the
playbook is run against it and the lab is stopped, three labs at a time (once per test session);
each test then checks one scenario's result.
"""

import json
import os
from pathlib import Path

import jsonschema
import pytest

from accuracy import STALE, reloaded_replicas, run_all
from ansible_collections.badgateway.k8s.plugins.module_utils.causes import CAUSES
from badlab import scenario as scenario_mod
from badlab.fixture import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "result.schema.json").read_text())
ALL_SCENARIOS = sorted(SCENARIOS.glob("*.yml"))

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """{scenario name: accuracy.Outcome} for every scenario file (labs always stopped)."""
    jobs = int(os.environ.get("BADLAB_ACCURACY_JOBS", "3"))
    done = run_all(ALL_SCENARIOS, tmp_path_factory.mktemp("accuracy"), jobs)
    return {o.name: o for o in done}


def explain(outcome):
    verdict = (outcome.result or {}).get("verdict") or {}
    return "error: %s\nverdict: %s\nsummary: %s\nevidence: %s\n%s" % (
        outcome.error,
        verdict.get("cause"),
        verdict.get("summary"),
        verdict.get("evidence"),
        outcome.output,
    )


def test_every_cause_of_the_registry_has_a_scenario():
    """Each cause the verdict can give (the registry's, but unknown) is reproduced by at least
    one scenario file."""
    causes = {scenario_mod.load(path).expect["cause"] for path in ALL_SCENARIOS}
    wanted = set(CAUSES) - {"unknown"}
    assert wanted <= causes, sorted(wanted - causes)


@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.stem)
def test_verdict_matches_the_cause_and_reloads_only_stale_replicas(outcomes, path):
    spec = scenario_mod.load(path)
    outcome = outcomes[spec.name]
    result = outcome.result
    assert outcome.error is None and result is not None, explain(outcome)
    assert "Traceback" not in outcome.output, explain(outcome)
    jsonschema.validate(result, SCHEMA)
    verdict, remediation = result["verdict"], result["remediation"]
    assert verdict["cause"] == spec.expect["cause"], explain(outcome)
    assert verdict["summary"].startswith(spec.expect["cause"] + ":")
    assert verdict["evidence"], explain(outcome)
    assert verdict["recommendation"]["fix"]
    # the exit status tells what happened: healthy and remediated 0, a problem found 2
    cause = spec.expect["cause"]
    ending = {"healthy": ("healthy", 0), STALE: ("remediated", 0)}.get(cause, ("problem_found", 2))
    assert (result["outcome"]["outcome"], result["outcome"]["exit_status"]) == ending, explain(
        outcome
    )
    assert outcome.output.startswith("exit %d\n" % ending[1]), explain(outcome)
    reloaded = reloaded_replicas(result)
    if spec.expect["cause"] != STALE:
        assert not remediation["performed"] and reloaded == [], remediation
        assert verdict["reload_safe"] is False
        assert spec.expect["cause"] in remediation["reason"]
        assert outcome.unsafe_reloads == []
    else:
        stale = (
            sorted(f"{spec.proxy['namespace']}/{name}" for name in spec.expect["stale_replicas"])
            if "stale_replicas" in spec.expect
            else sorted(outcome.proxy_pods)
        )
        assert verdict["stale_replicas"] == stale, explain(outcome)
        assert reloaded == stale, remediation
        assert remediation["verified"] is True and remediation["url_status_after"] == 200, (
            remediation
        )
