"""Unit tests of the private fact builders (_k8s_facts) and proxy helpers (_proxy_exec).

The /proc reader runs for real against a real nginx started here (nginx must be installed).
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import _proxy_exec
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (
    missing_service,
    namespace_service_facts,
    service_facts,
    summarize_endpoints,
    summarize_pod,
)
from ansible_collections.badgateway.k8s.plugins.module_utils._ws_exec import ExecResult
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import parse_time


def raw_pod(name, labels=None, ports=None, ready=True, phase="Running", ip="10.0.0.1",
            status=None, deletion=None):
    return {
        "metadata": {"namespace": "shop", "name": name, "uid": "u-" + name,
                     "labels": labels or {"app": "web"}, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "deletionTimestamp": deletion},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "app", "image": "web:1", "ports": ports if ports is not None else
             [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}]}]},
        "status": {"phase": phase, "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [dict({"name": "app", "ready": ready, "started": True,
                                               "restartCount": 0,
                                               "state": {"running": {}}}, **(status or {}))]},
    }


def test_summarize_pod_crashloop_and_oom():
    pod = summarize_pod(raw_pod("web-0", ready=False, status={
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                     "finishedAt": "2026-01-01T00:05:00Z"}}}))
    container = pod["containers"][0]
    assert (container["state"], container["reason"], container["restart_count"]) == \
        ("waiting", "CrashLoopBackOff", 4)
    assert container["last_state"] == {"state": "terminated", "reason": "OOMKilled",
                                       "exit_code": 137, "finished_at": "2026-01-01T00:05:00Z"}
    assert pod["restarts"] == 4 and pod["ready"] is False and pod["pod_ips"] == ["10.0.0.1"]
    assert "container app: CrashLoopBackOff" in pod["problems"]
    assert any("OOMKilled (exit 137)" in p for p in pod["problems"])
    assert "not Ready" in pod["problems"]
    assert container["ports"] == [{"name": "http", "container_port": 8080, "protocol": "TCP"},
                                  {"name": None, "container_port": 9090, "protocol": "UDP"}]


def test_summarize_pod_healthy_and_deleting():
    healthy = summarize_pod(raw_pod("web-1"))
    assert healthy["problems"] == [] and healthy["ready"] and healthy["deletion_timestamp"] is None
    deleting = summarize_pod(raw_pod("web-2", deletion="2026-01-01T01:00:00Z"))
    assert deleting["problems"] == ["being deleted since 2026-01-01T01:00:00Z"]
    pending = summarize_pod({"metadata": {"name": "p", "namespace": "shop"},
                             "status": {"phase": "Pending"}})
    assert pending["problems"] == ["phase Pending"] and pending["containers"] == []


def endpoint_slice(name, endpoints, ports):
    return {"metadata": {"name": name, "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": endpoints, "ports": ports}


def test_summarize_endpoints_conditions():
    eps = summarize_endpoints([endpoint_slice("web-abc", [
        {"addresses": ["10.0.0.1"], "conditions": {},
         "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "shop"}},
        {"addresses": ["10.0.0.2"], "conditions": {"ready": False, "terminating": True}},
        {"addresses": ["fd00::5"], "conditions": {"ready": False}},
    ], [{"name": "http", "port": 8080}])])
    by = {e["address"]: e for e in eps}
    assert set(by) == {"10.0.0.1:8080", "10.0.0.2:8080", "[fd00::5]:8080"}
    assert by["10.0.0.1:8080"]["ready"] and by["10.0.0.1:8080"]["serving"]
    assert by["10.0.0.1:8080"]["target"] == "shop/web-0"
    assert by["10.0.0.2:8080"]["terminating"] and by["10.0.0.2:8080"]["target"] is None
    assert not by["[fd00::5]:8080"]["ready"] and not by["[fd00::5]:8080"]["serving"]


def test_service_facts_target_ports_and_mismatch():
    pods = [summarize_pod(raw_pod("web-0")),
            summarize_pod(raw_pod("web-1", ports=[{"name": "web", "containerPort": 3000}]))]
    svc = {"metadata": {"namespace": "shop", "name": "web"},
           "spec": {"clusterIP": "10.96.0.5", "selector": {"app": "web"},
                    "ports": [{"name": "a", "port": 80, "targetPort": "http"},
                              {"name": "b", "port": 81, "targetPort": 8080}]}}
    slices = [endpoint_slice("web-abc", [{"addresses": ["10.0.0.1"],
                                          "conditions": {"ready": True}}],
                             [{"name": "a", "port": 8080}])]
    fact = service_facts(svc, pods, slices)
    assert fact["cluster_ip"] == "10.96.0.5" and not fact["headless"]
    assert fact["ports"][0]["resolved_target_ports"] == [{"pod": "shop/web-0", "port": 8080},
                                                         {"pod": "shop/web-1", "port": None}]
    assert fact["port_mismatches"] == [
        {"port": 80, "target_port": "http", "pods_without_it": ["shop/web-1"]},
        {"port": 81, "target_port": 8080, "pods_without_it": ["shop/web-1"]}]
    assert fact["ready_addresses"] == ["10.0.0.1:8080"]
    assert fact["matching_pods"] == ["shop/web-0", "shop/web-1"] and fact["selector_matches"]
    assert set(missing_service("shop", "x")) == set(fact)


def test_namespace_service_facts_matches_by_selector_and_label():
    pods = [summarize_pod(raw_pod("web-0")), summarize_pod(raw_pod("db-0", labels={"app": "db"}))]
    services = [{"metadata": {"namespace": "shop", "name": "web"},
                 "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": []}},
                {"metadata": {"namespace": "shop", "name": "manual"},
                 "spec": {"clusterIP": "10.96.0.9", "ports": []}}]
    slices = [endpoint_slice("web-abc", [{"addresses": ["10.0.0.1"]}], [{"port": 8080}])]
    web, manual = namespace_service_facts(services, slices, pods)
    assert web["matching_pods"] == ["shop/web-0"] and web["headless"]
    assert web["ready_addresses"] == ["10.0.0.1:8080"]
    assert manual["matching_pods"] == [] and manual["endpoints"] == []


# ---------------------------------------------------------------- /proc reader, real nginx
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx(tmp_path):
    """A real nginx master with 2 workers on a free loopback port, pid file in tmp_path."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (apt-get install nginx-light)")
    conf = tmp_path / "nginx.conf"
    pid = tmp_path / "nginx.pid"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    conf.write_text("worker_processes 2; pid %s; error_log %s/error.log;\n"
                    "events {}\nhttp { access_log off; server { listen 127.0.0.1:%d; } }\n"
                    % (pid, tmp_path, port))
    (tmp_path / "logs").mkdir()
    subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(conf)], check=True,
                   capture_output=True)
    for _attempt in range(100):
        if pid.exists() and pid.read_text().strip():
            break
        time.sleep(0.05)
    yield {"conf": conf, "pid": pid, "prefix": tmp_path}
    subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(conf), "-s", "quit"],
                   capture_output=True, check=False)


def run_script(pid_file):
    out = subprocess.run(["sh", "-c", _proxy_exec.PROC_SCRIPT, "sh", "/nonexistent.pid",
                          str(pid_file)], capture_output=True, text=True, check=True)
    return _proxy_exec.parse_proc_output(out.stdout)


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return sorted(kids)


def test_proc_reader_on_real_nginx_and_reload(nginx):
    master = int(nginx["pid"].read_text())
    first = run_script(nginx["pid"])
    assert first["problem"] is None and first["master_pid"] == master
    assert sorted(w["pid"] for w in first["workers"]) == children(master)
    assert len(first["workers"]) == 2
    started = parse_time(first["workers"][-1]["start_time"]).timestamp()
    assert abs(time.time() - started) < 30
    subprocess.run([NGINX, "-p", str(nginx["prefix"]), "-c", str(nginx["conf"]), "-s", "reload"],
                   check=True, capture_output=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        second = run_script(nginx["pid"])
        if not {w["pid"] for w in first["workers"]} & {w["pid"] for w in second["workers"]} \
                and len(second["workers"]) == 2:
            break
        time.sleep(0.1)
    assert second["master_pid"] == master
    assert not {w["pid"] for w in first["workers"]} & {w["pid"] for w in second["workers"]}
    assert second["workers"][-1]["start_time"] >= first["workers"][-1]["start_time"]


def test_parse_proc_output_without_pid_file():
    stat = "stat {pid} (nginx) S {ppid} 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {ticks} 0 0"
    text = "\n".join(["btime 1000", "hz 100",
                      stat.format(pid=10, ppid=1, ticks=100), "cmd nginx: master process nginx",
                      stat.format(pid=11, ppid=10, ticks=250), "cmd nginx: worker process",
                      stat.format(pid=12, ppid=10, ticks=150), "cmd nginx: cache manager process"])
    parsed = _proxy_exec.parse_proc_output(text)
    assert parsed["master_pid"] == 10 and parsed["problem"] is None
    assert parsed["workers"] == [{"pid": 11, "start_time": "1970-01-01T00:16:42.50Z"}]
    two = text + "\n" + stat.format(pid=20, ppid=1, ticks=100) + "\ncmd nginx: master process"
    assert "found 2 nginx master processes" in _proxy_exec.parse_proc_output(two)["problem"]
    assert _proxy_exec.parse_proc_output("hz 100")["problem"].startswith("could not read btime")


# ---------------------------------------------------------------- probe tool fallback
class FakeExec:
    """Stands in for K8sClient.exec: answers per argv[0] from a table."""

    timeout = 1.0

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def exec(self, namespace, pod, argv, container=None, timeout=None):
        self.calls.append(argv[0])
        return self.answers[argv[0]]


NOT_FOUND = ExecResult(None, "", "", 'OCI runtime exec failed: exec: "x": executable file '
                       "not found in $PATH: unknown", False, False, "v5.channel.k8s.io")


def test_probe_falls_back_to_wget_and_reads_its_status():
    fake = FakeExec({"curl": NOT_FOUND, "wget": ExecResult(
        1, "", "  HTTP/1.1 502 Bad Gateway\nwget: server returned error: HTTP/1.1 502 Bad Gateway\n",
        None, False, False, "v5.channel.k8s.io")})
    fact = _proxy_exec.probe(fake, "edge", "p-0", "nginx", "http://10.0.0.1/", 2)
    assert fake.calls == ["curl", "wget"]
    assert (fact["tool"], fact["status"], fact["ok"], fact["rc"]) == ("wget", 502, False, 1)


def test_probe_without_any_tool_says_so():
    fact = _proxy_exec.probe(FakeExec({"curl": NOT_FOUND, "wget": NOT_FOUND}), "edge", "p-0",
                             "nginx", "http://10.0.0.1/", 2)
    assert fact["tool"] is None and fact["status"] is None and not fact["ok"]
    assert fact["error"].startswith("neither curl nor wget can run in container nginx of pod edge/p-0")


def test_probe_curl_connection_refused():
    fake = FakeExec({"curl": ExecResult(7, "000 0.000100", "curl: (7) Failed to connect", None,
                                        False, False, "v4.channel.k8s.io")})
    fact = _proxy_exec.probe(fake, "edge", "p-0", "nginx", "http://10.0.0.1/", 2)
    assert (fact["tool"], fact["status"], fact["rc"]) == ("curl", None, 7)
    assert fact["error"] == "curl: (7) Failed to connect" and not fact["ok"]


# ---------------------------------------------------------------- picking the nginx container
def two_container_pod(images):
    return {"metadata": {"namespace": "edge", "name": "p-0"},
            "spec": {"containers": [{"name": n, "image": i} for n, i in images]}}


class NginxIn(FakeExec):
    """``nginx -v`` works only in the named container."""

    def __init__(self, where):
        super().__init__({})
        self.where = where

    def exec(self, namespace, pod, argv, container=None, timeout=None):
        self.calls.append(container)
        return ExecResult(0 if container == self.where else None, "", "", None, False, False, None)


def test_pick_container_by_name_image_or_nginx_v():
    pick = _proxy_exec.pick_container
    by_image = two_container_pod([("sidecar", "envoy:1"), ("web", "docker.io/library/nginx:1.27")])
    assert pick(NginxIn(None), by_image) == "web"
    assert pick(NginxIn(None), two_container_pod([("sidecar", "envoy:1"), ("edge", "openresty/openresty:1.25")])) == "edge"
    unnamed = two_container_pod([("sidecar", "envoy:1"), ("edge", "registry.example/edge-proxy:2")])
    fake = NginxIn("edge")
    assert pick(fake, unnamed) == "edge" and fake.calls == ["sidecar", "edge"]
    assert pick(NginxIn(None), unnamed, "sidecar") == "sidecar"
    with pytest.raises(K8sError, match='has no container "nope" \\(it has: sidecar, edge\\)'):
        pick(NginxIn(None), unnamed, "nope")
    with pytest.raises(K8sError, match="no container runs nginx"):
        pick(NginxIn(None), unnamed)


def test_an_nginx_exporter_sidecar_is_not_taken_for_nginx():
    pick = _proxy_exec.pick_container
    exporter = ("exporter", "nginx/nginx-prometheus-exporter:1.3")
    fake = NginxIn(None)
    assert pick(fake, two_container_pod([exporter, ("proxy", "nginx:1.27")])) == "proxy" and fake.calls == []
    # No nginx image to go by: nginx -v decides, trying the container that mentions nginx first.
    fake = NginxIn("proxy")
    assert pick(fake, two_container_pod([exporter, ("proxy", "registry.example/edge:2")])) == "proxy"
    assert fake.calls == ["exporter", "proxy"]
