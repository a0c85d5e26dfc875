# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for verdict.decide: one realistic fact set per cause, plus the edge cases."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os

import pytest

import shapes

from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import (
    build_index,
    correlate_addresses,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import summarize
from ansible_collections.badgateway.k8s.plugins.module_utils.verdict import (
    CAUSES,
    RECOMMENDATIONS,
    decide,
)

RELOAD = "2026-11-25T01:00:00Z"
OLD_IP, NEW_IP = "10.244.1.3", "10.244.1.7"


def container(state="running", reason=None, restarts=0, last_state=None, port=8080):
    return {
        "name": "app",
        "ready": state == "running" and reason is None,
        "started": True,
        "restart_count": restarts,
        "state": state,
        "reason": reason,
        "exit_code": None,
        "last_state": last_state,
        "ports": [{"name": "http", "container_port": port, "protocol": "TCP"}],
    }


def pod(
    name, ip, ready=True, phase="Running", restarts=0, problems=(), deleting=False, last_state=None
):
    return {
        "namespace": "open-webui",
        "name": name,
        "uid": "uid-" + name,
        "phase": phase,
        "ready": ready,
        "pod_ip": ip,
        "pod_ips": [ip],
        "node": "node-1",
        "labels": {"app": "open-webui"},
        "creation_timestamp": "2026-11-25T01:30:00Z",
        "deletion_timestamp": "2026-11-25T02:20:00Z" if deleting else None,
        "restarts": restarts,
        "containers": [container(restarts=restarts, last_state=last_state)],
        "problems": list(problems),
    }


def endpoint(ip, ready=True, terminating=False, name="open-webui-0", port=8080):
    return {
        "address": "%s:%d" % (ip, port),
        "ip": ip,
        "port": port,
        "port_name": "http",
        "ready": ready,
        "serving": ready,
        "terminating": terminating,
        "target": "open-webui/" + name,
        "slice": "open-webui-x7k2p",
    }


def service(endpoints, selector_matches=True, port_mismatches=(), exists=True):
    return {
        "namespace": "open-webui",
        "name": "open-webui",
        "exists": exists,
        "type": "ClusterIP",
        "cluster_ip": "10.96.12.34",
        "headless": False,
        "selector": {"app": "open-webui"},
        "ports": [
            {
                "name": "http",
                "port": 8080,
                "protocol": "TCP",
                "target_port": 8080,
                "resolved_target_ports": [],
            }
        ],
        "matching_pods": ["open-webui/open-webui-0"] if selector_matches else [],
        "selector_matches": selector_matches,
        "endpoints": endpoints,
        "ready_addresses": sorted(
            e["address"] for e in endpoints if e["ready"] and not e["terminating"]
        ),
        "not_ready_addresses": sorted(
            e["address"] for e in endpoints if not e["ready"] and not e["terminating"]
        ),
        "terminating_addresses": sorted(e["address"] for e in endpoints if e["terminating"]),
        "port_mismatches": list(port_mismatches),
    }


def dialled(address, state, count=12, after=True, signatures=None, objects=(), port_match=True):
    return {
        "address": address,
        "state": state,
        "objects": list(objects),
        "count": count,
        "count_after_reload": count if after else 0,
        "last_seen": "2026-11-25T02:21:05Z",
        "after_reload": after,
        "port_match": port_match,
        "hints": [],
        "signatures": signatures or {"connect_refused": count},
    }


def proxy(
    name="nginx-0",
    counts_after=None,
    counts=None,
    addresses=(),
    stale=None,
    status_counts=None,
    upstream_status_counts=None,
    errors=(),
    **kw,
):
    counts_after = dict(counts_after or {})
    status_counts = status_counts or {"200": 40}
    kw.setdefault(
        "upstream_hosts",
        [
            shapes.upstream_host(
                "open-webui.open-webui.svc.cluster.local",
                source="upstream",
                service="open-webui/open-webui",
            )
        ],
    )
    return shapes.proxy(
        name,
        "ingress",
        pod_ip="10.244.0.5",
        worker_start_times=[RELOAD],
        last_reload=RELOAD,
        log={
            "lines_read": 100,
            "bytes_read": 20000,
            "truncated": False,
            "since_seconds": None,
            "tail_lines": 5000,
        },
        errors=list(errors),
        errors_after_reload=sum(counts_after.values()),
        counts=dict(counts if counts is not None else counts_after),
        counts_after_reload=counts_after,
        upstream_addresses=list(addresses),
        stale_addresses=list(
            stale
            if stale is not None
            else [a["address"] for a in addresses if a["state"] == "stale" and a["after_reload"]]
        ),
        access={
            "requests": 40,
            "status_counts": status_counts,
            "status_counts_after_reload": status_counts,
            "upstream_status_counts": upstream_status_counts or {},
        },
        **kw,
    )


def probe(name="nginx-0", status=200):
    return shapes.probe(name, "ingress", status, url="http://open-webui.open-webui:8080/")


def healthy_backend():
    return {"pods": [pod("open-webui-0", NEW_IP)], "service": service([endpoint(NEW_IP)])}


def facts_with(proxies, probes=None, **overrides):
    facts = healthy_backend()
    facts.update(
        symptom={"status": 502, "url": "https://chat.example.com/"},
        proxies=proxies,
        probes=probes if probes is not None else [probe()],
        layers=[],
    )
    facts.update(overrides)
    return facts


def stale_entry(count=12, after=True):
    return dialled("%s:8080" % OLD_IP, "stale", count=count, after=after)


def test_stale_upstream_seed_incident():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 12},
                addresses=[stale_entry()],
                status_counts={"200": 2, "502": 12},
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["reload_safe"] is True
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]
    assert verdict["stale_addresses"] == ["10.244.1.3:8080"]
    assert verdict["current_addresses"] == ["10.244.1.7:8080"]
    assert verdict["evidence"][0] == (
        "proxy ingress/nginx-0 dialled 10.244.1.3:8080 (stale: no pod, endpoint or Service "
        "has it) 12 times since its last reload at 2026-11-25T01:00:00Z; last seen "
        "2026-11-25T02:21:05Z"
    )
    assert (
        "Service open-webui/open-webui has ready endpoints 10.244.1.7:8080" in verdict["evidence"]
    )
    for needle in (
        "ingress/nginx-0",
        "10.244.1.3:8080",
        "10.244.1.7:8080",
        "open-webui/open-webui",
    ):
        assert needle in verdict["summary"]
    assert "ingress/nginx-0" in verdict["recommendation"]["fix"]
    assert "ClusterIP" in verdict["recommendation"]["prevention"]
    assert verdict["missing_evidence"] == []


def test_two_replicas_one_stale():
    facts = facts_with(
        [
            proxy("nginx-0", counts_after={"connect_refused": 7}, addresses=[stale_entry(7)]),
            proxy(
                "nginx-1",
                addresses=[dialled("%s:8080" % NEW_IP, "ready_endpoint", count=0, signatures={})],
            ),
        ],
        probes=[probe("nginx-0"), probe("nginx-1")],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]
    assert "replicas not dialling stale addresses: ingress/nginx-1" in verdict["evidence"]
    assert verdict["reload_safe"] is True


def test_errors_before_reload_do_not_make_a_stale_verdict():
    """The replica was reloaded after dialling the old IP: nothing stale any more."""
    facts = facts_with(
        [
            proxy(
                counts={"connect_refused": 12},
                counts_after={},
                addresses=[stale_entry(after=False)],
                stale=[],
            )
        ],
        symptom=None,
    )
    verdict = decide(facts)
    assert verdict["cause"] == "healthy"
    assert verdict["stale_replicas"] == []
    assert verdict["reload_safe"] is False
    assert any("12 before it, fixed by that reload" in e for e in verdict["evidence"])


def test_stale_computed_when_module_gave_no_state():
    """upstream_addresses straight from nginx_log.summarize (no state): classified here."""
    entry = stale_entry()
    del entry["state"]
    facts = facts_with([proxy(counts_after={"connect_refused": 12}, addresses=[entry], stale=[])])
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["stale_addresses"] == ["10.244.1.3:8080"]


def test_stale_with_real_nginx_lines_end_to_end():
    """Real refused lines (fixture) → summarize → correlate → decide."""
    path = os.path.join(os.path.dirname(__file__), "fixtures", "nginx_error.log")
    with open(path, "rb") as handle:
        lines = list(handle)
    summary = summarize(lines)
    ready = endpoint("127.77.0.2", name="web-0")
    # the current pod became Ready after the log's last reload (02:39:50): nginx cannot know it
    backend = {
        "pods": [
            dict(
                pod("web-0", "127.77.0.2"),
                namespace="open-webui",
                creation_timestamp="2026-11-25T02:39:52Z",
                ready_since="2026-11-25T02:39:55Z",
            )
        ],
        "service": service([ready]),
    }
    correlated = correlate_addresses(
        summary["upstream_addresses"], build_index(backend["service"], backend["pods"])
    )
    replica = proxy(
        counts_after=summary["counts_after_reload"],
        counts=summary["counts"],
        addresses=correlated["upstream_addresses"],
        stale=correlated["stale_addresses"],
        errors=summary["errors"],
    )
    replica["last_reload"] = summary["reload_time"]
    facts = dict(backend, proxies=[replica], probes=[probe()], symptom=None)
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    # only 127.77.0.3:8081 was dialled after the last reload in that log
    assert verdict["stale_addresses"] == ["127.77.0.3:8081"]
    assert verdict["current_addresses"] == ["127.77.0.2:8080"]
    assert verdict["reload_safe"] is True


def test_no_endpoints():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 30},
                addresses=[dialled("10.96.12.34:8080", "cluster_ip", 30)],
            )
        ],
        pods=[],
        service=service([], selector_matches=False),
        probes=[probe(status=502)],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "no_endpoints"
    assert verdict["reload_safe"] is False
    assert any("matches no pod" in e for e in verdict["evidence"])


def test_backend_not_ready():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 5},
                addresses=[dialled("10.96.12.34:8080", "cluster_ip", 5)],
            )
        ],
        pods=[pod("open-webui-0", NEW_IP, ready=False)],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_not_ready"
    assert any("open-webui/open-webui-0" in e for e in verdict["evidence"])


def test_backend_down():
    last = {
        "state": "terminated",
        "reason": "OOMKilled",
        "exit_code": 137,
        "finished_at": "2026-11-25T02:19:00Z",
    }
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 9},
                addresses=[dialled("%s:8080" % NEW_IP, "not_ready_endpoint", 9)],
            )
        ],
        pods=[
            pod(
                "open-webui-0",
                NEW_IP,
                ready=False,
                restarts=6,
                problems=["container app: CrashLoopBackOff", "OOMKilled (exit 137)"],
                last_state=last,
            )
        ],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_down"
    assert any("CrashLoopBackOff" in e for e in verdict["evidence"])
    assert any("OOMKilled exit 137" in e for e in verdict["evidence"])


def test_stale_and_backend_down_prefers_the_backend_and_no_reload():
    facts = facts_with(
        [proxy(counts_after={"connect_refused": 9}, addresses=[stale_entry(9)])],
        pods=[
            pod(
                "open-webui-0",
                NEW_IP,
                ready=False,
                restarts=6,
                problems=["container app: CrashLoopBackOff"],
            )
        ],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_down"
    assert verdict["reload_safe"] is False
    assert "stale_upstream" in verdict["candidates"]
    assert any(
        e.startswith("also: replicas ingress/nginx-0 dial stale") for e in verdict["evidence"]
    )


def test_port_mismatch():
    mismatch = {"port": 8080, "target_port": 8081, "pods_without_it": ["open-webui/open-webui-0"]}
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 4},
                addresses=[
                    dialled(
                        "%s:8081" % NEW_IP,
                        "pod_ip",
                        4,
                        port_match=False,
                        objects=["Pod open-webui/open-webui-0"],
                    )
                ],
            )
        ],
        service=service([endpoint(NEW_IP, port=8081)], port_mismatches=[mismatch]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "port_mismatch"
    assert any("targets 8081" in e for e in verdict["evidence"])
    assert any("(wrong port)" in e for e in verdict["evidence"])


def test_port_mismatch_refused_on_ready_endpoint():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 4},
                addresses=[dialled("%s:8080" % NEW_IP, "ready_endpoint", 4)],
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "port_mismatch"
    assert "nothing listens on that port" in verdict["evidence"][0]


def test_dns_failure():
    err = {
        "signature": "dns_not_found",
        "level": "error",
        "after_reload": True,
        "message": "open-webui.default.svc.cluster.local could not be resolved (3: Host not found)",
        "upstream": None,
    }
    facts = facts_with([proxy(counts_after={"dns_not_found": 3}, errors=[err])])
    verdict = decide(facts)
    assert verdict["cause"] == "dns_failure"
    assert any("could not be resolved" in e for e in verdict["evidence"])


def test_backend_crash():
    last = {
        "state": "terminated",
        "reason": "OOMKilled",
        "exit_code": 137,
        "finished_at": "2026-11-25T02:21:04Z",
    }
    facts = facts_with(
        [
            proxy(
                counts_after={"premature_close": 3},
                addresses=[
                    dialled(
                        "%s:8080" % NEW_IP, "ready_endpoint", 3, signatures={"premature_close": 3}
                    )
                ],
            )
        ],
        pods=[pod("open-webui-0", NEW_IP, restarts=2, last_state=last)],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_crash"
    assert any("restarted 2 times" in e for e in verdict["evidence"])


def test_keepalive_mismatch():
    facts = facts_with(
        [
            proxy(
                counts_after={"premature_close": 2},
                addresses=[
                    dialled(
                        "%s:8080" % NEW_IP, "ready_endpoint", 2, signatures={"premature_close": 2}
                    )
                ],
                status_counts={"200": 998, "502": 2},
                upstream_keepalive=[
                    {"upstream": "open-webui", "keepalive": 16, "keepalive_timeout": "60s"}
                ],
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "keepalive_mismatch"
    assert any("2 of 1000 requests got 502" in e for e in verdict["evidence"])
    assert any("keep-alive" in m for m in verdict["missing_evidence"])


def test_rollout_race():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 3},
                addresses=[dialled("10.244.1.9:8080", "terminating_endpoint", 3)],
            )
        ],
        pods=[pod("open-webui-0", NEW_IP), pod("open-webui-1", "10.244.1.9", deleting=True)],
        service=service(
            [
                endpoint(NEW_IP),
                endpoint("10.244.1.9", ready=False, terminating=True, name="open-webui-1"),
            ]
        ),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "rollout_race"
    assert any("terminating endpoint" in e for e in verdict["evidence"])


def test_stale_during_a_rollout_is_not_guessed():
    facts = facts_with(
        [proxy(counts_after={"connect_refused": 3}, addresses=[stale_entry(3)])],
        pods=[pod("open-webui-0", NEW_IP), pod("open-webui-1", "10.244.1.9", deleting=True)],
        service=service(
            [
                endpoint(NEW_IP),
                endpoint("10.244.1.9", ready=False, terminating=True, name="open-webui-1"),
            ]
        ),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "unknown"
    assert verdict["candidates"] == ["rollout_race", "stale_upstream"]
    assert verdict["reload_safe"] is False
    assert any("re-run when it has finished" in m for m in verdict["missing_evidence"])
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]


def test_header_too_big():
    facts = facts_with(
        [
            proxy(
                counts_after={"header_too_big": 5},
                addresses=[
                    dialled(
                        "%s:8080" % NEW_IP, "ready_endpoint", 5, signatures={"header_too_big": 5}
                    )
                ],
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "header_too_big"
    assert "proxy_buffer_size" in verdict["recommendation"]["fix"]


def test_protocol_mismatch():
    facts = facts_with(
        [
            proxy(
                counts_after={"ssl_handshake": 5},
                addresses=[
                    dialled(
                        "%s:8080" % NEW_IP, "ready_endpoint", 5, signatures={"ssl_handshake": 5}
                    )
                ],
            )
        ]
    )
    assert decide(facts)["cause"] == "protocol_mismatch"


def test_network_blocked():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_timeout": 5},
                addresses=[
                    dialled(
                        "%s:8080" % NEW_IP, "ready_endpoint", 5, signatures={"connect_timeout": 5}
                    )
                ],
            )
        ],
        probes=[probe(status=None)],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "network_blocked"
    assert any("NetworkPolicies" in m for m in verdict["missing_evidence"])


def test_stale_with_timeouts_is_stale_not_blocked():
    entry = stale_entry(5)
    entry["signatures"] = {"connect_timeout": 5}
    facts = facts_with([proxy(counts_after={"connect_timeout": 5}, addresses=[entry])])
    assert decide(facts)["cause"] == "stale_upstream"


def test_backend_502():
    facts = facts_with(
        [proxy(status_counts={"200": 10, "502": 5}, upstream_status_counts={"200": 10, "502": 5})],
        probes=[probe(status=502)],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_502"
    assert any("$upstream_status" in e for e in verdict["evidence"])


def test_healthy():
    facts = facts_with([proxy(addresses=[])], symptom={"status": 200, "url": "https://x/"})
    verdict = decide(facts)
    assert verdict["cause"] == "healthy"
    assert verdict["reload_safe"] is False
    assert verdict["candidates"] == []
    assert "healthy" in verdict["summary"]


def test_502_with_no_trace_is_unknown_not_healthy():
    facts = facts_with([proxy(addresses=[])])
    verdict = decide(facts)
    assert verdict["cause"] == "unknown"
    assert any("left no trace" in m for m in verdict["missing_evidence"])


@pytest.mark.parametrize(
    "facts",
    [
        None,
        {},
        [],
        "text",
        {"proxies": None, "service": None, "pods": None},
        {
            "proxies": [
                None,
                3,
                {
                    "name": None,
                    "upstream_addresses": [None, {"address": 5}],
                    "counts_after_reload": {"connect_refused": "x"},
                },
            ]
        },
        {"service": {"ready_addresses": "10.0.0.1:80", "endpoints": "x"}, "pods": {"name": 1}},
        {
            "layers": [{"name": "service", "status": "error", "message": "403 Forbidden"}],
            "errors": {"service": "cannot get services in open-webui"},
        },
    ],
)
def test_missing_or_broken_facts_never_raise(facts):
    verdict = decide(facts)
    assert verdict["cause"] in CAUSES
    assert verdict["reload_safe"] is False
    assert "could not read the facts" not in verdict["summary"]  # no safety-net fallback
    assert set(verdict) == {
        "cause",
        "summary",
        "evidence",
        "recommendation",
        "missing_evidence",
        "candidates",
        "stale_replicas",
        "proxy_kinds",
        "stale_addresses",
        "current_addresses",
        "reload_safe",
        "unchecked",
        "warnings",
        "endpoints_since",
        "hypotheses",
    }


def test_failed_layer_is_named_in_missing_evidence():
    facts = facts_with(
        [proxy(counts_after={"connect_refused": 12}, addresses=[stale_entry()])],
        service=None,
        layers=[
            {"name": "service", "status": "error", "message": "Could not be checked: 403 Forbidden"}
        ],
    )
    verdict = decide(facts)
    # without the Service the stale address cannot be confirmed against ready endpoints
    assert verdict["cause"] == "stale_upstream"
    assert verdict["reload_safe"] is False
    assert any("403 Forbidden" in m for m in verdict["missing_evidence"])
    assert any("service_info" in m for m in verdict["missing_evidence"])


def test_broken_config_makes_reload_unsafe():
    """A stale replica whose config on disk does not load (a controller's bad snippet): a
    reload would keep the old config, so the cause is config_not_applied, never a reload."""
    replica = proxy(counts_after={"connect_refused": 12}, addresses=[stale_entry()])
    replica["config_ok"] = False
    replica["problems"] = ['nginx -T failed: unknown directive "bad" in /etc/nginx/conf.d/h.conf:9']
    verdict = decide(facts_with([replica]))
    assert verdict["cause"] == "config_not_applied"
    assert verdict["reload_safe"] is False and verdict["stale_replicas"] == []
    assert any(
        "config on disk does not load (nginx -T failed: unknown directive" in line
        and "a reload would keep the old config, which dials 10.244.1.3:8080" in line
        for line in verdict["evidence"]
    )


def test_decide_does_not_modify_its_input():
    facts = facts_with([proxy(counts_after={"connect_refused": 12}, addresses=[stale_entry()])])
    before = copy.deepcopy(facts)
    decide(facts)
    assert facts == before


def test_every_cause_has_a_recommendation():
    assert set(RECOMMENDATIONS) == set(CAUSES)


def test_no_ready_endpoint_beats_a_502_without_log_lines():
    """502s counted in the access log but their error lines missed (e.g. placed before the
    reload by an imprecise reload time): no ready endpoint still explains them."""
    facts = facts_with(
        [proxy(status_counts={"502": 3})],
        pods=[pod("open-webui-0", NEW_IP, ready=False)],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_not_ready"
    assert verdict["candidates"] == ["backend_502"]


def test_report_fixture_facts():
    """The facts fixture the report renderer uses (lab shapes, two replicas, one stale)."""
    path = os.path.join(os.path.dirname(__file__), "fixtures", "facts_stale_upstream.json")
    with open(path) as handle:
        facts = json.load(handle)
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["stale_replicas"] == ["web/nginx-0"]
    assert verdict["reload_safe"] is True
    assert (
        "replica web/nginx-0 (stale) answered 502 on its own address http://127.1.0.10:80/"
        in verdict["evidence"]
    )
    assert (
        "replica web/nginx-1 (not stale) answered 200 on its own address "
        "http://127.1.0.11:80/" in verdict["evidence"]
    )


def test_unknown_still_reports_what_was_logged():
    facts = facts_with(
        [proxy(counts_after={"no_live_upstreams": 4, "reload": 1}, status_counts={"502": 4})]
    )
    verdict = decide(facts)
    # "no live upstreams" is secondary: the proxy answers 502 itself after marking its servers
    # failed; no server answered 502 ($upstream_status), so it is not backend_502, and the
    # primary failure is outside the log read.
    assert verdict["cause"] == "unknown"
    assert any("no_live_upstreams x4" in line for line in verdict["evidence"])
    assert any("widen since_seconds/tail_lines" in m for m in verdict["missing_evidence"])
    [hyp] = [h for h in verdict["hypotheses"] if h["cause"] == "backend_502"]
    assert hyp["fit"] == "ruled_out"
    # the same 502s with a server answering 502 itself ($upstream_status) are backend_502
    facts["proxies"] = [
        proxy(
            counts_after={"server_disabled": 1, "no_live_upstreams": 3},
            status_counts={"502": 4},
            upstream_status_counts={"502": 2},
        )
    ]
    assert decide(facts)["cause"] == "backend_502"


def test_secondary_lines_since_the_reload_are_not_healthy():
    facts = facts_with(
        [proxy(counts_after={"no_live_upstreams": 2}, status_counts={"200": 3})],
        symptom=None,
    )
    assert decide(facts)["cause"] != "healthy"


def _timed_out(phase):
    """A replica that logged nginx's own 110 line in ``phase`` towards the ready endpoint."""
    line = (
        "2026/11/25 02:39:42 [error] 469#469: *21 upstream timed out (110: Connection timed "
        'out) while %s, client: 10.244.0.1, server: _, request: "GET / HTTP/1.1", '
        'upstream: "http://%s:8080/", host: "chat.example.com"' % (phase, NEW_IP)
    )
    access = '10.244.0.1 - - [25/Nov/2026:02:39:42 +0000] "GET / HTTP/1.1" 504 167 "-" "curl/8"'
    summary = summarize(
        ["2026/11/25 02:30:00 [notice] 1#1: start worker processes"] + [line, access] * 3
    )
    backend = healthy_backend()
    correlated = correlate_addresses(
        summary["upstream_addresses"], build_index(backend["service"], backend["pods"])
    )
    replica = proxy(
        counts_after=summary["counts_after_reload"],
        counts=summary["counts"],
        addresses=correlated["upstream_addresses"],
        stale=[],
        status_counts=summary["access"]["status_counts"],
        errors=summary["errors"],
    )
    replica["last_reload"] = summary["reload_time"]
    return replica


def test_upstream_timeout_a_ready_backend_answers_too_slowly():
    """Real nginx lines: connected, then 110 while reading the response header, 504."""
    verdict = decide(
        facts_with(
            [_timed_out("reading response header from upstream")],
            symptom={"status": 504, "url": "https://chat.example.com/"},
        )
    )
    assert verdict["cause"] == "upstream_timeout", verdict
    assert verdict["candidates"] == [] and verdict["reload_safe"] is False
    assert verdict["summary"].startswith("upstream_timeout: the backend did not answer within")
    assert "proxy ingress/nginx-0 answered 504 3 times since its last reload" in verdict["evidence"]
    assert any(
        "%s:8080 (a ready endpoint" % NEW_IP in e and "connected, then no answer" in e
        for e in verdict["evidence"]
    )
    assert any("while reading response header from upstream" in e for e in verdict["evidence"])
    assert verdict["recommendation"]["fix"].startswith("Find why the backend answers so slowly")


def test_a_timeout_while_connecting_is_network_blocked_not_upstream_timeout():
    """The same 110, logged while connecting: no connection was made, nothing was slow."""
    verdict = decide(facts_with([_timed_out("connecting to upstream")]))
    assert verdict["cause"] == "network_blocked"
    assert "upstream_timeout" not in verdict["candidates"]


def test_timeouts_reading_and_connecting_together_are_not_guessed():
    reading = _timed_out("reading response header from upstream")
    connecting = _timed_out("connecting to upstream")
    connecting["name"] = "nginx-1"
    verdict = decide(facts_with([reading, connecting]))
    assert verdict["cause"] == "unknown"
    assert verdict["candidates"] == ["network_blocked", "upstream_timeout"]
    assert any(
        m.startswith("upstream_timeout vs the others: the backend's answer time")
        for m in verdict["missing_evidence"]
    )


def test_a_timeout_from_a_backend_without_ready_endpoints_is_not_upstream_timeout():
    facts = facts_with(
        [_timed_out("reading response header from upstream")],
        pods=[pod("open-webui-0", NEW_IP, ready=False)],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_not_ready"
    assert verdict["candidates"] == ["upstream_timeout"]


def test_external_upstream_is_not_a_stale_verdict():
    """A failing host outside the cluster must not be taken for a replaced pod."""
    entry = dialled("140.82.112.3:443", "external", 6)
    facts = facts_with([proxy(counts_after={"connect_refused": 6}, addresses=[entry])])
    verdict = decide(facts)
    assert verdict["cause"] != "stale_upstream"
    assert verdict["stale_replicas"] == [] and verdict["reload_safe"] is False
    # the same address from a summary without state is classified against the facts
    del entry["state"]
    assert (
        decide(
            facts_with([proxy(counts_after={"connect_refused": 6}, addresses=[entry], stale=[])])
        )["stale_replicas"]
        == []
    )


def test_crashlooping_backend_without_ready_endpoints_is_down_not_crash():
    facts = facts_with(
        [
            proxy(
                counts_after={"premature_close": 2, "connect_refused": 5},
                addresses=[dialled("%s:8080" % NEW_IP, "not_ready_endpoint", 7)],
            )
        ],
        pods=[
            pod(
                "open-webui-0",
                NEW_IP,
                ready=False,
                restarts=4,
                problems=["container app: CrashLoopBackOff"],
            )
        ],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_down"
    assert verdict["candidates"] == ["backend_crash"]


def test_502s_before_the_last_reload_do_not_outlive_it():
    """Access counts after the reload win, even when empty (no request since the reload)."""
    for after in ({"200": 3}, {}):
        fixed = proxy(counts={"connect_refused": 3}, status_counts={"200": 2, "502": 3})
        fixed["access"]["status_counts_after_reload"] = after
        verdict = decide(facts_with([fixed], symptom={"status": 200, "url": "https://x/"}))
        assert verdict["cause"] == "healthy", verdict
        assert any("3 before it, fixed by that reload" in e for e in verdict["evidence"])
    broken = proxy(status_counts={"200": 2, "502": 3})
    broken["access"]["status_counts_after_reload"] = {"502": 3}
    assert decide(facts_with([broken]))["cause"] == "backend_502"


def _closing_proxy(keepalive):
    replica = proxy(
        counts_after={"reset": 2},
        addresses=[dialled("%s:8080" % NEW_IP, "ready_endpoint", 2, signatures={"reset": 2})],
        status_counts={"200": 6, "502": 2},
    )
    replica["upstream_keepalive"] = (
        [{"upstream": "open-webui", "keepalive": 16, "keepalive_timeout": "60s"}]
        if keepalive
        else []
    )
    return replica


def test_keepalive_mismatch_names_the_proxys_upstream_keepalive():
    verdict = decide(facts_with([_closing_proxy(True)]))
    assert verdict["cause"] == "keepalive_mismatch"
    assert any(
        "upstream open-webui (keepalive 16, keepalive_timeout 60s)" in e
        for e in verdict["evidence"]
    )
    assert (
        "open-webui/open-webui-0 are healthy, with no restart when the connections broke"
        in verdict["summary"]
    )


def test_resets_without_upstream_keepalive_are_not_called_a_keepalive_race_for_sure():
    """nginx without upstream keepalive opens a connection per request: nothing idle to race."""
    verdict = decide(facts_with([_closing_proxy(False)]))
    assert verdict["cause"] == "keepalive_mismatch"  # the only candidate, but weak
    assert any("keeps no upstream connection alive" in m for m in verdict["missing_evidence"])
    crashed = facts_with([_closing_proxy(False)], pods=[pod("open-webui-0", NEW_IP, restarts=1)])
    assert decide(crashed)["cause"] == "backend_crash"


def test_backend_down_summary_names_the_crashing_pod_first():
    facts = facts_with(
        [proxy(counts_after={"connect_refused": 3})],
        pods=[
            pod(
                "open-webui-0",
                NEW_IP,
                ready=False,
                restarts=4,
                problems=["container app: CrashLoopBackOff", "OOMKilled (exit 137)"],
            )
        ],
        service=service([]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_down"
    assert verdict["summary"].startswith(
        "backend_down: pod open-webui/open-webui-0 (container app: CrashLoopBackOff"
    )
    assert "OOMKilled" in verdict["summary"]


# ---------------------------------------------------------------- the reload hypothesis, per replica
def stale_proxy(name="nginx-0", **kw):
    return proxy(
        name,
        counts_after={"connect_refused": 12},
        addresses=[dialled(OLD_IP + ":8080", "stale")],
        status_counts={"502": 12},
        **kw,
    )


def self_probe(name, status):
    return shapes.probe(name, "ingress", status, url="http://10.244.0.5:80/")


def test_a_stale_replica_that_answers_now_is_not_reloaded():
    """It dialled the vanished address since its last reload, but its own address answers 200
    now (resolver + variable moved on, or a peer answers): a reload changes nothing it needs."""
    facts = facts_with([stale_proxy()], symptom=None, self_probes=[self_probe("nginx-0", 200)])
    verdict = decide(facts)
    assert verdict["cause"] == "healthy"
    assert verdict["stale_replicas"] == [] and verdict["reload_safe"] is False
    assert any("answered 200 on its own address" in w for w in verdict["warnings"])
    # the same replica failing now is the seed
    facts["self_probes"] = [self_probe("nginx-0", 502)]
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream" and verdict["reload_safe"] is True


def test_only_the_failing_one_of_two_stale_replicas_is_reloaded():
    facts = facts_with(
        [stale_proxy("nginx-0"), stale_proxy("nginx-1")],
        self_probes=[self_probe("nginx-0", 502), self_probe("nginx-1", 200)],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]
    assert any("ingress/nginx-1" in w for w in verdict["warnings"])


def test_runtime_resolution_without_a_self_probe_is_not_a_reload():
    replica = stale_proxy()
    replica["upstream_hosts"][0]["runtime_resolved"] = True
    verdict = decide(facts_with([replica], self_probes=[]))
    assert verdict["stale_replicas"] == [] and verdict["reload_safe"] is False
    assert any("resolves its upstream at run time" in w for w in verdict["warnings"])


def test_a_service_recreated_after_the_reload_makes_the_reload_warranted_again():
    """The replica reloaded at 02:00, after the pod became Ready (01:30), but the Service was
    deleted and created again at 02:10 (a new ClusterIP): what a reload resolves changed after
    it, so the stale replica is reloaded; the Service's creation bounds endpoints_since."""
    late = stale_proxy()
    late.update(last_reload="2026-11-25T02:00:00Z", worker_start_times=["2026-11-25T02:00:00Z"])
    facts = facts_with([late], self_probes=[self_probe("nginx-0", 502)])
    facts["pods"][0]["ready_since"] = "2026-11-25T01:30:00Z"
    facts["service"]["creation_timestamp"] = "2026-11-25T02:10:00Z"
    verdict = decide(facts)
    assert verdict["endpoints_since"] == "2026-11-25T02:10:00Z"
    assert verdict["cause"] == "stale_upstream" and verdict["stale_replicas"] == ["ingress/nginx-0"]
    # created before the reload: the reload already resolved what is current
    facts["service"]["creation_timestamp"] = "2026-11-25T00:10:00Z"
    verdict = decide(facts)
    assert verdict["endpoints_since"] == "2026-11-25T01:30:00Z"
    assert verdict["stale_replicas"] == []


def test_a_replica_reloaded_after_the_endpoints_appeared_is_not_reloaded_again():
    """The pod became Ready at 01:30 and the replica reloaded at 01:00: a reload is warranted.
    Had it reloaded at 02:00, it resolved the current endpoints then; a reload repeats that."""
    facts = facts_with([stale_proxy()], self_probes=[self_probe("nginx-0", 502)])
    facts["pods"][0]["ready_since"] = "2026-11-25T01:30:00Z"
    verdict = decide(facts)
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]
    assert verdict["endpoints_since"] == "2026-11-25T01:30:00Z"
    late = stale_proxy()
    late.update(last_reload="2026-11-25T02:00:00Z", worker_start_times=["2026-11-25T02:00:00Z"])
    facts["proxies"] = [late]
    verdict = decide(facts)
    assert verdict["stale_replicas"] == [] and verdict["reload_safe"] is False
    assert verdict["cause"] != "stale_upstream"
    assert any("after the current endpoints" in w for w in verdict["warnings"])


def close_errors(when):
    return [
        {
            "signature": "reset",
            "time": when,
            "after_reload": True,
            "level": "error",
            "message": "recv() failed (104: Connection reset by peer)",
        }
    ]


def test_a_restart_long_before_the_resets_is_not_their_cause():
    """A crash resets the connections in flight when the process dies; resets an hour later,
    from a pod that has run fine since, are something else (here: the keep-alive race)."""
    last = {"state": "terminated", "reason": "OOMKilled", "exit_code": 137, "finished_at": None}
    replica = proxy(
        counts_after={"reset": 2},
        addresses=[dialled(NEW_IP + ":8080", "ready_endpoint", signatures={"reset": 2})],
        status_counts={"200": 6, "502": 2},
        upstream_keepalive=[{"upstream": "app", "keepalive": 8, "keepalive_timeout": "60s"}],
    )
    for finished, expected in (
        ("2026-11-25T01:59:58Z", "backend_crash"),
        ("2026-11-25T00:58:00Z", "keepalive_mismatch"),
    ):
        replica["errors"] = close_errors("2026-11-25T02:00:01Z")
        facts = facts_with([replica])
        facts["pods"] = [
            pod("open-webui-0", NEW_IP, restarts=1, last_state=dict(last, finished_at=finished))
        ]
        assert decide(facts)["cause"] == expected, finished


def test_a_crashing_pod_beside_ready_ones_is_a_warning_when_nothing_fails():
    crashing = pod(
        "open-webui-1",
        "10.244.1.9",
        ready=False,
        restarts=7,
        problems=["container app: CrashLoopBackOff"],
    )
    crashing["containers"][0].update(state="waiting", reason="CrashLoopBackOff", ready=False)
    facts = facts_with([proxy()], symptom={"status": 200, "url": "https://chat.example.com/"})
    facts["pods"].append(crashing)
    verdict = decide(facts)
    assert verdict["cause"] == "healthy"
    assert any("open-webui-1" in w and "crashing" in w for w in verdict["warnings"])
    # the same pod while the proxy answers 502 with upstream errors stays a lead
    facts.update(symptom={"status": 502, "url": "https://chat.example.com/"})
    assert decide(facts)["cause"] != "healthy"


def test_hypotheses_name_the_evidence_for_and_against():
    """A replica that dialled a vanished address but answers now: stale_upstream is ruled out,
    with the dial as evidence for and the self-probe as evidence against, in the summary too."""
    facts = facts_with([stale_proxy()], symptom=None, self_probes=[self_probe("nginx-0", 200)])
    verdict = decide(facts)
    [stale] = [h for h in verdict["hypotheses"] if h["cause"] == "stale_upstream"]
    assert stale["fit"] == "ruled_out"
    assert any(OLD_IP in line for line in stale["for"])
    assert any("answered 200 on its own address" in line for line in stale["against"])
    assert "Ruled out: stale_upstream (" in verdict["summary"]
    chosen = decide(facts_with([stale_proxy()], self_probes=[self_probe("nginx-0", 502)]))
    assert [h["fit"] for h in chosen["hypotheses"] if h["cause"] == "stale_upstream"] == ["chosen"]


def test_a_headless_name_without_ready_endpoints_is_not_a_dns_failure():
    """nginx's resolver gets NXDOMAIN for a headless Service's name while none of its pods is
    Ready (here: crash-looping): the endpoints are the finding, the resolver works."""
    name = "open-webui-headless.open-webui.svc.cluster.local"
    nxdomain = {
        "signature": "dns_not_found",
        "name": name,
        "after_reload": True,
        "time": "2026-11-25T02:00:00Z",
        "level": "error",
        "message": "%s could not be resolved (3: Host not found)" % name,
    }
    down = pod(
        "open-webui-0",
        NEW_IP,
        ready=False,
        restarts=4,
        problems=["container app: CrashLoopBackOff"],
    )
    down["containers"][0].update(state="waiting", reason="CrashLoopBackOff", ready=False)
    facts = facts_with(
        [proxy(counts_after={"dns_not_found": 3}, errors=[nxdomain], status_counts={"502": 3})],
        pods=[down],
        service=service([endpoint(NEW_IP, ready=False)]),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "backend_down"
    [dns] = [h for h in verdict["hypotheses"] if h["cause"] == "dns_failure"]
    assert dns["fit"] == "ruled_out" and "no ready endpoint" in dns["against"][0]
    # with a ready endpoint the same NXDOMAIN is a real DNS failure (e.g. a short name)
    facts.update(pods=[pod("open-webui-0", NEW_IP)], service=service([endpoint(NEW_IP)]))
    assert decide(facts)["cause"] == "dns_failure"


def test_a_crash_loop_caught_running_is_still_down_when_no_endpoint_is_ready():
    """The EndpointSlice (read at one moment) has no address; pod_info, a moment later, caught
    the container in one of its few running seconds. Its history says crash loop: backend_down."""
    last = {"state": "terminated", "reason": "Error", "exit_code": 1, "finished_at": None}
    looping = pod(
        "open-webui-0",
        NEW_IP,
        restarts=4,
        last_state=dict(last, finished_at="2026-11-25T02:00:00Z"),
        problems=[
            "container app: last terminated Error (exit 1) at 2026-11-25T02:00:00Z",
            "container app: restarted 4 times",
        ],
    )
    facts = facts_with(
        [proxy(counts_after={"connect_refused": 3}, status_counts={"502": 3})],
        pods=[looping],
        service=service([]),
    )
    assert decide(facts)["cause"] == "backend_down"


def rendered(*addresses):
    """upstream_hosts of a controller-rendered config on disk: IP literals in upstream {}."""
    hosts = []
    for address in addresses:
        ip, _sep, port = address.rpartition(":")
        hosts.append(
            shapes.upstream_host(
                ip,
                port=int(port),
                source="upstream",
                upstream="shop_8080",
                file="/etc/nginx/conf.d/http.conf:3",
            )
        )
    return hosts


def test_config_not_applied_when_the_config_on_disk_lists_the_stale_address():
    """The workers dial the old IP and the config on disk (re-read now) still lists it: a
    reload re-reads the same stale config, so the cause is config_not_applied, never a reload."""
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 12},
                addresses=[stale_entry()],
                upstream_hosts=rendered("%s:8080" % OLD_IP),
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "config_not_applied"
    assert verdict["reload_safe"] is False
    assert verdict["stale_replicas"] == []
    assert any(
        "config on disk, re-read now, still lists 10.244.1.3:8080 (upstream shop_8080 at "
        "/etc/nginx/conf.d/http.conf:3)" in line
        for line in verdict["evidence"]
    )
    assert "10.244.1.7:8080" in verdict["summary"] and "controller" in verdict["summary"]
    assert "Do not reload" in verdict["recommendation"]["fix"]
    ruled = {h["cause"]: h for h in verdict["hypotheses"]}
    assert ruled["stale_upstream"]["fit"] == "ruled_out"


def test_config_on_disk_current_but_workers_stale_is_a_reload():
    """The contrast: the config on disk lists the current endpoint, the workers dial the old
    one (a failed or skipped reload): stale_upstream, reload safe, and the evidence says why."""
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 12},
                addresses=[stale_entry()],
                upstream_hosts=rendered("%s:8080" % NEW_IP),
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["reload_safe"] is True
    assert verdict["stale_replicas"] == ["ingress/nginx-0"]
    assert any("lists 10.244.1.7:8080" in line for line in verdict["evidence"])
    assert "config on disk already lists the current endpoints" in verdict["summary"]


def test_config_not_applied_on_one_replica_only_holds_that_one():
    """One replica's config is stale on disk, the other's is current and it was reloaded."""
    facts = facts_with(
        [
            proxy(
                "nginx-0",
                counts_after={"connect_refused": 5},
                addresses=[stale_entry(5)],
                upstream_hosts=rendered("%s:8080" % OLD_IP),
            ),
            proxy(
                "nginx-1",
                addresses=[dialled("%s:8080" % NEW_IP, "ready_endpoint", count=0, signatures={})],
                upstream_hosts=rendered("%s:8080" % NEW_IP),
            ),
        ],
        probes=[probe("nginx-0"), probe("nginx-1")],
    )
    verdict = decide(facts)
    assert verdict["cause"] == "config_not_applied"
    assert verdict["reload_safe"] is False
    assert (
        "replicas whose config lists the current endpoints: ingress/nginx-1"
        in (verdict["evidence"])
    )


def test_a_stale_literal_in_a_replica_that_answers_now_is_a_warning():
    """The config on disk lists the old and the new address and nginx fails over: the replica
    answers 200 on its own address; nothing to fix now, the stale line is a warning."""
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 3},
                addresses=[stale_entry(3)],
                upstream_hosts=rendered("%s:8080" % OLD_IP, "%s:8080" % NEW_IP),
                status_counts={"200": 3},
            )
        ],
        symptom={"status": 200, "url": "https://chat.example.com/"},
        self_probes=[shapes.probe("nginx-0", "ingress", 200, url="http://10.244.0.5:80/")],
    )
    verdict = decide(facts)
    assert verdict["cause"] != "config_not_applied"
    assert verdict["reload_safe"] is False
    assert any("re-read the same stale config" in w for w in verdict["warnings"])


def test_without_ready_endpoints_a_stale_config_is_not_the_cause():
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 12},
                addresses=[stale_entry()],
                upstream_hosts=rendered("%s:8080" % OLD_IP),
            )
        ],
        pods=[],
        service=service([], selector_matches=False),
    )
    verdict = decide(facts)
    assert verdict["cause"] == "no_endpoints"
    assert verdict["reload_safe"] is False


def test_the_fix_names_the_proxy_kinds_own_commands():
    """A stale HAProxy replica: the same cause, HAProxy's config test, reload and prevention."""
    facts = facts_with(
        [
            proxy(
                counts_after={"connect_refused": 4},
                addresses=[stale_entry(4)],
                kind="haproxy",
                status_counts={"503": 4},
            )
        ]
    )
    verdict = decide(facts)
    assert verdict["cause"] == "stale_upstream" and verdict["reload_safe"] is True
    assert verdict["proxy_kinds"] == ["haproxy"]
    assert "`haproxy -c`" in verdict["recommendation"]["fix"]
    assert "master CLI" in verdict["recommendation"]["fix"]
    assert "`nginx -" not in verdict["recommendation"]["fix"]
    assert "`resolvers`" in verdict["recommendation"]["prevention"]
    assert "haproxy resolved the server's name" in verdict["summary"]
    nginx = decide(
        facts_with(
            [proxy(counts_after={"connect_refused": 4}, addresses=[stale_entry(4)], kind="nginx")]
        )
    )
    assert "`nginx -s reload`" in nginx["recommendation"]["fix"]
    assert nginx["proxy_kinds"] == ["nginx"]
