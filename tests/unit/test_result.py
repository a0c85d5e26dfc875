"""A target's result: the reload decision, the remediation record and the result document."""

import pytest

from ansible_collections.badgateway.k8s.plugins.filter import diagnose as filters
from ansible_collections.badgateway.k8s.plugins.module_utils import result

STALE = {"cause": "stale_upstream", "reload_safe": True, "stale_replicas": ["web/nginx-0"]}


@pytest.mark.parametrize(
    "verdict, remediate, check_mode, reason",
    [
        (
            {"cause": "no_endpoints"},
            True,
            False,
            "the verdict is no_endpoints, which a reload does not fix",
        ),
        (dict(STALE, reload_safe=False), True, False, "the evidence does not make a reload safe"),
        (dict(STALE, stale_replicas=[]), True, False, "no replica is stale"),
        (STALE, False, False, "remediation is off (diagnose_502_remediate=false): read-only run"),
        (STALE, True, True, "check mode: nothing is changed"),
        (STALE, True, False, ""),
    ],
)
def test_the_reload_is_earned_only_when_every_condition_holds(
    verdict, remediate, check_mode, reason
):
    assert result.reload_reason(verdict, remediate, check_mode) == reason


def replica(name, **kw):
    return dict(
        {"namespace": "web", "name": name, "reloaded": True, "skipped": None, "verified": True},
        **kw,
    )


def test_a_proven_reload_with_the_url_answering_is_verified():
    record = result.remediation_record("", {"replicas": [replica("nginx-0")]}, "http://x/", 200)
    assert record == {
        "performed": True,
        "verified": True,
        "reason": None,
        "url_status_after": 200,
        "replicas": [replica("nginx-0")],
        "error": None,
    }


@pytest.mark.parametrize("status", [502, 503, 504, None, "", "junk"])
def test_the_url_still_failing_or_unread_leaves_the_reload_unverified(status):
    record = result.remediation_record("", {"replicas": [replica("nginx-0")]}, "http://x/", status)
    assert record["performed"] is True
    assert record["verified"] is False


def test_without_a_url_the_replicas_proof_is_enough():
    assert result.remediation_record("", {"replicas": [replica("a")]}, "", None)["verified"] is True


def test_one_unproven_replica_makes_the_remediation_unverified_and_skipped_ones_are_named():
    reloaded = {
        "replicas": [replica("a"), replica("b", reloaded=False, verified=False, skipped="cooldown")]
    }
    record = result.remediation_record("", reloaded, "", None)
    assert record["performed"] is True
    assert record["verified"] is False
    assert record["reason"] == "not reloaded: cooldown"


def test_a_failed_reload_step_keeps_its_error():
    record = result.remediation_record("", {"replicas": [], "error": "403 on pods/exec"}, "", None)
    assert record["performed"] is False
    assert record["verified"] is False
    assert record["error"] == "403 on pods/exec"


def test_a_run_that_did_not_reload_ignores_what_an_earlier_run_left():
    earlier = {"replicas": [replica("nginx-0")], "error": "old"}
    record = result.remediation_record("no replica is stale", earlier, "http://x/", 200)
    assert record == {
        "performed": False,
        "verified": False,
        "reason": "no replica is stale",
        "url_status_after": None,
        "replicas": [],
        "error": None,
    }


def gathered(**kw):
    layers = [
        {"name": n, "hypothesis": "h", "status": "pass", "message": "m", "evidence": []}
        for n in ("symptom", "backend_pods", "service", "connectivity", "proxy_logs")
    ]
    base = {
        "started": "2026-11-30T10:00:00Z",
        "facts": {"errors": {}},
        "layers": layers,
        "verdict": {"cause": "healthy", "summary": "healthy: nothing fails", "candidates": []},
        "chain": None,
        "service_namespace": "web",
        "service_name": "app",
    }
    return dict(base, **kw)


def test_the_result_carries_every_part_and_its_outcome():
    remediation = result.remediation_record(
        "the verdict is healthy, which a reload does not fix", None, "", None
    )
    built = result.build_result(
        gathered(),
        "web/app=nginx",
        "",
        "cluster-1",
        False,
        remediation,
        finished="2026-11-30T10:00:01Z",
    )
    assert built["schema_version"] == 1
    assert built["started"] == "2026-11-30T10:00:00Z"
    assert built["finished"] == "2026-11-30T10:00:01Z"
    assert built["target"] == {
        "proxy": "web/app=nginx",
        "service": "web/app",
        "url": None,
        "inventory_host": "cluster-1",
    }
    assert built["check_mode"] is False
    assert built["remediation"] is remediation
    assert built["errors"] == {}
    assert built["outcome"]["outcome"] == "healthy"
    assert built["outcome"]["exit_status"] == 0


def test_a_target_that_could_not_be_read_has_no_service_and_its_errors():
    built = result.build_result(
        gathered(service_name=None, facts={"errors": {"service": "401 Unauthorized"}}),
        "web/app=nginx",
        "http://x/",
        "t",
        True,
        None,
    )
    assert built["target"]["service"] is None
    assert built["target"]["url"] == "http://x/"
    assert built["check_mode"] is True
    assert built["errors"] == {"service": "401 Unauthorized"}
    assert built["finished"].endswith("Z")


def test_the_gathering_builds_and_publishes_the_result_when_no_reload_is_earned():
    asked = {
        "remediate": True,
        "inventory_host": "cluster-1",
        "files": {"json": "/r/c1.json", "markdown": "", "html": "/r/c1.html"},
        "show_summary": False,
    }
    out = result.result_of_gathering(gathered(), "web/app=nginx", "http://x/", False, asked)
    reason = "the verdict is healthy, which a reload does not fix"
    assert out["reload_reason"] == reason
    assert out["outputs"] == [
        {"host": "cluster-1", "format": "json", "dest": "/r/c1.json"},
        {"host": "cluster-1", "format": "html", "dest": "/r/c1.html"},
    ]
    assert out["show_summary"] is False
    built = out["ansible_facts"]["diagnose_502_result"]
    assert built["remediation"] == result.remediation_record(reason, None, "http://x/", None)
    assert built["target"]["inventory_host"] == "cluster-1" and built["outcome"]["exit_status"] == 0
    # the target's share of the job's artifact, merged by ansible-playbook over the targets
    assert out["ansible_stats"] == {
        "data": {result.ARTIFACT: {"cluster-1": built}},
        "per_host": False,
        "aggregate": True,
    }


@pytest.mark.parametrize("check_mode, earned", [(False, True), (True, False)])
def test_an_earned_reload_leaves_the_result_to_the_step_after_it(check_mode, earned):
    stale = gathered(verdict=dict(STALE, summary="stale"))
    out = result.result_of_gathering(
        stale, "web/app=nginx", None, check_mode, {"remediate": True, "inventory_host": "c"}
    )
    assert (out["reload_reason"] == "") is earned
    assert ("ansible_facts" not in out and "ansible_stats" not in out) is earned
    assert out["outputs"] == []
    if not earned:
        assert out["ansible_facts"]["diagnose_502_result"]["check_mode"] is True


def test_the_filters_refuse_what_is_not_their_input():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="reload_reason: expected a verdict"):
        filters.reload_reason("stale_upstream")
    with pytest.raises(AnsibleFilterError, match="remediation_record: expected the reason"):
        filters.remediation_record(None)
    with pytest.raises(AnsibleFilterError, match="diagnose_result: expected what"):
        filters.diagnose_result([])
    assert filters.reload_reason(STALE, True, False) == ""


def judged(name, status, message="m", evidence=()):
    return {
        "name": name,
        "hypothesis": "h",
        "status": status,
        "message": message,
        "evidence": list(evidence),
    }


def test_one_target_shows_the_layer_as_it_is():
    play = {
        "localhost": {
            "layers": [judged("service", "fail", "no ready endpoint", ["ready endpoints: none"])]
        }
    }
    assert result.play_judgement(play, "service") == {
        "passed": False,
        "fail_msg": ["[fail] no ready endpoint", "ready endpoints: none"],
        "success_msg": "",
    }
    play = {"localhost": {"layers": [judged("service", "pass", "1 ready endpoint")]}}
    assert result.play_judgement(play, "service") == {
        "passed": True,
        "fail_msg": [],
        "success_msg": "[pass] 1 ready endpoint",
    }


def test_over_a_fleet_each_target_that_does_not_pass_is_named_with_its_evidence():
    play = {
        "a": {"layers": [judged("service", "pass")]},
        "b": {"layers": [judged("service", "error", "401", ["the API said Unauthorized"])]},
        "c": {"layers": [judged("service", "fail", "no endpoint")]},
    }
    got = result.play_judgement(play, "service")
    assert got["passed"] is False
    assert got["fail_msg"] == [
        "b: [error] 401",
        "    the API said Unauthorized",
        "c: [fail] no endpoint",
    ]
    every = {t: {"layers": [judged("service", "pass")]} for t in "abc"}
    assert result.play_judgement(every, "service")["success_msg"] == "[pass] every target (3)"


def test_the_verdicts_of_one_target_and_of_a_fleet():
    one = {"x": {"verdict": {"summary": "healthy: fine"}}}
    assert result.play_verdict(one) == "healthy: fine"
    two = {
        "x": {"verdict": {"summary": "healthy: fine"}},
        "y": {"verdict": {"summary": "no_endpoints: none"}},
    }
    assert result.play_verdict(two) == ["x: healthy: fine", "y: no_endpoints: none"]
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="layer_judgement: expected"):
        filters.layer_judgement([], "service")
    with pytest.raises(AnsibleFilterError, match="verdict_lines: expected"):
        filters.verdict_lines("x")


def test_every_layer_and_the_verdicts_are_judged_at_once_as_one_by_one():
    from ansible.errors import AnsibleFilterError

    fleet = {
        "a": gathered(),
        "b": gathered(
            layers=[
                dict(layer, status="fail", message="down", evidence=["pod x"])
                if layer["name"] == "backend_pods"
                else layer
                for layer in gathered()["layers"]
            ],
            verdict={"cause": "backend_down", "summary": "backend_down: pod x"},
        ),
    }
    judged = filters.play_judgements(fleet)
    names = ["symptom", "backend_pods", "service", "connectivity", "proxy_logs"]
    assert list(judged["layers"]) == names
    for name in names:
        assert judged["layers"][name] == filters.layer_judgement(fleet, name)
    assert judged["layers"]["backend_pods"]["passed"] is False
    assert judged["verdict"] == filters.verdict_lines(fleet)
    with pytest.raises(AnsibleFilterError, match="play_judgements: expected"):
        filters.play_judgements(["a"])
