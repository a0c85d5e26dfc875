"""facts.normalize_*: the one door into the core makes complete facts of any input."""

import typing as t

import pytest

import shapes

from ansible_collections.badgateway.k8s.plugins.module_utils import facts


@pytest.mark.parametrize(
    "raw", [None, "junk", [], {"pods": {"name": 1}, "service": [], "proxies": "x", "symptom": 3}]
)
def test_a_part_missing_or_of_the_wrong_type_was_not_gathered(raw):
    known = facts.normalize_facts(raw)
    assert set(known) == set(t.get_type_hints(facts.Facts))
    assert all(
        known[part] is None
        for part in ("symptom", "self_probes", "pods", "service", "svc_probes", "probes", "proxies")
    )
    assert known["layers"] == [] and known["errors"] == {}


def test_items_of_the_wrong_type_are_dropped_and_keys_completed():
    known = facts.normalize_facts(
        {
            "pods": [None, 3, {"name": "web-0", "restarts": True, "pod_ips": ["10.0.0.1", 7]}],
            "errors": {"service": "HTTP 403", "pods": ""},
        }
    )
    (pod,) = known["pods"]
    assert set(pod) == set(t.get_type_hints(facts.PodFact))
    assert pod["name"] == "web-0" and pod["namespace"] == "" and pod["uid"] is None
    assert (
        pod["restarts"] == 0 and pod["ready"] is False
    )  # a boolean is no count, a missing flag is false
    assert pod["pod_ips"] == ["10.0.0.1"] and pod["containers"] == [] and pod["labels"] == {}
    assert known["errors"] == {"service": "HTTP 403"}  # an error without a message is no error


def test_nested_shapes_and_counts():
    proxy = facts.normalize_proxy(
        {
            "counts_after_reload": {"connect_refused": 3, "reset": "x", "dns_not_found": False},
            "log": "junk",
            "upstream_addresses": [{"address": "10.0.0.1:80", "count": 2}],
        }
    )
    assert proxy["counts_after_reload"] == {"connect_refused": 3}
    assert proxy["log"] == {
        "lines_read": 0,
        "bytes_read": 0,
        "truncated": False,
        "since_seconds": None,
        "tail_lines": None,
    }
    assert (
        proxy["upstream_addresses"][0]["after_reload"] is False
        and proxy["upstream_addresses"][0]["signatures"] == {}
    )
    assert proxy["access"]["status_counts_after_reload"] == {}


def test_complete_facts_come_out_as_they_went_in():
    for build, normalize in (
        (shapes.proxy, facts.normalize_proxy),
        (shapes.pod, facts.normalize_pod),
        (shapes.service, facts.normalize_service),
        (shapes.probe, facts.normalize_probe),
    ):
        assert normalize(build()) == build()
    assert facts.normalize_probe(shapes.probe(time_total=1))["time_total"] == 1


def test_a_result_missing_its_remediation_has_none():
    result = facts.normalize_result(
        {"verdict": {"cause": "healthy"}, "layers": [{"name": "symptom"}, "x"]}
    )
    assert result["remediation"] is None and result["chain"] is None
    assert result["verdict"]["cause"] == "healthy" and result["verdict"]["evidence"] == []
    assert [layer["name"] for layer in result["layers"]] == ["symptom"]
