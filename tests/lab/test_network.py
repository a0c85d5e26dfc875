"""The lab's network: its rules (pure), the ruleset as nft reads it, and the real thing:
isolation, Services by the kernel, policies, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from badlab import network
from badlab.fixture import stop_lab
from badlab.network import NetPod, PolicyChains, ServiceRule

IP = network.tool("ip")
NFT = network.tool("nft")


# ----------------------------------------------------------------------------- pure parts


def test_routes_of_the_machine_that_overlap_the_lab_range_are_refused():
    routes = [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "192.0.2.0/24", "dev": "eth0"},
        {"type": "blackhole", "dst": "198.18.0.0/15"},
        {"dst": "198.18.20.0/24", "dev": "badlab20", "gateway": "198.18.20.3"},
        {"dst": "198.18.4.0/22", "dev": "tun0"},
        {"type": "local", "dst": "198.19.7.1", "dev": "eth1"},
        {"dst": "10.0.0.0/8", "dev": "eth2"},
    ]
    assert network.foreign_routes(routes) == [
        "198.18.4.0/22 dev tun0",
        "local 198.19.7.1 dev eth1",
    ]


def test_only_a_stopped_labs_vanishing_link_is_waited_for():
    # As `ip -j route` printed them while a stopped lab's namespace was being destroyed (its
    # uplink already gone, named by index): wait; a real device among them: refuse at once.
    vanishing = network.foreign_routes(
        [
            {"dst": "198.18.71.0/24", "dev": "if2766"},
            {"type": "local", "dst": "198.18.71.2", "dev": "if2766"},
        ]
    )
    assert vanishing == ["198.18.71.0/24 dev if2766", "local 198.18.71.2 dev if2766"]
    assert network.only_vanishing_links(vanishing)
    assert not network.only_vanishing_links([*vanishing, "198.18.4.0/22 dev tun0"])
    assert not network.only_vanishing_links(["198.18.4.0/22 dev iface1"])
    assert not network.only_vanishing_links([])


def test_policies_compile_to_admitted_peers_and_ports():
    pods = [
        NetPod("198.18.30.10", "shop", {"app": "web"}, {"http": 8080}),
        NetPod("198.18.30.11", "shop", {"app": "proxy"}, {"http": 80}),
        NetPod("198.18.30.12", "monitoring", {"app": "prom"}, {}),
    ]
    labels = {ns: {"kubernetes.io/metadata.name": ns} for ns in ("shop", "monitoring")}
    policies = [
        {
            "name": "web-from-monitoring",
            "namespace": "shop",
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                                }
                            }
                        ],
                        "ports": [{"port": "http"}],
                    },
                    {"from": [{"podSelector": {"matchLabels": {"app": "nobody"}}}]},
                ],
            },
        },
        {
            "name": "proxy-egress",
            "namespace": "shop",
            "spec": {
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["proxy"]}]
                },
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"podSelector": {}}], "ports": [{"port": "http"}]},
                    {"ports": [{"protocol": "UDP", "port": 53}]},
                    {"to": [{"ipBlock": {"cidr": "198.19.0.0/16", "except": ["198.19.0.0/17"]}}]},
                ],
            },
        },
    ]
    chains = network.compile_policies(policies, pods, labels)
    # web: isolated for ingress (policyTypes defaults to Ingress), admits prom on its http port;
    # a rule whose peers select nobody admits nobody
    assert chains.ingress == {
        "198.18.30.10": [(["198.18.30.12"], [("tcp", 8080, 8080)]), ([], None)]
    }
    # proxy: isolated for egress only; its named port resolved on each peer pod of shop
    assert chains.egress == {
        "198.18.30.11": [
            (["198.18.30.10"], [("tcp", 8080, 8080)]),
            (["198.18.30.11"], [("tcp", 80, 80)]),
            (None, [("udp", 53, 53)]),
            (["198.19.128.0/17"], None),
        ]
    }


def _ruleset(vanished: str = "refuse") -> str:
    chains = PolicyChains(
        {"198.18.30.10": [(["198.18.30.12"], [("tcp", 8080, 8080)]), ([], None)]},
        {"198.18.30.11": [(None, [("udp", 53, 53)])]},
    )
    services = [
        ServiceRule(
            "shop/web:80", "198.19.30.20", 80, [("198.18.30.10", 8080), ("198.18.30.13", 8080)]
        ),
        ServiceRule("shop/none:80", "198.19.30.21", 80, []),
    ]
    return network.render_ruleset(
        30, ["198.18.30.10", "198.18.30.11", "198.18.30.13"], services, chains, vanished
    )


def test_the_ruleset_has_kube_proxys_shape():
    text = _ruleset()
    # one transaction that replaces the table
    assert text.startswith("table ip badlab\ndelete table ip badlab\ntable ip badlab {\n")
    # per ClusterIP port a dispatch to an endpoint chain per new connection, DNAT there
    assert "ip daddr . tcp dport vmap { 198.19.30.20 . 80 : jump svc0 }" in text
    assert "numgen inc mod 2 vmap { 0 : jump svc0-ep0, 1 : jump svc0-ep1 }" in text
    assert "meta l4proto tcp dnat to 198.18.30.13:8080" in text
    # hairpin: an endpoint dialling its own Service is masqueraded
    assert "ip saddr 198.18.30.10 meta mark set 0x4000" in text
    # no ready endpoint: rejected with a reset (the client's 111)
    assert "ip daddr . tcp dport { 198.19.30.21 . 80 } reject with tcp reset" in text
    # an isolated pod: the node (kubelet) always, then what the rules admit, else dropped (110)
    ingress = text.split("chain ingress-198-18-30-10 {")[1].split("\n  }")[0]
    assert ingress.split("\n")[1:] == [
        "    ip saddr 198.18.30.2 return",
        "    ip saddr { 198.18.30.12 } tcp dport { 8080 } return",
        "    drop",
    ]
    assert "udp dport { 53 } return" in text
    # live addresses: the pods, the gateway, the node, the uplink; anything else vanished
    assert "elements = { 198.18.30.1, 198.18.30.2, 198.18.30.3, 198.18.30.10," in text
    assert (
        "ip daddr 198.18.30.0/24 ip daddr != @live meta l4proto tcp reject with tcp reset" in text
    )
    assert "ip daddr 198.18.30.0/24 ip daddr != @live drop" in _ruleset("timeout")
    assert (
        "ip daddr 198.18.30.0/24 ip daddr != @live reject with icmp type host-unreachable"
        in _ruleset("unreachable")
    )
    with pytest.raises(ValueError, match="vanished"):
        _ruleset("vanish")


@pytest.mark.tools
@pytest.mark.parametrize("vanished", network.VANISHED_CHOICES)
def test_nft_accepts_the_ruleset_twice_in_a_fresh_namespace(vanished, tmp_path):
    """The rendered text loads (and replaces itself) in a network namespace of its own."""
    rules = tmp_path / "rules.nft"
    rules.write_text(_ruleset(vanished))
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", f'{NFT} -f "$1" && {NFT} -f "$1" && {NFT} list tables']
        + ["sh", str(rules)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "table ip badlab"


# ----------------------------------------------------------------------------- the real network


def _host_state() -> dict[str, str]:
    """What the host shows of named network namespaces and nftables tables (the lab makes
    neither on the host; its links are checked per slot by _leftovers: other labs may run)."""
    return {
        "netns": subprocess.run([IP, "netns", "list"], capture_output=True, text=True).stdout,
        "nft": subprocess.run([NFT, "list", "tables"], capture_output=True, text=True).stdout,
    }


def _exec(lab, pod: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return lab.kubectl("exec", "-n", "open-webui", pod, "--", *argv, timeout=timeout)


def _leftovers(lab_dir: Path, slot: int) -> list[str]:
    found = []
    if Path(f"/sys/class/net/{network.host_link(slot)}").exists():
        found.append(f"link {network.host_link(slot)}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(lab_dir) or cwd.startswith(f"{lab_dir}/"):
                found.append(f"process {entry.name} in {cwd}")
    return found


def _blackholed(ip: str) -> None:
    routes = json.loads(
        subprocess.run(
            [IP, "-j", "route", "show", str(network.SUPERNET)], capture_output=True, text=True
        ).stdout
    )
    assert {"type": "blackhole", "dst": str(network.SUPERNET)}.items() <= routes[0].items()
    got = subprocess.run([IP, "route", "get", ip], capture_output=True, text=True)
    # the kernel answers a lookup that ends in a blackhole route with EINVAL
    assert got.returncode != 0 and "Invalid argument" in got.stderr, got


@pytest.mark.lab
def test_pods_reach_nothing_outside_and_the_lab_leaves_nothing(lab_factory, tmp_path):
    before = _host_state()
    lab = lab_factory("healthy")
    net = lab.info["network"]
    slot = lab.info["slot"]
    proxy_ip = lab.info["pods"]["open-webui/nginx-proxy-0"]["ip"]
    assert proxy_ip.startswith(f"198.18.{slot}.") and net["pod_range"] == f"198.18.{slot}.0/24"
    assert all(ip.startswith(f"198.19.{slot}.") for ip in lab.info["cluster_ips"].values())
    # inside a pod: its own address on eth0, its own loopback, the gateway as its only way out
    addr = _exec(lab, "nginx-proxy-0", "ip", "-4", "-o", "addr")
    assert f"eth0    inet {proxy_ip}/32" in addr.stdout.replace("\\", ""), addr
    # an address outside the lab (the machine's own, a documentation address) fails at once
    own = [
        r["prefsrc"]
        for r in json.loads(
            subprocess.run([IP, "-j", "route"], capture_output=True, text=True).stdout
        )
        if r.get("prefsrc") and not r.get("dev", "").startswith("badlab")
    ]
    for outside in [*own[:1], "203.0.113.7"]:
        started = time.monotonic()
        got = _exec(lab, "nginx-proxy-0", "curl", "-sS", "-m", "5", f"http://{outside}:80/")
        took = time.monotonic() - started
        assert got.returncode != 0 and "Couldn't connect" in got.stderr + got.stdout, got
        assert took < 3, f"connect to {outside} took {took:.1f} s: it must fail at once"
    # the pod answers through its Service, by the kernel's DNAT
    assert lab.http_status() == 200
    ruleset = subprocess.run(
        ["nsenter", f"--net={net['netns']}", NFT, "list", "table", "ip", "badlab"],
        capture_output=True,
        text=True,
    )
    assert f"{lab.info['cluster_ips']['open-webui/nginx-proxy']} . 80 : jump" in ruleset.stdout
    # down: nothing of the lab is left on the host, and its addresses are blackholed
    stop_lab(lab.dir)
    assert _leftovers(lab.dir, slot) == []
    assert _host_state() == before
    _blackholed(proxy_ip)


@pytest.mark.lab
def test_a_killed_daemon_leaves_nothing(lab_factory):
    before = _host_state()
    lab = lab_factory("stale_upstream")
    slot = lab.info["slot"]
    os.kill(lab.info["daemon_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _leftovers(lab.dir, slot) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(lab.dir, slot) == []
    assert _host_state() == before
    _blackholed(lab.info["pods"]["open-webui/open-webui-0"]["ip"])


@pytest.mark.lab
def test_a_policy_drops_and_a_service_without_endpoints_is_refused_by_the_kernel(lab_factory):
    blocked = lab_factory("network_blocked")
    app_ip = blocked.info["pods"]["open-webui/open-webui-0"]["ip"]
    # from the proxy pod (not admitted): no answer at all, the connect times out
    got = _exec(blocked, "nginx-proxy-0", "curl", "-sS", "-m", "1", f"http://{app_ip}:8080/")
    assert got.returncode == 28, got  # curl: operation timed out
    # from the node (the kubelet's probes, the lab daemon): admitted, as in Kubernetes
    assert blocked.http_status(f"http://{app_ip}:8080/") == 200
    empty = lab_factory("no_endpoints")
    ip = empty.info["cluster_ips"]["open-webui/open-webui"]
    started = time.monotonic()
    got = _exec(empty, "nginx-proxy-0", "curl", "-sS", "-m", "5", f"http://{ip}:8080/")
    assert got.returncode == 7 and "Couldn't connect" in got.stderr, got  # refused
    assert time.monotonic() - started < 3
