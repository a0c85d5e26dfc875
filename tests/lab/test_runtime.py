"""The lab runtime: scenario validation, every scenario's reproduction, exec/log interface,
DNS via /etc/hosts, ClusterIPs by the kernel, app behaviours, parallel labs."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from badlab import render
from badlab.scenario import PROXY_KINDS
from badlab import scenario as scenario_mod
from badlab.errors import ExecNotFound, PodNotRunning, ScenarioError
from badlab.fixture import SCENARIOS, _env
from badlab.runtime import (
    MUSL_ERRNO_TEXT,
    MUSL_STRERROR,
    Runtime,
    acquire_slot,
    dns_reply,
    http_get_status,
    write_log_noise,
)
from badlab.store import Store

from ansible_collections.badgateway.k8s.plugins.module_utils import haproxy_log
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import (
    error_log_plan,
    parse_nginx_t,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    ERROR_SIGNATURES,
    parse_error_line,
)

ALL_SCENARIOS = sorted(SCENARIOS.glob("*.yml"))
BACKEND = Path(__file__).parent / "badlab" / "backend.py"

SEED = (SCENARIOS / "stale_upstream.yml").read_text()


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_file_validates(path):
    loaded = scenario_mod.load(path)
    assert loaded.expect["cause"] == path.stem.split("-")[0]
    assert loaded.proxy["selector"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (
            ("status: 200\n", "status: two hundred\n"),
            "pods[0].containers[0].app.status",
            "an integer from 100 to 599",
        ),
        (("  - name: open-webui-0\n", "  - name: Open_WebUI\n"), "pods[0].name", "a DNS label"),
        (
            ("replace_pod: {pod: open-webui-0}", "replace_pod: {pod: open-webui-9}"),
            "timeline[1].replace_pod.pod",
            "the name of a pod declared under pods",
        ),
        (
            ("replace_pod: {pod: open-webui-0}", "restart_pod: {pod: open-webui-0}"),
            "timeline[1].restart_pod",
            "one of the actions",
        ),
        (
            ("  cause: stale_upstream\n", "  cause: healthy\n"),
            "expect.cause",
            "the cause the file is named after",
        ),
        (
            ("proxy:\n  service: nginx-proxy\n", "proxy:\n  service: open-webui-headless\n"),
            "proxy.service",
            "a ClusterIP Service",
        ),
        (
            ("        app:\n", "        aap:\n"),
            "pods[0].containers[0].aap",
            "one of the known keys",
        ),
        (
            ("    clusterIP: None\n", "    clusterIP: 10.0.0.1\n"),
            "services[1].clusterIP",
            "None (a headless Service)",
        ),
        (("target:\n  service: open-webui\n", ""), "target", "this key to be present"),
    ],
)
def test_scenario_mistakes_name_file_key_and_expectation(tmp_path, edit, key, expected):
    old, new = edit
    assert old in SEED
    path = _write(tmp_path, "stale_upstream.yml", SEED.replace(old, new, 1))
    with pytest.raises(ScenarioError) as err:
        scenario_mod.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: expected ")
    assert expected in message


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (
            ("        nginx:\n", "        nginx:\n          libc: uclibc\n"),
            "pods[1].containers[0].nginx.libc",
            "one of glibc, musl",
        ),
        (
            (
                "  - requests: {count: 2, expect_status: 200}",
                "  - requests: {count: 2, method: PUT}",
            ),
            "timeline[0].requests.method",
            "one of GET, POST",
        ),
        (
            ("  stale_addresses: true\n", "  stale_replicas: [nginx-proxy-7]\n"),
            "expect.stale_replicas[0]",
            "the name of a proxy pod (nginx-proxy-0)",
        ),
        (
            ("        app:\n", "        app:\n          accept: false\n          listen: false\n"),
            "pods[0].containers[0].app.accept",
            "accept: false only with listen: true",
        ),
        (
            (
                "  - replace_pod: {pod: open-webui-0}",
                "  - log_noise: {pod: nginx-proxy-0, lines: 0}",
            ),
            "timeline[1].log_noise.lines",
            "an integer from 1 to 200000",
        ),
        (
            (
                "proxy_pass http://open-webui-headless:8080;",
                "proxy_pass http://u; } } upstream u { $(UPSTREAM_SERVERS:nope)",
            ),
            "pods[1].containers[0].nginx.conf.d.default.conf",
            "naming a Service declared under services",
        ),
        (
            (
                "  - replace_pod: {pod: open-webui-0}",
                "  - render_config: {pod: open-webui-0}",
            ),
            "timeline[1].render_config.container",
            "an nginx container",
        ),
        (
            ("timeline:\n", "network_policies:\n  - {name: deny, spec: {}}\ntimeline:\n"),
            "network_policies[0].spec.podSelector",
            "this key to be present",
        ),
        (
            (
                "timeline:\n",
                "network_policies:\n  - name: p\n    spec:\n      podSelector: {}\n"
                "      ingress: [{from: [{ipBlock: {cidr: nope}}]}]\ntimeline:\n",
            ),
            "network_policies[0].spec.ingress[0].from[0].ipBlock",
            "IPv4 CIDRs",
        ),
        (
            (
                "timeline:\n",
                "network_policies:\n  - name: p\n    spec:\n      podSelector:\n"
                "        matchExpressions: [{key: app, operator: Is, values: [a]}]\ntimeline:\n",
            ),
            "network_policies[0].spec.podSelector.matchExpressions[0].operator",
            "one of In, NotIn, Exists, DoesNotExist",
        ),
        (
            ("timeline:\n", "network: {vanished_ip: blackhole}\ntimeline:\n"),
            "network.vanished_ip",
            "one of refuse, timeout, unreachable",
        ),
        (
            ("  - replace_pod: {pod: open-webui-0}", "  - recreate_service: {service: nope}"),
            "timeline[1].recreate_service.service",
            "the name of a Service declared under services",
        ),
        (
            ("  - replace_pod: {pod: open-webui-0}", "  - update_service: {service: open-webui}"),
            "timeline[1].update_service",
            "selector or ports",
        ),
    ],
)
def test_new_scenario_keys_are_validated(tmp_path, edit, key, expected):
    old, new = edit
    assert old in SEED, old
    path = _write(tmp_path, "stale_upstream.yml", SEED.replace(old, new, 1))
    with pytest.raises(ScenarioError) as err:
        scenario_mod.load(path)
    assert str(err.value).startswith(f"{path}: {key}: expected "), str(err.value)
    assert expected in str(err.value)


def test_scenario_yaml_syntax_error_names_the_line(tmp_path):
    path = _write(tmp_path, "healthy.yml", "pods: [\n  {name: x\n")
    with pytest.raises(ScenarioError, match=r"healthy.yml: not valid YAML at line \d+, column \d+"):
        scenario_mod.load(path)


def test_cli_rejects_a_bad_scenario_and_starts_nothing(tmp_path):
    path = _write(tmp_path, "stale_upstream.yml", SEED.replace("status: 200\n", "status: 999\n", 1))
    lab_dir = tmp_path / "lab"
    up = subprocess.run(
        [sys.executable, "-m", "badlab", "up", "--scenario", str(path), "--dir", str(lab_dir)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert up.returncode == 2
    assert (
        "pods[0].containers[0].app.status: expected an integer from 100 to 599, got 999"
        in up.stderr
    )
    assert "nothing was started" in up.stderr
    assert "Traceback" not in up.stderr
    assert not lab_dir.exists()
    check = subprocess.run(
        [sys.executable, "-m", "badlab", "check", str(path), *map(str, ALL_SCENARIOS)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert check.returncode == 1
    assert check.stdout.count(": ok (") == len(ALL_SCENARIOS)


# ----------------------------------------------------------------------------- every scenario, for real


def _error_log_files(container) -> list[str]:
    """The files a container's nginx.conf sends error_log to (none for the lab's default, nor
    for haproxy, which logs to stdout)."""
    if container.nginx is None or not container.nginx.nginx_conf:
        return []
    plan = error_log_plan(parse_nginx_t(container.nginx.nginx_conf))
    return [f["path"] for f in plan["files"] if f["path"].startswith("/")]


def _proxy_logs(lab, path) -> list[str]:
    """Each proxy replica's lines: its proxy container's log (it need not be the pod's first)
    and the error log files its nginx.conf writes to (not links to stderr)."""
    spec = scenario_mod.load(path)
    nginx = {p.name: c for p in spec.pods for c in p.containers if c.kind in PROXY_KINDS}
    logs = []
    for key in lab.info["proxy_pods"]:
        ns, pod = key.split("/")
        proc = lab.kubectl("logs", "-n", ns, pod, "-c", nginx[pod].name)
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout
        for name in _error_log_files(nginx[pod]):
            read = ["sh", "-c", '[ -L "$1" ] || cat "$1"', "sh", name]
            cat = lab.kubectl("exec", "-n", ns, pod, "-c", nginx[pod].name, "--", *read)
            assert cat.returncode == 0, cat.stderr
            text += cat.stdout
        logs.append(text)
    return logs


def _upstream_errors(log: str) -> list[str]:
    """The lines of a log that are upstream errors (nginx_log's ERROR_SIGNATURES, nginx's
    error lines or haproxy's log lines): not a missing static file or a forbidden access, not a
    secondary `no live upstreams` (haproxy's `<NOSRV>`)."""
    return [
        line
        for line in log.splitlines()
        if (parse_error_line(line) or haproxy_log.parse_log_line(line) or {}).get("signature")
        in ERROR_SIGNATURES
    ]


@pytest.mark.lab
@pytest.mark.parametrize("path", ALL_SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_reproduces_its_case(lab_factory, path):
    lab = lab_factory(path.stem)
    expect = lab.info["expect"]
    statuses = [lab.http_status() for _ in range(4)]
    assert expect["proxy_status"] in statuses
    if expect["cause"] == "healthy":
        assert set(statuses) == {200}
    per_pod = _proxy_logs(lab, path)
    logs = "".join(per_pod)
    for text in expect.get("proxy_log_contains", []):
        assert text in logs, f"{path.name}: {text!r} not in the proxy log"
    if expect["proxy_status"] in (502, 503, 504) and expect["cause"] not in ("backend_502",):
        # an upstream error; or haproxy's "no server available" (<NOSRV>): its health check had
        # already marked the server DOWN, so no request dialled it (the runtime API shows it)
        assert _upstream_errors(logs) or [
            line
            for line in logs.splitlines()
            if (haproxy_log.parse_log_line(line) or {}).get("signature") == "no_live_upstreams"
        ]
    # A healthy case may show upstream errors only where it says so (proxy_log_contains: the
    # errors of a window that has passed, healthy-resolver_window); errors from before a
    # replica's last (re)load may stay in its log (healthy-fixed_by_reload).
    window = any("upstream" in text for text in expect.get("proxy_log_contains", []))
    if expect["cause"] in ("healthy", "backend_502") and not window:
        for log in per_pod:
            assert not _upstream_errors(log.rsplit("start worker processes", 1)[-1]), log


@pytest.mark.lab
def test_crash_records_last_state_and_previous_log(lab_factory):
    lab = lab_factory("backend_crash")
    pod = json.loads(
        lab.kubectl("get", "pod", "-n", "open-webui", "open-webui-0", "-o", "json").stdout
    )
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert "running" in status["state"]
    previous = lab.kubectl("logs", "-n", "open-webui", "open-webui-0", "--previous")
    assert previous.returncode == 0, previous.stderr
    assert "Uvicorn running on" in previous.stdout


@pytest.mark.lab
def test_parallel_labs_use_distinct_slots(lab_factory):
    first, second = lab_factory("stale_upstream"), lab_factory("healthy")
    assert first.info["slot"] != second.info["slot"]
    assert first.proxy_url != second.proxy_url
    assert first.info["api_server"] != second.info["api_server"]
    assert first.http_status() == 502
    assert second.http_status() == 200


# ----------------------------------------------------------------------------- runtime in-process


def _run(scenario_name: str, body, tmp_path: Path):
    """Start a Runtime for a scenario in this process, run ``body(runtime)``, always stop it."""
    loaded = scenario_mod.load(SCENARIOS / f"{scenario_name}.yml")
    slot, lock_fd = acquire_slot()

    async def main():
        runtime = Runtime(loaded, tmp_path, slot, Store())
        try:
            await runtime.start()
            return await body(runtime)
        finally:
            await runtime.stop()

    try:
        return asyncio.run(main())
    finally:
        os.close(lock_fd)


async def _exec(argv: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


@pytest.mark.lab
def test_exec_runs_inside_the_pod_mount_namespace(tmp_path):
    async def body(rt: Runtime):
        argv = rt.exec_command("open-webui", "nginx-proxy-0", "nginx", ["cat", "/etc/hosts"])
        assert argv[:2] == [rt.nsenter, "--target"] and argv[-2:] == ["/usr/bin/cat", "/etc/hosts"]
        rc, hosts = await _exec(argv)
        assert rc == 0
        assert (
            f"{rt.cluster_ips['open-webui/open-webui']}\topen-webui.open-webui.svc.cluster.local"
            in hosts
        )
        rc, conf = await _exec(
            rt.exec_command("open-webui", "nginx-proxy-0", None, ["cat", "/etc/nginx/nginx.conf"])
        )
        assert "lab pod open-webui/nginx-proxy-0" in conf
        assert (
            "lab pod" not in Path("/etc/nginx/nginx.conf").read_text()
        )  # the host's file is untouched
        rc, pid = await _exec(
            rt.exec_command("open-webui", "nginx-proxy-0", None, ["cat", "/run/nginx.pid"])
        )
        assert int(pid) == rt.pods["open-webui/nginx-proxy-0"].containers["nginx"].current.proc.pid

        with pytest.raises(
            ExecNotFound, match='exec: "no-such-tool": executable file not found in \\$PATH'
        ):
            rt.exec_command("open-webui", "nginx-proxy-0", "nginx", ["no-such-tool"])
        rt.pods["open-webui/nginx-proxy-0"].containers["nginx"].spec.missing.append("curl")
        with pytest.raises(ExecNotFound, match='"curl"'):
            rt.exec_command("open-webui", "nginx-proxy-0", "nginx", ["curl", "-s", "http://x/"])
        with pytest.raises(PodNotRunning, match='pods "nope" not found'):
            rt.exec_command("open-webui", "nope", None, ["ls"])
        with pytest.raises(PodNotRunning, match="container sidecar is not valid"):
            rt.exec_command("open-webui", "nginx-proxy-0", "sidecar", ["ls"])

    _run("healthy", body, tmp_path)


@pytest.mark.lab
def test_hosts_file_is_rewritten_in_place_and_logs_are_cri(tmp_path):
    async def body(rt: Runtime):
        proxy = rt.pods["open-webui/nginx-proxy-0"]
        hosts = proxy.directory / "etc" / "hosts"
        inode = hosts.stat().st_ino
        old_ip = rt.pods["open-webui/open-webui-0"].ip
        assert f"{old_ip}\topen-webui-headless.open-webui.svc.cluster.local" in hosts.read_text()
        _, new = await rt.replace_pod("open-webui/open-webui-0")
        assert hosts.stat().st_ino == inode
        text = hosts.read_text()
        assert f"{new.ip}\topen-webui-headless" in text and old_ip not in text
        rc, seen = await _exec(
            rt.exec_command(
                "open-webui", "nginx-proxy-0", None, ["getent", "hosts", "open-webui-headless"]
            )
        )
        assert seen.split()[0] == new.ip

        log = rt.log_path("open-webui", "nginx-proxy-0", "nginx")
        assert rt.log_path("open-webui", "nginx-proxy-0", "nginx", previous=True) is None
        assert rt.log_path("open-webui", "nope", None) is None
        for line in log.read_text().splitlines():
            stamp, stream, tag, _ = line.split(" ", 3)
            assert stamp.endswith("Z") and len(stamp.split(".")[1]) == 10
            assert stream in ("stdout", "stderr") and tag in ("F", "P")
        assert " stderr F " in log.read_text() and "start worker process" in log.read_text()

    _run("stale_upstream", body, tmp_path)


@pytest.mark.lab
def test_cluster_ip_refuses_without_ready_endpoints(tmp_path):
    async def body(rt: Runtime):
        ip = rt.cluster_ips["open-webui/open-webui"]
        slices = rt.store.list("endpointslices", "open-webui")
        app_slice = next(
            s
            for s in slices
            if s["metadata"]["labels"]["kubernetes.io/service-name"] == "open-webui"
        )
        assert [e["conditions"]["ready"] for e in app_slice["endpoints"]] == [False]
        endpoints = rt.store.get("endpoints", "open-webui", "open-webui")
        assert (
            "addresses" not in endpoints["subsets"][0]
            and endpoints["subsets"][0]["notReadyAddresses"]
        )
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(ip, 8080)
        c = rt.pods["open-webui/open-webui-0"].containers["open-webui"]
        c.ready_override = c.ready = True
        await rt.sync()
        reader, writer = await asyncio.open_connection(ip, 8080)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
        pod = rt.store.get("pods", "open-webui", "open-webui-0")
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"

    _run("backend_not_ready", body, tmp_path)


# ----------------------------------------------------------------------------- the app backend


def _free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _backend(tmp_path: Path, **behaviour) -> tuple[subprocess.Popen, tuple[str, int]]:
    ip = "127.251.0.1"
    cfg = {
        "status": 200,
        "body": "{}",
        "delay": 0.0,
        "close": False,
        "reset": False,
        "tls_only": False,
        "header_bytes": 0,
        "keepalive_timeout": 5.0,
        "listen": True,
        "listen_port": _free_port(ip),
        "exit_after": None,
        "exit_code": 1,
        "ip": ip,
    } | behaviour
    proc = subprocess.Popen(
        [
            sys.executable,
            "-S",
            "-I",
            str(BACKEND),
            "--lab",
            str(tmp_path),
            "--config",
            json.dumps(cfg),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    proc.stdout.readline()  # "Started server process"
    if cfg["listen"]:
        assert "Uvicorn running on" in proc.stdout.readline()
    return proc, (ip, cfg["listen_port"])


def _request(address, data=b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", timeout=5) -> bytes:
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out and data.startswith(b"GET") and b"keep-alive" in out:
                break
        return out


def test_backend_behaviours(tmp_path):
    proc, addr = _backend(tmp_path, status=503, body='{"x":1}', header_bytes=100)
    try:
        answer = _request(addr)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"set-cookie: session=" + b"x" * 100 in answer and answer.endswith(b'{"x":1}')
        assert '"GET /x HTTP/1.1" 503 Service Unavailable' in proc.stdout.readline()
        tls = _request(addr, data=b"\x16\x03\x01\x02\x00\x01")
        assert tls.startswith(b"HTTP/1.1 400 Bad Request")
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, reset=True)
    try:
        with pytest.raises(ConnectionResetError):
            _request(addr)
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, close=True)
    try:
        assert _request(addr) == b""
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, tls_only=True)
    try:
        assert _request(addr).startswith(b"\x15\x03\x01")
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, keepalive_timeout=0.2, delay=0.1)
    try:
        with socket.create_connection(addr, timeout=5) as s:
            started = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
            assert time.monotonic() - started >= 0.1
            idle = time.monotonic()
            assert s.recv(1) == b""  # the server closes the idle keep-alive connection
            assert 0.15 <= time.monotonic() - idle < 2
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, listen=False, exit_after=0.1, exit_code=3)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr, timeout=1)
        assert proc.wait(timeout=5) == 3
    finally:
        proc.kill()
        proc.wait()


def test_backend_keepalive_race_and_blocked_accept(tmp_path):
    proc, addr = _backend(tmp_path, keepalive_timeout=0.3, keepalive_race=True)
    try:
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
            time.sleep(0.1)  # within the idle timeout: served on the same connection
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
            time.sleep(0.6)  # idle too long: the connection is still open (no FIN while idle) ...
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            with pytest.raises(ConnectionResetError):  # ... and the next request is reset
                s.recv(65536)
    finally:
        proc.kill()
        proc.wait()

    proc, addr = _backend(tmp_path, accept=False)
    try:
        assert "not accepting connections" in proc.stdout.readline()
        started = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):  # SYN dropped: not refused, it hangs
            socket.create_connection(addr, timeout=0.5)
        assert time.monotonic() - started >= 0.45
    finally:
        proc.kill()
        proc.wait()


def test_musl_errno_wording_and_log_noise(tmp_path):
    line = (
        "upstream timed out (110: Connection timed out) while connecting to upstream; "
        "connect() failed (113: No route to host); connect() failed (111: Connection refused)"
    )
    musl = MUSL_ERRNO_TEXT.sub(lambda m: MUSL_STRERROR[m.group(0)], line)
    assert musl == (
        "upstream timed out (110: Operation timed out) while connecting to upstream; "
        "connect() failed (113: Host is unreachable); connect() failed (111: Connection refused)"
    )
    log = tmp_path / "0.log"
    assert write_log_noise(log, 1000, True, "127.9.0.1") == 1000
    raw = log.read_bytes()
    records = raw.splitlines()
    assert len(records) == 1000
    assert all(
        r.split(b" ")[1] in (b"stdout", b"stderr") and r.split(b" ")[2] == b"F" for r in records
    )
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("utf-8", errors="replace")
    assert '" 404 ' in text and '" 200 ' in text
    assert not any(f'" {code} ' in text for code in (500, 502, 503, 504))
    assert "upstream" not in text


@pytest.mark.lab
def test_terminating_pod_and_oomkilled_reason(lab_factory):
    lab = lab_factory("rollout_race")
    pod = json.loads(
        lab.kubectl("get", "pod", "-n", "open-webui", "open-webui-1", "-o", "json").stdout
    )
    # As kube-apiserver sets it (the real tier shows it): the end of the grace period, i.e.
    # the delete's time plus deletionGracePeriodSeconds, after the pod's creation
    meta = pod["metadata"]
    due = datetime.datetime.fromisoformat(meta["deletionTimestamp"].replace("Z", "+00:00"))
    created = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    assert meta["deletionGracePeriodSeconds"] == 30
    assert due - created >= datetime.timedelta(seconds=30)
    assert due > datetime.datetime.now(datetime.timezone.utc)
    assert pod["status"]["containerStatuses"][0]["state"].get("running")
    slices = lab.endpoint_slices("open-webui", "open-webui")
    conditions = {e["targetRef"]["name"]: e["conditions"] for s in slices for e in s["endpoints"]}
    assert (
        conditions["open-webui-1"]["terminating"] is True
        and conditions["open-webui-1"]["ready"] is False
    )
    assert conditions["open-webui-0"] == {"ready": True, "serving": True, "terminating": False}
    # serving is the pod's Ready condition (the real EndpointSlice controller's rule, seen on the
    # real tier): this terminating app closed its listener, its probe fails, so neither holds
    ready_condition = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
    assert (ready_condition, conditions["open-webui-1"]["serving"]) == ("False", False)
    down = lab_factory("backend_down-oomkilled")
    time.sleep(0.5)
    pod = json.loads(
        down.kubectl("get", "pod", "-n", "open-webui", "open-webui-0", "-o", "json").stdout
    )
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)


@pytest.mark.lab
def test_network_policies_are_served_as_declared(lab_factory):
    lab = lab_factory("network_blocked")
    proc = lab.kubectl("get", "networkpolicies", "-n", "open-webui", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    (policy,) = json.loads(proc.stdout)["items"]
    assert policy["metadata"]["name"] == "open-webui-allow-monitoring"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "open-webui"}}
    assert lab.http_status(timeout=10) == 504


@pytest.mark.lab
def test_timeline_actions_change_the_cluster(lab_factory, tmp_path):
    """set_behaviour, set_ready, a crash loop (exit_after), delete_pod, each checked by expect_status."""
    text = (SCENARIOS / "backend_crash-reset.yml").read_text()
    steps = """  - crash: {pod: open-webui-0, exit_code: 137, reason: OOMKilled}
  - requests: {count: 3, expect_status: 502}
"""
    assert steps in text
    text = text.replace(
        steps,
        """  - requests: {count: 2, expect_status: 502}
  - set_behaviour: {pod: open-webui-0, app: {reset: false, status: 200}}
  - requests: {count: 1, expect_status: 200}
  - set_ready: {pod: open-webui-0, ready: false}
  - requests: {count: 1, expect_status: 502}
  - set_ready: {pod: open-webui-0, ready: true}
  - requests: {count: 1, expect_status: 200}
  - set_behaviour: {pod: open-webui-0, app: {exit_after: 0.2, exit_code: 2}}
  - wait: 1.2
""",
    ).replace("        nginx:\n", "        missing: [curl]\n        nginx:\n")
    lab = lab_factory(str(_write(tmp_path, "backend_crash-loop.yml", text)))
    pod = json.loads(
        lab.kubectl("get", "pod", "-n", "open-webui", "open-webui-0", "-o", "json").stdout
    )
    status = pod["status"]["containerStatuses"][0]
    assert (
        status["restartCount"] >= 2
    )  # set_behaviour restarted it, then it exits with code 2 again and again
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert status["lastState"]["terminated"]["reason"] == "Error"
    no_curl = lab.kubectl(
        "exec", "-n", "open-webui", "nginx-proxy-0", "--", "curl", "-s", "http://x/"
    )
    assert no_curl.returncode != 0 and "executable file not found" in no_curl.stderr
    events = lab.kubectl("get", "events", "-n", "open-webui")
    assert "BackOff" in events.stdout


def _query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return (
        qid.to_bytes(2, "big")
        + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        + labels
        + qtype.to_bytes(2, "big")
        + b"\0\x01"
    )


def test_dns_reply_answers_records_and_nxdomain():
    records = {"web.shop.svc.cluster.local": ["127.30.1.10", "127.30.1.11"]}

    def resolve(name):
        return records.get(name, [] if name == "svc.cluster.local" else None)

    answer = dns_reply(_query("web.shop.svc.cluster.local"), resolve)
    assert answer[:2] == b"\x12\x34"
    flags, qd, an = (
        int.from_bytes(answer[2:4], "big"),
        answer[4:6],
        int.from_bytes(answer[6:8], "big"),
    )
    assert flags & 0x8000 and flags & 0x000F == 0 and qd == b"\0\x01" and an == 2
    assert answer.endswith(
        socket.inet_aton("127.30.1.10")
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04"
        + socket.inet_aton("127.30.1.11")
    )
    missing = dns_reply(_query("web"), resolve)
    assert int.from_bytes(missing[2:4], "big") & 0x000F == 3 and missing[6:8] == b"\0\0"
    aaaa = dns_reply(_query("web.shop.svc.cluster.local", qtype=28), resolve)
    assert int.from_bytes(aaaa[2:4], "big") & 0x000F == 0 and aaaa[6:8] == b"\0\0"
    assert dns_reply(b"\x00\x01", resolve) is None
    assert dns_reply(answer, resolve) is None  # a response is not answered


@pytest.mark.lab
def test_cluster_dns_server_serves_the_runtime_records(tmp_path):
    async def body(rt: Runtime):
        app = rt.pods["open-webui/open-webui-0"]
        assert rt.resolve("open-webui-headless.open-webui.svc.cluster.local") == [app.ip]
        assert rt.resolve("open-webui.open-webui.svc.cluster.local.") == [
            rt.cluster_ips["open-webui/open-webui"]
        ]
        assert rt.resolve("kube-dns.kube-system.svc.cluster.local") == [rt.dns_ip]
        assert rt.resolve("open-webui") is None and rt.resolve("example.com") is None
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(rt.dns_ip, 53))
        try:
            transport.sendto(_query("open-webui-headless.open-webui.svc.cluster.local"))
            reply = await asyncio.wait_for(answers.get(), 5)
        finally:
            transport.close()
        assert reply.endswith(socket.inet_aton(app.ip))

    _run("healthy-resolver", body, tmp_path)


def test_upstream_servers_render_one_line_per_ready_endpoint():
    """A controller's rendering: each placeholder becomes server lines, indented like it."""
    seen = []

    def addresses(namespace, service):
        seen.append((namespace, service))
        return {"shop": ["127.20.1.10:8080", "127.20.1.11:8080"]}.get(service, [])

    text = "upstream a {\n    $(UPSTREAM_SERVERS:shop)\n}\nupstream b {\n  $(UPSTREAM_SERVERS:db.data)\n}\n"
    rendered, written = render.render_servers(text, "web", addresses)
    assert rendered == (
        "upstream a {\n    server 127.20.1.10:8080;\n    server 127.20.1.11:8080;\n}\n"
        "upstream b {\n  # no ready endpoint of db\n}\n"
    )
    assert written == ["127.20.1.10:8080", "127.20.1.11:8080"]
    assert seen == [("web", "shop"), ("data", "db")]
    assert render.services_named(text, "web") == [("web", "shop"), ("data", "db")]


def test_backend_paths_and_failure_percentage(tmp_path):
    """Per-path behaviour (the longest prefix wins) and a failure share spread evenly."""
    proc, addr = _backend(
        tmp_path,
        paths={"/api/": {"status": 500, "body": "boom"}, "/api/ok": {"status": 201}},
        fail_percent=25,
        fail_status=502,
    )
    try:
        plain = [_request(addr, b"GET / HTTP/1.0\r\n\r\n").split(b" ")[1] for _ in range(8)]
        assert plain == [b"200", b"200", b"200", b"502"] * 2
        api = _request(addr, b"GET /api/chats HTTP/1.0\r\n\r\n")  # the 9th: not a failure
        assert api.startswith(b"HTTP/1.1 500") and api.endswith(b"boom")
        assert _request(addr, b"GET /api/ok/1 HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 201")
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.lab
def test_a_client_that_gives_up_is_logged_499_by_nginx(tmp_path):
    async def body(rt: Runtime):
        # the app answers after 3 s; this client waits 0.3 s
        assert await http_get_status(rt.proxy_url(), 0.3) is None
        log = rt.log_path("open-webui", "nginx-proxy-0", "nginx")
        deadline = time.monotonic() + 5
        while '" 499 ' not in log.read_text() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert '" 499 ' in log.read_text()

    _run("upstream_timeout", body, tmp_path)
