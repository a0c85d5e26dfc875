"""The lab's real tier: the same scenario, runtime and network, with a real Kubernetes API.

``make lab-up TIER=real`` (``badlab up --tier real``) starts the control plane that
``realk8s/build.sh`` built (etcd, kube-apiserver, kube-controller-manager and the kubelet
stand-in; ``realk8s.controlplane``) beside the lab's runtime. The lab's own store stays the
runtime's record of what it runs; ``Mirror`` hands every change of it to the real API server the
way the cluster's own writers would:

- Namespaces (with their ``default`` ServiceAccount, which the ServiceAccount admission plugin
  wants before a Pod), Services (the lab's ClusterIPs, in a service range of the lab's own),
  NetworkPolicies and Ingresses are applied as a user applies manifests.
- The Node ``lab-node`` is registered as a kubelet registers itself: its address, its Ready
  condition and the port of the kubelet stand-in, which the API server dials for exec and logs.
- A Pod is created bound to that Node, then its status is written through the ``status``
  subresource as a kubelet writes it; a terminating pod is deleted with its grace period (the API
  server sets ``deletionTimestamp``) and removed with grace 0 when its containers are gone.
- Events the lab's "kubelet" records are created for the real Pod (its uid).
- EndpointSlices and Endpoints are NOT mirrored: the real controllers make them from the Pods
  and Services. ``converged`` waits until the real EndpointSlices list what the lab serves.

The kubelet stand-in reads ``pods.json`` (rewritten on every Pod change): where each container's
process and CRI log files are, the programs its image lacks, and the environment the lab started
it with (what an exec gets, as a runtime gives the container spec's env).

RBAC is the real one: the least-privilege ServiceAccount, Roles and RoleBindings that
docs/awx.md ships (section 7), applied as written (its ``web`` namespace is the proxies', ``app``
each namespace of the scenario), and a token of that ServiceAccount (TokenRequest) in
``kubeconfig-diagnose``; the drift watch's rules from docs/eda.md for ``kubeconfig-watch``.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from badlab.errors import LabError
from badlab.store import BY_PLURAL, Change, Manifest

if TYPE_CHECKING:
    from badlab.runtime import Runtime
    from realk8s.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[3]
AWX_DOC = ROOT / "docs" / "awx.md"
EDA_DOC = ROOT / "docs" / "eda.md"
SERVICE_ACCOUNT = "badgateway-k8s"  # the name docs/awx.md gives it
WATCH_ACCOUNT = "drift-watch"
TOKEN_SECONDS = 7 * 24 * 3600
# Written by the lab's "users"; EndpointSlices and Endpoints are the controllers' to write.
MIRRORED = ("namespaces", "services", "networkpolicies", "ingresses", "pods", "events")
# What the API server sets or owns in metadata: never sent back to it.
SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
)


class RealTierError(LabError):
    """The real API server refused what the lab wrote; the message names the call."""


class Api:
    """A keep-alive HTTPS connection to the real API server with one bearer token."""

    def __init__(self, server: str, ca_file: Path, token: str, timeout: float = 15.0) -> None:
        url = urllib.parse.urlsplit(server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.token, self.timeout = token, timeout
        self._conn: http.client.HTTPSConnection | None = None

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str = "application/json",
        ok: Iterable[int] = (200, 201),
    ) -> tuple[int, Any]:
        """``(status, decoded body)``; a status not in ``ok`` raises RealTierError naming the call."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # once more on a dropped keep-alive connection
            if self._conn is None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.context, timeout=self.timeout
                )
            try:
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise RealTierError(f"{method} {path}: {exc}") from exc
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode(errors="replace")
        if response.status not in ok:
            message = decoded.get("message") if isinstance(decoded, dict) else decoded
            raise RealTierError(f"{method} {path}: HTTP {response.status}: {message}")
        return response.status, decoded

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def collection_path(resource: str, namespace: str | None) -> str:
    rt = BY_PLURAL[resource]
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced:
        return f"{base}/namespaces/{namespace}/{resource}"
    return f"{base}/{resource}"


def object_path(resource: str, namespace: str | None, name: str) -> str:
    return f"{collection_path(resource, namespace)}/{urllib.parse.quote(name)}"


def for_server(manifest: Manifest) -> Manifest:
    """A copy of a stored object without what the API server sets itself (and without status)."""
    obj = copy.deepcopy(manifest)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in SERVER_META:
        meta.pop(key, None)
    return obj


def doc_yaml_blocks(path: Path, heading: str) -> list[str]:
    """The ```yaml blocks of the section of a Markdown file whose heading starts with ``heading``."""
    text = path.read_text()
    match = re.search(rf"^#+ {re.escape(heading)}.*?$(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    if match is None:
        raise LabError(f"{path}: no section '{heading}' (the real tier applies its RBAC)")
    return re.findall(r"^```yaml\n(.*?)^```", match.group(1), re.M | re.S)


def shipped_rbac(proxy_namespace: str, namespaces: list[str]) -> list[Manifest]:
    """docs/awx.md's ServiceAccount, Roles and RoleBindings, as written, for this scenario: the
    doc's ``web`` is the proxies' namespace, its ``app`` each namespace of the scenario."""
    blocks = doc_yaml_blocks(AWX_DOC, "7. Least privilege")
    if not blocks:
        raise LabError(f"{AWX_DOC}: section 7 has no yaml block")
    documents = [d for d in yaml.safe_load_all(blocks[0]) if d]
    kinds = sorted({d.get("kind") for d in documents})
    if kinds != ["Role", "RoleBinding", "ServiceAccount"]:
        raise LabError(f"{AWX_DOC}: section 7's first yaml block holds {kinds}, not RBAC")
    out: list[Manifest] = []
    for doc in documents:
        targets = [proxy_namespace] if doc["metadata"]["namespace"] == "web" else namespaces
        for ns in dict.fromkeys(targets):
            obj = copy.deepcopy(doc)
            obj["metadata"]["namespace"] = ns
            for subject in obj.get("subjects", []):
                subject["namespace"] = proxy_namespace
            out.append(obj)
    return out


def watch_rbac(proxy_namespace: str, namespaces: list[str]) -> list[Manifest]:
    """The drift watch's account: docs/eda.md's rules, plus the diagnosis' Roles (docs/awx.md),
    which the playbooks its rulebook runs need."""
    blocks = doc_yaml_blocks(EDA_DOC, "Permissions")
    if not blocks:
        raise LabError(f"{EDA_DOC}: section Permissions has no yaml block")
    rules = yaml.safe_load(blocks[0])["rules"]
    out: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": WATCH_ACCOUNT, "namespace": proxy_namespace},
        }
    ]
    subject = [{"kind": "ServiceAccount", "name": WATCH_ACCOUNT, "namespace": proxy_namespace}]
    role_names = [
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for d in shipped_rbac(proxy_namespace, namespaces)
        if d["kind"] == "Role"
    ]
    for ns in dict.fromkeys([proxy_namespace, *namespaces]):
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": WATCH_ACCOUNT, "namespace": ns},
                "rules": rules,
            }
        )
        role_names.append((ns, WATCH_ACCOUNT))
    for ns, role in role_names:
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{WATCH_ACCOUNT}-{role}", "namespace": ns},
                "subjects": subject,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            }
        )
    return out


def rbac_path(obj: Manifest) -> str:
    kind, ns = obj["kind"], obj["metadata"]["namespace"]
    if kind == "ServiceAccount":
        return f"/api/v1/namespaces/{ns}/serviceaccounts"
    plural = {"Role": "roles", "RoleBinding": "rolebindings"}[kind]
    return f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{plural}"


class Mirror:
    """Writes the lab store's changes to the real API server, synchronously, in order."""

    def __init__(
        self, plane: ControlPlane, runtime: Runtime, node_name: str, log: Callable[[str], None]
    ) -> None:
        self.plane, self.runtime, self.node = plane, runtime, node_name
        self.api = Api(plane.server, plane.ca_cert, plane.admin_token)
        self.log = log
        self.uids: dict[str, str] = {}  # the lab's pod uid -> the real one
        self.namespaces: set[str] = set()
        self.errors: list[str] = []
        self.pods_file = plane.pods_file

    # ----------------------------------------------------------------- setup

    def register_node(self) -> None:
        """The Node, as a kubelet registers itself, with the stand-in as its kubelet endpoint."""
        from realk8s.controlplane import node_status

        self.api.call(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": self.node,
                    "labels": {
                        "kubernetes.io/hostname": self.node,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
            },
        )
        # The API server dials the first of its preferred address types it finds (Hostname
        # first): the stand-in on loopback. Pods report the InternalIP as their hostIP.
        addresses = [
            {"type": "InternalIP", "address": self.runtime.host_ip},
            {"type": "Hostname", "address": "localhost"},
        ]
        self.api.call(
            "PATCH",
            f"/api/v1/nodes/{self.node}/status",
            node_status(self.plane.standin_port, addresses),
            content_type="application/merge-patch+json",
        )

    def apply_rbac(self, objects: list[Manifest]) -> None:
        for obj in objects:
            self._namespace(obj["metadata"]["namespace"])
            self.api.call("POST", rbac_path(obj), obj, ok=(201, 409))

    def token(self, account: str, namespace: str) -> str:
        """A token of a ServiceAccount (TokenRequest), as ``kubectl create token`` gets one."""
        _, answer = self.api.call(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_SECONDS},
            },
        )
        token: str = answer["status"]["token"]
        return token

    def server_version(self) -> dict[str, Any]:
        _, answer = self.api.call("GET", "/version")
        return dict(answer)

    # ----------------------------------------------------------------- changes

    def on_change(self, change: Change) -> None:
        """The store's subscriber: one change, written now (the runtime's loop waits for it)."""
        if change.resource not in MIRRORED:
            return
        try:
            getattr(self, f"_{change.resource}")(change)
        except RealTierError as exc:
            self.errors.append(str(exc))
            self.log(f"real tier: {exc}")
        if change.resource == "pods":
            self.write_pods_file()

    def _namespace(self, name: str) -> None:
        if name in self.namespaces:
            return
        self.api.call(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            ok=(201, 409),
        )
        # The serviceaccount controller makes it too, a moment later; the ServiceAccount
        # admission plugin refuses a Pod until it exists.
        self.api.call(
            "POST",
            f"/api/v1/namespaces/{name}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            ok=(201, 409),
        )
        self.namespaces.add(name)

    def _namespaces(self, change: Change) -> None:
        name = change.obj["metadata"]["name"]
        if change.kind == "DELETED":
            self.api.call("DELETE", object_path("namespaces", None, name), ok=(200, 202, 404))
            self.namespaces.discard(name)
        else:
            self._namespace(name)

    def _replace(self, change: Change) -> None:
        """Create, replace (spec and labels onto the server's object) or delete a user's object."""
        meta = change.obj["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        if change.kind == "DELETED":
            self.api.call("DELETE", object_path(change.resource, ns, name), ok=(200, 202, 404))
            return
        self._namespace(ns)
        desired = for_server(change.obj)
        if change.kind == "ADDED":
            self.api.call("POST", collection_path(change.resource, ns), desired)
            return
        _, current = self.api.call("GET", object_path(change.resource, ns, name))
        for key, value in desired.items():
            if key not in ("metadata", "apiVersion", "kind"):
                current[key] = value
        current["metadata"]["labels"] = desired["metadata"].get("labels", {})
        current["metadata"]["annotations"] = desired["metadata"].get("annotations", {})
        self.api.call("PUT", object_path(change.resource, ns, name), current)

    _services = _networkpolicies = _ingresses = _replace

    def _events(self, change: Change) -> None:
        if change.kind != "ADDED":
            return
        event = for_server(change.obj)
        involved = event.get("involvedObject", {})
        if involved.get("uid") in self.uids:
            involved["uid"] = self.uids[involved["uid"]]
        self._namespace(event["metadata"]["namespace"])
        self.api.call("POST", collection_path("events", event["metadata"]["namespace"]), event)

    def _pods(self, change: Change) -> None:
        meta = change.obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        path = object_path("pods", ns, name)
        if change.kind == "DELETED":
            # The kubelet's last word: its containers are gone, the object may go.
            self.api.call("DELETE", path, {"gracePeriodSeconds": 0}, ok=(200, 202, 404))
            self.uids.pop(meta["uid"], None)
            return
        if change.kind == "ADDED":
            self._namespace(ns)
            _, created = self.api.call("POST", collection_path("pods", ns), for_server(change.obj))
            self.uids[meta["uid"]] = created["metadata"]["uid"]
        old_meta = (change.old or {}).get("metadata", {})
        if meta.get("labels") != old_meta.get("labels") and change.kind == "MODIFIED":
            self.api.call(
                "PATCH",
                path,
                {"metadata": {"labels": meta.get("labels") or None}},
                content_type="application/merge-patch+json",
            )
        if change.kind == "ADDED" or change.obj.get("status") != (change.old or {}).get("status"):
            self.api.call(
                "PATCH",
                f"{path}/status",
                {"status": change.obj.get("status", {})},
                content_type="application/merge-patch+json",
            )
        if meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"):
            # A user's delete: the API server marks the pod terminating (deletionTimestamp =
            # now + grace), the endpoint controller shows it terminating, until the DELETED above.
            grace = int(meta.get("deletionGracePeriodSeconds") or 30)
            self.api.call("DELETE", path, {"gracePeriodSeconds": grace}, ok=(200, 202))

    def write_pods_file(self) -> None:
        """The stand-in's view of the pods: processes, log files, what the images lack."""
        # The lab starts every container with its own environment (runtime._start_container):
        # that is each container's configured env, which an exec gets.
        env = [f"{name}={value}" for name, value in os.environ.items()]
        pods: dict[str, Any] = {}
        for key, pod in self.runtime.pods.items():
            containers: dict[str, Any] = {}
            for cname, c in pod.containers.items():
                proc = c.process
                current = c.instances[-1] if c.instances else None
                previous = c.instances[-2] if len(c.instances) > 1 else None
                containers[cname] = {
                    "pid": proc.pid if proc is not None and c.running else 0,
                    "id": current.container_id if current is not None else "",
                    "log": str(current.log_path) if current is not None else "",
                    "previousLog": str(previous.log_path) if previous is not None else "",
                    "missing": list(c.spec.missing),
                    "env": env,
                }
            pods[key] = {"uid": self.uids.get(pod.uid, pod.uid), "containers": containers}
        tmp = self.pods_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pods": pods}) + "\n")
        os.replace(tmp, self.pods_file)

    # ----------------------------------------------------------------- convergence

    def served_addresses(self, namespace: str, service: str) -> list[str]:
        """Ready addresses of a Service in the real EndpointSlices, sorted."""
        _, answer = self.api.call(
            "GET",
            f"{collection_path('endpointslices', namespace)}?labelSelector="
            + urllib.parse.quote(f"kubernetes.io/service-name={service}"),
        )
        return sorted(
            address
            for item in answer.get("items", [])
            for endpoint in item.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready")
            for address in endpoint.get("addresses", [])
        )

    def converged(self, timeout: float = 30.0) -> float:
        """Wait until every Service with a selector has, in the real EndpointSlices, the ready
        addresses the lab serves; returns the seconds waited, or raises RealTierError."""
        started = time.monotonic()
        while True:
            behind = []
            for svc in self.runtime.services.values():
                if svc.selector is None:
                    continue
                want = sorted({p.ip for p, _ in self.runtime.endpoints_of(svc) if p.ready})
                have = sorted(set(self.served_addresses(svc.namespace, svc.name)))
                if want != have:
                    behind.append(f"{svc.namespace}/{svc.name}: lab {want}, real {have}")
            if self.errors:
                raise RealTierError("; ".join(self.errors))
            if not behind:
                return round(time.monotonic() - started, 3)
            if time.monotonic() - started > timeout:
                raise RealTierError(
                    "the real EndpointSlices did not catch up in "
                    f"{timeout:.0f} s: {'; '.join(behind)}"
                )
            time.sleep(0.05)


def preflight_real() -> None:
    """The real tier's binaries are built for the pinned version, or a LabError says how."""
    from realk8s.controlplane import ControlPlaneError, find_binaries

    try:
        find_binaries()
    except ControlPlaneError as exc:
        raise LabError(f"the real tier cannot start: {exc}") from None


class RealTier:
    """The control plane of one lab, its mirror and its accounts (see the module docstring)."""

    def __init__(self, lab_dir: Path, slot: int, runtime: Runtime) -> None:
        from badlab.runtime import NODE_NAME
        from realk8s.controlplane import ControlPlane, ControlPlaneError, find_binaries

        directory = lab_dir / "realk8s"
        directory.mkdir()
        self.plane = ControlPlane(
            directory=directory,
            bin_dir=find_binaries(),
            # The lab's ClusterIPs (runtime._allocate_cluster_ip), so the API server takes them.
            service_cidr=f"198.19.{slot}.0/24",
        )
        try:
            self.plane.start()
            self.plane.start_kubelet_standin()
        except ControlPlaneError as exc:
            self.plane.stop()
            raise LabError(f"the real control plane did not start: {exc}") from None
        self.mirror = Mirror(self.plane, runtime, NODE_NAME, lambda line: print(line, flush=True))
        self.mirror.register_node()
        self.mirror.write_pods_file()
        runtime.store.subscribe(self.mirror.on_change)
        self.converged_seconds = 0.0
        self.version: dict[str, Any] = {}

    def finish(self, scenario: Any) -> tuple[str, str, str]:
        """After the scenario's start: wait for the controllers, apply the shipped RBAC; the
        tokens of the admin, the diagnosis' and the drift watch's accounts."""
        self.converged_seconds = self.mirror.converged()
        proxy_ns = scenario.proxy["namespace"]
        namespaces = list(scenario.namespaces)
        self.mirror.apply_rbac(shipped_rbac(proxy_ns, namespaces))
        self.mirror.apply_rbac(watch_rbac(proxy_ns, namespaces))
        self.version = self.mirror.server_version()
        return (
            self.plane.admin_token,
            self.mirror.token(SERVICE_ACCOUNT, proxy_ns),
            self.mirror.token(WATCH_ACCOUNT, proxy_ns),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "server_version": self.version.get("gitVersion", ""),
            "control_plane": {
                "directory": str(self.plane.directory),
                "bin_dir": str(self.plane.bin_dir),
                "start_seconds": dict(self.plane.timings),
                "kubelet_standin_port": self.plane.standin_port,
                "converged_seconds": self.converged_seconds,
            },
            "pods": {
                key: {"ip": pod.ip, "uid": self.mirror.uids.get(pod.uid, pod.uid)}
                for key, pod in self.mirror.runtime.pods.items()
            },
        }

    def stop(self) -> None:
        self.mirror.api.close()
        self.plane.stop()
