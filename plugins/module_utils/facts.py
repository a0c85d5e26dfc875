# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shapes of every fact the collection passes between its parts, in one place.

Pure Python: imports neither Ansible nor Kubernetes. DESIGN.md describes these shapes in words;
here they are types that mypy checks (``make lint``): a read of a key nothing writes is an error.
A ``TypedDict`` is a plain dict at run time, so modules return them to Ansible as they are.

``normalize_facts`` is the one door into the core for facts that come from outside (a playbook's
variables, a JSON file): parts of the wrong type become "not gathered" (None) instead of being
coerced again and again by every reader.
"""

from __future__ import annotations

import typing as t
from typing import TypedDict


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
    state: str | None               # running | waiting | terminated
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
    address: str                    # "IP:PORT"
    ip: str
    port: int
    port_name: str | None
    ready: bool
    serving: bool
    terminating: bool
    target: str | None              # "ns/name" of the pod
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
    source: str                     # upstream | proxy_pass
    upstream: str | None            # the upstream group's name
    runtime_resolved: bool          # resolver + a variable: nginx resolves it per request
    service: str | None             # "ns/name" when the host names a Service
    pod: str | None                 # the pod when the host is a pod's DNS name


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


class AddressFact(TypedDict):
    address: str
    state: str                      # correlate.classify_address's states
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
READ_PARTS = ("container", "config", "processes", "log", "endpoints")


class ProxyFact(TypedDict):
    namespace: str
    name: str
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
    errors: list[dict[str, t.Any]]  # nginx_log.parse_error_line's dicts
    errors_after_reload: int
    counts: dict[str, int]
    counts_after_reload: dict[str, int]
    upstream_addresses: list[AddressFact]
    stale_addresses: list[str]
    access: AccessFact
    failed_reloads: int
    problems: list[str]
    read_errors: dict[str, str]     # a READ_PARTS part -> the message naming the call


# ---------------------------------------------------------------- probes (proxy_probe)

class ProbeFact(TypedDict):
    namespace: str
    name: str
    url: str | None
    tool: str | None                # curl | wget | None
    status: int | None
    ok: bool
    error: str | None
    time_total: float | None
    rc: int | None
    ran: bool                       # false: the probe could not be made (could not check)


# ---------------------------------------------------------------- layers, verdict, outcome

class SymptomFact(TypedDict):
    url: str | None
    status: int | None


class LayerResult(TypedDict):
    name: str
    hypothesis: str
    status: str                     # pass | fail | error
    message: str
    evidence: list[str]


class Facts(TypedDict, total=False):
    """What the role gathers; every part may be missing (None: not gathered)."""

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
    outcome: str                    # healthy | remediated | problem_found | remediation_failed | could_not_check
    exit_status: int                # 0 | 2 | 4
    headline: str
    message: str
    unchecked: list[str]


# ---------------------------------------------------------------- the one door in

def _dicts(value: object) -> list[t.Any] | None:
    """A list of dicts, or None when ``value`` is not a list (not gathered)."""
    if not isinstance(value, (list, tuple)):
        return None
    return [item for item in value if isinstance(item, dict)]


def normalize_facts(raw: object) -> Facts:
    """Gathered facts as the core reads them: each part the right kind, or None.

    A part of the wrong type (a string where a list belongs, a list where a dict belongs) is
    treated as not gathered, never guessed at; items of a list that are not dicts are dropped.
    """
    source: dict[str, t.Any] = raw if isinstance(raw, dict) else {}

    def part(key: str) -> t.Any:
        value = source.get(key)
        return value if isinstance(value, dict) else None

    errors = source.get("errors")
    return {
        "symptom": part("symptom"),
        "service": part("service"),
        "self_probes": _dicts(source.get("self_probes")),
        "pods": _dicts(source.get("pods")),
        "svc_probes": _dicts(source.get("svc_probes")),
        "probes": _dicts(source.get("probes")),
        "proxies": _dicts(source.get("proxies")),
        "layers": _dicts(source.get("layers")) or [],
        "errors": {str(k): str(v) for k, v in errors.items() if v} if isinstance(errors, dict) else {},
    }
