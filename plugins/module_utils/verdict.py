# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict rules: from gathered facts to one cause ID with its evidence.

Pure Python (standard library only). The causes, their recommendations, which one explains
which, and what separates them come from the cause registry (``causes.py``); each cause's rule
is one function here, registered on its record with ``@rule(<cause ID>)``, and the rules run in
the registry's order. :func:`decide` never raises on malformed or partial facts: a layer that
failed (None) only lowers what can be concluded, and is named in ``missing_evidence``. When two
causes fit equally, the verdict is ``unknown`` with both in ``candidates`` and what would
separate them in ``missing_evidence``, instead of a guess.

Public API: :func:`decide`, :data:`CAUSES`, :data:`RECOMMENDATIONS`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import datetime
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.causes import (
    BY_ID,
    CAUSES,
    KIND_WORDS,
    PRECEDENCE,
    RECOMMENDATIONS,
    REGISTRY,
    rule,
    separates,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import (
    build_index,
    classify_address,
    config_literals,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    AddressFact,
    Facts,
    Hypothesis,
    ProxyFact,
    normalize_facts,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.health import (
    endpoint_state,
    is_server_error,
    pod_health,
    probe_ran,
    selector_text,
    service_health,
    upstream_errors,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    SECONDARY_SIGNATURES,
    format_time,
    parse_time,
)

__all__ = ["decide", "CAUSES", "RECOMMENDATIONS"]

CONNECT = ("connect_refused", "connect_unreachable", "connect_timeout", "connect_error")
DNS = ("dns_not_found", "no_resolver", "host_not_found")
CLOSE = ("reset", "premature_close")
PROTOCOL = ("invalid_header", "ssl_handshake", "ssl_verify")
_STATE_TEXT = {
    "stale": "stale: no pod, endpoint or Service has it",
    "ready_endpoint": "a ready endpoint",
    "not_ready_endpoint": "a not-ready endpoint",
    "terminating_endpoint": "a terminating endpoint",
    "cluster_ip": "a Service ClusterIP",
    "pod_ip": "a current pod's IP, not an endpoint for that port",
    "group_name": "an upstream group name",
    "external": "outside the cluster's address ranges",
}


class _Replica(t.TypedDict):
    """What the rules read of one proxy replica."""

    name: str
    proxy: ProxyFact
    reload: str | None
    after: dict[str, int]
    errors_after: int
    dialled: list[AddressFact]
    current: list[AddressFact]
    stale: list[str]
    status_counts: dict[str, int]
    upstream_status_counts: dict[str, int]
    config_ok: bool | None
    read_errors: dict[str, str]
    # The reload hypothesis, per replica: stale_seen is every vanished address dialled since
    # the last reload; stale keeps it only when a reload is warranted (held says why not).
    stale_seen: list[str]
    held: list[str]
    answers_now: bool | None  # its own address answered (not 5xx) just now; None: not probed
    # The config on disk, re-read at diagnosis time (nginx -T), against what the workers dial:
    # vanished addresses it still lists (a reload re-reads them), ready endpoints it lists.
    config_stale: list[str]
    config_current: list[str]
    config_where: dict[str, str]  # address -> "upstream U at path:line" in the config on disk
    config_note: str  # why a reload would not change what it dials (config_not_applied), or ""
    recovered: bool  # answers now, and every upstream error since its reload was a vanished address


#: A reload at least this long after the endpoints appeared saw them (timestamps are whole seconds).
_CLOCK_SLACK = datetime.timedelta(seconds=1)
#: A crash resets the connections in flight when the process dies: errors this close to a
#: container's termination fit it; errors long after it do not.
_CRASH_WINDOW = datetime.timedelta(seconds=10)


def _runtime_resolved(proxy: ProxyFact) -> bool:
    """Every upstream host of the replica is resolved per request (resolver + a variable)."""
    hosts = proxy["upstream_hosts"]
    return bool(hosts) and all(h["runtime_resolved"] for h in hosts)


def _join(items, empty="none"):
    items = [str(i) for i in items]
    return ", ".join(items) if items else empty


class _Facts:
    """What the rules read of the facts (normalised: a part that is None was not gathered)."""

    def __init__(self, facts: Facts) -> None:
        self.missing: list[str] = []
        self.symptom = facts["symptom"]
        self.service = facts["service"]
        self.pods = facts["pods"]
        self.proxies = facts["proxies"]
        self.probes = facts["probes"] if facts["probes"] is not None else facts["svc_probes"]
        self.self_probes = facts["self_probes"] or []
        for layer in facts["layers"]:
            if layer["status"] == "error":
                self.missing.append(
                    "layer %s could not be checked: %s"
                    % (layer["name"], layer["message"] or "no detail")
                )
        for name, error in sorted(facts["errors"].items()):
            self.missing.append("%s: %s" % (name, error))
        for part, value, what in (
            ("service", self.service, "the backend Service and its EndpointSlices (service_info)"),
            ("pods", self.pods, "the backend pods (pod_info)"),
            ("proxies", self.proxies, "the proxy replicas' logs and config (proxy_info)"),
        ):
            if value is None:
                self.missing.append("%s: %s were not gathered" % (part, what))
        self.index = build_index(self.service, self.pods)
        svc = self.service
        self.svc_name = "%s/%s" % (svc["namespace"] or "?", svc["name"] or "?") if svc else None
        self.ready: list[str] = sorted(set(svc["ready_addresses"])) if svc else []
        self.not_ready: list[str] = sorted(set(svc["not_ready_addresses"])) if svc else []
        self.terminating: list[str] = sorted(set(svc["terminating_addresses"])) if svc else []
        if svc and not (self.ready or self.not_ready or self.terminating):
            by_state = {
                "ready": self.ready,
                "not_ready": self.not_ready,
                "terminating": self.terminating,
            }
            for endpoint in svc["endpoints"]:
                if endpoint["address"]:
                    by_state[endpoint_state(endpoint)].append(endpoint["address"])
        self.svc_health = service_health(svc) if svc else None
        # crashed: with no ready endpoint, a crash in a pod's history counts even if a read
        # caught it in one of a crash loop's running moments (the endpoints were read at another).
        self.crash, self.crashed, self.restarted, self.not_ready_pods, self.deleting = (
            self._pod_trouble()
        )
        self.endpoints_since = self._endpoints_since()
        self.self_probe = {
            "%s/%s" % (p["namespace"], p["name"]): p for p in self.self_probes if probe_ran(p)
        }
        self.replicas = [self._replica(p) for p in self.proxies or []]
        self.held = [line for r in self.replicas for line in r["held"]]
        # What could not be read is named, never taken for clean (nor for broken).
        self.unchecked: list[str] = []
        for replica in self.replicas:
            for part, message in sorted(replica["read_errors"].items()):
                self.unchecked.append(
                    "proxy %s: %s could not be read: %s" % (replica["name"], part, message)
                )
        for kind, probes in (("probe", self.probes or []), ("self-probe", self.self_probes)):
            for probe in probes:
                if not probe_ran(probe):
                    self.unchecked.append(
                        "%s from %s/%s could not run: %s"
                        % (kind, probe["namespace"], probe["name"], probe["error"] or "no detail")
                    )
        self.missing.extend(self.unchecked)

    def _replica(self, proxy: ProxyFact) -> _Replica:
        after = proxy["counts_after_reload"]
        dialled = []
        for item in proxy["upstream_addresses"]:
            if not item["address"]:
                continue
            entry = item.copy()
            if entry["state"] not in _STATE_TEXT:
                found = classify_address(entry["address"], self.index)
                entry["state"], entry["objects"] = found["state"], found["objects"]
                entry["port_match"] = found["port_match"]
            dialled.append(entry)
        stale = set(proxy["stale_addresses"])
        stale.update(e["address"] for e in dialled if e["state"] == "stale" and e["after_reload"])
        name = "%s/%s" % (proxy["namespace"], proxy["name"])
        probe = self.self_probe.get(name)
        answers_now = None if probe is None else not is_server_error(probe["status"])
        errors_after = sum(upstream_errors(after).values())
        stale_errors = sum(
            sum(upstream_errors(e["signatures"]).values())
            for e in dialled
            if e["address"] in stale and e["after_reload"]
        )
        recovered = bool(stale and answers_now and stale_errors >= errors_after)
        on_disk = config_literals(proxy["upstream_hosts"])
        config_stale = sorted(a for a in stale if a in on_disk)
        config_note = ""
        held = self._held(proxy, name, sorted(stale), probe, answers_now) if stale else []
        if stale and proxy["config_ok"] is False:
            # The config on disk does not load (a bad snippet): a reload keeps the old one.
            why = next((p for p in proxy["problems"] if "failed" in p), "its config test failed")
            config_stale = sorted(stale)
            on_disk = dict(
                on_disk, **{a: "the config on disk does not load: the old one stays" for a in stale}
            )
            held.append(
                "proxy %s's config on disk does not load (%s): a reload would keep the old "
                "config, which dials %s" % (name, why, _join(config_stale))
            )
            config_note = held[-1]
        elif config_stale:
            held.append(
                "proxy %s's config on disk, re-read now, still lists %s: a reload would re-read "
                "the same stale config"
                % (name, _join("%s (%s)" % (a, on_disk[a]) for a in config_stale))
            )
            config_note = (
                "proxy %s's config on disk, re-read now, still lists %s, which nothing in the "
                "cluster has: whatever renders it did not write the current endpoints, and a "
                "reload would re-read the same stale config"
                % (name, _join("%s (%s)" % (a, on_disk[a]) for a in config_stale))
            )
        return {
            "name": name,
            "proxy": proxy,
            "reload": proxy["last_reload"],
            "after": after,
            "errors_after": errors_after,
            "dialled": dialled,
            "current": [e for e in dialled if e["after_reload"]],
            "stale": [] if held else sorted(stale),
            "stale_seen": sorted(stale),
            "held": held,
            "answers_now": answers_now,
            "recovered": recovered,
            "config_stale": config_stale,
            "config_current": sorted(a for a in on_disk if a in self.ready),
            "config_where": on_disk,
            "config_note": config_note,
            # since the last reload (an empty dict means no request since then)
            "status_counts": proxy["access"]["status_counts_after_reload"],
            "upstream_status_counts": proxy["access"]["upstream_status_counts"],
            "config_ok": proxy["config_ok"],
            "read_errors": {k: v for k, v in proxy["read_errors"].items() if v},
        }

    def _endpoints_since(self) -> datetime.datetime | None:
        """When what a reload would resolve now appeared: the newest ready endpoint of the
        Service (its pod's Ready time, else its creation time) or the Service itself (a
        recreated Service has a new ClusterIP), or None when no time is known."""
        ips = {address.rsplit(":", 1)[0] for address in self.ready}
        times = []
        created = parse_time(self.service["creation_timestamp"]) if self.service else None
        if created is not None and self.ready:
            times.append(created)
        for pod in self.pods or []:
            if ips & set(pod["pod_ips"] or ([pod["pod_ip"]] if pod["pod_ip"] else [])):
                when = parse_time(pod["ready_since"]) or parse_time(pod["creation_timestamp"])
                if when is not None:
                    times.append(when)
        return max(times) if times else None

    def _held(self, proxy, name, stale, probe, answers_now) -> list[str]:
        """Why a replica that dialled vanished addresses since its last reload should NOT be
        reloaded (each line a piece of evidence against the reload), or [] when it should."""
        held = []
        if answers_now:
            held.append(
                "proxy %s dialled vanished %s since its last reload, but answered %s on its own "
                "address %s just now: it is not failing, a reload would change nothing it needs%s"
                % (
                    name,
                    _join(stale),
                    probe["status"],
                    probe["url"],
                    ""
                    if not _runtime_resolved(proxy)
                    else " (it resolves its upstream at run "
                    "time, resolver + variable, and has moved on to the current address)",
                )
            )
        elif answers_now is None and _runtime_resolved(proxy):
            held.append(
                "proxy %s dialled vanished %s, but resolves its upstream at run time (resolver "
                "+ variable) and its own address could not be probed: whether it still fails is "
                "unknown" % (name, _join(stale))
            )
        reload = parse_time(proxy["last_reload"])
        if (
            reload is not None
            and self.endpoints_since is not None
            and reload >= self.endpoints_since + _CLOCK_SLACK
        ):
            held.append(
                "proxy %s last (re)loaded at %s, after the current endpoints of %s appeared "
                "(%s): a reload would resolve the same addresses again"
                % (name, proxy["last_reload"], self.svc_name, format_time(self.endpoints_since))
            )
        return held

    def restarts_near(self, signatures):
        """Restart lines of backend containers that terminated within the crash window of an
        error with one of ``signatures`` since a reload; all restart lines if no error time is known."""
        times = [
            parse_time(err.get("time"))
            for r in self.replicas
            for err in r["proxy"]["errors"]
            if err.get("signature") in signatures and err.get("after_reload", True)
        ]
        times = [x for x in times if x is not None]
        if not times:
            return list(self.restarted)
        near = []
        for pod in self.pods or []:
            for container in pod["containers"]:
                last = container["last_state"]
                if last is None:
                    continue
                finished = parse_time(last["finished_at"])
                if finished is None:
                    continue
                if any(abs(x - finished) <= _CRASH_WINDOW for x in times):
                    near.append(
                        "pod %s/%s container %s terminated %s (exit %s) at %s, as the connections "
                        "broke"
                        % (
                            pod["namespace"],
                            pod["name"],
                            container["name"],
                            last["reason"],
                            last["exit_code"],
                            last["finished_at"],
                        )
                    )
        return near

    def symptomatic(self) -> bool:
        """Something is failing now or since a reload: an upstream error or a 5xx of a replica
        that has not recovered, a probe or the symptom answering 5xx."""
        for replica in self.replicas:
            if replica["recovered"]:
                continue
            if replica["errors_after"] or replica["answers_now"] is False:
                return True
            if any(code.startswith("5") and n for code, n in replica["status_counts"].items()):
                return True
        if any(is_server_error(probe["status"]) for probe in self.probes or [] if probe_ran(probe)):
            return True
        status = self.symptom["status"] if self.symptom else None
        return status is not None and status >= 500

    def sig_total(self, signatures):
        return sum(r["after"].get(s, 0) for r in self.replicas for s in signatures)

    def entries(self, states=None, signatures=None):
        """(replica, entry) pairs dialled after the reload, filtered."""
        out = []
        for replica in self.replicas:
            for entry in replica["current"]:
                if states and entry["state"] not in states:
                    continue
                sigs = entry["signatures"]
                if signatures and sigs and not any(sigs.get(s) for s in signatures):
                    continue
                if signatures and not sigs and not any(replica["after"].get(s) for s in signatures):
                    continue
                out.append((replica, entry))
        return out

    def stale_pairs(self):
        """(replica, entry) pairs: a stale address dialled after the replica's last reload."""
        return [(r, e) for r in self.replicas for e in r["current"] if e["address"] in r["stale"]]

    def _pod_trouble(self):
        """(crashing pods, pods with a crash in their history, restarted pods, not-ready running
        pods, deleting pods) lines."""
        crash, crashed, restarted, not_ready, deleting = [], [], [], [], []
        for pod in self.pods or []:
            name = "%s/%s" % (pod["namespace"], pod["name"])
            health = pod_health(pod)
            line = "pod %s (%s)" % (name, _join(health["problems"], pod["phase"] or "?"))
            if health["crashing"]:
                crash.append(line)
            if health["crashed"]:
                crashed.append(line)
            if health["restarts"] > 0:
                detail = _join(
                    [
                        "%s exit %s at %s" % (ls["reason"], ls["exit_code"], ls["finished_at"])
                        for ls in (c["last_state"] for c in pod["containers"])
                        if ls
                    ],
                    "no lastState",
                )
                restarted.append(
                    "pod %s restarted %d times (%s)" % (name, health["restarts"], detail)
                )
            if health["not_ready"]:
                not_ready.append("pod %s" % name)
            if health["deleting"]:
                deleting.append("pod %s (deleting since %s)" % (name, health["deleting"]))
        return crash, crashed, restarted, not_ready, deleting


def _dial_line(replica: _Replica, entry: AddressFact) -> str:
    count = entry["count_after_reload"] or entry["count"]
    since = replica["reload"]
    objects = entry["objects"]
    return "proxy %s dialled %s (%s%s) %d times since its last reload%s%s" % (
        replica["name"],
        entry["address"],
        _STATE_TEXT.get(entry["state"], entry["state"]),
        ": " + _join(objects) if objects and entry["state"] != "stale" else "",
        count,
        " at %s" % since if since else " (reload time unknown)",
        "; last seen %s" % entry["last_seen"] if entry["last_seen"] else "",
    )


def _sig_line(facts: _Facts, signatures, text):
    parts = []
    for replica in facts.replicas:
        hits = {s: replica["after"][s] for s in signatures if replica["after"].get(s)}
        if hits:
            parts.append(
                "proxy %s logged %s since its last reload%s"
                % (
                    replica["name"],
                    _join("%s x%d" % kv for kv in sorted(hits.items())),
                    " at %s" % replica["reload"] if replica["reload"] else "",
                )
            )
    return ["%s: %s" % (text, p) for p in parts]


def _error_examples(facts: _Facts, signatures, limit=2):
    out = []
    for replica in facts.replicas:
        for err in replica["proxy"]["errors"]:
            if err.get("signature") in signatures and err.get("after_reload", True):
                out.append(
                    "proxy %s: [%s] %s%s"
                    % (
                        replica["name"],
                        err.get("level"),
                        err.get("message"),
                        " (upstream %s)" % err["upstream"] if err.get("upstream") else "",
                    )
                )
    return out[-limit:]


def _keepalive(facts: _Facts):
    """(lines for replicas whose upstreams keep idle connections, names of replicas known not to)."""
    keep, no_keep = [], []
    for replica in facts.replicas:
        groups = replica["proxy"]["upstream_keepalive"]
        if groups:
            keep.append(
                "proxy %s keeps idle upstream connections: %s"
                % (
                    replica["name"],
                    _join(
                        "upstream %s (keepalive %s, keepalive_timeout %s)"
                        % (g["upstream"], g["keepalive"], g["keepalive_timeout"] or "60s")
                        for g in groups
                    ),
                )
            )
        elif replica["config_ok"]:
            no_keep.append(replica["name"])
    return keep, no_keep


def _candidate(cause, strong, evidence, missing=None):
    """A cause that fits: ``strong`` when the evidence alone supports it."""
    return {
        "cause": cause,
        "strong": strong,
        "evidence": list(evidence),
        "missing": list(missing or []),
    }


def _ruled_out(cause, against, evidence=()):
    """A cause some evidence pointed to (``evidence``) that other evidence rules out (``against``):
    never chosen, listed in the verdict's ``hypotheses`` with both sides."""
    return {
        "cause": cause,
        "strong": None,
        "evidence": list(evidence),
        "missing": [],
        "against": list(against),
    }


# ---------------------------------------------------------------------------------------------
# The rules: one per cause, in the registry's order. Each returns the candidates it finds (and
# the causes it rules out, with the evidence against them).


def _service_missing(facts: _Facts):
    return facts.svc_health is not None and not facts.svc_health["exists"]


def _without_ready_endpoint(facts: _Facts):
    """The Service exists and has no ready endpoint."""
    return facts.svc_health is not None and facts.svc_health["exists"] and not facts.ready


def _no_ready_line(facts: _Facts):
    return "Service %s has no ready endpoint (not ready: %s; terminating: %s)" % (
        facts.svc_name,
        _join(facts.not_ready),
        _join(facts.terminating),
    )


@rule("stale_upstream")
def _stale_upstream(facts: _Facts):
    """Dialled after the last reload, an address nothing current has."""
    stale_pairs = facts.stale_pairs()
    stale_only = [
        r
        for r in facts.replicas
        if r["stale"] and not any(e["address"] in r["stale"] for e in r["current"])
    ]
    if not (stale_pairs or stale_only):
        if facts.held:
            seen = [
                _dial_line(r, e)
                for r in facts.replicas
                for e in r["current"]
                if e["address"] in r["stale_seen"]
            ]
            return [_ruled_out("stale_upstream", facts.held, seen)]
        return []
    evidence = [_dial_line(r, e) for r, e in stale_pairs]
    evidence += [
        "proxy %s dials %s, which nothing in the cluster has" % (r["name"], _join(r["stale"]))
        for r in stale_only
    ]
    if not (facts.service and facts.ready):
        missing = (
            []
            if facts.service
            else [
                "the Service's current endpoints (service_info), to "
                "confirm that ready endpoints exist"
            ]
        )
        return [_candidate("stale_upstream", False, evidence, missing)]
    evidence.append("Service %s has ready endpoints %s" % (facts.svc_name, _join(facts.ready)))
    evidence += [
        "proxy %s's config on disk, re-read now, lists %s (ready endpoints): its workers run an "
        "older load of it, so a reload loads the current addresses"
        % (r["name"], _join("%s (%s)" % (a, r["config_where"][a]) for a in r["config_current"]))
        for r in facts.replicas
        if r["stale"] and r["config_current"]
    ]
    clean = [r["name"] for r in facts.replicas if not r["stale_seen"]]
    if clean:
        evidence.append("replicas not dialling stale addresses: %s" % _join(clean))
    evidence += facts.held
    for probe in facts.probes or []:
        if not is_server_error(probe["status"]):
            evidence.append(
                "probe from %s/%s to %s answered %s: the Service itself "
                "works" % (probe["namespace"], probe["name"], probe["url"], probe["status"])
            )
    stale_names = {r["name"] for r in facts.replicas if r["stale"]}
    for probe in facts.self_probes:
        who = "%s/%s" % (probe["namespace"], probe["name"])
        evidence.append(
            "replica %s (%s) answered %s on its own address %s"
            % (
                who,
                "stale" if who in stale_names else "not stale",
                probe["status"] if probe["status"] is not None else "nothing",
                probe["url"],
            )
        )
    return [_candidate("stale_upstream", True, evidence)]


@rule("config_not_applied")
def _config_not_applied(facts: _Facts):
    """Dialled after the last reload, a vanished address that the config on disk still lists."""
    found = [r for r in facts.replicas if r["config_stale"] and not r["answers_now"]]
    if not found:
        return []
    evidence = [
        _dial_line(r, e) for r in found for e in r["current"] if e["address"] in r["config_stale"]
    ]
    evidence += [r["config_note"] for r in found]
    if not (facts.service and facts.ready):
        missing = [] if facts.service else ["the Service's current endpoints (service_info)"]
        return [_candidate("config_not_applied", False, evidence, missing)]
    evidence.append(
        "Service %s has ready endpoints %s, which the stale configs do not list"
        % (facts.svc_name, _join(facts.ready))
    )
    current = [r["name"] for r in facts.replicas if r["config_current"] and not r["stale_seen"]]
    if current:
        evidence.append("replicas whose config lists the current endpoints: %s" % _join(current))
    return [_candidate("config_not_applied", True, evidence)]


@rule("no_endpoints")
def _no_endpoints(facts: _Facts):
    """The Service is missing (and no name fails to resolve), or selects nothing ready."""
    if _service_missing(facts):
        if facts.sig_total(DNS):
            return []  # a missing Service whose name fails to resolve: dns_failure
        return [_candidate("no_endpoints", False, ["Service %s does not exist" % facts.svc_name])]
    if (
        not _without_ready_endpoint(facts)
        or facts.crashed
        or facts.not_ready
        or facts.not_ready_pods
        or facts.terminating
        or facts.service is None
    ):
        return []
    if service_health(facts.service)["selects_no_pod"]:
        why = "its selector %s matches no pod" % selector_text(facts.service["selector"])
    else:
        why = "its EndpointSlices list no address"
    return [
        _candidate(
            "no_endpoints",
            True,
            [_no_ready_line(facts), why] + _sig_line(facts, CONNECT, "the proxy's symptom"),
        )
    ]


@rule("backend_not_ready")
def _backend_not_ready(facts: _Facts):
    """No ready endpoint, no crash, and pods or endpoints that are not Ready."""
    if (
        not _without_ready_endpoint(facts)
        or facts.crashed
        or not (facts.not_ready or facts.not_ready_pods)
    ):
        return []
    return [
        _candidate(
            "backend_not_ready",
            True,
            [_no_ready_line(facts), "running but not Ready: %s" % _join(facts.not_ready_pods)],
        )
    ]


@rule("backend_down")
def _backend_down(facts: _Facts):
    """Crashing pods: the cause when no endpoint is ready, a lead when some still are."""
    if facts.svc_health is None or _service_missing(facts):
        return []
    if not facts.ready and facts.crashed:
        return [
            _candidate(
                "backend_down", True, facts.crashed + [_no_ready_line(facts)] + facts.restarted
            )
        ]
    if not facts.crash:
        return []
    if not facts.symptomatic():
        # a crashing pod beside ready ones, and no failure to explain: a warning
        return [
            _ruled_out(
                "backend_down",
                [
                    "Service %s has ready endpoints %s, and nothing fails: no upstream error or "
                    "5xx since a reload, no probe answering 5xx"
                    % (facts.svc_name, _join(facts.ready))
                ],
                facts.crash,
            )
        ]
    return [
        _candidate(
            "backend_down",
            False,
            facts.crash + facts.restarted,
            [
                "whether the crashing pods are the ones the proxy dials (some endpoints are "
                "still ready)"
            ],
        )
    ]


@rule("port_mismatch")
def _port_mismatch(facts: _Facts):
    """A targetPort pods do not expose, a wrong port dialled, or a refusal on a ready endpoint."""
    evidence = [
        "Service %s %s" % (facts.svc_name, line)
        for line in (facts.svc_health or {}).get("port_mismatches", [])
    ]
    wrong_port = facts.entries(states=("pod_ip", "cluster_ip"), signatures=CONNECT)
    evidence += [
        _dial_line(r, e) + " (wrong port)" for r, e in wrong_port if e["port_match"] is False
    ]
    refused_ready = facts.entries(states=("ready_endpoint",), signatures=("connect_refused",))
    evidence += [
        _dial_line(r, e) + ": connection refused on a READY endpoint, so nothing "
        "listens on that port"
        for r, e in refused_ready
    ]
    return [_candidate("port_mismatch", True, evidence)] if evidence else []


@rule("dns_failure")
def _dns_failure(facts: _Facts):
    """nginx logged that a name could not be resolved (at run time or at config load)."""
    if not facts.sig_total(DNS):
        return []
    names = sorted(
        {
            err["name"].rstrip(".")
            for r in facts.replicas
            for err in r["proxy"]["errors"]
            if err.get("signature") in DNS and err.get("after_reload", True) and err.get("name")
        }
    )
    svc = facts.service
    if (
        names
        and svc
        and svc["exists"]
        and not facts.ready
        and all(n.split(".")[1:3] == [svc["namespace"], "svc"] for n in names)
    ):
        # A headless Service's name resolves to its ready endpoints only: with none (the pods
        # of the Service's namespace are down or not Ready), the cluster DNS answers NXDOMAIN.
        # The resolver works; the endpoints are the finding.
        own = all(n.split(".")[0] == svc["name"] for n in names) and svc["headless"]
        return [
            _ruled_out(
                "dns_failure",
                [
                    "%s %s, and %s has no ready endpoint: a headless Service's name resolves to "
                    "its ready endpoints only, so the lookup fails because of the endpoints, not "
                    "of DNS%s"
                    % (
                        _join(names),
                        "is the headless Service %s" % facts.svc_name
                        if own
                        else "names a Service in %s" % svc["namespace"],
                        facts.svc_name,
                        ""
                        if own
                        else " (if that Service does not exist or selects other pods, the name "
                        "is wrong as well)",
                    )
                ],
                _sig_line(facts, DNS, "name resolution failed"),
            )
        ]
    found = []
    if _service_missing(facts):
        found.append(
            _candidate("dns_failure", True, ["Service %s does not exist" % facts.svc_name])
        )
    evidence = _sig_line(facts, DNS, "name resolution failed")
    evidence += _error_examples(facts, DNS)
    for replica in facts.replicas:
        failed = replica["proxy"]["failed_reloads"]
        if failed or replica["config_ok"] is False:
            evidence.append(
                "proxy %s: a reload failed or its config does not load; the "
                "old config keeps running" % replica["name"]
            )
    found.append(_candidate("dns_failure", True, evidence))
    return found


def _close_evidence(facts: _Facts):
    return _sig_line(facts, CLOSE, "the backend closed connections") + _error_examples(facts, CLOSE)


@rule("backend_crash")
def _backend_crash(facts: _Facts):
    """The backend closed or reset connections, and its pods restarted or crash."""
    if not facts.sig_total(CLOSE):
        return []
    near = facts.restarts_near(CLOSE)
    if near or facts.crash:
        return [_candidate("backend_crash", True, _close_evidence(facts) + near + facts.crash)]
    if facts.restarted:
        return [
            _ruled_out(
                "backend_crash",
                [
                    "no backend container terminated within %ds of those errors: %s"
                    % (_CRASH_WINDOW.total_seconds(), _join(facts.restarted))
                ],
                _close_evidence(facts),
            )
        ]
    if facts.pods is None:
        return [
            _candidate(
                "backend_crash",
                False,
                _close_evidence(facts),
                ["the backend pods' restarts (pod_info)"],
            )
        ]
    return []


@rule("keepalive_mismatch")
def _keepalive_mismatch(facts: _Facts):
    """Closes or resets from healthy, never restarted pods, with no rollout under way."""
    if (
        not facts.sig_total(CLOSE)
        or facts.restarts_near(CLOSE)
        or facts.crash
        or facts.pods is None
        or facts.deleting
        or facts.terminating
    ):
        return []
    evidence = _close_evidence(facts)
    requests = sum(sum(r["status_counts"].values()) for r in facts.replicas)
    bad = sum(r["status_counts"].get("502", 0) for r in facts.replicas)
    rate = "%d of %d requests got 502" % (bad, requests) if requests else "request counts unknown"
    healthy_line = "backend pods %s are healthy, with no restart when the connections broke; %s" % (
        _join("%s/%s" % (p["namespace"], p["name"]) for p in facts.pods),
        rate,
    )
    keep, no_keep = _keepalive(facts)
    if no_keep and not keep:
        # nginx opens a new connection per request: no idle connection can be raced
        return [
            _candidate(
                "keepalive_mismatch",
                False,
                [healthy_line] + evidence,
                [
                    "proxy %s keeps no upstream connection alive (no keepalive in an upstream "
                    "block), so an idle-timeout race is unlikely: see the backend's own logs "
                    "for why it closes connections mid-request" % _join(no_keep)
                ],
            )
        ]
    return [
        _candidate(
            "keepalive_mismatch",
            True,
            evidence[:1] + [healthy_line] + keep + evidence[1:],
            [
                "the backend's keep-alive idle timeout (it must be longer than the proxy's "
                "upstream keepalive_timeout)"
            ],
        )
    ]


@rule("rollout_race")
def _rollout_race(facts: _Facts):
    """Connect errors or closes towards terminating endpoints, or during a rollout."""
    stale_pairs = facts.stale_pairs()
    racing = facts.entries(states=("terminating_endpoint",), signatures=CONNECT + CLOSE)
    if racing or (
        (facts.terminating or facts.deleting)
        and facts.sig_total(CONNECT + CLOSE)
        and not stale_pairs
    ):
        evidence = [_dial_line(r, e) for r, e in racing]
        evidence += (
            ["terminating endpoints of %s: %s" % (facts.svc_name, _join(facts.terminating))]
            if facts.terminating
            else []
        )
        evidence += facts.deleting
        return [_candidate("rollout_race", True, evidence)]
    if stale_pairs and (facts.terminating or facts.deleting):
        return [
            _candidate(
                "rollout_race",
                True,
                facts.deleting + ["terminating endpoints: %s" % _join(facts.terminating)],
                [
                    "a rollout is in progress: re-run when it has finished; if a replica still dials "
                    "%s then, it is stale_upstream"
                    % _join(sorted({e["address"] for _r, e in stale_pairs}))
                ],
            )
        ]
    return []


@rule("header_too_big")
def _header_too_big(facts: _Facts):
    """nginx logged that the backend's response header did not fit its buffer."""
    if not facts.sig_total(("header_too_big",)):
        return []
    return [
        _candidate(
            "header_too_big",
            True,
            _sig_line(
                facts,
                ("header_too_big",),
                "the backend's response headers exceed the proxy's buffer",
            )
            + _error_examples(facts, ("header_too_big",)),
        )
    ]


@rule("protocol_mismatch")
def _protocol_mismatch(facts: _Facts):
    """nginx logged an invalid HTTP header or a failed TLS handshake or verification."""
    if not facts.sig_total(PROTOCOL):
        return []
    return [
        _candidate(
            "protocol_mismatch",
            True,
            _sig_line(facts, PROTOCOL, "the proxy and the backend speak different protocols")
            + _error_examples(facts, PROTOCOL),
        )
    ]


@rule("network_blocked")
def _network_blocked(facts: _Facts):
    """Connects that time out or find no route, towards CURRENT addresses."""
    blocked = facts.entries(
        states=("ready_endpoint", "not_ready_endpoint", "pod_ip", "cluster_ip"),
        signatures=("connect_timeout", "connect_unreachable"),
    )
    if not blocked:
        return []
    return [
        _candidate(
            "network_blocked",
            True,
            [
                _dial_line(r, e) + ": connect timed out / unreachable towards a current address"
                for r, e in blocked
            ],
            [
                "the NetworkPolicies selecting the backend pods (this "
                "collection does not read them yet)"
            ],
        )
    ]


@rule("upstream_timeout")
def _upstream_timeout(facts: _Facts):
    """Connected, then no answer within the read (or send) timeout, from a Ready backend."""
    if not facts.sig_total(("upstream_timeout",)):
        return []
    evidence = _sig_line(
        facts,
        ("upstream_timeout",),
        "the backend did not answer within the proxy's timeout after the connection was made",
    )
    evidence += [
        _dial_line(r, e) + ": connected, then no answer in time"
        for r, e in facts.entries(
            states=("ready_endpoint", "cluster_ip", "pod_ip"), signatures=("upstream_timeout",)
        )
    ]
    evidence += [
        "proxy %s answered 504 %d times since its last reload"
        % (r["name"], r["status_counts"]["504"])
        for r in facts.replicas
        if r["status_counts"].get("504")
    ]
    evidence += _error_examples(facts, ("upstream_timeout",))
    if facts.ready and not facts.crash:
        return [
            _candidate(
                "upstream_timeout",
                True,
                evidence
                + ["Service %s has ready endpoints %s" % (facts.svc_name, _join(facts.ready))],
            )
        ]
    return [
        _candidate(
            "upstream_timeout",
            False,
            evidence,
            [
                "a Ready backend (the Service's ready endpoints and its pods, service_info and "
                "pod_info): a backend that is down or crashing times out too"
            ],
        )
    ]


@rule("backend_502")
def _backend_502(facts: _Facts):
    """502 passed through or answered, with no upstream error line in the proxy's log."""
    if any(r["errors_after"] for r in facts.replicas):
        return []
    passed = sum(r["upstream_status_counts"].get("502", 0) for r in facts.replicas)
    own = sum(r["status_counts"].get("502", 0) for r in facts.replicas)
    probe_502 = [p for p in facts.probes or [] if p["status"] == 502]
    if not (passed or own or probe_502):
        return []
    secondary = facts.sig_total(SECONDARY_SIGNATURES)
    if secondary and not passed:
        # nginx marked the servers failed (no live upstreams) and answers 502 itself: the
        # failure that marked them is older than the log window, or its statuses are not logged.
        return [
            _ruled_out(
                "backend_502",
                [
                    "no server answered 502 itself (no $upstream_status 502): the 502s came from "
                    "the proxy after it marked every server failed"
                ],
                _sig_line(facts, SECONDARY_SIGNATURES, "secondary lines"),
            ),
            _candidate(
                "unknown",
                False,
                _sig_line(facts, SECONDARY_SIGNATURES, "nginx marked its upstream servers failed")
                + _error_examples(facts, SECONDARY_SIGNATURES),
                [
                    "the failure that marked the servers failed (max_fails) is not in the log "
                    "read: widen since_seconds/tail_lines, or log $upstream_status"
                ],
            ),
        ]
    evidence = [
        "proxy %s answered 502 %d times with no upstream error in its log"
        % (r["name"], r["status_counts"].get("502", 0))
        for r in facts.replicas
        if r["status_counts"].get("502")
    ]
    evidence += (
        ["upstream itself answered 502 (%d times per $upstream_status)" % passed] if passed else []
    )
    evidence += [
        "probe from %s/%s to %s answered 502" % (p["namespace"], p["name"], p["url"])
        for p in probe_502
    ]
    return [_candidate("backend_502", bool(passed or own), evidence)]


def _rules(facts: _Facts):
    """Every candidate cause with its evidence: each registered rule, in the registry's order."""
    found = []
    for cause in REGISTRY:
        if cause.rule is not None:
            found.extend(cause.rule(facts))
    return found


def _healthy(facts: _Facts):
    """Evidence lines when every gathered layer is clean, else None."""
    if facts.proxies is None or not facts.replicas or facts.service is None or facts.pods is None:
        return None
    if facts.unchecked:
        return None  # healthy is a finding: a part that could not be read cannot be healthy
    if any(r["stale"] for r in facts.replicas):
        return None
    for replica in facts.replicas:
        if replica["recovered"]:
            continue  # its only errors were a vanished address it no longer dials (held lines)
        if replica["errors_after"] or any(replica["after"].get(s) for s in SECONDARY_SIGNATURES):
            return None
        if any(code.startswith("5") and n for code, n in replica["status_counts"].items()):
            return None
    if any(is_server_error(probe["status"]) for probe in (facts.probes or []) + facts.self_probes):
        return None
    if facts.service and not facts.ready:
        return None
    status = facts.symptom["status"] if facts.symptom else None
    if status is not None and status >= 500:
        return None
    evidence = []
    for replica in facts.replicas:
        if replica["recovered"]:
            evidence.extend(replica["held"])
            continue
        before = sum(upstream_errors(replica["proxy"]["counts"]).values())
        evidence.append(
            "proxy %s: no upstream error since its last reload%s%s"
            % (
                replica["name"],
                " at %s" % replica["reload"] if replica["reload"] else "",
                " (%d before it, fixed by that reload)" % before if before else "",
            )
        )
    if facts.service:
        evidence.append("Service %s has ready endpoints %s" % (facts.svc_name, _join(facts.ready)))
    for probe in facts.probes or []:
        evidence.append(
            "probe from %s/%s to %s answered %s"
            % (probe["namespace"], probe["name"], probe["url"], probe["status"])
        )
    return evidence


def _warnings(facts: _Facts, cause: str) -> list[str]:
    """What is wrong but is not the cause: replicas that dialled vanished addresses and are not
    to be reloaded, and crashing backend pods beside ready ones."""
    lines = list(facts.held)
    if cause not in ("backend_down", "backend_crash"):
        lines += ["backend %s is crashing, not the cause of this verdict" % c for c in facts.crash]
    return lines


def _summary(cause, facts, chosen, verdict):
    svc = facts.svc_name or "the backend Service"
    if cause == "stale_upstream":
        return (
            "stale_upstream: proxy replica(s) %s still dial %s, which no pod, endpoint or "
            "Service has any more; %s's ready endpoints are now %s. %s; a reload of "
            "those replicas picks up the current one."
            % (
                _join(verdict["stale_replicas"]),
                _join(verdict["stale_addresses"]),
                svc,
                _join(verdict["current_addresses"]),
                "Their config on disk already lists the current endpoints, but their workers "
                "still run the config loaded before it was rewritten (a failed or skipped reload)"
                if all(r["config_current"] for r in facts.replicas if r["stale"])
                and verdict["stale_replicas"]
                else _kind_words(facts, verdict["stale_replicas"])["kept"],
            )
        )
    if cause == "config_not_applied":
        found = [r for r in facts.replicas if r["config_stale"] and not r["answers_now"]]
        return (
            "config_not_applied: proxy replica(s) %s dial %s, which no pod, endpoint or Service "
            "has any more, and their config on disk, re-read now, keeps it (%s); %s's "
            "ready endpoints are now %s. What renders that config (a controller's control plane "
            "or agent, a ConfigMap, a sidecar) did not write the current endpoints - it did not "
            "push, or a bad snippet blocked it - so a reload would load the same stale "
            "addresses again: none is made. Look at the controller's side."
            % (
                _join(r["name"] for r in found),
                _join(sorted({a for r in found for a in r["config_stale"]})),
                _join(sorted({r["config_where"][a] for r in found for a in r["config_stale"]})),
                svc,
                _join(verdict["current_addresses"]),
            )
        )
    if cause == "healthy":
        return (
            "healthy: no upstream error and no 5xx since each proxy replica's last "
            "reload; %s has ready endpoints %s." % (svc, _join(verdict["current_addresses"]))
        )
    if cause == "unknown":
        if verdict["candidates"]:
            return (
                "unknown: %s fit the evidence equally; see missing_evidence for what "
                "separates them." % " and ".join(verdict["candidates"])
            )
        return "unknown: the rules cannot place the evidence%s." % (
            "; missing: " + "; ".join(facts.missing) if facts.missing else ""
        )
    lines = chosen["evidence"][:2] if chosen else []
    return "%s: %s" % (cause, "; ".join(lines))


def decide(facts):
    """Decide the cause of a 502 from gathered facts (DESIGN.md shapes).

    ``facts``: ``{symptom, pods, service, proxies, probes (or svc_probes), self_probes,
    layers, errors}``; any part may be missing or None. Returns ``{cause, summary,
    evidence, recommendation: {fix, prevention}, missing_evidence, candidates,
    stale_replicas, stale_addresses, current_addresses, reload_safe}``. ``reload_safe`` is
    true only for ``stale_upstream`` with ready current endpoints. Never raises.
    """
    try:
        return _decide(normalize_facts(facts))
    except Exception as exc:  # pylint: disable=broad-except
        # A safety net only: normalize_facts gives the rules complete facts, but a verdict must
        # always come back, naming what went wrong, rather than a traceback in a playbook.
        what = "%s: %s" % (exc.__class__.__name__, exc)
        result: dict[str, object] = {
            key: []
            for key in (
                "evidence",
                "candidates",
                "unchecked",
                "stale_replicas",
                "stale_addresses",
                "current_addresses",
                "warnings",
                "hypotheses",
                "proxy_kinds",
            )
        }
        result["endpoints_since"] = None
        result.update(
            cause="unknown",
            reload_safe=False,
            recommendation=dict(RECOMMENDATIONS["unknown"]),
            summary="unknown: the verdict rules could not read the facts (%s)" % what,
            missing_evidence=["facts in the shapes of DESIGN.md (%s)" % what],
        )
        return result


def _decide(facts: Facts) -> dict[str, t.Any]:
    """:func:`decide` without its safety net, over normalised facts."""
    view = _Facts(facts)
    considered = _rules(view)
    found = [c for c in considered if c["strong"] is not None]
    ruled_out = [c for c in considered if c["strong"] is None]
    strong = [c for c in found if c["strong"]]
    weak = [c for c in found if not c["strong"]]
    causes = [c["cause"] for c in strong]
    for winner, loser in PRECEDENCE:
        if winner in causes and loser in causes:
            causes = [c for c in causes if c != loser]
    # several lines of evidence may name the same cause
    causes = list(dict.fromkeys(causes))
    missing = list(view.missing)
    chosen = None
    if len(causes) == 1:
        cause = causes[0]
        chosen = next(c for c in strong if c["cause"] == cause)
        candidates = [c["cause"] for c in found if c["cause"] != cause]
    elif len(causes) > 1:
        cause = "unknown"
        candidates = causes
        missing.extend("%s vs the others: %s" % (c, separates(c)) for c in causes)
    elif weak:
        weak_causes = list(dict.fromkeys(c["cause"] for c in weak))
        if len(weak_causes) == 1:
            cause, chosen = weak_causes[0], weak[0]
            candidates = []
        else:
            cause, candidates = "unknown", weak_causes
    else:
        healthy = _healthy(view)
        if healthy is not None:
            cause = "healthy"
            chosen = _candidate("healthy", True, healthy)
        else:
            cause = "unknown"
            if view.symptom and view.symptom["status"]:
                missing.append(
                    "the symptom (%s from %s) left no trace in the gathered logs: "
                    "reproduce it and re-run, or widen since_seconds/tail_lines"
                    % (view.symptom["status"], view.symptom["url"])
                )
        candidates = []
    evidence = []
    for candidate in found:
        if chosen is not None and candidate is not chosen and candidate["cause"] == cause:
            evidence.extend(candidate["evidence"])
    if chosen is not None:
        evidence = chosen["evidence"] + evidence
        missing.extend(chosen["missing"])
    elif cause == "unknown":
        for candidate in found:
            evidence.extend(candidate["evidence"])
            missing.extend(candidate["missing"])
        for replica in view.replicas:
            if replica["after"] and not found:
                evidence.append(
                    "proxy %s logged since its last reload: %s"
                    % (
                        replica["name"],
                        _join(
                            "%s x%d" % kv
                            for kv in sorted(
                                dict(
                                    upstream_errors(replica["after"]),
                                    **{
                                        k: n
                                        for k, n in replica["after"].items()
                                        if k in SECONDARY_SIGNATURES and n
                                    },
                                ).items()
                            )
                        ),
                    )
                )
    stale_replicas = sorted(r["name"] for r in view.replicas if r["stale"])
    stale_addresses = sorted({a for r in view.replicas for a in r["stale"]})
    if cause not in ("stale_upstream", "unknown") and stale_replicas:
        evidence.append(
            "also: replicas %s dial stale addresses %s; reload them once %s is "
            "fixed" % (_join(stale_replicas), _join(stale_addresses), cause)
        )
    config_broken = [
        r["name"] for r in view.replicas if r["name"] in stale_replicas and r["config_ok"] is False
    ]
    # A replica whose config or processes could not be read cannot be tested nor proven.
    unreadable = [
        r["name"]
        for r in view.replicas
        if r["name"] in stale_replicas
        and (r["read_errors"].get("config") or r["read_errors"].get("processes"))
    ]
    # Only a cause a reload fixes (stale_upstream) makes a reload safe, and only of stale replicas.
    reload_safe = bool(
        BY_ID[cause].reload_fixes
        and view.ready
        and stale_replicas
        and not config_broken
        and not unreadable
    )
    if cause == "stale_upstream" and config_broken:
        missing.append(
            "the config of %s does not load (nginx -t failed): a reload would keep "
            "the old config" % _join(config_broken)
        )
    if cause == "stale_upstream" and unreadable:
        missing.append(
            "the config or the nginx processes of %s could not be read: a reload "
            "could be neither tested first nor proven afterwards" % _join(unreadable)
        )
    verdict = {
        "cause": cause,
        "summary": "",
        "evidence": list(dict.fromkeys(evidence)),
        "recommendation": dict(RECOMMENDATIONS[cause]),
        "missing_evidence": list(dict.fromkeys(missing)),
        "candidates": sorted(set(candidates) - {cause}),
        "stale_replicas": stale_replicas,
        "stale_addresses": stale_addresses,
        "current_addresses": list(view.ready),
        "reload_safe": reload_safe,
        "unchecked": list(view.unchecked),
        "warnings": _warnings(view, cause),
        "hypotheses": _hypotheses(cause, found, ruled_out),
        "endpoints_since": format_time(view.endpoints_since) if view.endpoints_since else None,
        "proxy_kinds": sorted({r["proxy"]["kind"] for r in view.replicas if r["proxy"]["kind"]}),
    }
    if cause == "stale_upstream":
        words = _kind_words(view, stale_replicas)
        verdict["recommendation"]["fix"] = (
            "On %s only: %s, then %s; confirm new worker processes and a probe that no longer "
            "answers 502 (or 503, 504). Other replicas need nothing."
            % (_join(stale_replicas), words["test"], words["reload"])
        )
        verdict["recommendation"]["prevention"] = words["prevention"]
    verdict["summary"] = _summary(cause, view, chosen, verdict)
    if ruled_out:
        verdict["summary"] += " Ruled out: %s." % "; ".join(
            "%s (%s)" % (c["cause"], c["against"][0]) for c in ruled_out
        )
    return verdict


def _kind_words(facts: _Facts, names) -> dict[str, str]:
    """The reload's words (causes.KIND_WORDS) for the kinds of the replicas ``names`` (nginx
    when no kind is known); several kinds' joined with " / "."""
    kinds = sorted(
        {r["proxy"]["kind"] for r in facts.replicas if r["name"] in names} & set(KIND_WORDS)
    ) or ["nginx"]
    return {
        key: (" / " if key != "prevention" else " ").join(KIND_WORDS[k][key] for k in kinds)
        for key in KIND_WORDS["nginx"]
    }


def _hypotheses(cause, found, ruled_out):
    """Every cause the evidence pointed to, with the evidence for it, against it, and what would
    settle it (``missing``): ``fit`` is ``chosen``, ``strong`` or ``weak`` (it fits; another was
    chosen, or none could be), or ``ruled_out`` (other evidence contradicts it)."""
    out: list[Hypothesis] = []
    for candidate in found:
        if any(h["cause"] == candidate["cause"] for h in out):
            continue
        out.append(
            {
                "cause": candidate["cause"],
                "fit": "chosen"
                if candidate["cause"] == cause
                else ("strong" if candidate["strong"] else "weak"),
                "for": list(candidate["evidence"]),
                "against": [],
                "missing": list(candidate["missing"]),
            }
        )
    for candidate in ruled_out:
        out.append(
            {
                "cause": candidate["cause"],
                "fit": "ruled_out",
                "for": list(candidate["evidence"]),
                "against": list(candidate["against"]),
                "missing": [],
            }
        )
    return out
