"""The lab's network: real network namespaces, a bridge, Services and NetworkPolicies in nftables.

Every lab (slot ``s``) has one *lab network namespace* holding a bridge ``br0`` (the pods'
gateway) and one uplink veth to the host; every pod has its own network namespace with a veth
``eth0`` on that bridge. Addresses come from ``198.18.0.0/15`` (RFC 2544's benchmarking range,
which no real network routes), one /24 of pod addresses and one of ClusterIPs per slot:

==================  =====================  =================================================
pods                ``198.18.s.10-254``    ``/32`` on the pod's ``eth0``, default route via the
                                           gateway, so every packet between pods is routed
                                           (and filtered) by the lab namespace
gateway             ``198.18.s.1``         ``br0`` in the lab namespace
node                ``198.18.s.2``         the host's end of the uplink (``badlab<s>``): the
                                           pods' hostIP, where the lab daemon dials from
lab end of uplink   ``198.18.s.3``         ``host0`` in the lab namespace
cluster DNS         ``198.19.s.10``        the lab daemon's DNS socket, made in the lab namespace
ClusterIPs          ``198.19.s.20-254``    local to the lab namespace: DNAT by nftables
==================  =====================  =================================================

Nothing leaves the machine, by construction: the lab namespace has no route but its own
ranges and the uplink's peer (a pod dialling anything else gets ENETUNREACH at once), and the
host routes only the lab's two /24s into the uplink; a blackhole route for the whole
``198.18.0.0/15`` (metric 4242) catches what is sent to a lab that is down. The namespaces are
held by ``sleep`` processes (a pod's *pause container*) that die with the lab daemon
(``PR_SET_PDEATHSIG``); the kernel frees a namespace, its veths, bridge and nftables table with
its last process, and ``down`` deletes the host's end of the uplink (found by its alias, the lab
directory) so nothing shows in ``ip link`` afterwards.

Services follow kube-proxy's nftables mode: per ClusterIP port a chain that picks a ready
endpoint per new connection (``numgen inc``: round robin, where kube-proxy picks at random)
and DNATs to it; a ClusterIP port without ready endpoints is rejected with a TCP reset (a
client sees 111 Connection refused); the ruleset is rewritten as one transaction
whenever endpoints change. NetworkPolicies are compiled to per-pod chains that drop what no
rule admits (a client sees its connect time out: nginx's 110). A packet for a pod address
that no pod holds gets the scenario's ``vanished_ip`` behaviour: ``refuse`` (TCP RST, 111),
``timeout`` (dropped, 110) or ``unreachable`` (ICMP host unreachable, 113).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from badlab.errors import LabError

SUPERNET = ipaddress.ip_network("198.18.0.0/15")
BLACKHOLE_METRIC = 4242
HOST_LINK_PREFIX = "badlab"
TABLE = "badlab"
VANISHED_CHOICES = ("refuse", "timeout", "unreachable")
MASQ_MARK = 0x4000

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


def pod_net(slot: int) -> ipaddress.IPv4Network:
    """The pod addresses of a slot (a /24)."""
    return ipaddress.IPv4Network(f"198.18.{slot}.0/24")


def service_net(slot: int) -> ipaddress.IPv4Network:
    """The ClusterIPs of a slot (a /24)."""
    return ipaddress.IPv4Network(f"198.19.{slot}.0/24")


def gateway_ip(slot: int) -> str:
    return f"198.18.{slot}.1"


def node_ip(slot: int) -> str:
    return f"198.18.{slot}.2"


def uplink_ip(slot: int) -> str:
    return f"198.18.{slot}.3"


def dns_ip(slot: int) -> str:
    return f"198.19.{slot}.10"


def host_link(slot: int) -> str:
    return f"{HOST_LINK_PREFIX}{slot}"


FIRST_POD_HOST = 10
FIRST_SERVICE_HOST = 20


def tool(name: str) -> str:
    """The path of ``ip`` / ``nft`` / ``nsenter`` / ``sleep`` (root's PATH may lack /usr/sbin)."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}", f"/sbin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise LabError(f"{name} is not installed: apt-get install iproute2 nftables util-linux")


# ----------------------------------------------------------------------------- the host's routes


def foreign_routes(routes: Iterable[dict[str, Any]]) -> list[str]:
    """Routes of ``ip -j -4 route show table all`` that overlap the lab supernet and are not
    the lab's own (its uplinks, its blackhole); a default route overlaps nothing."""
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast",):
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if net.version != 4 or net.prefixlen == 0 or not net.overlaps(SUPERNET):
            continue
        if str(route.get("dev", "")).startswith(HOST_LINK_PREFIX):
            continue
        if route.get("type") == "blackhole" and net == SUPERNET:
            continue
        found.append(
            " ".join(
                str(v)
                for v in (route.get("type", ""), dst, "dev", route.get("dev", "-"))
                if v != ""
            )
        )
    return found


VANISHING_LINK_SECONDS = 15.0


def only_vanishing_links(overlap: list[str]) -> bool:
    """Whether every route of ``foreign_routes`` is on a device ``ip`` could not name any more
    (``dev if<index>``: deleted while the routes were read), and there is at least one."""
    return bool(overlap) and all(re.search(r" dev if\d+$", route) for route in overlap)


def check_host(slot: int) -> None:
    """Refuse to start when the machine's own networks overlap the lab's range, or when a link
    of this slot is left over."""
    ip = tool("ip")
    deadline = time.monotonic() + VANISHING_LINK_SECONDS
    while True:
        proc = subprocess.run(
            [ip, "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise LabError(f"ip route show failed: {proc.stderr.strip()}")
        overlap = foreign_routes(json.loads(proc.stdout or "[]"))
        # A stopped lab's uplink goes when the kernel destroys its namespace, a moment after
        # the lab's processes (and its slot lock) are gone; while it goes, ``ip`` names it
        # ``if<index>``, a device that no longer exists. Wait for those, never for a real one.
        if not only_vanishing_links(overlap) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if overlap:
        raise LabError(
            f"this machine routes addresses of the lab's range {SUPERNET} itself "
            f"({'; '.join(overlap)}); the lab will not start on a network it could reach out "
            "to. Remove that route or run the lab on another machine."
        )
    link = host_link(slot)
    if Path(f"/sys/class/net/{link}").exists():
        owner = ""
        with contextlib.suppress(OSError):
            owner = Path(f"/sys/class/net/{link}/ifalias").read_text().strip()
        raise LabError(
            f"the network link {link} of lab slot {slot} is still there (lab {owner or '?'}); "
            f"stop that lab first: python -m badlab down --dir {owner or '<its dir>'}"
        )


def remove_host_links(lab_dir: Path) -> list[str]:
    """Delete the host's uplink of the lab in ``lab_dir`` (found by its alias); the names."""
    removed = []
    base = Path("/sys/class/net")
    for entry in base.glob(f"{HOST_LINK_PREFIX}*"):
        try:
            alias = (entry / "ifalias").read_text().strip()
        except OSError:
            continue
        if alias != str(lab_dir):
            continue
        proc = subprocess.run(
            [tool("ip"), "link", "del", entry.name], capture_output=True, text=True
        )
        if proc.returncode == 0 or not entry.exists():
            removed.append(entry.name)
    return removed


# ----------------------------------------------------------------------------- namespaces


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _holder_preexec() -> Callable[[], None]:
    """A preexec_fn for a namespace holder: die with the daemon, in a new network namespace."""
    libc = _libc()

    def enter() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")

    return enter


def enter_netns(path: str) -> None:
    """setns() the calling thread (or a child before exec) into the network namespace at path."""
    libc = _libc()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


def in_netns(path: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread that entered the network namespace at ``path`` (the thread ends)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            enter_netns(path)
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=run, name="badlab-netns")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@dataclass
class Holder:
    """A process that holds a network namespace (a pod's pause container)."""

    proc: asyncio.subprocess.Process

    @property
    def path(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()


async def _run(argv: list[str], stdin: str | None = None, what: str = "") -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise LabError(
            f"{what or argv[0]} failed (exit {proc.returncode}): "
            f"{err.decode(errors='replace').strip()}"
            + (f"\ninput:\n{stdin}" if stdin and len(stdin) < 4000 else "")
        )
    return out.decode(errors="replace")


# ----------------------------------------------------------------------------- the ruleset


@dataclass
class NetPod:
    """What the network needs of a pod: its address, namespace, labels and named ports."""

    ip: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)


@dataclass
class ServiceRule:
    """One ClusterIP port and the ready endpoints behind it (ip, port), in order."""

    name: str  # ns/name:port, for the chain's comment
    cluster_ip: str
    port: int
    endpoints: list[tuple[str, int]]


@dataclass
class PolicyChains:
    """Per isolated pod IP, the admitted (peers, ports) pairs: peers None = any address,
    ports None = any port; a port is (protocol, first, last)."""

    ingress: dict[str, list[tuple[list[str] | None, list[tuple[str, int, int]] | None]]]
    egress: dict[str, list[tuple[list[str] | None, list[tuple[str, int, int]] | None]]]


def _selects(selector: object, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels, matchExpressions) against labels."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_addresses(
    peer: dict[str, Any],
    policy_ns: str,
    pods: list[NetPod],
    ns_labels: dict[str, dict[str, str]],
) -> list[str]:
    """The addresses one ``from``/``to`` entry admits (pods by selectors, ipBlock CIDRs)."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        net = ipaddress.ip_network(block["cidr"], strict=False)
        parts = [net]
        for excluded in block.get("except") or []:
            ex = ipaddress.ip_network(excluded, strict=False)
            parts = [
                piece
                for part in parts
                for piece in ((part.address_exclude(ex)) if ex.subnet_of(part) else [part])  # type: ignore[arg-type]
            ]
        return sorted(str(p) for p in parts)
    pod_sel = peer.get("podSelector")
    ns_sel = peer.get("namespaceSelector")
    out = []
    for pod in pods:
        if ns_sel is None:
            if pod.namespace != policy_ns:
                continue
        elif not _selects(ns_sel, ns_labels.get(pod.namespace, {})):
            continue
        if pod_sel is not None and not _selects(pod_sel, pod.labels):
            continue
        out.append(pod.ip)
    return sorted(set(out))


def _ports(
    entries: list[dict[str, Any]] | None, pod: NetPod | None
) -> list[tuple[str, int, int]] | None:
    """A rule's ``ports`` as (protocol, first, last); named ports resolved on ``pod``
    (ingress: the selected pod) or kept as names for egress (resolved per peer later)."""
    if not entries:
        return None
    out = []
    for entry in entries:
        proto = str(entry.get("protocol", "TCP")).lower()
        port = entry.get("port")
        if port is None:
            out.append((proto, 1, 65535))
        elif isinstance(port, int):
            out.append((proto, port, int(entry.get("endPort", port))))
        elif pod is not None and port in pod.ports:
            out.append((proto, pod.ports[port], pod.ports[port]))
    return out


def compile_policies(
    policies: list[dict[str, Any]],
    pods: list[NetPod],
    ns_labels: dict[str, dict[str, str]],
) -> PolicyChains:
    """NetworkPolicies as admitted (peers, ports) per isolated pod, Kubernetes' semantics: a
    pod selected by a policy of a type is isolated for that direction and admits only what
    one of those policies' rules admits (the union); other pods admit everything."""
    chains = PolicyChains({}, {})
    for pol in policies:
        spec, ns = pol["spec"], pol["namespace"]
        types = spec.get("policyTypes") or (
            ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
        )
        selected = [
            p for p in pods if p.namespace == ns and _selects(spec.get("podSelector"), p.labels)
        ]
        for direction, peers_key, table in (
            ("Ingress", "from", chains.ingress),
            ("Egress", "to", chains.egress),
        ):
            if direction not in types:
                continue
            for pod in selected:
                admitted = table.setdefault(pod.ip, [])
                for rule in spec.get(direction.lower()) or []:
                    peers = rule.get(peers_key)
                    addresses = (
                        None
                        if not peers
                        else sorted(
                            {a for p in peers for a in _peer_addresses(p, ns, pods, ns_labels)}
                        )
                    )
                    entries = rule.get("ports") or []
                    if not entries:
                        admitted.append((addresses, None))
                        continue
                    named = [e for e in entries if isinstance(e.get("port"), str)]
                    numeric = _ports([e for e in entries if e not in named], None)
                    if numeric:
                        admitted.append((addresses, numeric))
                    # a named port is the selected pod's own (ingress) or each peer's (egress)
                    targets = [pod] if direction == "Ingress" else pods
                    for target in targets:
                        resolved = _ports(named, target) if named else None
                        if not resolved:
                            continue
                        if direction == "Ingress":
                            admitted.append((addresses, resolved))
                        elif addresses is None or target.ip in addresses:
                            admitted.append(([target.ip], resolved))
    return chains


def _set(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _admit_rules(
    admitted: list[tuple[list[str] | None, list[tuple[str, int, int]] | None]], field_: str
) -> list[str]:
    rules = []
    for peers, ports in admitted:
        if peers is not None and not peers:
            continue  # a rule whose peers select nothing admits nothing
        match = f"ip {field_} {_set(peers)} " if peers is not None else ""
        if ports is None:
            rules.append(f"{match}return")
            continue
        for proto in sorted({p for p, _, _ in ports}):
            spans = sorted(str(a) if a == b else f"{a}-{b}" for p, a, b in ports if p == proto)
            rules.append(f"{match}{proto} dport {_set(spans)} return")
    return rules


def render_ruleset(
    slot: int,
    pod_ips: Iterable[str],
    services: list[ServiceRule],
    chains: PolicyChains,
    vanished: str = "refuse",
) -> str:
    """The lab namespace's whole nftables ruleset (one table), as one ``nft -f`` transaction
    that replaces the previous one."""
    if vanished not in VANISHED_CHOICES:
        raise ValueError(f"vanished: expected one of {VANISHED_CHOICES}, got {vanished!r}")
    node, pods_net = node_ip(slot), pod_net(slot)
    head = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "  set live {",
        "    type ipv4_addr",
    ]
    # the addresses something holds: the pods', the gateway's, the node's, the uplink's
    live = sorted(
        set(pod_ips) | {gateway_ip(slot), node, uplink_ip(slot)}, key=ipaddress.IPv4Address
    )
    if live:
        head.append(f"    elements = {_set(live)}")
    head.append("  }")
    lines: list[str] = []
    dispatch, rejects, body = [], [], []
    for n, svc in enumerate(services):
        key = f"{svc.cluster_ip} . {svc.port}"
        if not svc.endpoints:
            rejects.append(key)
            continue
        chain = f"svc{n}"
        dispatch.append(f"{key} : jump {chain}")
        eps = []
        for m, (ip, port) in enumerate(svc.endpoints):
            ep = f"svc{n}-ep{m}"
            eps.append(f"{m} : jump {ep}")
            body += [
                f"  chain {ep} {{",
                f"    ip saddr {ip} meta mark set {MASQ_MARK:#x}",
                f"    meta l4proto tcp dnat to {ip}:{port}",
                "  }",
            ]
        body += [
            f"  chain {chain} {{",
            f"    numgen inc mod {len(svc.endpoints)} vmap {_set(eps)}",
            "  }",
        ]
    lines = [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    if dispatch:
        lines.append(f"    ip daddr . tcp dport vmap {_set(dispatch)}")
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f"    meta mark {MASQ_MARK:#x} masquerade",
        "  }",
    ]
    for direction, table, field_ in (
        ("ingress", chains.ingress, "saddr"),
        ("egress", chains.egress, "daddr"),
    ):
        for ip in sorted(table, key=ipaddress.IPv4Address):
            name = f"{direction}-{ip.replace('.', '-')}"
            rules = [f"ip saddr {node} return"] if direction == "ingress" else []
            rules += _admit_rules(table[ip], field_)
            body += [f"  chain {name} {{", *(f"    {r}" for r in rules), "    drop", "  }"]
    egress_map = [f"{ip} : jump egress-{ip.replace('.', '-')}" for ip in sorted(chains.egress)]
    ingress_map = [f"{ip} : jump ingress-{ip.replace('.', '-')}" for ip in sorted(chains.ingress)]
    lines += [
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
    ]
    if rejects:
        lines.append(f"    ip daddr . tcp dport {_set(rejects)} reject with tcp reset")
    if egress_map:
        lines.append(f"    ct state new ip saddr vmap {_set(egress_map)}")
    verdict = {
        "refuse": "reject with tcp reset",
        "timeout": "drop",
        "unreachable": "reject with icmp type host-unreachable",
    }[vanished]
    lines += [
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f'    iifname "br0" ip daddr {node} ct state new reject with icmp type admin-prohibited',
    ]
    if vanished == "refuse":
        lines.append(f"    ip daddr {pods_net} ip daddr != @live meta l4proto tcp {verdict}")
        lines.append(
            f"    ip daddr {pods_net} ip daddr != @live reject with icmp type port-unreachable"
        )
    else:
        lines.append(f"    ip daddr {pods_net} ip daddr != @live {verdict}")
    lines.append("    ct state established,related accept")
    if egress_map:
        lines.append(f"    ip saddr vmap {_set(egress_map)}")
    if ingress_map:
        lines.append(f"    ip daddr vmap {_set(ingress_map)}")
    lines.append("  }")
    # chains are declared before the hooks that jump to them
    return "\n".join([*head, *body, *lines, "}"]) + "\n"


# ----------------------------------------------------------------------------- the lab network


@dataclass
class PodLink:
    """A pod's network: its namespace holder and the lab-side name of its veth."""

    holder: Holder
    veth: str

    @property
    def path(self) -> str:
        return self.holder.path


class LabNetwork:
    """The network of one lab: its namespace, bridge, uplink, pods' namespaces and ruleset."""

    def __init__(self, slot: int, lab_dir: Path, record: Callable[[int, str, str], None]) -> None:
        self.slot = slot
        self.dir = lab_dir
        self.record = record
        self.holder: Holder | None = None
        self.ip = tool("ip")
        self.nft = tool("nft")
        self.nsenter = tool("nsenter")
        self.sleep = tool("sleep")
        self._veths = 0
        self._applied = ""
        self._lock = asyncio.Lock()

    @property
    def path(self) -> str:
        assert self.holder is not None, "LabNetwork.start() makes the lab namespace first"
        return self.holder.path

    def describe(self) -> dict[str, Any]:
        """For lab.json: where the lab's network is and how to look into it."""
        return {
            "pod_range": str(pod_net(self.slot)),
            "service_range": str(service_net(self.slot)),
            "node_ip": node_ip(self.slot),
            "dns_ip": dns_ip(self.slot),
            "host_link": host_link(self.slot),
            "netns": self.path if self.holder is not None else None,
            "inspect": f"nsenter --net={self.path} nft list ruleset" if self.holder else None,
        }

    async def _holder(self, cwd: Path, name: str) -> Holder:
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.sleep,
                "infinity",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                cwd=str(cwd),
                preexec_fn=_holder_preexec(),
            )
        except Exception as exc:  # noqa: BLE001 - SubprocessError from preexec_fn lands here too
            raise LabError(
                f"cannot make a network namespace for {name}: {exc} (the lab needs root)"
            ) from None
        self.record(proc.pid, "netns", name)
        return Holder(proc)

    async def _ip(self, netns: str | None, batch: list[str], what: str) -> None:
        prefix = [self.nsenter, f"--net={netns}", "--"] if netns else []
        await _run([*prefix, self.ip, "-batch", "-"], "\n".join(batch) + "\n", what)

    async def start(self) -> None:
        """Make the lab namespace, its bridge and uplink, the host's routes and blackhole."""
        check_host(self.slot)
        s = self.slot
        self.holder = await self._holder(self.dir, "lab")
        link = host_link(s)
        gw, node, up = gateway_ip(s), node_ip(s), uplink_ip(s)
        await self._ip(
            None,
            [
                f"link add {link} type veth peer name host0 netns {self.holder.proc.pid}",
                f"link set {link} alias {self.dir}",
                f"addr add {node}/32 peer {up}/32 dev {link}",
                f"link set {link} up",
            ],
            f"making the uplink {link}",
        )
        await self._ip(
            self.path,
            [
                "link set lo up",
                # a fixed MAC: a bridge takes its lowest port's otherwise, and pods cache it
                f"link add br0 address 02:42:c6:12:{s:02x}:01 type bridge",
                f"addr add {gw}/24 dev br0",
                "link set br0 up",
                f"addr add {up}/32 peer {node}/32 dev host0",
                "link set host0 up",
                f"route add local {service_net(s)} dev lo",
            ],
            "making the lab namespace's bridge",
        )
        await self._ip(
            None,
            [
                f"route replace {pod_net(s)} via {up} dev {link}",
                f"route replace {service_net(s)} via {up} dev {link}",
                f"route replace blackhole {SUPERNET} metric {BLACKHOLE_METRIC}",
            ],
            "routing the lab's ranges to its uplink",
        )

        def sysctls() -> None:
            for key, value in (
                ("ipv4/ip_forward", "1"),
                ("ipv4/conf/all/send_redirects", "0"),
                ("ipv4/conf/default/send_redirects", "0"),
                ("ipv4/conf/br0/send_redirects", "0"),
            ):
                Path(f"/proc/sys/net/{key}").write_text(value)

        in_netns(self.path, sysctls)

    def udp_socket(self, ip: str, port: int) -> socket.socket:
        """A UDP socket bound in the lab namespace (the cluster DNS server's)."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.setblocking(False)
            return sock

        sock: socket.socket = in_netns(self.path, make)
        return sock

    async def add_pod(self, name: str, directory: Path, ip: str) -> PodLink:
        """A pod's network namespace with ``eth0`` on the bridge, address ``ip``/32."""
        holder = await self._holder(directory, f"{name}/netns")
        self._veths += 1
        veth = f"p{self._veths}"
        gw = gateway_ip(self.slot)
        await self._ip(
            self.path,
            [
                # a reused address: forget the MAC of the pod that held it before
                f"neigh flush to {ip}",
                f"link add {veth} type veth peer name eth0 netns {holder.proc.pid}",
                f"link set {veth} master br0 up",
            ],
            f"making the veth of pod {name}",
        )
        await self._ip(
            holder.path,
            [
                "link set lo up",
                f"addr add {ip}/32 dev eth0",
                "link set eth0 up",
                f"route add {gw} dev eth0 scope link",
                f"route add default via {gw} dev eth0",
            ],
            f"addressing pod {name}",
        )
        return PodLink(holder, veth)

    async def remove_pod(self, link: PodLink, ip: str) -> None:
        """Delete a pod's veth (at once, so its address is free) and end its namespace."""
        with contextlib.suppress(LabError):
            await self._ip(
                self.path,
                [f"link del {link.veth}", f"neigh flush to {ip}"],
                "deleting a pod's veth",
            )
        await link.holder.stop()

    async def update(self, render: Callable[[], str]) -> bool:
        """Apply the ruleset ``render()`` gives now if it changed; True when it was applied."""
        async with self._lock:
            text = render()
            if text == self._applied:
                return False
            await _run(
                [self.nsenter, f"--net={self.path}", "--", self.nft, "-f", "-"],
                text,
                "nft (the lab's Services and NetworkPolicies)",
            )
            self._applied = text
            return True

    async def stop(self) -> None:
        """Delete the uplink, end the lab namespace (with it the bridge, veths and table)."""
        if self.holder is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, remove_host_links, self.dir)
        await self.holder.stop()
        self.holder = None
