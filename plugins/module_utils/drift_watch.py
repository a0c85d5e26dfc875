# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drift watch's decisions, in plain Python (no Ansible, no Kubernetes, no I/O, no clock).

The event source plugin ``badgateway.k8s.drift_watch`` (extensions/eda) feeds this module what
the Kubernetes watch API tells it and what it read from the proxy replicas, and emits what this
module decides. Every time is passed in (``now``, seconds on a monotonic clock; wall times as
aware datetimes), so the unit tests run it without a cluster, a lab or a sleep.

- ``WatchState``: one watched collection (a namespace's EndpointSlices, or the proxy pods) as
  its watch told it, and the ``resourceVersion`` to resume from. A watch event changes it (``apply``); a list replaces it (``replace``, after
  the first connect and after a 410 Gone): both return the Services whose ready endpoints
  changed, so a change made while the watch was away is found by comparing, never lost.
- ``Debouncer``: the changes of one Service's endpoints within ``quiet`` seconds of each other
  (at most ``longest`` seconds after the first) are one burst, compared once: its endpoints
  before the first change with those after the last. A rollout of ten pods is one burst.
- ``replica_at_risk``: the reload rule of the verdict (verdict.py): a replica that resolves a
  Service's name to pod IPs once, at load time (a headless Service's name, a pod's own DNS
  name), is at risk when the Service's newest ready endpoint became ready after its last
  reload. A ClusterIP name is never at risk (kube-proxy follows the endpoints); a Service left
  without a ready endpoint is not a reload's to fix. What could not be read is
  ``could_not_check``, never "fine".
- ``Reported``: one event per replica and burst, and not again for the same replica before it
  reloaded or ``repeat`` seconds passed.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import DriftWatchEvent
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    format_time,
    parse_time,
)

#: The label an EndpointSlice names its Service with.
SERVICE_LABEL = "kubernetes.io/service-name"
#: A reload at least this long after an endpoint became ready saw it (whole-second times), as
#: in verdict.py.
CLOCK_SLACK = datetime.timedelta(seconds=1)

ENDPOINTSLICES = "endpointslices"
PODS = "pods"


def _key(obj: dict[str, t.Any]) -> str:
    meta = obj.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace") or "", meta.get("name") or "")


def slice_endpoints(obj: dict[str, t.Any]) -> tuple[str | None, dict[str, str | None]]:
    """(``ns/service`` or None, ready ``IP:PORT`` -> ``ns/pod`` of its targetRef or None) of an
    EndpointSlice; an endpoint is ready unless its ``conditions.ready`` is false."""
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_LABEL)
    namespace = meta.get("namespace") or ""
    ports = [p.get("port") for p in obj.get("ports") or [] if isinstance(p, dict)]
    ready: dict[str, str | None] = {}
    for endpoint in obj.get("endpoints") or []:
        if not isinstance(endpoint, dict):
            continue
        if (endpoint.get("conditions") or {}).get("ready") is False:
            continue
        ref = endpoint.get("targetRef") or {}
        target = (
            "%s/%s" % (ref.get("namespace") or namespace, ref["name"])
            if ref.get("kind") == "Pod" and ref.get("name")
            else None
        )
        for ip in endpoint.get("addresses") or []:
            host = "[%s]" % ip if ":" in str(ip) else str(ip)
            for port in ports or [None]:
                ready["%s:%s" % (host, port) if port is not None else host] = target
    return ("%s/%s" % (namespace, service) if service else None), ready


def pod_signature(obj: dict[str, t.Any]) -> tuple[t.Any, ...]:
    """What makes a proxy replica's reading outdated: another pod (uid), IP, or a restart."""
    status = obj.get("status") or {}
    restarts = sum(
        int(c.get("restartCount") or 0)
        for c in status.get("containerStatuses") or []
        if isinstance(c, dict)
    )
    return (
        (obj.get("metadata") or {}).get("uid"),
        status.get("podIP"),
        restarts,
        status.get("phase"),
    )


Endpoints = t.Dict[str, t.Optional[str]]


class WatchState:
    """One watched collection (``endpointslices`` or ``pods`` of a namespace) as its watch last
    told it, and the resourceVersion to resume from (None: list first)."""

    def __init__(self, collection: str) -> None:
        if collection not in (ENDPOINTSLICES, PODS):
            raise ValueError(
                "collection: expected %s or %s, got %r" % (ENDPOINTSLICES, PODS, collection)
            )
        self.collection = collection
        self.slices: dict[str, tuple[str | None, Endpoints]] = {}
        self.pods: dict[str, tuple[t.Any, ...]] = {}
        self.version: str | None = None

    def endpoints(self, service: str) -> Endpoints:
        """The ready endpoints of a Service (``ns/name``), over all its slices."""
        found: Endpoints = {}
        for owner, ready in self.slices.values():
            if owner == service:
                found.update(ready)
        return found

    def services(self) -> set[str]:
        """The Services the slices known belong to."""
        return {entry[0] for entry in self.slices.values() if entry[0]}

    def expired(self) -> None:
        """The API answered 410 Gone: the next connect lists again."""
        self.version = None

    def bookmark(self, resource_version: str | None) -> None:
        """A BOOKMARK: nothing changed up to ``resource_version``."""
        if resource_version:
            self.version = str(resource_version)

    def apply(self, kind: str, obj: dict[str, t.Any]) -> dict[str, Endpoints]:
        """One watch event (ADDED, MODIFIED, DELETED). Returns what changed: for EndpointSlices
        each Service (``ns/name``) whose ready endpoints changed -> its endpoints before; for
        pods each proxy pod (``ns/name``) to read again -> {}."""
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.version = str(version)
        key = _key(obj)
        if self.collection == PODS:
            signature = self.pods.pop(key, None)
            if kind != "DELETED":
                self.pods[key] = pod_signature(obj)
            return {key: {}} if self.pods.get(key) != signature else {}
        old = self.slices.get(key)
        new = slice_endpoints(obj) if kind != "DELETED" else None
        owners = {entry[0] for entry in (old, new) if entry and entry[0]}
        before = {s: self.endpoints(s) for s in owners}  # read before the change
        if new is None:
            self.slices.pop(key, None)
        else:
            self.slices[key] = new
        return {s: was for s, was in before.items() if self.endpoints(s) != was}

    def replace(
        self, items: list[dict[str, t.Any]], resource_version: str | None
    ) -> dict[str, Endpoints]:
        """A full list of the collection: what changed since the state known before, as
        ``apply`` returns it; the watch resumes at the list's resourceVersion."""
        self.version = resource_version
        if self.collection == PODS:
            new_pods = {_key(o): pod_signature(o) for o in items}
            gone_or_new = set(self.pods) | set(new_pods)
            self.pods, old_pods = new_pods, self.pods
            return {k: {} for k in gone_or_new if old_pods.get(k) != new_pods.get(k)}
        before = {s: self.endpoints(s) for s in self.services()}
        self.slices = {_key(o): slice_endpoints(o) for o in items}
        changed: dict[str, Endpoints] = {}
        for service in self.services() | set(before):
            was = before.get(service, {})
            if self.endpoints(service) != was:
                changed[service] = was
        return changed


@dataclasses.dataclass
class Burst:
    """Changes of one Service's endpoints close together: ``old`` before the first of them."""

    service: str
    old: dict[str, str | None]
    first: float
    last: float
    first_wall: datetime.datetime | None = None


class Debouncer:
    """Bursts per Service: one is due ``quiet`` seconds after its last change, or ``longest``
    seconds after its first, whichever comes first."""

    def __init__(self, quiet: float = 1.0, longest: float = 3.0) -> None:
        if quiet < 0 or longest < quiet:
            raise ValueError(
                "debounce: expected 0 <= quiet (%s) <= longest (%s) seconds" % (quiet, longest)
            )
        self.quiet, self.longest = quiet, longest
        self.pending: dict[str, Burst] = {}

    def note(
        self,
        service: str,
        before: dict[str, str | None],
        now: float,
        wall: datetime.datetime | None = None,
    ) -> None:
        """A change of ``service``; ``before``: its endpoints just before this change."""
        burst = self.pending.get(service)
        if burst is None:
            self.pending[service] = Burst(service, dict(before), now, now, wall)
        else:
            burst.last = now

    def deadline(self) -> float | None:
        """When the next burst is due (None: none pending)."""
        return min(
            (min(b.last + self.quiet, b.first + self.longest) for b in self.pending.values()),
            default=None,
        )

    def due(self, now: float) -> list[Burst]:
        """The bursts due at ``now``, taken out, oldest first."""
        ready = [
            b
            for b in self.pending.values()
            if now >= min(b.last + self.quiet, b.first + self.longest)
        ]
        for b in ready:
            del self.pending[b.service]
        return sorted(ready, key=lambda b: b.first)


@dataclasses.dataclass
class Replica:
    """What the watch read from one proxy replica.

    ``pinned``: Service (``ns/name``) -> the upstream host name that resolves to its pod IPs at
    load time; ``last_reload`` its workers' start (aware datetime) or None; ``unread``: why a
    part could not be read (config, processes), else None; ``reload_id`` names the workers.
    """

    namespace: str
    name: str
    container: str | None = None
    pinned: dict[str, str] = dataclasses.field(default_factory=dict)
    dialled: list[str] = dataclasses.field(default_factory=list)  # every Service it proxies to
    last_reload: datetime.datetime | None = None
    unread: str | None = None
    #: Which workers serve now (master and worker PIDs): another value means it reloaded. Their
    #: start times read from /proc can differ by a tick between two reads; the PIDs do not.
    reload_id: str | None = None
    #: The proxy kind its container was picked as (``nginx``, ``haproxy``): its later reads
    #: go to that kind's adapter.
    kind: str | None = None

    @property
    def key(self) -> str:
        """``ns/name``."""
        return "%s/%s" % (self.namespace, self.name)


def pinned_services(
    upstream_hosts: list[dict[str, t.Any]], headless: dict[str, bool | None]
) -> tuple[dict[str, str], list[str]]:
    """(Services a replica resolves to pod IPs at load time -> host name, every Service it dials)
    from proxy_info's ``upstream_hosts`` and whether each Service is headless (None: unknown,
    taken as pinned: a name whose kind is unknown may be one).

    A name resolved at run time (``resolver`` + variable) follows the endpoints by itself."""
    pinned: dict[str, str] = {}
    dialled: list[str] = []
    for host in upstream_hosts:
        service = host.get("service")
        if not service:
            continue
        if service not in dialled:
            dialled.append(service)
        if host.get("runtime_resolved"):
            continue
        if host.get("pod") or headless.get(service) is not False:
            pinned.setdefault(service, str(host.get("host") or service))
    return pinned, sorted(dialled)


def replica_at_risk(
    replica: Replica,
    burst: Burst,
    new: dict[str, str | None],
    ready_since: dict[str, datetime.datetime | None],
    wall_now: datetime.datetime,
    detected_seconds: float,
) -> DriftWatchEvent | None:
    """The event for ``replica`` after a burst of its Service's endpoints, or None.

    ``new``: the Service's ready endpoints now; ``ready_since``: pod (``ns/name``) -> when it
    became Ready (else created), None when it could not be read.
    """
    service = burst.service
    unknown_dials = replica.unread is not None and (
        service in replica.dialled or not replica.dialled
    )
    if service not in replica.pinned and not unknown_dials:
        return None
    if set(new) == set(burst.old):
        return None
    event: DriftWatchEvent = {
        "status": "at_risk",
        "namespace": replica.namespace,
        "replica": replica.name,
        "container": replica.container,
        "service": service,
        "host": replica.pinned.get(service),
        "old_endpoints": sorted(burst.old),
        "new_endpoints": sorted(new),
        "unknown_endpoints": [],
        "last_reload": format_time(replica.last_reload) if replica.last_reload else None,
        "reload_id": replica.reload_id,
        "seconds_since_reload": (
            round((wall_now - replica.last_reload).total_seconds(), 3)
            if replica.last_reload
            else None
        ),
        "endpoints_since": None,
        "first_change": format_time(burst.first_wall) if burst.first_wall else None,
        "detected_seconds": round(detected_seconds, 3),
        "reasons": [],
    }
    if replica.unread or replica.last_reload is None:
        event["status"] = "could_not_check"
        event["reasons"].append(
            "could not read %s: %s"
            % (replica.key, replica.unread or "its last reload (no nginx worker found)")
        )
        return event
    if not new:
        return None  # no ready endpoint: not a reload's to fix (no_endpoints)
    times: dict[str, datetime.datetime] = {}
    unread = []
    for address, pod in sorted(new.items()):
        when = ready_since.get(pod) if pod else None
        if when is None:
            unread.append(address)
        else:
            times[address] = when
    if unread and not any(replica.last_reload < when + CLOCK_SLACK for when in times.values()):
        event["status"] = "could_not_check"
        event["reasons"].append(
            "when %s became ready could not be read; whether %s knows %s is unknown"
            % (", ".join(unread), replica.key, "them" if len(unread) > 1 else "it")
        )
        return event
    newest = max(times.values())
    event["endpoints_since"] = format_time(newest)
    unknown = sorted(a for a, when in times.items() if replica.last_reload < when + CLOCK_SLACK)
    if not unknown:
        return None
    event["unknown_endpoints"] = unknown
    event["reasons"].append(
        "%s resolves %s to pod IPs at load time and last reloaded at %s; %s of Service %s "
        "became ready after that (newest at %s): it cannot dial %s, and may still dial %s"
        % (
            replica.key,
            replica.pinned[service],
            event["last_reload"],
            ", ".join(unknown),
            service,
            event["endpoints_since"],
            "them" if len(unknown) > 1 else "it",
            ", ".join(sorted(set(burst.old) - set(new))) or "none of the old ones",
        )
    )
    return event


def could_not_check_event(namespace: str, reason: str, seconds: float = 0.0) -> DriftWatchEvent:
    """A ``could_not_check`` event about no one replica (the source itself could not look):
    while it cannot, no replica is known to be fine or at risk (an error is never evidence of
    health). ``seconds``: how long it has been so."""
    return {
        "status": "could_not_check",
        "namespace": namespace,
        "replica": None,
        "container": None,
        "service": None,
        "host": None,
        "old_endpoints": [],
        "new_endpoints": [],
        "unknown_endpoints": [],
        "last_reload": None,
        "reload_id": None,
        "seconds_since_reload": None,
        "endpoints_since": None,
        "first_change": None,
        "detected_seconds": round(seconds, 3),
        "reasons": [reason],
    }


def watch_failed_event(resource: str, namespace: str, why: str, seconds: float) -> DriftWatchEvent:
    """The ``could_not_check`` event of a watch that has failed for ``seconds``."""
    return could_not_check_event(
        namespace,
        "the watch of %s in %s has failed for %.0f s (last: %s); what changed meanwhile is "
        "unknown until it works again" % (resource, namespace, seconds, why),
        seconds,
    )


class Reported:
    """One event per replica until it reloads (another ``reload_id``), its status changes, or
    ``repeat`` seconds passed."""

    def __init__(self, repeat: float = 300.0) -> None:
        self.repeat = repeat
        self.last: dict[str, tuple[str | None, str, float]] = {}

    def should_send(self, event: DriftWatchEvent, now: float) -> bool:
        """Whether to send ``event`` now; records it when so."""
        key = "%s/%s" % (event["namespace"], event["replica"])
        seen = self.last.get(key)
        if (
            seen is not None
            and seen[0] == event["reload_id"]
            and seen[1] == event["status"]
            and now - seen[2] < self.repeat
        ):
            return False
        self.last[key] = (event["reload_id"], event["status"], now)
        return True


def ready_time(pod_fact: dict[str, t.Any] | None) -> datetime.datetime | None:
    """When a pod (pod_info's shape) became Ready, else when it was created; None unknown."""
    if not pod_fact:
        return None
    return parse_time(pod_fact.get("ready_since")) or parse_time(pod_fact.get("creation_timestamp"))


class Backoff:
    """Reconnect delays: ``first`` doubled after each failure up to ``most``; ``reset`` after a
    watch that worked."""

    def __init__(self, first: float = 0.5, most: float = 30.0) -> None:
        self.first, self.most = first, most
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count this failure)."""
        delay = min(self.first * 2**self.failures, self.most)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A connect that worked: the next failure waits ``first`` again."""
        self.failures = 0
