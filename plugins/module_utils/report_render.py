# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports people read: the request chain, a Markdown report and a self-contained HTML report.

Pure Python (standard library only, plus the collection's own pure ``layers``): imports neither
Ansible nor Kubernetes. The role calls it through the ``badgateway.k8s.report_chain``,
``report_markdown`` and ``report_html`` filters.

``build_chain(facts, verdict)`` turns the gathered facts (shapes in DESIGN.md) into the chain a
request follows: client -> proxy replicas -> Service -> endpoints -> pods, with every node and
every link marked ``pass``, ``fail`` or ``unknown`` (its facts could not be gathered) and the
evidence that decided it. Addresses a replica still dials although nothing in the cluster has
them any more are nodes of their own (``stale``), next to the Service whose name nginx resolved.

``to_markdown(result)`` and ``to_html(result)`` render a ``diagnose_502_result``
(docs/result-schema.md), with its ``chain`` when it has one. Every value from the cluster is
escaped: pod names, log lines and error messages are data, never markup.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import html
import re
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    Chain,
    ConfigTestFact,
    EndpointFact,
    PodFact,
    ProbeFact,
    ProxyFact,
    Remediation,
    ResultFact,
    ServiceFact,
    SymptomFact,
    WorkerFact,
    normalize_facts,
    normalize_result,
    normalize_verdict,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.health import (
    answered,
    endpoint_state,
    is_gateway_error,
    pod_health,
    probe_line,
    selector_text,
    service_health,
    upstream_errors,
)

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
STATUSES = (PASS, FAIL, UNKNOWN)


class ReportError(ValueError):
    """The input is not what the report needs; the message says what is wrong."""


# ---------------------------------------------------------------------------------------------
# The chain


def _kind(value):
    """What a value is, in words a playbook author knows."""
    if value is None:
        return "null"
    for types, word in (
        (bool, "a boolean"),
        (dict, "a mapping"),
        ((list, tuple), "a list"),
        (str, "a string"),
        ((int, float), "a number"),
    ):
        if isinstance(value, types):
            return word
    return type(value).__name__


def _ref(obj: t.Mapping[str, t.Any]) -> str:
    return "%s/%s" % (obj["namespace"], obj["name"])


def _natural(text):
    """Sort key that orders numbers by value: pod-2 before pod-10, 10.0.0.9 before 10.0.0.10."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", str(text))
        if part
    ]


def _probe_status(probe: ProbeFact) -> str:
    """pass when the probe got an answer that is not a gateway error, fail otherwise."""
    return FAIL if is_gateway_error(probe["status"]) else PASS


def _not_checked(errors: dict[str, str], layer: str, default: str) -> str:
    reason = errors.get(layer)
    return "could not be checked: %s" % reason if reason else default


def _client(symptom: SymptomFact | None, errors: dict[str, str]) -> dict[str, t.Any]:
    url = symptom["url"] if symptom else None
    status = symptom["status"] if symptom else None
    node: dict[str, t.Any] = {"id": "client", "url": url, "http_status": status}
    if not url:
        node.update(
            status=UNKNOWN,
            evidence=[
                _not_checked(
                    errors, "symptom", "no URL was given: the controller did not request one"
                )
            ],
        )
        return node
    line = "GET %s from the controller -> %s" % (url, status if answered(status) else "no answer")
    node.update(status=FAIL if is_gateway_error(status) else PASS, evidence=[line])
    return node


def _proxy(proxy: ProxyFact, stale_replicas: set[str]) -> dict[str, t.Any]:
    ref = _ref(proxy)
    stale = sorted(proxy["stale_addresses"])
    counts = upstream_errors(proxy["counts_after_reload"])
    errors = sum(counts.values()) if counts else proxy["errors_after_reload"]
    evidence = [
        "pod IP %s, %s, last reload %s"
        % (
            proxy["pod_ip"] or "-",
            "ready" if proxy["ready"] else "NOT ready",
            proxy["last_reload"] or "unknown",
        )
    ]
    if counts:
        evidence.append(
            "upstream errors since the last reload: %s"
            % ", ".join("%s x%s" % kv for kv in sorted(counts.items()))
        )
    elif errors:
        evidence.append("%d upstream errors since the last reload" % errors)
    else:
        evidence.append("no upstream errors since the last reload")
    for addr in proxy["upstream_addresses"]:
        evidence.append(
            "dialled %s x%s: %s%s"
            % (
                addr["address"],
                addr["count"],
                addr["state"],
                "" if addr["after_reload"] else " (before the last reload)",
            )
        )
    evidence.extend(proxy["problems"])
    failed = bool(stale) or bool(errors) or not proxy["ready"] or ref in stale_replicas
    return {
        "id": "proxy:" + ref,
        "namespace": proxy["namespace"],
        "name": proxy["name"],
        "pod_ip": proxy["pod_ip"],
        "ready": proxy["ready"],
        "last_reload": proxy["last_reload"],
        "stale_addresses": stale,
        "errors_after_reload": errors,
        "status": FAIL if failed else PASS,
        "evidence": evidence,
    }


def _service(svc: ServiceFact | None, errors: dict[str, str]) -> dict[str, t.Any]:
    if svc is None:
        return {
            "id": "service",
            "namespace": None,
            "name": None,
            "exists": None,
            "cluster_ip": None,
            "headless": None,
            "ports": [],
            "status": UNKNOWN,
            "evidence": [_not_checked(errors, "service", "the Service was not read")],
        }
    node: dict[str, t.Any] = {
        "id": "service:" + _ref(svc),
        "namespace": svc["namespace"],
        "name": svc["name"],
        "exists": svc["exists"],
        "cluster_ip": svc["cluster_ip"],
        "headless": svc["headless"],
        "ports": ["%s->%s" % (p["port"], p["target_port"]) for p in svc["ports"]],
    }
    health = service_health(svc)
    if not health["exists"]:
        node.update(status=FAIL, evidence=["Service %s does not exist" % _ref(svc)])
        return node
    evidence = [
        "%s, selector %s, ports %s"
        % (
            "headless" if svc["headless"] else "ClusterIP %s" % svc["cluster_ip"],
            selector_text(svc["selector"]),
            ", ".join(node["ports"]) or "none",
        )
    ]
    evidence.append("ready endpoints: %s" % (", ".join(health["ready"]) or "none"))
    evidence.extend(health["problems"])
    node.update(status=PASS if health["sound"] else FAIL, evidence=evidence)
    return node


def _endpoint(ep: EndpointFact) -> dict[str, t.Any]:
    flags = "ready=%s serving=%s terminating=%s" % (
        str(ep["ready"]).lower(),
        str(ep["serving"]).lower(),
        str(ep["terminating"]).lower(),
    )
    evidence = ["%s %s (EndpointSlice %s)" % (ep["address"], flags, ep["slice"] or "-")]
    ok = endpoint_state(ep) == "ready"
    return {
        "id": "endpoint:%s" % ep["address"],
        "address": ep["address"],
        "ready": ep["ready"],
        "serving": ep["serving"],
        "terminating": ep["terminating"],
        "target": ep["target"],
        "status": PASS if ok else FAIL,
        "evidence": evidence,
    }


def _pod(pod: PodFact) -> dict[str, t.Any]:
    line = "%s, ready=%s, IP %s, restarts %s" % (
        pod["phase"],
        str(pod["ready"]).lower(),
        pod["pod_ip"] or "-",
        pod["restarts"],
    )
    evidence = [line]
    if pod["deletion_timestamp"]:
        evidence.append("terminating (deletion due by %s)" % pod["deletion_timestamp"])
    evidence.extend(pod["problems"])
    ok = pod_health(pod)["healthy"]
    return {
        "id": "pod:" + _ref(pod),
        "namespace": pod["namespace"],
        "name": pod["name"],
        "pod_ip": pod["pod_ip"],
        "phase": pod["phase"],
        "ready": pod["ready"],
        "restarts": pod["restarts"],
        "status": PASS if ok else FAIL,
        "evidence": evidence,
    }


def _link(source, target, status, evidence):
    return {"from": source, "to": target, "status": status, "evidence": list(evidence)}


def _by_ref(probes: list[ProbeFact] | None) -> dict[str, ProbeFact]:
    return {_ref(p): p for p in probes or []}


def build_chain(facts: object, verdict: object = None) -> Chain:
    """The request chain from the gathered facts, every node and link judged with its evidence.

    ``facts`` is the role's facts dict (``symptom``, ``self_probes``, ``pods``, ``service``,
    ``svc_probes``, ``proxies``, ``errors``; a key that is None was not gathered; any value: it is
    normalised here, ``facts.normalize_facts``). ``verdict`` (optional) is verdict.decide()'s
    result; its ``stale_replicas`` are marked failed.
    """
    known = normalize_facts(facts)
    errors = known["errors"]
    stale_replicas = set(normalize_verdict(verdict)["stale_replicas"])
    proxies_in = known["proxies"]
    self_probes = _by_ref(known["self_probes"])
    svc_probes = _by_ref(known["svc_probes"])
    pods_in = known["pods"]
    svc_in = known["service"]

    client = _client(known["symptom"], errors)
    proxies = [
        _proxy(p, stale_replicas) for p in sorted(proxies_in or [], key=lambda p: _natural(_ref(p)))
    ]
    service = _service(svc_in, errors)
    endpoints = [
        _endpoint(e)
        for e in sorted(svc_in["endpoints"] if svc_in else [], key=lambda e: _natural(e["address"]))
    ]
    pods = [_pod(p) for p in sorted(pods_in or [], key=lambda p: _natural(_ref(p)))]
    links: list[dict[str, t.Any]] = []

    for proxy in proxies:
        ref = "%s/%s" % (proxy["namespace"], proxy["name"])
        probe = self_probes.get(ref)
        if probe is not None:
            links.append(_link("client", proxy["id"], _probe_status(probe), [probe_line(probe)]))
        else:
            links.append(
                _link(
                    "client",
                    proxy["id"],
                    UNKNOWN,
                    [
                        _not_checked(
                            errors, "symptom", "no probe of this replica's own listen address"
                        )
                    ],
                )
            )

    stale: dict[str, list] = {}
    for proxy in proxies:
        for address in proxy["stale_addresses"]:
            stale.setdefault(address, []).append("%s/%s" % (proxy["namespace"], proxy["name"]))
    stale_nodes = [
        {
            "id": "stale:" + address,
            "address": address,
            "dialled_by": by,
            "status": FAIL,
            "evidence": [
                "dialled since the last reload by %s; no endpoint, Service or pod has it now"
                % ", ".join(by)
            ],
        }
        for address, by in sorted(stale.items(), key=lambda kv: _natural(kv[0]))
    ]

    for proxy in proxies:
        ref = "%s/%s" % (proxy["namespace"], proxy["name"])
        probe = svc_probes.get(ref)
        if probe is not None:
            evidence = [probe_line(probe)]
            if proxy["stale_addresses"]:
                evidence.append(
                    "that is curl in the pod; nginx in it dials %s instead"
                    % ", ".join(proxy["stale_addresses"])
                )
            links.append(_link(proxy["id"], service["id"], _probe_status(probe), evidence))
        else:
            links.append(
                _link(
                    proxy["id"],
                    service["id"],
                    UNKNOWN,
                    [
                        _not_checked(
                            errors, "connectivity", "no probe from this replica to the Service"
                        )
                    ],
                )
            )
        current = ", ".join(svc_in["ready_addresses"] if svc_in else []) or "none"
        for address in proxy["stale_addresses"]:
            links.append(
                _link(
                    proxy["id"],
                    "stale:" + address,
                    FAIL,
                    [
                        "%s dials %s since its last reload (%s); the Service's ready endpoints are %s"
                        % (ref, address, proxy["last_reload"] or "unknown", current)
                    ],
                )
            )

    for ep in endpoints:
        links.append(_link(service["id"], ep["id"], ep["status"], ep["evidence"]))

    pod_nodes = {p["id"]: p for p in pods}
    for ep in endpoints:
        if not ep["target"]:
            continue
        pod = pod_nodes.get("pod:" + ep["target"])
        if pod is None:
            ep["evidence"].append(
                "targets %s, which is not among the backend pods read" % ep["target"]
            )
            continue
        ip = str(ep["address"]).rsplit(":", 1)[0].strip("[]")
        ok = ep["status"] == PASS and pod["status"] == PASS and ip == pod["pod_ip"]
        evidence = [
            "%s -> pod %s/%s (%s, ready=%s, IP %s)"
            % (
                ep["address"],
                pod["namespace"],
                pod["name"],
                pod["phase"],
                str(pod["ready"]).lower(),
                pod["pod_ip"] or "-",
            )
        ]
        if ip != pod["pod_ip"]:
            evidence.append(
                "the endpoint's IP %s is not the pod's IP %s" % (ip, pod["pod_ip"] or "-")
            )
        links.append(_link(ep["id"], pod["id"], PASS if ok else FAIL, evidence))

    if pods_in is None:
        pods_note = _not_checked(errors, "backend_pods", "the backend pods were not read")
    else:
        pods_note = None
    return {
        "client": client,
        "proxies": proxies,
        "service": service,
        "stale": stale_nodes,
        "endpoints": endpoints,
        "pods": pods,
        "pods_note": pods_note,
        "links": links,
    }


# ---------------------------------------------------------------------------------------------
# Shared helpers for the renderers


def _check_result(result: object) -> ResultFact:
    """A diagnose_502_result, normalised (``facts.normalize_result``); anything else is named."""
    if not isinstance(result, dict):
        raise ReportError("expected a diagnose_502_result (a mapping), got %s" % _kind(result))
    missing = [k for k in ("verdict", "layers") if k not in result]
    if missing:
        raise ReportError(
            "not a diagnose_502_result: it has no %s (see docs/result-schema.md)"
            % " and no ".join(missing)
        )
    return normalize_result(result)


def _nodes(chain: Chain) -> dict[str, dict[str, t.Any]]:
    """Every node of the chain by id, in drawing order."""
    nodes = (
        [chain["client"]]
        + chain["proxies"]
        + [chain["service"]]
        + chain["stale"]
        + chain["endpoints"]
        + chain["pods"]
    )
    return {n["id"]: n for n in nodes if n.get("id")}


def _label(node_id, nodes):
    """A short human name for a node id."""
    node = nodes.get(node_id) or {}
    if node_id == "client":
        return "client"
    kind = str(node_id).split(":", 1)[0]
    if kind in ("proxy", "pod"):
        return "%s %s/%s" % (kind, node.get("namespace"), node.get("name"))
    if kind == "service":
        return (
            "Service %s/%s" % (node.get("namespace"), node.get("name"))
            if node.get("name")
            else "Service"
        )
    if kind == "stale":
        return "gone %s" % node.get("address")
    if kind == "endpoint":
        return "endpoint %s" % node.get("address")
    return str(node_id)


def _status(value):
    return value if value in STATUSES else UNKNOWN


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


def _config_test(test: ConfigTestFact | None) -> str:
    """A reloaded replica's config test, in a word."""
    return "not run" if test is None else "ok" if test["ok"] else "failed"


def _pids(workers: list[WorkerFact]) -> str:
    return ",".join(str(w["pid"]) for w in workers) or "-"


# ---------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = "\\`*[]<|"
_ENTITY = re.compile(r"&#?[0-9A-Za-z]+;")


def _md(text):
    """Text safe in a Markdown paragraph or table cell: one line, markup characters escaped.

    ``<`` is escaped so no HTML tag or autolink can form, ``&`` where it would start an entity;
    ``_`` only where it could open or close emphasis (intraword underscores, as in
    ``stale_upstream``, are plain text in GFM); ``#``, ``>``, ``-``, ``+`` only at the start.
    """
    text = " ".join(str(text).split())
    out = []
    for index, char in enumerate(text):
        if char in _MD_SPECIAL:
            out.append("\\" + char)
        elif char == "_" and not (
            0 < index < len(text) - 1 and text[index - 1].isalnum() and text[index + 1].isalnum()
        ):
            out.append("\\_")
        elif (index == 0 and char in "#>-+") or (char == "&" and _ENTITY.match(text, index)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _md_code(text):
    """An inline code span that survives any backticks and pipes in the text."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return "%s%s%s%s%s" % (fence, pad, text, pad, fence)


_MD_MARK = {PASS: "PASS", FAIL: "**FAIL**", UNKNOWN: "unknown", "error": "**ERROR**"}


def _md_chain(chain):
    nodes = _nodes(chain)
    lines = ["## The request chain", ""]
    client = chain["client"]
    service = chain["service"]
    lines.append(
        "client %s -> %d proxy replica(s) -> %s -> %d endpoint(s) -> %d pod(s)"
        % (
            _md_code(client.get("url") or "no URL"),
            len(chain["proxies"]),
            _md(_label(service.get("id", "service"), nodes)),
            len(chain["endpoints"]),
            len(chain["pods"]),
        )
    )
    lines.append("")
    lines += ["| # | from | to | result | evidence |", "|---|---|---|---|---|"]
    for number, link in enumerate(chain["links"], 1):
        lines.append(
            "| %d | %s | %s | %s | %s |"
            % (
                number,
                _md(_label(link.get("from"), nodes)),
                _md(_label(link.get("to"), nodes)),
                _MD_MARK[_status(link.get("status"))],
                "<br>".join(_md(e) for e in link.get("evidence") or []) or "-",
            )
        )
    lines += ["", "| node | result | evidence |", "|---|---|---|"]
    for node_id, node in nodes.items():
        lines.append(
            "| %s | %s | %s |"
            % (
                _md(_label(node_id, nodes)),
                _MD_MARK[_status(node.get("status"))],
                "<br>".join(_md(e) for e in node.get("evidence") or []) or "-",
            )
        )
    if chain["pods_note"]:
        lines += ["", "Backend pods: %s" % _md(chain["pods_note"])]
    return lines


def _md_remediation(rem: Remediation | None, url: str | None) -> list[str]:
    lines = ["## Remediation", ""]
    if rem is None:
        return lines + ["No remediation record."]
    if rem["performed"]:
        lines.append(
            "Reloaded; verified: **%s**%s"
            % (
                _yes_no(rem["verified"]),
                (
                    " (%s -> %s after the reload)" % (_md_code(url), rem["url_status_after"])
                    if url and rem["url_status_after"]
                    else ""
                ),
            )
        )
    else:
        lines.append("Nothing was reloaded: %s" % _md(rem["reason"] or "no reason recorded"))
    replicas = rem["replicas"]
    if replicas:
        lines += [
            "",
            "| replica | nginx -t | reloaded | workers before -> after | probe | verified | error |",
            "|---|---|---|---|---|---|---|",
        ]
        for rep in replicas:
            test, probe = rep["config_test"], rep["probe"]
            lines.append(
                "| %s | %s | %s | %s -> %s | %s | %s | %s |"
                % (
                    _md(_ref(rep)),
                    _config_test(test),
                    _yes_no(rep["reloaded"]),
                    _md(_pids(rep["workers_before"])),
                    _md(_pids(rep["workers_after"])),
                    probe["status"] if probe else "-",
                    _yes_no(rep["verified"]),
                    _md(rep["error"]) if rep["error"] else "-",
                )
            )
    return lines


def to_markdown(result: object) -> str:
    """The result as a Markdown report (GitHub-flavoured: tables)."""
    known = _check_result(result)
    verdict = known["verdict"]
    target = known["target"]
    rec = verdict["recommendation"]
    lines = ["# 502 diagnosis: %s" % _md_code(verdict["cause"] or "unknown"), ""]
    lines.append(
        "- proxy: %s%s"
        % (
            _md_code(target["proxy"] or "-"),
            " (%s)" % ", ".join(verdict["proxy_kinds"]) if verdict["proxy_kinds"] else "",
        )
    )
    lines.append("- Service: %s" % _md_code(target["service"] or "not found"))
    lines.append("- URL: %s" % (_md_code(target["url"]) if target["url"] else "none given"))
    lines.append(
        "- run: %s to %s%s"
        % (
            _md(known["started"] or "?"),
            _md(known["finished"] or "?"),
            " (check mode)" if known["check_mode"] else "",
        )
    )
    ending = known["outcome"]
    if ending:
        lines.append(
            "- outcome: **%s** (exit status %s)"
            % (_md(ending["headline"] or "?"), _md(ending["exit_status"]))
        )
        for line in ending["unchecked"]:
            lines.append("- could not check: %s" % _md(line))
    lines += ["", "## Verdict", "", _md(verdict["summary"]), ""]
    for line in verdict["evidence"]:
        lines.append("- %s" % _md(line))
    for line in verdict["missing_evidence"]:
        lines.append("- missing evidence: %s" % _md(line))
    for hyp in verdict["hypotheses"]:
        if hyp["fit"] == "ruled_out":
            lines.append(
                "- ruled out %s: %s" % (_md_code(hyp["cause"]), _md("; ".join(hyp["against"])))
            )
    for line in verdict["warnings"]:
        lines.append("- warning: %s" % _md(line))
    if verdict["stale_replicas"]:
        lines.append(
            "- stale replicas: %s" % ", ".join(_md_code(r) for r in verdict["stale_replicas"])
        )
    if verdict["stale_addresses"] or verdict["current_addresses"]:
        lines.append(
            "- dialled but gone: %s; ready endpoints now: %s"
            % (
                ", ".join(_md_code(a) for a in verdict["stale_addresses"]) or "none",
                ", ".join(_md_code(a) for a in verdict["current_addresses"]) or "none",
            )
        )
    lines += [
        "",
        "**Fix:** %s" % _md(rec["fix"] or "-"),
        "",
        "**Prevention:** %s" % _md(rec["prevention"] or "-"),
        "",
    ]
    if known["chain"] is not None:
        lines += _md_chain(known["chain"]) + [""]
    lines += ["## Layers", "", "| layer | hypothesis | result | finding |", "|---|---|---|---|"]
    for layer in known["layers"]:
        lines.append(
            "| %s | %s | %s | %s |"
            % (
                _md(layer["name"]),
                _md(layer["hypothesis"]),
                _MD_MARK.get(layer["status"], _md(layer["status"])),
                _md(layer["message"]),
            )
        )
    for layer in known["layers"]:
        if layer["evidence"]:
            lines += ["", "### %s" % _md(layer["name"]), ""]
            lines += ["- %s" % _md(e) for e in layer["evidence"]]
    lines.append("")
    lines += _md_remediation(known["remediation"], target["url"])
    errors = known["errors"]
    if errors:
        lines += ["", "## Could not be checked", ""]
        lines += ["- %s: %s" % (_md(k), _md(v)) for k, v in sorted(errors.items())]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;margin:20px;color:#202124;font-size:14px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #dadce0}
.meta{color:#5f6368;margin:0 0 12px}.meta code{color:#202124}
.cause{display:inline-block;padding:2px 10px;border-radius:12px;font-family:monospace;font-size:18px}
.cause.fail{background:#fce8e6;color:#a50e0e}.cause.pass{background:#e6f4ea;color:#137333}
.badge{display:inline-block;min-width:54px;text-align:center;padding:1px 6px;border-radius:10px;font-size:12px;font-weight:bold}
.badge.pass{background:#e6f4ea;color:#137333}.badge.fail{background:#fce8e6;color:#a50e0e}
.badge.unknown,.badge.error{background:#f1f3f4;color:#5f6368}.badge.error{color:#b06000}
table{border-collapse:collapse;width:100%;margin:6px 0}
td,th{border:1px solid #dadce0;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f8f9fa}
td.num{width:28px;text-align:center;font-weight:bold}
ul.ev{margin:0;padding-left:18px}ul.ev li{font-family:monospace;font-size:12px;word-break:break-word}
.chain svg{width:100%;height:auto;border:1px solid #dadce0;background:#fff}
svg text{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif}
svg .box rect{stroke-width:2}
svg .pass rect{fill:#e6f4ea;stroke:#1e8e3e}svg .fail rect{fill:#fce8e6;stroke:#d93025}
svg .unknown rect{fill:#f1f3f4;stroke:#80868b}svg .stale rect{stroke-dasharray:6 4}
svg .link path{fill:none;stroke-width:2.5}svg .link.pass path{stroke:#1e8e3e}
svg .link.fail path{stroke:#d93025;stroke-width:3.5;stroke-dasharray:8 5}svg .link.unknown path{stroke:#9aa0a6}
svg .link circle{stroke-width:2;fill:#fff}svg .link.pass circle{stroke:#1e8e3e}
svg .link.fail circle{stroke:#d93025}svg .link.unknown circle{stroke:#9aa0a6}
svg .col{font-size:13px;font-weight:bold;fill:#5f6368}
.summary{font-size:15px;line-height:1.45;background:#f8f9fa;padding:8px 12px;border-left:4px solid #5f6368}
.summary.fail{border-color:#d93025}.summary.pass{border-color:#1e8e3e}
"""

_BOX_W, _BOX_H, _GAP_Y, _COL_GAP, _TOP, _MARGIN = 200, 62, 16, 72, 40, 20
_MAX_PER_COLUMN = 12
_MARK = {PASS: "\u2713", FAIL: "\u2717", UNKNOWN: "?"}


def _e(value):
    return html.escape("" if value is None else str(value), quote=True)


def _short(text, width):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _node_lines(node_id, node):
    """(kind, name, detail) shown in a node's box."""
    kind = node_id.split(":", 1)[0]
    if kind == "client":
        status = node.get("http_status")
        return (
            "client",
            node.get("url") or "(no URL)",
            "answer: %s" % (status if status and status > 0 else "none"),
        )
    if kind == "proxy":
        stale = node.get("stale_addresses") or []
        detail = (
            "stale: %s" % ", ".join(stale)
            if stale
            else "%s errors since reload" % node.get("errors_after_reload", 0)
        )
        return (
            "proxy replica  %s" % (node.get("pod_ip") or ""),
            "%s/%s" % (node.get("namespace"), node.get("name")),
            detail,
        )
    if kind == "service":
        if not node.get("name"):
            return "Service", "(not read)", ""
        return (
            "Service (%s)"
            % ("headless" if node.get("headless") else node.get("cluster_ip") or "no IP"),
            "%s/%s" % (node.get("namespace"), node.get("name")),
            " ".join(node.get("ports") or []),
        )
    if kind == "stale":
        return (
            "gone address",
            node.get("address"),
            "dialled by %s" % ", ".join(node.get("dialled_by") or []),
        )
    if kind == "endpoint":
        state = (
            "terminating"
            if node.get("terminating")
            else "ready"
            if node.get("ready")
            else "not ready"
        )
        return "endpoint", node.get("address"), "%s -> %s" % (state, node.get("target") or "-")
    return (
        "pod",
        "%s/%s" % (node.get("namespace"), node.get("name")),
        "%s %s IP %s"
        % (
            node.get("phase"),
            "ready" if node.get("ready") else "NOT ready",
            node.get("pod_ip") or "-",
        ),
    )


def _svg_box(node_id, node, x, y):
    kind, name, detail = _node_lines(node_id, node)
    status = _status(node.get("status"))
    classes = "box node %s %s" % (node_id.split(":", 1)[0], status)
    title = "\n".join(
        [_label(node_id, {node_id: node})] + [str(e) for e in node.get("evidence") or []]
    )
    return (
        '<g class="%s" data-node="%s" data-status="%s"><title>%s</title>'
        '<rect x="%d" y="%d" width="%d" height="%d" rx="8"/>'
        '<text x="%d" y="%d" font-size="11" fill="#5f6368">%s</text>'
        '<text x="%d" y="%d" font-size="18" font-weight="bold" text-anchor="end" fill="%s">%s</text>'
        '<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>'
        '<text x="%d" y="%d" font-size="11">%s</text></g>'
        % (
            _e(classes),
            _e(node_id),
            status,
            _e(title),
            x,
            y,
            _BOX_W,
            _BOX_H,
            x + 8,
            y + 15,
            _e(_short(kind, 26)),
            x + _BOX_W - 8,
            y + 19,
            {PASS: "#137333", FAIL: "#c5221f"}.get(status, "#5f6368"),
            _MARK[status],
            x + 8,
            y + 35,
            _e(_short(name, 25)),
            x + 8,
            y + 52,
            _e(_short(detail, 32)),
        )
    )


def _cubic(t, p0, p1, p2, p3):
    """One coordinate of a cubic Bezier curve at t."""
    u = 1 - t
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3


def _pods_in_endpoint_order(chain):
    """The pods, those behind an endpoint in the endpoints' order, so few links cross."""
    first: dict[str, int] = {}
    endpoint_rank = {e.get("id"): index for index, e in enumerate(chain["endpoints"])}
    for link in chain["links"]:
        if link.get("from") in endpoint_rank:
            first.setdefault(link.get("to"), endpoint_rank[link["from"]])
    ranked = sorted(
        enumerate(chain["pods"]),
        key=lambda ip: (first.get(ip[1].get("id"), len(endpoint_rank)), ip[0]),
    )
    return [pod for unused_index, pod in ranked]


def _svg(chain):
    """The chain as an inline SVG: five columns of boxes, numbered links between them."""
    columns = [
        ("Client", [chain["client"]]),
        ("Proxy replicas", chain["proxies"]),
        ("Service", [chain["service"]] + chain["stale"]),
        ("Endpoints", chain["endpoints"]),
        ("Backend pods", _pods_in_endpoint_order(chain)),
    ]
    tallest = max(min(len(nodes), _MAX_PER_COLUMN + 1) for unused_title, nodes in columns) or 1
    height = _TOP + tallest * (_BOX_H + _GAP_Y) + _MARGIN
    width = 2 * _MARGIN + 5 * _BOX_W + 4 * _COL_GAP
    where = {}
    boxes = []
    for index, (title, nodes) in enumerate(columns):
        x = _MARGIN + index * (_BOX_W + _COL_GAP)
        boxes.append('<text class="col" x="%d" y="24">%s</text>' % (x, _e(title)))
        shown = nodes[:_MAX_PER_COLUMN]
        rows = len(shown) + (1 if len(nodes) > len(shown) else 0)
        top = _TOP + (tallest - max(rows, 1)) * (_BOX_H + _GAP_Y) // 2
        if not nodes:
            boxes.append(
                '<g class="box empty unknown"><rect x="%d" y="%d" width="%d" height="%d" rx="8" stroke-dasharray="4 4"/>'
                '<text x="%d" y="%d" font-size="12" fill="#5f6368">none</text></g>'
                % (x, top, _BOX_W, _BOX_H, x + 8, top + 35)
            )
        for row, node in enumerate(shown):
            y = top + row * (_BOX_H + _GAP_Y)
            node_id = node.get("id") or "unknown"
            where[node_id] = (x, y)
            boxes.append(_svg_box(node_id, node, x, y))
        if len(nodes) > len(shown):
            y = top + len(shown) * (_BOX_H + _GAP_Y)
            boxes.append(
                '<text x="%d" y="%d" font-size="12" fill="#5f6368">and %d more (see the tables)</text>'
                % (x + 8, y + 20, len(nodes) - len(shown))
            )
    drawn = [
        (n, link)
        for n, link in enumerate(chain["links"], 1)
        if link.get("from") in where and link.get("to") in where
    ]
    fan_out: dict[str, int] = {}
    fan_in: dict[str, int] = {}
    for link in [pair[1] for pair in drawn]:
        fan_out[link["from"]] = fan_out.get(link["from"], 0) + 1
        fan_in[link["to"]] = fan_in.get(link["to"], 0) + 1
    paths = []
    for number, link in drawn:
        # From the middle of the source's right edge to the middle of the target's left edge.
        (x1, y1), (x2, y2) = where[link["from"]], where[link["to"]]
        x1, y1, y2 = x1 + _BOX_W, y1 + _BOX_H // 2, y2 + _BOX_H // 2
        bend = (x2 - x1) // 2
        status = _status(link.get("status"))
        # The number sits where the link is alone: near the target when its source fans out,
        # near the source when several links meet at its target, so numbers do not overlap.
        spread, meet = fan_out[link["from"]] > 1, fan_in[link["to"]] > 1
        t = 0.72 if spread and not meet else 0.28 if meet and not spread else 0.5
        mx = round(_cubic(t, x1, x1 + bend, x2 - bend, x2))
        my = round(_cubic(t, y1, y1, y2, y2))
        paths.append(
            '<g class="link %s" data-from="%s" data-to="%s" data-link="%d"><title>%s</title>'
            '<path d="M%d %d C%d %d %d %d %d %d"/><circle cx="%d" cy="%d" r="10"/>'
            '<text x="%d" y="%d" font-size="11" font-weight="bold" text-anchor="middle">%d</text></g>'
            % (
                status,
                _e(link["from"]),
                _e(link["to"]),
                number,
                _e("\n".join(str(e) for e in link.get("evidence") or [])),
                x1,
                y1,
                x1 + bend,
                y1,
                x2 - bend,
                y2,
                x2,
                y2,
                mx,
                my,
                mx,
                my + 4,
                number,
            )
        )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" '
        'aria-label="request chain: client, proxy replicas, Service, endpoints, pods">%s%s</svg>'
        % (width, height, "".join(paths), "".join(boxes))
    )


def _badge(status):
    status = status if status in STATUSES + ("error",) else UNKNOWN
    return '<span class="badge %s">%s</span>' % (status, status.upper())


def _ev_list(lines):
    if not lines:
        return "-"
    return '<ul class="ev">%s</ul>' % "".join("<li>%s</li>" % _e(line) for line in lines)


def _html_chain(chain):
    nodes = _nodes(chain)
    out = ['<section class="chain" id="chain"><h2>The request chain</h2>', _svg(chain)]
    out.append(
        '<table class="links"><tr><th>#</th><th>link</th><th>result</th><th>evidence</th></tr>'
    )
    for number, link in enumerate(chain["links"], 1):
        status = _status(link.get("status"))
        out.append(
            '<tr class="link-row %s" data-link="%d" data-from="%s" data-to="%s"><td class="num">%d</td>'
            "<td>%s &rarr; %s</td><td>%s</td><td>%s</td></tr>"
            % (
                status,
                number,
                _e(link.get("from")),
                _e(link.get("to")),
                number,
                _e(_label(link.get("from"), nodes)),
                _e(_label(link.get("to"), nodes)),
                _badge(status),
                _ev_list(link.get("evidence")),
            )
        )
    out.append("</table>")
    out.append('<table class="nodes"><tr><th>node</th><th>result</th><th>evidence</th></tr>')
    for node_id, node in nodes.items():
        status = _status(node.get("status"))
        out.append(
            '<tr class="node-row %s" data-node="%s"><td>%s</td><td>%s</td><td>%s</td></tr>'
            % (
                status,
                _e(node_id),
                _e(_label(node_id, nodes)),
                _badge(status),
                _ev_list(node.get("evidence")),
            )
        )
    out.append("</table>")
    if chain["pods_note"]:
        out.append("<p>Backend pods: %s</p>" % _e(chain["pods_note"]))
    out.append("</section>")
    return out


def _html_remediation(rem: Remediation | None, url: str | None) -> list[str]:
    out = ['<section id="remediation"><h2>Remediation</h2>']
    if rem and rem["performed"]:
        after = (
            " (%s &rarr; %s after the reload)" % (_e(url), _e(rem["url_status_after"]))
            if url and rem["url_status_after"]
            else ""
        )
        out.append(
            "<p>Reloaded; verified: %s%s</p>" % (_badge(PASS if rem["verified"] else FAIL), after)
        )
    else:
        out.append(
            "<p>Nothing was reloaded: %s</p>" % _e(rem and rem["reason"] or "no reason recorded")
        )
    replicas = rem["replicas"] if rem else []
    if replicas:
        out.append(
            "<table><tr><th>replica</th><th>nginx -t</th><th>reloaded</th><th>worker PIDs before &rarr; after</th>"
            "<th>probe</th><th>verified</th><th>error</th></tr>"
        )
        for rep in replicas:
            probe = rep["probe"]
            out.append(
                "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s &rarr; %s</td><td>%s</td><td>%s</td><td>%s</td></tr>"
                % (
                    _e(_ref(rep)),
                    _config_test(rep["config_test"]),
                    _yes_no(rep["reloaded"]),
                    _e(_pids(rep["workers_before"])),
                    _e(_pids(rep["workers_after"])),
                    _e(probe_line(probe)) if probe else "-",
                    _badge(PASS if rep["verified"] else FAIL),
                    _e(rep["error"] or "-"),
                )
            )
        out.append("</table>")
    out.append("</section>")
    return out


def to_html(result: object) -> str:
    """The result as one self-contained HTML page: inline CSS and SVG, no script, no external URL."""
    known = _check_result(result)
    verdict = known["verdict"]
    target = known["target"]
    rec = verdict["recommendation"]
    cause = verdict["cause"] or "unknown"
    tone = PASS if cause == "healthy" else FAIL
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        "<title>502 diagnosis: %s</title><style>%s</style></head><body>" % (_e(cause), _CSS),
    ]
    out.append(
        '<h1>502 diagnosis: <span class="cause %s" id="cause">%s</span></h1>' % (tone, _e(cause))
    )
    out.append(
        '<p class="meta">proxy <code>%s</code>%s &middot; Service <code>%s</code> &middot; URL <code>%s</code>'
        " &middot; %s to %s%s</p>"
        % (
            _e(target["proxy"] or "-"),
            " (%s)" % _e(", ".join(known["verdict"]["proxy_kinds"]))
            if known["verdict"]["proxy_kinds"]
            else "",
            _e(target["service"] or "not found"),
            _e(target["url"] or "none"),
            _e(known["started"] or "?"),
            _e(known["finished"] or "?"),
            " &middot; check mode" if known["check_mode"] else "",
        )
    )
    out.append('<p class="summary %s" id="summary">%s</p>' % (tone, _e(verdict["summary"])))
    if known["chain"] is not None:
        out += _html_chain(known["chain"])
    else:
        out.append(
            '<p class="nochain">This result carries no request chain (it was built without <code>chain</code>).</p>'
        )
    out.append('<section id="verdict"><h2>Verdict</h2>%s' % _ev_list(verdict["evidence"]))
    if verdict["missing_evidence"]:
        out.append(
            "<p>Missing evidence (two causes fit):</p>%s" % _ev_list(verdict["missing_evidence"])
        )
    ruled = [
        "%s: %s" % (h["cause"], "; ".join(h["against"]))
        for h in verdict["hypotheses"]
        if h["fit"] == "ruled_out"
    ]
    if ruled:
        out.append("<p>Ruled out:</p>%s" % _ev_list(ruled))
    if verdict["warnings"]:
        out.append("<p>Warnings (not the cause):</p>%s" % _ev_list(verdict["warnings"]))
    out.append(
        "<p><b>Fix:</b> %s</p><p><b>Prevention:</b> %s</p></section>"
        % (_e(rec["fix"] or "-"), _e(rec["prevention"] or "-"))
    )
    out.append(
        '<section id="layers"><h2>Layers</h2><table><tr><th>layer</th><th>hypothesis</th><th>result</th>'
        "<th>finding and evidence</th></tr>"
    )
    for layer in known["layers"]:
        out.append(
            '<tr class="layer %s" data-layer="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s%s</td></tr>'
            % (
                _e(layer["status"]),
                _e(layer["name"]),
                _e(layer["name"]),
                _e(layer["hypothesis"]),
                _badge(layer["status"]),
                _e(layer["message"]),
                _ev_list(layer["evidence"]) if layer["evidence"] else "",
            )
        )
    out.append("</table></section>")
    out += _html_remediation(known["remediation"], target["url"])
    errors = known["errors"]
    if errors:
        out.append(
            '<section id="errors"><h2>Could not be checked</h2>%s</section>'
            % _ev_list(["%s: %s" % kv for kv in sorted(errors.items())])
        )
    out.append("</body></html>\n")
    return "\n".join(out)
