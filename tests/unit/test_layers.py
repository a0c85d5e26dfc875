"""The per-layer judgements the diagnose_502 role asserts on."""

import pytest

import shapes

from ansible_collections.badgateway.k8s.plugins.module_utils import layers


def pod(name, ready=True, phase="Running", problems=(), ip="10.0.0.5"):
    return shapes.pod(
        name, phase=phase, ready=ready, pod_ip=ip, pod_ips=[ip], problems=list(problems)
    )


def probe(name, status, url="http://web.app:8080/", error=None):
    return shapes.probe(name, "web", status, url=url, error=error)


def test_symptom_fails_on_a_502_from_any_replica():
    got = layers.assess({"self_probes": [probe("nginx-0", 200), probe("nginx-1", 502)]}, "symptom")
    assert got["status"] == "fail"
    assert "web/nginx-1: GET http://web.app:8080/ -> 502" in got["message"]
    assert "nginx-0" not in got["message"]


def test_symptom_counts_an_unanswered_url_as_a_gateway_error():
    got = layers.assess({"symptom": {"url": "http://x/", "status": -1}}, "symptom")
    assert got["status"] == "fail"
    assert "no answer" in got["message"]


def test_symptom_passes_when_every_probe_answers():
    got = layers.assess(
        {"symptom": {"url": "http://x/", "status": 200}, "self_probes": [probe("nginx-0", 200)]},
        "symptom",
    )
    assert got["status"] == "pass"
    assert len(got["evidence"]) == 2


def test_running_is_not_ready():
    got = layers.assess({"pods": [pod("a-0"), pod("a-1", ready=False)]}, "backend_pods")
    assert got["status"] == "fail"
    assert "1 of 2" in got["message"] and "app/a-1" in got["message"]


def test_no_pods_fails_and_missing_pods_is_an_error():
    assert layers.assess({"pods": []}, "backend_pods")["status"] == "fail"
    assert layers.assess({"pods": None}, "backend_pods")["status"] == "error"


def test_gather_error_overrides_the_judgement_with_its_reason():
    got = layers.assess(
        {"pods": None, "errors": {"backend_pods": 'cannot list "pods" in "app"'}}, "backend_pods"
    )
    assert got["status"] == "error"
    assert 'cannot list "pods"' in got["message"]


def service(**kw):
    svc = {
        "namespace": "app",
        "name": "web",
        "exists": True,
        "headless": False,
        "cluster_ip": "10.96.0.10",
        "selector": {"app": "web"},
        "selector_matches": True,
        "ready_addresses": ["10.0.0.5:8080"],
        "not_ready_addresses": [],
        "terminating_addresses": [],
        "port_mismatches": [],
    }
    svc.update(kw)
    return svc


def test_service_layer():
    assert layers.assess({"service": service()}, "service")["status"] == "pass"
    missing = layers.assess({"service": service(exists=False)}, "service")
    assert missing["status"] == "fail" and "does not exist" in missing["message"]
    empty = layers.assess(
        {"service": service(selector_matches=False, ready_addresses=[])}, "service"
    )
    assert "matches no pod" in empty["message"] and "no ready endpoint" in empty["message"]
    ports = layers.assess(
        {
            "service": service(
                port_mismatches=[
                    {"port": 80, "target_port": "http", "pods_without_it": ["app/web-0"]}
                ]
            )
        },
        "service",
    )
    assert ports["status"] == "fail" and "targets http" in ports["message"]


def test_connectivity_is_the_seeds_hypothesis_three():
    assert (
        layers.assess({"svc_probes": [probe("nginx-0", 200)]}, "connectivity")["status"] == "pass"
    )
    bad = layers.assess(
        {"svc_probes": [probe("nginx-0", None, error="curl: (7) refused")]}, "connectivity"
    )
    assert bad["status"] == "fail" and "curl: (7) refused" in bad["message"]
    assert layers.assess({"svc_probes": []}, "connectivity")["status"] == "error"


def test_proxy_logs_names_the_stale_replica_and_address():
    proxies = [
        {
            "namespace": "web",
            "name": "nginx-0",
            "last_reload": "t0",
            "counts_after_reload": {},
            "stale_addresses": [],
            "upstream_addresses": [],
        },
        {
            "namespace": "web",
            "name": "nginx-1",
            "last_reload": "t0",
            "counts_after_reload": {"connect_refused": 4},
            "stale_addresses": ["10.0.0.4:8080"],
            "upstream_addresses": [
                {"address": "10.0.0.4:8080", "count": 4, "state": "stale", "after_reload": True}
            ],
        },
    ]
    got = layers.assess({"proxies": proxies}, "proxy_logs")
    assert got["status"] == "fail"
    assert "web/nginx-1" in got["message"] and "10.0.0.4:8080" in got["message"]
    assert "web/nginx-0" not in got["message"]


def test_errors_only_before_the_last_reload_pass():
    proxies = [
        {
            "namespace": "web",
            "name": "nginx-0",
            "last_reload": "t1",
            "counts_after_reload": {"reload": 1, "info": 3},
            "errors_after_reload": 0,
            "stale_addresses": [],
            "upstream_addresses": [
                {"address": "10.0.0.4:8080", "count": 9, "state": "stale", "after_reload": False}
            ],
        }
    ]
    got = layers.assess({"proxies": proxies}, "proxy_logs")
    assert got["status"] == "pass"
    assert any("before the last reload" in e for e in got["evidence"])


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown layer 'dns'"):
        layers.assess({}, "dns")
