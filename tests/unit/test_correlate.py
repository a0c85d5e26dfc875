# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for correlate: classify dialled addresses against current cluster facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import (
    build_index,
    classify_address,
    correlate_addresses,
    current_addresses,
    split_address,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    normalize_facts,
    normalize_service,
)


def endpoint(ip, port=8080, ready=True, terminating=False, target=None, slice_="web-abc12"):
    return {
        "address": "%s:%d" % (ip, port),
        "ip": ip,
        "port": port,
        "port_name": "http",
        "ready": ready,
        "serving": ready or terminating,
        "terminating": terminating,
        "target": target,
        "slice": slice_,
    }


def pod(name, ip, ready=True, phase="Running", deleting=False, ports=(8080,)):
    return {
        "namespace": "shop",
        "name": name,
        "uid": "u-" + name,
        "phase": phase,
        "ready": ready,
        "pod_ip": ip,
        "pod_ips": [ip] if ip else [],
        "node": "n1",
        "labels": {"app": "web"},
        "creation_timestamp": "2026-11-25T01:00:00Z",
        "deletion_timestamp": "2026-11-25T02:00:00Z" if deleting else None,
        "restarts": 0,
        "containers": [
            {
                "name": "app",
                "ready": ready,
                "started": True,
                "restart_count": 0,
                "state": "running",
                "reason": None,
                "exit_code": None,
                "last_state": None,
                "ports": [{"name": "http", "container_port": p, "protocol": "TCP"} for p in ports],
            }
        ],
        "problems": [],
    }


SERVICE = {
    "namespace": "shop",
    "name": "web",
    "exists": True,
    "type": "ClusterIP",
    "cluster_ip": "10.96.0.20",
    "headless": False,
    "selector": {"app": "web"},
    "ports": [
        {
            "name": "http",
            "port": 80,
            "protocol": "TCP",
            "target_port": "http",
            "resolved_target_ports": [{"pod": "shop/web-1", "port": 8080}],
        }
    ],
    "matching_pods": ["shop/web-1", "shop/web-2", "shop/web-3"],
    "selector_matches": True,
    "endpoints": [
        endpoint("10.244.0.11", target="shop/web-1"),
        endpoint("10.244.0.12", ready=False, target="shop/web-2"),
        endpoint("10.244.0.13", ready=False, terminating=True, target="shop/web-3"),
        endpoint("fd00::14", target="shop/web-4"),
    ],
    "ready_addresses": ["10.244.0.11:8080"],
    "not_ready_addresses": ["10.244.0.12:8080"],
    "terminating_addresses": ["10.244.0.13:8080"],
    "port_mismatches": [],
}
PODS = [
    pod("web-1", "10.244.0.11"),
    pod("web-2", "10.244.0.12", ready=False),
    pod("web-3", "10.244.0.13", deleting=True),
    pod("batch", "10.244.0.30", ports=()),
    pod("done", "10.244.0.31", phase="Succeeded"),
]


@pytest.fixture(name="index")
def fixture_index():
    return build_index(SERVICE, PODS)


@pytest.mark.parametrize(
    "address,state",
    [
        ("10.244.0.11:8080", "ready_endpoint"),
        ("10.244.0.12:8080", "not_ready_endpoint"),
        ("10.244.0.13:8080", "terminating_endpoint"),
        ("10.96.0.20:80", "cluster_ip"),
        ("10.244.0.30:9000", "pod_ip"),
        ("10.244.0.99:8080", "stale"),
        ("[fd00::14]:8080", "ready_endpoint"),
        ("[fd00:0::14]:8080", "ready_endpoint"),
        ("backend_grp", "group_name"),
    ],
)
def test_states(index, address, state):
    assert classify_address(address, index)["state"] == state


def test_objects_name_the_cluster_objects(index):
    found = classify_address("10.244.0.11:8080", index)
    assert found["objects"] == [
        "EndpointSlice shop/web-abc12",
        "Pod shop/web-1",
        "Service shop/web",
    ]
    assert found["port_match"] is True
    assert (found["ip"], found["port"]) == ("10.244.0.11", 8080)


def test_right_pod_wrong_port_is_not_stale(index):
    found = classify_address("10.244.0.11:9090", index)
    assert found["state"] == "pod_ip"
    assert found["port_match"] is False
    assert found["expected_ports"] == [8080]
    assert "port 9090 is not one of its ports (8080)" in found["hints"][0]
    wrong_cluster_port = classify_address("10.96.0.20:8080", index)
    assert wrong_cluster_port["state"] == "cluster_ip"
    assert wrong_cluster_port["port_match"] is False


def test_pod_hints(index):
    assert any("being deleted" in h for h in classify_address("10.244.0.13:8080", index)["hints"])
    assert any("phase Succeeded" in h for h in classify_address("10.244.0.31:8080", index)["hints"])


def test_current_addresses(index):
    assert current_addresses(index) == ["10.244.0.11:8080", "[fd00::14]:8080"]
    assert current_addresses(None) == []


def test_missing_facts_do_not_raise():
    empty = build_index(None, None)
    assert empty["sources"] == {"services": 0, "pods": 0}
    assert classify_address("10.0.0.1:80", empty)["state"] == "stale"
    assert classify_address("10.0.0.1:80", None)["state"] == "stale"
    # Junk reaches build_index only through the normalisers, the one door into the core.
    odd = build_index(
        [
            normalize_service(
                {
                    "namespace": "a",
                    "name": "b",
                    "exists": True,
                    "endpoints": [
                        {
                            "address": "10.0.0.9:80",
                            "ready": False,
                            "target": None,
                        },  # not-ready, no targetRef, no ip
                        "garbage",
                        {"ip": None},
                    ],
                }
            ),
            normalize_service({"exists": False, "name": "gone"}),
        ],
        normalize_facts({"pods": [None, {"name": "x"}]})["pods"],
    )
    assert odd["sources"] == {"services": 1, "pods": 1}
    assert classify_address("10.0.0.9:80", odd)["state"] == "not_ready_endpoint"
    assert classify_address(None, odd)["state"] == "group_name"


def test_split_address():
    assert split_address("10.0.0.1:80") == ("10.0.0.1", 80)
    assert split_address("[fd00::1]:443") == ("fd00::1", 443)
    assert split_address("fd00::1") == ("fd00::1", None)
    assert split_address("10.0.0.1") == ("10.0.0.1", None)
    assert split_address("web.shop:80") == (None, 80)


def test_correlate_addresses_marks_stale_only_after_reload(index):
    summary = [
        {
            "address": "10.244.0.99:8080",
            "count": 12,
            "count_after_reload": 12,
            "last_seen": "2026-11-25T02:21:05Z",
            "after_reload": True,
            "signatures": {"connect_refused": 12},
        },
        {
            "address": "10.244.0.98:8080",
            "count": 3,
            "count_after_reload": 0,
            "last_seen": "2026-11-25T01:00:00Z",
            "after_reload": False,
            "signatures": {"connect_refused": 3},
        },
        {"address": "10.244.0.11:8080", "count": 1, "count_after_reload": 1, "after_reload": True},
        "garbage",
    ]
    result = correlate_addresses(summary, index)
    assert result["stale_addresses"] == ["10.244.0.99:8080"]
    states = {e["address"]: e["state"] for e in result["upstream_addresses"]}
    assert states == {
        "10.244.0.11:8080": "ready_endpoint",
        "10.244.0.98:8080": "stale",
        "10.244.0.99:8080": "stale",
    }
    assert correlate_addresses(None, index) == {"upstream_addresses": [], "stale_addresses": []}


def test_an_address_reused_by_a_pod_created_after_the_reload_is_stale():
    """nginx resolved 10.244.0.50 when the app pod had it; a pod of another app created after
    the replica's last reload holds it now: stale (reused), not the other pod's wrong port."""
    other = dict(pod("metrics-0", "10.244.0.50", ports=(9100,)), labels={"app": "metrics"})
    other["creation_timestamp"] = "2026-11-25T02:10:00Z"
    index = build_index(normalize_service(SERVICE), [other])
    dialled = [
        {
            "address": "10.244.0.50:8080",
            "count": 4,
            "count_after_reload": 4,
            "last_seen": "2026-11-25T02:21:05Z",
            "after_reload": True,
            "signatures": {"connect_refused": 4},
        }
    ]
    reused = correlate_addresses(dialled, index, "2026-11-25T02:00:00.123456Z")
    assert reused["stale_addresses"] == ["10.244.0.50:8080"]
    (entry,) = reused["upstream_addresses"]
    assert entry["state"] == "stale" and entry["port_match"] is None
    assert any("reused: Pod shop/metrics-0 holds it now" in h for h in entry["hints"])
    # the same pod created before the reload: nginx may have meant it, a wrong port
    before = correlate_addresses(dialled, index, "2026-11-25T02:30:00Z")
    assert before["stale_addresses"] == []
    assert before["upstream_addresses"][0]["state"] == "pod_ip"
    assert before["upstream_addresses"][0]["port_match"] is False
    # no reload time known: nothing can be told, the address stays the pod's
    unknown = correlate_addresses(dialled, index)
    assert unknown["upstream_addresses"][0]["state"] == "pod_ip"


def test_addresses_outside_the_cluster_ranges_are_external_not_stale(index):
    assert index["networks"] == ["10.244.0.0/16", "10.96.0.0/12", "fd00::/48"]
    public = classify_address("140.82.112.3:443", index)
    assert public["state"] == "external"
    assert "outside every range" in public["hints"][0]
    assert classify_address("192.168.7.9:80", index)["state"] == "external"
    # a replaced pod's old IP, and a recreated Service's old ClusterIP, stay stale
    assert classify_address("10.244.3.200:8080", index)["state"] == "stale"
    assert classify_address("10.100.7.7:80", index)["state"] == "stale"
    assert classify_address("[fd00::99]:8080", index)["state"] == "stale"
