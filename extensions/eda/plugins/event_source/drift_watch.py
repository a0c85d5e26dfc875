# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""badgateway.k8s.drift_watch: an event source for ansible-rulebook (Event-Driven Ansible).

It watches the proxy pods and the EndpointSlices of the Services they dial through the
Kubernetes watch API, and puts one event on the queue per proxy replica at risk of dialling a
replaced pod's old address: a replica that resolved a Service's name to pod IPs when it last
(re)loaded, while the Service's newest ready endpoint became ready after that. The decisions
(resume, debounce, the at-risk rule, one event per replica) are module_utils/drift_watch.py's;
this file does the I/O. See docs/eda.md.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import ssl
import sys
import typing as t
from urllib.parse import quote

DOCUMENTATION = r"""
---
short_description: Watch for nginx proxy replicas at risk of a stale upstream (HTTP 502)
description:
  - Watches the proxy pods and the EndpointSlices of the Services they proxy to (Kubernetes
    watch API, resumed from the last resourceVersion; a 410 Gone lists again and compares, so no
    change is lost; reconnects with back-off).
  - Reads each proxy replica through the API (exec, as the modules do) for the Services its
    configuration dials and its last reload.
  - Emits one event per replica at risk, after a burst of endpoint changes went quiet, as
    C({"drift_watch": {status, namespace, replica, container, service, host, old_endpoints,
    new_endpoints, unknown_endpoints, last_reload, reload_id, seconds_since_reload, endpoints_since,
    first_change, detected_seconds, reasons, proxy_namespace, proxy_selector, remediate}}).
    C(status) is
    C(at_risk), or C(could_not_check) when the replica or the endpoints' times could not be read.
  - Takes the modules' Kubernetes access options (kubeconfig, context, host, api_key, ...,
    with the same K8S_AUTH_* environment variables).
options:
  proxy_namespace:
    description: Namespace of the nginx proxy pods.
    required: true
  proxy_selector:
    description: Label selector of the proxy pods, e.g. C(app=nginx).
    required: true
  proxy_container:
    description: The proxy's container (found from the pod when empty).
  namespaces:
    description: Namespaces whose EndpointSlices are watched; default those of the Services the
      replicas dial.
  cluster_domain:
    description: The cluster's DNS domain.
    default: cluster.local
  debounce_seconds:
    description: Endpoint changes of a Service this close together are one burst.
    default: 1.0
  debounce_max_seconds:
    description: A burst is judged at the latest this long after its first change.
    default: 3.0
  repeat_seconds:
    description: A replica still at risk without having reloaded is reported again after this long.
    default: 300
  watch_timeout_seconds:
    description: Each watch request asks the API server to end it after this long (then it resumes).
    default: 300
  backoff_seconds:
    description: First reconnect delay after a failure; doubled up to backoff_max_seconds.
    default: 0.5
  backoff_max_seconds:
    description: Longest reconnect delay.
    default: 30
  remediate:
    description:
      - Copied into every event as C(remediate), for the rulebook's rules (the source itself
        never changes anything). The collection's rulebook runs the diagnosis with remediation
        for an C(at_risk) event that says C(remediate=true).
    type: bool
    default: false
  unreachable_seconds:
    description:
      - A watch that has failed for this long emits one C(could_not_check) event (C(replica)
        null, the failure in C(reasons)): what changed meanwhile is unknown. Another comes only
        after the watch worked again.
    default: 30
"""

EXAMPLES = r"""
- name: Proxy upstream drift watch
  hosts: localhost
  sources:
    - badgateway.k8s.drift_watch:
        proxy_namespace: web
        proxy_selector: app=nginx
        kubeconfig: /runner/.kube/config
  rules:
    - name: Check the replica at risk
      condition: event.drift_watch.status == "at_risk"
      action:
        run_playbook:
          name: badgateway.k8s.drift_check
"""


def _importable() -> None:
    """ansible-rulebook runs this file by path, outside Ansible's collection loader: make the
    collection it belongs to importable (the directory holding its ``ansible_collections``)."""
    try:
        import ansible_collections.badgateway.k8s.plugins.module_utils.drift_watch  # noqa: F401
    except ImportError:
        here = os.path.abspath(__file__)
        # .../ansible_collections/badgateway/k8s/extensions/eda/plugins/event_source/<this file>
        top = os.sep.join(here.split(os.sep)[:-7])
        if os.path.basename(top) != "ansible_collections":
            raise ImportError(
                "badgateway.k8s.drift_watch must run from an installed collection "
                "(.../ansible_collections/badgateway/k8s/extensions/eda/...), not from %s" % here
            ) from None
        sys.path.insert(0, os.path.dirname(top))


_importable()

# pylint: disable=wrong-import-position
from ansible_collections.badgateway.k8s.plugins.module_utils import drift_watch as core  # noqa: E402
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (  # noqa: E402
    summarize_pod,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.facts import (  # noqa: E402
    DriftWatchEvent,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (  # noqa: E402
    AUTH_ARG_SPEC,
    K8sClient,
    K8sError,
    param_problem,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (  # noqa: E402
    parse_time,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_kinds import (  # noqa: E402
    proxy_adapter,
)

log = logging.getLogger("badgateway.k8s.drift_watch")

SLICES_API = "/apis/discovery.k8s.io/v1"
WATCH_OPTIONS: dict[str, tuple[type, t.Any]] = {
    "proxy_namespace": (str, None),
    "proxy_selector": (str, None),
    "proxy_container": (str, None),
    "namespaces": (list, None),
    "cluster_domain": (str, "cluster.local"),
    "debounce_seconds": (float, 1.0),
    "debounce_max_seconds": (float, 3.0),
    "repeat_seconds": (float, 300.0),
    "watch_timeout_seconds": (int, 300),
    "backoff_seconds": (float, 0.5),
    "backoff_max_seconds": (float, 30.0),
    "unreachable_seconds": (float, 30.0),
    "remediate": (bool, False),
}
_TYPES = {"str": str, "path": str, "raw": object, "bool": bool, "float": float, "int": int}


def _coerce(name: str, value: t.Any, kind: t.Any) -> t.Any:
    if kind is object or value is None:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    elif kind is dict:
        if isinstance(value, dict):
            return value
    elif isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError("drift_watch: option %s: expected %s, got %r" % (name, kind.__name__, value))


def settings(args: dict[str, t.Any]) -> dict[str, t.Any]:
    """The source's arguments checked and completed: the watch options with their defaults and
    the modules' auth options (``K8S_AUTH_*`` when not given). ValueError names a mistake."""
    known = set(WATCH_OPTIONS) | set(AUTH_ARG_SPEC)
    aliases = {a: name for name, spec in AUTH_ARG_SPEC.items() for a in spec.get("aliases", [])}
    given = {aliases.get(k, k): v for k, v in args.items() if not k.startswith("eda_")}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(
            "drift_watch: unknown option(s) %s; the options are %s"
            % (", ".join(unknown), ", ".join(sorted(known)))
        )
    out: dict[str, t.Any] = {}
    for name, (kind, default) in WATCH_OPTIONS.items():
        value = given.get(name)
        out[name] = default if value in (None, "") else _coerce(name, value, kind)
    for name, spec in AUTH_ARG_SPEC.items():
        value = given.get(name)
        if value in (None, ""):
            value = None
            for env in (spec.get("fallback") or (None, []))[1]:
                if os.environ.get(env):
                    value = os.environ[env]
                    break
        if value is None:
            value = spec.get("default")
        kind = dict if spec["type"] == "dict" else list if spec["type"] == "list" else None
        out[name] = _coerce(name, value, kind or _TYPES[spec["type"]])
    for name in ("proxy_namespace", "proxy_selector"):
        if not out[name]:
            raise ValueError(
                "drift_watch: set %s (the nginx proxy pods: namespace and label selector)" % name
            )
    problem = param_problem(out)
    if problem:
        raise ValueError("drift_watch: " + problem)
    if out["debounce_seconds"] < 0 or out["debounce_max_seconds"] < out["debounce_seconds"]:
        raise ValueError(
            "drift_watch: expected 0 <= debounce_seconds <= debounce_max_seconds, got %s and %s"
            % (out["debounce_seconds"], out["debounce_max_seconds"])
        )
    if out["watch_timeout_seconds"] < 1 or out["backoff_seconds"] <= 0:
        raise ValueError("drift_watch: watch_timeout_seconds and backoff_seconds must be positive")
    if out["unreachable_seconds"] < 0:
        raise ValueError("drift_watch: unreachable_seconds must not be negative")
    return out


class Expired(Exception):
    """The API server answered 410 Gone: the resourceVersion is too old, list again."""


def _ssl_context(tls: dict[str, t.Any] | None) -> ssl.SSLContext | bool:
    if tls is None:
        return False  # plain http
    files = tls["files"]
    if tls["verify"]:
        context = ssl.create_default_context(cafile=files.get("ca_certs"))
        context.check_hostname = tls["check_hostname"]
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if files.get("cert_file"):
        context.load_cert_chain(files["cert_file"], files.get("key_file"))
    return context


def read_replicas(client: K8sClient, opts: dict[str, t.Any]) -> list[core.Replica]:
    """Every proxy replica: the Services it dials (config) and its last reload (processes).
    A replica that could not be read says why in ``unread``; K8sError when the pods cannot be
    listed."""
    namespace = opts["proxy_namespace"]
    adapter = proxy_adapter(client)
    headless: dict[str, bool | None] = {}
    replicas = []
    for pod in client.list_pods(namespace, label_selector=opts["proxy_selector"]):
        meta = pod.get("metadata") or {}
        replica = core.Replica(namespace, meta.get("name") or "")
        if (pod.get("status") or {}).get("phase") != "Running":
            replica.unread = "pod %s is not Running" % replica.key
            replicas.append(replica)
            continue
        try:
            replica.container = adapter.pick_container(pod, opts["proxy_container"])
            replica.kind = adapter.kind_for(namespace, replica.name)
            config, problem = adapter.read_config(
                namespace, replica.name, replica.container, opts["cluster_domain"]
            )
            if config is None:
                replica.unread = "config of %s: %s" % (replica.key, problem)
            else:
                for host in config["upstream_hosts"]:
                    service = host.get("service")
                    if service and service not in headless:
                        headless[service] = _headless(client, service)
                replica.pinned, replica.dialled = core.pinned_services(
                    config["upstream_hosts"], headless
                )
            _read_reload(adapter, replica)
        except K8sError as exc:
            replica.unread = "%s: %s" % (replica.key, exc)
        replicas.append(replica)
    return replicas


def _headless(client: K8sClient, service: str) -> bool | None:
    namespace, name = service.split("/", 1)
    try:
        svc = client.get_service(namespace, name)
    except K8sError:
        return None  # unknown: judged as a name that may resolve to pod IPs
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def _read_reload(adapter: t.Any, replica: core.Replica) -> None:
    procs = adapter.read_processes(replica.namespace, replica.name, replica.container)
    workers = procs.get("workers") or []
    replica.last_reload = parse_time(workers[-1]["start_time"]) if workers else None
    replica.reload_id = (
        "%s:%s" % (procs.get("master_pid"), ",".join(str(w["pid"]) for w in workers))
        if workers
        else None
    )
    if procs.get("problem") and replica.unread is None:
        replica.unread = procs["problem"]


def refresh_reloads(client: K8sClient, replicas: list[core.Replica]) -> None:
    """Read each replica's last reload again (it may have reloaded since it was read), by the
    adapter of the kind its container was picked as (a fresh ``auto`` adapter knows no pod)."""
    for replica in replicas:
        if replica.container is None:
            continue
        try:
            _read_reload(proxy_adapter(client, replica.kind), replica)
        except K8sError as exc:
            replica.unread, replica.last_reload = "%s: %s" % (replica.key, exc), None


def ready_times(client: K8sClient, pods: set[str]) -> dict[str, datetime.datetime | None]:
    """When each pod (``ns/name``) became Ready; None for a pod that could not be read."""
    found: dict[str, datetime.datetime | None] = {}
    for key in sorted(pods):
        namespace, name = key.split("/", 1)
        try:
            found[key] = core.ready_time(summarize_pod(client.get_pod(namespace, name)))
        except K8sError as exc:
            log.warning("drift_watch: %s", exc)
            found[key] = None
    return found


class DriftWatch:
    """The source: the watch tasks, the replicas, and the judge of due bursts."""

    def __init__(self, queue: t.Any, opts: dict[str, t.Any], client: K8sClient) -> None:
        self.queue, self.opts, self.client = queue, opts, client
        self.loop = asyncio.get_running_loop()
        self.debounce = core.Debouncer(opts["debounce_seconds"], opts["debounce_max_seconds"])
        self.reported = core.Reported(opts["repeat_seconds"])
        self.replicas: list[core.Replica] = []
        self.slices: dict[str, core.WatchState] = {}
        self.pods = core.WatchState(core.PODS)
        self.wake = asyncio.Event()
        self.reread = False
        self.no_replicas_told = False
        self.tasks: dict[str, asyncio.Task[None]] = {}

    # ---------------------------------------------------------------- the watches
    async def _request(self, session: t.Any, path: str, params: dict[str, str], what: tuple):
        """GET ``path``: the response (a watch streams on); K8sError naming the call when the
        API answers an error. A list may be silent for request_timeout, a watch for as long as
        it asked the server to run."""
        import aiohttp  # ansible-rulebook's own dependency

        silent = self.opts["request_timeout"]
        if what[0] == "watch":
            silent += self.opts["watch_timeout_seconds"]

        conn = self.client.connection()
        tls = conn["tls"] or {}
        response = await session.get(
            conn["host"] + path,
            params=params,
            headers=conn["headers"],
            proxy=conn["proxy"],
            server_hostname=(tls.get("files") or {}).get("server_hostname"),
            timeout=aiohttp.ClientTimeout(
                sock_connect=self.opts["request_timeout"], sock_read=silent
            ),
        )
        if response.status >= 300:
            body = await response.read()
            response.release()
            raise self.client.error_for(response.status, body, *what)
        return response

    async def _list(self, session, path, params, what) -> tuple[list[dict], str | None]:
        items: list[dict] = []
        query = dict(params, limit="500")
        while True:
            response = await self._request(session, path, query, ("list",) + what)
            doc = json.loads(await response.read())
            items.extend(doc.get("items") or [])
            meta = doc.get("metadata") or {}
            if not meta.get("continue"):
                return items, meta.get("resourceVersion")
            query["continue"] = meta["continue"]

    async def watch(self, state: core.WatchState, path: str, params: dict[str, str], what):
        """List, then watch from the list's resourceVersion, forever: resume after an ended
        stream, list again after 410 Gone, reconnect with back-off after a failure."""
        import aiohttp

        backoff = core.Backoff(self.opts["backoff_seconds"], self.opts["backoff_max_seconds"])
        listed = False
        failing_since: float | None = None  # when the current streak of failures began
        told = False  # its could_not_check event was sent
        conn = self.client.connection()
        connector = aiohttp.TCPConnector(ssl=_ssl_context(conn["tls"]))
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    if state.version is None:
                        items, version = await self._list(session, path, params, what)
                        changed = state.replace(items, version)
                        self._changed(state, changed, noted=listed)
                        if not listed:
                            log.info(
                                "drift_watch: watching %s in %s from resourceVersion %s",
                                what[0],
                                what[1],
                                version,
                            )
                        listed = True
                    query = dict(
                        params,
                        watch="1",
                        allowWatchBookmarks="true",
                        resourceVersion=state.version or "0",
                        timeoutSeconds=str(self.opts["watch_timeout_seconds"]),
                    )
                    response = await self._request(session, path, query, ("watch",) + what)
                    backoff.reset()
                    if told:
                        log.info("drift_watch: the watch of %s in %s works again", *what[:2])
                    failing_since, told = None, False
                    async with response:
                        async for line in response.content:
                            if line.strip():
                                self._event(state, json.loads(line))
                except Expired:
                    log.info(
                        "drift_watch: %s %s: resourceVersion expired (410); listing again",
                        *what[:2],
                    )
                    state.expired()
                except (
                    K8sError,
                    aiohttp.ClientError,
                    OSError,
                    ValueError,
                    asyncio.TimeoutError,
                ) as exc:
                    delay = backoff.next_delay()
                    why = str(exc) or exc.__class__.__name__
                    log.warning(
                        "drift_watch: watch of %s in %s failed: %s; reconnecting in %gs",
                        what[0],
                        what[1],
                        why,
                        delay,
                    )
                    now = self.loop.time()
                    failing_since = now if failing_since is None else failing_since
                    if not told and now - failing_since >= self.opts["unreachable_seconds"]:
                        told = True
                        await self._put(
                            core.watch_failed_event(what[0], what[1], why, now - failing_since),
                            "watch of %s in %s" % what[:2],
                        )
                    await asyncio.sleep(delay)

    def _event(self, state: core.WatchState, event: dict[str, t.Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "BOOKMARK":
            state.bookmark((obj.get("metadata") or {}).get("resourceVersion"))
        elif kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired()
            raise K8sError("the watch ended with an error: %s" % (obj.get("message") or obj))
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            self._changed(state, state.apply(kind, obj), noted=True)

    def _changed(self, state: core.WatchState, changed: dict, noted: bool) -> None:
        if not changed or not noted:
            return  # the first list is where the watch starts, not a change
        if state.collection == core.PODS:
            self.reread = True
        else:
            wall = datetime.datetime.now(datetime.timezone.utc)
            for service, before in changed.items():
                self.debounce.note(service, before, self.loop.time(), wall)
        self.wake.set()

    def _watch_namespaces(self) -> None:
        wanted = set(self.opts["namespaces"] or ()) or {
            s.split("/", 1)[0] for r in self.replicas for s in r.dialled
        }
        for namespace in sorted(wanted - set(self.slices)):
            state = self.slices[namespace] = core.WatchState(core.ENDPOINTSLICES)
            path = "%s/namespaces/%s/endpointslices" % (SLICES_API, quote(namespace, safe=""))
            what = ("endpointslices.discovery.k8s.io", namespace)
            self.tasks[namespace] = asyncio.ensure_future(self.watch(state, path, {}, what))

    # ---------------------------------------------------------------- judging
    async def _read_replicas(self) -> None:
        """Read the replicas (again), retrying with back-off; what cannot be read for
        unreachable_seconds, and a selector that matches no pod, is a could_not_check event."""
        backoff = core.Backoff(self.opts["backoff_seconds"], self.opts["backoff_max_seconds"])
        namespace, selector = self.opts["proxy_namespace"], self.opts["proxy_selector"]
        failing_since: float | None = None
        told = False
        while True:
            try:
                self.replicas = await asyncio.to_thread(read_replicas, self.client, self.opts)
                break
            except K8sError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "drift_watch: reading the proxy replicas failed: %s; again in %gs", exc, delay
                )
                now = self.loop.time()
                failing_since = now if failing_since is None else failing_since
                if not told and now - failing_since >= self.opts["unreachable_seconds"]:
                    told = True
                    why = "reading the proxy replicas has failed for %.0f s (last: %s)" % (
                        now - failing_since,
                        exc,
                    )
                    await self._put(
                        core.could_not_check_event(namespace, why, now - failing_since),
                        "proxy replicas",
                    )
                await asyncio.sleep(delay)
        if self.replicas:
            self.no_replicas_told = False
        elif not self.no_replicas_told:
            self.no_replicas_told = True
            why = "no pod in namespace %s matches %s: there is no proxy replica to watch" % (
                namespace,
                selector,
            )
            await self._put(core.could_not_check_event(namespace, why), "proxy replicas")

    async def _judge(self, burst: core.Burst) -> None:
        namespace = burst.service.split("/", 1)[0]
        new = self.slices[namespace].endpoints(burst.service)
        concerned = [
            r
            for r in self.replicas
            if burst.service in r.pinned
            or (r.unread and (burst.service in r.dialled or not r.dialled))
        ]
        if not concerned or set(new) == set(burst.old):
            return
        await asyncio.to_thread(refresh_reloads, self.client, concerned)
        pods = {pod for pod in new.values() if pod}
        since = await asyncio.to_thread(ready_times, self.client, pods)
        wall = datetime.datetime.now(datetime.timezone.utc)
        for replica in concerned:
            event = core.replica_at_risk(
                replica, burst, new, since, wall, self.loop.time() - burst.first
            )
            if event is None or not self.reported.should_send(event, self.loop.time()):
                continue
            await self._put(event, replica.key)

    async def _put(self, event: DriftWatchEvent, about: str) -> None:
        event["proxy_namespace"] = self.opts["proxy_namespace"]
        event["proxy_selector"] = self.opts["proxy_selector"]
        event["remediate"] = self.opts["remediate"]
        log.info("drift_watch: %s %s: %s", event["status"], about, "; ".join(event["reasons"]))
        await self.queue.put({"drift_watch": event})

    async def run(self) -> None:
        """Read the replicas, start the watches, judge each burst when it is due."""
        await self._read_replicas()
        pods_path = "/api/v1/namespaces/%s/pods" % quote(self.opts["proxy_namespace"], safe="")
        self.tasks["pods"] = asyncio.ensure_future(
            self.watch(
                self.pods,
                pods_path,
                {"labelSelector": self.opts["proxy_selector"]},
                ("pods", self.opts["proxy_namespace"]),
            )
        )
        self._watch_namespaces()
        try:
            while True:
                deadline = self.debounce.deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                self.wake.clear()
                for task in self.tasks.values():
                    if task.done() and not task.cancelled() and task.exception():
                        raise task.exception()  # type: ignore[misc]
                if self.reread:
                    self.reread = False
                    await self._read_replicas()
                    self._watch_namespaces()
                for burst in self.debounce.due(self.loop.time()):
                    await self._judge(burst)
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def main(queue: t.Any, args: dict[str, t.Any]) -> None:
    """ansible-rulebook's entry point: watch until cancelled."""
    opts = settings(args)
    try:
        client = K8sClient(opts)
    except K8sError as exc:
        raise ValueError("drift_watch: %s" % exc) from None
    try:
        await DriftWatch(queue, opts, client).run()
    finally:
        client.close()


if __name__ == "__main__":
    # A quick look without ansible-rulebook: print the events (args from K8S_AUTH_* and argv).

    class _Printer:
        async def put(self, event: t.Any) -> None:
            print(json.dumps(event), flush=True)

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(_Printer(), {"proxy_namespace": sys.argv[1], "proxy_selector": sys.argv[2]}))
