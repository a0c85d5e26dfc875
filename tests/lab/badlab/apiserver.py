"""The lab's stand-in Kubernetes API server (aiohttp).

    app = make_app(store, runtime, auth)
    server = await start_server(app, "127.0.0.1", 0, tls_dir=tmp)   # inside a running loop
    server.url, server.port, server.ca_file; await server.close()

or, from blocking code (tests, tools):

    with ThreadedServer(store, runtime, auth, tls_dir=tmp) as server:
        ...  # server.url; server.call(store.put, manifest) runs inside the server's loop

Served: discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, groups, versions),
get/list of the resources in ``store.RESOURCE_TYPES`` (namespaced and across namespaces,
label and field selectors, ``limit``/``continue``), the Table form ``kubectl get`` asks for
(every served kind), ``pods/log`` from the runtime's CRI log files (``follow`` included) and
``pods/exec`` over WebSocket (``v5.channel.k8s.io``, ``v4.channel.k8s.io``, ``channel.k8s.io``,
``base64.channel.k8s.io``). Every request needs a bearer token (health paths excepted);
``rbac.Auth`` decides what it may do, ``Impersonate-User`` included. Errors are ``Status``
objects worded as Kubernetes words them. POST creates objects (409 when the name is taken)
and answers the SelfSubjectAccessReview of ``kubectl auth can-i``. Watch (``?watch=1`` or
``/watch/`` paths) streams the store's changes as Kubernetes does: from ``resourceVersion`` on
(unset or ``0``: the current objects as ADDED first), selectors applied (an object that stops
matching is DELETED), BOOKMARK events with ``allowWatchBookmarks``, an ERROR event with a 410
Expired Status when the history no longer reaches back to ``resourceVersion`` (``Store.compact``),
the stream ended after ``timeoutSeconds``. Not served: update, patch, delete, SPDY exec (400),
port-forward, attach.
"""

from __future__ import annotations

import asyncio
import dataclasses
import base64
import binascii
import datetime
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

from aiohttp import WSMsgType, web

from badlab import certs
from badlab.errors import ExecNotFound, LabError, PodNotRunning
from badlab.rbac import Attributes, Auth, User, forbidden_message
from badlab.label_selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from badlab.store import BY_PLURAL, RESOURCE_TYPES, Change, Manifest, ResourceType, Store

log = logging.getLogger("badlab.apiserver")


class PodRuntime(Protocol):
    """What the API server asks of the runtime that runs the pods (DESIGN.md, "The lab").

    ``runtime.Runtime`` is the lab's; tests/lab/apiserver_support.py has a fake. The API server
    passes the container it chose from the stored Pod.
    """

    def log_path(
        self, namespace: str, pod: str, container: str, previous: bool = False
    ) -> Path | None:
        """The CRI log file of the container's current (``previous``: last finished) instance, or
        None when there is none. One record a line: ``<RFC3339Nano UTC> <stdout|stderr> F|P <text>``.
        May raise PodNotRunning (answered as a 400)."""
        ...

    def exec_command(self, namespace: str, pod: str, container: str, argv: list[str]) -> list[str]:
        """The argv to spawn so that ``argv`` runs in the container (e.g. ``nsenter --target PID
        --mount -- …``). Raises ExecNotFound when ``argv[0]`` cannot be found in the container,
        PodNotRunning when the container does not run."""
        ...


STORE = web.AppKey("store", Store)
# A Protocol is no concrete class, so the type is given as AppKey's type argument (as aiohttp documents).
RUNTIME = web.AppKey[PodRuntime]("runtime")
AUTH = web.AppKey("auth", Auth)
EXEC_PROCESSES = web.AppKey[set[asyncio.subprocess.Process]]("exec_processes")
# Seconds between two BOOKMARK events of a watch that asked for them (Kubernetes: about a minute).
BOOKMARK_SECONDS = web.AppKey("bookmark_seconds", float)
# The change queues of the open watches: end_watches puts None into each to end its stream.
WATCH_QUEUES = web.AppKey[set[asyncio.Queue[Change | None]]]("watch_queues")
# Set while watches may start; cleared, a new watch waits (hold_watches) until it is set again.
WATCH_GATE = web.AppKey("watch_gate", asyncio.Event)
# A watch without timeoutSeconds ends after this long (Kubernetes: 30-60 minutes at random).
WATCH_DEFAULT_TIMEOUT = 1800

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-badlab",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
EXEC_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
NOT_FOUND_MESSAGE = "the server could not find the requested resource"
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


class ApiError(Exception):
    """An error answered as a Kubernetes ``Status``."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        """The Status object of this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def response(self) -> web.Response:
        """The HTTP answer carrying the Status."""
        return _json(self.status(), self.code)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def not_found(rt: ResourceType, name: str) -> ApiError:
    """404 NotFound for a named object, e.g. ``pods "x" not found``."""
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details = {"name": name, "group": rt.group, "kind": rt.plural}
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', details)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


@dataclass(frozen=True)
class RequestInfo:
    """A resource request, parsed the way Kubernetes' RequestInfoFactory parses it."""

    verb: str
    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str

    def attributes(self) -> Attributes:
        """Authorizer attributes of this request."""
        return Attributes(
            self.verb, self.resource, self.group, self.namespace, self.name, self.subresource
        )


def parse_request_info(method: str, path: str, query: Any) -> RequestInfo | None:
    """RequestInfo of a resource path, or None for a non-resource path (discovery etc.)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return None
        group, version, rest = parts[1], parts[2], parts[3:]
    verb = {
        "GET": "get",
        "HEAD": "get",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }.get(method, method.lower())
    watching = False
    if rest[0] == "watch":
        watching, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if verb == "get" and not name:
        verb = (
            "watch" if watching or str(query.get("watch", "")).lower() in ("true", "1") else "list"
        )
    elif watching:
        verb = "watch"
    if verb == "delete" and not name:
        verb = "deletecollection"
    return RequestInfo(verb, group, version, namespace, resource, name, subresource)


# ---------------------------------------------------------------- discovery

# Served but not stored: ``kubectl auth can-i`` posts a SelfSubjectAccessReview.
ACCESS_REVIEW = ResourceType(
    "authorization.k8s.io",
    "v1",
    "selfsubjectaccessreviews",
    "",
    "SelfSubjectAccessReview",
    False,
    verbs=("create",),
)
SERVED_TYPES = (*RESOURCE_TYPES, ACCESS_REVIEW)


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rt in SERVED_TYPES:
        if rt.group and rt.version not in groups.setdefault(rt.group, []):
            groups[rt.group].append(rt.version)
    return groups


def _api_group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def _resource_list(group: str, version: str) -> dict[str, Any] | None:
    resources = []
    for rt in SERVED_TYPES:
        if rt.group != group or rt.version != version:
            continue
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub, (kind, verbs) in rt.subresources.items():
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": kind,
                    "verbs": list(verbs),
                }
            )
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _discovery(request: web.Request) -> web.Response:
    parts = [p for p in request.path.strip("/").split("/") if p]
    if parts == ["version"]:
        return _json(SERVER_VERSION)
    if parts == ["api"]:
        host = request.host or "127.0.0.1"
        return _json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        )
    if parts == ["apis"]:
        group_list = [_api_group(name, versions) for name, versions in sorted(_groups().items())]
        return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list})
    groups = _groups()
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
        return _json(
            {"kind": "APIGroup", "apiVersion": "v1", **_api_group(parts[1], groups[parts[1]])}
        )
    body = None
    if len(parts) == 2 and parts[0] == "api":
        body = _resource_list("", parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        body = _resource_list(parts[1], parts[2])
    if body is None:
        raise ApiError(404, "NotFound", NOT_FOUND_MESSAGE, {})
    return _json(body)


# ---------------------------------------------------------------- get / list / Table


def _with_type(rt: ResourceType, obj: Manifest) -> Manifest:
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
    return obj


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0].replace(" ", "")
    return "as=Table" in first and "g=meta.k8s.io" in first


def _parse_time(text: str) -> datetime.datetime | None:
    """RFC 3339 (fraction of any length, ``Z`` or offset) to an aware datetime, or None."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        return None
    fraction = (m.group(2) or "")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.datetime.fromisoformat(f"{m.group(1)}.{fraction}{zone}")
    except ValueError:
        return None


def kube_age(timestamp: str | None, now: datetime.datetime) -> str:
    """Kubernetes' short human duration ("5s", "3m", "2d4h") since ``timestamp``."""
    when = _parse_time(timestamp or "")
    if when is None:
        return "<unknown>"
    seconds = max(int((now - when).total_seconds()), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"


# One row of a Table: its cells, in the order of the columns.
Row = list[object]


def _pod_row(pod: Manifest, now: datetime.datetime) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last_restart = None
    for cs in statuses:
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        when = _parse_time(finished or "")
        if when and (last_restart is None or when > last_restart):
            last_restart = when
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in reversed(statuses):  # the first container's state wins, as in kubectl
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            term = state["terminated"]
            reason = (
                f"Signal:{term['signal']}"
                if term.get("signal")
                else f"ExitCode:{term.get('exitCode', 0)}"
            )
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restart_cell = str(restarts)
    if restarts and last_restart:
        restart_cell = (
            f"{restarts} ({kube_age(last_restart.strftime('%Y-%m-%dT%H:%M:%SZ'), now)} ago)"
        )
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restart_cell,
        kube_age(pod["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _service_row(svc: Manifest, now: datetime.datetime) -> Row:
    spec = svc.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol') or 'TCP'}")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = [i.get("ip") or i.get("hostname") for i in ingress] + list(
        spec.get("externalIPs") or []
    )
    svc_type = spec.get("type") or "ClusterIP"
    if not external:
        external_cell = "<pending>" if svc_type == "LoadBalancer" else "<none>"
    else:
        external_cell = ",".join(e for e in external if e)
    selector = spec.get("selector") or {}
    return [
        svc["metadata"]["name"],
        svc_type,
        spec.get("clusterIP") or "<none>",
        external_cell,
        ",".join(ports) or "<none>",
        kube_age(svc["metadata"].get("creationTimestamp"), now),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _first_three(values: list[str], empty: str) -> str:
    """kubectl's way of listing addresses: three, then "+ N more..."."""
    if not values:
        return empty
    text = ",".join(values[:3])
    return f"{text} + {len(values) - 3} more..." if len(values) > 3 else text


def _namespace_row(ns: Manifest, now: datetime.datetime) -> Row:
    phase = (ns.get("status") or {}).get("phase") or "Active"
    return [ns["metadata"]["name"], phase, kube_age(ns["metadata"].get("creationTimestamp"), now)]


def _endpointslice_row(eps: Manifest, now: datetime.datetime) -> Row:
    ports = [
        str(p["port"]) if p.get("port") is not None else "<unset>" for p in eps.get("ports") or []
    ]
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        eps["metadata"]["name"],
        eps.get("addressType", ""),
        _first_three(ports, "<unset>"),
        _first_three(addresses, "<unset>"),
        kube_age(eps["metadata"].get("creationTimestamp"), now),
    ]


def _endpoints_row(ep: Manifest, now: datetime.datetime) -> Row:
    pairs = [
        f"{a['ip']}:{p['port']}"
        for subset in ep.get("subsets") or []
        for a in subset.get("addresses") or []
        for p in subset.get("ports") or []
    ]
    return [
        ep["metadata"]["name"],
        _first_three(pairs, "<none>"),
        kube_age(ep["metadata"].get("creationTimestamp"), now),
    ]


def _ingress_row(ing: Manifest, now: datetime.datetime) -> Row:
    spec = ing.get("spec") or {}
    hosts = [r["host"] for r in spec.get("rules") or [] if r.get("host")]
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname") or "" for i in lb)
    return [
        ing["metadata"]["name"],
        spec.get("ingressClassName") or "<none>",
        _first_three(hosts, "*"),
        address,
        "80, 443" if spec.get("tls") else "80",
        kube_age(ing["metadata"].get("creationTimestamp"), now),
    ]


def _selector_text(selector: dict[str, Any]) -> str:
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = (
            expr.get("operator", ""),
            expr.get("key", ""),
            ",".join(expr.get("values") or []),
        )
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }.get(op, f"{key} {op}")
        )
    return ",".join(terms) or "<none>"


def _netpol_row(pol: Manifest, now: datetime.datetime) -> Row:
    selector = (pol.get("spec") or {}).get("podSelector") or {}
    return [
        pol["metadata"]["name"],
        _selector_text(selector),
        kube_age(pol["metadata"].get("creationTimestamp"), now),
    ]


def _event_row(ev: Manifest, now: datetime.datetime) -> Row:
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    first = (
        ev.get("firstTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    )
    involved = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    return [
        kube_age(last, now),
        ev.get("type") or "",
        ev.get("reason") or "",
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        ev.get("message") or "",
        involved.get("fieldPath") or "",
        ", ".join(v for v in (source.get("component"), source.get("host")) if v),
        kube_age(first, now),
        str(ev.get("count") or 1),
        ev["metadata"]["name"],
    ]


def _column(name: str, kind: str, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


TABLES: dict[str, tuple[list[dict[str, Any]], Callable[[Manifest, datetime.datetime], Row]]] = {
    "pods": (
        [
            _column("Name", "string", 0, "name"),
            _column("Ready", "string"),
            _column("Status", "string"),
            _column("Restarts", "string"),
            _column("Age", "string"),
            _column("IP", "string", 1),
            _column("Node", "string", 1),
            _column("Nominated Node", "string", 1),
            _column("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "services": (
        [
            _column("Name", "string", 0, "name"),
            _column("Type", "string"),
            _column("Cluster-IP", "string"),
            _column("External-IP", "string"),
            _column("Port(s)", "string"),
            _column("Age", "string"),
            _column("Selector", "string", 1),
        ],
        _service_row,
    ),
    "namespaces": (
        [
            _column("Name", "string", 0, "name"),
            _column("Status", "string"),
            _column("Age", "string"),
        ],
        _namespace_row,
    ),
    "endpointslices": (
        [
            _column("Name", "string", 0, "name"),
            _column("AddressType", "string"),
            _column("Ports", "string"),
            _column("Endpoints", "string"),
            _column("Age", "string"),
        ],
        _endpointslice_row,
    ),
    "endpoints": (
        [
            _column("Name", "string", 0, "name"),
            _column("Endpoints", "string"),
            _column("Age", "string"),
        ],
        _endpoints_row,
    ),
    "ingresses": (
        [
            _column("Name", "string", 0, "name"),
            _column("Class", "string"),
            _column("Hosts", "string"),
            _column("Address", "string"),
            _column("Ports", "string"),
            _column("Age", "string"),
        ],
        _ingress_row,
    ),
    "events": (
        [
            _column("Last Seen", "string"),
            _column("Type", "string"),
            _column("Reason", "string"),
            _column("Object", "string"),
            _column("Message", "string"),
            _column("Subobject", "string", 1),
            _column("Source", "string", 1),
            _column("First Seen", "string", 1),
            _column("Count", "string", 1),
            _column("Name", "string", 1, "name"),
        ],
        _event_row,
    ),
    "networkpolicies": (
        [
            _column("Name", "string", 0, "name"),
            _column("Pod-Selector", "string"),
            _column("Age", "string"),
        ],
        _netpol_row,
    ),
}


def _table(
    request: web.Request, rt: ResourceType, objs: list[Manifest], list_meta: dict[str, Any]
) -> dict[str, Any]:
    columns, row_of = TABLES[rt.plural]
    now = datetime.datetime.now(datetime.timezone.utc)
    include = request.query.get("includeObject", "Metadata")
    rows = []
    for obj in objs:
        if include == "Object":
            embedded = _with_type(rt, obj)
        elif include == "None":
            embedded = None
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": row_of(obj, now), "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    }


def _selectors(request: web.Request, rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
    """The request's label and field selectors; a 400 naming the mistake."""
    try:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), rt.plural)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    return labels, fields


def _list(request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
    store = request.app[STORE]
    labels, fields = _selectors(request, rt)
    items = store.list(
        rt.plural,
        info.namespace or None,
        lambda obj: labels.matches(obj["metadata"].get("labels")) and fields.matches(obj),
    )
    meta: dict[str, Any] = {"resourceVersion": store.resource_version}
    start = request.query.get("continue")
    if start:
        try:
            after = json.loads(base64.urlsafe_b64decode(start.encode()))["after"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise ApiError(
                410,
                "Expired",
                "The provided continue parameter is too old to display a "
                "consistent list result. You can start a new list without the continue "
                "parameter.",
            ) from None
        items = [o for o in items if _sort_key(o) > tuple(after)]
    limit = request.query.get("limit")
    if limit:
        try:
            count = int(limit)
        except ValueError:
            raise bad_request(f"limit: Invalid value: {limit!r}: must be an integer") from None
        if 0 < count < len(items):
            token = json.dumps({"after": list(_sort_key(items[count - 1]))}).encode()
            meta["continue"] = base64.urlsafe_b64encode(token).decode()
            meta["remainingItemCount"] = len(items) - count
            items = items[:count]
    if _wants_table(request) and rt.plural in TABLES:
        return _json(_table(request, rt, items, meta))
    return _json(
        {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [_with_type(rt, o) for o in items],
        }
    )


def _sort_key(obj: Manifest) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _get(request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
    obj = request.app[STORE].get(rt.plural, info.namespace, info.name)
    if obj is None:
        raise not_found(rt, info.name)
    if _wants_table(request) and rt.plural in TABLES:
        return _json(
            _table(request, rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]})
        )
    return _json(_with_type(rt, obj))


# ---------------------------------------------------------------- watch


def _watch_event(rt: ResourceType, kind: str, obj: Manifest) -> bytes:
    return (
        json.dumps({"type": kind, "object": {**obj, "kind": rt.kind, "apiVersion": rt.api_version}})
        + "\n"
    ).encode()


def _change_event(change: Change, matches: Callable[[Manifest], bool]) -> str | None:
    """The watch event type a change makes for a watcher with these selectors, or None."""
    was = change.old is not None and matches(change.old)
    if change.kind == "DELETED":
        return "DELETED" if was else None
    now_ = matches(change.obj)
    if now_:
        return "MODIFIED" if was else "ADDED"
    return "DELETED" if was else None


async def _watch(request: web.Request, rt: ResourceType, info: RequestInfo) -> web.StreamResponse:
    store = request.app[STORE]
    labels, fields = _selectors(request, rt)
    timeout = _non_negative_int(request, "timeoutSeconds", 0)
    since_text = request.query.get("resourceVersion", "")
    if since_text and not since_text.isdigit():
        raise bad_request(f"resourceVersion: Invalid value: {since_text!r}: must be an integer")
    bookmarks = _flag(request, "allowWatchBookmarks")
    await request.app[WATCH_GATE].wait()

    def matches(obj: Manifest) -> bool:
        return (
            (not info.namespace or obj["metadata"].get("namespace") == info.namespace)
            and labels.matches(obj["metadata"].get("labels"))
            and fields.matches(obj)
        )

    # Subscribe first, with no await before the start is read: no change falls in between.
    live: asyncio.Queue[Change | None] = asyncio.Queue()
    unsubscribe = store.subscribe(live.put_nowait)
    request.app[WATCH_QUEUES].add(live)
    try:
        first: list[bytes] = []
        position = int(store.resource_version)
        if since_text in ("", "0"):
            for obj in store.list(rt.plural, info.namespace or None, matches):
                first.append(_watch_event(rt, "ADDED", obj))
        else:
            changes = store.changes_since(rt.plural, int(since_text))
            if changes is None:
                gone = ApiError(
                    410,
                    "Expired",
                    f"too old resource version: {since_text} ({position})",
                )
                first.append(
                    (json.dumps({"type": "ERROR", "object": gone.status()}) + "\n").encode()
                )
                position = -1
            else:
                for change in changes:
                    kind = _change_event(change, matches)
                    if kind is not None:
                        first.append(_watch_event(rt, kind, change.obj))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for line in first:
            await response.write(line)
        if position < 0:  # the 410: the client must list again
            await response.write_eof()
            return response
        loop = asyncio.get_running_loop()
        ends = loop.time() + (timeout or WATCH_DEFAULT_TIMEOUT)
        every = request.app[BOOKMARK_SECONDS]
        next_bookmark = loop.time() + every
        while (left := ends - loop.time()) > 0:
            wait = min(left, next_bookmark - loop.time()) if bookmarks else left
            try:
                got = await asyncio.wait_for(live.get(), max(wait, 0))
            except asyncio.TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    mark = {"metadata": {"resourceVersion": store.resource_version}}
                    await response.write(_watch_event(rt, "BOOKMARK", mark))
                    next_bookmark = loop.time() + every
                continue
            if got is None:  # end_watches: the server drops its watches
                break
            if got.resource != rt.plural or got.resource_version <= position:
                continue
            kind = _change_event(got, matches)
            if kind is not None:
                await response.write(_watch_event(rt, kind, got.obj))
        await response.write_eof()
        return response
    finally:
        request.app[WATCH_QUEUES].discard(live)
        unsubscribe()


def hold_watches(app: web.Application, hold: bool) -> None:
    """Hold new watches back (``hold``) until called again with False."""
    if hold:
        app[WATCH_GATE].clear()
    else:
        app[WATCH_GATE].set()


def end_watches(app: web.Application) -> int:
    """End every open watch stream now (the clients must watch again); returns how many."""
    queues: set[asyncio.Queue[Change | None]] = app[WATCH_QUEUES]
    for queue in list(queues):
        queue.put_nowait(None)
    return len(queues)


async def _create(request: web.Request, rt: ResourceType, info: RequestInfo) -> web.Response:
    """POST to a collection: store the object; 409 AlreadyExists when the name is taken.

    Only the store changes: the runtime does not start processes for objects made this way.
    """
    if request.content_type not in ("application/json", "application/octet-stream"):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format "
            f"({request.content_type}) - accepted media types include: application/json",
        )
    try:
        obj = await request.json()
    except ValueError:
        raise bad_request("the request body is not valid JSON; send one object as JSON") from None
    if not isinstance(obj, dict):
        raise bad_request("the request body must be one JSON object")
    obj.setdefault("kind", rt.kind)
    obj.setdefault("apiVersion", rt.api_version)
    if (obj["apiVersion"], obj["kind"]) != (rt.api_version, rt.kind):
        raise bad_request(
            f"the API version in the data ({obj['apiVersion']}) or kind ({obj['kind']}) does "
            f"not match the expected API version ({rt.api_version}) or kind ({rt.kind})"
        )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ApiError(
            422,
            "Invalid",
            f'{rt.kind} "" is invalid: metadata.name: Required value: name is required',
        )
    if rt.namespaced:
        if meta.setdefault("namespace", info.namespace) != info.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if request.app[STORE].get("namespaces", None, info.namespace) is None:
            raise not_found(BY_PLURAL["namespaces"], info.namespace)
    store = request.app[STORE]
    if store.get(rt.plural, info.namespace, meta["name"]) is not None:
        details = {
            "name": meta["name"],
            **({"group": rt.group} if rt.group else {}),
            "kind": rt.plural,
        }
        raise ApiError(
            409, "AlreadyExists", f'{rt.group_resource} "{meta["name"]}" already exists', details
        )
    return _json(_with_type(rt, store.put(obj)), 201)


# ---------------------------------------------------------------- pods: container choice


def _container_names(pod: Manifest, key: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(key) or []]


def _choose_container(pod: Manifest, requested: str | None) -> str:
    """The container a log/exec request is about, with the real server's errors."""
    name = pod["metadata"]["name"]
    main = _container_names(pod, "containers")
    others = _container_names(pod, "initContainers") + _container_names(pod, "ephemeralContainers")
    if requested:
        if requested not in main + others:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(main) == 1:
        return main[0]
    if not main:
        raise bad_request(f"pod {name} has no containers")
    message = (
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
    )
    init = _container_names(pod, "initContainers")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise bad_request(message)


def _flag(request: web.Request, key: str) -> bool:
    return request.query.get(key, "").lower() in ("true", "1")


def _non_negative_int(request: web.Request, key: str, minimum: int) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{key}: Invalid value: {raw!r}: must be an integer") from None
    if value < minimum:
        raise ApiError(
            422,
            "Invalid",
            f'PodLogOptions "" is invalid: {key}: Invalid value: {value}: '
            f"must be greater than or equal to {minimum}",
        )
    return value


def _pod(request: web.Request, info: RequestInfo) -> Manifest:
    pod = request.app[STORE].get("pods", info.namespace, info.name)
    if pod is None:
        raise not_found(BY_PLURAL["pods"], info.name)
    return pod


# ---------------------------------------------------------------- pods/log


@dataclass(frozen=True)
class LogRecord:
    """One full log line of a CRI log file."""

    timestamp: str
    when: datetime.datetime | None
    text: str  # ends with "\n"


class LogOptions(TypedDict):
    """What a pods/log request asks for, checked (the query's tailLines, limitBytes, sinceSeconds or
    sinceTime, timestamps)."""

    tail: int | None
    limit: int | None
    cutoff: datetime.datetime | None
    timestamps: bool


def read_cri_log(path: Path) -> list[LogRecord]:
    """Full lines of a CRI log file (``P`` partial records joined to their ``F`` record)."""
    records: list[LogRecord] = []
    pending: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[1] not in ("stdout", "stderr") or parts[2] not in ("F", "P"):
                log.debug("skipping a malformed CRI log line in %s: %r", path, line[:80])
                continue
            timestamp, stream, tag = parts[0], parts[1], parts[2]
            text = parts[3] if len(parts) == 4 else ""
            chunks = pending.setdefault(stream, [])
            chunks.append(text)
            if tag == "F":
                records.append(LogRecord(timestamp, _parse_time(timestamp), "".join(chunks) + "\n"))
                pending[stream] = []
    return records


def _log_options(request: web.Request) -> LogOptions:
    since = _non_negative_int(request, "sinceSeconds", 1)
    since_time = request.query.get("sinceTime")
    if since is not None and since_time:
        raise ApiError(
            422,
            "Invalid",
            'PodLogOptions "" is invalid: sinceSeconds: Forbidden: '
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )
    cutoff = None
    if since is not None:
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=since)
    elif since_time:
        cutoff = _parse_time(since_time)
        if cutoff is None:
            raise bad_request(f"sinceTime: Invalid value: {since_time!r}: must be an RFC 3339 time")
    return {
        "tail": _non_negative_int(request, "tailLines", 0),
        "limit": _non_negative_int(request, "limitBytes", 1),
        "cutoff": cutoff,
        "timestamps": _flag(request, "timestamps"),
    }


def _render_records(records: list[LogRecord], opts: LogOptions, apply_tail: bool) -> bytes:
    if apply_tail and opts["tail"] is not None:
        records = records[-opts["tail"] :] if opts["tail"] else []
    if opts["cutoff"] is not None:
        records = [r for r in records if r.when is None or r.when >= opts["cutoff"]]
    if opts["timestamps"]:
        return "".join(f"{r.timestamp} {r.text}" for r in records).encode()
    return "".join(r.text for r in records).encode()


async def _logs(request: web.Request, info: RequestInfo) -> web.StreamResponse:
    pod = _pod(request, info)
    container = _choose_container(pod, request.query.get("container"))
    opts = _log_options(request)
    previous = _flag(request, "previous")
    try:
        path = request.app[RUNTIME].log_path(
            info.namespace, info.name, container, previous=previous
        )
    except PodNotRunning as exc:
        raise bad_request(str(exc)) from None
    if path is None or not Path(path).exists():
        if previous:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{info.name}" not found'
            )
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if cs.get("name") == container and waiting is not None:
                raise bad_request(
                    f'container "{container}" in pod "{info.name}" is waiting to start: '
                    f"{waiting.get('reason') or 'ContainerCreating'}"
                )
        raise bad_request(
            f'container "{container}" in pod "{info.name}" has no log (it has not started)'
        )
    records = await asyncio.to_thread(read_cri_log, Path(path))
    body = _render_records(records, opts, apply_tail=True)
    if opts["limit"] is not None:
        body = body[: opts["limit"]]
    if not _flag(request, "follow"):
        return web.Response(body=body, content_type="text/plain", charset="utf-8")
    return await _follow_log(request, info, container, Path(path), len(records), body, opts)


def _still_current(request: web.Request, info: RequestInfo, container: str, path: Path) -> bool:
    """Whether the followed log is still the container's current one (pod there, no restart)."""
    if request.app[STORE].get("pods", info.namespace, info.name) is None:
        return False
    try:
        current = request.app[RUNTIME].log_path(info.namespace, info.name, container)
    except PodNotRunning:
        return False
    return current is not None and Path(current) == path and path.exists()


async def _follow_log(
    request: web.Request,
    info: RequestInfo,
    container: str,
    path: Path,
    seen: int,
    first: bytes,
    opts: LogOptions,
) -> web.StreamResponse:
    """``follow=true``: stream new records until the pod goes, the container restarts
    (its log file changes) or the client leaves."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    sent = len(first)
    await response.write(first)
    while opts["limit"] is None or sent < opts["limit"]:
        await asyncio.sleep(0.2)
        if not _still_current(request, info, container, path):
            break
        records = await asyncio.to_thread(read_cri_log, path)
        chunk = _render_records(records[seen:], opts, apply_tail=False)
        seen = len(records)
        if opts["limit"] is not None:
            chunk = chunk[: opts["limit"] - sent]
        if chunk:
            await response.write(chunk)
            sent += len(chunk)
    await response.write_eof()
    return response


# ---------------------------------------------------------------- pods/exec


def _exit_status(argv_shown: list[str], returncode: int) -> dict[str, Any]:
    if returncode == 0:
        return {"metadata": {}, "status": "Success"}
    code = 128 - returncode if returncode < 0 else returncode  # killed by a signal: 128+N, as CRI
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"[{' '.join(argv_shown)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _start_failure(command: str, problem: str, runtime_message: str = "") -> dict[str, Any]:
    """Channel-3 Status of an exec that could not start: InternalError with OCI runtime text."""
    if runtime_message.startswith("OCI runtime"):
        oci = runtime_message
    else:
        oci = (
            f"OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{command}": {problem}: unknown'
        )
    inner = (
        f"error executing command in container: failed to exec in container: "
        f'failed to start exec "{secrets.token_hex(32)}": {oci}'
    )
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {inner}",
        "reason": "InternalError",
        "details": {"causes": [{"message": inner}]},
        "code": 500,
    }


class _Channels:
    """Frames of one exec WebSocket in the negotiated protocol."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws, self.protocol = ws, protocol
        self.base64 = protocol.startswith("base64")
        self.lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        if self.ws.closed:
            return
        async with self.lock:
            if self.base64:
                await self.ws.send_str(str(channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    def decode(self, msg: Any) -> tuple[int, bytes] | None:
        if msg.type == WSMsgType.TEXT:
            text = msg.data
            if self.base64:
                if not text or not text[0].isdigit():
                    return None
                try:
                    return int(text[0]), base64.b64decode(text[1:])
                except binascii.Error:
                    return None
            raw = text.encode("utf-8")
        elif msg.type == WSMsgType.BINARY:
            raw = msg.data
        else:
            return None
        if not raw:
            return None
        return raw[0], raw[1:]

    async def send_status(self, status: dict[str, Any]) -> None:
        if self.protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
            await self.send(STATUS, json.dumps(status).encode())
        elif status["status"] != "Success":
            await self.send(STATUS, status["message"].encode())


def _negotiate(request: web.Request) -> None:
    """400 when the client offers subprotocols and none is served (as Kubernetes answers)."""
    offered = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    if offered and not set(offered) & set(EXEC_PROTOCOLS):
        raise bad_request(
            f"requested protocol(s) are not supported: {offered}; supports {list(EXEC_PROTOCOLS)}"
        )


async def _exec(request: web.Request, info: RequestInfo) -> web.StreamResponse:
    upgrade = request.headers.get("Upgrade", "").lower()
    if "spdy" in upgrade or request.method == "POST":
        raise bad_request(
            "SPDY exec is not supported by the lab API server; use WebSocket "
            "(kubectl >= 1.30, or KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true)"
        )
    if upgrade != "websocket":
        raise bad_request("Upgrade request required")
    pod = _pod(request, info)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    container = _choose_container(pod, request.query.get("container"))
    command = request.query.getall("command", [])
    if not command:
        raise bad_request("you must specify at least 1 command")
    want = {k: _flag(request, k) for k in ("stdin", "stdout", "stderr", "tty")}
    if not (want["stdin"] or want["stdout"] or want["stderr"]):
        raise bad_request("you must specify at least one of stdin, stdout, stderr")
    _negotiate(request)  # refuse before the upgrade when no offered protocol is served
    argv: list[str] | None = None
    missing = ""
    try:
        argv = list(
            request.app[RUNTIME].exec_command(info.namespace, info.name, container, list(command))
        )
    except PodNotRunning as exc:
        raise bad_request(str(exc)) from None
    except ExecNotFound as exc:
        missing = str(exc)

    ws = web.WebSocketResponse(
        protocols=EXEC_PROTOCOLS, autoping=True, compress=False, max_msg_size=0
    )
    await ws.prepare(request)
    channels = _Channels(ws, ws.ws_protocol or "channel.k8s.io")
    try:
        if argv is None:
            await channels.send_status(
                _start_failure(command[0], "executable file not found in $PATH", missing)
            )
        else:
            await channels.send_status(
                await _run_exec(ws, channels, argv, command, want, request.app[EXEC_PROCESSES])
            )
    finally:
        await ws.close()
    return ws


async def _run_exec(
    ws: web.WebSocketResponse,
    channels: _Channels,
    argv: list[str],
    command: list[str],
    want: dict[str, bool],
    live: set[asyncio.subprocess.Process],
) -> dict[str, Any]:
    """Run the process, pump its streams over the WebSocket; return the channel-3 Status.

    ``live`` holds running exec processes, so that server shutdown can end them.
    """
    pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    if want["tty"]:
        stderr_mode = asyncio.subprocess.STDOUT
    else:
        stderr_mode = pipe if want["stderr"] else devnull
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=pipe if want["stdin"] else devnull,
            stdout=pipe if want["stdout"] or want["tty"] else devnull,
            stderr=stderr_mode,
            start_new_session=True,
        )
    except FileNotFoundError:
        return _start_failure(command[0], "executable file not found in $PATH")
    except PermissionError:
        return _start_failure(command[0], "permission denied")

    async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            await channels.send(channel, chunk)

    async def feed_stdin() -> None:
        async for msg in ws:
            decoded = channels.decode(msg)
            if decoded is None:
                continue
            channel, data = decoded
            if (
                channel == CLOSE
                and channels.protocol == "v5.channel.k8s.io"
                and data[:1] == bytes([STDIN])
            ):
                _close_stdin(proc)
            elif channel == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(data)
                try:
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    _close_stdin(proc)
        # the client went away: nobody reads the output any more
        _kill_session(proc)

    live.add(proc)
    pumps = asyncio.gather(pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR))
    reader = asyncio.create_task(feed_stdin())
    try:
        returncode = await proc.wait()
        # output still buffered in the pipes; a background child may hold them open
        await asyncio.wait({pumps}, timeout=2)
    finally:
        live.discard(proc)
        reader.cancel()
        pumps.cancel()
        _kill_session(proc)
        _close_stdin(proc)
        await asyncio.gather(reader, pumps, proc.wait(), return_exceptions=True)
    return _exit_status(command, returncode)


def _kill_session(proc: asyncio.subprocess.Process) -> None:
    """Kill an exec command that still runs, with the children it started (its own session)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _close_stdin(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()


# ---------------------------------------------------------------- the app


async def _handle(request: web.Request) -> web.StreamResponse:
    try:
        return await _dispatch(request)
    except ApiError as exc:
        return exc.response()
    except ConnectionResetError:
        raise
    except Exception as exc:  # every other failure is a 500 Status, as in Kubernetes
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        return ApiError(
            500,
            "InternalError",
            f"Internal error occurred: {exc}",
            {"causes": [{"message": str(exc)}]},
        ).response()


def _authenticate(request: web.Request) -> User:
    """The user a request acts as: its bearer token's, or the one it may impersonate."""
    auth = request.app[AUTH]
    user = auth.authenticate(request.headers.get("Authorization"))
    if user is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    target = request.headers.get("Impersonate-User")
    groups = request.headers.getall("Impersonate-Group", [])
    if not target:
        if groups:
            raise bad_request(
                "requested impersonation of groups without impersonating a user "
                "(send Impersonate-User too)"
            )
        return user
    for kind, name in [("users", target), *(("groups", g) for g in groups)]:
        attrs = Attributes("impersonate", kind, name=name)
        if not auth.authorize(user, attrs):
            raise ApiError(
                403, "Forbidden", forbidden_message(user, attrs), {"name": name, "kind": kind}
            )
    return auth.user_named(target)


# Media types kube-apiserver offers (v1.36, read against the real tier): a resource's answer,
# a list's (which may also be a watch stream), a log's. Only ``*/*`` is a wildcard it honours.
SERIALIZED = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
STREAMED = ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")


def _media_ranges(accept: str) -> list[str]:
    """The media types of an Accept header, without parameters other than ``stream``."""
    ranges = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0]:
            stream = [f for f in fields[1:] if f.replace(" ", "") == "stream=watch"]
            ranges.append(fields[0].lower() + (";stream=watch" if stream else ""))
    return ranges


def _negotiate_media_type(request: web.Request, info: RequestInfo) -> None:
    """406 NotAcceptable as kube-apiserver answers it: no Accept type it offers (``text/*`` and
    ``application/*`` match nothing). A log is ``text/plain``, but its errors are serialized
    Status objects: an Accept naming only ``text/plain`` passes the first check and fails the
    second, so a client must accept JSON (or ``*/*``) to read logs at all."""
    wanted = _media_ranges(request.headers.get("Accept", ""))
    if not wanted or "*/*" in wanted:
        return
    if info.subresource == "log":
        offered: tuple[str, ...] = ("text/plain", *SERIALIZED)
    elif info.verb in ("list", "watch"):
        offered = (*SERIALIZED, *STREAMED)
    else:
        offered = SERIALIZED
    if not any(w in offered for w in wanted):
        raise ApiError(
            406,
            "NotAcceptable",
            f"406: Not Acceptable\n\nAvailable representations: {', '.join(offered)}",
            {},
        )
    if not any(w.split(";")[0] in SERIALIZED for w in wanted):
        raise ApiError(
            406,
            "NotAcceptable",
            f"only the following media types are accepted: {', '.join(SERIALIZED)}",
        )


async def _dispatch(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path.rstrip("/") in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS)):
        return web.Response(text="ok", content_type="text/plain")
    user = _authenticate(request)
    info = parse_request_info(request.method, path, request.query)
    if info is None:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if path.startswith("/openapi"):
            raise ApiError(404, "NotFound", NOT_FOUND_MESSAGE, {})
        return _discovery(request)
    if (info.group, info.resource) == (
        ACCESS_REVIEW.group,
        ACCESS_REVIEW.plural,
    ) and not info.namespace:
        # every authenticated user may ask what it may do (system:basic-user in Kubernetes)
        if info.verb != "create" or info.name:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        return await _access_review(request, user)
    _authorize(request.app[AUTH], user, info)
    rt = BY_PLURAL.get(info.resource)
    if (
        rt is None
        or rt.group != info.group
        or rt.version != info.version
        or (info.namespace and not rt.namespaced and info.resource != "namespaces")
        or (not info.namespace and rt.namespaced and info.name)
    ):
        raise ApiError(404, "NotFound", NOT_FOUND_MESSAGE, {})
    if info.subresource != "exec" and info.verb in ("get", "list", "watch"):
        _negotiate_media_type(request, info)
    if info.subresource:
        if info.subresource not in rt.subresources:
            raise ApiError(404, "NotFound", NOT_FOUND_MESSAGE, {})
        if info.subresource == "log" and info.verb == "get":
            return await _logs(request, info)
        if info.subresource == "exec" and info.verb in ("get", "create"):
            return await _exec(request, info)
    elif info.verb == "list":
        return _list(request, rt, info)
    elif info.verb == "get":
        return _get(request, rt, info)
    elif info.verb == "create" and not info.name:
        return await _create(request, rt, info)
    elif info.verb == "watch" and not info.name:
        return await _watch(request, rt, info)
    raise ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def _protobuf_fields(data: bytes) -> dict[int, list[Any]]:
    """Top-level fields of a protobuf message: number -> values (int or bytes, as the callers know)."""
    fields: dict[int, list[Any]] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value: int | bytes = varint()
        elif wire == 2:
            size = varint()
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


_RESOURCE_ATTRIBUTE_FIELDS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}


def _access_review_spec_from_protobuf(body: bytes) -> dict[str, dict[str, str]]:
    """``spec`` of a SelfSubjectAccessReview sent as Kubernetes protobuf (what kubectl sends)."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("missing the k8s protobuf envelope")
    raw = _protobuf_fields(body[4:]).get(2, [b""])[0]
    spec_bytes = _protobuf_fields(raw).get(2, [b""])[0]
    spec_fields = _protobuf_fields(spec_bytes)
    spec: dict[str, dict[str, str]] = {}
    if 1 in spec_fields:
        attrs = _protobuf_fields(spec_fields[1][0])
        spec["resourceAttributes"] = {
            name: attrs[number][0].decode()
            for number, name in _RESOURCE_ATTRIBUTE_FIELDS.items()
            if attrs.get(number) and attrs[number][0]
        }
    if 2 in spec_fields:
        attrs = _protobuf_fields(spec_fields[2][0])
        spec["nonResourceAttributes"] = {
            name: attrs[number][0].decode()
            for number, name in ((1, "path"), (2, "verb"))
            if attrs.get(number) and attrs[number][0]
        }
    return spec


async def _access_review(request: web.Request, user: User) -> web.Response:
    """SelfSubjectAccessReview: may the caller do ``spec.resourceAttributes``?"""
    spec: object  # checked below: whatever the client sent
    if request.content_type == "application/vnd.kubernetes.protobuf":
        try:
            spec = _access_review_spec_from_protobuf(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(
                f"cannot decode the protobuf SelfSubjectAccessReview: {exc}"
            ) from None
    else:
        try:
            review = await request.json()
        except ValueError:
            raise bad_request(
                "the request body is not valid JSON; send a SelfSubjectAccessReview"
            ) from None
        spec = review.get("spec") if isinstance(review, dict) else None
    if not isinstance(spec, dict) or not isinstance(
        spec.get("resourceAttributes") or spec.get("nonResourceAttributes"), dict
    ):
        raise ApiError(
            422,
            "Invalid",
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
            'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes '
            "or resourceAttributes must be specified",
        )
    ra = spec.get("resourceAttributes")
    if isinstance(ra, dict):
        attrs = Attributes(
            str(ra.get("verb", "")),
            str(ra.get("resource", "")),
            str(ra.get("group", "")),
            str(ra.get("namespace", "")),
            str(ra.get("name", "")),
            str(ra.get("subresource", "")),
        )
        allowed = request.app[AUTH].authorize(user, attrs)
    else:
        allowed = True  # discovery, version and health paths are open to every authenticated user
    return _json(
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed},
        },
        201,
    )


def _authorize(auth: Auth, user: User, info: RequestInfo) -> None:
    attrs = info.attributes()
    if not auth.authorize(user, attrs):
        details: dict[str, Any] = {"kind": info.resource}
        if info.name:
            details = {
                "name": info.name,
                **({"group": info.group} if info.group else {}),
                "kind": info.resource,
            }
        elif info.group:
            details = {"group": info.group, "kind": info.resource}
        raise ApiError(403, "Forbidden", forbidden_message(user, attrs), details)
    if (info.resource, info.subresource, info.verb) == ("pods", "exec", "get"):
        # kube-apiserver >= 1.35 (AuthorizePodWebsocketUpgradeCreatePermission, on by default;
        # seen on the real tier): a WebSocket exec needs "create" on pods/exec as well as "get",
        # and that refusal's message names nothing after "forbidden: ".
        if not auth.authorize(user, dataclasses.replace(attrs, verb="create")):
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{info.name}" is forbidden: ',
                {"name": info.name, "kind": "pods"},
            )


async def _end_exec_processes(app: web.Application) -> None:
    """On shutdown, kill running exec commands so their sessions end normally and quickly."""
    live = app[EXEC_PROCESSES]
    for proc in list(live):
        _kill_session(proc)


def make_app(
    store: Store, runtime: PodRuntime, auth: Auth, bookmark_seconds: float = 5.0
) -> web.Application:
    """The aiohttp application; ``runtime`` offers ``log_path`` and ``exec_command``."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STORE], app[RUNTIME], app[AUTH] = store, runtime, auth
    app[BOOKMARK_SECONDS] = bookmark_seconds
    app[WATCH_QUEUES] = set()
    app[WATCH_GATE] = asyncio.Event()
    app[WATCH_GATE].set()
    app[EXEC_PROCESSES] = set()
    app.on_shutdown.append(_end_exec_processes)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


# ---------------------------------------------------------------- running it


@dataclass
class RunningServer:
    """A started server; ``url`` is what a kubeconfig's ``server`` field takes."""

    runner: web.AppRunner
    host: str
    port: int
    ca_file: Path | None
    ssl_context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        """``http(s)://host:port``."""
        scheme = "https" if self.ca_file else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and finish open requests."""
        await self.runner.cleanup()


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise LabError(
            f"the lab API server only listens on loopback addresses (127.0.0.0/8, ::1); got {host!r}"
        )


async def start_server(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    tls_dir: str | Path | None = None,
    again: RunningServer | None = None,
) -> RunningServer:
    """Listen on ``host:port`` (0 picks a free port) inside the running loop.

    With ``tls_dir`` the server speaks HTTPS with a CA and certificate written there by
    ``certs.write_certs`` (``ca.crt`` is what clients trust); without it, plain HTTP.
    ``again``: a closed server to start again (its address and certificate; a restart).
    """
    _check_loopback(host)
    context = None
    ca_file = None
    if again is not None:
        host, port, context, ca_file = again.host, again.port, again.ssl_context, again.ca_file
    elif tls_dir is not None:
        paths = await asyncio.to_thread(certs.write_certs, tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(paths.server_cert, paths.server_key)
        ca_file = paths.ca_cert
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise LabError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port"
        ) from None
    bound = runner.addresses[0][1]
    return RunningServer(runner, host, bound, ca_file, context)


class ThreadedServer:
    """The server on its own event loop in a daemon thread, for blocking callers.

    Use as a context manager; ``call(fn, *args)`` runs ``fn`` inside the server's loop
    (the store and runtime belong to that loop) and returns its result.
    """

    def __init__(
        self,
        store: Store,
        runtime: PodRuntime,
        auth: Auth,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_dir: str | Path | None = None,
    ) -> None:
        self.store, self.runtime, self.auth = store, runtime, auth
        self._host, self._port, self._tls_dir = host, port, tls_dir
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="badlab-apiserver", daemon=True
        )
        self.server: RunningServer | None = None

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        app = make_app(self.store, self.runtime, self.auth)
        future = asyncio.run_coroutine_threadsafe(
            start_server(app, self._host, self._port, self._tls_dir), self.loop
        )
        try:
            self.server = future.result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=30)
        self._stop_loop()

    async def _shutdown(self) -> None:
        """Close the server, then end whatever still runs in the loop (exec sessions)."""
        if self.server is not None:
            await self.server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.loop.shutdown_asyncgens()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        assert self.server is not None, "use ThreadedServer as a context manager"
        return self.server.url

    @property
    def port(self) -> int:
        """Bound port."""
        assert self.server is not None, "use ThreadedServer as a context manager"
        return self.server.port

    @property
    def ca_file(self) -> Path | None:
        """CA certificate clients must trust (None for plain HTTP)."""
        assert self.server is not None, "use ThreadedServer as a context manager"
        return self.server.ca_file

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the server's loop thread and return its result."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)


def kubeconfig(
    url: str,
    token: str,
    ca_file: str | Path | None = None,
    namespace: str | None = None,
    name: str = "badlab",
) -> dict[str, Any]:
    """A kubeconfig document (dict, dump it as YAML or JSON) for one token."""
    cluster: dict[str, Any] = {"server": url}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }
