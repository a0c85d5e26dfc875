# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cause registry: one record per cause ID the verdict can give.

Pure Python (standard library only). Everything that lists causes comes from :data:`REGISTRY`:
the verdict's :data:`CAUSES` and recommendations, which cause explains which when both fit
(precedence), what tells a cause from its neighbours when the evidence ties, whether a reload
fixes it, and the cause table of docs/result-schema.md (:func:`markdown_table`, checked by a
unit test together with the JSON Schema's enum). The verdict's rule for a cause is one function
in verdict.py, registered on its record with :func:`rule`.

Adding a cause: one :class:`Cause` record here, one ``@rule("<id>")`` function in verdict.py,
one lab scenario ``tests/lab/scenarios/<id>.yml``, and the regenerated table row plus the enum
entry in docs/ (the unit test names what differs).

Public API: :class:`Cause`, :data:`REGISTRY`, :data:`BY_ID`, :data:`CAUSES`,
:data:`RECOMMENDATIONS`, :data:`PRECEDENCE`, :func:`separates`, :func:`rule`,
:func:`markdown_table`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import dataclasses
from typing import Callable, Optional, Tuple


@dataclasses.dataclass(eq=False)
class Cause:
    """One cause ID and what the collection knows about it.

    ``id``: the cause ID. ``doc``: one line, the mechanism (docs/result-schema.md's "meaning").
    ``fix``, ``prevention``: the verdict's recommendation. ``reload_fixes``: True when a
    reload of the proxy fixes it, False when it does not, None for the verdicts that are not a
    problem's cause (``healthy``, ``unknown``). ``remedy``: the short what-to-do of the docs
    table. ``beats``: causes this one explains when both fit strongly (the other is dropped).
    ``separates``: what would tell it from its neighbours when the evidence ties. ``rule``:
    the verdict's function that finds it (:func:`rule`), None for ``healthy`` and ``unknown``,
    which the verdict decides itself when no rule fits.
    """

    id: str
    doc: str
    fix: str
    prevention: str
    reload_fixes: Optional[bool]
    remedy: str
    beats: Tuple[str, ...] = ()
    separates: str = ""
    rule: Optional[Callable[..., list]] = None


REGISTRY = (
    Cause(
        "stale_upstream",
        doc="nginx resolved a name once and still dials an address nothing in the cluster has",
        fix="On the stale replicas only: `nginx -t`, then `nginx -s reload`; confirm new "
        "worker processes and a probe that no longer answers 502.",
        prevention="Proxy to the Service's ClusterIP name (svc.ns.svc.cluster.local; "
        "kube-proxy follows the endpoints), or resolve at runtime: `resolver` "
        "plus a variable in proxy_pass, or `server ... resolve` in a zone'd "
        "upstream (nginx >= 1.27.3). Or reload the proxy after every backend "
        "rollout.",
        reload_fixes=True,
        remedy="`nginx -t`, then reload the stale replicas",
        beats=("network_blocked",),
        separates="whether the stale replicas still dial the old address after the other "
        "problem is fixed",
    ),
    Cause(
        "config_not_applied",
        doc="the proxy's config on disk itself lists addresses no endpoint has (the controller "
        "that renders it did not write the current endpoints): a reload re-reads the same stale "
        "config",
        fix="Do not reload: the config on disk is stale itself. Look at what writes it: the "
        "controller's control plane and its agent in the data-plane pod (NGINX Gateway Fabric: "
        "the control plane's and the nginx agent's logs, the Gateway and route status), or "
        "the in-house controller, ConfigMap or sidecar that renders the upstream block; "
        "a bad snippet can block every later push. Once it writes the current endpoints it "
        "reloads, or restart that data-plane pod.",
        prevention="Alert when a data-plane pod's config lags its control plane (config "
        "generation, push errors); the drift check compares the config's addresses with the "
        "EndpointSlices before users see a 502.",
        reload_fixes=False,
        remedy="fix the controller's push, not a reload",
        separates="whether each replica's config on disk (re-read now) lists the addresses it "
        "dials, or the current endpoints",
    ),
    Cause(
        "no_endpoints",
        doc="the Service selects no pod, or has no endpoints",
        fix="Make the Service select running pods: fix its selector or the pod labels, "
        "or scale the backend up.",
        prevention="Alert on Services without ready endpoints; keep selectors and pod "
        "template labels in the same chart/kustomization.",
        reload_fixes=False,
        remedy="fix the selector/labels, scale up",
        # no ready endpoint: the proxy cannot have had an answer to pass through
        beats=("port_mismatch", "backend_502"),
    ),
    Cause(
        "backend_not_ready",
        doc="pods exist and run but are not Ready",
        fix="Find why the pods are not Ready (readiness probe path/port, slow start, a "
        "dependency) and fix the probe or the app.",
        prevention="Readiness probes that test what the app needs; startupProbe for "
        "slow starts; alert on not-ready endpoints.",
        reload_fixes=False,
        remedy="fix the readiness probe / the app's start",
        beats=("port_mismatch", "backend_502"),
    ),
    Cause(
        "backend_down",
        doc="CrashLoopBackOff, OOMKilled, Failed/Pending pods",
        fix="Fix the crash (logs of the previous container: `kubectl logs --previous`); "
        "raise memory limits if OOMKilled.",
        prevention="Resource requests/limits sized from measurements, liveness probes "
        "that do not kill slow but healthy pods, alerts on restarts.",
        reload_fixes=False,
        remedy="fix the crash, raise limits",
        beats=("backend_crash", "no_endpoints", "port_mismatch", "backend_502"),
    ),
    Cause(
        "port_mismatch",
        doc="the Service's targetPort is not where the app listens",
        fix="Make the Service targetPort (number or name) match the containerPort the app "
        "listens on, and make the app bind 0.0.0.0, not 127.0.0.1.",
        prevention="Use named ports (targetPort: http) defined once in the pod template.",
        reload_fixes=False,
        remedy="fix targetPort / the port name / bind address",
        separates="a direct probe of podIP:targetPort from a proxy pod",
    ),
    Cause(
        "dns_failure",
        doc="nginx cannot resolve the upstream name",
        fix="Use the Service's correct name (svc.ns.svc.cluster.local from another "
        "namespace), make sure the Service exists, fix the `resolver` (kube-dns "
        "ClusterIP) or CoreDNS; then `nginx -t` and reload.",
        prevention="Fully qualified Service names in proxy configs; `nginx -t` in CI "
        "against the target cluster's names.",
        reload_fixes=False,
        remedy="fix the name (FQDN) or the resolver",
        separates="whether the name in the proxy config resolves from the proxy pod",
    ),
    Cause(
        "backend_crash",
        doc="the backend closes or resets mid-request, and restarts",
        fix="Fix what kills the backend mid-request (see `kubectl logs --previous`, "
        "lastState OOMKilled / exit code); raise memory limits if OOMKilled.",
        prevention="Memory limits from measurements, graceful shutdown, alerts on restarts.",
        reload_fixes=False,
        remedy="fix the crash",
        separates="the backend's restart times compared with the error times",
    ),
    Cause(
        "keepalive_mismatch",
        doc="premature closes / resets with healthy pods: backend idle timeout shorter than "
        "nginx's keepalive",
        fix="Make the backend's idle keep-alive timeout longer than the proxy's upstream "
        "keepalive_timeout (e.g. Node.js server.keepAliveTimeout > 60 s), or lower "
        "the proxy's keepalive_timeout in the upstream block.",
        prevention="Document the keep-alive chain: each hop's idle timeout shorter than "
        "the next hop's.",
        reload_fixes=False,
        remedy="backend keepalive longer than the proxy's",
        separates="the backend's keep-alive idle timeout vs the proxy's",
    ),
    Cause(
        "rollout_race",
        doc="errors while endpoints were terminating",
        fix="Give pods time to leave the endpoints before they stop: a preStop sleep "
        "(5-15 s), graceful SIGTERM handling, maxUnavailable: 0.",
        prevention="preStop hook + terminationGracePeriodSeconds longer than it; "
        "proxy_next_upstream for idempotent requests.",
        reload_fixes=False,
        remedy="preStop sleep, maxUnavailable 0, graceful shutdown",
        separates="whether the errors stop once the rollout has finished",
    ),
    Cause(
        "header_too_big",
        doc="the backend's response headers exceed nginx's buffer",
        fix="Raise `proxy_buffer_size` (e.g. 16k) together with `proxy_buffers` "
        "(e.g. 8 16k) for that location, or shrink the backend's headers "
        "(Set-Cookie, JWT).",
        prevention="Keep session data out of cookies; size proxy buffers for the "
        "largest expected header.",
        reload_fixes=False,
        remedy="raise `proxy_buffer_size`",
        beats=("backend_502",),
        separates="the size of the backend's response headers",
    ),
    Cause(
        "protocol_mismatch",
        doc="plain HTTP to a TLS (or gRPC) backend, or the reverse",
        fix="Match the scheme to the backend: https:// (with `proxy_ssl_server_name on`, "
        "`proxy_ssl_verify` and a trusted CA) for a TLS backend, grpc_pass for gRPC, "
        "http:// for plain HTTP.",
        prevention="Name Service ports by protocol (appProtocol, port names http/https/"
        "grpc) and derive the proxy scheme from them.",
        reload_fixes=False,
        remedy="fix the scheme / `proxy_ssl_*`",
        beats=("backend_502",),
        separates="the backend's protocol (TLS, gRPC, plain HTTP) on that port",
    ),
    Cause(
        "network_blocked",
        doc="connects time out or are rejected (a NetworkPolicy)",
        fix="Allow the proxy pods in the NetworkPolicy that selects the backend pods "
        "(ingress from the proxy's namespace/labels on the target port).",
        prevention="Write the proxy-to-backend allow rule together with the default-deny "
        "policy; test connectivity after policy changes.",
        reload_fixes=False,
        remedy="add an allow rule",
        separates="the NetworkPolicies selecting the backend pods",
    ),
    Cause(
        "upstream_timeout",
        doc="a Ready backend answers slower than `proxy_read_timeout`: nginx times out reading "
        "its response (not connecting) and answers 504",
        fix="Find why the backend answers so slowly (its own logs, a slow dependency, CPU "
        "throttling) and fix that; where slow answers are expected (exports, long polls, "
        "LLM answers), raise `proxy_read_timeout` (and `proxy_send_timeout`) for that "
        "location only.",
        prevention="Alert on $upstream_response_time close to the timeout; keep each hop's "
        "timeout longer than the next hop's; stream or queue long jobs instead of "
        "holding a request open.",
        reload_fixes=False,
        remedy="a faster backend, or `proxy_read_timeout` above its answer time",
        separates="the backend's answer time for those requests against the proxy's "
        "proxy_read_timeout",
    ),
    Cause(
        "backend_502",
        doc="the app itself answered 502; nginx passed it on",
        fix="The 502 comes from behind the proxy: look one hop further (the app, its "
        "sidecar, or the next proxy) and fix it there.",
        prevention="Log $upstream_status in the proxy's access log to tell its own 502s "
        "from passed-through ones.",
        reload_fixes=False,
        remedy="look one hop further",
        separates="the backend's own logs for the 502",
    ),
    Cause(
        "healthy",
        doc="no gateway error now, no upstream errors since the last reload",
        fix="Nothing to fix: no 5xx and no upstream error since the last reload.",
        prevention="Keep the diagnosis in the runbook; re-run it when a 502 is seen.",
        reload_fixes=None,
        remedy="nothing to do",
    ),
    Cause(
        "unknown",
        doc="the rules cannot place it; the evidence is still reported",
        fix="The rules cannot place the evidence; gather what missing_evidence lists and re-run.",
        prevention="",
        reload_fixes=None,
        remedy="-",
    ),
)

BY_ID = {cause.id: cause for cause in REGISTRY}

#: What a reload is for each proxy kind, in the words of the fix (the kind is the replica's, from
#: proxy_kinds): its config test, its reload, how it came to keep an old address, and how to
#: make it follow the endpoints. nginx's is the registry's own text.
KIND_WORDS = {
    "nginx": {
        "test": "`nginx -t`",
        "reload": "`nginx -s reload`",
        "kept": "nginx resolved the upstream name when it last (re)loaded and kept the old address",
        "prevention": BY_ID["stale_upstream"].prevention,
    },
    "haproxy": {
        "test": "`haproxy -c`",
        "reload": "a reload through the master CLI (`reload`; or `kill -USR2` of the master)",
        "kept": "haproxy resolved the server's name when it last started or reloaded (no "
        "`resolvers` on the server) and kept the old address",
        "prevention": "Let haproxy follow DNS: a `resolvers` section pointing at the cluster DNS "
        "and `resolvers <name>` (with `init-addr last,libc,none`) on the server, or a "
        "`server-template` over the headless Service; or proxy to the Service's ClusterIP "
        "name. Or reload haproxy after every backend rollout.",
    },
}

#: Every cause ID, in the registry's order (the order the verdict's rules run in).
CAUSES = tuple(cause.id for cause in REGISTRY)

#: cause ID -> ``{fix, prevention}``.
RECOMMENDATIONS = {
    cause.id: {"fix": cause.fix, "prevention": cause.prevention} for cause in REGISTRY
}

#: ``(winner, loser)`` pairs: when both fit strongly, the winner explains the loser.
PRECEDENCE = tuple((cause.id, loser) for cause in REGISTRY for loser in cause.beats)

if len(BY_ID) != len(REGISTRY) or any(loser not in BY_ID for _w, loser in PRECEDENCE):
    raise ValueError("causes.REGISTRY: duplicate cause IDs or precedence on an unknown cause")


def separates(cause_id):
    """What would tell ``cause_id`` from the other causes that fit as well."""
    cause = BY_ID.get(cause_id)
    return cause.separates if cause is not None and cause.separates else "more evidence"


def rule(cause_id):
    """Decorator: register the verdict rule that finds ``cause_id`` on its record.

    A rule takes the verdict's view of the facts and returns a list of candidates (possibly
    empty). Each cause has one rule at most (a module reloaded registers the same one again).
    """
    cause = BY_ID[cause_id]

    def register(function):
        def name(f):
            return "%s.%s" % (f.__module__, f.__qualname__)

        if cause.rule is not None and name(cause.rule) != name(function):
            raise ValueError("cause %s already has a rule (%s)" % (cause_id, name(cause.rule)))
        cause.rule = function
        return function

    return register


def _reload_cell(cause):
    if cause.reload_fixes is None:
        return cause.remedy
    return "%s: %s" % ("yes" if cause.reload_fixes else "no", cause.remedy)


def markdown_table():
    """The cause table of docs/result-schema.md, one row per record (no trailing newline)."""
    rows = ["| cause | meaning | does a reload fix it? |", "|---|---|---|"]
    rows += [
        "| `%s` | %s | %s |" % (cause.id, cause.doc, _reload_cell(cause)) for cause in REGISTRY
    ]
    return "\n".join(rows)
