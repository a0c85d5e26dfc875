"""The fault proxy itself, with real clients: kubectl, the kubernetes Python client, urllib3,
ansible-playbook. What the collection does under each fault is the fault matrix's business;
here: does the proxy pass everything through, inject what it is told, record what it saw, and
leave nothing behind."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
import urllib3
import yaml

from faults.conftest import explain, port_open, run_playbook
from faults.faultproxy import FaultProxy, Rule, forbidden, status_body

pytestmark = pytest.mark.lab

LOG = r"/pods/[^/]+/log$"
EXEC = r"/pods/[^/]+/exec$"


def proxy_pod(fl, index=0):
    return fl.info["proxy_pods"][index].split("/")


def http_client(fl):
    """urllib3 against the proxy: the lab CA, the admin token, no retries."""
    config = yaml.safe_load(fl.kubeconfig.read_text())
    token = config["users"][0]["user"]["token"]
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED", ca_certs=str(fl.lab.dir / "pki" / "ca.crt"), retries=False
    )
    return pool, {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def raw_tls(fl):
    """A TLS socket to the proxy, verified with the lab CA (for byte-level looks)."""
    context = ssl.create_default_context(cafile=str(fl.lab.dir / "pki" / "ca.crt"))
    sock = socket.create_connection(("127.0.0.1", fl.proxy.port), timeout=5)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


# ---------------------------------------------------------------- rules without a lab


def test_rules_are_validated_and_matched_as_documented():
    with pytest.raises(ValueError, match="rule 1: action 'explode'"):
        Rule.from_dict({"action": "explode"}, 1)
    with pytest.raises(ValueError, match="unknown key.*intervall"):
        Rule.from_dict({"action": "drip", "intervall": 1})
    with pytest.raises(ValueError, match="times must be"):
        Rule.from_dict({"action": "hang", "times": -1})
    with pytest.raises(ValueError, match="loopback only"):
        FaultProxy("https://10.0.0.1:6443", "ca", "crt", "key")

    exec_q = {"command": ["nginx", "-s", "reload"], "container": ["nginx"]}
    reload = Rule.from_dict(
        {"path": EXEC, "query": {"command": r"^nginx -s reload$"}, "action": "close"}
    )
    assert reload.matches("GET", "/api/v1/namespaces/web/pods/p-0/exec", exec_q, "websocket")
    assert not reload.matches(
        "GET", "/api/v1/namespaces/web/pods/p-0/exec", {"command": ["nginx", "-T"]}, "websocket"
    )
    assert not reload.matches("GET", "/api/v1/namespaces/web/pods/p-0/log", exec_q, None)
    ws = Rule.from_dict({"method": ["get", "post"], "upgrade": "websocket", "action": "status"})
    assert ws.matches("GET", "/x", {}, "websocket") and not ws.matches("POST", "/x", {}, "SPDY/3.1")
    assert not ws.matches("DELETE", "/x", {}, "websocket")
    plain = Rule.from_dict(
        {"upgrade": False, "query": {"follow": None, "container": True}, "action": "status"}
    )
    assert plain.matches("GET", "/x", {"container": ["a"]}, None)
    assert not plain.matches("GET", "/x", {"container": ["a"]}, "websocket")
    assert not plain.matches("GET", "/x", {"container": ["a"], "follow": ["true"]}, None)
    assert not plain.matches("GET", "/x", {}, None)

    rule = forbidden("web", "nginx-proxy-1", times=2)
    assert rule["code"] == 403 and rule["times"] == 2
    assert rule["message"] == (
        'pods "nginx-proxy-1" is forbidden: User "diagnose-502" cannot get resource "pods/log" '
        'in API group "" in the namespace "web"'
    )
    compiled = Rule.from_dict(rule)
    assert compiled.matches("GET", "/api/v1/namespaces/web/pods/nginx-proxy-1/log", {}, None)
    assert not compiled.matches("GET", "/api/v1/namespaces/web/pods/nginx-proxy-10/log", {}, None)
    assert not compiled.matches("GET", "/api/v1/namespaces/web/pods/nginx-proxy-0/log", {}, None)
    body = status_body(503)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["reason"] == "ServiceUnavailable" and body["code"] == 503


# ---------------------------------------------------------------- passthrough


def test_everything_passes_through_by_default(fault_lab):
    fl = fault_lab("stale_upstream")
    ns, pod = proxy_pod(fl)
    assert fl.proxy.url != fl.info["api_server"] and str(fl.proxy.port) in fl.kubeconfig.read_text()
    assert yaml.safe_load(fl.vars_file.read_text())["diagnose_502_kubeconfig"] == str(fl.kubeconfig)

    got = fl.kubectl("get", "pods", "-n", ns, "-o", "name")
    direct = fl.lab.kubectl("get", "pods", "-n", ns, "-o", "name")
    assert got.returncode == 0 and got.stdout == direct.stdout and pod in got.stdout, got.stderr
    logs = fl.kubectl("logs", "-n", ns, pod)
    assert logs.returncode == 0 and "connect() failed (111: Connection refused)" in logs.stdout, (
        logs.stderr
    )
    version = fl.kubectl("exec", "-n", ns, pod, "--", "nginx", "-v")
    assert version.returncode == 0 and "nginx version: nginx/" in version.stderr, version.stderr

    # The kubernetes Python client (urllib3 for REST, websocket-client for exec).
    from kubernetes import config
    from kubernetes.client import CoreV1Api
    from kubernetes.stream import stream

    api = CoreV1Api(config.new_client_from_config(config_file=str(fl.kubeconfig)))
    try:
        names = sorted(p.metadata.name for p in api.list_namespaced_pod(ns).items)
        assert f"pod/{pod}" in direct.stdout and pod in names
        assert "connect() failed (111" in api.read_namespaced_pod_log(pod, ns, container="nginx")
        out = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            ns,
            container="nginx",
            command=["cat", "/etc/resolv.conf"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
        assert f"search {ns}.svc.cluster.local" in out, out  # the pod's own file
    finally:
        api.api_client.close()

    seen = fl.proxy.requests
    assert seen and all(s.action == "pass" and s.rule is None for s in seen), fl.proxy.log()
    assert all(s.status is not None for s in seen), fl.proxy.log()
    execs = fl.proxy.execs()
    assert [(e.command, e.upgrade.lower(), e.status) for e in execs] == [
        ("nginx -v", "websocket", 101),
        ("cat /etc/resolv.conf", "websocket", 101),
    ], fl.proxy.log()
    assert len(fl.proxy.seen(method="GET", path=LOG, status=200)) == 2, fl.proxy.log()
    assert fl.proxy.seen(path=rf"/namespaces/{ns}/pods$", query={"limit": "500"}), fl.proxy.log()


# ---------------------------------------------------------------- status answers


def test_status_rules_fail_logs_and_exec_with_the_status_message(fault_lab):
    fl = fault_lab(
        "stale_upstream",
        rules=[
            {
                "name": "log500",
                "path": LOG,
                "action": "status",
                "code": 500,
                "message": "etcdserver: request timed out",
            },
            {"name": "exec500", "path": EXEC, "action": "status", "code": 500},
        ],
    )
    ns, pod = proxy_pod(fl)
    logs = fl.kubectl("logs", "-n", ns, pod)
    assert logs.returncode == 1
    assert "Error from server (InternalError): etcdserver: request timed out" in logs.stderr, (
        logs.stderr
    )
    assert "connect() failed" not in logs.stdout
    assert fl.kubectl("get", "pod", "-n", ns, pod).returncode == 0  # the rest still passes

    run = fl.kubectl("exec", "-n", ns, pod, "--", "nginx", "-v")
    assert (
        run.returncode != 0 and "Internal error occurred: injected by faultproxy" in run.stderr
    ), run.stderr
    assert "nginx version" not in run.stdout + run.stderr
    # kubectl tries WebSocket, then falls back to SPDY: both refused, neither reached the lab.
    execs = fl.proxy.execs()
    assert {e.upgrade.split("/")[0].lower() for e in execs} == {"websocket", "spdy"}, fl.proxy.log()
    assert all(e.rule == "exec500" and e.status == 500 for e in execs), fl.proxy.log()
    assert fl.proxy.fired("log500") == 1 and fl.proxy.fired("exec500") == len(execs)

    # A refused upgrade is a plain HTTP answer with a Status body, not a 101.
    pool, headers = http_client(fl)
    resp = pool.request(
        "GET",
        f"{fl.proxy.url}/api/v1/namespaces/{ns}/pods/{pod}/exec?command=true&stdout=true",
        headers={
            **headers,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "v5.channel.k8s.io, v4.channel.k8s.io",
        },
        timeout=5,
    )
    pool.clear()
    assert resp.status == 500 and resp.headers["Content-Type"] == "application/json"
    assert json.loads(resp.data) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: injected by faultproxy",
        "reason": "InternalError",
        "code": 500,
    }


def test_forbidden_log_of_one_replica_only(fault_lab):
    fl = fault_lab("stale_upstream-one_replica")
    (ns, pod0), (_, pod1) = proxy_pod(fl, 0), proxy_pod(fl, 1)
    fl.proxy.set_rules([forbidden(ns, pod1)])
    refused = fl.kubectl("logs", "-n", ns, pod1, diagnose=True)
    assert refused.returncode == 1
    assert (
        f'Error from server (Forbidden): pods "{pod1}" is forbidden: User "diagnose-502" cannot get resource '
        f'"pods/log" in API group "" in the namespace "{ns}"'
    ) in refused.stderr, refused.stderr
    readable = fl.kubectl("logs", "-n", ns, pod0, diagnose=True)
    assert readable.returncode == 0 and "connect() failed" in readable.stdout, readable.stderr
    assert [s.status for s in fl.proxy.seen(path=LOG)] == [403, 200], fl.proxy.log()


def test_times_skip_and_rules_changed_while_running(fault_lab):
    fl = fault_lab("stale_upstream")
    ns, pod = proxy_pod(fl)

    def log_ok():
        return fl.kubectl("logs", "-n", ns, pod, "--tail=1").returncode == 0

    assert log_ok()
    fl.proxy.set_rules([{"path": LOG, "action": "status", "code": 503, "times": 1}])
    assert [log_ok(), log_ok(), log_ok()] == [False, True, True]
    fl.proxy.set_rules([{"path": LOG, "action": "status", "code": 404, "skip": 1, "times": 1}])
    assert [log_ok(), log_ok(), log_ok()] == [True, False, True]
    assert [s.status for s in fl.proxy.seen(path=LOG)] == [200, 503, 200, 200, 200, 404, 200], (
        fl.proxy.log()
    )

    # Only the first exec fails (the Python client does not fall back to SPDY).
    from kubernetes import config
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    fl.proxy.set_rules(
        [{"path": EXEC, "upgrade": "websocket", "action": "status", "code": 500, "times": 1}]
    )
    api = CoreV1Api(config.new_client_from_config(config_file=str(fl.kubeconfig)))
    try:

        def run():
            return stream(
                api.connect_get_namespaced_pod_exec,
                pod,
                ns,
                container="nginx",
                command=["nginx", "-v"],
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
            )

        with pytest.raises(ApiException) as refused:
            run()
        assert "Handshake status 500" in str(refused.value), refused.value
        assert "nginx version" in run()
    finally:
        api.api_client.close()
    assert [e.status for e in fl.proxy.execs(query={"command": "^nginx -v$"})] == [500, 101], (
        fl.proxy.log()
    )
    assert not fl.proxy.execs(query={"command": "reload"})


# ---------------------------------------------------------------- slow, silent and wrong answers


def test_drip_outlasts_a_read_timeout_until_the_proxy_stops(fault_lab):
    """A GET and an exec WebSocket, each with a 1 s socket timeout, still going after 6 s."""
    fl = fault_lab(
        "stale_upstream",
        rules=[
            {"method": "GET", "path": r"/pods$", "action": "drip", "interval": 0.5},
            {"path": EXEC, "action": "drip", "interval": 0.5},
        ],
    )
    ns, pod = proxy_pod(fl)
    pool, headers = http_client(fl)
    state = {"bytes": 0, "error": None, "status": None}
    ws_state = {"connected": False, "frames": [], "error": None}

    def read_slowly():
        try:
            resp = pool.request(
                "GET",
                f"{fl.proxy.url}/api/v1/namespaces/{ns}/pods",
                headers=headers,
                timeout=urllib3.Timeout(connect=2, read=1),
                preload_content=False,
            )
            state["status"] = resp.status
            try:
                while resp.read(1):
                    state["bytes"] += 1
            finally:
                resp.release_conn()
                pool.clear()
        except Exception as exc:  # what the client ends with is the point of the test
            state["error"] = exc

    def exec_slowly():
        import websocket

        url = (
            f"wss://127.0.0.1:{fl.proxy.port}/api/v1/namespaces/{ns}/pods/{pod}/exec"
            "?command=nginx&command=-v&container=nginx&stdout=true&stderr=true"
        )
        try:
            ws = websocket.create_connection(
                url,
                timeout=1,
                header=[f"Authorization: {headers['Authorization']}"],
                subprotocols=["v5.channel.k8s.io", "v4.channel.k8s.io"],
                sslopt={"ca_certs": str(fl.lab.dir / "pki" / "ca.crt")},
            )
            ws_state["connected"] = True
            try:
                while True:
                    ws_state["frames"].append(ws.recv())
            finally:
                ws.close()
        except Exception as exc:  # the end of the session is the point of the test
            ws_state["error"] = exc

    started = time.monotonic()
    readers = [
        threading.Thread(target=read_slowly, daemon=True),
        threading.Thread(target=exec_slowly, daemon=True),
    ]
    for reader in readers:
        reader.start()
    time.sleep(6)
    assert all(r.is_alive() for r in readers), (
        f"a read ended after {time.monotonic() - started:.1f} s: {state} {ws_state}"
    )
    assert state["status"] == 200 and state["error"] is None
    assert 5 <= state["bytes"] <= 16, state  # ~2 bytes a second, no read timeout
    assert fl.proxy.seen(path=r"/pods$", action="drip", status=200), fl.proxy.log()
    # The exec was upgraded at once; its frames (~100 bytes: stderr, status) come a byte at a time.
    assert ws_state["connected"] and ws_state["error"] is None and not ws_state["frames"], ws_state
    assert [(e.action, e.status) for e in fl.proxy.execs()] == [("drip", 101)], fl.proxy.log()
    fl.proxy.stop()  # bounded: stopping ends the drips
    for reader in readers:
        reader.join(3)
        assert not reader.is_alive()
    assert isinstance(state["error"], urllib3.exceptions.ProtocolError), state
    assert ws_state["error"] is not None and not ws_state["frames"], ws_state
    assert time.monotonic() - started < 10


def test_drip_headers_hang_html_close_delay_and_other_codes(fault_lab):
    fl = fault_lab("healthy")
    pool, headers = http_client(fl)
    pods = f"{fl.proxy.url}/api/v1/namespaces/{fl.info['proxy_namespace']}/pods"

    fl.proxy.set_rules([{"action": "drip_headers", "upstream": False, "interval": 0.2}])
    with raw_tls(fl) as sock:
        sock.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\n\r\n")
        got, started = b"", time.monotonic()
        sock.settimeout(0.5)
        while time.monotonic() - started < 1.5:
            try:
                got += sock.recv(100)
            except socket.timeout:
                pass
    assert b"HTTP/1.1 200 OK\r\n".startswith(got) and 4 <= len(got) <= 10, got

    fl.proxy.set_rules([{"path": r"/pods$", "action": "hang"}])
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        pool.request("GET", pods, headers=headers, timeout=urllib3.Timeout(connect=2, read=1))
    assert 0.9 < time.monotonic() - started < 3
    assert fl.proxy.seen(action="hang", status=None), fl.proxy.log()

    fl.proxy.set_rules([{"action": "html"}])
    resp = pool.request("GET", pods, headers=headers, timeout=5)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert b"<form" in resp.data
    html = fl.kubectl("get", "pods")
    assert html.returncode != 0, html.stdout

    fl.proxy.set_rules([{"action": "close"}])
    with pytest.raises(urllib3.exceptions.ProtocolError):
        pool.request("GET", pods, headers=headers, timeout=5)

    fl.proxy.set_rules([{"action": "status", "code": 503}, {"action": "status", "code": 404}])
    resp = pool.request("GET", pods, headers=headers, timeout=5)
    assert resp.status == 503 and json.loads(resp.data)["reason"] == "ServiceUnavailable"
    fl.proxy.set_rules(
        [{"action": "status", "code": 404, "reason": "NotFound", "message": 'pods "x" not found'}]
    )
    resp = pool.request("GET", pods, headers=headers, timeout=5)
    assert resp.status == 404 and json.loads(resp.data)["message"] == 'pods "x" not found'

    fl.proxy.set_rules([{"path": r"/pods$", "action": "pass", "delay": 1, "name": "slow"}])
    started = time.monotonic()
    resp = pool.request("GET", pods, headers=headers, timeout=5)
    assert resp.status == 200 and json.loads(resp.data)["kind"] == "PodList"
    assert time.monotonic() - started >= 1 and fl.proxy.fired("slow") == 1

    pool.clear()
    actions = [s.action for s in fl.proxy.requests]
    for action in ("drip_headers", "hang", "html", "close", "status", "pass"):
        assert action in actions, fl.proxy.log()


# ---------------------------------------------------------------- ansible-playbook through the proxy


def test_run_playbook_goes_through_the_proxy(fault_lab, tmp_path):
    fl = fault_lab("healthy")
    proc, result = run_playbook(fl, tmp_path, playbook="drift_check", timeout=120)
    assert proc.returncode == 0, explain(proc, fl)
    assert result is not None and result["status"] == "ok", result
    assert proc.leftovers == [] and proc.seconds < 120
    ns = fl.info["proxy_namespace"]
    assert fl.proxy.seen(path=rf"/namespaces/{ns}/pods$"), fl.proxy.log()
    assert fl.proxy.execs(), fl.proxy.log()


def test_run_playbook_past_its_timeout_is_killed_and_fails(fault_lab, tmp_path):
    fl = fault_lab("healthy", rules=[{"action": "hang"}])
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"did not finish within 6 s"):
        run_playbook(
            fl,
            tmp_path,
            "-e",
            "diagnose_502_request_timeout=60",
            playbook="diagnose_502",
            timeout=6,
        )
    assert time.monotonic() - started < 15
    assert fl.proxy.seen(action="hang"), "the run never reached the API"
    time.sleep(0.5)
    alive = _processes_mentioning(str(fl.vars_file))
    assert not alive, f"still running after the kill: {alive}"


def _processes_mentioning(text):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(f"{entry.name} {cmd}")
    return found


# ---------------------------------------------------------------- nothing outlives the test


@pytest.fixture
def after_teardown():
    """Checks run after every other fixture of the test is torn down (request it first)."""
    checks = []
    yield checks
    for check in checks:
        check()


def test_the_fixture_stops_the_proxy_ends_hangs_and_closes_its_port(after_teardown, fault_lab):
    fl = fault_lab("healthy", rules=[{"action": "hang"}])
    port, ns = fl.proxy.port, fl.info["proxy_namespace"]
    assert port_open(port)
    outcome = {}

    def hang():
        with raw_tls(fl) as sock:
            sock.sendall(f"GET /api/v1/namespaces/{ns}/pods HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sock.settimeout(60)
            try:
                outcome["received"] = sock.recv(100)  # b"" once the proxy closes the connection
            except socket.timeout:
                outcome["received"] = "timed out"
            except OSError as exc:  # a reset is an end too
                outcome["received"] = exc

    client = threading.Thread(target=hang, daemon=True)
    client.start()
    fl.proxy.wait_for(timeout=5, action="hang")
    thread = fl.proxy._thread

    def check():
        client.join(5)  # the client waits up to 60 s by itself
        assert not client.is_alive(), "the hanging request outlived the proxy"
        received = outcome["received"]
        assert received == b"" or isinstance(received, OSError), outcome
        assert not thread.is_alive()
        assert not port_open(port), f"port {port} still open after the fixture ended"
        assert not [t for t in threading.enumerate() if t.name == "faultproxy"]

    after_teardown.append(check)
    assert re.match(r"https://127\.0\.0\.1:\d+$", fl.proxy.url)
