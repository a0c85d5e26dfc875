"""The event source badgateway.k8s.drift_watch, loaded by path as ansible-rulebook loads it:
its options (mistakes named, K8S_AUTH_* fallbacks), what it reads from the replicas, and how a
watch stream's lines become decisions and events (no cluster, no lab)."""

from __future__ import annotations

import asyncio
import datetime
import runpy
from pathlib import Path

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import drift_watch as core
from ansible_collections.badgateway.k8s.plugins.module_utils import proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError

from fake_k8s import FakeExec, done

SOURCE = (
    Path(__file__).resolve().parents[2]
    / "extensions"
    / "eda"
    / "plugins"
    / "event_source"
    / "drift_watch.py"
)


@pytest.fixture(scope="module")
def source():
    return runpy.run_path(str(SOURCE))


def test_options_defaults_and_env_fallbacks(source, monkeypatch) -> None:
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/tmp/kc")
    monkeypatch.delenv("K8S_AUTH_CONTEXT", raising=False)
    opts = source["settings"](
        {
            "proxy_namespace": "web",
            "proxy_selector": "app=nginx",
            "namespaces": "a, b",
            "debounce_seconds": "0.5",
            "verify_ssl": "false",  # an alias, as the modules take it
            "eda_feedback_queue": object(),  # ansible-rulebook's own, not an option
        }
    )
    assert opts["kubeconfig"] == "/tmp/kc" and opts["context"] is None
    assert opts["namespaces"] == ["a", "b"] and opts["debounce_seconds"] == 0.5
    assert opts["validate_certs"] is False and opts["request_timeout"] == 10.0
    assert (opts["debounce_max_seconds"], opts["repeat_seconds"]) == (3.0, 300.0)
    assert opts["remediate"] is False and opts["unreachable_seconds"] == 30.0


@pytest.mark.parametrize(
    "args, message",
    [
        ({"proxy_selector": "app=x"}, "set proxy_namespace"),
        ({"proxy_namespace": "web", "proxy_selector": "a=b", "colour": 1}, "unknown option"),
        (
            {"proxy_namespace": "web", "proxy_selector": "a=b", "debounce_seconds": "soon"},
            "option debounce_seconds: expected float, got 'soon'",
        ),
        (
            {"proxy_namespace": "web", "proxy_selector": "a=b", "request_timeout": 0},
            "request_timeout must be a positive number",
        ),
        (
            {"proxy_namespace": "web", "proxy_selector": "a=b", "debounce_seconds": 5},
            "debounce_seconds <= debounce_max_seconds",
        ),
        (
            {"proxy_namespace": "web", "proxy_selector": "a=b", "validate_certs": "maybe"},
            "option validate_certs: expected bool",
        ),
    ],
)
def test_option_mistakes_are_named(source, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        source["settings"](args)


def test_a_missing_kubeconfig_stops_the_source_with_its_name(source, tmp_path) -> None:
    async def run():
        await source["main"](
            asyncio.Queue(),
            {"proxy_namespace": "web", "proxy_selector": "a=b", "kubeconfig": str(tmp_path / "no")},
        )

    with pytest.raises(ValueError, match="kubeconfig file .*/no does not exist"):
        asyncio.run(run())


NGINX_T = """\
# configuration file /etc/nginx/conf.d/default.conf:
server {
    listen 80;
    location / { proxy_pass http://web-headless:8080; }
    location /api { proxy_pass http://api:9000; }
}
"""
PROCS = (
    "pidfile /run/nginx.pid 7\nbtime 1796000000\nhz 100\n"
    "stat 7 (nginx) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\ncmd nginx: master process\n"
    "stat 8 (nginx) S 7 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0\ncmd nginx: worker process\n"
)


class Client(FakeExec):
    """FakeExec plus the GETs the source makes."""

    def __init__(self, services, pods, **kw):
        super().__init__(**kw)
        self.services, self.listed = services, pods

    def list_pods(self, namespace, label_selector=None):
        return self.listed

    def get_service(self, namespace, name):
        if name not in self.services:
            raise K8sError('services "%s" is forbidden' % name, 403)
        return self.services[name]


def proxy_pod(name, phase="Running"):
    return {
        "metadata": {"name": name, "namespace": "web"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
        "status": {"phase": phase},
    }


def test_read_replicas_pins_headless_names_and_says_what_it_could_not_read(source) -> None:
    client = Client(
        {
            "web-headless": {"spec": {"clusterIP": "None"}},
            "api": {"spec": {"clusterIP": "10.0.0.1"}},
        },
        [proxy_pod("nginx-0"), proxy_pod("nginx-1", "Pending")],
        answers={"nginx -T": done(0, NGINX_T), "procs": done(0, PROCS)},
        scripts={proxy_nginx.PROC_SCRIPT: "procs"},
    )
    opts = {"proxy_namespace": "web", "proxy_selector": "app=nginx", "proxy_container": None}
    opts["cluster_domain"] = "cluster.local"
    replicas = {r.name: r for r in source["read_replicas"](client, opts)}
    first = replicas["nginx-0"]
    assert first.pinned == {"web/web-headless": "web-headless"}
    assert first.dialled == ["web/api", "web/web-headless"]
    assert first.unread is None and first.container == "nginx"
    assert first.last_reload == datetime.datetime(
        2026, 11, 30, 0, 53, 22, tzinfo=datetime.timezone.utc
    )
    assert first.reload_id == "7:8"
    assert replicas["nginx-1"].unread == "pod web/nginx-1 is not Running"


class Queue:
    def __init__(self):
        self.items = []

    async def put(self, item):
        self.items.append(item)


def slice_event(kind, ips, rv):
    return {
        "type": kind,
        "object": {
            "metadata": {
                "name": "web-headless-x",
                "namespace": "web",
                "resourceVersion": str(rv),
                "labels": {core.SERVICE_LABEL: "web-headless"},
            },
            "ports": [{"port": 8080}],
            "endpoints": [
                {"addresses": [ip], "targetRef": {"kind": "Pod", "name": "app-" + ip[-1]}}
                for ip in ips
            ],
        },
    }


def test_stream_lines_become_one_event_for_the_replica_at_risk(source, monkeypatch) -> None:
    reloaded = datetime.datetime(2026, 11, 30, 9, 0, 0, tzinfo=datetime.timezone.utc)
    ready = reloaded + datetime.timedelta(seconds=30)
    monkeypatch.setitem(
        source["DriftWatch"]._judge.__globals__, "refresh_reloads", lambda c, r: None
    )
    monkeypatch.setitem(
        source["DriftWatch"]._judge.__globals__,
        "ready_times",
        lambda c, pods: {p: ready for p in pods},
    )

    async def run():
        opts = source["settings"](
            {
                "proxy_namespace": "web",
                "proxy_selector": "app=nginx",
                "debounce_seconds": 0,
                "remediate": "true",
            }
        )
        queue = Queue()
        watch = source["DriftWatch"](queue, opts, client=None)
        replica = core.Replica("web", "nginx-0", "nginx", {"web/web-headless": "web-headless"})
        replica.dialled, replica.last_reload, replica.reload_id = (
            ["web/web-headless"],
            reloaded,
            "7:8",
        )
        watch.replicas = [replica]
        state = watch.slices["web"] = core.WatchState(core.ENDPOINTSLICES)
        state.replace([slice_event("ADDED", ["10.0.0.1"], 1)["object"]], "1")
        for kind, ips, rv in (("MODIFIED", [], 2), ("MODIFIED", ["10.0.0.2"], 3)):
            watch._event(state, slice_event(kind, ips, rv))
        watch._event(state, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
        assert state.version == "9"
        for burst in watch.debounce.due(watch.loop.time() + 1):
            await watch._judge(burst)
        with pytest.raises(source["Expired"]):
            watch._event(state, {"type": "ERROR", "object": {"code": 410, "message": "too old"}})
        with pytest.raises(K8sError, match="the watch ended with an error: boom"):
            watch._event(state, {"type": "ERROR", "object": {"code": 500, "message": "boom"}})
        return queue.items

    (item,) = asyncio.run(run())
    event = item["drift_watch"]
    assert (event["status"], event["replica"], event["proxy_selector"]) == (
        "at_risk",
        "nginx-0",
        "app=nginx",
    )
    assert event["old_endpoints"] == ["10.0.0.1:8080"] and event["new_endpoints"] == [
        "10.0.0.2:8080"
    ]


def test_ssl_context_follows_the_client_settings(source, tmp_path) -> None:
    assert source["_ssl_context"](None) is False
    loose = source["_ssl_context"]({"verify": False, "check_hostname": False, "files": {}})
    assert loose.verify_mode.name == "CERT_NONE" and not loose.check_hostname
    strict = source["_ssl_context"]({"verify": True, "check_hostname": True, "files": {}})
    assert strict.verify_mode.name == "CERT_REQUIRED" and strict.check_hostname


def test_no_proxy_replica_is_could_not_check_once(source) -> None:
    class Empty:
        def list_pods(self, namespace, label_selector=None):
            return []

    async def run():
        opts = source["settings"]({"proxy_namespace": "web", "proxy_selector": "app=nginx"})
        queue = Queue()
        watch = source["DriftWatch"](queue, opts, client=Empty())
        await watch._read_replicas()
        await watch._read_replicas()  # still none: not said again
        return queue.items

    (item,) = asyncio.run(run())
    event = item["drift_watch"]
    assert event["status"] == "could_not_check" and event["replica"] is None
    assert event["reasons"] == [
        "no pod in namespace web matches app=nginx: there is no proxy replica to watch"
    ]


def test_an_unreachable_api_at_start_is_could_not_check(source) -> None:
    class Down:
        def list_pods(self, namespace, label_selector=None):
            raise K8sError("cannot reach the Kubernetes API at https://x: refused")

    async def run():
        opts = source["settings"](
            {
                "proxy_namespace": "web",
                "proxy_selector": "app=nginx",
                "backoff_seconds": 0.01,
                "unreachable_seconds": 0.02,
            }
        )
        queue = Queue()
        watch = source["DriftWatch"](queue, opts, client=Down())
        task = asyncio.ensure_future(watch._read_replicas())
        deadline = watch.loop.time() + 5  # bounded
        while not queue.items and watch.loop.time() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        return queue.items

    (item,) = asyncio.run(run())
    assert item["drift_watch"]["status"] == "could_not_check"
    assert "reading the proxy replicas has failed for" in item["drift_watch"]["reasons"][0]
    assert "refused" in item["drift_watch"]["reasons"][0]


def test_a_reload_is_read_again_by_the_adapter_of_the_kind_the_replica_was_picked_as(
    source, monkeypatch
) -> None:
    """With kind auto, a fresh adapter knows no pod: the second read of a replica's workers
    must go to the kind its container was picked as (an haproxy replica to haproxy's)."""
    asked = []

    class Adapter:
        def __init__(self, kind):
            self.kind = kind

        def read_processes(self, namespace, name, container):
            asked.append((self.kind, namespace, name, container))
            return {
                "master_pid": 7,
                "workers": [{"pid": 9, "start_time": "2026-11-30T10:00:00Z"}],
            }

    monkeypatch.setitem(
        source["refresh_reloads"].__globals__, "proxy_adapter", lambda c, kind=None: Adapter(kind)
    )
    replicas = [
        core.Replica("web", "edge-0", "haproxy", kind="haproxy"),
        core.Replica("web", "edge-1", "nginx", kind="nginx"),
        core.Replica("web", "edge-2"),  # never read: no container picked
    ]
    source["refresh_reloads"](None, replicas)
    assert asked == [("haproxy", "web", "edge-0", "haproxy"), ("nginx", "web", "edge-1", "nginx")]
    assert replicas[0].reload_id == "7:9"
    assert replicas[0].last_reload == datetime.datetime(
        2026, 11, 30, 10, 0, tzinfo=datetime.timezone.utc
    )
