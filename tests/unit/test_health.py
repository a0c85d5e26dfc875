# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One judgement of probes, pods, endpoints and Services (plugins/module_utils/health.py), and
the layers, the verdict and the report agreeing with it."""

import pytest

import shapes

from ansible_collections.badgateway.k8s.plugins.module_utils import (
    facts,
    health,
    layers,
    report_render,
    verdict,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    ERROR_SIGNATURES,
    SIGNATURES,
)


def pod(name, phase="Running", ready=True, problems=(), restarts=0, deleting=None):
    return shapes.pod(
        name,
        phase=phase,
        ready=ready,
        pod_ip="10.0.0.%d" % len(name),
        problems=list(problems),
        restarts=restarts,
        deletion_timestamp=deleting,
    )


PODS = [
    pod("ok"),
    pod("notready", ready=False),
    pod("crashloop", ready=False, problems=["container app: CrashLoopBackOff"], restarts=4),
    pod("pending", phase="Pending", ready=False),
    pod("evicted", phase="Failed", ready=False),
    pod("warned", problems=["container app: waiting"]),
    pod("leaving", deleting="2026-11-25T02:20:00Z"),
]


def service(**kw):
    kw = dict(
        {
            "selector": {"app": "web", "tier": "a"},
            "matching_pods": ["app/ok"],
            "ready_addresses": ["10.0.0.2:8080"],
        },
        **kw,
    )
    return shapes.service(**kw)


@pytest.mark.parametrize(
    "status, gateway, server",
    [
        (200, False, False),
        (404, False, False),
        (500, False, True),
        (502, True, True),
        (503, True, True),
        (504, True, True),
        (None, True, True),
        (0, True, True),
        (True, True, True),
        ("200", True, True),
    ],
)
def test_a_status_is_judged_once(status, gateway, server):
    """A status that is not a number (junk, a boolean) is no answer once normalised."""
    status = facts.normalize_probe({"status": status})["status"]
    assert health.is_gateway_error(status) is gateway
    assert health.is_server_error(status) is server


def test_probe_line_and_ran():
    assert (
        health.probe_line(shapes.probe("p", "ns", 502, url="http://x/"))
        == "ns/p: GET http://x/ -> 502"
    )
    assert (
        health.probe_line(shapes.probe("p", "ns", None, url="http://x/", error="refused"))
        == "ns/p: GET http://x/ -> no answer (refused)"
    )
    assert health.probe_ran(shapes.probe()) and not health.probe_ran(shapes.probe(ran=False))
    # a probe that does not say it ran did not: its outcome is no evidence
    assert not health.probe_ran(facts.normalize_probe({"status": 200}))
    assert (
        health.probe_line(facts.normalize_probe("junk"))
        == "?/?: GET ? -> no answer (unknown error)"
    )


def test_pod_health():
    judged = {p["name"]: health.pod_health(p) for p in PODS}
    assert [n for n, h in judged.items() if h["healthy"]] == ["ok", "leaving"]
    assert [n for n, h in judged.items() if h["crashing"]] == ["crashloop", "pending", "evicted"]
    assert [n for n, h in judged.items() if h["not_ready"]] == ["notready", "crashloop"]
    assert (
        judged["leaving"]["deleting"] == "2026-11-25T02:20:00Z"
        and judged["crashloop"]["restarts"] == 4
    )
    broken = health.pod_health(facts.normalize_pod({"problems": "x", "restarts": "many"}))
    assert broken["problems"] == [] and broken["restarts"] == 0 and not broken["healthy"]


def test_endpoint_state():
    assert health.endpoint_state(shapes.endpoint("10.0.0.1:80")) == "ready"
    assert health.endpoint_state(shapes.endpoint("10.0.0.1:80", ready=False)) == "not_ready"
    assert health.endpoint_state(shapes.endpoint("10.0.0.1:80", terminating=True)) == "terminating"


def test_service_health():
    assert health.service_health(service())["sound"]
    missing = health.service_health(service(exists=False))
    assert not missing["exists"] and missing["problems"] == ["it does not exist"]
    empty = health.service_health(
        service(selector_matches=False, matching_pods=[], ready_addresses=[])
    )
    assert empty["selects_no_pod"] and empty["problems"] == [
        "its selector matches no pod",
        "it has no ready endpoint",
    ]
    ports = health.service_health(
        facts.normalize_service(
            service(
                port_mismatches=[
                    {
                        "port": 80,
                        "target_port": "http",
                        "pods_without_it": ["app/web-0", "app/web-1"],
                    },
                    "junk",
                ]
            )
        )
    )
    assert ports["port_mismatches"] == [
        "port 80 targets http, which pods app/web-0, app/web-1 do not expose"
    ]
    assert ports["problems"] == ports["port_mismatches"] and not ports["sound"]
    assert health.selector_text({"tier": "a", "app": "web"}) == "app=web,tier=a"
    assert health.selector_text(facts.normalize_service({"selector": None})["selector"]) == "(none)"


def test_upstream_errors_are_nginx_logs_error_signatures():
    counts = {sig: 1 for sig in SIGNATURES}
    assert set(health.upstream_errors(counts)) == ERROR_SIGNATURES
    assert health.upstream_errors({"reload": 1, "info": 3, "client_closed": 2}) == {}
    assert (
        health.upstream_errors(
            facts.normalize_proxy({"counts_after_reload": None})["counts_after_reload"]
        )
        == {}
    )


def test_layers_report_and_verdict_judge_pods_alike():
    """The pods the backend_pods layer names, the report marks failed and the verdict counts
    as in trouble are the same ones."""
    layer = layers.assess({"pods": PODS}, "backend_pods")
    named = {p["name"] for p in PODS if "app/%s " % p["name"] in layer["message"]}
    chain = report_render.build_chain({"pods": PODS})
    failed = {node["name"] for node in chain["pods"] if node["status"] == "fail"}
    unhealthy = {p["name"] for p in PODS if not health.pod_health(p)["healthy"]}
    assert named == failed == unhealthy == {"notready", "crashloop", "pending", "evicted", "warned"}
    view = verdict._Facts(facts.normalize_facts({"pods": PODS}))
    assert {line.split()[1] for line in view.crash} == {
        "app/crashloop",
        "app/pending",
        "app/evicted",
    }
    assert view.not_ready_pods == ["pod app/notready", "pod app/crashloop"]
    assert view.deleting == ["pod app/leaving (deleting since 2026-11-25T02:20:00Z)"]


@pytest.mark.parametrize(
    "svc, sound",
    [
        (service(), True),
        (service(exists=False), False),
        (service(selector_matches=False, matching_pods=[], ready_addresses=[]), False),
        (
            service(
                port_mismatches=[{"port": 80, "target_port": 3000, "pods_without_it": ["app/ok"]}]
            ),
            False,
        ),
    ],
)
def test_layers_and_report_judge_a_service_alike(svc, sound):
    layer = layers.assess({"service": svc}, "service")
    node = report_render.build_chain({"service": svc})["service"]
    assert (layer["status"] == "pass") is sound
    assert (node["status"] == "pass") is sound
    if not svc["exists"]:
        assert "Service app/web does not exist" in layer["message"]
        assert node["evidence"] == ["Service app/web does not exist"]
        return
    for problem in health.service_health(svc)["problems"]:
        assert problem in layer["message"] and problem in node["evidence"]


def test_a_reload_marker_is_not_an_upstream_error_anywhere():
    """A replica whose log holds only its (re)load and info lines is clean for all three."""
    proxy = shapes.proxy(
        last_reload="2026-11-25T01:00:00Z",
        counts={"reload": 1, "info": 2},
        counts_after_reload={"reload": 1, "info": 2},
    )
    assert layers.assess({"proxies": [proxy]}, "proxy_logs")["status"] == "pass"
    assert report_render.build_chain({"proxies": [proxy]})["proxies"][0]["status"] == "pass"
    assert (
        verdict._Facts(facts.normalize_facts({"proxies": [proxy]})).replicas[0]["errors_after"] == 0
    )
