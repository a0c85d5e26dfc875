# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: what the proxy_info module does, for the module and for the
controller-side run of the role (``_diagnose``).

Per replica, through the proxy's adapter: its container, config, processes and log (the three
reads at once), then the error log files its config names; every replica at the same time.
Then the cluster's addresses to compare the dialled ones with, read once for every replica:
each namespace's Services and EndpointSlices, and the pods AT the dialled IPs (a field
selector), never the namespace's every pod: unrelated pods cost no call and no byte.
"""

from __future__ import annotations

import functools
import time
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (
    namespace_service_facts,
    summarize_pod,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import (
    k8s_errors_only,
    serial,
    values,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import (
    build_index,
    correlate_addresses,
    split_address,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.facts import normalize_proxy
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError

Runner = t.Callable[
    [t.Sequence[t.Callable[[], t.Any]]], t.List[t.Tuple[t.Any, t.Optional[BaseException]]]
]


def select_proxies(reads, namespace, selector):
    """The proxy pods; K8sError for an unknown namespace or a selector matching nothing."""
    pods = reads.pods(namespace, selector)
    if not pods:
        reads.require_namespace(namespace)
        raise K8sError(
            'no pod in namespace "%s" matches the proxy selector "%s"; check the '
            "labels (kubectl get pods --show-labels)" % (namespace, selector)
        )
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def _new_proxy(pod):
    """The replica's fact before anything is read from inside it: every key, neutral values."""
    meta, status = pod["metadata"], pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return normalize_proxy(
        {
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "pod_ip": status.get("podIP"),
            "ready": conditions.get("Ready") == "True",
            "phase": status.get("phase"),
        }
    )


#: How much further back the log is read, once, when the lines read show only secondary lines.
WIDEN_FACTOR = 10


def reloaded_after(procs, read_at, observed_at):
    """Whether the workers ``procs`` lists (read when ``time.monotonic()`` was ``read_at`` or
    before) started after ``observed_at`` (a ``time.monotonic()``), with no clock shared with the
    pod: they were ``last_reload_age`` seconds old inside the pod when read, and the read ended
    ``read_at - observed_at`` seconds after the observation began here."""
    age = procs.get("last_reload_age")
    if observed_at is None or read_at is None or age is None:
        return False
    return age < read_at - observed_at


def inspect_replica(adapter, pod, params, run: Runner = serial, observed_at=None):
    """Everything read from inside one replica (before correlation), through the proxy's
    adapter (``proxy_adapter.ProxyAdapter``); its config then the log files the config names,
    its processes and its container log are read through ``run`` (the three at once with a
    parallel runner: the files are read even when the container log cannot be, and then unused).

    Each read ends as data or as an entry of ``read_errors`` (part -> message naming the call):
    a failed read of one replica never stops the others, and is never taken for "no errors".
    ``observed_at`` (``time.monotonic()`` when the run began to observe the proxy): the
    summary's ``reloaded_after_observation`` says whether the replica's workers started after
    it (a reload between the observation and these reads, by someone else).
    """
    proxy = _new_proxy(pod)
    ns, name = proxy["namespace"], proxy["name"]
    if proxy["phase"] != "Running":
        proxy["problems"].append("pod is %s: nothing can run in it" % proxy["phase"])
        proxy["read_errors"]["container"] = "pod %s/%s is %s: nothing can run in it" % (
            ns,
            name,
            proxy["phase"],
        )
        return proxy, None
    try:
        container = proxy["container"] = adapter.pick_container(pod, params["container"])
    except K8sError as exc:
        proxy["problems"].append(str(exc))
        proxy["read_errors"]["container"] = str(exc)
        return proxy, None
    own = adapter.adapter_for(ns, name)  # the kind that serves this pod (auto: per pod)
    proxy["kind"] = own.kind
    # what of the log to read: the same window for the container's stream and the log files
    window = {key: params[key] for key in ("tail_lines", "since_seconds", "limit_bytes")}

    def config_then_files():
        """The config, then the log files it names: at the same time as the processes and the
        container log (the config is usually read already, by the observation)."""
        try:
            config_read = adapter.read_config(ns, name, container, params["cluster_domain"])
        except K8sError as exc:  # recorded below; any other exception is a bug, raised
            return (None, exc), own.read_log_files(ns, name, container, None, **window)
        return (config_read, None), own.read_log_files(
            ns, name, container, config_read[0], **window
        )

    (config_and_files, files_error), (procs, procs_error), (log, log_error) = run(
        [
            config_then_files,
            lambda: (adapter.read_processes(ns, name, container), time.monotonic()),
            lambda: adapter.client.read_log(ns, name, container, **window),
        ]
    )
    if files_error is not None:
        raise files_error  # a bug: a failed read of the files is a line of their problems
    (config_read, config_error), files = config_and_files
    config, problem = None, None
    if k8s_errors_only(config_error) is not None:
        proxy["read_errors"]["config"] = "%s: %s" % (own.config_dump_step, config_error)
    else:
        config, problem = config_read
    proxy["config_ok"] = None if "config" in proxy["read_errors"] else config is not None
    if config is not None:
        for key in ("upstream_hosts", "listen_ports", "upstream_keepalive"):
            proxy[key] = config[key]
        proxy["problems"].extend("config: %s" % e for e in config["errors"])
    elif problem:
        proxy["problems"].append(problem)
    if k8s_errors_only(procs_error) is not None:
        proxy["read_errors"]["processes"] = "%s processes: %s" % (own.kind, procs_error)
        procs, procs_read_at = {"master_pid": None, "workers": [], "problem": None}, None
    else:
        procs, procs_read_at = procs
    proxy["master_pid"] = procs["master_pid"]
    proxy["worker_start_times"] = [w["start_time"] for w in procs["workers"]]
    proxy["worker_pids"] = [w["pid"] for w in procs["workers"]]
    proxy["last_reload"] = proxy["worker_start_times"][-1] if procs["workers"] else None
    if procs["problem"]:
        proxy["problems"].append(procs["problem"])
    if k8s_errors_only(log_error) is not None:
        proxy["problems"].append("cannot read the log: %s" % log_error)
        proxy["read_errors"]["log"] = "log of %s/%s (container %s): %s" % (
            ns,
            name,
            container,
            log_error,
        )
        return proxy, None
    text, size, truncated = log
    lines = text.splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    runtime, runtime_problem = None, None
    if config is not None:
        try:
            runtime, runtime_problem = own.read_runtime(ns, name, container, config)
        except K8sError as exc:
            runtime_problem = "%s runtime API: %s" % (own.kind, exc)
    if runtime_problem:
        proxy["problems"].append(runtime_problem)
        proxy["read_errors"]["runtime"] = runtime_problem
    if files["problems"]:
        proxy["problems"].extend(files["problems"])
        proxy["read_errors"]["error_log_file"] = "; ".join(files["problems"])
    proxy["log_files"] = [
        {key: item[key] for key in ("path", "lines_read", "bytes_read", "truncated")}
        for item in files["files"]
    ]
    summarize = functools.partial(
        own.summarize_log,
        reload_time=proxy["last_reload"],
        max_errors=params["max_errors"],
        files=files,
        worker_pids=proxy["worker_pids"],
        runtime=runtime,
    )
    summary = summarize(lines)
    tail = params["tail_lines"]
    if (
        summary["secondary_after_reload"]
        and not summary["errors_after_reload"]
        and tail
        and len(lines) >= tail - 1
        and not truncated
    ):
        # Only secondary lines since the reload (no live upstreams, a server disabled) and a
        # full tail: the failures that marked the servers failed are older than the lines
        # read. Read further back once, still bounded by limit_bytes.
        wider = tail * WIDEN_FACTOR
        try:
            text, size, truncated = adapter.client.read_log(
                ns, name, container, **dict(window, tail_lines=wider)
            )
        except K8sError as exc:
            proxy["problems"].append(
                "only secondary lines in the last %d log lines, and the wider read failed: %s"
                % (tail, exc)
            )
            # the older lines that hold the primary failure could not be read: not clean
            proxy["read_errors"]["log"] = "log of %s/%s (container %s, last %d lines): %s" % (
                ns,
                name,
                container,
                wider,
                exc,
            )
        else:
            lines = text.splitlines()
            if truncated and lines:
                lines = lines[:-1]
            proxy["problems"].append(
                "only secondary lines (no live upstreams, server disabled) in the last %d log "
                "lines: read the last %d" % (tail, wider)
            )
            tail = wider
            summary = summarize(lines)
    proxy["log"] = {
        "lines_read": len(lines),
        "bytes_read": size,
        "truncated": truncated,
        "since_seconds": params["since_seconds"],
        "tail_lines": tail,
    }
    if truncated:
        proxy["problems"].append(
            "log read stopped at limit_bytes=%d: older lines were not read" % params["limit_bytes"]
        )
    proxy["errors"] = summary["errors"]
    proxy["errors_after_reload"] = summary["errors_after_reload"]
    proxy["counts"] = dict(summary["counts"])
    proxy["counts_after_reload"] = dict(summary["counts_after_reload"])
    access = summary["access"]
    proxy["access"] = {
        "requests": access["requests"],
        "status_counts": dict(access["status_counts"]),
        "status_counts_after_reload": dict(access["status_counts_after_reload"]),
        "upstream_status_counts": dict(access["upstream_status_counts"]),
    }
    proxy["failed_reloads"] = summary["failed_reloads"]
    if summary["reload_source"] == "log":
        proxy["last_reload"] = summary["reload_time"]
    summary["reloaded_after_observation"] = reloaded_after(procs, procs_read_at, observed_at)
    return proxy, summary


def backend_namespaces(proxies, params):
    """Namespaces to correlate: the proxy's, the options', those of Services in configs."""
    names = {params["namespace"]} | set(params["service_namespace"] or [])
    for proxy in proxies:
        for host in proxy["upstream_hosts"]:
            if host.get("service"):
                names.add(host["service"].split("/", 1)[0])
    return sorted(names)


def dialled_ips(summaries):
    """The IPs the replicas dialled (their logs' upstream addresses), sorted."""
    found = set()
    for summary in summaries:
        for item in (summary or {}).get("upstream_addresses") or []:
            ip = split_address(item.get("address") if isinstance(item, dict) else None)[0]
            if ip:
                found.add(ip)
    return sorted(found)


def cluster_index(reads, namespaces, ips, known_pods=(), run: Runner = serial):
    """correlate.build_index over the Services (with their EndpointSlices) of ``namespaces``
    and the pods there that the run knows (``known_pods``, raw: the proxy replicas) or that
    have one of ``ips`` (one field-selected list per IP and namespace).

    Every list is asked for at once through ``run``; the first failure, in the order of the
    namespaces, is raised (K8sError) after all ended.
    """
    calls: list[t.Callable[[], t.Any]] = []
    for ns in namespaces:
        calls.append(functools.partial(reads.services, ns))
        calls.append(functools.partial(reads.endpointslices, ns))
        for ip in ips:
            calls.append(functools.partial(reads.pods, ns, None, "status.podIP=%s" % ip))
    found = iter(values(run(calls)))
    services, raw_pods = [], {}
    for pod in known_pods:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") in namespaces:
            raw_pods[(meta.get("namespace"), meta.get("name"))] = pod
    for _ns in namespaces:
        ns_services, ns_slices = next(found), next(found)
        services.extend(namespace_service_facts(ns_services, ns_slices, []))
        for _ip in ips:
            for pod in next(found):
                meta = pod.get("metadata") or {}
                raw_pods[(meta.get("namespace"), meta.get("name"))] = pod
    pods = [
        summarize_pod(raw_pods[key])
        for key in sorted(raw_pods, key=lambda k: (k[0] or "", k[1] or ""))
    ]
    return build_index(services, pods)


def correlate(proxy, summary, index):
    """Fill ``upstream_addresses`` and ``stale_addresses`` of one replica."""
    if summary is None:
        return
    result = correlate_addresses(summary["upstream_addresses"], index, proxy["last_reload"])
    proxy["upstream_addresses"] = result["upstream_addresses"]
    proxy["stale_addresses"] = result["stale_addresses"]


def log_bounds_problem(params):
    """Why the log bounds cannot be used, or None."""
    for option in ("tail_lines", "since_seconds", "limit_bytes"):
        if params[option] is not None and params[option] <= 0:
            return "%s must be a positive number, got %s" % (option, params[option])
    return None


def read_replicas(reads, adapter, params, run: Runner = serial, observed_at=None, listed=None):
    """Select the proxy pods and inspect every replica at once: ``(pods, [(proxy, summary)])``
    (K8sError when no pod could be selected). ``observed_at``: see :func:`inspect_replica`.
    ``listed``: called with the pods once they are selected, before they are inspected."""
    pods = select_proxies(reads, params["namespace"], params["selector"])
    if listed is not None:
        listed(pods)
    inspected = values(
        run(
            [
                functools.partial(inspect_replica, adapter, pod, params, run, observed_at)
                for pod in pods
            ]
        )
    )
    return pods, inspected


def correlate_replicas(reads, pods, inspected, params, run: Runner = serial):
    """Compare each read replica's dialled addresses with the cluster; the proxy_info result."""
    proxies = [proxy for proxy, _summary in inspected]
    namespaces = backend_namespaces(proxies, params)
    ips = dialled_ips(summary for _proxy, summary in inspected)
    try:
        index = cluster_index(reads, namespaces, ips, pods, run)
    except K8sError as exc:
        # Without the cluster's addresses no dialled address can be judged: every replica
        # whose log was read says so, instead of looking clean.
        for proxy, summary in inspected:
            if summary is not None:
                proxy["read_errors"]["endpoints"] = (
                    "cannot compare the dialled addresses with the cluster: %s" % exc
                )
        index = None
    if index is not None:
        for proxy, summary in inspected:
            correlate(proxy, summary, index)
    result = {"changed": False, "proxies": proxies, "namespaces_correlated": namespaces}
    unread = [p for p in proxies if p["read_errors"]]
    if (
        unread
        and len(unread) == len(proxies)
        and all("log" in p["read_errors"] or "container" in p["read_errors"] for p in unread)
    ):
        result.update(
            failed=True,
            msg="no proxy replica could be read: %s"
            % "; ".join(
                "%s: %s" % (p["name"], "; ".join(p["read_errors"].values())) for p in unread
            ),
        )
        del result["changed"]
    return result
