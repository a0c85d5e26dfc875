"""In-memory object store of the lab's API server.

The store holds plain dict manifests, keyed by resource (plural name, e.g. ``"pods"``),
namespace and name. ``put`` fills in what a real API server would: ``kind``/``apiVersion``
checks, ``metadata.uid``, ``metadata.resourceVersion`` (one global counter, as in etcd),
``metadata.creationTimestamp`` and ``metadata.namespace`` (``"default"`` when missing),
and refuses objects that lack a field the kubernetes Python client requires
(``REQUIRED_FIELDS``, e.g. ``image``/``imageID`` of a container status).
Putting an object into a namespace that has no Namespace object creates one, because a
real cluster cannot hold objects in a namespace that does not exist.

Every value handed out is a deep copy, so callers may change what they get freely.
The store is meant to be used from one thread (the asyncio loop of the lab).

A put that changes nothing (the same object but for its ``resourceVersion``) is no change: the
object keeps its ``resourceVersion`` and no watcher hears of it, as in Kubernetes. Every change
is kept in a bounded history (``changes_since``, the last ``history`` changes, as etcd keeps
them until a compaction) and handed to the ``subscribe``d callbacks: what the API server's
watch serves. ``compact()`` forgets the history, so a watch that resumes from an older
``resourceVersion`` gets 410 Gone.

    store = Store()
    store.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", ...}, ...})
    store.get("pods", "shop", "web-0")          # dict or None
    store.list("pods", namespace=None)          # all namespaces, sorted by namespace/name
    store.delete("pods", "shop", "web-0")       # the deleted object or None
"""

from __future__ import annotations

import copy
import datetime
import itertools
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from badlab.errors import LabError

# A Kubernetes object as JSON decodes it: its fields vary by kind and are checked where read.
Manifest = dict[str, Any]


class StoreError(LabError):
    """A manifest handed to the store is not usable; the message says what to fix."""


@dataclass(frozen=True)
class ResourceType:
    """One served resource, with what discovery documents say about it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "get", "list", "watch")
    subresources: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``pods`` or ``endpointslices.discovery.k8s.io``, as Kubernetes error messages write it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",)),
    ResourceType(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        True,
        ("po",),
        ("all",),
        subresources={"log": ("Pod", ("get",)), "exec": ("PodExecOptions", ("create", "get"))},
    ),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",), ("all",)),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    ResourceType(
        "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True
    ),
    ResourceType("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", True, ("ing",)),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        True,
        ("netpol",),
    ),
)

BY_PLURAL: dict[str, ResourceType] = {rt.plural: rt for rt in RESOURCE_TYPES}
BY_KIND: dict[tuple[str, str], ResourceType] = {
    (rt.api_version, rt.kind): rt for rt in RESOURCE_TYPES
}


# Fields the kubernetes Python client (37.x, pydantic models) requires when it reads an
# object: a stored object without them breaks CoreV1Api callers. ``[]`` walks a list.
REQUIRED_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "pods": (
        ("spec", "containers"),
        ("spec.containers[]", "name"),
        ("spec.containers[].ports[]", "containerPort"),
        ("status.containerStatuses[]", "name"),
        ("status.containerStatuses[]", "image"),
        ("status.containerStatuses[]", "imageID"),
        ("status.containerStatuses[]", "ready"),
        ("status.containerStatuses[]", "restartCount"),
        ("status.containerStatuses[].lastState.terminated", "exitCode"),
        ("status.containerStatuses[].state.terminated", "exitCode"),
        ("status.initContainerStatuses[]", "image"),
        ("status.initContainerStatuses[]", "imageID"),
        ("status.conditions[]", "type"),
        ("status.conditions[]", "status"),
        ("status.podIPs[]", "ip"),
    ),
    "services": (("spec.ports[]", "port"),),
    "endpointslices": (("", "addressType"), ("endpoints[]", "addresses")),
    "endpoints": (("subsets[].addresses[]", "ip"), ("subsets[].ports[]", "port")),
    "events": (("", "involvedObject"),),
}


def _nodes(obj: object, path: str) -> list[tuple[str, object]]:
    """(where, value) of every node a REQUIRED_FIELDS path reaches."""
    found = [("", obj)]
    for step in filter(None, path.split(".")):
        many = step.endswith("[]")
        key = step[:-2] if many else step
        nxt = []
        for where, node in found:
            value = node.get(key) if isinstance(node, dict) else None
            if value is None:
                continue
            if many and isinstance(value, list):
                nxt += [(f"{where}{key}[{i}].", item) for i, item in enumerate(value)]
            elif not many:
                nxt.append((f"{where}{key}.", value))
        found = nxt
    return found


def check_required_fields(rt: ResourceType, obj: Manifest) -> None:
    """Raise StoreError when a field the kubernetes client requires is missing."""
    for path, field_name in REQUIRED_FIELDS.get(rt.plural, ()):
        for where, node in _nodes(obj, path):
            if not isinstance(node, dict) or node.get(field_name) is None:
                raise StoreError(
                    f"{rt.kind} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}: "
                    f"{where}{field_name} is missing; the kubernetes Python client rejects a "
                    f"{rt.kind} without it, so give it a value"
                )


def now_rfc3339() -> str:
    """The current UTC time as Kubernetes writes timestamps (seconds, ``Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource_type_of(manifest: Manifest) -> ResourceType:
    """The ResourceType of a manifest, from its ``apiVersion`` and ``kind``."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    rt = (
        BY_KIND.get((api_version, kind))
        if isinstance(api_version, str) and isinstance(kind, str)
        else None
    )
    if rt is None:
        served = ", ".join(f"{r.api_version} {r.kind}" for r in RESOURCE_TYPES)
        raise StoreError(
            f"apiVersion {api_version!r} kind {kind!r} is not served by the lab API server; "
            f"use one of: {served}"
        )
    return rt


@dataclass(frozen=True)
class Change:
    """One change of the store: ``kind`` ADDED, MODIFIED or DELETED, at ``resource_version``.

    ``obj`` is the object after the change (for DELETED: as it was, with the deletion's
    resourceVersion), ``old`` the object before it (None for ADDED). Both are the store's own
    copies: readers must not change them.
    """

    kind: str
    resource: str
    resource_version: int
    obj: Manifest
    old: Manifest | None


class Store:
    """Objects by resource, namespace and name; see the module docstring."""

    def __init__(self, history: int = 10000) -> None:
        self._objects: dict[str, dict[tuple[str, str], Manifest]] = {
            rt.plural: {} for rt in RESOURCE_TYPES
        }
        self._counter = itertools.count(1)
        self._resource_version = 0
        self._history: deque[Change] = deque(maxlen=history)
        self._oldest = 0  # changes after this resourceVersion are all in the history
        self._subscribers: list[Callable[[Change], None]] = []

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion handed out, as a string (what list metadata carries)."""
        return str(self._resource_version)

    def _bump(self) -> str:
        self._resource_version = next(self._counter)
        return str(self._resource_version)

    def _record(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._oldest = self._history[0].resource_version
        self._history.append(change)
        for callback in list(self._subscribers):
            callback(change)

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` on every later change; returns the function that stops it."""
        self._subscribers.append(callback)

        def stop() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return stop

    def changes_since(self, resource: str, resource_version: int) -> list[Change] | None:
        """The changes of ``resource`` after ``resource_version``, oldest first; None when the
        history no longer reaches back that far (the watch's 410 Gone)."""
        if resource_version < self._oldest:
            return None
        return [
            c
            for c in self._history
            if c.resource == resource and c.resource_version > resource_version
        ]

    def compact(self) -> int:
        """Forget the history (as an etcd compaction does); returns the resourceVersion before
        which a watch can no longer resume."""
        self._history.clear()
        self._oldest = self._resource_version
        return self._oldest

    def put(self, manifest: Manifest) -> Manifest:
        """Create or replace an object; returns (a copy of) what is stored.

        Replacing keeps the stored ``uid`` and ``creationTimestamp`` unless the manifest
        gives its own; every put gets a new ``resourceVersion``.
        """
        if not isinstance(manifest, dict):
            raise StoreError(f"a manifest must be a mapping, got {type(manifest).__name__}")
        rt = resource_type_of(manifest)
        obj = copy.deepcopy(manifest)
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise StoreError(f"{rt.kind} manifest has no metadata.name; give every object a name")
        if rt.namespaced:
            meta.setdefault("namespace", "default")
            if not isinstance(meta["namespace"], str) or not meta["namespace"]:
                raise StoreError(
                    f"{rt.kind} {meta['name']!r}: metadata.namespace must be a non-empty string"
                )
        else:
            meta.pop("namespace", None)
        check_required_fields(rt, obj)
        if rt.namespaced:
            self._ensure_namespace(meta["namespace"])
        key = (meta.get("namespace", ""), meta["name"])
        old = self._objects[rt.plural].get(key)
        if old is not None:
            meta.setdefault("uid", old["metadata"]["uid"])
            meta.setdefault("creationTimestamp", old["metadata"]["creationTimestamp"])
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        if rt.plural == "namespaces":
            obj.setdefault("status", {"phase": "Active"})
        if old is not None:
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if obj == old:  # nothing changed: no new resourceVersion, nothing to watch
                return copy.deepcopy(obj)
        meta["resourceVersion"] = self._bump()
        self._objects[rt.plural][key] = obj
        self._record(
            Change(
                "ADDED" if old is None else "MODIFIED",
                rt.plural,
                int(meta["resourceVersion"]),
                obj,
                old,
            )
        )
        return copy.deepcopy(obj)

    def _ensure_namespace(self, name: str) -> None:
        if ("", name) not in self._objects["namespaces"]:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def get(self, resource: str, namespace: str | None, name: str) -> Manifest | None:
        """One object, or None. ``namespace`` is ignored for cluster-scoped resources."""
        rt = self._type(resource)
        obj = self._objects[rt.plural].get(((namespace or "") if rt.namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        predicate: Callable[[Manifest], bool] | None = None,
    ) -> list[Manifest]:
        """Objects of a resource sorted by namespace and name; ``namespace=None`` means all.

        ``predicate`` (optional) filters before anything is copied; it sees the stored
        object and must not change it.
        """
        rt = self._type(resource)
        table = self._objects[rt.plural]
        return [
            copy.deepcopy(table[key])
            for key in sorted(table)
            if (namespace is None or not rt.namespaced or key[0] == namespace)
            and (predicate is None or predicate(table[key]))
        ]

    def delete(self, resource: str, namespace: str | None, name: str) -> Manifest | None:
        """Remove an object; returns it, or None when there was none."""
        rt = self._type(resource)
        obj = self._objects[rt.plural].pop(((namespace or "") if rt.namespaced else "", name), None)
        if obj is not None:
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = self._bump()
            self._record(Change("DELETED", rt.plural, self._resource_version, gone, obj))
        return obj

    @staticmethod
    def _type(resource: str) -> ResourceType:
        rt = BY_PLURAL.get(resource)
        if rt is None:
            raise StoreError(
                f"unknown resource {resource!r}; known: {', '.join(sorted(BY_PLURAL))}"
            )
        return rt
