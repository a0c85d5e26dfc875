# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare the addresses a proxy dialled with what the cluster has now.

Pure Python (standard library only). The index is built from the ``service`` and ``pods``
facts of DESIGN.md (service_info / pod_info); it is a plain dict, safe to serialise.

Address states (most specific first): ``ready_endpoint``, ``not_ready_endpoint``,
``terminating_endpoint``, ``cluster_ip``, ``pod_ip`` (a current pod that is not an
endpoint for that port), ``group_name`` (not an IP: ``no live upstreams`` logs the
upstream group's name), ``external`` (nothing current has that IP, and it lies outside
every range the cluster's known addresses are in: see :func:`classify_address`),
``stale`` (nothing current has that IP, though it lies in the cluster's ranges).

Public API: :func:`split_address`, :func:`build_index`, :func:`classify_address`,
:func:`correlate_addresses`, :func:`current_addresses`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import ipaddress
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    EndpointFact,
    PodFact,
    ServiceFact,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import parse_time

STATES = (
    "ready_endpoint",
    "not_ready_endpoint",
    "terminating_endpoint",
    "cluster_ip",
    "pod_ip",
    "group_name",
    "external",
    "stale",
)
# How far around a known address the cluster's ranges are assumed to reach: pod CIDRs are
# commonly a /16 (split per node), Service CIDRs a /12 (10.96.0.0/12); IPv6 /48 and /108.
_POD_PREFIX = {4: 16, 6: 48}
_SERVICE_PREFIX = {4: 12, 6: 108}
_RANK = {state: index for index, state in enumerate(STATES)}


def _norm_ip(text):
    """Return the canonical text of an IP address, or None if ``text`` is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def split_address(address):
    """Split ``"IP:PORT"`` / ``"[IPv6]:PORT"`` / ``"IP"`` into ``(ip, port)``.

    ``ip`` is canonical (``ipaddress``) or None when the address is not an IP (an upstream
    group name); ``port`` is an int or None.
    """
    if not isinstance(address, str):
        return None, None
    text = address.strip()
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""  # bare IPv4, bare IPv6 or a name
    return _norm_ip(host), int(port) if port.isdigit() else None


def _network(ip, prefixes):
    """The network of ``prefixes[version]`` bits around ``ip`` (as text)."""
    addr = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network("%s/%d" % (ip, prefixes[addr.version]), strict=False))


def _format_address(ip, port):
    if ip is None:
        return None
    host = "[%s]" % ip if ":" in ip else ip
    return host if port is None else "%s:%d" % (host, port)


def literal_address(host, port):
    """``"IP:PORT"`` (canonical, IPv6 bracketed) when ``host`` is an IP literal, else None
    (a name, a unix socket): the form a dialled address and an endpoint take."""
    ip = _norm_ip(host) if isinstance(host, str) and not host.startswith("unix:") else None
    return _format_address(ip, port if isinstance(port, int) else None) if ip else None


def config_literals(upstream_hosts) -> dict[str, str]:
    """The IP-literal upstream addresses of a replica's config on disk (its ``upstream_hosts``,
    re-read at diagnosis time), each with where it is written (``upstream U at path:line``):
    what a controller renders into ``upstream {}``. A vanished one there is re-read by a reload."""
    found: dict[str, str] = {}
    for host in upstream_hosts:
        address = None if host["runtime_resolved"] else literal_address(host["host"], host["port"])
        if address is not None:
            where = ["upstream %s" % host["upstream"] if host["upstream"] else host["source"]]
            if host["file"]:
                where.append("at %s" % host["file"])
            found.setdefault(address, " ".join(where))
    return found


def _endpoint_state(endpoint: EndpointFact) -> str:
    if endpoint["terminating"]:
        return "terminating_endpoint"
    if endpoint["ready"]:
        return "ready_endpoint"
    return "not_ready_endpoint"


def build_index(
    services: ServiceFact | list[ServiceFact] | None = None, pods: list[PodFact] | None = None
) -> dict[str, t.Any]:
    """Build the index of current cluster addresses.

    ``services``: one ``service`` fact (service_info) or a list of them; ``pods``: the
    ``pods`` fact (pod_info) or a list of pods from several calls, complete facts of the shapes
    in ``facts.py`` (module outputs, or ``facts.normalize_*``). Missing parts (None) are
    allowed; the index then knows less (``sources`` says what it was built from). Returns
    ``{by_ip: {ip: [record]}, networks: [cidr], ready_addresses: [..], sources: {services:
    n, pods: n}}``; a record is ``{state, port, ports, objects: [str]}``; ``networks`` are
    the ranges assumed around the known pod (/16) and ClusterIP (/12) addresses.
    """
    by_ip: dict[str, list[dict]] = {}
    ready: set[str] = set()
    networks: set[str] = set()
    service_count = pod_count = 0

    def add(ip, record):
        if ip:
            by_ip.setdefault(ip, []).append(record)
            prefixes = _SERVICE_PREFIX if record["state"] == "cluster_ip" else _POD_PREFIX
            networks.add(_network(ip, prefixes))

    for service in [services] if isinstance(services, dict) else services or []:
        if not service["exists"]:
            continue
        service_count += 1
        ns, name = service["namespace"], service["name"]
        svc_obj = "Service %s/%s" % (ns, name)
        ports = sorted({p["port"] for p in service["ports"] if p["port"]})
        cluster_ip = service["cluster_ip"]
        if cluster_ip and cluster_ip != "None":
            add(
                _norm_ip(cluster_ip),
                {"state": "cluster_ip", "port": None, "ports": ports, "objects": [svc_obj]},
            )
        for endpoint in service["endpoints"]:
            ip, port = _norm_ip(endpoint["ip"]), endpoint["port"]
            if not ip:
                ip, port = split_address(endpoint["address"])
            objects = [svc_obj]
            if endpoint["slice"]:
                objects.append("EndpointSlice %s/%s" % (ns, endpoint["slice"]))
            if endpoint["target"]:
                objects.append("Pod %s" % endpoint["target"])
            state = _endpoint_state(endpoint)
            add(
                ip,
                {
                    "state": state,
                    "port": port or None,
                    "ports": [port] if port else [],
                    "objects": objects,
                },
            )
            if state == "ready_endpoint" and ip:
                ready.add(_format_address(ip, port or None))
    seen_pods = set()
    for pod in pods or []:
        key = (pod["namespace"], pod["name"])
        if key in seen_pods:
            continue
        seen_pods.add(key)
        pod_count += 1
        ports = sorted(
            {
                p["container_port"]
                for c in pod["containers"]
                for p in c["ports"]
                if p["container_port"]
            }
        )
        ips = {_norm_ip(ip) for ip in pod["pod_ips"] + [pod["pod_ip"]]}
        for ip in sorted(ip for ip in ips if ip):
            add(
                ip,
                {
                    "state": "pod_ip",
                    "port": None,
                    "ports": ports,
                    "objects": ["Pod %s/%s" % key],
                    "phase": pod["phase"],
                    "ready": pod["ready"],
                    "deleting": bool(pod["deletion_timestamp"]),
                    "created": pod["creation_timestamp"],
                },
            )
    return {
        "by_ip": by_ip,
        "networks": sorted(networks),
        "ready_addresses": sorted(a for a in ready if a),
        "sources": {"services": service_count, "pods": pod_count},
    }


def current_addresses(index):
    """The ready endpoint addresses (``IP:PORT``) of the index, sorted."""
    return list((index or {}).get("ready_addresses") or [])


def classify_address(address, index):
    """Classify one dialled address against the index.

    Returns ``{address, ip, port, state, objects: [str], port_match: bool | None,
    expected_ports: [int], hints: [str]}``. An IP that belongs to a current pod or Service
    but with another port is NOT ``stale``: its state is ``pod_ip`` (or ``cluster_ip``),
    ``port_match`` is False and a hint names the ports the cluster has there. An IP nothing
    current has is ``stale`` when it lies in a range around the known pod or ClusterIP
    addresses (a replaced pod's old IP), else ``external`` (a host outside the cluster;
    with an empty index nothing can be told apart and it stays ``stale``).
    """
    ip, port = split_address(address)
    result = {
        "address": address,
        "ip": ip,
        "port": port,
        "state": "stale",
        "objects": [],
        "port_match": None,
        "expected_ports": [],
        "hints": [],
    }
    if ip is None:
        result["state"] = "group_name"
        result["hints"].append(
            "%r is not an IP address: an upstream group or host name "
            "(nginx logs the group name for 'no live upstreams')" % address
        )
        return result
    records = ((index or {}).get("by_ip") or {}).get(ip) or []
    if not records:
        networks = (index or {}).get("networks") or []
        if networks and not any(
            ipaddress.ip_address(ip) in ipaddress.ip_network(net) for net in networks
        ):
            result["state"] = "external"
            result["hints"].append(
                "%s is outside every range the cluster's known pods (/16) and Services (/12) "
                "are in (%s): probably a host outside the cluster, not a replaced pod"
                % (ip, ", ".join(networks))
            )
        return result

    def fits(record):
        if port is None:
            return True
        if record["state"] in ("cluster_ip", "pod_ip"):
            return not record["ports"] or port in record["ports"]
        return record["port"] is None or record["port"] == port

    matching = [r for r in records if fits(r)]
    expected = sorted({p for r in records for p in ([r["port"]] if r["port"] else r["ports"])})
    objects = []
    for record in records:
        for obj in record["objects"]:
            if obj not in objects:
                objects.append(obj)
    result["objects"] = sorted(objects)
    result["expected_ports"] = expected
    if matching:
        best = min(matching, key=lambda r: _RANK[r["state"]])
        result["state"] = best["state"]
        result["port_match"] = True if port is not None else None
    else:
        non_endpoint = [r for r in records if r["state"] in ("cluster_ip", "pod_ip")]
        if any(r["state"] == "cluster_ip" for r in records):
            result["state"] = "cluster_ip"
        else:
            result["state"] = "pod_ip"
        result["port_match"] = False
        result["hints"].append(
            "%s belongs to %s but port %s is not one of its ports (%s)"
            % (
                ip,
                ", ".join(result["objects"]),
                port,
                ", ".join(str(p) for p in expected) or "none declared",
            )
        )
        if not non_endpoint:
            result["hints"].append("the IP is only known as an endpoint for another port")
    for record in records:
        if record["state"] == "pod_ip" and record.get("deleting"):
            result["hints"].append("%s is being deleted" % record["objects"][0])
        elif record["state"] == "pod_ip" and record.get("phase") not in (None, "Running"):
            result["hints"].append("%s is in phase %s" % (record["objects"][0], record["phase"]))
    return result


def reused_since(found, index, last_reload):
    """The pods now holding a ``pod_ip`` address that were all created after ``last_reload``
    (nginx resolved the address before any of them existed, so it meant another, gone pod:
    the address was reused), else []. Creation times are whole seconds: a pod created in the
    reload's own second counts as not after it (nothing is called reused that may not be)."""
    reload_time = parse_time(last_reload)
    if found["state"] != "pod_ip" or reload_time is None:
        return []
    holders = [
        r
        for r in ((index or {}).get("by_ip") or {}).get(found["ip"]) or []
        if r["state"] == "pod_ip"
    ]
    created = [parse_time(r.get("created")) for r in holders]
    if not holders or any(t is None or t <= reload_time for t in created):
        return []
    return sorted(obj for r in holders for obj in r["objects"])


def correlate_addresses(upstream_addresses, index, last_reload=None):
    """Classify nginx_log.summarize()'s ``upstream_addresses`` against the index.

    Returns ``{upstream_addresses: [{address, state, objects, port_match, hints, count,
    count_after_reload, last_seen, after_reload}], stale_addresses: [..]}`` where
    ``stale_addresses`` are those dialled after the last reload that nothing current has,
    or that only pods created after ``last_reload`` (the replica's) hold now: a reused
    address, which nginx resolved when it was another pod's (state ``stale``, a hint names
    the new holder).
    """
    out = []
    stale = []
    for item in upstream_addresses or []:
        if not isinstance(item, dict) or not item.get("address"):
            continue
        found = classify_address(item["address"], index)
        reused = reused_since(found, index, last_reload)
        if reused:
            found["hints"].append(
                "%s is reused: %s holds it now, created after the proxy's last reload (%s), so "
                "nginx resolved it when another pod had it"
                % (found["ip"], ", ".join(reused), last_reload)
            )
            found["state"], found["port_match"] = "stale", None
        entry = {
            "address": item["address"],
            "state": found["state"],
            "objects": found["objects"],
            "port_match": found["port_match"],
            "hints": found["hints"],
            "count": item.get("count", 0),
            "count_after_reload": item.get("count_after_reload", 0),
            "last_seen": item.get("last_seen"),
            "after_reload": bool(item.get("after_reload")),
            "signatures": item.get("signatures") or {},
        }
        out.append(entry)
        if entry["state"] == "stale" and entry["after_reload"]:
            stale.append(entry["address"])
    out.sort(key=lambda e: e["address"])
    return {"upstream_addresses": out, "stale_addresses": sorted(stale)}
