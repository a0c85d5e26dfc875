"""Unit tests of the private fact builders (_k8s_facts)."""

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (
    missing_service,
    namespace_service_facts,
    service_facts,
    summarize_endpoints,
    summarize_pod,
)


def raw_pod(
    name,
    labels=None,
    ports=None,
    ready=True,
    phase="Running",
    ip="10.0.0.1",
    status=None,
    deletion=None,
):
    return {
        "metadata": {
            "namespace": "shop",
            "name": name,
            "uid": "u-" + name,
            "labels": labels or {"app": "web"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionTimestamp": deletion,
        },
        "spec": {
            "nodeName": "n1",
            "containers": [
                {
                    "name": "app",
                    "image": "web:1",
                    "ports": ports
                    if ports is not None
                    else [
                        {"name": "http", "containerPort": 8080},
                        {"containerPort": 9090, "protocol": "UDP"},
                    ],
                }
            ],
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                dict(
                    {
                        "name": "app",
                        "ready": ready,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    },
                    **(status or {}),
                )
            ],
        },
    }


def test_summarize_pod_crashloop_and_oom():
    pod = summarize_pod(
        raw_pod(
            "web-0",
            ready=False,
            status={
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "finishedAt": "2026-01-01T00:05:00Z",
                    }
                },
            },
        )
    )
    container = pod["containers"][0]
    assert (container["state"], container["reason"], container["restart_count"]) == (
        "waiting",
        "CrashLoopBackOff",
        4,
    )
    assert container["last_state"] == {
        "state": "terminated",
        "reason": "OOMKilled",
        "exit_code": 137,
        "finished_at": "2026-01-01T00:05:00Z",
    }
    assert pod["restarts"] == 4 and pod["ready"] is False and pod["pod_ips"] == ["10.0.0.1"]
    assert "container app: CrashLoopBackOff" in pod["problems"]
    assert any("OOMKilled (exit 137)" in p for p in pod["problems"])
    assert "not Ready" in pod["problems"]
    assert container["ports"] == [
        {"name": "http", "container_port": 8080, "protocol": "TCP"},
        {"name": None, "container_port": 9090, "protocol": "UDP"},
    ]


def test_summarize_pod_healthy_and_deleting():
    healthy = summarize_pod(raw_pod("web-1"))
    assert healthy["problems"] == [] and healthy["ready"] and healthy["deletion_timestamp"] is None
    deleting = summarize_pod(raw_pod("web-2", deletion="2026-01-01T01:00:00Z"))
    assert deleting["problems"] == ["being deleted (due by 2026-01-01T01:00:00Z)"]
    pending = summarize_pod(
        {"metadata": {"name": "p", "namespace": "shop"}, "status": {"phase": "Pending"}}
    )
    assert pending["problems"] == ["phase Pending"] and pending["containers"] == []


def endpoint_slice(name, endpoints, ports):
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "endpoints": endpoints,
        "ports": ports,
    }


def test_summarize_endpoints_conditions():
    eps = summarize_endpoints(
        [
            endpoint_slice(
                "web-abc",
                [
                    {
                        "addresses": ["10.0.0.1"],
                        "conditions": {},
                        "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "shop"},
                    },
                    {
                        "addresses": ["10.0.0.2"],
                        "conditions": {"ready": False, "terminating": True},
                    },
                    {"addresses": ["fd00::5"], "conditions": {"ready": False}},
                ],
                [{"name": "http", "port": 8080}],
            )
        ]
    )
    by = {e["address"]: e for e in eps}
    assert set(by) == {"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::5]:8080"}
    assert by["10.0.0.1:8080"]["ready"] and by["10.0.0.1:8080"]["serving"]
    assert by["10.0.0.1:8080"]["target"] == "shop/web-0"
    assert by["10.0.0.2:8080"]["terminating"] and by["10.0.0.2:8080"]["target"] is None
    assert not by["[fd00::5]:8080"]["ready"] and not by["[fd00::5]:8080"]["serving"]


def test_service_facts_target_ports_and_mismatch():
    pods = [
        summarize_pod(raw_pod("web-0")),
        summarize_pod(raw_pod("web-1", ports=[{"name": "web", "containerPort": 3000}])),
    ]
    svc = {
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {
            "clusterIP": "10.96.0.5",
            "selector": {"app": "web"},
            "ports": [
                {"name": "a", "port": 80, "targetPort": "http"},
                {"name": "b", "port": 81, "targetPort": 8080},
            ],
        },
    }
    slices = [
        endpoint_slice(
            "web-abc",
            [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
            [{"name": "a", "port": 8080}],
        )
    ]
    fact = service_facts(svc, pods, slices)
    assert fact["cluster_ip"] == "10.96.0.5" and not fact["headless"]
    assert fact["ports"][0]["resolved_target_ports"] == [
        {"pod": "shop/web-0", "port": 8080},
        {"pod": "shop/web-1", "port": None},
    ]
    assert fact["port_mismatches"] == [
        {"port": 80, "target_port": "http", "pods_without_it": ["shop/web-1"]},
        {"port": 81, "target_port": 8080, "pods_without_it": ["shop/web-1"]},
    ]
    assert fact["ready_addresses"] == ["10.0.0.1:8080"]
    assert fact["matching_pods"] == ["shop/web-0", "shop/web-1"] and fact["selector_matches"]
    assert set(missing_service("shop", "x")) == set(fact)


def test_namespace_service_facts_matches_by_selector_and_label():
    pods = [summarize_pod(raw_pod("web-0")), summarize_pod(raw_pod("db-0", labels={"app": "db"}))]
    services = [
        {
            "metadata": {"namespace": "shop", "name": "web"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": []},
        },
        {
            "metadata": {"namespace": "shop", "name": "manual"},
            "spec": {"clusterIP": "10.96.0.9", "ports": []},
        },
    ]
    slices = [endpoint_slice("web-abc", [{"addresses": ["10.0.0.1"]}], [{"port": 8080}])]
    web, manual = namespace_service_facts(services, slices, pods)
    assert web["matching_pods"] == ["shop/web-0"] and web["headless"]
    assert web["ready_addresses"] == ["10.0.0.1:8080"]
    assert manual["matching_pods"] == [] and manual["endpoints"] == []
