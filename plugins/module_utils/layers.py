# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge each diagnosis layer from the gathered facts: one hypothesis per layer.

Pure Python: imports neither Ansible nor Kubernetes. The role calls it through the
``badgateway.k8s.assess_layer`` filter and asserts on the ``status`` it returns.

:func:`assess` takes the facts dict (shapes in DESIGN.md: ``symptom``, ``self_probes``, ``pods``,
``service``, ``svc_probes``, ``proxies``, and ``errors``: a dict of layer name to the message of
the step that could not gather that layer's facts), normalises it once (``facts.normalize_facts``)
and hands it to the layer's function, which returns
``{"name", "hypothesis", "status", "message", "evidence"}`` where status is ``pass`` (the layer
is sound), ``fail`` (the layer shows a problem) or ``error`` (its facts are missing: it could not
be checked).
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    Facts,
    LayerResult,
    PodFact,
    ProbeFact,
    ProxyFact,
    normalize_facts,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.health import (
    answered,
    is_gateway_error,
    is_server_error,
    pod_health,
    probe_line,
    probe_ran,
    selector_text,
    service_health,
    upstream_errors,
)


def _result(
    name: str, hypothesis: str, status: str, message: str, evidence: t.Iterable[str]
) -> LayerResult:
    return {
        "name": name,
        "hypothesis": hypothesis,
        "status": status,
        "message": message,
        "evidence": list(evidence),
    }


def unchecked_line(who, why):
    """One line of evidence for a part that could not be checked."""
    return "%s: could not be checked (%s)" % (who, why)


def replica_read_errors(
    proxy: ProxyFact, parts: t.Iterable[str] = ("container", "log", "endpoints")
) -> list[str]:
    """The read errors of a proxy replica that leave its log unjudged: ``[message]``."""
    errors = proxy["read_errors"]
    return [errors[part] for part in parts if errors.get(part)]


def _sort_probes(
    probes: list[ProbeFact],
    is_bad: t.Callable[[int | None], bool],
    evidence: list[str],
    bad: list[str],
    unchecked: list[str],
) -> None:
    """One evidence line per probe; a probe that could not run is unchecked, never bad."""
    for probe in probes:
        if not probe_ran(probe):
            line = unchecked_line(
                "%s/%s" % (probe["namespace"] or "?", probe["name"] or "?"),
                probe["error"] or "the probe did not run",
            )
            unchecked.append(line)
        else:
            line = probe_line(probe)
            if is_bad(probe["status"]):
                bad.append(line)
        evidence.append(line)


def _judged(name, hyp, bad, unchecked, evidence, fail_text, pass_text):
    """Fail on any evidence of a problem, else "could not check" if a part was not read."""
    if bad:
        message = fail_text + "; ".join(bad)
        if unchecked:
            message += " (and could not check: %s)" % "; ".join(unchecked)
        return _result(name, hyp, "fail", message, evidence)
    if unchecked:
        return _result(
            name, hyp, "error", "Could not be checked: " + "; ".join(unchecked), evidence
        )
    return _result(name, hyp, "pass", pass_text, evidence)


def symptom(facts: Facts) -> LayerResult:
    """Layer 1: does the proxy answer a gateway error now?"""
    hyp = "The proxy answers 502/503/504 now"
    sym = facts["symptom"]
    probes = facts["self_probes"]
    evidence: list[str] = []
    bad: list[str] = []
    unchecked: list[str] = []
    if sym and sym["url"]:
        status = sym["status"]
        line = "%s (from the controller) -> %s" % (
            sym["url"],
            status if answered(status) else "no answer",
        )
        evidence.append(line)
        if is_gateway_error(status):
            bad.append(line)
    _sort_probes(probes or [], is_gateway_error, evidence, bad, unchecked)
    if not evidence:
        return _result(
            "symptom",
            hyp,
            "error",
            "The symptom could not be observed: no URL and no proxy replica to probe",
            [],
        )
    return _judged(
        "symptom",
        hyp,
        bad,
        unchecked,
        evidence,
        "The proxy answers a gateway error: ",
        "The proxy answers without a gateway error now",
    )


def _pod_line(pod: PodFact) -> str:
    line = "%s/%s %s ready=%s ip=%s restarts=%s" % (
        pod["namespace"],
        pod["name"],
        pod["phase"],
        str(pod["ready"]).lower(),
        pod["pod_ip"] or "-",
        pod["restarts"],
    )
    if pod["deletion_timestamp"]:
        line += " terminating (deletion due by %s)" % pod["deletion_timestamp"]
    if pod["problems"]:
        line += " (%s)" % ", ".join(pod["problems"])
    return line


def backend_pods(facts: Facts) -> LayerResult:
    """Layer 2, the seed's hypothesis 1: the backend is down (Running is not Ready)."""
    hyp = "The backend pods are down or not Ready"
    pods = facts["pods"]
    if pods is None:
        return _result("backend_pods", hyp, "error", "The backend pods could not be read", [])
    evidence = [_pod_line(p) for p in pods]
    if not pods:
        return _result(
            "backend_pods", hyp, "fail", "No pod matches the backend Service's selector", evidence
        )
    bad = [p for p in pods if not pod_health(p)["healthy"]]
    if bad:
        return _result(
            "backend_pods",
            hyp,
            "fail",
            "%d of %d backend pods are not Running and Ready, or have restarted: %s"
            % (len(bad), len(pods), "; ".join(_pod_line(p) for p in bad)),
            evidence,
        )
    return _result(
        "backend_pods",
        hyp,
        "pass",
        "All %d backend pods are Running and Ready" % len(pods),
        evidence,
    )


def service(facts: Facts) -> LayerResult:
    """Layer 3, the seed's hypothesis 2: the Service or its endpoints are wrong."""
    hyp = "The Service's selector, ports or endpoints are wrong"
    svc = facts["service"]
    if svc is None:
        return _result("service", hyp, "error", "The Service could not be read", [])
    name = "%s/%s" % (svc["namespace"], svc["name"])
    health = service_health(svc)
    if not health["exists"]:
        return _result("service", hyp, "fail", "Service %s does not exist" % name, [])
    evidence = [
        "Service %s %s selector=%s"
        % (
            name,
            "headless" if svc["headless"] else "ClusterIP %s" % svc["cluster_ip"],
            selector_text(svc["selector"]),
        ),
        "ready endpoints: %s" % (", ".join(health["ready"]) or "none"),
    ]
    if svc["not_ready_addresses"]:
        evidence.append("not-ready endpoints: %s" % ", ".join(svc["not_ready_addresses"]))
    if svc["terminating_addresses"]:
        evidence.append("terminating endpoints: %s" % ", ".join(svc["terminating_addresses"]))
    if health["problems"]:
        return _result(
            "service",
            hyp,
            "fail",
            "Service %s: %s" % (name, "; ".join(health["problems"])),
            evidence,
        )
    return _result(
        "service",
        hyp,
        "pass",
        "Service %s selects Ready pods and has %d ready endpoints" % (name, len(health["ready"])),
        evidence,
    )


def connectivity(facts: Facts) -> LayerResult:
    """Layer 4, the seed's hypothesis 3: the proxy pods cannot reach the Service."""
    hyp = "The proxy pods cannot reach the backend Service"
    probes = facts["svc_probes"]
    if not probes:
        return _result(
            "connectivity", hyp, "error", "No probe from a proxy pod to the Service could run", []
        )
    evidence: list[str] = []
    bad: list[str] = []
    unchecked: list[str] = []
    _sort_probes(probes, is_server_error, evidence, bad, unchecked)
    return _judged(
        "connectivity",
        hyp,
        bad,
        unchecked,
        evidence,
        "From inside the proxy pods the Service fails: ",
        "Every proxy replica reaches the Service (%s)"
        % ", ".join(str(p["status"]) for p in probes),
    )


def proxy_logs(facts: Facts) -> LayerResult:
    """Layer 5, the pinpoint: what each replica's log says, against the live cluster."""
    hyp = "The proxy's log shows upstream errors since its last reload"
    proxies = facts["proxies"]
    if proxies is None:
        return _result("proxy_logs", hyp, "error", "The proxy replicas could not be read", [])
    if not proxies:
        return _result("proxy_logs", hyp, "error", "No proxy replica matches the selector", [])
    evidence: list[str] = []
    bad: list[str] = []
    unchecked: list[str] = []
    for proxy in proxies:
        who = "%s/%s" % (proxy["namespace"], proxy["name"])
        counts = upstream_errors(proxy["counts_after_reload"])
        errors = proxy["errors_after_reload"]
        stale = proxy["stale_addresses"]
        read_errors = replica_read_errors(proxy)
        if read_errors and not (errors or stale):
            line = unchecked_line(who, "; ".join(read_errors))
            evidence.append(line)
            unchecked.append(line)
            continue
        summary = ", ".join("%s x%s" % kv for kv in sorted(counts.items())) or "no upstream errors"
        line = "%s (last reload %s): %s" % (who, proxy["last_reload"] or "unknown", summary)
        if stale:
            line += "; dials %s, which nothing in the cluster has any more" % ", ".join(stale)
        evidence.append(line)
        for addr in proxy["upstream_addresses"]:
            evidence.append(
                "  %s dialled %s x%s: %s%s"
                % (
                    who,
                    addr["address"],
                    addr["count"],
                    addr["state"],
                    "" if addr["after_reload"] else " (before the last reload)",
                )
            )
        if stale or errors:
            bad.append(line)
        if read_errors:
            unchecked.append(unchecked_line(who, "; ".join(read_errors)))
    return _judged(
        "proxy_logs",
        hyp,
        bad,
        unchecked,
        evidence,
        "",
        "No upstream errors since each replica's last reload",
    )


LAYERS: dict[str, t.Callable[[Facts], LayerResult]] = {
    "symptom": symptom,
    "backend_pods": backend_pods,
    "service": service,
    "connectivity": connectivity,
    "proxy_logs": proxy_logs,
}


def assess(facts: object, name: str) -> LayerResult:
    """Judge the layer called ``name`` (a key of LAYERS) from ``facts`` (any value: normalised here)."""
    try:
        judge = LAYERS[name]
    except KeyError:
        raise ValueError(
            "unknown layer %r; expected one of %s" % (name, ", ".join(sorted(LAYERS)))
        ) from None
    known = normalize_facts(facts)
    result = judge(known)
    error = known["errors"].get(name)
    if error:
        result["status"] = "error"
        result["message"] = "Could not be checked: %s" % error
    return result
