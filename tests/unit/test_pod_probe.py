"""Unit tests of the in-pod HTTP probe (_pod_probe): curl, else wget; the replica's own URL."""

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import _pod_probe
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import NOT_FOUND, FakeExec, done


def test_probe_falls_back_to_wget_and_reads_its_status():
    fake = FakeExec(
        {
            "curl": NOT_FOUND,
            "wget": done(
                1,
                "",
                "  HTTP/1.1 502 Bad Gateway\nwget: server returned error: HTTP/1.1 502 Bad Gateway\n",
            ),
        }
    )
    fact = _pod_probe.probe(fake, "edge", "p-0", "nginx", "http://10.0.0.1/", 2)
    assert fake.calls == ["curl", "wget"]
    assert (fact["tool"], fact["status"], fact["ok"], fact["rc"]) == ("wget", 502, False, 1)


def test_probe_without_any_tool_says_so():
    fact = _pod_probe.probe(
        FakeExec({"curl": NOT_FOUND, "wget": NOT_FOUND}),
        "edge",
        "p-0",
        "nginx",
        "http://10.0.0.1/",
        2,
    )
    assert fact["tool"] is None and fact["status"] is None and not fact["ok"]
    assert fact["error"].startswith(
        "neither curl nor wget can run in container nginx of pod edge/p-0"
    )


def test_probe_curl_connection_refused():
    fake = FakeExec({"curl": done(7, "000 0.000100", "curl: (7) Failed to connect")})
    fact = _pod_probe.probe(fake, "edge", "p-0", "nginx", "http://10.0.0.1/", 2)
    assert (fact["tool"], fact["status"], fact["rc"]) == ("curl", None, 7)
    assert fact["error"] == "curl: (7) Failed to connect" and not fact["ok"]


def test_probe_whose_exec_is_refused_did_not_run():
    fake = FakeExec(
        {
            "curl": K8sError(
                "exec of `curl` in pod edge/p-0: the credentials lack ... (403 Forbidden)", 403
            )
        }
    )
    fact = _pod_probe.probe(fake, "edge", "p-0", "nginx", "http://10.0.0.1/", 2)
    assert fact["ran"] is False and fact["status"] is None and fact["tool"] is None
    assert fact["error"].startswith("could not run the probe: exec of `curl` in pod edge/p-0")


def test_probe_url_is_built_once_for_ipv4_and_ipv6():
    assert _pod_probe.probe_url("10.0.0.7", 80, "health") == "http://10.0.0.7:80/health"
    assert _pod_probe.probe_url("fd00::7", 8080, "/") == "http://[fd00::7]:8080/"


def pod(ip="10.0.0.7", phase="Running"):
    return {
        "metadata": {"namespace": "edge", "name": "p-0"},
        "status": {"podIP": ip, "phase": phase},
    }


@pytest.mark.parametrize(
    "raw, port, dump, expect",
    [
        (pod(), 8080, None, ("http://10.0.0.7:8080/x", None)),
        (pod(), None, "http { server { listen 81; listen 82; } }", ("http://10.0.0.7:81/x", None)),
        (pod(), None, "http { }", (None, "nginx listens on no port")),
        (pod(ip=None, phase="Pending"), 80, None, (None, "pod has no IP (phase Pending)")),
    ],
)
def test_self_url_from_the_pod_ip_and_the_first_listen_port(raw, port, dump, expect):
    fake = FakeExec({"nginx -T": done(0, dump or "")})
    assert _pod_probe.self_url(NginxAdapter(fake), raw, "nginx", port, "x") == expect
    assert fake.calls == (["nginx -T"] if dump else [])
