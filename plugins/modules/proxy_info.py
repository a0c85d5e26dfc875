#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.proxy_info."""

from __future__ import annotations

DOCUMENTATION = r"""
module: proxy_info
short_description: Per proxy replica (nginx, HAProxy) - config, last reload, errors and dialled upstreams vs the cluster
version_added: 0.1.0
description:
  - For EACH pod chosen by O(selector) in O(namespace), inside its nginx container - reads the
    running configuration with C(nginx -T) (upstream host names mapped to Services, listen
    ports), the nginx master and worker processes from C(/proc) (no C(ps) needed; the newest
    worker start time is the last successful (re)load), and a bounded part of the pod log
    (O(tail_lines), O(since_seconds), O(limit_bytes), with timestamps).
  - Every nginx error line is parsed and counted per signature, and every upstream address the
    replica dialled is compared with the current cluster state - a ready, not-ready or
    terminating endpoint, a ClusterIP, a current pod IP, or C(stale) (nothing current has it).
    The EndpointSlices and Services for that are listed in the namespaces of the Services the
    config names, plus O(service_namespace) and O(namespace), with the pods there that have one
    of the dialled IPs (a field selector) and the replicas themselves; a namespace's other pods
    are not read.
  - HAProxy (O(kind)) - the config the master was started with (C(haproxy -c) first), the
    master and workers from C(/proc), the servers' current addresses from the runtime API
    (C(show servers state)) and the HTTP log lines; each runtime server address is compared
    with the cluster as above, with the log lines' termination states (C(SC), C(sC), C(SH),
    C(<NOSRV>) ...) as its errors.
  - Every replica is read at the same time, and its config, processes and log at once, up to
    O(max_in_flight) calls in flight.
  - Read-only. Needs C(list) on C(pods), C(get) on C(pods/log), C(get)/C(create) on
    C(pods/exec) in O(namespace), and C(list) on C(pods), C(services) and
    C(endpointslices.discovery.k8s.io) in the backend namespaces.
options:
  namespace:
    description: Namespace of the proxy pods.
    type: str
    required: true
  selector:
    description: Label selector of the proxy pods, for example V(app=nginx-proxy).
    type: str
    required: true
    aliases: [label_selector]
  container:
    description:
      - The proxy's container. Default, the container whose name or image says the proxy kind
        (O(kind)), else the only container, else the first where its version command
        (C(nginx -v), C(haproxy -v)) runs.
    type: str
  service_namespace:
    description: More namespaces whose Services, EndpointSlices and pods are correlated.
    type: list
    elements: str
    default: []
  tail_lines:
    description:
      - Read at most this many of the newest log lines per replica.
      - >-
        When those lines hold only secondary lines since the last reload (C(no live upstreams), C(upstream server temporarily disabled))
        and no upstream error, the failures that marked the servers failed are older: the log is read once more, ten times as many lines
        (still bounded by O(limit_bytes)), and C(problems) says so.
    type: int
    default: 5000
  since_seconds:
    description: Read only log lines newer than this many seconds. Default, no time bound.
    type: int
  limit_bytes:
    description: Read at most this many bytes of log per replica.
    type: int
    default: 4194304
  max_errors:
    description: Keep at most this many parsed error lines per replica (the newest).
    type: int
    default: 50
  cluster_domain:
    description: The cluster's DNS domain, to map upstream host names to Services.
    type: str
    default: cluster.local
extends_documentation_fragment:
  - badgateway.k8s.k8s_auth
  - badgateway.k8s.proxy_kind
attributes:
  check_mode:
    support: full
    description: Reads only (C(nginx -T), C(/proc), the log); runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Read every proxy replica
  badgateway.k8s.proxy_info:
    namespace: edge
    selector: app=nginx-proxy
    service_namespace: [shop]
    since_seconds: 3600
  register: proxy

- name: Replicas still dialling addresses nothing in the cluster has
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.stale_addresses }}"
  loop: "{{ proxy.proxies | selectattr('stale_addresses') | list }}"
"""

RETURN = r"""
proxies:
  description: One entry per proxy replica, sorted by namespace and name.
  returned: success
  type: list
  elements: dict
  contains:
    namespace:
      description: "Namespace."
      type: str
      returned: always
    name:
      description: "Pod name."
      type: str
      returned: always
    pod_ip:
      description: "Pod IP or null."
      type: str
      returned: always
    kind:
      description: "The proxy kind that serves the replica (V(nginx), V(haproxy)); empty when its container could not be picked."
      type: str
      returned: always
    container:
      description: "The proxy's container, null when none could be picked."
      type: str
      returned: always
    ready:
      description: "Pod Ready condition."
      type: bool
      returned: always
    phase:
      description: "Pod phase."
      type: str
      returned: always
    config_ok:
      description: "nginx -T succeeded; null when it could not run (pod not running)."
      type: bool
      returned: always
    upstream_hosts:
      description: "Hosts the config dials (from C(nginx -T)), de-duplicated and sorted."
      type: list
      elements: dict
      returned: always
      contains:
        host:
          description: "Host name or IP as written in the config."
          type: str
          returned: always
        port:
          description: "Port, or null when the config gives none."
          type: int
          returned: always
        source:
          description: "C(upstream) (a server of an upstream group) or C(proxy_pass) (a host named in proxy_pass)."
          type: str
          returned: always
        upstream:
          description: "Name of the upstream group, or null."
          type: str
          returned: always
        runtime_resolved:
          description: "The name is resolved per request (a variable in proxy_pass with a resolver), not once at (re)load."
          type: bool
          returned: always
        service:
          description: "The Service the name refers to, C(namespace/name), or null."
          type: str
          returned: always
        pod:
          description: "The pod the name refers to (C(pod.svc.ns.svc) form), or null."
          type: str
          returned: always
        file:
          description:
            - "Where the config on disk (re-read at this run, C(nginx -T)) writes it, C(path:line), or null."
            - "An IP literal there that no endpoint has is what the C(config_not_applied) verdict names."
          type: str
          returned: always
    listen_ports:
      description: "Ports nginx listens on."
      type: list
      elements: int
      returned: always
    master_pid:
      description: "PID of the nginx master (in the pod's PID namespace) or null."
      type: int
      returned: always
    worker_start_times:
      description: "Start times of the worker processes (RFC 3339, oldest first)."
      type: list
      elements: str
      returned: always
    worker_pids:
      description:
        - PIDs of the worker processes, in the order of RV(proxies[].worker_start_times).
        - Start times are exact to about 10 ms; the PIDs identify a reload exactly.
      type: list
      elements: int
      returned: always
    last_reload:
      description: "Newest worker start time = the last successful (re)load, or null."
      type: str
      returned: always
    upstream_keepalive:
      description:
        - "Upstream groups that keep idle connections to their servers: upstream (name), keepalive (connections cached per worker),"
        - "keepalive_timeout (as written; nginx's default 60s). Empty when the proxy opens a new connection per request."
      type: list
      elements: dict
      returned: always
      contains:
        upstream:
          description: "Name of the upstream group."
          type: str
          returned: always
        keepalive:
          description: "Idle connections cached per worker."
          type: int
          returned: always
        keepalive_timeout:
          description: "The group's keepalive_timeout as written, or null (nginx's default, 60s)."
          type: str
          returned: always
    log:
      description: "How much of the replica's log was read."
      type: dict
      returned: always
      contains:
        lines_read:
          description: "Complete lines read."
          type: int
          returned: always
        bytes_read:
          description: "Bytes read."
          type: int
          returned: always
        truncated:
          description: "The read stopped at O(limit_bytes): older lines were not read."
          type: bool
          returned: always
        since_seconds:
          description: "The O(since_seconds) asked for."
          type: int
          returned: always
        tail_lines:
          description: "The O(tail_lines) asked for, or the wider count read when only secondary lines were found."
          type: int
          returned: always
    log_files:
      description:
        - "The error log files read besides the container log, when the config sends C(error_log) to a file rather than to"
        - "stderr: each read in the pod with C(tail -c), bounded by O(limit_bytes), O(tail_lines) and O(since_seconds) like"
        - "the container log, and merged with it in time order. Empty when nginx logs to stderr (a file that is a link to"
        - "C(/dev/stderr), as in the official image, is the container log)."
      type: list
      elements: dict
      returned: always
      contains:
        path:
          description: "The file, as read in the pod."
          type: str
          returned: always
        lines_read:
          description: "Lines kept after the bounds."
          type: int
          returned: always
        bytes_read:
          description: "Bytes read."
          type: int
          returned: always
        truncated:
          description: "The file is longer than O(limit_bytes): older lines were not read."
          type: bool
          returned: always
    errors:
      description: "Parsed error lines with an upstream-error signature, newest last, at most O(max_errors)."
      type: list
      elements: dict
      returned: always
      contains:
        kind:
          description: "Always C(error)."
          type: str
          returned: always
        time:
          description: "When it was logged (RFC 3339 UTC), from the Kubernetes timestamp or nginx's own; null when unknown."
          type: str
          returned: always
        time_source:
          description: "C(k8s), C(nginx) or null."
          type: str
          returned: always
        nginx_time:
          description: "nginx's own timestamp as written, or null."
          type: str
          returned: always
        level:
          description: "nginx's level, e.g. C(error), C(warn), C(emerg)."
          type: str
          returned: always
        pid:
          description: "nginx process ID, or null."
          type: int
          returned: always
        tid:
          description: "Thread ID, or null."
          type: int
          returned: always
        cid:
          description: "Connection ID, or null."
          type: int
          returned: always
        message:
          description: "The message without its context (client, server, request, upstream, host)."
          type: str
          returned: always
        errno:
          description: "The error number (for C(could not be resolved): the resolver's code), or null."
          type: int
          returned: always
        errno_text:
          description: "The error text after the number, or null."
          type: str
          returned: always
        phase:
          description: "What nginx was doing (the text after C(while)), or null."
          type: str
          returned: always
        client:
          description: "Client address from the context, or null."
          type: str
          returned: always
        server:
          description: "Server name from the context, or null."
          type: str
          returned: always
        request:
          description: "Request line from the context, or null."
          type: str
          returned: always
        upstream:
          description: "Upstream URL from the context, or null."
          type: str
          returned: always
        upstream_address:
          description: "C(IP:PORT) nginx dialled, or the group or host name when it logs one; null when none."
          type: str
          returned: always
        host:
          description: "Host header from the context, or null."
          type: str
          returned: always
        name:
          description: "The host name a DNS or config error is about, or null."
          type: str
          returned: always
        signature:
          description:
            - "The line's class, e.g. C(connect_refused), C(upstream_timeout). Only a line about talking to an upstream, by nginx's"
            - "own words (its phase C(while connecting to upstream), C(while reading response header from upstream), a message"
            - "naming the upstream, a run-time name resolution), is an upstream error. C(no_live_upstreams) and C(server_disabled)"
            - "are secondary (consequences of earlier failures, or of answers C(proxy_next_upstream) lists), counted but never an"
            - "upstream error; C(not_upstream) (a missing static file, a forbidden access, a client's error), C(resolver_error),"
            - "C(buffered), C(client_closed), C(info), C(reload), C(reload_signal) neither."
          type: str
          returned: always
        after_reload:
          description: "Logged after the last reload."
          type: bool
          returned: always
    errors_after_reload:
      description: "Upstream-error lines after the last reload (secondary and non-upstream lines not counted)."
      type: int
      returned: always
    counts:
      description: "Lines per signature, e.g. {connect_refused: 12}."
      type: dict
      returned: always
    counts_after_reload:
      description: "The same, after the last reload only."
      type: dict
      returned: always
    upstream_addresses:
      description:
        - "Each dialled address (correlate.correlate_addresses): address, state (ready_endpoint, not_ready_endpoint, terminating_endpoint,
          cluster_ip, pod_ip, group_name, stale), objects, port_match, hints, count, count_after_reload, last_seen, after_reload, signatures."
      type: list
      elements: dict
      returned: always
      contains:
        address:
          description: "C(IP:PORT) dialled (or an upstream group name)."
          type: str
          returned: always
        state:
          description: "C(ready_endpoint), C(not_ready_endpoint), C(terminating_endpoint), C(cluster_ip), C(pod_ip), C(group_name), C(stale) or C(external)."
          type: str
          returned: always
        objects:
          description: "The current cluster objects that have this address, e.g. C(Pod ns/name)."
          type: list
          elements: str
          returned: always
        port_match:
          description: "The port is one those objects serve; null when nothing has the IP."
          type: bool
          returned: always
        hints:
          description: "Why the address looks the way it does, e.g. a pod being deleted."
          type: list
          elements: str
          returned: always
        count:
          description: "Error lines that name it."
          type: int
          returned: always
        count_after_reload:
          description: "Of those, the lines after the last reload."
          type: int
          returned: always
        last_seen:
          description: "When it was last named (RFC 3339 UTC), or null."
          type: str
          returned: always
        after_reload:
          description: "Named after the last reload."
          type: bool
          returned: always
        signatures:
          description: "Error signature to number of lines (any signature, so no fixed keys)."
          type: dict
          returned: always
    stale_addresses:
      description: "Addresses dialled after the last reload that nothing current has."
      type: list
      elements: str
      returned: always
    access:
      description:
        - "From access-log lines: requests, status_counts, status_counts_after_reload (since the last reload),"
        - "upstream_status_counts (C($upstream_status) values, when the log format has them)."
      type: dict
      returned: always
      contains:
        requests:
          description: "Access-log lines read."
          type: int
          returned: always
        status_counts:
          description: "HTTP status (a string such as C(\"502\")) to number of requests."
          type: dict
          returned: always
        status_counts_after_reload:
          description: "The same, since the last reload."
          type: dict
          returned: always
        upstream_status_counts:
          description: "C($upstream_status) value to number of requests; empty when the log format has none."
          type: dict
          returned: always
    failed_reloads:
      description: "Reload attempts the log shows as failed (C([emerg]) after the signal): the old config kept running."
      type: int
      returned: always
    problems:
      description: "What could not be read or looks wrong."
      type: list
      elements: str
      returned: always
    read_errors:
      description:
        - "What could not be read from this replica, by part - C(container), C(config) (nginx -T), C(processes),
          C(log), C(endpoints) (the cluster's addresses to compare with) - each message naming the call that failed."
        - "A part listed here was not read: its fields above are empty, and the diagnosis reports the part as could not be checked
          rather than as clean. Empty when everything was read."
      type: dict
      returned: always
      contains:
        container:
          description: "Why no nginx container could be picked or run in (the pod is not running, or the pod could not be read)."
          type: str
          returned: when that part could not be read
        config:
          description: "Why C(nginx -T) could not be run."
          type: str
          returned: when that part could not be read
        processes:
          description: "Why the nginx processes (master, workers, their start times) could not be read."
          type: str
          returned: when that part could not be read
        log:
          description: "Why the container's log could not be read."
          type: str
          returned: when that part could not be read
        error_log_file:
          description:
            - "Why an error log file the config writes to (C(error_log) to a file, not stderr) could not be read, naming the file,"
            - "the C(error_log) directive and the call (no such file, permission denied, exec refused); or that the config sends"
            - "error lines to syslog, to nginx's memory buffer or to C(/dev/null), which cannot be read."
          type: str
          returned: when that part could not be read
        runtime:
          description:
            - "HAProxy - why the runtime API (C(show servers state) over the config's C(stats socket)) could not be read:"
            - "no stats socket in the config, no C(socat) in the container, or the call that failed. Without it the log"
            - "lines cannot be tied to the addresses the workers dial."
          type: str
          returned: when that part could not be read
        endpoints:
          description: "Why the cluster's addresses (EndpointSlices, Services, pods) to compare the dialled addresses with could not be read."
          type: str
          returned: when that part could not be read
  sample:
    - namespace: edge
      name: nginx-proxy-0
      container: nginx
      config_ok: true
      last_reload: "2026-11-25T02:00:00.00Z"
      counts: {connect_refused: 3}
      stale_addresses: ["127.0.10.5:8080"]
namespaces_correlated:
  description: Namespaces whose EndpointSlices, Services and pods were compared.
  returned: success
  type: list
  elements: str
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _k8s_tasks.py, run by AnsibleModule."""
    run_module("proxy_info")


if __name__ == "__main__":
    main()
