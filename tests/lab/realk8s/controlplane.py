"""A real control plane for the lab: etcd, kube-apiserver and kube-controller-manager.

Groundwork of issue 11. The binaries are the ones ``build.sh`` makes from the Go module proxy
(``find_binaries``); ``running()`` starts the three on free loopback ports with a fresh CA, a
serving certificate and bearer tokens in a temporary folder, and always stops them and removes
that folder. Every child also gets SIGKILL from the kernel if the Python process that started it
dies (PR_SET_PDEATHSIG), so a killed test leaves no control plane running.

Identities (``--token-auth-file``): ``admin`` in ``system:masters`` for the tests, and
``system:kube-controller-manager``, bound by the API server's bootstrap RBAC, for the
controller manager, which runs each controller under its own ServiceAccount
(``--use-service-account-credentials``), as kubeadm clusters do.

``running(standin=True)`` also starts the kubelet stand-in (``cmd/kubelet-standin``) on a free
loopback port (``standin_port``, for a Node's ``status.daemonEndpoints``), serving with the lab
CA's certificate, which kube-apiserver verifies (``--kubelet-certificate-authority``); the test or
lab writes its ``pods_file``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from badlab.certs import write_certs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
VERSION = (HERE / "VERSION").read_text().strip()
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubelet-standin")
# Controllers the lab needs: EndpointSlices (and the legacy Endpoints) from Pods, the namespace
# controller so that a deleted namespace really goes, and the garbage collector, which deletes a
# deleted Service's EndpointSlices (their ownerReferences; the EndpointSlice controller leaves
# slices another uid owns alone). Left out on purpose: the node-lifecycle controller (no kubelet
# heartbeats: it would taint and evict) and the pod GC.
CONTROLLERS = (
    "endpointslice-controller",
    "endpoints-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "garbage-collector-controller",
)
START_TIMEOUT = 60.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be found, started or reached."""


def find_binaries() -> Path:
    """The folder with the binaries built for VERSION, or ControlPlaneError saying how to build."""
    proc = subprocess.run(
        ["bash", str(HERE / "build.sh"), "--bin-dir"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ControlPlaneError(proc.stderr.strip() or "build.sh --bin-dir failed")
    bin_dir = Path(proc.stdout.strip())
    missing = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{bin_dir} lacks {', '.join(missing)}: run 'make realk8s-build'")
    return bin_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    # prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills the child when its parent dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def _kubeconfig(path: Path, server: str, ca: Path, user: str, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "realk8s", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "realk8s", "context": {"cluster": "realk8s", "user": user}}],
        "current-context": "realk8s",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    path.chmod(0o600)


@dataclass
class ControlPlane:
    """A running control plane; ``server`` is its https URL on 127.0.0.1."""

    directory: Path
    bin_dir: Path
    server: str = ""
    ca_cert: Path = Path()
    admin_token: str = ""
    admin_kubeconfig: Path = Path()
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pods_file: Path = Path()
    users: tuple[str, ...] = ()  # more token users, each with only what RBAC gives it
    standin_port: int = 0
    # ClusterIPs the API server allocates and accepts; the lab's real tier gives its own /24
    service_cidr: str = "198.18.255.0/24"
    # seconds from each start to ready (etcd /health, kube-apiserver /readyz), and to stop all
    timings: dict[str, float] = field(default_factory=dict)

    def kubeconfig(self, user: str) -> Path:
        """The kubeconfig of one of ``users`` (no group, no rights until RBAC grants some)."""
        return self.directory / f"kubeconfig-user-{user}"

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = self.log(name).read_text(errors="replace")
        except OSError:
            return f"({name}: no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with self.log(name).open("wb") as out:
            proc = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                preexec_fn=die_with_parent,  # no threads start processes here
                start_new_session=True,
            )
        self.processes[name] = proc
        return proc

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        started = time.monotonic()
        proc = self.processes[name]
        while True:
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {proc.returncode} before it was ready:\n{self.log_tail(name)}"
                )
            try:
                is_ready = ready()
            except OSError:  # not listening yet (URLError is an OSError)
                is_ready = False
            if is_ready:
                self.timings[name] = round(time.monotonic() - started, 2)
                return
            if time.monotonic() - started > START_TIMEOUT:
                raise ControlPlaneError(
                    f"{name} not ready after {START_TIMEOUT:.0f} s:\n{self.log_tail(name)}"
                )
            time.sleep(0.2)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` from the API server as admin (TLS verified against the lab CA)."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def start(self, controllers: tuple[str, ...] = CONTROLLERS) -> None:
        d = self.directory
        paths = write_certs(d / "pki")
        self.ca_cert = paths.ca_cert
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (d / "pki" / "sa.key").write_bytes(
            sa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (d / "pki" / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.admin_token = secrets.token_hex(16)
        kcm_token = secrets.token_hex(16)
        tokens = d / "pki" / "tokens.csv"
        user_tokens = {user: secrets.token_hex(16) for user in self.users}
        tokens.write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
            f"{kcm_token},system:kube-controller-manager,kcm-uid\n"
            + "".join(f"{token},{user},{user}-uid\n" for user, token in user_tokens.items())
        )
        tokens.chmod(0o600)

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._start(
            "etcd",
            [
                "--name=lab",
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=lab={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", lambda: _http_ok(f"{etcd_url}/health"))

        self.server = f"https://127.0.0.1:{api_port}"
        self._start(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={paths.server_cert}",
                f"--tls-private-key-file={paths.server_key}",
                f"--client-ca-file={paths.ca_cert}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={d / 'pki' / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'pki' / 'sa.key'}",
                # Non-loopback and never routed anywhere: ClusterIPs are names here, no traffic.
                f"--service-cluster-ip-range={self.service_cidr}",
                # The kubernetes Service's endpoint would be the advertise address 127.0.0.1,
                # which Endpoints validation rejects (logged every 10 s otherwise): no reconciler.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                # The kubelet stand-in serves with the lab CA's certificate: verified.
                f"--kubelet-certificate-authority={paths.ca_cert}",
            ],
        )
        self._wait("kube-apiserver", lambda: self.get("/readyz")[0] == 200)

        self.admin_kubeconfig = d / "kubeconfig"
        _kubeconfig(self.admin_kubeconfig, self.server, paths.ca_cert, "admin", self.admin_token)
        for user, token in user_tokens.items():
            _kubeconfig(self.kubeconfig(user), self.server, paths.ca_cert, user, token)
        kcm_kubeconfig = d / "kubeconfig-kcm"
        _kubeconfig(
            kcm_kubeconfig, self.server, paths.ca_cert, "system:kube-controller-manager", kcm_token
        )
        self._start(
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm_kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=true",
                f"--root-ca-file={paths.ca_cert}",
                f"--controllers={','.join(controllers)}",
            ],
        )

    def start_kubelet_standin(self) -> None:
        """Start the kubelet stand-in; the lab writes ``pods_file``, a Node names ``standin_port``."""
        paths = self.directory / "pki"
        self.pods_file = self.directory / "pods.json"
        self.pods_file.write_text('{"pods": {}}\n')
        port_file = self.directory / "kubelet-standin.port"
        self._start(
            "kubelet-standin",
            [
                "--listen=127.0.0.1:0",
                f"--port-file={port_file}",
                f"--tls-cert-file={paths / 'server.crt'}",
                f"--tls-private-key-file={paths / 'server.key'}",
                f"--pods={self.pods_file}",
            ],
        )
        self._wait("kubelet-standin", port_file.exists)
        self.standin_port = int(port_file.read_text())

    def stop(self) -> None:
        """Stop the processes newest first, each before the next (kube-apiserver shuts down
        cleanly only while etcd still answers): SIGTERM, then SIGKILL after 10 s."""
        started = time.monotonic()
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.timings["stop"] = round(time.monotonic() - started, 2)


def node_status(kubelet_port: int, addresses: list[dict[str, str]]) -> dict[str, Any]:
    """A Node's status as a kubelet posts it: Ready, its addresses, and where the API server
    reaches "the kubelet" for exec and logs (the stand-in's port). A merge patch's body."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    capacity = {"cpu": "2", "memory": "8Gi", "pods": "250"}
    return {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "capacity": capacity,
            "allocatable": capacity,
        }
    }


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def running(
    bin_dir: Path | None = None, standin: bool = False, users: tuple[str, ...] = ()
) -> Iterator[ControlPlane]:
    """Start a control plane (and, with ``standin``, the kubelet stand-in) in a new temporary
    folder; stop it and remove the folder at the end, also on failure."""
    directory = Path(tempfile.mkdtemp(prefix="badgateway-realk8s-"))
    plane = ControlPlane(directory=directory, bin_dir=bin_dir or find_binaries(), users=users)
    try:
        plane.start()
        if standin:
            plane.start_kubelet_standin()
        yield plane
    finally:
        try:
            plane.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
