"""The diagnose task (module_utils/_diagnose.py) against a fake cluster: it gathers what the
role's layers gathered one module at a time, with the same outcome for each, and records each
failure under the layer the role recorded it under.

The reference is the role's old sequence written out here with the modules' own tasks
(proxy_info, the URL probe, proxy_probe of each replica's own address, pod_info, service_info,
proxy_probe of the Service), each run with its own reads: ``one_module_at_a_time``.
"""

import threading

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import _diagnose, proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import SharedReads
from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import TASKS, execute, validate
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError, K8sNotFound
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import done

CONFIG = """# configuration file /etc/nginx/nginx.conf:
error_log stderr;
events {}
http { server { listen 10.0.0.7:80; location / { proxy_pass http://web-headless.shop:8080; } } }
"""
PROCS = (
    "pidfile /run/nginx.pid 7\nbtime 1796000000\nhz 100\n"
    "stat 7 (nginx) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\ncmd nginx: master process\n"
    "stat 8 (nginx) S 7 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0\ncmd nginx: worker process\n"
)
LOG = (
    "2026-11-25T02:39:36.400000Z 2026/11/25 02:39:36 [error] 8#8: *3 connect() failed "
    "(111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: , "
    'request: "GET / HTTP/1.1", upstream: "http://10.1.0.5:8080/", host: "shop"\n'
)


def pod(name, namespace, labels, ip, containers=("nginx",), ready=True):
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": name,
            "labels": labels,
            "creationTimestamp": "2026-11-25T00:00:00Z",
        },
        "spec": {"containers": [{"name": c, "image": c + ":1"} for c in containers]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {"name": c, "ready": ready, "restartCount": 0, "state": {"running": {}}}
                for c in containers
            ],
        },
    }


class Cluster:
    """A fake K8sClient: objects from a table, execs of the nginx adapter, every call recorded
    in order (thread-safe)."""

    timeout = 5.0

    def __init__(self, proxies=2, service=True, configs=None):
        self.lock = threading.Lock()
        self.calls = []
        self.pods = {
            "edge": [
                pod("nginx-%d" % i, "edge", {"app": "nginx"}, "10.0.0.%d" % (7 + i))
                for i in range(proxies)
            ],
            "shop": [pod("web-0", "shop", {"app": "web"}, "10.1.0.6", ("web",))],
        }
        self.services = {"shop": []}
        if service:
            self.services["shop"].append(
                {
                    "metadata": {"name": "web", "namespace": "shop"},
                    "spec": {
                        "selector": {"app": "web"},
                        "clusterIP": "10.2.0.1",
                        "type": "ClusterIP",
                        "ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
                    },
                }
            )
        self.configs = configs or {}

    def _record(self, *what):
        with self.lock:
            self.calls.append(what)

    def list_pods(self, namespace, label_selector=None, field_selector=None):
        self._record("list pods", namespace, label_selector, field_selector)
        found = self.pods.get(namespace, [])
        if label_selector:
            key, value = label_selector.split("=")
            found = [p for p in found if p["metadata"]["labels"].get(key) == value]
        if field_selector:
            ip = field_selector.split("=", 1)[1]
            found = [p for p in found if p["status"]["podIP"] == ip]
        return found

    def get_pod(self, namespace, name):
        self._record("get pod", namespace, name)
        for p in self.pods.get(namespace, []):
            if p["metadata"]["name"] == name:
                return p
        raise K8sNotFound('pods "%s" not found' % name, 404)

    def get_service(self, namespace, name):
        self._record("get service", namespace, name)
        for s in self.services.get(namespace, []):
            if s["metadata"]["name"] == name:
                return s
        raise K8sNotFound('services "%s" not found' % name, 404)

    def list_services(self, namespace):
        self._record("list services", namespace)
        return self.services.get(namespace, [])

    def list_endpointslices(self, namespace, service=None):
        self._record("list endpointslices", namespace, service)
        if namespace != "shop":
            return []
        return [
            {
                "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
                "ports": [{"name": "http", "port": 8080}],
                "endpoints": [
                    {
                        "addresses": ["10.1.0.6"],
                        "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
                    }
                ],
            }
        ]

    def require_namespace(self, namespace):
        self._record("get namespace", namespace)
        if namespace not in self.pods:
            raise K8sError('namespace "%s" does not exist' % namespace)
        return True

    def read_log(self, namespace, pod_name, container=None, **_bounds):
        self._record("log", pod_name)
        return LOG, len(LOG), False

    def exec(self, namespace, pod_name, argv, container=None, timeout=None):
        if argv[:2] == ["nginx", "-T"]:
            self._record("exec", pod_name, "nginx -T")
            return done(0, self.configs.get(pod_name, CONFIG))
        if argv[:2] == ["sh", "-c"] and argv[2] == proxy_nginx.PROC_SCRIPT:
            self._record("exec", pod_name, "procs")
            return done(0, PROCS)
        if argv[0] == "curl":
            self._record("exec", pod_name, "curl " + argv[-1])
            return done(0, "502 0.001" if "10.0.0." in argv[-1] else "200 0.002")
        raise AssertionError("unexpected exec %r" % (argv,))


ROLE = {
    "proxy_namespace": "edge",
    "proxy_selector": "app=nginx",
    "service_namespace": "shop",
    "service_name": "web",
    "url": "http://shop.example/",
    "path": "/",
    "tail_lines": 5000,
    "since_seconds": 3600,
    "limit_bytes": 8388608,
}
AUTH = {"host": "https://127.0.0.1:9", "api_key": "t"}


@pytest.fixture(autouse=True)
def url_answers_502(monkeypatch):
    monkeypatch.setattr(_diagnose, "url_status", lambda url, timeout: 502)


def run(name, args, cluster):
    """A module's task with its own reads of ``cluster``, as the module ran it."""
    params, _no_log, _warnings, failure = validate(TASKS[name], dict(AUTH, **args), name)
    return failure or execute(TASKS[name], params, connect=lambda: SharedReads(cluster))


def one_module_at_a_time(cluster, role):
    """The facts the role's old task files built, module after module (the reference)."""
    errors = {}
    facts = {
        "symptom": None,
        "self_probes": None,
        "pods": None,
        "service": None,
        "svc_probes": None,
        "proxies": None,
        "errors": errors,
    }
    svc_ns = role["service_namespace"] or role["proxy_namespace"]
    svc_name = role.get("service_name") or ""
    # Layer 1 first: the URL (502 here) and each replica's own address, by the selector.
    self_probe = run(
        "proxy_probe",
        {
            "namespace": role["proxy_namespace"],
            "selector": role["proxy_selector"],
            "target": "self",
            "path": "/",
        },
        cluster,
    )
    if self_probe.get("failed"):
        errors["symptom"] = self_probe["msg"]
    else:
        facts["symptom"] = {"url": role["url"], "status": 502}
        facts["self_probes"] = self_probe["probes"]
    got = run(
        "proxy_info",
        {
            "namespace": role["proxy_namespace"],
            "selector": role["proxy_selector"],
            "service_namespace": [svc_ns],
            "tail_lines": role["tail_lines"],
            "since_seconds": role["since_seconds"],
            "limit_bytes": role["limit_bytes"],
        },
        cluster,
    )
    if got.get("failed"):
        errors["proxy_logs"] = errors["symptom"] = got["msg"]
        facts["proxies"] = got.get("proxies")
    else:
        facts["proxies"] = got["proxies"]
        if not svc_name:
            named = _diagnose.named_services(facts["proxies"])
            if len(named) == 1:
                svc_ns, svc_name = named[0].split("/")
            else:
                errors["proxy_logs"] = errors["symptom"] = _diagnose.named_problem(named)
    names = [p["name"] for p in facts["proxies"] or []]
    for layer, name, key, args in (
        ("backend_pods", "pod_info", "pods", {"namespace": svc_ns, "service": svc_name}),
        ("service", "service_info", "service", {"namespace": svc_ns, "name": svc_name}),
    ):
        if not svc_name:
            errors[layer] = _diagnose.NO_SERVICE
            continue
        got = run(name, args, cluster)
        if got.get("failed"):
            errors[layer] = got["msg"]
        else:
            facts[key] = got[key]
    service = facts["service"]
    if not (service is not None and service["exists"] and facts["proxies"]):
        errors["connectivity"] = _diagnose.NO_PROBE
    else:
        url = "http://%s.%s:%s/" % (svc_name, svc_ns, service["ports"][0]["port"])
        got = run(
            "proxy_probe",
            {"namespace": role["proxy_namespace"], "pods": names, "url": url},
            cluster,
        )
        if got.get("failed"):
            errors["connectivity"] = got["msg"]
        else:
            facts["svc_probes"] = got["probes"]
    return facts


def gathered(cluster, role):
    """diagnose's result on ``cluster``, everything read with one SharedReads."""
    params, _no_log, _warnings, failure = validate(
        TASKS["diagnose"], dict(AUTH, **role), "diagnose"
    )
    assert failure is None
    reads = SharedReads(cluster)
    return execute(TASKS["diagnose"], params, connect=lambda: reads)


@pytest.mark.parametrize(
    "role, cluster",
    [
        (ROLE, Cluster),
        (dict(ROLE, service_name=None), Cluster),  # the Service from the config
        (dict(ROLE, proxy_selector="app=none"), Cluster),  # no proxy pod
        (dict(ROLE, service_name="gone"), Cluster),  # the Service does not exist
        (ROLE, lambda: Cluster(service=False)),
        (  # two Services in the configs: which one is asked of the user
            dict(ROLE, service_name=None),
            lambda: Cluster(configs={"nginx-1": CONFIG.replace("web-headless.shop", "api.shop")}),
        ),
    ],
    ids=["seed", "service-from-config", "no-proxy", "no-service", "no-service-object", "two"],
)
def test_the_facts_are_those_the_role_gathered_one_module_at_a_time(role, cluster):
    assert gathered(cluster(), role)["facts"] == one_module_at_a_time(cluster(), role)


def test_the_layers_verdict_and_chain_are_those_of_the_core():
    result = gathered(Cluster(), ROLE)
    layers, verdict, chain = _diagnose.diagnose(result["facts"], {})
    assert [layer["name"] for layer in result["layers"]] == list(_diagnose.LAYERS)
    assert (result["layers"], result["verdict"], result["chain"]) == (layers, verdict, chain)
    assert (result["service_namespace"], result["service_name"]) == ("shop", "web")


def test_the_proxy_is_requested_before_any_replica_log_is_read():
    """Observe first: each replica's own request is in the log read next."""
    cluster = Cluster(proxies=3)
    gathered(cluster, ROLE)
    logs = [i for i, call in enumerate(cluster.calls) if call[0] == "log"]
    own = [
        i for i, call in enumerate(cluster.calls) if str(call[-1]).startswith("curl http://10.0.0.")
    ]
    to_service = [
        i for i, call in enumerate(cluster.calls) if str(call[-1]).startswith("curl http://web.")
    ]
    assert len(logs) == 3 and len(own) == 3 and len(to_service) == 3
    assert max(own) < min(logs)


def test_the_symptom_is_judged_as_observed_before_the_replicas_were_read():
    """No proxy pod: the self-probe says so first (the symptom layer's message); the later
    proxy_info failure is recorded under symptom too, as the role's rescue recorded it."""
    result = gathered(Cluster(), dict(ROLE, proxy_selector="app=none"))
    symptom = result["layers"][0]
    assert symptom["status"] == "error"
    assert symptom["message"] == (
        'Could not be checked: no pod in namespace "edge" matches the selector "app=none"'
    )
    assert "proxy selector" in result["facts"]["errors"]["symptom"]


def test_each_list_is_read_once_per_run():
    cluster = Cluster(proxies=3)
    gathered(cluster, ROLE)
    lists = [call for call in cluster.calls if call[0].startswith(("list", "get service"))]
    assert len(lists) == len(set(lists)), lists
    # The pods are never listed whole: by the proxy's and the Service's selectors, and at the
    # one address the replicas dialled.
    assert ("list pods", "shop", None, None) not in cluster.calls
    assert ("list pods", "shop", None, "status.podIP=10.1.0.5") in cluster.calls


def test_only_the_errors_when_the_facts_are_not_asked_for():
    result = gathered(Cluster(), dict(ROLE, service_name="gone", return_facts=False))
    assert set(result["facts"]) == {"errors"}
    assert result["facts"]["errors"]["backend_pods"] == (
        'Service "gone" not found in namespace "shop"'
    )


def procs_with_workers_aged(seconds):
    """PROCS as read from a replica whose workers started ``seconds`` before the read (the
    master 400 s before): uptime 500.00 s, clock ticks 100 a second."""
    worker_ticks = int(round((500.0 - seconds) * 100))
    return (
        "pidfile /run/nginx.pid 7\nbtime 1796000000\nhz 100\n"
        "clock 1796000500.000000000 500.00\n"
        "stat 7 (nginx) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 10000 0 0\n"
        "cmd nginx: master process\n"
        "stat 9 (nginx) S 7 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n"
        "cmd nginx: worker process\n" % worker_ticks
    )


class ReloadedMeanwhile(Cluster):
    """A cluster whose proxy replicas someone reloads between this run's requests to them and
    its reads of them, ``times`` times: their workers are then younger than the observation."""

    def __init__(self, times, **kwargs):
        super().__init__(**kwargs)
        self.times = times
        self.passes = 0

    def exec(self, namespace, pod_name, argv, container=None, timeout=None):
        if argv[:2] == ["sh", "-c"] and argv[2] == proxy_nginx.PROC_SCRIPT:
            self._record("exec", pod_name, "procs")
            with self.lock:
                passes = sum(1 for c in self.calls if c[:2] == ("exec", pod_name) and "procs" in c)
            return done(0, procs_with_workers_aged(0.0 if passes <= self.times else 120.0))
        return super().exec(namespace, pod_name, argv, container, timeout)


def test_a_replica_reloaded_between_observing_and_reading_is_observed_and_read_again():
    """Its workers started after this run's requests to it (another run reloaded it): what was
    observed (the old workers' 502) and what is read (the new workers) cannot be judged as one
    moment, so both are done again, once, and judged from the second pass."""
    cluster = ReloadedMeanwhile(times=1, proxies=2)
    result = gathered(cluster, ROLE)
    for name in ("nginx-0", "nginx-1"):
        own = [
            c for c in cluster.calls if c[:2] == ("exec", name) and "curl http://10.0.0." in c[2]
        ]
        logs = [c for c in cluster.calls if c == ("log", name)]
        assert len(own) == 2 and len(logs) == 2
    proxies = result["facts"]["proxies"]
    assert [p["read_errors"] for p in proxies] == [{}, {}]
    assert result["layers"][-1]["status"] != "error"


def test_a_replica_reloaded_during_both_passes_is_not_judged():
    """Reloaded again during the second pass: its log is recorded as not read, with why, and
    the proxy layer cannot be checked (never judged from evidence of two moments)."""
    cluster = ReloadedMeanwhile(times=2, proxies=1)
    result = gathered(cluster, ROLE)
    logs = [c for c in cluster.calls if c == ("log", "nginx-0")]
    assert len(logs) == 2
    errors = result["facts"]["errors"]
    assert "was reloaded while this run read it, twice" in errors["proxy_logs"]
    assert result["layers"][-1]["status"] == "error"
    assert result["verdict"]["cause"] != "stale_upstream"


def test_workers_older_than_the_observation_are_read_once():
    cluster = ReloadedMeanwhile(times=0, proxies=2)
    gathered(cluster, ROLE)
    assert len([c for c in cluster.calls if c[0] == "log"]) == 2


class ProbedWhileRead(Cluster):
    """A cluster whose replicas' processes are read only once layer 4's probe (the Service,
    from inside a replica) has started: were the probe to wait for the reads, the wait would
    run out (and record False)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.probing = threading.Event()
        self.overlapped = []

    def exec(self, namespace, pod_name, argv, container=None, timeout=None):
        if argv[0] == "curl" and argv[-1].startswith("http://web."):
            self.probing.set()
        elif argv[:2] == ["sh", "-c"] and argv[2] == proxy_nginx.PROC_SCRIPT:
            self.overlapped.append(self.probing.wait(5))
        return super().exec(namespace, pod_name, argv, container, timeout)


def test_the_service_is_probed_while_the_replicas_are_read():
    """Layer 4's probe requests the Service, not the proxy: it starts once the replicas are
    listed after the observation, at the same time as their reads, with the same facts."""
    cluster = ProbedWhileRead(proxies=2)
    result = gathered(cluster, ROLE)
    assert cluster.overlapped == [True, True]
    own = [i for i, c in enumerate(cluster.calls) if str(c[-1]).startswith("curl http://10.0.0.")]
    to_service = [
        i for i, c in enumerate(cluster.calls) if str(c[-1]).startswith("curl http://web.")
    ]
    assert len(to_service) == 2 and max(own) < min(to_service)  # after the observation
    assert result["facts"] == one_module_at_a_time(Cluster(proxies=2), ROLE)
