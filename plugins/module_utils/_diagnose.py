# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the diagnose task, the read-only diagnosis of the diagnose_502 role
in one pass: every layer's facts gathered, each layer judged (``layers``), the cause decided
(``verdict``) and the request chain drawn (``report_render``).

It runs the very tasks the role's layers ran one module at a time (proxy_info, proxy_probe,
pod_info, service_info, and the URL users hit as ``ansible.builtin.uri`` requested it), with
the options the role gave them and one client for all, and records each outcome where the role
recorded it: ``facts`` has the keys layers.py and verdict.py read, ``errors`` the message of
each layer's step that failed (a module's ``msg``, or the role's own assertion).

What does not depend on something else runs at the same time: the replicas, each replica's
reads, the namespaces' lists, the probes, and the backend's pods and Service (from the start
when the Service is named). The role's order is kept where it matters: the proxy is requested
first (the URL users hit, each replica's own address), and every replica's log is read after
those requests ended, so the logs hold the evidence of the failure seen now, whatever other
traffic came before.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import ssl
import sys
import time
import typing as t
import urllib.error
import urllib.request

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import values
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import (
    k8s_task,
    probe_pods,
    probe_timeout_problem,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._proxy_info import (
    correlate_replicas,
    log_bounds_problem,
    read_replicas,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import (
    TASKS,
    execute,
    validate,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    AUTH_ARG_SPEC,
    K8sError,
    signals_to_the_main_thread,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.layers import assess
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_kinds import (
    DEFAULT_KIND,
    KINDS,
    proxy_adapter,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.report_render import build_chain
from ansible_collections.badgateway.k8s.plugins.module_utils.result import (
    REPORT_FILES_SPEC,
    result_of_gathering,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.verdict import decide

#: The task's (and its module's) name.
NAME = "diagnose"
#: The layers, in the order of the walkthrough (and of the role's assertions).
LAYERS = ("symptom", "backend_pods", "service", "connectivity", "proxy_logs")

NO_SERVICE = "no backend Service was given and none could be found from the proxy's config"
NO_PROBE = "needs the Service and at least one proxy replica, and one of them is missing"

OPTIONS = {
    "proxy_namespace": {"type": "str", "required": True},
    "proxy_selector": {"type": "str", "required": True},
    "proxy_container": {"type": "str"},
    "proxy_kind": {"type": "str", "default": DEFAULT_KIND, "choices": list(KINDS)},
    "proxy_port": {"type": "int"},
    "service_namespace": {"type": "str"},
    "service_name": {"type": "str"},
    "service_port": {"type": "int"},
    "url": {"type": "str"},
    "path": {"type": "str", "default": "/"},
    "tail_lines": {"type": "int", "default": 5000},
    "since_seconds": {"type": "int"},
    "limit_bytes": {"type": "int", "default": 4 * 1024 * 1024},
    "return_facts": {"type": "bool", "default": True},
    # The diagnose_502 role's result, built by this step when nothing follows that changes it
    # (module_utils/result.py's result_of_gathering): one step less for every target.
    "result": {
        "type": "dict",
        "options": {
            "remediate": {"type": "bool", "default": False},
            "inventory_host": {"type": "str"},
            "files": REPORT_FILES_SPEC,
            "show_summary": {"type": "bool", "default": True},
        },
    },
}


def utc_now():
    """Now, as the role writes times: ISO 8601 in UTC with a Z."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat() + "Z"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the answer (its status), not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def unverified_context():
    """The TLS client settings of ``ssl.create_default_context()`` with the certificate not
    verified, without loading the system's CA store: nothing would be checked against it, and
    reading it costs about 20 ms of CPU, for every target."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context


def url_status(url, timeout):
    """The HTTP status ``url`` answers a GET with, as the role's ``ansible.builtin.uri`` step
    asked it (redirects not followed, certificates not verified, proxies from the
    environment, the user agent ``ansible-httpget``); -1 when nothing answered (refused,
    timed out, not HTTP)."""
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=unverified_context())
    )
    opener.addheaders = [("User-agent", "ansible-httpget")]
    try:
        response = opener.open(urllib.request.Request(url, method="GET"), timeout=timeout)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        return status
    except Exception:  # pylint: disable=broad-except  # uri: every other failure is status -1
        return -1
    try:
        return response.getcode()
    finally:
        response.close()


def named_services(proxies):
    """The Services the replicas' configs name, in the order they first appear."""
    named: list[str] = []
    for proxy in proxies:
        for host in proxy["upstream_hosts"]:
            if host.get("service") and host["service"] not in named:
                named.append(host["service"])
    return named


def named_problem(named):
    """The role's message when the configs do not name exactly one Service."""
    return (
        "Could not tell which Service the proxy sends to: its config names %d Services (%s). "
        "Set diagnose_502_service_name (and diagnose_502_service_namespace)."
        % (len(named), ", ".join(named) or "none")
    )


class Gathering:
    """One gathering of the diagnose task (see the module docstring): ``facts()`` after ``run()``."""

    def __init__(self, params, connect, check_mode, run):
        self.params = params
        self.connect = connect
        self.check_mode = check_mode
        self.run_calls = run
        self.auth = {key: params[key] for key in AUTH_ARG_SPEC}
        self.proxy_ns = params["proxy_namespace"]
        self.svc_ns = params["service_namespace"] or self.proxy_ns
        self.svc_name = params["service_name"] or ""
        self.pods: list[dict[str, t.Any]] | None = None  # the proxy replicas, raw
        self.proxy_result: dict[str, t.Any] = {}
        self.named_error: str | None = None
        self.url_status: int | None = None
        self.self_probe: dict[str, t.Any] | None = None
        self.backend: dict[str, dict[str, t.Any]] = {}
        self.svc_probe: dict[str, t.Any] | None = None
        # layer 4's probe when it started while the replicas were read (_observe_and_read)
        self.early_svc_probe: concurrent.futures.Future[None] | None = None

    # ------------------------------------------------------------------ the tasks
    def _checked(self, name, args):
        """``(params, None)`` of task ``name`` with ``args`` and the connection options, or
        ``(None, failure)`` as its module would fail on them."""
        params, _no_log, _warnings, failure = validate(
            TASKS[name], dict(self.auth, **args), "badgateway.k8s." + name
        )
        return (None, failure) if failure else (params, None)

    def _task(self, name, args):
        """The result of task ``name`` run with ``args`` and the run's client."""
        params, failure = self._checked(name, args)
        if failure:
            return failure
        return execute(TASKS[name], params, self.check_mode, self.connect)

    def _container(self):
        """The options that choose the proxy's container: its kind, and its name if given."""
        container = self.params["proxy_container"]
        kind = {"kind": self.params["proxy_kind"]}
        return dict(kind, container=container) if container else kind

    # ------------------------------------------------------------------ the layers' reads
    def read_proxies(self, observed_at=None, listed=None):
        """proxy_info up to every replica's log read: ``(params, reads, pods, inspected)`` to
        correlate, or None when it failed (``proxy_result`` is its failure). ``observed_at``:
        when the observation began (``time.monotonic()``, see ``inspect_replica``); ``listed``:
        called with the replicas once they are listed, before they are read."""
        params, failure = self._checked(
            "proxy_info",
            dict(
                self._container(),
                namespace=self.proxy_ns,
                selector=self.params["proxy_selector"],
                service_namespace=[self.svc_ns],
                tail_lines=self.params["tail_lines"],
                since_seconds=self.params["since_seconds"],
                limit_bytes=self.params["limit_bytes"],
            ),
        )
        failure = failure or (
            {"failed": True, "msg": log_bounds_problem(params)}
            if log_bounds_problem(params)
            else None
        )
        if failure:
            self.proxy_result = failure
            return None
        try:
            reads = self.connect()
            adapter = reads.share_adapter(proxy_adapter(reads.client, params["kind"]))
            pods, inspected = read_replicas(
                reads, adapter, params, self.run_calls, observed_at, listed
            )
        except K8sError as exc:
            self.proxy_result = {"failed": True, "msg": str(exc)}
            return None
        self.pods = pods
        return params, reads, pods, inspected

    def correlate(self, read):
        """The rest of proxy_info: the dialled addresses against the cluster."""
        params, reads, pods, inspected = read
        self.proxy_result = correlate_replicas(reads, pods, inspected, params, self.run_calls)

    def read_backend(self):
        """pod_info and service_info of the backend Service, at once."""
        pods, service = values(
            self.run_calls(
                [
                    lambda: self._task(
                        "pod_info", {"namespace": self.svc_ns, "service": self.svc_name}
                    ),
                    lambda: self._task(
                        "service_info", {"namespace": self.svc_ns, "name": self.svc_name}
                    ),
                ]
            )
        )
        self.backend = {"pod_info": pods, "service_info": service}

    def probe(self, args, pods):
        """proxy_probe from every one of ``pods`` (proxy replicas, raw)."""
        params, failure = self._checked("proxy_probe", dict(self._container(), **args))
        problem = failure or (
            {"failed": True, "msg": probe_timeout_problem(params)}
            if probe_timeout_problem(params)
            else None
        )
        if problem:
            return problem
        try:
            reads = self.connect()
        except K8sError as exc:
            return {"failed": True, "msg": str(exc)}
        return {"changed": False, "probes": probe_pods(reads, pods or [], params, self.run_calls)}

    def probe_self(self):
        """Layer 1's probe: each replica (chosen by the proxy's selector) requests its own
        listen address from inside it: proxy_probe as the role ran it."""
        args: dict[str, t.Any] = {
            "namespace": self.proxy_ns,
            "selector": self.params["proxy_selector"],
            "target": "self",
            "path": self.params["path"],
        }
        args.update(self._container())
        if (self.params["proxy_port"] or 0) > 0:
            args["port"] = self.params["proxy_port"]
        self.self_probe = self._task("proxy_probe", args)

    def probe_service(self, pods=None):
        """Layer 4's probe: the Service by name, from inside each replica (``pods``, else the
        replicas proxy_info listed)."""
        pods = pods if pods is not None else self.pods
        service = self.backend["service_info"]["service"]
        port = self.params["service_port"] or 0
        if port <= 0:
            if not service["ports"]:
                self.svc_probe = {
                    "failed": True,
                    "msg": "Service %s/%s has no port to request; give the port to probe "
                    "(service_port)" % (self.svc_ns, self.svc_name),
                }
                return
            port = service["ports"][0]["port"]
        self.svc_probe = self.probe(
            {
                "namespace": self.proxy_ns,
                "pods": [p["metadata"]["name"] for p in pods or []],
                "url": "http://%s.%s:%s%s"
                % (self.svc_name, self.svc_ns, port, self.params["path"]),
            },
            pods,
        )

    def probe_url(self):
        """Layer 1's other probe: the URL users hit, from here."""
        self.url_status = url_status(self.params["url"], self.auth["request_timeout"])

    # ------------------------------------------------------------------ the pass
    def run(self):
        """Every read and probe, each as early as what it needs allows."""
        self._share_whole_lists(self.proxy_ns, self.svc_ns)
        with concurrent.futures.ThreadPoolExecutor(
            6, "badgateway-k8s-gather", initializer=signals_to_the_main_thread
        ) as lanes:
            backend = lanes.submit(self.read_backend) if self.svc_name else None
            read = self._observe_and_read(lanes, backend)
            if read is not None and not self.svc_name and not self._all_unread(read[3]):
                named = named_services(proxy for proxy, _summary in read[3])
                if len(named) == 1:
                    self.svc_ns, self.svc_name = named[0].split("/")[0], named[0].split("/")[1]
                    self._share_whole_lists(self.svc_ns)
                    backend = lanes.submit(self.read_backend)
                else:
                    self.named_error = named_problem(named)
            pending = [lanes.submit(self.correlate, read)] if read is not None else []
            if self.early_svc_probe is not None:
                pending.append(self.early_svc_probe)
            elif backend is not None:
                backend.result()
                if self._probe_service_ready():
                    pending.append(lanes.submit(self.probe_service))
            for future in pending:
                future.result()
        return self

    def _observe_and_read(self, lanes, backend=None):
        """Observe, then read the replicas: ``read_proxies``' result.

        Layer 4's probe (the Service named by the task: ``backend`` reads it) starts as soon as
        the replicas are listed after the observation, while they are read: it requests the
        Service from inside each replica, not the proxy, so nothing of it reaches the logs being
        read (``_probe_service_early``).

        Observe first: the proxy is requested (the URL, each replica's own address) before any
        replica's log is read, so the logs hold these requests. The observation and the reads
        must see the same workers: when a replica's workers started after the observation began
        (someone reloaded it in between: another run, an operator, a config reloader), what was
        observed was the old workers and what was read is the new ones', which no rule can put
        together. Then the whole is done again, once; a replica reloaded during that second
        pass too has its log recorded as unread (could not check), with why.
        """
        read: tuple[t.Any, ...] | None = None
        for _attempt in range(2):
            observed_at = time.monotonic()
            observed = [lanes.submit(self.probe_self)]
            if self.params["url"]:
                observed.append(lanes.submit(self.probe_url))
            for future in observed:
                future.result()
            read = self.read_proxies(
                observed_at,
                lambda pods: self._start_service_probe(lanes, backend, pods),
            )
            if read is None or not self._reloaded_meanwhile(read[3]):
                return read
        for proxy, _summary in self._reloaded_meanwhile(read[3] if read is not None else []):
            why = (
                "pod %s/%s was reloaded while this run read it, twice (its workers started "
                "after this run's requests to it): what was observed and what was read are of "
                "different configs; run the diagnosis again" % (proxy["namespace"], proxy["name"])
            )
            proxy["problems"].append(why)
            proxy["read_errors"]["log"] = why
        return read

    def _start_service_probe(self, lanes, backend, pods):
        """Start layer 4's probe from ``pods`` (once a run) when the Service is read apart."""
        if backend is not None and self.early_svc_probe is None:
            self.early_svc_probe = lanes.submit(self._probe_service_early, backend, pods)

    def _probe_service_early(self, backend, pods):
        """Layer 4's probe from the listed replicas once the Service is read, when it can run
        (the Service read and there; the same condition as ``_probe_service_ready``)."""
        backend.result()
        if self._service_there():  # pods: select_proxies lists at least one, or raises
            self.probe_service(pods)

    @staticmethod
    def _reloaded_meanwhile(inspected):
        return [
            (proxy, summary)
            for proxy, summary in inspected
            if summary is not None and summary.get("reloaded_after_observation")
        ]

    def _share_whole_lists(self, *namespaces):
        """The EndpointSlices of the proxy's and the backend's namespaces are listed whole to
        compare dialled addresses with: a Service's own are taken from that list."""
        try:
            self.connect().whole_namespaces.update(namespaces)
        except K8sError:
            pass  # no client: every task that needs one says why

    @staticmethod
    def _all_unread(inspected):
        """proxy_info fails: no replica's log could be read (see correlate_replicas)."""
        return all(
            "log" in proxy["read_errors"] or "container" in proxy["read_errors"]
            for proxy, _summary in inspected
        )

    def _probe_service_ready(self):
        return self._service_there() and bool(self._proxies_now())

    def _service_there(self):
        """The Service was read, and exists."""
        service = self.backend["service_info"]
        return not service.get("failed") and service["service"]["exists"]

    def _proxies_now(self):
        """The proxies fact as the role kept it, known before correlation: the replicas
        proxy_info listed (None when it failed before listing any)."""
        return self.pods

    # ------------------------------------------------------------------ the facts
    def symptom_errors(self):
        """The errors when the role judged the symptom layer: right after observing, before the
        proxy's replicas were read (their failure is recorded under symptom too, later)."""
        if self.self_probe is not None and self.self_probe.get("failed"):
            return {"symptom": self.self_probe["msg"]}
        return {}

    def facts(self):
        """The role's facts, with each layer's error where the role recorded it."""
        facts: dict[str, t.Any] = {
            "symptom": None,
            "self_probes": None,
            "pods": None,
            "service": None,
            "svc_probes": None,
            "proxies": None,
            "errors": {},
        }
        errors = facts["errors"]
        if self.self_probe is not None and self.self_probe.get("failed"):
            errors["symptom"] = self.self_probe["msg"]
        else:
            url = self.params["url"]
            facts["symptom"] = {"url": url or None, "status": self.url_status if url else None}
            facts["self_probes"] = (self.self_probe or {}).get("probes") or []
        proxy = self.proxy_result
        if proxy.get("failed"):
            errors["proxy_logs"] = errors["symptom"] = proxy["msg"]
            facts["proxies"] = proxy.get("proxies")
        else:
            facts["proxies"] = proxy["proxies"]
            if self.named_error:
                errors["proxy_logs"] = errors["symptom"] = self.named_error
        for layer, task, key in (
            ("backend_pods", "pod_info", "pods"),
            ("service", "service_info", "service"),
        ):
            if not self.svc_name:
                errors[layer] = NO_SERVICE
            elif self.backend[task].get("failed"):
                errors[layer] = self.backend[task]["msg"]
            else:
                facts[key] = self.backend[task][key]
        if not (facts["service"] is not None and facts["service"]["exists"] and facts["proxies"]):
            errors["connectivity"] = NO_PROBE
        elif self.svc_probe is not None and self.svc_probe.get("failed"):
            errors["connectivity"] = self.svc_probe["msg"]
        elif self.svc_probe is not None:
            facts["svc_probes"] = self.svc_probe["probes"]
        return facts


def diagnose(facts, symptom_errors=None):
    """Each layer judged from ``facts`` (in LAYERS' order), the verdict over them, and the
    request chain: ``(layers, verdict, chain)``, as the role's steps computed them. The symptom
    layer is judged with ``symptom_errors`` (default: those of ``facts``): the role judged it
    right after observing, before the proxy's replicas were read."""
    observed = facts if symptom_errors is None else dict(facts, errors=symptom_errors)
    judged = [assess(observed if name == "symptom" else facts, name) for name in LAYERS]
    verdict = decide(dict(facts, probes=facts["svc_probes"], layers=judged))
    return judged, verdict, build_chain(facts, verdict)


def _diagnose(params, connect, check_mode, run):
    started = utc_now()
    gathering = Gathering(params, connect, check_mode, run).run()
    # As the facts reach the core through a result: JSON types only.
    facts = json.loads(json.dumps(gathering.facts()))
    judged, verdict, chain = diagnose(facts, gathering.symptom_errors())
    out = {
        "changed": False,
        "started": started,
        "facts": facts if params["return_facts"] else {"errors": facts["errors"]},
        "layers": judged,
        "verdict": verdict,
        "chain": chain,
        "service_namespace": gathering.svc_ns,
        "service_name": gathering.svc_name,
    }
    if params["result"] is not None:
        proxy = "%s/%s" % (params["proxy_namespace"], params["proxy_selector"])
        out.update(
            result_of_gathering(out, proxy, params["url"], bool(check_mode), params["result"])
        )
    return out


k8s_task(NAME, OPTIONS, _diagnose)
