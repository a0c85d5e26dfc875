"""Fleet summary: counts per cause, could-not-check targets with one reason each."""

from ansible_collections.badgateway.k8s.plugins.module_utils.fleet import (
    fleet_markdown,
    fleet_summary,
)


def result(cause, errors=None, performed=False):
    return {
        "verdict": {"cause": cause, "summary": "%s summary" % cause, "stale_replicas": []},
        "errors": errors or {},
        "remediation": {"performed": performed, "verified": performed},
    }


def test_counts_and_could_not_check():
    down = "cannot reach the Kubernetes API at https://127.0.0.1:9"
    summary = fleet_summary(
        {
            "b": result("stale_upstream", performed=True),
            "a": result("healthy"),
            "c": result(
                "unknown",
                errors={"service": down, "backend_pods": down, "connectivity": "needs the Service"},
            ),
            "d": None,
            "e": result("healthy"),
        }
    )
    assert summary["targets"] == 5
    assert summary["counts"] == {"could_not_check": 2, "healthy": 2, "stale_upstream": 1}
    assert [r["target"] for r in summary["rows"]] == ["a", "b", "c", "d", "e"]
    reasons = {c["target"]: c["reason"] for c in summary["could_not_check"]}
    assert reasons["c"] == down + "; needs the Service"
    assert "no result" in reasons["d"]
    assert summary["remediated"] == ["b"]


def test_a_cause_found_despite_a_failed_layer_is_kept():
    summary = fleet_summary([("x", result("stale_upstream", errors={"symptom": "url timed out"}))])
    assert summary["counts"] == {"stale_upstream": 1}


def test_markdown_escapes_table_cells():
    md = fleet_markdown(fleet_summary({"a|b": result("healthy")}))
    assert "| a\\|b | - | healthy | no | healthy summary |" in md
    assert md.startswith("# 502 diagnosis: fleet summary")


def test_a_fleet_may_mix_proxy_kinds():
    nginx, haproxy = result("healthy"), result("stale_upstream", performed=True)
    nginx["verdict"]["proxy_kinds"] = ["nginx"]
    haproxy["verdict"]["proxy_kinds"] = ["haproxy"]
    summary = fleet_summary({"web": nginx, "shop": haproxy})
    assert [(r["target"], r["proxy_kinds"]) for r in summary["rows"]] == [
        ("shop", ["haproxy"]),
        ("web", ["nginx"]),
    ]
    md = fleet_markdown(summary)
    assert "| shop | haproxy | stale_upstream | yes |" in md
    assert "| web | nginx | healthy | no |" in md
