"""What a run ends in: the outcome, its exit status, and parts that could not be read."""

import pytest

import shapes

from ansible_collections.badgateway.k8s.plugins.module_utils import drift, layers, outcome, verdict


def layer(name, status, message="m"):
    return {"name": name, "hypothesis": "h", "status": status, "message": message, "evidence": []}


PASS = [
    layer(n, "pass") for n in ("symptom", "backend_pods", "service", "connectivity", "proxy_logs")
]
STALE = {
    "cause": "stale_upstream",
    "summary": "stale_upstream: web/nginx-0 dials 10.0.0.2:8080",
    "candidates": [],
}


def replica(name, **kw):
    base = {
        "namespace": "web",
        "name": name,
        "reloaded": True,
        "skipped": None,
        "verified": True,
        "error": None,
        "unproven": None,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "verdict_, layers_, remediation, expected, status",
    [
        ({"cause": "healthy", "summary": "healthy"}, PASS, {}, "healthy", 0),
        (STALE, PASS, {}, "problem_found", 2),
        (STALE, PASS, {"verified": True, "replicas": [replica("nginx-0")]}, "remediated", 0),
        # a concurrent run had just reloaded it: proven, nothing to do
        (
            STALE,
            PASS,
            {
                "verified": True,
                "replicas": [replica("nginx-0", reloaded=False, skipped="cooldown")],
            },
            "remediated",
            0,
        ),
        (
            STALE,
            PASS,
            {
                "verified": False,
                "replicas": [replica("nginx-0", verified=False, error="nginx -t failed")],
            },
            "remediation_failed",
            2,
        ),
        (
            STALE,
            PASS,
            {
                "verified": False,
                "replicas": [replica("nginx-0", verified=False, unproven="no curl")],
            },
            "remediation_failed",
            2,
        ),
        (
            STALE,
            PASS,
            {"verified": False, "replicas": [], "error": "the module failed"},
            "remediation_failed",
            2,
        ),
        (
            {"cause": "unknown", "summary": "unknown"},
            PASS[:4] + [layer("proxy_logs", "error", "log: HTTP 500")],
            {},
            "could_not_check",
            4,
        ),
        # healthy on what was read is not healthy when a part could not be read
        (
            {"cause": "healthy", "summary": "healthy"},
            PASS[:3] + [layer("connectivity", "error")] + PASS[4:],
            {},
            "could_not_check",
            4,
        ),
        (
            {"cause": "unknown", "summary": "unknown", "candidates": ["a", "b"]},
            PASS,
            {},
            "problem_found",
            2,
        ),
        ({"cause": "unknown", "summary": "unknown"}, PASS, {}, "problem_found", 2),
    ],
)
def test_outcome_and_exit_status(verdict_, layers_, remediation, expected, status):
    got = outcome.decide(verdict_, layers_, remediation)
    assert (got["outcome"], got["exit_status"]) == (expected, status), got
    assert got["headline"] == expected.upper().replace("_", " ")


def test_a_problem_found_also_names_what_could_not_be_checked():
    layers_ = PASS[:4] + [layer("proxy_logs", "fail")]
    got = outcome.decide(
        STALE, layers_[:1] + [layer("backend_pods", "error", "pods: HTTP 500")] + layers_[2:], {}
    )
    assert got["outcome"] == "problem_found"
    assert "could not check: layer backend_pods: pods: HTTP 500" in got["message"]
    assert got["unchecked"] == ["layer backend_pods: pods: HTTP 500"]


# --- the layers: a part not read is never pass nor fail ------------------------------------------


def proxy(name, read_errors=None, stale=(), counts=None):
    return {
        "namespace": "web",
        "name": name,
        "last_reload": "2026-11-30T01:00:00Z",
        "counts_after_reload": counts or {},
        "errors_after_reload": sum((counts or {}).values()),
        "stale_addresses": list(stale),
        "upstream_addresses": [],
        "read_errors": read_errors or {},
        "config_ok": True,
    }


def test_an_unread_log_is_could_not_check_not_pass():
    got = layers.assess(
        {"proxies": [proxy("nginx-0", {"log": "GET pods/log failed with HTTP 500"})]}, "proxy_logs"
    )
    assert got["status"] == "error"
    assert "HTTP 500" in got["message"]


def test_one_unreadable_replica_does_not_hide_a_stale_one():
    proxies = [
        proxy("nginx-0", {"log": "forbidden"}),
        proxy("nginx-1", stale=["10.0.0.2:8080"], counts={"connect_refused": 3}),
    ]
    got = layers.assess({"proxies": proxies}, "proxy_logs")
    assert got["status"] == "fail"
    assert (
        "10.0.0.2:8080" in got["message"]
        and "could not check" in got["message"]
        and "forbidden" in got["message"]
    )


def test_a_probe_that_could_not_run_is_could_not_check_not_a_failed_request():
    probes = [
        {
            "namespace": "web",
            "name": "nginx-0",
            "url": "http://web.app:8080/",
            "status": None,
            "ran": False,
            "error": "could not run the probe: exec ... HTTP 500",
        }
    ]
    got = layers.assess({"svc_probes": probes}, "connectivity")
    assert got["status"] == "error" and "HTTP 500" in got["message"]
    got = layers.assess(
        {"svc_probes": probes + [dict(probes[0], name="nginx-1", ran=True, status=502)]},
        "connectivity",
    )
    assert got["status"] == "fail"


def test_the_verdict_is_never_healthy_with_an_unread_replica():
    svc = {"namespace": "app", "name": "web", "exists": True, "ready_addresses": ["10.0.0.5:8080"]}
    probe = {"namespace": "web", "name": "nginx-0", "url": "u", "status": 200, "ran": True}
    facts = {
        "service": svc,
        "pods": [],
        "proxies": [proxy("nginx-0")],
        "probes": [probe],
        "self_probes": [probe],
    }
    assert verdict.decide(facts)["cause"] == "healthy"
    facts["proxies"] = [proxy("nginx-0"), proxy("nginx-1", {"log": "GET pods/log: HTTP 500"})]
    got = verdict.decide(facts)
    assert got["cause"] == "unknown"
    assert any(
        "nginx-1: log could not be read: GET pods/log: HTTP 500" in m
        for m in got["missing_evidence"]
    )


def test_drift_is_could_not_check_when_the_config_could_not_be_read():
    unread = shapes.proxy(
        "nginx-0", read_errors={"config": "nginx -T: exec ... HTTP 500"}, config_ok=None
    )
    got = drift.upstream_drift([unread], [], [])
    assert got["status"] == "could_not_check"
    assert "HTTP 500" in got["message"] and "current endpoints none" not in got["message"]
