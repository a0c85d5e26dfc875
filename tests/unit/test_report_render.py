"""The request chain and the Markdown and HTML reports (plugins/module_utils/report_render.py)."""

import copy
import json
import pathlib
import re
from html.parser import HTMLParser

import jsonschema
import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import layers, report_render
from ansible_collections.badgateway.k8s.plugins.module_utils.report_render import (
    ReportError,
    build_chain,
    to_html,
    to_markdown,
)

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYER_NAMES = ("symptom", "backend_pods", "service", "connectivity", "proxy_logs")


def load(name):
    return json.loads((FIXTURES / name).read_text())


def chain_schema():
    """docs/result.schema.json's chain, as the schema of a document holding only a chain.

    Its $refs point into the result schema (#/properties/chain/$defs/...), so the chain sits at
    the same place here: the one schema in docs/ is what the chains are checked against.
    """
    result_schema = json.loads((ROOT / "docs" / "result.schema.json").read_text())
    return {
        "type": "object",
        "properties": {"chain": result_schema["properties"]["chain"]},
        "required": ["chain"],
    }


@pytest.fixture
def facts():
    return load("facts_stale_upstream.json")


@pytest.fixture
def result():
    return load("result_stale_upstream.json")


def healthy_facts():
    """One replica, reloaded after the backend moved: everything answers."""
    facts = load("facts_stale_upstream.json")
    facts["symptom"]["status"] = 200
    facts["proxies"] = [p for p in facts["proxies"] if p["name"] == "nginx-1"]
    facts["self_probes"] = [p for p in facts["self_probes"] if p["name"] == "nginx-1"]
    facts["svc_probes"] = [p for p in facts["svc_probes"] if p["name"] == "nginx-1"]
    return facts


def result_from(facts, verdict):
    """A result as the role builds it, around the given facts and verdict."""
    return {
        "schema_version": 1,
        "started": "2026-11-25T03:00:00Z",
        "finished": "2026-11-25T03:00:05Z",
        "target": {
            "proxy": "web/app=nginx",
            "service": "app/open-webui",
            "url": facts["symptom"]["url"],
            "inventory_host": "localhost",
        },
        "check_mode": False,
        "verdict": verdict,
        "layers": [layers.assess(facts, name) for name in LAYER_NAMES],
        "remediation": {
            "performed": False,
            "verified": False,
            "url_status_after": None,
            "replicas": [],
            "reason": "the verdict is %s, which a reload does not fix" % verdict["cause"],
        },
        "errors": facts.get("errors") or {},
        "chain": build_chain(facts, verdict),
    }


HEALTHY_VERDICT = {
    "cause": "healthy",
    "summary": "No gateway error now.",
    "evidence": ["web/nginx-1: GET / -> 200"],
    "recommendation": {"fix": "Nothing to do.", "prevention": "-"},
    "stale_replicas": [],
    "reload_safe": False,
}


def link(chain, source, target):
    found = [lk for lk in chain["links"] if lk["from"] == source and lk["to"] == target]
    assert len(found) == 1, "expected one link %s -> %s, got %r" % (source, target, chain["links"])
    return found[0]


def md_cells(line):
    """The cells of a Markdown table row, split on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def md_row(markdown, first, second):
    rows = [md_cells(line) for line in markdown.splitlines() if line.startswith("|")]
    found = [r for r in rows if r[1:3] == [first, second]]
    assert len(found) == 1, "no single table row %s | %s in:\n%s" % (first, second, markdown)
    return found[0]


# --- the chain --------------------------------------------------------------------------------


def test_chain_marks_the_stale_replica_and_its_gone_address(facts):
    chain = build_chain(facts, {"stale_replicas": ["web/nginx-0"]})
    status = {p["name"]: p["status"] for p in chain["proxies"]}
    assert status == {"nginx-0": "fail", "nginx-1": "pass"}
    assert [s["address"] for s in chain["stale"]] == ["127.1.1.2:8080"]
    assert chain["stale"][0]["dialled_by"] == ["web/nginx-0"]
    gone = link(chain, "proxy:web/nginx-0", "stale:127.1.1.2:8080")
    assert gone["status"] == "fail"
    assert "127.1.1.2:8080" in gone["evidence"][0] and "127.1.1.3:8080" in gone["evidence"][0]
    # nginx-1 was reloaded after the move: it dialled the old address only before its reload.
    assert not [
        lk
        for lk in chain["links"]
        if lk["from"] == "proxy:web/nginx-1" and lk["to"].startswith("stale:")
    ]
    assert link(chain, "client", "proxy:web/nginx-0")["status"] == "fail"
    assert link(chain, "client", "proxy:web/nginx-1")["status"] == "pass"
    # The Service answers from inside both pods; for nginx-0 the evidence says nginx dials elsewhere.
    via = link(chain, "proxy:web/nginx-0", "service:app/open-webui")
    assert via["status"] == "pass" and "dials 127.1.1.2:8080 instead" in via["evidence"][1]
    assert link(chain, "service:app/open-webui", "endpoint:127.1.1.3:8080")["status"] == "pass"
    assert link(chain, "endpoint:127.1.1.3:8080", "pod:app/open-webui-0")["status"] == "pass"
    assert chain["client"] == {
        "id": "client",
        "url": "http://127.0.0.1:30080/",
        "http_status": 502,
        "status": "fail",
        "evidence": ["GET http://127.0.0.1:30080/ from the controller -> 502"],
    }


def test_the_verdicts_stale_replicas_fail_even_without_their_own_stale_addresses(facts):
    chain = build_chain(facts, {"stale_replicas": ["web/nginx-1"]})
    assert {p["name"]: p["status"] for p in chain["proxies"]}["nginx-1"] == "fail"


def test_an_endpoint_whose_ip_is_not_its_pods_fails(facts):
    facts["service"]["endpoints"][0]["address"] = "127.1.1.9:8080"
    chain = build_chain(facts)
    bad = link(chain, "endpoint:127.1.1.9:8080", "pod:app/open-webui-0")
    assert bad["status"] == "fail"
    assert "the endpoint's IP 127.1.1.9 is not the pod's IP 127.1.1.3" in bad["evidence"]


def test_not_ready_and_terminating_endpoints_fail(facts):
    facts["service"]["endpoints"][0].update(ready=False, terminating=True)
    facts["pods"][0].update(ready=False, problems=["container open-webui: CrashLoopBackOff"])
    chain = build_chain(facts)
    assert link(chain, "service:app/open-webui", "endpoint:127.1.1.3:8080")["status"] == "fail"
    assert link(chain, "endpoint:127.1.1.3:8080", "pod:app/open-webui-0")["status"] == "fail"
    assert "container open-webui: CrashLoopBackOff" in chain["pods"][0]["evidence"]


def test_numbers_sort_by_value_and_pods_are_drawn_in_their_endpoints_order(facts):
    pod, ep = facts["pods"][0], facts["service"]["endpoints"][0]
    facts["pods"], facts["service"]["endpoints"] = [], []
    for index, ip in ((2, "127.1.2.30"), (10, "127.1.2.4"), (1, "127.1.2.100")):
        facts["pods"].append(dict(pod, name="web-%d" % index, pod_ip=ip))
        facts["service"]["endpoints"].append(
            dict(ep, address=ip + ":8080", ip=ip, target="app/web-%d" % index)
        )
    chain = build_chain(facts)
    assert [p["name"] for p in chain["pods"]] == ["web-1", "web-2", "web-10"]
    assert [e["address"] for e in chain["endpoints"]] == [
        "127.1.2.4:8080",
        "127.1.2.30:8080",
        "127.1.2.100:8080",
    ]
    result = load("result_stale_upstream.json")
    result["chain"] = chain
    svg = re.search(r"<svg.*</svg>", to_html(result), flags=re.S).group(0)
    drawn = re.findall(r'data-node="pod:app/([^"]+)"', svg)
    assert drawn == ["web-10", "web-2", "web-1"], "pods drawn beside their endpoints"


def test_facts_that_could_not_be_gathered_are_unknown_with_the_reason():
    facts = {
        "symptom": None,
        "self_probes": None,
        "pods": None,
        "service": None,
        "svc_probes": None,
        "proxies": [{"namespace": "web", "name": "nginx-0", "ready": True}],
        "errors": {
            "service": "403 Forbidden: cannot get services in app",
            "connectivity": "needs the Service",
        },
    }
    chain = build_chain(facts)
    assert chain["service"]["status"] == "unknown"
    assert chain["service"]["evidence"] == [
        "could not be checked: 403 Forbidden: cannot get services in app"
    ]
    assert link(chain, "proxy:web/nginx-0", "service")["evidence"] == [
        "could not be checked: needs the Service"
    ]
    assert link(chain, "client", "proxy:web/nginx-0")["status"] == "unknown"
    assert chain["client"]["status"] == "unknown"
    assert chain["pods"] == [] and chain["pods_note"] == "the backend pods were not read"
    # Still renders.
    result = result_from(
        {"symptom": {"url": None, "status": None}, "errors": facts["errors"]}, HEALTHY_VERDICT
    )
    result["chain"] = chain
    assert "403 Forbidden: cannot get services in app" in to_markdown(result)
    assert "403 Forbidden: cannot get services in app" in to_html(result)


def test_the_fixture_result_is_what_the_code_builds_and_fits_the_schema(facts, result):
    assert result["chain"] == build_chain(facts, result["verdict"]), (
        "rerun tests/unit/fixtures/make_result_fixture.py"
    )
    assert result["layers"] == [layers.assess(facts, name) for name in LAYER_NAMES]
    jsonschema.validate(result, json.loads((ROOT / "docs" / "result.schema.json").read_text()))
    jsonschema.validate({"chain": result["chain"]}, chain_schema())
    broken = copy.deepcopy(result["chain"])
    broken["links"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"chain": broken}, chain_schema())


def test_every_chain_fits_the_chain_schema():
    for chain in (
        build_chain(healthy_facts(), HEALTHY_VERDICT),
        build_chain({}),
        build_chain({"errors": {"symptom": "x"}}),
    ):
        jsonschema.validate({"chain": chain}, chain_schema())


# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_of_a_stale_upstream_with_one_stale_replica_of_two(result):
    md = to_markdown(result)
    assert md.startswith("# 502 diagnosis: `stale_upstream`\n")
    assert "Proxy replica web/nginx-0 still dials 127.1.1.2:8080" in md
    assert "- stale replicas: `web/nginx-0`" in md
    assert "- dialled but gone: `127.1.1.2:8080`; ready endpoints now: `127.1.1.3:8080`" in md
    assert md_row(md, "client", "proxy web/nginx-0")[3] == "**FAIL**"
    assert md_row(md, "client", "proxy web/nginx-1")[3] == "PASS"
    gone = md_row(md, "proxy web/nginx-0", "gone 127.1.1.2:8080")
    assert gone[3] == "**FAIL**" and "the Service's ready endpoints are 127.1.1.3:8080" in gone[4]
    assert md_row(md, "Service app/open-webui", "endpoint 127.1.1.3:8080")[3] == "PASS"
    # Every row of every table has as many cells as its header.
    for block in re.findall(r"(?:^\|.*\n)+", md, flags=re.M):
        widths = {len(md_cells(line)) for line in block.splitlines()}
        assert len(widths) == 1, block
    layer_rows = {
        r[0]: r[2]
        for r in (md_cells(x) for x in md.splitlines() if x.startswith("| "))
        if r and r[0] in ("symptom", "backend\\_pods", "service", "connectivity", "proxy\\_logs")
    } or {}
    assert layer_rows.get("symptom") == "**FAIL**" and layer_rows.get("connectivity") == "PASS"
    assert "| web/nginx-0 | ok | yes | 31 -> 58 | 200 | yes | - |" in md
    assert "Reloaded; verified: **yes** (`http://127.0.0.1:30080/` -> 200 after the reload)" in md


def test_markdown_of_a_healthy_result():
    md = to_markdown(result_from(healthy_facts(), HEALTHY_VERDICT))
    assert md.startswith("# 502 diagnosis: `healthy`\n")
    assert "FAIL" not in md
    assert "gone " not in md
    assert md_row(md, "client", "proxy web/nginx-1")[3] == "PASS"
    assert "Nothing was reloaded: the verdict is healthy, which a reload does not fix" in md


# --- escaping ---------------------------------------------------------------------------------

EVIL_POD = "<script>alert('pod')</script>"
EVIL_LINE = 'upstream "a|b" <img src=x onerror=alert(1)> & `tick` *bold* [l](http://127.0.0.1/)'


def evil_result():
    facts = load("facts_stale_upstream.json")
    facts["pods"][0]["name"] = EVIL_POD
    facts["service"]["endpoints"][0]["target"] = "app/" + EVIL_POD
    facts["proxies"][0]["problems"] = [EVIL_LINE]
    verdict = dict(
        HEALTHY_VERDICT, cause="unknown", summary=EVIL_LINE, evidence=[EVIL_LINE, EVIL_POD]
    )
    return result_from(facts, verdict)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_every_value():
    page = to_html(evil_result())
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [pair for pair in parsed.attrs if pair[0].startswith("on")]
    text = "".join(parsed.text)
    assert EVIL_POD in text and EVIL_LINE in text
    assert ("data-node", "pod:app/" + EVIL_POD) in parsed.attrs
    assert '"a|b"' not in page and "&quot;a|b&quot;" in page


def test_html_is_self_contained(result):
    parsed = _Collect()
    parsed.feed(to_html(result))
    assert set(parsed.tags) & {"script", "link", "img", "iframe", "object", "embed"} == set()
    refs = [
        value for name, value in parsed.attrs if name in ("src", "href", "xlink:href", "action")
    ]
    assert refs == []
    assert "style" in parsed.tags and "svg" in parsed.tags


def test_markdown_escapes_every_value():
    md = to_markdown(evil_result())
    # The report's own <br> joins evidence lines in a cell; any other unescaped < could open a tag.
    assert not re.search(r"(?<!\\)<(?!br>)", md)
    assert "\\<script>alert('pod')\\</script>" in md
    assert '"a\\|b"' in md and "\\`tick\\`" in md and "\\*bold\\*" in md and "\\[l\\](http" in md
    for block in re.findall(r"(?:^\|.*\n)+", md, flags=re.M):
        assert len({len(md_cells(line)) for line in block.splitlines()}) == 1, block


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, arg, message",
    [
        (to_markdown, [], "expected a diagnose_502_result (a mapping), got a list"),
        (
            to_html,
            {"target": {}},
            "not a diagnose_502_result: it has no verdict and no layers (see docs/result-schema.md)",
        ),
    ],
)
def test_what_is_not_a_result_is_named(call, arg, message):
    with pytest.raises(ReportError) as exc:
        call(arg)
    assert str(exc.value) == message


@pytest.mark.parametrize("facts", ["facts", {"proxies": {"a": 1}}, {"proxies": [None, 3]}])
def test_facts_of_the_wrong_type_are_not_gathered_nor_guessed_at(facts):
    """facts.normalize_facts is the door: a part of the wrong type was not gathered."""
    chain = build_chain(facts)
    jsonschema.validate({"chain": chain}, chain_schema())
    assert chain["proxies"] == [] and chain["links"] == []
    assert chain["client"]["status"] == chain["service"]["status"] == "unknown"
    assert chain["pods_note"] == "the backend pods were not read"


def test_a_gathered_list_keeps_its_mappings_only():
    chain = build_chain(
        {
            "pods": [
                None,
                "x",
                {"namespace": "app", "name": "web-0", "phase": "Running", "ready": True},
            ]
        }
    )
    assert [p["id"] for p in chain["pods"]] == ["pod:app/web-0"] and chain["pods_note"] is None
    # a pod that does not say it is Ready is not: a missing key is never taken for healthy
    assert (
        build_chain({"pods": [{"namespace": "app", "name": "web-0", "phase": "Running"}]})["pods"][
            0
        ]["status"]
        == "fail"
    )


def test_parts_of_a_result_of_the_wrong_type_render_as_empty(result):
    html = to_html(dict(result, layers="x"))
    assert 'class="layer ' not in html and "Layers" in html
    md = to_markdown(dict(result, chain={"links": 3}))
    assert "## The request chain" in md and "| 1 |" not in md
    assert "No remediation record." in to_markdown(dict(result, remediation="x"))


def test_filters_turn_bad_input_into_filter_errors(result):
    from ansible.errors import AnsibleFilterError

    from ansible_collections.badgateway.k8s.plugins.filter import report

    filters = report.FilterModule().filters()
    assert filters["report_markdown"](result) == to_markdown(result)
    assert filters["report_html"](result) == to_html(result)
    assert (
        filters["report_chain"](load("facts_stale_upstream.json"), result["verdict"])
        == result["chain"]
    )
    with pytest.raises(AnsibleFilterError, match="report_html: expected a diagnose_502_result"):
        filters["report_html"]("nope")
    assert report_render.STATUSES == ("pass", "fail", "unknown")
