# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of every fact the collection passes between its parts, in one place.

Pure Python: imports neither Ansible nor Kubernetes. DESIGN.md describes these shapes in words;
here they are types that mypy checks (``make lint``): a read of a key nothing writes is an error.
A ``TypedDict`` is a plain dict at run time, so modules return them to Ansible as they are.

``normalize_facts`` is the one door into the core for facts that come from outside (module
outputs through Ansible, a JSON file, a test's dict, junk): it returns complete facts of these
shapes, every key present with its declared type, so that the core reads them by subscript and
never coerces again. A value of the wrong type becomes the neutral one of its type (None, "",
0, False, [], {}); items of a list that are not of the item's type are dropped. A top-level part
that is missing or of the wrong type stays None: "not gathered", which the verdict and the
layers tell from "gathered, and empty". ``normalize_proxy``, ``normalize_service``,
``normalize_pod``, ``normalize_probe``, ``normalize_layer``, ``normalize_verdict``,
``normalize_remediation`` and ``normalize_result`` do the same for one part; all of them follow
the TypedDicts below, read at run time, so a key added to a shape is normalised with it.
"""

from __future__ import annotations

import functools
import types
import typing as t
from typing import TypedDict

# ``X | None`` is a types.UnionType, ``Optional[X]`` a typing.Union: the normaliser reads both.
_UNIONS = (t.Union, getattr(types, "UnionType", t.Union))
_NONE_TYPE = type(None)


# ---------------------------------------------------------------- pods (pod_info)


class PortFact(TypedDict):
    name: str | None
    container_port: int
    protocol: str


class LastStateFact(TypedDict):
    state: str
    reason: str | None
    exit_code: int | None
    finished_at: str | None


class ContainerFact(TypedDict):
    name: str
    image: str | None
    ready: bool
    started: bool
    restart_count: int
    state: str | None  # running | waiting | terminated
    reason: str | None
    exit_code: int | None
    last_state: LastStateFact | None
    ports: list[PortFact]


class PodFact(TypedDict):
    namespace: str
    name: str
    uid: str | None
    phase: str | None
    ready: bool
    pod_ip: str | None
    pod_ips: list[str]
    node: str | None
    labels: dict[str, str]
    creation_timestamp: str | None
    ready_since: str | None  # the Ready condition's lastTransitionTime while Ready, else None
    deletion_timestamp: str | None
    restarts: int
    containers: list[ContainerFact]
    problems: list[str]


# ---------------------------------------------------------------- Services (service_info)


class ResolvedPortFact(TypedDict):
    pod: str
    port: int | None


class ServicePortFact(TypedDict):
    name: str | None
    port: int
    protocol: str
    target_port: int | str
    resolved_target_ports: list[ResolvedPortFact]


class EndpointFact(TypedDict):
    address: str  # "IP:PORT"
    ip: str
    port: int
    port_name: str | None
    ready: bool
    serving: bool
    terminating: bool
    target: str | None  # "ns/name" of the pod
    slice: str


class PortMismatchFact(TypedDict):
    port: int
    target_port: int | str
    pods_without_it: list[str]


class ServiceFact(TypedDict):
    namespace: str
    name: str
    exists: bool
    type: str | None
    cluster_ip: str | None
    headless: bool
    creation_timestamp: str | None
    selector: dict[str, str]
    ports: list[ServicePortFact]
    matching_pods: list[str]
    selector_matches: bool
    endpoints: list[EndpointFact]
    ready_addresses: list[str]
    not_ready_addresses: list[str]
    terminating_addresses: list[str]
    port_mismatches: list[PortMismatchFact]


# ---------------------------------------------------------------- proxy replicas (proxy_info)


class UpstreamHostFact(TypedDict):
    host: str
    port: int | None
    source: str  # upstream | proxy_pass
    upstream: str | None  # the upstream group's name
    runtime_resolved: bool  # resolver + a variable: nginx resolves it per request
    service: str | None  # "ns/name" when the host names a Service
    pod: str | None  # the pod when the host is a pod's DNS name
    file: str | None  # where the config on disk writes it: "path:line"


class KeepaliveFact(TypedDict):
    upstream: str
    keepalive: int
    keepalive_timeout: str | None


class LogReadFact(TypedDict):
    lines_read: int
    bytes_read: int
    truncated: bool
    since_seconds: int | None
    tail_lines: int | None


class LogFileFact(TypedDict):
    path: str  # an error log file the config writes to, read in the pod (tail -c)
    lines_read: int
    bytes_read: int
    truncated: bool  # the file is longer than limit_bytes: older lines were not read


class AddressFact(TypedDict):
    address: str
    state: str  # correlate.classify_address's states
    objects: list[str]
    port_match: bool | None
    hints: list[str]
    count: int
    count_after_reload: int
    last_seen: str | None
    after_reload: bool
    signatures: dict[str, int]


class AccessFact(TypedDict):
    requests: int
    status_counts: dict[str, int]
    status_counts_after_reload: dict[str, int]
    upstream_status_counts: dict[str, int]


# The parts of a replica that can fail to be read, the keys of ProxyFact.read_errors.
READ_PARTS = ("container", "config", "processes", "log", "error_log_file", "runtime", "endpoints")


class ProxyFact(TypedDict):
    namespace: str
    name: str
    kind: str  # the proxy kind that serves it (proxy_kinds: nginx, haproxy); "" when not known
    pod_ip: str | None
    container: str | None
    ready: bool
    phase: str | None
    config_ok: bool | None
    upstream_hosts: list[UpstreamHostFact]
    upstream_keepalive: list[KeepaliveFact]
    listen_ports: list[int]
    master_pid: int | None
    worker_start_times: list[str]
    worker_pids: list[int]
    last_reload: str | None
    log: LogReadFact
    log_files: list[LogFileFact]  # error log files read besides the container log
    errors: list[dict[str, t.Any]]  # nginx_log.parse_error_line's dicts
    errors_after_reload: int
    counts: dict[str, int]
    counts_after_reload: dict[str, int]
    upstream_addresses: list[AddressFact]
    stale_addresses: list[str]
    access: AccessFact
    failed_reloads: int
    problems: list[str]
    read_errors: dict[str, str]  # a READ_PARTS part -> the message naming the call


# ---------------------------------------------------------------- probes (proxy_probe)


class ProbeFact(TypedDict):
    namespace: str
    name: str
    url: str | None
    tool: str | None  # curl | wget | None
    status: int | None
    ok: bool
    error: str | None
    time_total: float | None
    rc: int | None
    ran: bool  # false: the probe could not be made (could not check)


# ---------------------------------------------------------------- layers, verdict, outcome


class SymptomFact(TypedDict):
    url: str | None
    status: int | None


class LayerResult(TypedDict):
    name: str
    hypothesis: str
    status: str  # pass | fail | error
    message: str
    evidence: list[str]


class Facts(TypedDict):
    """What the role gathers; a part that is None was not gathered."""

    symptom: SymptomFact | None
    self_probes: list[ProbeFact] | None
    pods: list[PodFact] | None
    service: ServiceFact | None
    svc_probes: list[ProbeFact] | None
    probes: list[ProbeFact] | None
    proxies: list[ProxyFact] | None
    layers: list[LayerResult]
    errors: dict[str, str]


class Recommendation(TypedDict):
    fix: str
    prevention: str


#: One cause the evidence pointed to: the evidence for it, against it, and what would settle it.
Hypothesis = TypedDict(
    "Hypothesis",
    {"cause": str, "fit": str, "for": list[str], "against": list[str], "missing": list[str]},
)


class Verdict(TypedDict):
    cause: str
    summary: str
    evidence: list[str]
    recommendation: Recommendation
    missing_evidence: list[str]
    candidates: list[str]
    stale_replicas: list[str]
    stale_addresses: list[str]
    current_addresses: list[str]
    reload_safe: bool
    unchecked: list[str]
    warnings: list[str]
    endpoints_since: str | None
    hypotheses: list[Hypothesis]
    proxy_kinds: list[str]  # the kinds of proxy the replicas run (nginx, haproxy)


class WorkerFact(TypedDict):
    pid: int
    start_time: str


class ConfigTestFact(TypedDict):
    rc: int | None
    ok: bool
    output: str | None


class ReloadReplica(TypedDict):
    namespace: str
    name: str
    container: str | None
    kind: str | None  # the proxy kind reloaded (nginx, haproxy); None before its pod was read
    planned: list[str]
    config_test: ConfigTestFact | None
    reload_sent: bool
    reloaded: bool
    skipped: str | None
    last_reload_age: float | None
    workers_before: list[WorkerFact]
    workers_after: list[WorkerFact]
    last_reload: str | None
    probe: ProbeFact | None
    verified: bool
    unproven: str | None
    error: str | None


class Remediation(TypedDict, total=False):
    performed: bool
    verified: bool
    reason: str | None
    url_status_after: int | None
    replicas: list[ReloadReplica]
    error: str | None


class OutcomeFact(TypedDict):
    outcome: str  # healthy | remediated | problem_found | remediation_failed | could_not_check
    exit_status: int  # 0 | 2 | 4
    headline: str
    message: str
    unchecked: list[str]


# ---------------------------------------------------------------- reports (report_render)


class Chain(TypedDict):
    """report_render.build_chain's result; docs/result.schema.json's ``chain`` has the nodes."""

    client: dict[str, t.Any]
    proxies: list[dict[str, t.Any]]
    service: dict[str, t.Any]
    stale: list[dict[str, t.Any]]
    endpoints: list[dict[str, t.Any]]
    pods: list[dict[str, t.Any]]
    pods_note: str | None
    links: list[dict[str, t.Any]]


class TargetFact(TypedDict):
    proxy: str | None
    service: str | None
    url: str | None
    inventory_host: str | None


class ResultFact(TypedDict):
    """A diagnose_502_result (docs/result-schema.md), as the reports read it."""

    schema_version: int
    started: str | None
    finished: str | None
    target: TargetFact
    check_mode: bool
    verdict: Verdict
    layers: list[LayerResult]
    remediation: Remediation | None
    errors: dict[str, str]
    chain: Chain | None
    outcome: OutcomeFact | None


# ---------------------------------------------------------------- drift watch (extensions/eda)


class _DriftWatchDecision(TypedDict):
    status: str  # at_risk | could_not_check
    namespace: str
    replica: str | None  # None: a watch itself failed
    container: str | None
    service: str | None
    host: str | None
    old_endpoints: list[str]
    new_endpoints: list[str]
    unknown_endpoints: list[str]
    last_reload: str | None
    reload_id: str | None
    seconds_since_reload: float | None
    endpoints_since: str | None
    first_change: str | None
    detected_seconds: float
    reasons: list[str]


class DriftWatchEvent(_DriftWatchDecision, total=False):
    """``event.drift_watch`` of the event source (docs/eda.md): drift_watch.py's decision, and
    what the source adds for the rulebook."""

    proxy_namespace: str
    proxy_selector: str
    remediate: bool


# ---------------------------------------------------------------- the one door in

_WRONG = object()  # "not of the declared type": the caller puts the neutral value instead


@functools.lru_cache(maxsize=None)
def _fields(shape: type) -> tuple[tuple[str, t.Any], ...]:
    """The keys of a TypedDict with their types, resolved once."""
    return tuple(t.get_type_hints(shape).items())


def _is_shape(kind: t.Any) -> bool:
    return isinstance(kind, type) and t.is_typeddict(kind)


def _neutral(kind: t.Any) -> t.Any:
    """The neutral value of a type: None where None is allowed, else empty, zero or false."""
    return _neutral_maker(kind)()


@functools.lru_cache(maxsize=None)
def _neutral_maker(kind: t.Any) -> t.Callable[[], t.Any]:
    """What makes ``kind``'s neutral value (a new one each time: lists and dicts are changed)."""
    args = t.get_args(kind)
    if t.get_origin(kind) in _UNIONS:
        return (lambda: None) if _NONE_TYPE in args else _neutral_maker(args[0])
    if _is_shape(kind):
        return lambda: _complete(kind, {})
    plain = t.get_origin(kind) or kind
    if plain in (list, dict):
        return plain
    value = {str: "", int: 0, float: 0.0, bool: False}.get(plain)
    return lambda: value


def _fit(kind: t.Any, value: t.Any) -> t.Any:
    """``value`` as the type ``kind`` (lists and dicts filtered, shapes completed), or _WRONG."""
    return _fitter(kind)(value)


@functools.lru_cache(maxsize=None)
def _fitter(kind: t.Any) -> t.Callable[[t.Any], t.Any]:
    """``_fit`` for one type, its typing read once: a function of the value."""
    origin = t.get_origin(kind)
    if kind is t.Any:
        return lambda value: value
    if origin in _UNIONS:
        choices = tuple(_fitter(arg) for arg in t.get_args(kind))

        def fit_union(value: t.Any) -> t.Any:
            for choice in choices:
                fitted = choice(value)
                if fitted is not _WRONG:
                    return fitted
            return _WRONG

        return fit_union
    if kind is _NONE_TYPE:
        return lambda value: None if value is None else _WRONG
    if origin is list:
        item = _fitter(t.get_args(kind)[0])

        def fit_list(value: t.Any) -> t.Any:
            if not isinstance(value, (list, tuple)):
                return _WRONG
            items = [item(entry) for entry in value]
            return [entry for entry in items if entry is not _WRONG]

        return fit_list
    if _is_shape(kind):
        return lambda value: _complete(kind, value) if isinstance(value, dict) else _WRONG
    if origin is dict:
        member = _fitter(t.get_args(kind)[1])

        def fit_dict(value: t.Any) -> t.Any:
            if not isinstance(value, dict):
                return _WRONG
            pairs = ((key, member(entry)) for key, entry in value.items() if isinstance(key, str))
            return {key: entry for key, entry in pairs if entry is not _WRONG}

        return fit_dict
    if kind is float:
        # an int is a float to a fact (time_total: 1); bool never is
        return lambda value: (
            value if isinstance(value, (int, float)) and not isinstance(value, bool) else _WRONG
        )
    if kind is bool:
        return lambda value: value if isinstance(value, bool) else _WRONG
    # bool is an int to Python, never to a fact: a count of True is junk
    return lambda value: (
        value if isinstance(value, kind) and not isinstance(value, bool) else _WRONG
    )


@functools.lru_cache(maxsize=None)
def _members(shape: type) -> tuple[tuple[str, t.Any, t.Any], ...]:
    """A shape's keys with the fitter and the neutral maker of each."""
    return tuple((key, _fitter(kind), _neutral_maker(kind)) for key, kind in _fields(shape))


def _complete(shape: type, value: dict[str, t.Any]) -> t.Any:
    """Every key of ``shape``, each of its type: the value's own where it fits, else neutral."""
    out = {}
    for key, fit, neutral in _members(shape):
        fitted = fit(value[key]) if key in value else _WRONG
        out[key] = neutral() if fitted is _WRONG else fitted
    return out


def _normalizer(shape: type) -> t.Callable[[object], t.Any]:
    def normalize(raw: object) -> t.Any:
        return _complete(shape, raw if isinstance(raw, dict) else {})

    normalize.__doc__ = "``raw`` as a complete %s (junk: every key neutral)." % shape.__name__
    return normalize


normalize_pod: t.Callable[[object], PodFact] = _normalizer(PodFact)
normalize_service: t.Callable[[object], ServiceFact] = _normalizer(ServiceFact)
normalize_proxy: t.Callable[[object], ProxyFact] = _normalizer(ProxyFact)
normalize_probe: t.Callable[[object], ProbeFact] = _normalizer(ProbeFact)
normalize_layer: t.Callable[[object], LayerResult] = _normalizer(LayerResult)
normalize_verdict: t.Callable[[object], Verdict] = _normalizer(Verdict)
normalize_remediation: t.Callable[[object], Remediation] = _normalizer(Remediation)
normalize_result: t.Callable[[object], ResultFact] = _normalizer(ResultFact)


def normalize_facts(raw: object) -> Facts:
    """Gathered facts as the core reads them: every part complete, or None (not gathered).

    A part that is missing or of the wrong type (a string where a list belongs, a list where a
    dict belongs) was not gathered, never guessed at; ``layers`` and ``errors`` are at worst
    empty, and an error without a message is no error.
    """
    source: dict[str, t.Any] = raw if isinstance(raw, dict) else {}
    out: dict[str, t.Any] = {}
    for key, fit, neutral in _members(Facts):
        fitted = fit(source.get(key))
        out[key] = neutral() if fitted is _WRONG else fitted
    out["errors"] = {name: message for name, message in out["errors"].items() if message}
    return t.cast(Facts, out)


# Every shape's fields resolved now, at import: ansible-playbook's own process imports this (with
# the action plugins) before it forks a worker per task and target, so each worker inherits the
# resolved hints instead of resolving them again (typing.get_type_hints, ~10 ms a worker).
for _shape in [value for value in list(globals().values()) if _is_shape(value)]:
    _members(_shape)
