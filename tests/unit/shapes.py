"""Complete facts of the shapes in plugins/module_utils/facts.py, for unit tests.

Each builder returns every key its TypedDict declares, with neutral values, updated by the
keyword arguments: tests state only what matters to them, and the core may read every key a
producer always writes.
"""

from __future__ import annotations

import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils import facts


def upstream_host(host: str = "web", **kw: t.Any) -> dict:
    fact = {
        "host": host,
        "port": 8080,
        "source": "proxy_pass",
        "upstream": None,
        "runtime_resolved": False,
        "service": None,
        "pod": None,
        "file": None,
    }
    fact.update(kw)
    return fact


def proxy(name: str = "nginx-0", namespace: str = "edge", **kw: t.Any) -> dict:
    fact = {
        "namespace": namespace,
        "name": name,
        "pod_ip": "10.0.9.1",
        "container": "nginx",
        "ready": True,
        "phase": "Running",
        "config_ok": True,
        "listen_ports": [80],
        "master_pid": 1,
    }
    fact.update(kw)
    return dict(facts.normalize_proxy(fact))


def endpoint(address: str, target: str | None = None, ready: bool = True, **kw: t.Any) -> dict:
    ip, _sep, port = address.rpartition(":")
    fact = {
        "address": address,
        "ip": ip,
        "port": int(port),
        "port_name": "http",
        "ready": ready,
        "serving": ready,
        "terminating": False,
        "target": target,
        "slice": "web-abcde",
    }
    fact.update(kw)
    return fact


def service(name: str = "web", namespace: str = "app", **kw: t.Any) -> dict:
    fact = {
        "namespace": namespace,
        "name": name,
        "exists": True,
        "type": "ClusterIP",
        "cluster_ip": "10.96.0.10",
        "headless": False,
        "creation_timestamp": "2026-11-25T00:00:00Z",
        "selector": {"app": name},
        "ports": [],
        "matching_pods": [],
        "selector_matches": True,
        "endpoints": [],
        "ready_addresses": [],
        "not_ready_addresses": [],
        "terminating_addresses": [],
        "port_mismatches": [],
    }
    fact.update(kw)
    return fact


def pod(name: str = "web-0", namespace: str = "app", **kw: t.Any) -> dict:
    fact = {
        "namespace": namespace,
        "name": name,
        "uid": "uid-" + name,
        "phase": "Running",
        "ready": True,
        "pod_ip": "10.0.0.7",
        "pod_ips": ["10.0.0.7"],
        "node": "node-1",
        "labels": {},
        "creation_timestamp": None,
        "ready_since": None,
        "deletion_timestamp": None,
        "restarts": 0,
        "containers": [],
        "problems": [],
    }
    fact.update(kw)
    return fact


def probe(
    name: str = "nginx-0", namespace: str = "edge", status: int | None = 200, **kw: t.Any
) -> dict:
    fact = {
        "namespace": namespace,
        "name": name,
        "url": "http://web.app:8080/",
        "tool": "curl",
        "status": status,
        "ok": status == 200,
        "error": None,
        "time_total": 0.01,
        "rc": 0,
        "ran": True,
    }
    fact.update(kw)
    return fact
