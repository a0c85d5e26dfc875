# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: turn raw Kubernetes objects (JSON dicts) into the fact shapes
of DESIGN.md. Pure: imports neither ansible nor kubernetes."""

from __future__ import annotations

BENIGN_WAITING = {"ContainerCreating", "PodInitializing"}


def fmt_address(ip, port):
    """``IP:PORT``; IPv6 as ``[IP]:PORT``."""
    return ("[%s]:%s" % (ip, port)) if ":" in str(ip) else "%s:%s" % (ip, port)


def selector_string(selector):
    """A Service-style ``{k: v}`` selector as a label selector string (sorted)."""
    return ",".join("%s=%s" % (k, v) for k, v in sorted((selector or {}).items()))


def _container_state(status):
    state = status.get("state") or {}
    for name in ("running", "waiting", "terminated"):
        if name in state and state[name] is not None:
            detail = state[name] or {}
            return name, detail.get("reason"), detail.get("exitCode")
    return None, None, None


def _last_state(status):
    last = (status.get("lastState") or {}).get("terminated")
    if not last:
        return None
    return {
        "state": "terminated",
        "reason": last.get("reason"),
        "exit_code": last.get("exitCode"),
        "finished_at": last.get("finishedAt"),
    }


def summarize_pod(pod):
    """One pod as the ``pod_info`` fact (DESIGN.md), with a list of human-readable problems."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready_since = next(
        (
            c.get("lastTransitionTime")
            for c in status.get("conditions") or []
            if c.get("type") == "Ready" and c.get("status") == "True"
        ),
        None,
    )
    problems = []
    containers = []
    for container in spec.get("containers") or []:
        name = container.get("name")
        cstatus = statuses.get(name) or {}
        state, reason, exit_code = _container_state(cstatus)
        last = _last_state(cstatus)
        ports = sorted(
            (
                {
                    "name": p.get("name"),
                    "container_port": p.get("containerPort"),
                    "protocol": p.get("protocol") or "TCP",
                }
                for p in container.get("ports") or []
            ),
            key=lambda p: (p["container_port"] or 0, p["protocol"]),
        )
        restarts = int(cstatus.get("restartCount") or 0)
        entry = {
            "name": name,
            "image": container.get("image"),
            "ready": bool(cstatus.get("ready")),
            "started": bool(cstatus.get("started")),
            "restart_count": restarts,
            "state": state,
            "reason": reason,
            "exit_code": exit_code,
            "last_state": last,
            "ports": ports,
        }
        containers.append(entry)
        if state == "waiting" and reason and reason not in BENIGN_WAITING:
            problems.append("container %s: %s" % (name, reason))
        if state == "terminated":
            problems.append("container %s: terminated %s (exit %s)" % (name, reason, exit_code))
        if last and (last["reason"] == "OOMKilled" or last["exit_code"] not in (0, None)):
            problems.append(
                "container %s: last terminated %s (exit %s) at %s"
                % (name, last["reason"], last["exit_code"], last["finished_at"])
            )
        if restarts:
            problems.append("container %s: restarted %d times" % (name, restarts))
    phase = status.get("phase")
    ready = conditions.get("Ready") == "True"
    if phase != "Running":
        problems.append("phase %s" % phase)
    elif not ready:
        problems.append("not Ready")
    if meta.get("deletionTimestamp"):
        # deletionTimestamp is when the grace period ends (set at the delete request to
        # now + grace), not when the delete was asked for
        problems.append("being deleted (due by %s)" % meta["deletionTimestamp"])
    pod_ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    if not pod_ips and status.get("podIP"):
        pod_ips = [status["podIP"]]
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "phase": phase,
        "ready": ready,
        "pod_ip": status.get("podIP"),
        "pod_ips": pod_ips,
        "node": spec.get("nodeName"),
        "labels": meta.get("labels") or {},
        "creation_timestamp": meta.get("creationTimestamp"),
        "ready_since": ready_since,
        "deletion_timestamp": meta.get("deletionTimestamp"),
        "restarts": sum(c["restart_count"] for c in containers),
        "containers": containers,
        "problems": problems,
    }


def sort_pods(pods):
    """Pods sorted by namespace, then name."""
    return sorted(pods, key=lambda p: (p.get("namespace") or "", p.get("name") or ""))


def resolve_target_port(target_port, port, pods):
    """Resolve a Service port's targetPort against each pod's containerPorts.

    ``target_port`` may be a number, a numeric string, a name or None (then ``port``).
    Returns ``[{pod: ns/name, port: int|None}]``. Kubernetes forwards a numeric targetPort
    whether or not a container declares it, so a number always resolves (``declared_ports``
    tells whether it is declared); a name resolves to the containerPort of that name, or to
    None when the pod has no port of that name.
    """
    target = port if target_port in (None, "") else target_port
    resolved = []
    for pod in pods:
        ref = "%s/%s" % (pod["namespace"], pod["name"])
        if isinstance(target, int) or str(target).isdigit():
            resolved.append({"pod": ref, "port": int(target)})
            continue
        found = None
        for container in pod["containers"]:
            for cport in container["ports"]:
                if cport["name"] == target:
                    found = cport["container_port"]
        resolved.append({"pod": ref, "port": found})
    return resolved


def declared_ports(pod):
    """All containerPort numbers a pod declares."""
    return {p["container_port"] for c in pod["containers"] for p in c["ports"]}


def summarize_endpoints(slices):
    """Flatten EndpointSlices into the ``service_info.endpoints`` list (sorted)."""
    endpoints = []
    for eps in slices:
        slice_name = (eps.get("metadata") or {}).get("name")
        ports = eps.get("ports") or [{"name": None, "port": None}]
        for endpoint in eps.get("endpoints") or []:
            cond = endpoint.get("conditions") or {}
            ready = cond.get("ready")
            ready = True if ready is None else bool(ready)  # nil means ready (API docs)
            serving = cond.get("serving")
            serving = ready if serving is None else bool(serving)
            terminating = bool(cond.get("terminating"))
            ref = endpoint.get("targetRef") or {}
            target = (
                "%s/%s"
                % (
                    ref.get("namespace") or (eps.get("metadata") or {}).get("namespace"),
                    ref.get("name"),
                )
                if ref.get("kind", "Pod") == "Pod" and ref.get("name")
                else None
            )
            for ip in endpoint.get("addresses") or []:
                for port in ports:
                    number = port.get("port")
                    endpoints.append(
                        {
                            "address": fmt_address(ip, number) if number is not None else ip,
                            "ip": ip,
                            "port": number,
                            "port_name": port.get("name"),
                            "ready": ready,
                            "serving": serving,
                            "terminating": terminating,
                            "target": target,
                            "slice": slice_name,
                        }
                    )
    return sorted(endpoints, key=lambda e: (e["address"], e["port_name"] or "", e["slice"] or ""))


def missing_service(namespace, name):
    """The fact for a Service that does not exist."""
    return {
        "namespace": namespace,
        "name": name,
        "exists": False,
        "type": None,
        "cluster_ip": None,
        "headless": False,
        "creation_timestamp": None,
        "selector": {},
        "ports": [],
        "matching_pods": [],
        "selector_matches": False,
        "endpoints": [],
        "ready_addresses": [],
        "not_ready_addresses": [],
        "terminating_addresses": [],
        "port_mismatches": [],
    }


def service_facts(svc, pods, slices):
    """Build the ``service`` fact from the raw Service, its summarized pods and its slices."""
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    ports, mismatches = [], []
    for port in spec.get("ports") or []:
        target = port.get("targetPort")
        resolved = resolve_target_port(target, port.get("port"), pods)
        ports.append(
            {
                "name": port.get("name"),
                "port": port.get("port"),
                "protocol": port.get("protocol") or "TCP",
                "target_port": target,
                "resolved_target_ports": resolved,
            }
        )
        lacking = []
        for pod, res in zip(pods, resolved):
            declared = declared_ports(pod)
            if res["port"] is None or (declared and res["port"] not in declared):
                lacking.append(res["pod"])
        if lacking:
            mismatches.append(
                {
                    "port": port.get("port"),
                    "target_port": target,
                    "pods_without_it": sorted(lacking),
                }
            )
    endpoints = summarize_endpoints(slices)
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "exists": True,
        "type": spec.get("type") or "ClusterIP",
        "cluster_ip": None if headless or not cluster_ip else cluster_ip,
        "headless": headless,
        "creation_timestamp": meta.get("creationTimestamp"),
        "selector": spec.get("selector") or {},
        "ports": ports,
        "matching_pods": ["%s/%s" % (p["namespace"], p["name"]) for p in pods],
        "selector_matches": bool(pods),
        "endpoints": endpoints,
        "ready_addresses": sorted(
            {e["address"] for e in endpoints if e["ready"] and not e["terminating"]}
        ),
        "not_ready_addresses": sorted(
            {e["address"] for e in endpoints if not e["ready"] and not e["terminating"]}
        ),
        "terminating_addresses": sorted({e["address"] for e in endpoints if e["terminating"]}),
        "port_mismatches": mismatches,
    }


def selector_matches(selector, labels):
    """Whether a Service's equality selector ``{k: v}`` matches a label dict (empty: no)."""
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def namespace_service_facts(services, slices, pods):
    """``service`` facts of every Service of a namespace from its raw objects.

    ``services``/``slices`` raw; ``pods`` summarized (summarize_pod). Pods are matched to
    Services by their selector here, slices by the label ``kubernetes.io/service-name``.
    """
    facts = []
    for svc in services:
        name = (svc.get("metadata") or {}).get("name")
        selector = (svc.get("spec") or {}).get("selector") or {}
        chosen = sort_pods([p for p in pods if selector_matches(selector, p["labels"])])
        owned = [
            s
            for s in slices
            if ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
            == name
        ]
        facts.append(service_facts(svc, chosen, owned))
    return facts
