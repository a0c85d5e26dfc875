"""Unit tests of HAProxy behind the adapter seam: its config, runtime state and log parsers
(haproxy_log), the adapter's reads (proxy_haproxy) and the per-pod kind (proxy_kinds.auto).

The runtime API and /proc readers also run for real against a real haproxy started here
(Debian's haproxy and socat must be installed: make system-deps).
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import haproxy_log, proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_haproxy import (
    CONFIG_SCRIPT,
    FIND_SCRIPT,
    PID_FILES,
    RELOAD_SCRIPT,
    RUNTIME_SCRIPT,
    TEST_SCRIPT,
    HaproxyAdapter,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_kinds import (
    AutoAdapter,
    proxy_adapter,
    strong_kinds,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import NOT_FOUND, FakeExec, done

CONFIG = """# configuration file /etc/haproxy/haproxy.cfg:
global
    log stdout format raw local0
    stats socket /run/haproxy/admin.sock mode 660 level admin

defaults
    mode http
    timeout connect 1s

resolvers kube-dns
    nameserver dns 10.96.0.10:53

frontend http
    bind 10.244.0.5:80
    bind :8443 ssl crt /x.pem
    default_backend shop

backend shop
    server shop-0 shop-headless.shop.svc.cluster.local:8080 check
    server shop-1 10.244.1.7:8080

backend api
    default-server resolvers kube-dns init-addr last,libc,none
    server-template api 3 api-headless.web.svc.cluster.local:3000 check
"""

# What haproxy 2.6 answers (format 1; the header line as it prints it, one line).
STATE = (
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
    "3 shop 1 shop-0 10.244.1.3 2 0 1 1 5 1 0 2 0 0 0 0 shop-headless.shop.svc.cluster.local "
    "8080 - 0 0 - - 0\n"
    "3 shop 2 shop-1 10.244.1.7 2 0 1 1 5 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0\n"
    "\n"
)

TS = "2026-11-30T09:42:%02d.000000000Z "
LINES = [
    TS % 18
    + '127.0.0.1:58862 [30/Nov/2026:09:42:18.713] http http/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>"',
    TS % 19
    + '10.244.0.1:48055 [30/Nov/2026:09:42:19.747] http shop/shop-0 0/0/0/1/1 200 139 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
    TS % 21 + "[NOTICE]   (7) : Loading success.",
    TS % 30
    + '10.244.0.1:37753 [30/Nov/2026:09:42:30.028] http shop/shop-0 0/0/-1/-1/1001 503 217 - - SC-- 1/1/0/0/1 0/0 "GET / HTTP/1.1"',
    TS % 31
    + '10.244.0.1:54523 [30/Nov/2026:09:42:31.038] http shop/shop-0 0/0/-1/-1/1001 503 217 - - SC-- 1/1/0/0/1 0/0 "GET / HTTP/1.1"',
    TS % 32
    + '10.244.0.1:54524 [30/Nov/2026:09:42:32.038] http shop/shop-1 0/0/0/-1/8 502 217 - - SH-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
    TS % 33
    + '10.244.0.1:54525 [30/Nov/2026:09:42:33.038] http shop/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
    TS % 34
    + '10.244.0.1:54526 [30/Nov/2026:09:42:34.038] http shop/shop-1 0/0/0/2/2 502 90 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
]


# ---------------------------------------------------------------- the config
def test_config_servers_binds_sockets_and_where_they_are_written():
    config = haproxy_log.parse_config(CONFIG, "shop")
    assert config["listen_ports"] == [80, 8443]
    assert config["sockets"] == ["/run/haproxy/admin.sock"]
    hosts = {(h["upstream"], h["host"]): h for h in config["upstream_hosts"]}
    shop0 = hosts[("shop", "shop-headless.shop.svc.cluster.local")]
    assert (shop0["port"], shop0["service"], shop0["runtime_resolved"]) == (
        8080,
        "shop/shop-headless",
        False,
    )
    assert shop0["file"] == "/etc/haproxy/haproxy.cfg:18"
    assert hosts[("shop", "10.244.1.7")]["service"] is None
    # default-server resolvers: haproxy follows DNS at run time there
    api = hosts[("api", "api-headless.web.svc.cluster.local")]
    assert api["runtime_resolved"] is True and api["port"] == 3000


def test_a_server_without_an_address_is_a_config_error():
    config = haproxy_log.parse_config("backend b\n    server lonely\n")
    assert config["errors"] == ["<input>: server without an address"]
    assert config["upstream_hosts"] == []


# ---------------------------------------------------------------- the runtime state
def test_servers_state_by_the_header_names():
    servers = haproxy_log.parse_servers_state(STATE)
    assert servers == [
        {
            "backend": "shop",
            "server": "shop-0",
            "address": "10.244.1.3:8080",
            "fqdn": "shop-headless.shop.svc.cluster.local",
            "op_state": 2,
            "admin_state": 0,
        },
        {
            "backend": "shop",
            "server": "shop-1",
            "address": "10.244.1.7:8080",
            "fqdn": None,
            "op_state": 2,
            "admin_state": 0,
        },
    ]


def test_a_server_template_slot_without_an_address_dials_nothing():
    head = STATE.split("\n")[:2]
    slot = "4 api 1 api1 0.0.0.0 0 32 1 1 9 1 0 0 14 0 0 0 - 3000 - 0 0 - - 0"
    (server,) = haproxy_log.parse_servers_state("\n".join(head + [slot]) + "\n")
    assert server["address"] is None and server["admin_state"] == 32


@pytest.mark.parametrize("text", ["", "Unknown command.\n", "2\n# a b\n"])
def test_anything_else_than_a_servers_state_dump_is_an_error(text):
    with pytest.raises(ValueError, match="not a 'show servers state' dump"):
        haproxy_log.parse_servers_state(text)


# ---------------------------------------------------------------- the log
@pytest.mark.parametrize(
    "index, signature, server, status",
    [
        (0, "not_upstream", None, 400),  # a client's bad request (the lab's readiness connect)
        (1, None, "shop-0", 200),
        (3, "connect_refused", "shop-0", 503),
        (5, "premature_close", "shop-1", 502),
        (6, "no_live_upstreams", None, 503),
        (7, None, "shop-1", 502),  # the server answered 502 itself
    ],
)
def test_log_lines_termination_states(index, signature, server, status):
    entry = haproxy_log.parse_log_line(LINES[index])
    assert (entry["signature"], entry["server"], entry["status"]) == (signature, server, status)


def test_a_notice_is_not_a_log_line():
    assert haproxy_log.parse_log_line(LINES[2]) is None


def test_summary_ties_lines_since_the_reload_to_the_runtime_addresses():
    servers = haproxy_log.parse_servers_state(STATE)
    summary = haproxy_log.summarize(LINES, servers, reload_time="2026-11-30T09:42:20Z")
    by_address = {a["address"]: a for a in summary["upstream_addresses"]}
    assert by_address["10.244.1.3:8080"]["signatures"] == {"connect_refused": 2}
    assert by_address["10.244.1.3:8080"]["count_after_reload"] == 2
    assert by_address["10.244.1.7:8080"]["signatures"] == {"premature_close": 1}
    assert summary["errors_after_reload"] == 3
    assert summary["secondary_after_reload"] == 1  # <NOSRV>
    assert summary["counts"]["not_upstream"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 2, "503": 3}
    assert summary["access"]["upstream_status_counts"] == {"200": 1, "502": 1}
    assert [e["upstream"] for e in summary["errors"]] == [
        "10.244.1.3:8080",
        "10.244.1.3:8080",
        "10.244.1.7:8080",
        None,
    ]


def test_lines_before_the_reload_are_counted_but_tied_to_no_address():
    servers = haproxy_log.parse_servers_state(STATE)
    summary = haproxy_log.summarize(LINES, servers, reload_time="2026-11-30T09:43:00Z")
    assert summary["errors_after_reload"] == 0 and summary["counts"]["connect_refused"] == 2
    assert all(a["count"] == 0 for a in summary["upstream_addresses"])


def test_a_failed_reload_of_the_master_is_counted():
    summary = haproxy_log.summarize([TS % 40 + "[ALERT]    (7) : Loading failure!"], [])
    assert summary["failed_reloads"] == 1


# ---------------------------------------------------------------- the adapter's reads
def test_without_a_stats_socket_the_runtime_cannot_be_read():
    servers, problem = HaproxyAdapter(FakeExec()).read_runtime("shop", "h-0", "haproxy", {})
    assert servers is None and "declares no `stats socket`" in problem


def test_without_socat_the_runtime_read_names_the_call():
    fake = FakeExec(
        scripts={RUNTIME_SCRIPT: "runtime"},
        answers={"runtime": done(127, stderr="socat is not installed in the container")},
    )
    servers, problem = HaproxyAdapter(fake).read_runtime(
        "shop", "h-0", "haproxy", {"sockets": ["/run/haproxy/admin.sock"]}
    )
    assert servers is None
    assert problem == (
        "show servers state over /run/haproxy/admin.sock (exec of sh -c RUNTIME_SCRIPT in pod "
        "shop/h-0): socat is not installed in the container"
    )


def pod(containers, name="p-0"):
    return {
        "metadata": {"namespace": "edge", "name": name},
        "spec": {"containers": containers},
    }


def test_auto_takes_the_kind_the_image_says():
    auto = proxy_adapter(FakeExec(), "auto")
    p = pod([{"name": "lb", "image": "docker.io/library/haproxy:2.6"}])
    assert strong_kinds(p) == ["haproxy"]
    assert auto.pick_container(p) == "lb"
    assert auto.kind_for("edge", "p-0") == "haproxy"
    assert isinstance(auto.adapter_for("edge", "p-0"), HaproxyAdapter)


def test_auto_runs_the_version_commands_when_nothing_says_the_kind():
    fake = FakeExec(answers={"nginx -v": NOT_FOUND, "haproxy -v": done(0, "HAProxy 2.6")})
    auto = AutoAdapter(fake)
    assert auto.pick_container(pod([{"name": "edge", "image": "example/edge:1"}])) == "edge"
    assert auto.kind_for("edge", "p-0") == "haproxy"
    assert fake.calls == ["nginx -v", "haproxy -v"]


def test_auto_names_what_it_tried_when_no_proxy_runs():
    fake = FakeExec(answers={"nginx -v": NOT_FOUND, "haproxy -v": NOT_FOUND})
    with pytest.raises(K8sError, match="no container runs a known proxy"):
        AutoAdapter(fake).pick_container(pod([{"name": "app", "image": "example/app:1"}]))


def test_auto_asks_about_a_pod_it_has_not_picked():
    with pytest.raises(K8sError, match="its proxy kind is not known yet"):
        AutoAdapter(FakeExec()).read_processes("edge", "p-9", "c")


def test_auto_mixes_kinds_per_pod():
    auto = AutoAdapter(FakeExec())
    auto.pick_container(pod([{"name": "nginx", "image": "nginx:1.27"}], "a"))
    auto.pick_container(pod([{"name": "haproxy", "image": "haproxy:2.6"}], "b"))
    assert isinstance(auto.adapter_for("edge", "a"), NginxAdapter)
    assert isinstance(auto.adapter_for("edge", "b"), HaproxyAdapter)
    assert auto.config_test_step == "haproxy -c -f <the master's config> / nginx -t"


# ---------------------------------------------------------------- real haproxy
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def haproxy(tmp_path):
    """A real haproxy in master-worker mode on a free port, with a stats socket and pid file."""
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is not installed (apt-get install haproxy, or make system-deps)")
    if not shutil.which("socat"):
        pytest.fail("socat is not installed (apt-get install socat, or make system-deps)")
    cfg = tmp_path / "haproxy.cfg"
    admin = tmp_path / "admin.sock"
    cfg.write_text(
        "global\n    stats socket %s mode 600 level admin\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n"
        "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
        "backend be\n    server app0 127.0.0.1:%d\n" % (admin, free_port(), free_port())
    )
    pid = tmp_path / "haproxy.pid"
    master = tmp_path / "master.sock"
    proc = subprocess.Popen(
        [HAPROXY, "-W", "-db", "-S", str(master), "-p", str(pid), "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _attempt in range(200):
        if admin.exists() and pid.exists() and pid.read_text().strip():
            break
        time.sleep(0.02)
    yield {"admin": admin, "pid": pid, "proc": proc, "cfg": cfg, "master": master}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.tools
def test_real_haproxy_runtime_state_and_processes(haproxy):
    out = subprocess.run(
        ["sh", "-c", RUNTIME_SCRIPT, "sh", str(haproxy["admin"])],
        capture_output=True,
        text=True,
        check=True,
    )
    (server,) = haproxy_log.parse_servers_state(out.stdout)
    assert (server["backend"], server["server"]) == ("be", "app0")
    assert server["address"].startswith("127.0.0.1:")
    procs = subprocess.run(
        ["sh", "-c", proxy_nginx.PROC_SCRIPT, "sh", "--comm=haproxy", str(haproxy["pid"])]
        + list(PID_FILES),
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = proxy_nginx.parse_proc_output(procs.stdout, "haproxy", None, None)
    assert parsed["problem"] is None
    assert parsed["master_pid"] == haproxy["proc"].pid
    assert len(parsed["workers"]) == 1


def sh(script, *args):
    return subprocess.run(
        ["sh", "-c", script, "sh", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_an_exited_haproxy_of_another_pod_is_no_master(tmp_path):
    """An exited haproxy not yet reaped (a zombie) has a stat but no namespace links, so the
    mount namespace check cannot leave it out: it must not be taken for the master (its
    parent is not haproxy), nor listed by the process reader. Made here in a mount namespace
    of its own, under a parent that never reaps it."""
    program = tmp_path / "haproxy"
    shutil.copy("/bin/true", program)
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make another mount namespace"
    parent = subprocess.Popen(
        [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "%s & exec sleep 30" % program,
        ]
    )
    try:
        deadline = time.monotonic() + 10
        zombie = None
        while zombie is None and time.monotonic() < deadline:
            for entry in os.listdir("/proc"):
                try:
                    with open("/proc/%s/stat" % entry) as handle:
                        stat = handle.read()
                except OSError:
                    continue
                if "(haproxy) Z" in stat and " %d " % parent.pid in stat:
                    zombie = int(entry)
            time.sleep(0.05)
        assert zombie, "no exited haproxy under the parent"
        found = sh(FIND_SCRIPT + 'echo "master=$master"')
        assert "master=%d" % zombie not in found.stdout, found.stdout
        listed = sh(proxy_nginx.PROC_SCRIPT, "--comm=haproxy")
        assert "stat %d " % zombie not in listed.stdout, listed.stdout
    finally:
        parent.kill()
        parent.wait()


def workers(haproxy):
    procs = sh(proxy_nginx.PROC_SCRIPT, "--comm=haproxy", str(haproxy["pid"]))
    return {
        w["pid"]
        for w in proxy_nginx.parse_proc_output(procs.stdout, "haproxy", None, None)["workers"]
    }


@pytest.mark.tools
def test_real_haproxy_config_test_and_reload_through_the_master_cli(haproxy):
    """The scripts find the running master's -f and -S in /proc: the config is tested and
    printed with its header, and the master CLI's reload replaces the worker."""
    dump = sh(CONFIG_SCRIPT)
    assert dump.returncode == 0, dump.stderr
    config = haproxy_log.parse_config(dump.stdout)
    assert config["files"] == [str(haproxy["cfg"])]
    assert config["sockets"] == [str(haproxy["admin"])]
    assert sh(TEST_SCRIPT).returncode == 0
    before = workers(haproxy)
    sent = sh(RELOAD_SCRIPT)
    assert sent.returncode == 0, sent.stderr
    assert "master CLI %s: reload" % haproxy["master"] in sent.stdout
    for _attempt in range(250):
        after = workers(haproxy)
        if after and not after & before:
            break
        time.sleep(0.02)
    assert after and not after & before
