"""Smoke run of the real control plane tier (issue 11, groundwork): ``make realk8s-smoke``.

Not collected by ``make test`` (the file name matches no test pattern; pytest runs it when named):
it needs the binaries of ``make realk8s-build``, whose first build costs many CPU-minutes. When
they are missing it fails and says how to build them; it never skips.

What it proves against the real kube-apiserver and kube-controller-manager:
- ``kubectl version -o json`` reports the server version pinned in VERSION;
- a Node, a Service with a selector and a Pod bound to the Node whose status is written as a
  kubelet writes it (Ready, a non-loopback pod IP in 198.18.0.0/15) give an EndpointSlice made by
  the real EndpointSlice controller, with that address, ready and serving;
- a Pod bound to a Node that does not exist is left out of the slice (the controller says why);
- a 127.x pod IP: the Pod status takes it, but no EndpointSlice can carry it (the API server's
  validation refuses it, for the controller as for anyone): the Service keeps an empty slice;
- ``kubectl logs`` (tail, limit, since, previous) and ``kubectl exec`` (output, exit code, a
  missing binary) through kube-apiserver to the kubelet stand-in, which the API server dials
  over SPDY (it translates kubectl's WebSocket);
- a WebSocket exec needs get and create on pods/exec; kubectl's SPDY fallback needs create only.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from realk8s.controlplane import VERSION, ControlPlane, die_with_parent, node_status, running

NS = "smoke"
NODE = "lab-node"
POD_IP = "198.18.250.10"
GHOST_IP = "198.18.250.11"
LOOP_IP = "127.0.0.5"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
T = TypeVar("T")
# Users whose only rights on pods/exec are these verbs (and get on pods).
EXEC_VERBS = {"exec-get": ["get"], "exec-create": ["create"], "exec-both": ["get", "create"]}


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something other than None; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    failed_before = request.session.testsfailed
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def show(text: str) -> None:  # past pytest's capture: the figures and, on failure, the logs
        with capture.global_and_fixture_disabled():
            print(text)

    with running(standin=True, users=tuple(EXEC_VERBS)) as cp:
        yield cp
        if request.session.testsfailed > failed_before:
            for name in cp.processes:  # the folder goes with the control plane: show the logs now
                show(f"\n== {name} log (last lines)\n{cp.log_tail(name)}")
    show(f"\nreal control plane, seconds: {cp.timings}")


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(plane.admin_kubeconfig))


def kubectl(
    plane: ControlPlane, *args: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl not found on PATH (make system-deps installs it)")
    kubeconfig = plane.kubeconfig(user) if user else plane.admin_kubeconfig
    return subprocess.run(
        [exe, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_kubectl_reports_the_real_server_version(plane: ControlPlane) -> None:
    proc = kubectl(plane, "version", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    server = json.loads(proc.stdout)["serverVersion"]
    assert server["gitVersion"] == VERSION
    assert server["minor"] == VERSION.split(".")[1]
    # Built here by build.sh, not a binary from elsewhere: the Go that compiled it is this one.
    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    assert server["goVersion"] == go.stdout.strip()


def _node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
    }


def _node_status(kubelet_port: int) -> dict[str, Any]:
    # The API server dials the Hostname address for exec and logs: the stand-in on loopback.
    return node_status(kubelet_port, [{"type": "Hostname", "address": "localhost"}])


def _pod(name: str, app: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "image": "lab/backend", "ports": [{"containerPort": 8080}]}
            ],
        },
    }


def _running_status(ip: str) -> dict[str, Any]:
    """A Running, Ready pod's status as the kubelet writes it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now}
        for kind in (
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodScheduled",
        )
    ]
    return {
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "lab/backend",
                    "imageID": "lab/backend@sha256:" + "0" * 64,
                    "containerID": "containerd://" + "1" * 64,
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        }
    }


def _service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def _create_pod(core: client.CoreV1Api, name: str, app: str, node: str, ip: str) -> None:
    # The ServiceAccount admission plugin refuses a Pod until the serviceaccount controller has
    # made the namespace's "default" ServiceAccount: retry on that, as a kubelet-less lab must.
    def create() -> bool | None:
        try:
            core.create_namespaced_pod(NS, _pod(name, app, node))
            return True
        except ApiException as exc:
            if exc.status == 403 and "serviceaccount" in str(exc.body).lower():
                return None
            raise

    eventually(f"pod {name} created", create)
    core.patch_namespaced_pod_status(name, NS, _running_status(ip))


def _slices(discovery: client.DiscoveryV1Api, service: str) -> list[Any]:
    items: list[Any] = discovery.list_namespaced_endpoint_slice(
        NS, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    return items


def _logged(plane: ControlPlane, *words: str) -> bool | None:
    """True when one line of the controller manager's log has every word, else None."""
    for line in plane.log("kube-controller-manager").read_text(errors="replace").splitlines():
        if all(word in line for word in words):
            return True
    return None


@pytest.fixture(scope="module")
def objects(plane: ControlPlane, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    core.create_node(_node())
    core.patch_node_status(NODE, _node_status(plane.standin_port))
    core.create_namespaced_service(NS, _service("web", "web"))
    core.create_namespaced_service(NS, _service("loop", "loop"))
    _create_pod(core, "web-1", "web", NODE, POD_IP)
    _create_pod(core, "web-ghost", "web", "no-such-node", GHOST_IP)
    _create_pod(core, "loop-1", "loop", NODE, LOOP_IP)


def test_the_endpointslice_controller_publishes_a_ready_pod(
    plane: ControlPlane, api: client.ApiClient, objects: None
) -> None:
    discovery = client.DiscoveryV1Api(api)

    def published() -> Any:
        for item in _slices(discovery, "web"):
            for endpoint in item.endpoints or []:
                if POD_IP in endpoint.addresses:
                    return item
        return None

    item = eventually(f"an EndpointSlice of Service web with {POD_IP}", published)
    assert item.metadata.labels[MANAGED_BY] == "endpointslice-controller.k8s.io"
    assert item.address_type == "IPv4"
    assert [(p.name, p.port, p.protocol) for p in item.ports] == [("http", 8080, "TCP")]
    (endpoint,) = [e for e in item.endpoints if POD_IP in e.addresses]
    assert endpoint.node_name == NODE
    assert endpoint.target_ref.kind == "Pod" and endpoint.target_ref.name == "web-1"
    assert (
        endpoint.conditions.ready,
        endpoint.conditions.serving,
        endpoint.conditions.terminating,
    ) == (
        True,
        True,
        False,
    )


def test_a_pod_on_a_missing_node_is_left_out(
    plane: ControlPlane, api: client.ApiClient, objects: None
) -> None:
    discovery = client.DiscoveryV1Api(api)
    # Positive evidence that the controller saw the pod and skipped it, then the slice itself.
    eventually(
        "the controller's log line about web-ghost's missing Node",
        lambda: _logged(plane, "Node not found", "web-ghost"),
    )
    addresses = {
        a for s in _slices(discovery, "web") for e in s.endpoints or [] for a in e.addresses
    }
    assert POD_IP in addresses
    assert GHOST_IP not in addresses


def test_a_loopback_pod_ip_never_reaches_an_endpointslice(
    plane: ControlPlane, api: client.ApiClient, objects: None
) -> None:
    core = client.CoreV1Api(api)
    discovery = client.DiscoveryV1Api(api)
    # The Pod status takes a 127.x pod IP (pod IP validation only asks for a valid IP) ...
    assert core.read_namespaced_pod_status("loop-1", NS).status.pod_ip == LOOP_IP
    # ... the controller tries to publish it and the API server refuses the slice.
    eventually(
        "the controller's log of the refused loopback address",
        lambda: _logged(plane, "may not be in the loopback range", "loop"),
    )
    # What is left is the empty placeholder slice the controller made when the Service had no
    # pods: to a reader, a Service whose only pod has a loopback IP has no endpoints at all.
    slices = _slices(discovery, "loop")
    assert slices, "no EndpointSlice at all for Service loop"
    assert [s.endpoints for s in slices] == [None] * len(slices)
    assert core.read_namespaced_endpoints("loop", NS).subsets is None
    # The same refusal for anyone who writes such a slice.
    with pytest.raises(ApiException) as refused:
        discovery.create_namespaced_endpoint_slice(
            NS,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "by-hand", "labels": {"kubernetes.io/service-name": "loop"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [LOOP_IP]}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            },
        )
    assert refused.value.status == 422
    assert "may not be in the loopback range" in str(refused.value.body)


# Three CRI log lines (containerd's format), one second apart.
CRI_LOG = (
    "2026-11-30T10:00:01.000000000Z stdout F first line\n"
    "2026-11-30T10:00:02.000000000Z stderr F second line\n"
    "2026-11-30T10:00:03.000000000Z stdout F third line\n"
)


@pytest.fixture(scope="module")
def container(plane: ControlPlane, api: client.ApiClient, objects: None) -> Iterator[int]:
    """web-1's "container": a process of ours (host namespaces) and a CRI log file, as the
    lab would register them in the stand-in's pods file."""
    proc = subprocess.Popen(["sleep", "600"], preexec_fn=die_with_parent)
    try:
        log = plane.directory / "logs" / "web-1" / "app" / "0.log"
        log.parent.mkdir(parents=True)
        log.write_text(CRI_LOG)
        uid = client.CoreV1Api(api).read_namespaced_pod("web-1", NS).metadata.uid
        pods = {
            "pods": {
                f"{NS}/web-1": {
                    "uid": uid,
                    "containers": {"app": {"pid": proc.pid, "id": "c1", "log": str(log)}},
                }
            }
        }
        plane.pods_file.write_text(json.dumps(pods))
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_kubectl_logs_through_the_real_api_server(plane: ControlPlane, container: int) -> None:
    def logs(*args: str) -> subprocess.CompletedProcess[str]:
        return kubectl(plane, "logs", "-n", NS, "web-1", *args)

    cases = {
        (): "first line\nsecond line\nthird line\n",
        ("--tail=1",): "third line\n",
        ("--limit-bytes=8",): "first li",
        ("--since-time=2026-11-30T10:00:02Z",): "second line\nthird line\n",
    }
    for args, want in cases.items():
        proc = logs(*args)
        assert (proc.returncode, proc.stdout) == (0, want), (args, proc.stderr)
    proc = logs("--previous")
    assert proc.returncode != 0
    assert 'previous terminated container "app" in pod "web-1" not found' in proc.stderr


def test_kubectl_exec_through_the_real_api_server(plane: ControlPlane, container: int) -> None:
    # kubectl speaks WebSocket to the API server, which speaks SPDY to the stand-in.
    proc = kubectl(
        plane, "exec", "-n", NS, "web-1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (proc.returncode, proc.stdout) == (3, "out\n"), proc.stderr
    assert "err\n" in proc.stderr
    proc = kubectl(plane, "exec", "-n", NS, "web-1", "--", "no-such-binary-here")
    assert proc.returncode != 0
    assert 'exec: "no-such-binary-here": executable file not found in $PATH' in proc.stderr, (
        proc.stderr
    )
    print(f"missing binary, kubectl exit {proc.returncode}: {proc.stderr.strip()}")
    # The hop from the API server to the "kubelet" was SPDY (the API server translated).
    assert "SPDY/3.1" in plane.log("kubelet-standin").read_text(), plane.log_tail("kubelet-standin")


def _websocket_exec_status(plane: ControlPlane, user: str) -> tuple[int, str]:
    """The API server's answer to a WebSocket exec handshake (a GET) as ``user``: 101 or an error."""
    token = yaml.safe_load(plane.kubeconfig(user).read_text())["users"][0]["user"]["token"]
    host, port = plane.server.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(plane.ca_cert))
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        conn.request(
            "GET",
            f"/api/v1/namespaces/{NS}/pods/web-1/exec?command=true&container=app&stdout=true",
            headers={
                "Authorization": f"Bearer {token}",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
            },
        )
        response = conn.getresponse()
        body = "" if response.status == 101 else response.read().decode(errors="replace")
        return response.status, body
    finally:
        conn.close()


def test_a_websocket_exec_needs_both_get_and_create(
    plane: ControlPlane, api: client.ApiClient, container: int
) -> None:
    """Since 1.35 (AuthorizePodWebsocketUpgradeCreatePermission) a WebSocket exec, a GET, is
    authorized as get AND create on pods/exec. kubectl falls back to SPDY (a POST: create alone)
    when the WebSocket upgrade is refused; a WebSocket-only client (this collection) does not."""
    rbac = client.RbacAuthorizationV1Api(api)
    for user, verbs in EXEC_VERBS.items():
        rules = [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": verbs},
        ]
        rbac.create_namespaced_role(NS, {"metadata": {"name": user}, "rules": rules})
        binding = {
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
        rbac.create_namespaced_role_binding(NS, binding)
    # RBAC's informer sees new objects within moments, in order: once exec-both (bound last)
    # is allowed, the other two are judged on one try each.
    eventually(
        "a WebSocket exec as exec-both (get and create on pods/exec)",
        lambda: True if _websocket_exec_status(plane, "exec-both")[0] == 101 else None,
        timeout=10,
    )
    # Missing create: a 403 whose message names no reason at all (v1.36.3's words, verbatim).
    status, body = _websocket_exec_status(plane, "exec-get")
    assert (status, json.loads(body)["message"]) == (403, 'pods "web-1" is forbidden: '), body
    status, body = _websocket_exec_status(plane, "exec-create")
    assert (status, json.loads(body)["message"]) == (
        403,
        'pods "web-1" is forbidden: User "exec-create" cannot get resource "pods/exec"'
        ' in API group "" in the namespace "smoke"',
    ), body

    outcome = {}
    for user in EXEC_VERBS:
        proc = kubectl(plane, "exec", "-n", NS, "web-1", "--", "true", user=user)
        outcome[user] = (proc.returncode, proc.stderr.strip())
    assert outcome["exec-both"] == (0, ""), outcome
    assert outcome["exec-create"] == (0, ""), outcome  # through kubectl's SPDY fallback
    assert outcome["exec-get"][0] != 0, outcome
    assert 'cannot create resource "pods/exec"' in outcome["exec-get"][1], outcome


def test_nothing_outlives_the_control_plane() -> None:
    """Nothing outlives the control plane: its processes end and its folder goes, also on failure."""
    with pytest.raises(RuntimeError, match="boom"):
        with running(standin=True) as cp:
            pids = [p.pid for p in cp.processes.values()]
            folder = cp.directory
            raise RuntimeError("boom")
    assert not folder.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived the control plane"
