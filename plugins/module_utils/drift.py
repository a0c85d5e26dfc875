# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upstream drift: does each proxy replica still dial what the Services' endpoints are now?

Pure Python: imports neither Ansible nor Kubernetes. Used by playbooks/drift_check.yml through
the ``badgateway.k8s.upstream_drift`` filter.

nginx resolves an upstream host name once, when it loads its config. A replica has drifted when

- its log shows it dialled, since its last reload, an address nothing in the cluster has any
  more (``stale_addresses`` of proxy_info), or
- it proxies to a name that resolves to pod IPs (a headless Service, or a pod's DNS name) and a
  ready endpoint of that Service belongs to a pod created AFTER the replica's last reload: the
  replica cannot know that address. This catches the seed incident before any user request.

A ClusterIP Service name cannot drift: kube-proxy follows the endpoints.
"""

from __future__ import annotations

import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (
    PodFact,
    ProxyFact,
    ServiceFact,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import config_literals
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import parse_time


def _reload_command(proxy: ProxyFact) -> str:
    """The reload of the replica's proxy kind, as a kubectl command."""
    container = proxy["container"]
    exec_in = "kubectl exec -n %s %s%s --" % (
        proxy["namespace"],
        proxy["name"],
        (" -c %s" % container) if container else "",
    )
    if proxy["kind"] == "haproxy":
        return "%s kill -USR2 %s (haproxy's master-worker reload; haproxy -c first)" % (
            exec_in,
            proxy["master_pid"] or "<master PID>",
        )
    return "%s nginx -s reload" % exec_in


def replica_drift(
    proxy: ProxyFact, services: dict[str, ServiceFact], pods: dict[str, PodFact]
) -> dict[str, t.Any]:
    """Judge one proxy replica.

    ``services``: dict ``"ns/name"`` -> service_info's ``service``; ``pods``: dict ``"ns/name"``
    -> pod_info's pod (for creation times). Returns a dict with ``status`` ``ok``, ``drift`` or
    ``could_not_check``, the stale and current addresses, reasons and the fix command.
    """
    who = "%s/%s" % (proxy["namespace"], proxy["name"])
    result: dict[str, t.Any] = {
        "replica": who,
        "kind": proxy["kind"] or None,
        "status": "ok",
        "last_reload": proxy["last_reload"],
        "stale_addresses": sorted(proxy["stale_addresses"]),
        "unknown_addresses": [],
        "current_addresses": [],
        "reasons": [],
        "fix": None,
        "unread": [],
    }
    read_errors = [str(v) for _k, v in sorted(proxy["read_errors"].items()) if v]
    if read_errors and not result["stale_addresses"]:
        # What could not be read is not evidence of drift, nor of its absence.
        result["status"] = "could_not_check"
        result["reasons"] = read_errors
        return result
    if proxy["problems"] and proxy["last_reload"] is None and proxy["config_ok"] is None:
        result["status"] = "could_not_check"
        result["reasons"] = list(proxy["problems"])
        return result
    reload_time = parse_time(proxy["last_reload"])
    current = set()
    unknown = set()
    for upstream in proxy["upstream_hosts"]:
        key = upstream["service"]
        if not key:
            continue
        svc = services.get(key)
        if svc is None:
            result["reasons"].append(
                "Service %s, which %s proxies to, could not be read" % (key, who)
            )
            continue
        ready = svc["ready_addresses"]
        current.update(ready)
        # A ClusterIP name cannot drift (kube-proxy follows the endpoints); a headless name or
        # a pod's own DNS name resolves to pod IPs, fixed at the replica's last reload.
        if not svc["headless"] and not upstream["pod"]:
            continue
        for endpoint in svc["endpoints"]:
            target = endpoint["target"]
            pod = pods.get(target) if target and endpoint["ready"] else None
            if pod is None:
                continue
            created = parse_time(pod["creation_timestamp"])
            if reload_time is not None and created is not None and created > reload_time:
                unknown.add(endpoint["address"])
                result["reasons"].append(
                    "%s resolves %s to pod IPs; pod %s (%s) was created at %s, after this replica's last reload at %s"
                    % (
                        who,
                        upstream["host"],
                        target,
                        endpoint["address"],
                        pod["creation_timestamp"],
                        proxy["last_reload"],
                    )
                )
    result["current_addresses"] = sorted(current)
    result["unknown_addresses"] = sorted(unknown)
    if result["stale_addresses"]:
        result["reasons"].insert(
            0,
            "%s dialled %s since its last reload; nothing in the cluster has %s any more"
            % (
                who,
                ", ".join(result["stale_addresses"]),
                "them" if len(result["stale_addresses"]) > 1 else "it",
            ),
        )
    result["unread"] = read_errors
    if read_errors:
        result["reasons"].extend("could not read: %s" % e for e in read_errors)
    if result["stale_addresses"] or unknown:
        result["status"] = "drift"
        result["fix"] = _reload_command(proxy)
        on_disk = config_literals(proxy["upstream_hosts"])
        in_config = [a for a in result["stale_addresses"] if a in on_disk]
        if in_config:
            # a reload would re-read the same stale config: the fix is where it is written
            result["fix"] = (
                "not a reload: the config on disk still lists %s; make the controller that "
                "renders it write the current endpoints (config_not_applied)"
                % ", ".join("%s (%s)" % (a, on_disk[a]) for a in in_config)
            )
    return result


def upstream_drift(
    proxies: list[ProxyFact] | None,
    services: list[ServiceFact] | dict[str, ServiceFact] | None,
    pods: list[PodFact] | dict[str, PodFact] | None,
) -> dict[str, t.Any]:
    """Judge every replica; return ``{status, replicas, drifted, message}``.

    ``status`` is ``drift`` if any replica drifted, else ``could_not_check`` if any replica could
    not be judged, else ``ok``.
    """
    if isinstance(services, list):
        services = dict(("%s/%s" % (s["namespace"], s["name"]), s) for s in services if s)
    if isinstance(pods, list):
        pods = dict(("%s/%s" % (p["namespace"], p["name"]), p) for p in pods if p)
    replicas = [replica_drift(p, services or {}, pods or {}) for p in proxies or []]
    drifted = [r for r in replicas if r["status"] == "drift"]
    if drifted:
        status = "drift"
        lines = []
        for r in drifted:
            dialled = []
            if r["stale_addresses"]:
                dialled.append("dials stale %s" % ", ".join(r["stale_addresses"]))
            if r["unknown_addresses"]:
                dialled.append("cannot know new %s" % ", ".join(r["unknown_addresses"]))
            lines.append(
                "%s %s; current endpoints %s; fix: %s"
                % (
                    r["replica"],
                    " and ".join(dialled),
                    ", ".join(r["current_addresses"])
                    or ("unknown (could not be read)" if r["unread"] else "none"),
                    r["fix"],
                )
            )
        message = "Upstream drift on %d of %d proxy replicas: %s" % (
            len(drifted),
            len(replicas),
            " | ".join(lines),
        )
    elif not replicas:
        status = "could_not_check"
        message = "No proxy replica to check"
    elif any(r["status"] == "could_not_check" for r in replicas):
        status = "could_not_check"
        message = "Could not check: " + "; ".join(
            "%s: %s" % (r["replica"], ", ".join(r["reasons"]))
            for r in replicas
            if r["status"] == "could_not_check"
        )
    else:
        status = "ok"
        message = "All %d proxy replicas dial the Services' current endpoints" % len(replicas)
    return {
        "status": status,
        "message": message,
        "replicas": replicas,
        "drifted": [r["replica"] for r in drifted],
    }
