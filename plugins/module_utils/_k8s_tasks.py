# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the Kubernetes modules' tasks (``_tasks.Task``): pod_info,
service_info, proxy_info, proxy_probe and nginx_reload, each written once for its module and
for its action plugin's run on the controller.

Every task of a run shares one ``SharedReads`` (one client: each read made once) when it is
given the same ``connect``, as the role's gathering (``_diagnose``) does.
"""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (
    missing_service,
    selector_string,
    service_facts,
    sort_pods,
    summarize_pod,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import (
    SharedReads,
    parallel_runner,
    values,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._pod_probe import (
    probe,
    self_url,
    unchecked,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._proxy_info import (
    correlate_replicas,
    log_bounds_problem,
    read_replicas,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._reload import ReloadPlan, new_result
from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import (
    Task,
    failed,
    module_main,
    register,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    AUTH_ARG_SPEC,
    K8sClient,
    K8sError,
    K8sNotFound,
    k8s_module,
    kubeconfig_secrets,
    param_problem,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_kinds import (
    AUTO,
    DEFAULT_KIND,
    KINDS,
    proxy_adapter,
    strong_kinds,
)


def k8s_task(name, options, body, **constraints):
    """A Kubernetes module's task: its ``options`` with the connection options, one client per
    run, calls at once up to ``max_in_flight``, a ``K8sError`` the module failing."""
    spec = dict(AUTH_ARG_SPEC)
    spec.update(options)
    return register(
        Task(
            name,
            spec,
            body,
            make_module=lambda: k8s_module(options, supports_check_mode=True, **constraints),
            check=param_problem,
            secrets=lambda params: kubeconfig_secrets(params.get("kubeconfig")),
            connect=Connector,
            runner=lambda params: parallel_runner(params.get("max_in_flight") or 1),
            errors=(K8sError,),
            **constraints,
        )
    )


class Connector:
    """``connect()`` of a run: its SharedReads over one K8sClient made on first use (a
    K8sError that says why none can be made, every time it is asked); ``close()`` at the end."""

    def __init__(self, params):
        self.params = params
        self.made: list[SharedReads] = []

    def __call__(self):
        if not self.made:
            self.made.append(SharedReads(K8sClient(self.params)))
        return self.made[0]

    def close(self):
        """Close the client, if one was made."""
        for reads in self.made:
            reads.close()


# ---------------------------------------------------------------------- pod_info
def choose_selector(reads, namespace, service):
    """The label selector of Service ``namespace/service``; K8sError when unusable."""
    try:
        svc = reads.service(namespace, service)
    except K8sNotFound:
        reads.require_namespace(namespace)
        raise K8sError('Service "%s" not found in namespace "%s"' % (service, namespace)) from None
    selector = (svc.get("spec") or {}).get("selector") or {}
    if not selector:
        raise K8sError(
            'Service "%s/%s" has no selector (its endpoints are managed by hand), '
            "so it chooses no pods; give label_selector instead" % (namespace, service)
        )
    return selector_string(selector)


def selected_pods(reads, namespace, selector, allow_empty):
    """List and summarize the pods; fail clearly on an unknown namespace or no match."""
    raw = reads.pods(namespace, selector)
    if not raw:
        exists = reads.require_namespace(namespace)
        if not allow_empty:
            raise K8sError(
                'no pod in namespace "%s" matches the selector "%s"%s; check the labels '
                "(kubectl get pods --show-labels) or set allow_empty=true"
                % (
                    namespace,
                    selector,
                    ""
                    if exists
                    else " (whether the namespace exists could not be "
                    "checked: no get on namespaces)",
                )
            )
    return sort_pods([summarize_pod(p) for p in raw])


def _pod_info(params, connect, _check_mode, _run):
    reads = connect()
    selector = params["label_selector"]
    if params["service"]:
        selector = choose_selector(reads, params["namespace"], params["service"])
    pods = selected_pods(reads, params["namespace"], selector, params["allow_empty"])
    return {"changed": False, "selector": selector, "pods": pods}


# ---------------------------------------------------------------------- service_info
def service_of(reads, namespace, name, must_exist):
    """The service fact: the Service and what belongs to it."""
    try:
        svc = reads.service(namespace, name)
    except K8sNotFound:
        reads.require_namespace(namespace)
        if must_exist:
            raise K8sError('Service "%s" not found in namespace "%s"' % (name, namespace)) from None
        return missing_service(namespace, name)
    selector = (svc.get("spec") or {}).get("selector") or {}
    pods = []
    if selector:
        pods = sort_pods(
            [summarize_pod(p) for p in reads.pods(namespace, selector_string(selector))]
        )
    slices = reads.endpointslices(namespace, name)
    return service_facts(svc, pods, slices)


def _service_info(params, connect, _check_mode, _run):
    reads = connect()
    service = service_of(reads, params["namespace"], params["name"], params["must_exist"])
    return {"changed": False, "service": service}


# ---------------------------------------------------------------------- proxy_info
def _proxy_info(params, connect, _check_mode, run):
    problem = log_bounds_problem(params)
    if problem:
        return failed(problem)
    reads = connect()
    adapter = reads.share_adapter(proxy_adapter(reads.client, params["kind"]))
    pods, inspected = read_replicas(reads, adapter, params, run)
    return correlate_replicas(reads, pods, inspected, params, run)


# ---------------------------------------------------------------------- proxy_probe
def select_pods(reads, namespace, names, selector, run):
    """Raw pods by name or selector; K8sError for an unknown namespace or no match."""
    if names:
        wanted = sorted(set(names))
        try:
            return values(run([lambda n=n: reads.client.get_pod(namespace, n) for n in wanted]))
        except K8sNotFound:
            reads.require_namespace(namespace)
            raise
    pods = reads.pods(namespace, selector)
    if not pods:
        reads.require_namespace(namespace)
        raise K8sError('no pod in namespace "%s" matches the selector "%s"' % (namespace, selector))
    return sorted(pods, key=lambda p: p["metadata"]["name"])


def probe_replica(adapter, pod, params):
    """The probe fact of one replica; a failed read of this replica stays in its fact."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    try:
        return _probe_replica(adapter, pod, params, namespace, name)
    except K8sError as exc:
        return unchecked(namespace, name, params["url"], "could not run the probe: %s" % exc)


def _probe_replica(adapter, pod, params, namespace, name):
    container = adapter.pick_container(pod, params["container"])
    url = params["url"]
    if (params["target"] or ("url" if url else "self")) == "self":
        url, error = self_url(adapter, pod, container, params["port"], params["path"])
        if error:
            return unchecked(namespace, name, None, error)
    return probe(adapter.client, namespace, name, container, url, params["probe_timeout"])


def probe_pods(reads, pods, params, run):
    """Probe from inside each of the raw ``pods`` at once; their facts, in order."""
    adapter = reads.share_adapter(proxy_adapter(reads.client, params["kind"]))
    return values(run([lambda pod=pod: probe_replica(adapter, pod, params) for pod in pods]))


def probe_timeout_problem(params):
    """Why ``probe_timeout`` cannot be used, or None."""
    if params["probe_timeout"] <= 0:
        return "probe_timeout must be positive, got %s" % params["probe_timeout"]
    return None


def _proxy_probe(params, connect, _check_mode, run):
    problem = probe_timeout_problem(params)
    if problem:
        return failed(problem)
    reads = connect()
    pods = select_pods(reads, params["namespace"], params["pods"], params["selector"], run)
    return {"changed": False, "probes": probe_pods(reads, pods, params, run)}


# ---------------------------------------------------------------------- nginx_reload
def _kind_of(connect, params, name):
    """The adapter whose steps a check-mode reload of pod ``name`` names: the given kind, or
    with ``auto`` the one kind the pod's containers name (None: the pod could not be read or
    names none or several; the steps of every kind are named then)."""
    if params["kind"] != AUTO:
        return None
    try:
        pod = connect().client.get_pod(params["namespace"], name)
    except K8sError:
        return None
    kinds = strong_kinds(pod)
    return proxy_adapter(kind=kinds[0]) if len(kinds) == 1 else None


def _nginx_reload(params, connect, check_mode, _run):
    names = list(dict.fromkeys(params["pods"]))
    if not names:
        return {"changed": False, "replicas": [], "msg": "no replica given: nothing to reload"}
    if check_mode:
        # Nothing runs in the pods: only the steps are named, in the words of each pod's kind
        # when ``auto`` can tell it from the pod itself (a GET, read-only), else of every kind.
        plan = ReloadPlan(proxy_adapter(kind=params["kind"]), params)
        replicas = [
            new_result(params["namespace"], name, plan.steps(_kind_of(connect, params, name)))
            for name in names
        ]
        return {
            "changed": True,
            "replicas": replicas,
            "msg": "check mode: would run, in each of %s: %s"
            % (", ".join(names), "; ".join(replicas[0]["planned"])),
        }
    # One replica after the other, on purpose: never two replicas of a proxy reloading at once.
    plan = ReloadPlan(proxy_adapter(connect().client, params["kind"]), params)
    replicas = plan.run(params["namespace"], names)
    changed = any(r["reloaded"] for r in replicas)
    bad = [r for r in replicas if not r["verified"]]
    if bad:
        return failed(
            "; ".join("%s/%s: %s" % (r["namespace"], r["name"], r["error"]) for r in bad),
            changed=changed,
            replicas=replicas,
        )
    skipped = [r["name"] for r in replicas if r["skipped"]]
    note = (
        "; not reloaded (reloaded since, or in the cooldown): %s" % ", ".join(skipped)
        if skipped
        else ""
    )
    return {
        "changed": changed,
        "replicas": replicas,
        "msg": "verified: %s%s" % (", ".join(names), note),
    }


k8s_task(
    "pod_info",
    {
        "namespace": {"type": "str", "required": True},
        "label_selector": {"type": "str"},
        "service": {"type": "str"},
        "allow_empty": {"type": "bool", "default": False},
    },
    _pod_info,
    mutually_exclusive=[("label_selector", "service")],
    required_one_of=[("label_selector", "service")],
)
k8s_task(
    "service_info",
    {
        "namespace": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "must_exist": {"type": "bool", "default": False},
    },
    _service_info,
)
k8s_task(
    "proxy_info",
    {
        "namespace": {"type": "str", "required": True},
        "selector": {"type": "str", "required": True, "aliases": ["label_selector"]},
        "container": {"type": "str"},
        "kind": {"type": "str", "default": DEFAULT_KIND, "choices": list(KINDS)},
        "service_namespace": {"type": "list", "elements": "str", "default": []},
        "tail_lines": {"type": "int", "default": 5000},
        "since_seconds": {"type": "int"},
        "limit_bytes": {"type": "int", "default": 4 * 1024 * 1024},
        "max_errors": {"type": "int", "default": 50},
        "cluster_domain": {"type": "str", "default": "cluster.local"},
    },
    _proxy_info,
)
k8s_task(
    "proxy_probe",
    {
        "namespace": {"type": "str", "required": True},
        "pods": {"type": "list", "elements": "str"},
        "selector": {"type": "str", "aliases": ["label_selector"]},
        "container": {"type": "str"},
        "kind": {"type": "str", "default": DEFAULT_KIND, "choices": list(KINDS)},
        "target": {"type": "str", "choices": ["url", "self"]},
        "url": {"type": "str"},
        "port": {"type": "int"},
        "path": {"type": "str", "default": "/"},
        "probe_timeout": {"type": "float", "default": 5},
    },
    _proxy_probe,
    mutually_exclusive=[("pods", "selector")],
    required_one_of=[("pods", "selector")],
    required_if=[("target", "url", ("url",))],
)
k8s_task(
    "nginx_reload",
    {
        "namespace": {"type": "str", "required": True},
        "pods": {"type": "list", "elements": "str", "required": True},
        "container": {"type": "str"},
        "kind": {"type": "str", "default": DEFAULT_KIND, "choices": list(KINDS)},
        "probe_path": {"type": "str"},
        "probe_port": {"type": "int"},
        "probe_url": {"type": "str"},
        "settle_timeout": {"type": "float", "default": 5},
        "probe_timeout": {"type": "float", "default": 5},
        "cooldown": {"type": "int", "default": 300},
        "force": {"type": "bool", "default": False},
        "lock_timeout": {"type": "float", "default": 30},
        "reloaded_after": {"type": "str"},
    },
    _nginx_reload,
    mutually_exclusive=[("probe_url", "probe_path")],
)


def run_module(name):
    """The entry point of the Kubernetes module ``name`` (a task above)."""
    module_main(name)
