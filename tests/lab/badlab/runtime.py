"""The lab's runtime: pods as real processes in their own network namespaces.

* Every container is a process started in its own session (so its process group can be
  killed as a whole), with ``PR_SET_PDEATHSIG`` so it dies with the lab daemon, in its pod's
  network namespace (``network.py``: a veth on the lab's bridge, a non-loopback pod IP) and a
  private mount namespace where the pod's own ``/etc/hosts`` and ``/etc/resolv.conf`` are bind-mounted
  (for nginx also ``/etc/nginx``, ``/run``, ``/var/log/nginx`` and ``/var/lib/nginx``: Debian's
  nginx keeps its default paths, so a plain ``nginx -s reload`` exec'd into the pod acts on
  that pod's nginx). stdout/stderr are read through pipes and written as CRI log records.
* Pod IPs are ``198.18.<slot>.x``, ClusterIPs ``198.19.<slot>.x``, implemented by nftables in
  the lab's network namespace as kube-proxy's nftables mode does (``network.py``), as are the
  NetworkPolicies.
* Cluster DNS is each pod's ``/etc/hosts``, rewritten in place (a bind mount keeps the inode
  it was given) whenever pods or endpoints change, plus a small DNS server on
  ``198.19.<slot>.10:53`` (``kube-dns.kube-system``, inside the lab network) for nginx's
  ``resolver``, answering from the same records and NXDOMAIN for everything else: nothing is
  forwarded, nothing leaves the machine.
* The store's Pods, Services, EndpointSlices, Endpoints and Events follow what the processes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from badlab import network
from badlab.errors import ExecNotFound, LabError, PodNotRunning
from badlab.network import LabNetwork, NetPod, PodLink, ServiceRule
from badlab.render import render_servers
from badlab.scenario import (
    PROXY_KINDS,
    AppBehaviour,
    ContainerSpec,
    PodSpec,
    Scenario,
    ServiceSpec,
    Step,
)
from badlab.store import Store

NODE_NAME = "lab-node"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NGINX_BINDS = ("/etc/nginx", "/run", "/var/log/nginx", "/var/lib/nginx")
# haproxy as Debian's package lays it out: its config in /etc/haproxy, its sockets in /run.
# It runs in master-worker mode in the foreground, its master CLI on HAPROXY_MASTER_SOCKET.
HAPROXY_BINDS = ("/etc/haproxy", "/run")
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_MASTER_SOCKET = "/run/haproxy-master.sock"
POD_FILE_BINDS = ("/etc/hosts", "/etc/resolv.conf")
SLOT_RANGE = range(20, 250)
BACKEND = Path(__file__).with_name("backend.py")

_PR_SET_PDEATHSIG = 1
_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

# glibc's strerror() texts that musl words differently (musl: src/errno/__strerror.h). An nginx
# container with ``libc: musl`` has them rewritten in its stderr, as an Alpine-built nginx
# (ingress-nginx, nginx:alpine) would print them; Debian's nginx is built against glibc.
MUSL_STRERROR = {
    "(110: Connection timed out)": "(110: Operation timed out)",
    "(113: No route to host)": "(113: Host is unreachable)",
    "(101: Network is unreachable)": "(101: Network unreachable)",
    "(103: Software caused connection abort)": "(103: Connection aborted)",
    "(99: Cannot assign requested address)": "(99: Address not available)",
}
MUSL_ERRNO_TEXT = re.compile("|".join(re.escape(k) for k in MUSL_STRERROR))

NGINX_CONF = """\
# /etc/nginx/nginx.conf of lab pod {namespace}/{pod} (as in the official nginx image)
worker_processes  1;

error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;

events {{
    worker_connections  256;
}}

http {{
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}}
"""


def now() -> datetime.datetime:
    """The current UTC time."""
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(moment: datetime.datetime) -> str:
    """Kubernetes' timestamp format (seconds, ``Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339nano() -> str:
    """The current time as CRI log records write it (nanoseconds, ``Z``)."""
    ns = time.time_ns()
    base = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc)
    return base.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 1_000_000_000:09d}Z"


# ----------------------------------------------------------------------------- slots


def slot_lock_dir() -> Path:
    """Where slot locks live (one file per slot, held with flock by a running lab)."""
    return Path(os.environ.get("BADLAB_SLOT_DIR", "/tmp/badlab-slots"))


def acquire_slot() -> tuple[int, int]:
    """Take the first free slot; returns (slot, fd holding its lock). The lock dies with the fd."""
    lock_dir = slot_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in SLOT_RANGE:
        fd = os.open(lock_dir / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise LabError(
        f"all {len(SLOT_RANGE)} lab slots are in use (locks in {lock_dir}); stop a lab first"
    )


# ----------------------------------------------------------------------------- processes


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _pod_preexec(binds: list[tuple[str, str]], netns: str | None = None) -> Callable[[], None]:
    """A preexec_fn: die with the daemon, enter the pod's network namespace and a private mount
    namespace, bind the pod's files."""
    libc = _libc()

    def enter() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if netns is not None:
            network.enter_netns(netns)
        if libc.unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        for source, target in binds:
            if libc.mount(source.encode(), target.encode(), None, _MS_BIND, None) != 0:
                raise OSError(ctypes.get_errno(), f"mount --bind {source} {target}")

    return enter


@dataclass
class Instance:
    """One run of a container (a restart makes a new instance)."""

    restart: int
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    container_id: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    expected_exit: bool = False


@dataclass
class Container:
    """A container of a running pod and its instances."""

    spec: ContainerSpec
    app: AppBehaviour | None
    ready_override: bool
    instances: list[Instance] = field(default_factory=list)
    waiting_reason: str | None = "ContainerCreating"
    waiting_message: str | None = None
    ready: bool = False
    watcher: asyncio.Task[None] | None = None

    @property
    def current(self) -> Instance | None:
        return self.instances[-1] if self.instances else None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The current instance's process while the container runs, else None."""
        inst = self.current
        if (
            inst is None
            or inst.proc is None
            or inst.proc.returncode is not None
            or inst.exit_code is not None
        ):
            return None
        return inst.proc

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def probe_passes(self) -> bool:
        """What a readiness probe on the container's port would say: it runs and, for an app,
        it listens (an app with ``listen: false`` never gets Ready)."""
        return self.running and (self.app is None or self.app.listen)


@dataclass
class Pod:
    """A pod of the lab: spec, identity, address and containers."""

    spec: PodSpec
    uid: str
    ip: str
    directory: Path
    created: datetime.datetime
    containers: dict[str, Container]
    start_time: datetime.datetime | None = None
    deleting: bool = False
    deleted_at: datetime.datetime | None = None
    # The Ready condition as last written, and when it last changed (its lastTransitionTime).
    ready_seen: bool | None = None
    ready_at: datetime.datetime | None = None
    link: PodLink | None = None  # its network namespace, once made

    @property
    def key(self) -> str:
        return f"{self.spec.namespace}/{self.spec.name}"

    @property
    def containers_ready(self) -> bool:
        """The pod's Ready condition: every container ready, terminating or not (the kubelet
        goes on probing a terminating pod)."""
        return all(c.ready for c in self.containers.values())

    @property
    def ready(self) -> bool:
        return not self.deleting and all(c.ready for c in self.containers.values())


# resolve(name): the name's IPv4 addresses, [] for a name without A records, None for no such name.
Resolver = Callable[[str], list[str] | None]


# The ports of an EndpointSlice or an Endpoints subset: sorted (name, port) pairs.
PortSet = tuple[tuple[str, int], ...]


def dns_reply(query: bytes, resolve: Resolver) -> bytes | None:
    """The answer to one DNS query over UDP (A records; NXDOMAIN for unknown names), or None.

    ``resolve(name)`` returns a list of IPv4 addresses, ``[]`` for a name without A records,
    None for a name that does not exist. Nothing is ever forwarded.
    """
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(query) or query[i] & 0xC0:
            return None
        length = query[i]
        i += 1
        if length == 0:
            break
        labels.append(query[i : i + length].decode("ascii", "replace"))
        i += length
    if i + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[i : i + 4])
    ips = resolve(".".join(labels))
    rcode = 3 if ips is None else 0
    answers = ips if ips and qtype == 1 and qclass == 1 else []
    header = struct.pack(
        "!HHHHHH", qid, 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 1, len(answers), 0, 0
    )
    records = b"".join(
        struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip) for ip in answers
    )
    return header + query[12 : i + 4] + records


class DnsServer(asyncio.DatagramProtocol):
    """The lab's cluster DNS (what nginx's ``resolver`` asks), answering from the runtime."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.transport: asyncio.DatagramTransport | None = None

    # A datagram endpoint always passes a DatagramTransport; typeshed's DatagramProtocol narrows the
    # parameter the same way and carries the same ignore (BaseProtocol's takes any transport).
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = dns_reply(data, self.resolve)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


# ----------------------------------------------------------------------------- runtime


class Runtime:
    """Runs a scenario's pods and Services and keeps the store in step with them."""

    def __init__(self, scenario: Scenario, lab_dir: Path, slot: int, store: Store) -> None:
        self.scenario = scenario
        self.dir = lab_dir
        self.slot = slot
        self.store = store
        self.pods: dict[str, Pod] = {}
        self.services: dict[str, ServiceSpec] = {
            f"{s.namespace}/{s.name}": s for s in scenario.services
        }
        self.cluster_ips: dict[str, str] = {}
        self.history: list[dict[str, Any]] = []
        self._next_pod_ip = network.FIRST_POD_HOST
        self._next_cluster_ip = network.FIRST_SERVICE_HOST
        # ip_reuse: addresses freed by deleted pods (oldest first), and each pod name's last one
        self._freed_ips: list[str] = []
        self._last_ip: dict[str, str] = {}
        self._dns: asyncio.DatagramTransport | None = None
        self._stopping = False
        self.nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.pids_file = lab_dir / "pids"
        self.net = LabNetwork(slot, lab_dir, self._record_pid)
        for key, svc in self.services.items():
            if not svc.headless:
                self.cluster_ips[key] = self._allocate_cluster_ip()

    # --------------------------------------------------------------- addresses

    @property
    def host_ip(self) -> str:
        """The 'node' address pods report as hostIP (the host's end of the lab's uplink)."""
        return network.node_ip(self.slot)

    @property
    def dns_ip(self) -> str:
        """The address of the lab's cluster DNS server (UDP port 53), in the lab network."""
        return network.dns_ip(self.slot)

    def _allocate_cluster_ip(self) -> str:
        if self._next_cluster_ip > 254:
            raise LabError("this lab ran out of ClusterIPs (235); use fewer Services")
        ip = f"198.19.{self.slot}.{self._next_cluster_ip}"
        self._next_cluster_ip += 1
        return ip

    def _allocate_pod_ip(self, key: str) -> str:
        """The next pod address; with ``network.ip_reuse`` a freed one first (never the address
        this pod name held last, so a replaced pod still moves)."""
        if self.scenario.network.ip_reuse:
            for ip in self._freed_ips:
                if self._last_ip.get(key) != ip:
                    self._freed_ips.remove(ip)
                    return ip
        if self._next_pod_ip > 254:
            raise LabError("this lab ran out of pod addresses (245 pods); use fewer replace steps")
        ip = f"198.18.{self.slot}.{self._next_pod_ip}"
        self._next_pod_ip += 1
        return ip

    def proxy_url(self, path: str | None = None) -> str:
        """The URL a user's browser would hit: the proxy Service's ClusterIP and first port."""
        proxy = self.scenario.proxy
        key = f"{proxy['namespace']}/{proxy['service']}"
        port = self.services[key].ports[0].port
        return f"http://{self.cluster_ips[key]}:{port}{path or proxy['path']}"

    def proxy_pods(self) -> list[str]:
        """namespace/name of the pods the proxy selector matches, sorted."""
        proxy = self.scenario.proxy
        return sorted(
            pod.key
            for pod in self.pods.values()
            if pod.spec.namespace == proxy["namespace"]
            and all(pod.spec.labels.get(k) == v for k, v in proxy["selector"].items())
        )

    # --------------------------------------------------------------- interface for the API server

    def _container(self, namespace: str, pod: str, container: str | None) -> tuple[Pod, Container]:
        p = self.pods.get(f"{namespace}/{pod}")
        if p is None:
            raise PodNotRunning(f'pods "{pod}" not found')
        name = container or next(iter(p.containers))
        c = p.containers.get(name)
        if c is None:
            raise PodNotRunning(
                f"container {name} is not valid for pod {pod}; valid containers: {', '.join(p.containers)}"
            )
        return p, c

    def log_path(
        self, namespace: str, pod: str, container: str | None, previous: bool = False
    ) -> Path | None:
        """The CRI log file of a container's current (or previous) instance, or None."""
        try:
            _, c = self._container(namespace, pod, container)
        except PodNotRunning:
            return None
        if not c.instances:
            return None
        if previous:
            return c.instances[-2].log_path if len(c.instances) > 1 else None
        return c.instances[-1].log_path

    def exec_command(
        self, namespace: str, pod: str, container: str | None, argv: list[str]
    ) -> list[str]:
        """The argv that runs ``argv`` inside a container's mount namespace."""
        p, c = self._container(namespace, pod, container)
        proc = c.process
        if proc is None:
            raise PodNotRunning(f"container {c.spec.name} in pod {pod} is not running")
        if not argv:
            raise ExecNotFound("OCI runtime exec failed: exec failed: no command given: unknown")
        pid = proc.pid
        program = argv[0]
        resolved = None
        if Path(program).name not in c.spec.missing:
            if "/" in program:
                resolved = program if os.path.isfile(f"/proc/{pid}/root{program}") else None
            else:
                for d in CONTAINER_PATH.split(":"):
                    candidate = f"{d}/{program}"
                    if os.path.isfile(f"/proc/{pid}/root{candidate}") and os.access(
                        f"/proc/{pid}/root{candidate}", os.X_OK
                    ):
                        resolved = candidate
                        break
        if resolved is None:
            raise ExecNotFound(
                "OCI runtime exec failed: exec failed: unable to start container process: "
                f'exec: "{program}": executable file not found in $PATH: unknown'
            )
        return [self.nsenter, "--target", str(pid), "--mount", "--net", "--", resolved, *argv[1:]]

    # --------------------------------------------------------------- lifecycle

    def _record_pid(self, pid: int, role: str, name: str) -> None:
        with self.pids_file.open("a") as fh:
            fh.write(f"{pid} {os.getpgid(pid)} {role} {name}\n")

    async def start(self) -> None:
        """Make the network, start DNS, create the Services, start every pod; returns when all
        run and are synced."""
        await self.net.start()
        self._dns, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: DnsServer(self.resolve), sock=self.net.udp_socket(self.dns_ip, 53)
        )
        for key, svc in self.services.items():
            self.store.put(self._service_manifest(svc, self.cluster_ips.get(key)))
        for ns in self.scenario.namespaces:
            self.store.put(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                }
            )
        for pol in self.scenario.network_policies:
            self.store.put(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": pol["name"], "namespace": pol["namespace"]},
                    "spec": pol["spec"],
                }
            )
        pods = [self._new_pod(spec) for spec in self.scenario.pods]
        await self.sync()
        # Backends first, then proxies: nginx resolves upstream names when it loads its config.
        for proxies in (False, True):
            await asyncio.gather(
                *(
                    self._start_pod(p)
                    for p in pods
                    if any(c.spec.kind in PROXY_KINDS for c in p.containers.values()) == proxies
                )
            )
            await self.sync()

    def _new_pod(self, spec: PodSpec) -> Pod:
        uid = str(uuid.uuid4())
        key = f"{spec.namespace}/{spec.name}"
        ip = self._allocate_pod_ip(key)
        self._last_ip[key] = ip
        directory = self.dir / "pods" / f"{spec.namespace}_{spec.name}_{uid[:8]}"
        containers = {c.name: Container(c, c.app, c.ready) for c in spec.containers}
        pod = Pod(spec, uid, ip, directory, now(), containers)
        self.pods[pod.key] = pod
        self._prepare_pod_files(pod)
        self._event(pod, "Scheduled", f"Successfully assigned {pod.key} to {NODE_NAME}")
        return pod

    def _prepare_pod_files(self, pod: Pod) -> None:
        d = pod.directory
        (d / "etc").mkdir(parents=True, exist_ok=True)
        (d / "etc" / "hosts").write_text(self._hosts_text(pod))
        ns = pod.spec.namespace
        (d / "etc" / "resolv.conf").write_text(
            f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
            f"nameserver {self.dns_ip}\noptions ndots:5 timeout:1 attempts:1\n"
        )
        for c in pod.containers.values():
            if c.spec.haproxy is not None:
                for sub in ("etc-haproxy", "run/haproxy"):  # Debian's stats socket directory
                    (d / c.spec.name / sub).mkdir(parents=True, exist_ok=True)
            nginx = c.spec.nginx
            if nginx is None:  # an app container (or haproxy)
                continue
            root = d / c.spec.name
            conf = root / "etc-nginx"
            (conf / "conf.d").mkdir(parents=True, exist_ok=True)
            for sub in ("run", "log-nginx", "lib-nginx"):
                (root / sub).mkdir(exist_ok=True)
            for name, target in (("access.log", "/dev/stdout"), ("error.log", "/dev/stderr")):
                link = root / "log-nginx" / name
                if not link.is_symlink():
                    link.symlink_to(target)
            mime = Path("/etc/nginx/mime.types")
            if mime.exists():
                shutil.copyfile(mime, conf / "mime.types")

    def render_config(self, pod: Pod, c: Container) -> list[str]:
        """Write an nginx container's config files from the scenario, as a controller renders
        them now (``render.render_servers``: the current ready endpoints); no reload. Returns the
        upstream addresses written."""
        nginx = c.spec.nginx
        files: list[tuple[Path, str]] = []
        if c.spec.haproxy is not None:
            files.append(
                (pod.directory / c.spec.name / "etc-haproxy" / "haproxy.cfg", c.spec.haproxy.cfg)
            )
        if nginx is not None:
            conf = pod.directory / c.spec.name / "etc-nginx"
            main = nginx.nginx_conf or NGINX_CONF.format(
                namespace=pod.spec.namespace, pod=pod.spec.name
            )
            files.append((conf / "nginx.conf", main))
            files += [(conf / "conf.d" / fname, text) for fname, text in nginx.conf_d.items()]
        written: list[str] = []
        for path, text in files:
            text, addresses = render_servers(
                self._expand(pod, text), pod.spec.namespace, self.ready_addresses
            )
            path.write_text(text)
            written.extend(addresses)
        return written

    def ready_addresses(self, namespace: str, service: str) -> list[str]:
        """``IP:PORT`` of a Service's ready endpoints (its first port), as a controller sees them."""
        svc = self.services[f"{namespace}/{service}"]
        first = svc.ports[0].name or ""
        return [
            f"{p.ip}:{ports[first]}"
            for p, ports in self.endpoints_of(svc)
            if p.ready and first in ports
        ]

    @staticmethod
    def _expand(pod: Pod, text: str) -> str:
        """Fill in ``$(POD_IP)``, ``$(POD_NAME)``, ``$(POD_NAMESPACE)`` (Kubernetes' own syntax)."""
        for var, value in (
            ("$(POD_IP)", pod.ip),
            ("$(POD_NAME)", pod.spec.name),
            ("$(POD_NAMESPACE)", pod.spec.namespace),
        ):
            text = text.replace(var, value)
        return text

    async def _start_pod(self, pod: Pod) -> None:
        if pod.link is None:
            pod.link = await self.net.add_pod(pod.key, pod.directory, pod.ip)
            await self.net.update(self.ruleset)  # its address is live now, not vanished
        await asyncio.gather(*(self._start_container(pod, c) for c in pod.containers.values()))
        pod.start_time = pod.start_time or now()

    async def _start_container(self, pod: Pod, c: Container) -> None:
        restart = len(c.instances)
        log_dir = (
            self.dir / "logs" / f"{pod.spec.namespace}_{pod.spec.name}_{pod.uid}" / c.spec.name
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        inst = Instance(restart, log_dir / f"{restart}.log")
        inst.log_path.touch()
        c.instances.append(inst)
        binds = [(str(pod.directory / "etc" / Path(t).name), t) for t in POD_FILE_BINDS]
        if c.spec.haproxy is not None:
            if not os.path.exists(self.haproxy):
                raise LabError(
                    f"pod {pod.key}: haproxy is not installed: apt-get install haproxy "
                    "(or run make system-deps)"
                )
            self.render_config(pod, c)
            root = pod.directory / c.spec.name
            binds += [
                (str(root / src), dst) for src, dst in zip(("etc-haproxy", "run"), HAPROXY_BINDS)
            ]
            argv = [self.haproxy, "-W", "-db", "-S", HAPROXY_MASTER_SOCKET, "-f", HAPROXY_CFG]
        elif c.app is None:  # the nginx container
            self.render_config(pod, c)
            root = pod.directory / c.spec.name
            binds += [
                (str(root / src), dst)
                for src, dst in zip(("etc-nginx", "run", "log-nginx", "lib-nginx"), NGINX_BINDS)
            ]
            argv = [self.nginx, "-g", "daemon off;"]
        else:
            cfg = c.app.to_json() | {"ip": "0.0.0.0"}  # noqa: S104 - in the pod's own namespace
            argv = [
                sys.executable,
                "-S",
                "-I",
                str(BACKEND),
                "--lab",
                str(self.dir),
                "--config",
                json.dumps(cfg),
            ]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                cwd=str(pod.directory),
                preexec_fn=_pod_preexec(binds, pod.link.path if pod.link else None),
            )
        except (OSError, Exception) as exc:  # SubprocessError from preexec_fn lands here too
            raise LabError(
                f"cannot start container {c.spec.name} of pod {pod.key}: {exc} "
                "(the lab needs root for private mount namespaces: run it as root)"
            ) from None
        inst.proc = proc
        inst.started_at = now()
        self._record_pid(proc.pid, "container", f"{pod.key}/{c.spec.name}")
        log_fh = inst.log_path.open("a", buffering=1)
        musl = c.spec.nginx is not None and c.spec.nginx.libc == "musl"
        assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs (see above)
        readers = [
            asyncio.create_task(self._read_stream(proc.stdout, "stdout", log_fh)),
            asyncio.create_task(self._read_stream(proc.stderr, "stderr", log_fh, musl)),
        ]
        c.waiting_reason = c.waiting_message = None
        c.watcher = asyncio.create_task(self._watch(pod, c, inst, proc, readers, log_fh))
        await self._wait_started(pod, c, inst, proc)
        c.ready = c.ready_override and c.probe_passes
        self._event(pod, "Started", f"Started container {c.spec.name}")

    async def _read_stream(
        self, stream: asyncio.StreamReader, name: str, fh: TextIO, musl: bool = False
    ) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the reader's limit: take what is there
                line = await stream.read(65536)
                fh.write(f"{rfc3339nano()} {name} P {line.decode(errors='replace')}\n")
                continue
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\n")
            if musl:
                text = MUSL_ERRNO_TEXT.sub(lambda m: MUSL_STRERROR[m.group(0)], text)
            fh.write(f"{rfc3339nano()} {name} F {text}\n")

    async def _wait_started(
        self, pod: Pod, c: Container, inst: Instance, proc: asyncio.subprocess.Process
    ) -> None:
        """Wait until the container accepts connections on its port (or logged, if it does not listen)."""
        app = c.app
        port: int | None
        if app is None:  # nginx
            port = c.spec.ports[0]["containerPort"]
        elif app.listen and app.accept:
            port = app.listen_port
        else:
            port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.returncode is not None or inst.exit_code is not None:
                if app is not None and app.exit_after is not None:
                    return  # a crashing app: the watcher handles restarts
                tail = inst.log_path.read_text()[-2000:]
                raise LabError(
                    f"container {c.spec.name} of pod {pod.key} exited at start "
                    f"(code {proc.returncode}); its log:\n{tail}"
                )
            if port is not None:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(pod.ip, port), 1)
                    writer.close()
                    return
                except (OSError, asyncio.TimeoutError):
                    pass
            elif app is not None:  # an app that does not accept: always so when there is no port
                if app.listen and "running on" in inst.log_path.read_text(errors="replace"):
                    return  # accept: false, its queue filled: a connect would hang
                if not app.listen and inst.log_path.stat().st_size:
                    return
            await asyncio.sleep(0.005)
        raise LabError(
            f"container {c.spec.name} of pod {pod.key} did not start within 10 s; "
            f"see {inst.log_path}"
        )

    async def _watch(
        self,
        pod: Pod,
        c: Container,
        inst: Instance,
        proc: asyncio.subprocess.Process,
        readers: list[asyncio.Task[None]],
        log_fh: TextIO,
    ) -> None:
        """Record an instance's exit; restart it (with back-off) unless the lab ended it."""
        code = await proc.wait()
        await asyncio.gather(*readers, return_exceptions=True)
        log_fh.close()
        if inst.exit_code is None:
            inst.exit_code = code if code >= 0 else 128 - code
            inst.reason = (
                "Completed" if inst.exit_code == 0 else (c.app and c.app.exit_reason) or "Error"
            )
        inst.finished_at = now()
        c.ready = False
        if inst.expected_exit or self._stopping or pod.deleting:
            return
        self._event(
            pod,
            "BackOff",
            f"Back-off restarting failed container {c.spec.name} in pod {pod.spec.name}",
            "Warning",
        )
        delay = 0.0 if len(c.instances) == 1 else min(0.5 * 2 ** (len(c.instances) - 2), 10.0)
        if delay:
            c.waiting_reason = "CrashLoopBackOff"
            c.waiting_message = (
                f"back-off {delay:g}s restarting failed container={c.spec.name} pod={pod.spec.name}"
            )
            await self.sync()
            await asyncio.sleep(delay)
        if not (self._stopping or pod.deleting):
            await self._start_container(pod, c)
            await self.sync()

    async def _stop_container(
        self,
        c: Container,
        sig: int = signal.SIGTERM,
        exit_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        inst = c.current
        if inst is None or inst.proc is None or inst.proc.returncode is not None:
            return
        inst.expected_exit = exit_code is None
        if exit_code is not None:
            inst.exit_code, inst.reason = exit_code, reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(inst.proc.pid, sig)
        try:
            await asyncio.wait_for(inst.proc.wait(), 2)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.proc.pid, signal.SIGKILL)
            await inst.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(inst.proc.pid, signal.SIGKILL)  # nginx workers that outlived their master
        if c.watcher is not None and exit_code is None:
            await asyncio.gather(c.watcher, return_exceptions=True)

    async def delete_pod(self, key: str) -> Pod:
        """Stop a pod's processes and remove it (its EndpointSlice entries go with it)."""
        pod = self.pods[key]
        pod.deleting = True
        pod.deleted_at = pod.deleted_at or now()
        self._event(pod, "Killing", "Stopping container " + ", ".join(pod.containers))
        await asyncio.gather(*(self._stop_container(c) for c in pod.containers.values()))
        if pod.link is not None:
            await self.net.remove_pod(pod.link, pod.ip)
            pod.link = None
        self._freed_ips.append(pod.ip)
        del self.pods[key]
        self.store.delete("pods", pod.spec.namespace, pod.spec.name)
        await self.sync()
        return pod

    async def replace_pod(self, key: str) -> tuple[Pod, Pod]:
        """Delete a pod and create it again under the same name: new uid, new IP."""
        old = await self.delete_pod(key)
        new = self._new_pod(old.spec)
        await self.sync()
        await self._start_pod(new)
        await self.sync()
        return old, new

    async def terminate_pod(self, key: str, container: str, app: AppBehaviour | None) -> Pod:
        """Start a graceful deletion that does not end: deletionTimestamp set, the containers
        keep running (the grace period), the endpoints turn ``ready: false, terminating: true``
        and leave the ClusterIP and DNS. ``app``: the behaviour the container takes on SIGTERM
        (e.g. ``listen: false``, an app that closes its listener at once)."""
        pod = self.pods[key]
        pod.deleting = True
        pod.deleted_at = now()
        self._event(pod, "Killing", f"Stopping container {container}")
        if app is not None:
            c = pod.containers[container]
            c.app = app
            await self._stop_container(c)
            await self._start_container(pod, c)
        await self.sync()
        return pod

    async def change_service(self, action: str, key: str, args: dict[str, Any]) -> dict[str, Any]:
        """``update_service`` (selector, ports), ``delete_service``, ``recreate_service`` (deleted
        and created again: new uid, new ClusterIP); endpoints, DNS and the ruleset follow.
        Returns what changed, for the history."""
        svc = self.services.get(key)
        if svc is None:
            raise LabError(f"{self.scenario.path}: Service {key} was deleted by an earlier step")
        old_ip = self.cluster_ips.get(key)
        if action == "update_service":
            svc = dataclasses.replace(
                svc,
                selector=args.get("selector", svc.selector),
                ports=args.get("ports", svc.ports),
            )
            self.services[key] = svc
            self.store.put(self._service_manifest(svc, old_ip))
            await self.sync()
            return {"cluster_ip": old_ip}
        del self.services[key]
        self.cluster_ips.pop(key, None)
        self.store.delete("services", svc.namespace, svc.name)
        self.store.delete("endpoints", svc.namespace, svc.name)
        for sl in self.store.list("endpointslices", svc.namespace):
            if sl["metadata"].get("labels", {}).get("kubernetes.io/service-name") == svc.name:
                self.store.delete("endpointslices", svc.namespace, sl["metadata"]["name"])
        new_ip = None
        if action == "recreate_service":
            self.services[key] = svc
            if not svc.headless:
                new_ip = self.cluster_ips[key] = self._allocate_cluster_ip()
            self.store.put(self._service_manifest(svc, new_ip))
        await self.sync()
        return {"old_cluster_ip": old_ip, "new_cluster_ip": new_ip}

    async def crash(self, key: str, container: str, exit_code: int, reason: str) -> None:
        """Kill a container as the kernel would (SIGKILL); the watcher restarts it."""
        pod = self.pods[key]
        c = pod.containers[container]
        before = len(c.instances)
        await self._stop_container(c, signal.SIGKILL, exit_code, reason)
        deadline = time.monotonic() + 15
        while (
            not (
                len(c.instances) > before
                and c.ready == (c.ready_override and (c.app is None or c.app.listen))
            )
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop every pod, then the network (namespaces, bridge, veths, ruleset, uplink)."""
        self._stopping = True
        await asyncio.gather(
            *(
                self._stop_container(c)
                for pod in self.pods.values()
                for c in pod.containers.values()
            ),
            return_exceptions=True,
        )
        if self._dns is not None:
            self._dns.close()
        await asyncio.gather(
            *(p.link.holder.stop() for p in self.pods.values() if p.link is not None),
            return_exceptions=True,
        )
        await self.net.stop()

    # --------------------------------------------------------------- sync with the store

    def _pod_matches(self, pod: Pod, selector: dict[str, str] | None) -> bool:
        return selector is not None and all(
            pod.spec.labels.get(k) == v for k, v in selector.items()
        )

    @staticmethod
    def _resolve_port(pod: Pod, target: int | str) -> int | None:
        if isinstance(target, int):
            return target
        for c in pod.containers.values():
            for port in c.spec.ports:
                if port.get("name") == target:
                    return port["containerPort"]
        return None

    def endpoints_of(self, svc: ServiceSpec) -> list[tuple[Pod, dict[str, int]]]:
        """Pods a Service selects (sorted by IP) with each service port's resolved target port."""
        out = []
        for pod in sorted(self.pods.values(), key=lambda p: tuple(int(x) for x in p.ip.split("."))):
            if pod.spec.namespace != svc.namespace or not self._pod_matches(pod, svc.selector):
                continue
            if not any(c.running for c in pod.containers.values()):
                continue
            ports = {}
            for sp in svc.ports:
                resolved = self._resolve_port(pod, sp.target_port)
                if resolved is not None:
                    ports[sp.name or ""] = resolved
            out.append((pod, ports))
        return out

    async def sync(self) -> None:
        """Write Pods, EndpointSlices, Endpoints to the store; rewrite hosts files; rewrite the
        network's ruleset (Services, NetworkPolicies, vanished addresses)."""
        for pod in self.pods.values():
            self.store.put(self._pod_manifest(pod))
        for svc in self.services.values():
            if svc.selector is None:
                continue
            eps = self.endpoints_of(svc)
            for manifest in self._slice_manifests(svc, eps):
                self.store.put(manifest)
            self.store.put(self._endpoints_manifest(svc, eps))
        if self.net.holder is not None:
            await self.net.update(self.ruleset)
        for pod in self.pods.values():
            hosts = pod.directory / "etc" / "hosts"
            text = self._hosts_text(pod)
            with hosts.open("r+") as fh:  # in place: the bind mount holds this inode
                if fh.read() != text:
                    fh.seek(0)
                    fh.write(text)
                    fh.truncate()

    def ruleset(self) -> str:
        """The lab network's nftables ruleset for the cluster as it is now."""
        services = []
        for key, svc in sorted(self.services.items()):
            cluster_ip = self.cluster_ips.get(key)
            if cluster_ip is None:
                continue
            eps = self.endpoints_of(svc) if svc.selector is not None else []
            for sp in svc.ports:
                targets = [
                    (pod.ip, ports[sp.name or ""])
                    for pod, ports in eps
                    if pod.ready and (sp.name or "") in ports
                ]
                services.append(ServiceRule(f"{key}:{sp.port}", cluster_ip, sp.port, targets))
        pods = [
            NetPod(
                pod.ip,
                pod.spec.namespace,
                pod.spec.labels,
                {
                    port["name"]: port["containerPort"]
                    for c in pod.containers.values()
                    for port in c.spec.ports
                    if "name" in port
                },
            )
            for pod in self.pods.values()
            if pod.link is not None
        ]
        chains = network.compile_policies(
            [dict(p) for p in self.scenario.network_policies],
            pods,
            {ns: {"kubernetes.io/metadata.name": ns} for ns in self.scenario.namespaces},
        )
        return network.render_ruleset(
            self.slot, [p.ip for p in pods], services, chains, self.scenario.network.vanished_ip
        )

    def dns_records(self) -> list[tuple[str, str, str]]:
        """(ip, name, namespace) of every cluster DNS record, as CoreDNS would serve them.

        A ClusterIP Service's name → its ClusterIP; a headless Service's name → each ready
        endpoint; ``<hostname>.<subdomain>`` → a ready endpoint pod whose subdomain is that
        headless Service; ``kube-dns.kube-system`` → the lab's DNS server.
        """
        records = [(self.dns_ip, "kube-dns", "kube-system")]
        for key, svc in sorted(self.services.items()):
            if key in self.cluster_ips:
                records.append((self.cluster_ips[key], svc.name, svc.namespace))
                continue
            for ep_pod, _ in self.endpoints_of(svc):
                if not ep_pod.ready:
                    continue
                records.append((ep_pod.ip, svc.name, svc.namespace))
                if ep_pod.spec.subdomain == svc.name:
                    host = ep_pod.spec.hostname or ep_pod.spec.name
                    records.append((ep_pod.ip, f"{host}.{svc.name}", svc.namespace))
        return records

    def resolve(self, fqdn: str) -> list[str] | None:
        """A-record addresses of a fully qualified name; None when the name does not exist."""
        fqdn = fqdn.rstrip(".").lower()
        found = [
            ip for ip, name, ns in self.dns_records() if f"{name}.{ns}.svc.cluster.local" == fqdn
        ]
        if found:
            return found
        if any(
            f"{name}.{ns}.svc.cluster.local".endswith("." + fqdn)
            for _, name, ns in self.dns_records()
        ):
            return []  # an existing name without records of its own (e.g. svc.cluster.local)
        return None

    def _hosts_text(self, pod: Pod) -> str:
        ns = pod.spec.namespace
        lines = [
            "# Kubernetes-managed hosts file (lab: cluster DNS records are here too).",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
        ]
        own = [pod.spec.name]
        if pod.spec.subdomain:
            host = pod.spec.hostname or pod.spec.name
            own = [f"{host}.{pod.spec.subdomain}.{ns}.svc.cluster.local", host]
        lines.append(f"{pod.ip}\t" + " ".join(own))
        for ip, name, rec_ns in self.dns_records():
            short = [name] if rec_ns == ns else []
            names = [
                f"{name}.{rec_ns}.svc.cluster.local",
                f"{name}.{rec_ns}.svc",
                f"{name}.{rec_ns}",
                *short,
            ]
            lines.append(f"{ip}\t" + " ".join(names))
        return "\n".join(lines) + "\n"

    def _container_status(self, c: Container) -> dict[str, Any]:
        inst = c.current
        status: dict[str, Any] = {
            "name": c.spec.name,
            "image": c.spec.image,
            "imageID": "",
            "ready": c.ready,
            "started": c.running,
            "restartCount": max(len(c.instances) - 1, 0),
            "lastState": {},
        }
        if inst is not None:
            status["containerID"] = f"containerd://{inst.container_id}"
        if c.running:
            # started_at is set with proc, before any await: a running instance has it
            assert inst is not None and inst.started_at is not None
            status["state"] = {"running": {"startedAt": rfc3339(inst.started_at)}}
        elif c.waiting_reason or inst is None:
            waiting = {"reason": c.waiting_reason or "ContainerCreating"}
            if c.waiting_message:
                waiting["message"] = c.waiting_message
            status["state"] = {"waiting": waiting}
        else:
            status["state"] = {"terminated": self._terminated(inst)}
        previous = c.instances[-2] if len(c.instances) > 1 else None
        if c.waiting_reason == "CrashLoopBackOff" and inst is not None:
            previous = inst
        if previous is not None and previous.finished_at is not None:
            status["lastState"] = {"terminated": self._terminated(previous)}
        return status

    @staticmethod
    def _terminated(inst: Instance) -> dict[str, Any]:
        return {
            "exitCode": inst.exit_code if inst.exit_code is not None else 0,
            "reason": inst.reason or "Error",
            # None (null, as Kubernetes writes a zero time) for an instance whose process never started
            "startedAt": rfc3339(inst.started_at) if inst.started_at is not None else None,
            "finishedAt": rfc3339(inst.finished_at or now()),
            "containerID": f"containerd://{inst.container_id}",
        }

    def _pod_manifest(self, pod: Pod) -> dict[str, Any]:
        statuses = [self._container_status(c) for c in pod.containers.values()]
        # The Ready condition is the containers' readiness, also while the pod terminates (the
        # kubelet goes on probing; the EndpointSlice controller makes such an endpoint serving
        # but not ready). pod.ready, what the lab's Services route to, leaves terminating pods out.
        ready = pod.containers_ready
        unready = [c.spec.name for c in pod.containers.values() if not c.ready]
        started = pod.start_time is not None
        t_created = rfc3339(pod.created)
        t_start = rfc3339(pod.start_time or pod.created)
        if ready != pod.ready_seen:
            pod.ready_seen, pod.ready_at = ready, now()
        t_ready = rfc3339(pod.ready_at or pod.start_time or pod.created)

        def cond(kind: str, ok: bool, when: str) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": when,
            }
            if not ok and kind in ("Ready", "ContainersReady"):
                entry["reason"] = "ContainersNotReady"
                entry["message"] = f"containers with unready status: [{' '.join(unready)}]"
            return entry

        spec: dict[str, Any] = {
            "containers": [
                {
                    "name": c.spec.name,
                    "image": c.spec.image,
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [dict(p) for p in c.spec.ports],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
                for c in pod.containers.values()
            ],
            "nodeName": NODE_NAME,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        }
        if pod.spec.subdomain:
            spec["hostname"] = pod.spec.hostname or pod.spec.name
            spec["subdomain"] = pod.spec.subdomain
        meta: dict[str, Any] = {
            "name": pod.spec.name,
            "namespace": pod.spec.namespace,
            "uid": pod.uid,
            "creationTimestamp": t_created,
            "labels": dict(pod.spec.labels),
        }
        if pod.deleting:
            # As kube-apiserver sets it on a graceful delete: when the grace period ends
            grace = 30
            deleted = pod.deleted_at or now()
            meta["deletionTimestamp"] = rfc3339(deleted + datetime.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {
                "phase": "Running" if started else "Pending",
                "conditions": [
                    cond("PodReadyToStartContainers", started, t_start),
                    cond("Initialized", True, t_created),
                    cond("Ready", ready, t_ready),
                    cond("ContainersReady", ready, t_ready),
                    cond("PodScheduled", True, t_created),
                ],
                "hostIP": self.host_ip,
                "hostIPs": [{"ip": self.host_ip}],
                "podIP": pod.ip,
                "podIPs": [{"ip": pod.ip}],
                "startTime": t_start,
                "containerStatuses": statuses,
                "qosClass": "BestEffort",
            },
        }

    def _service_manifest(self, svc: ServiceSpec, cluster_ip: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "ClusterIP",
            "clusterIP": cluster_ip or "None",
            "clusterIPs": [cluster_ip or "None"],
            "ports": [
                {
                    **({"name": p.name} if p.name else {}),
                    "port": p.port,
                    "targetPort": p.target_port,
                    "protocol": p.protocol,
                }
                for p in svc.ports
            ],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        }
        if svc.selector is not None:
            spec["selector"] = dict(svc.selector)
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": svc.name,
                "namespace": svc.namespace,
                **({"labels": {"service.kubernetes.io/headless": ""}} if svc.headless else {}),
            },
            "spec": spec,
            "status": {"loadBalancer": {}},
        }

    def _owner(self, svc: ServiceSpec) -> list[dict[str, Any]]:
        stored = self.store.get("services", svc.namespace, svc.name)
        assert stored is not None, (
            f"Service {svc.namespace}/{svc.name} is stored by start(), before any sync()"
        )
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": svc.name,
                "uid": stored["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def _slice_manifests(
        self, svc: ServiceSpec, eps: list[tuple[Pod, dict[str, int]]]
    ) -> list[dict[str, Any]]:
        """One EndpointSlice per distinct resolved port set (as the controller splits them)."""
        groups: dict[PortSet, list[Pod]] = {}
        for pod, ports in eps:
            groups.setdefault(tuple(sorted(ports.items())), []).append(pod)
        if not groups:
            groups[()] = []
        wanted: dict[str, dict[str, Any]] = {}
        for n, (port_set, pods) in enumerate(sorted(groups.items())):
            digest = hashlib.sha1(f"{svc.namespace}/{svc.name}/{n}".encode()).hexdigest()[:5]
            name = f"{svc.name}-{digest}"
            wanted[name] = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "namespace": svc.namespace,
                    "labels": {
                        "kubernetes.io/service-name": svc.name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    },
                    "ownerReferences": self._owner(svc),
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [pod.ip],
                        "conditions": {
                            "ready": pod.ready,
                            # The EndpointSlice controller's: the pod's Ready condition
                            "serving": pod.containers_ready,
                            "terminating": pod.deleting,
                        },
                        "nodeName": NODE_NAME,
                        "targetRef": {
                            "kind": "Pod",
                            "name": pod.spec.name,
                            "namespace": pod.spec.namespace,
                            "uid": pod.uid,
                        },
                    }
                    for pod in pods
                ],
                "ports": [
                    {"name": name_, "port": port, "protocol": "TCP"} for name_, port in port_set
                ],
            }
        for old in self.store.list("endpointslices", svc.namespace):
            if (
                old["metadata"].get("labels", {}).get("kubernetes.io/service-name") == svc.name
                and old["metadata"]["name"] not in wanted
            ):
                self.store.delete("endpointslices", svc.namespace, old["metadata"]["name"])
        return list(wanted.values())

    def _endpoints_manifest(
        self, svc: ServiceSpec, eps: list[tuple[Pod, dict[str, int]]]
    ) -> dict[str, Any]:
        subsets: dict[PortSet, dict[str, Any]] = {}
        for pod, ports in eps:
            key = tuple(sorted(ports.items()))
            subset = subsets.setdefault(
                key, {"ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in key]}
            )
            address = {
                "ip": pod.ip,
                "nodeName": NODE_NAME,
                "targetRef": {
                    "kind": "Pod",
                    "name": pod.spec.name,
                    "namespace": pod.spec.namespace,
                    "uid": pod.uid,
                },
            }
            subset.setdefault("addresses" if pod.ready else "notReadyAddresses", []).append(address)
        manifest: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": svc.name, "namespace": svc.namespace},
        }
        if subsets:
            manifest["subsets"] = [subsets[k] for k in sorted(subsets)]
        return manifest

    def _event(self, pod: Pod, reason: str, message: str, kind: str = "Normal") -> None:
        stamp = rfc3339(now())
        self.store.put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{pod.spec.name}.{uuid.uuid4().hex[:16]}",
                    "namespace": pod.spec.namespace,
                },
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod.spec.name,
                    "namespace": pod.spec.namespace,
                    "uid": pod.uid,
                },
                "reason": reason,
                "message": message,
                "type": kind,
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {"component": "kubelet", "host": NODE_NAME},
                "reportingComponent": "kubelet",
                "reportingInstance": NODE_NAME,
            }
        )

    # --------------------------------------------------------------- timeline

    async def run_timeline(self, steps: list[Step] | None = None) -> None:
        """Run the scenario's steps (or ``steps``, given to a running lab) in order; a step
        whose expectation fails raises LabError."""
        for step in self.scenario.timeline if steps is None else steps:
            args = step.args
            key = f"{args.get('namespace')}/{args.get('pod')}"
            if step.action == "requests":
                url = self.proxy_url(args["path"])
                statuses = [
                    await http_get_status(url, args["timeout"], args["method"])
                    for _ in range(args["count"])
                ]
                self.history.append({"step": step.where, "statuses": statuses})
                want = args.get("expect_status")
                if want is not None and any(s != want for s in statuses):
                    raise LabError(
                        f"{self.scenario.path}: {step.where}: expected every answer from "
                        f"{url} to be {want}, got {statuses}"
                    )
            elif step.action == "wait":
                await asyncio.sleep(args["seconds"])
            elif step.action == "replace_pod":
                old, new = await self.replace_pod(key)
                self.history.append(
                    {
                        "step": step.where,
                        "pod": key,
                        "old_ip": old.ip,
                        "new_ip": new.ip,
                        "old_uid": old.uid,
                        "new_uid": new.uid,
                    }
                )
            elif step.action == "delete_pod":
                old = await self.delete_pod(key)
                self.history.append({"step": step.where, "pod": key, "old_ip": old.ip})
            elif step.action == "set_ready":
                c = self.pods[key].containers[args["container"]]
                c.ready_override = args["ready"]
                c.ready = args["ready"] and c.probe_passes
                await self.sync()
            elif step.action == "crash":
                await self.crash(key, args["container"], args["exit_code"], args["reason"])
                await self.sync()
            elif step.action == "exec":
                argv = self.exec_command(
                    args["namespace"], args["pod"], args["container"], args["command"]
                )
                running = self.pods[key].containers[args["container"]].process
                assert running is not None  # exec_command raised PodNotRunning otherwise
                master = running.pid
                workers = _children(master)
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                output, _ = await proc.communicate()
                self.history.append(
                    {
                        "step": step.where,
                        "pod": key,
                        "command": args["command"],
                        "rc": proc.returncode,
                    }
                )
                if proc.returncode != 0:
                    raise LabError(
                        f"{self.scenario.path}: {step.where}: {' '.join(args['command'])} "
                        f"exited {proc.returncode}: {output.decode(errors='replace')}"
                    )
                # A reload returns once nginx got the signal; wait until the old workers are gone.
                deadline = time.monotonic() + 5
                while set(_children(master)) & set(workers) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            elif step.action == "terminate_pod":
                pod = await self.terminate_pod(key, args["container"], args.get("app"))
                self.history.append(
                    {
                        "step": step.where,
                        "pod": key,
                        "ip": pod.ip,
                        "deletion_timestamp": rfc3339(pod.deleted_at or now()),
                    }
                )
            elif step.action == "log_noise":
                path = self.pods[key].containers[args["container"]].instances[-1].log_path
                written = write_log_noise(path, args["lines"], args["invalid_utf8"], self.host_ip)
                self.history.append({"step": step.where, "pod": key, "lines": written})
            elif step.action == "render_config":
                pod = self.pods[key]
                servers = self.render_config(pod, pod.containers[args["container"]])
                self.history.append({"step": step.where, "pod": key, "servers": servers})
            elif step.action in ("update_service", "delete_service", "recreate_service"):
                svc_key = f"{args['namespace']}/{args['service']}"
                change = await self.change_service(step.action, svc_key, args)
                self.history.append({"step": step.where, "service": svc_key, **change})
            elif step.action == "set_behaviour":
                pod = self.pods[key]
                c = pod.containers[args["container"]]
                c.app = args["app"]
                await self._stop_container(c)
                await self._start_container(pod, c)
                await self.sync()


NOISE_PATHS = (
    "/static/app.js",
    "/api/v1/models",
    "/favicon.ico",
    "/health",
    "/api/v1/chats?page=2",
)


def write_log_noise(path: Path, count: int, invalid_utf8: bool, client: str) -> int:
    """Append ``count`` CRI records of noise to a container's log: access-log lines of the
    default ``main`` format (200/304/404, never 5xx), nginx notices and info lines unrelated
    to upstreams, and (with ``invalid_utf8``) lines holding bytes that are not UTF-8, as a
    kubelet stores whatever a container writes. Returns the number of records written."""
    stamp = now()
    local = stamp.strftime("%d/%b/%Y:%H:%M:%S +0000")
    err_time = stamp.strftime("%Y/%m/%d %H:%M:%S")
    kinds: list[Callable[[int], tuple[bytes, bytes]]] = [
        lambda n: (
            b"stdout",
            f'{client} - - [{local}] "GET {NOISE_PATHS[n % 5]} HTTP/1.1" '
            f'{(200, 304, 404)[n % 3]} {n % 9000} "-" "Mozilla/5.0" "-"'.encode(),
        ),
        lambda n: (
            b"stderr",
            f"{err_time} [info] 7#7: *{n} client closed keepalive connection".encode(),
        ),
        lambda n: (
            b"stdout",
            f'{client} - - [{local}] "GET /search?q=caf%C3%A9 HTTP/1.1" 200 {n % 700} '
            f'"-" "curl/8.5.0" "-"'.encode(),
        ),
    ]
    if invalid_utf8:
        kinds.append(
            lambda n: (
                b"stderr",
                f"{err_time} [info] 7#7: *{n} client sent invalid header line: ".encode()
                + b'"X-Name: \xff\xfe\xc3(" while reading client request headers',
            )
        )
    with path.open("ab") as fh:
        for n in range(count):
            stream, text = kinds[n % len(kinds)](n)
            fh.write(rfc3339nano().encode() + b" " + stream + b" F " + text + b"\n")
    return count


def _children(pid: int) -> list[int]:
    """PIDs of a process's children (for nginx: its workers), empty if it is gone."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def http_get_status(url: str, timeout: float = 10.0, method: str = "GET") -> int | None:
    """GET (or POST, with an empty body) a loopback http:// URL; the status code, or None when
    no HTTP answer came."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port or 80)), timeout
        )
    except (OSError, asyncio.TimeoutError):
        return None
    try:
        body = "Content-Length: 0\r\n" if method == "POST" else ""
        writer.write(
            f"{method} /{path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: badlab-timeline\r\n"
            f"{body}Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        writer.close()
