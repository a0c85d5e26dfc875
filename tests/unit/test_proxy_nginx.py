"""Unit tests of the nginx adapter (proxy_nginx): picking the container, the /proc reader,
the config read, and its commands.

The /proc reader runs for real against a real nginx started here (nginx must be installed).
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import parse_time
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_kinds import proxy_adapter
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import FakeExec, done

FIXTURES = Path(__file__).parent / "fixtures"


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
    conf.write_text(
        "worker_processes 2; pid %s; error_log %s/error.log;\n"
        "events {}\nhttp { access_log off; server { listen 127.0.0.1:%d; } }\n"
        % (pid, tmp_path, port)
    )
    (tmp_path / "logs").mkdir()
    subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(conf)], check=True, capture_output=True)
    for _attempt in range(100):
        if pid.exists() and pid.read_text().strip():
            break
        time.sleep(0.05)
    yield {"conf": conf, "pid": pid, "prefix": tmp_path}
    subprocess.run(
        [NGINX, "-p", str(tmp_path), "-c", str(conf), "-s", "quit"],
        capture_output=True,
        check=False,
    )


def run_script(pid_file):
    out = subprocess.run(
        ["sh", "-c", proxy_nginx.PROC_SCRIPT, "sh", "/nonexistent.pid", str(pid_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return proxy_nginx.parse_proc_output(out.stdout)


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
    deadline = time.monotonic() + 10
    first = run_script(nginx["pid"])
    while first["problem"] and time.monotonic() < deadline:
        # on a loaded machine the master writes its PID file before it forks its workers
        time.sleep(0.1)
        first = run_script(nginx["pid"])
    assert first["problem"] is None and first["master_pid"] == master
    assert sorted(w["pid"] for w in first["workers"]) == children(master)
    assert len(first["workers"]) == 2
    started = parse_time(first["workers"][-1]["start_time"]).timestamp()
    assert abs(time.time() - started) < 30
    subprocess.run(
        [NGINX, "-p", str(nginx["prefix"]), "-c", str(nginx["conf"]), "-s", "reload"],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        second = run_script(nginx["pid"])
        if (
            not {w["pid"] for w in first["workers"]} & {w["pid"] for w in second["workers"]}
            and len(second["workers"]) == 2
        ):
            break
        time.sleep(0.1)
    assert second["master_pid"] == master
    assert not {w["pid"] for w in first["workers"]} & {w["pid"] for w in second["workers"]}
    assert second["workers"][-1]["start_time"] >= first["workers"][-1]["start_time"]


def test_processes_of_another_mount_namespace_are_never_listed_even_as_they_exit(tmp_path):
    """Where pods share a process namespace (the lab's; a node's), the script sees every
    process and leaves out those of other mount namespaces. One that exits while the script
    reads it must not slip through: an exiting process has released its namespaces before it
    becomes a zombie, and a zombie has a stat but no namespace links either. Another pod's
    short-lived `haproxy -c` counted as a second master ("found 2 haproxy master processes")
    once in a CI run of the accuracy scenarios, three labs at a time. Here two loops start and
    end processes named haproxy in a mount namespace of their own while the script reads."""
    program = tmp_path / "haproxy"
    shutil.copy("/bin/true", program)
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make another mount namespace"
    loop = "while :; do %s; done" % program
    # a user namespace too, so that no root is needed (as root, it changes nothing here)
    foreign = [
        subprocess.Popen([unshare, "--user", "--map-root-user", "--mount", "sh", "-c", loop])
        for _loop in range(2)
    ]
    try:
        time.sleep(0.2)
        assert all(p.poll() is None for p in foreign), "unshare could not make a namespace"
        listed = 0
        for _reading in range(300):
            out = subprocess.run(
                ["sh", "-c", proxy_nginx.PROC_SCRIPT, "sh", "--comm=haproxy"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            listed += sum(1 for line in out.splitlines() if line.startswith("stat "))
    finally:
        for process in foreign:
            process.kill()
            process.wait()
    assert listed == 0


def test_parse_proc_output_without_pid_file():
    stat = "stat {pid} (nginx) S {ppid} 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {ticks} 0 0"
    text = "\n".join(
        [
            "btime 1000",
            "hz 100",
            stat.format(pid=10, ppid=1, ticks=100),
            "cmd nginx: master process nginx",
            stat.format(pid=11, ppid=10, ticks=250),
            "cmd nginx: worker process",
            stat.format(pid=12, ppid=10, ticks=150),
            "cmd nginx: cache manager process",
        ]
    )
    parsed = proxy_nginx.parse_proc_output(text)
    assert parsed["master_pid"] == 10 and parsed["problem"] is None
    assert parsed["workers"] == [{"pid": 11, "start_time": "1970-01-01T00:16:42.50Z"}]
    two = text + "\n" + stat.format(pid=20, ppid=1, ticks=100) + "\ncmd nginx: master process"
    assert "found 2 nginx master processes" in proxy_nginx.parse_proc_output(two)["problem"]
    assert proxy_nginx.parse_proc_output("hz 100")["problem"].startswith("could not read btime")


# ---------------------------------------------------------------- picking the nginx container
def two_container_pod(images):
    return {
        "metadata": {"namespace": "edge", "name": "p-0"},
        "spec": {"containers": [{"name": n, "image": i} for n, i in images]},
    }


class NginxIn(FakeExec):
    """``nginx -v`` works only in the named container; ``calls`` lists where it was tried."""

    def __init__(self, where):
        super().__init__(
            {"nginx -v": lambda argv, container: done(0 if container == where else None)}
        )

    def exec(self, namespace, pod, argv, container=None, timeout=None):
        result = super().exec(namespace, pod, argv, container, timeout)
        self.calls[-1] = container
        return result


def pick(client, pod, wanted=None):
    return NginxAdapter(client).pick_container(pod, wanted)


def test_pick_container_by_name_image_or_nginx_v():
    by_image = two_container_pod([("sidecar", "envoy:1"), ("web", "docker.io/library/nginx:1.27")])
    assert pick(NginxIn(None), by_image) == "web"
    assert (
        pick(
            NginxIn(None),
            two_container_pod([("sidecar", "envoy:1"), ("edge", "openresty/openresty:1.25")]),
        )
        == "edge"
    )
    unnamed = two_container_pod([("sidecar", "envoy:1"), ("edge", "registry.example/edge-proxy:2")])
    fake = NginxIn("edge")
    assert pick(fake, unnamed) == "edge" and fake.calls == ["sidecar", "edge"]
    assert pick(NginxIn(None), unnamed, "sidecar") == "sidecar"
    with pytest.raises(K8sError, match='has no container "nope" \\(it has: sidecar, edge\\)'):
        pick(NginxIn(None), unnamed, "nope")
    with pytest.raises(K8sError, match="no container runs nginx"):
        pick(NginxIn(None), unnamed)


def test_an_nginx_exporter_sidecar_is_not_taken_for_nginx():
    exporter = ("exporter", "nginx/nginx-prometheus-exporter:1.3")
    fake = NginxIn(None)
    assert (
        pick(fake, two_container_pod([exporter, ("proxy", "nginx:1.27")])) == "proxy"
        and fake.calls == []
    )
    # No nginx image to go by: nginx -v decides, trying the container that mentions nginx first.
    fake = NginxIn("proxy")
    assert (
        pick(fake, two_container_pod([exporter, ("proxy", "registry.example/edge:2")])) == "proxy"
    )
    assert fake.calls == ["exporter", "proxy"]


# ---------------------------------------------------------------- config, commands, the seam
def test_read_config_gives_the_proxy_neutral_shape():
    fake = FakeExec({"nginx -T": done(0, (FIXTURES / "nginx_T.txt").read_text())})
    config, problem = NginxAdapter(fake).read_config("edge", "p-0", "nginx")
    assert problem is None and fake.execs == [("p-0", "nginx", "nginx -T")]
    assert set(config) == {
        "listen_ports",
        "upstream_hosts",
        "upstream_keepalive",
        "error_logs",
        "errors",
    }
    assert config["error_logs"] == {"files": [], "unreadable": []}  # error_log stderr notice
    assert config["listen_ports"] == [8002, 8443]
    assert config["upstream_keepalive"] == [
        {"upstream": "webui", "keepalive": 16, "keepalive_timeout": "60s"}
    ]
    assert {(h["host"], h["port"], h["upstream"]) for h in config["upstream_hosts"]} == {
        ("localhost", 8080, "webui"),
        ("127.77.0.2", 8080, "webui"),
        ("127.77.0.3", 8081, "webui"),
        ("127.77.0.4", 80, "api_v1"),
        ("127.77.0.2", 8080, None),
        ("api.lab.svc.cluster.local", 9000, None),
    }
    by_host = {h["host"]: h for h in config["upstream_hosts"]}
    assert by_host["api.lab.svc.cluster.local"]["service"] == "lab/api"
    assert by_host["api.lab.svc.cluster.local"]["runtime_resolved"] is True
    assert config["errors"] == []


def test_read_config_failure_is_a_problem_and_listen_ports_say_so():
    fake = FakeExec({"nginx -T": done(1, stderr='nginx: [emerg] unknown directive "bogus"')})
    adapter = NginxAdapter(fake)
    assert adapter.read_config("edge", "p-0", "nginx") == (
        None,
        'nginx -T failed: nginx: [emerg] unknown directive "bogus"',
    )
    assert adapter.listen_ports("edge", "p-0", "nginx") == (
        [],
        'nginx -T failed: nginx: [emerg] unknown directive "bogus"',
    )
    empty = NginxAdapter(FakeExec({"nginx -T": done(0, "events {}\nhttp {}\n")}))
    assert empty.listen_ports("edge", "p-0", "nginx") == ([], "nginx listens on no port")


def test_test_and_reload_commands_and_their_failures():
    fake = FakeExec(
        {
            "nginx -t": done(1, stderr="nginx: [emerg] host not found\n"),
            "nginx -s reload": [done(0), done(None, error="nginx: not found")],
        }
    )
    adapter = NginxAdapter(fake)
    assert adapter.test_config("edge", "p-0", "nginx") == {
        "rc": 1,
        "ok": False,
        "output": "nginx: [emerg] host not found",
    }
    assert adapter.apply_reload("edge", "p-0", "nginx") is None
    assert adapter.apply_reload("edge", "p-0", "nginx") == "nginx: not found"
    assert fake.calls == ["nginx -t", "nginx -s reload", "nginx -s reload"]
    assert (adapter.config_test_step, adapter.reload_step, adapter.config_dump_step) == (
        "nginx -t",
        "nginx -s reload",
        "nginx -T",
    )


def test_reload_took_needs_new_workers_and_none_of_the_old():
    took = NginxAdapter().reload_took
    old = {"workers": [{"pid": 11, "start_time": "a"}, {"pid": 12, "start_time": "a"}]}
    assert took(old, {"workers": [{"pid": 21, "start_time": "b"}]})
    assert not took(
        old, {"workers": [{"pid": 12, "start_time": "a"}, {"pid": 21, "start_time": "b"}]}
    )
    assert not took(old, {"workers": []})


def test_processes_that_cannot_be_read_are_a_problem_not_an_error():
    fake = FakeExec({"sh": done(2, stderr="sh: /proc/stat: Permission denied")})
    procs = NginxAdapter(fake).read_processes("edge", "p-0", "nginx")
    assert procs == {
        "master_pid": None,
        "workers": [],
        "last_reload_age": None,
        "problem": "cannot read nginx processes from /proc: sh: /proc/stat: Permission denied",
    }


def test_nginx_by_name_and_an_unknown_kind_is_an_error():
    adapter = proxy_adapter("client", "nginx")
    assert isinstance(adapter, NginxAdapter) and adapter.client == "client"
    with pytest.raises(
        K8sError, match="unknown proxy kind 'envoy' \\(known: auto, nginx, haproxy\\)"
    ):
        proxy_adapter(kind="envoy")


# ---------------------------------------------------------------- error log files (error_log to a file)

ERROR_LINES = (FIXTURES / "nginx_error.log").read_text().splitlines()
REFUSED = next(line for line in ERROR_LINES if "GET /refused" in line)
MARKER = next(line for line in ERROR_LINES if "start worker processes" in line)


def run_here(argv, _container):
    """Run the adapter's sh script on this machine, as the pod would (the files are local)."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return done(proc.returncode, proc.stdout, proc.stderr)


def file_reader(answer=run_here):
    return FakeExec({"log file": answer}, scripts={proxy_nginx.LOG_FILE_SCRIPT: "log file"})


def plan(*paths, unreadable=()):
    return {
        "error_logs": {
            "files": [{"path": p, "where": "/etc/nginx/nginx.conf:4"} for p in paths],
            "unreadable": list(unreadable),
        }
    }


def at(moment, line):
    """``line`` with nginx's time replaced by ``moment`` (local time = UTC here)."""
    return moment.strftime("%Y/%m/%d %H:%M:%S") + line[19:]


def test_an_error_log_file_is_read_bounded_and_named(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("\n".join([MARKER, REFUSED, REFUSED]) + "\n")
    fake = file_reader()
    out = NginxAdapter(fake).read_log_files("edge", "p-0", "nginx", plan(str(log)))
    assert out["problems"] == [] and out["local_offset"] == 0
    (read,) = out["files"]
    assert read["path"] == str(log)
    assert read["lines"] == [MARKER, REFUSED, REFUSED]
    assert (read["lines_read"], read["bytes_read"], read["truncated"]) == (
        3,
        log.stat().st_size,
        False,
    )
    assert fake.execs == [("p-0", "nginx", "log file")]
    # limit_bytes: tail -c, the first line (cut) dropped; tail_lines: the newest lines
    out = NginxAdapter(file_reader()).read_log_files(
        "edge", "p-0", "nginx", plan(str(log)), limit_bytes=len(REFUSED) + 10
    )
    assert out["files"][0]["lines"] == [REFUSED] and out["files"][0]["truncated"] is True
    out = NginxAdapter(file_reader()).read_log_files(
        "edge", "p-0", "nginx", plan(str(log)), tail_lines=1
    )
    assert out["files"][0]["lines"] == [REFUSED]


def test_an_error_log_file_keeps_only_the_since_seconds_window(tmp_path):
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    old, new = now - datetime.timedelta(hours=2), now - datetime.timedelta(seconds=5)
    log = tmp_path / "error.log"
    log.write_text("\n".join([at(old, REFUSED), at(new, MARKER), at(new, REFUSED)]) + "\n")
    out = NginxAdapter(file_reader()).read_log_files(
        "edge", "p-0", "nginx", plan(str(log)), since_seconds=600
    )
    assert out["files"][0]["lines"] == [at(new, MARKER), at(new, REFUSED)]


def test_a_link_to_stderr_is_the_container_log_not_a_file_to_read(tmp_path):
    link = tmp_path / "error.log"
    link.symlink_to("/dev/stderr")  # the official image's /var/log/nginx/error.log
    out = NginxAdapter(file_reader()).read_log_files("edge", "p-0", "nginx", plan(str(link)))
    assert out == {"files": [], "local_offset": 0, "problems": []}


def test_what_cannot_be_read_is_a_problem_naming_the_file_and_the_call(tmp_path):
    missing = str(tmp_path / "gone.log")
    out = NginxAdapter(file_reader()).read_log_files(
        "edge", "p-0", "nginx", plan(missing, str(tmp_path), unreadable=["error_log syslog:x"])
    )
    assert out["files"] == []
    syslog, gone, directory = out["problems"]
    assert syslog == "error_log syslog:x"
    assert gone == (
        "error log file %s (error_log at /etc/nginx/nginx.conf:4): no such file "
        "(exec of sh -c LOG_FILE_SCRIPT in pod edge/p-0)" % missing
    )
    assert directory.startswith("error log file %s " % tmp_path)
    assert "not a regular file" in directory
    refused = K8sError("exec of `sh -c ...` in pod edge/p-0: pods/exec is forbidden", 403)
    out = NginxAdapter(file_reader(refused)).read_log_files(
        "edge", "p-0", "nginx", plan("/var/log/nginx/error.log")
    )
    assert out["problems"] == [
        "error log file /var/log/nginx/error.log (error_log at /etc/nginx/nginx.conf:4): "
        "exec of `sh -c ...` in pod edge/p-0: pods/exec is forbidden"
    ]
    no_sh = done(None, error='exec: "sh": executable file not found in $PATH')
    out = NginxAdapter(file_reader(no_sh)).read_log_files(
        "edge", "p-0", "nginx", plan("/var/log/nginx/error.log")
    )
    assert 'tail failed: exec: "sh": executable file not found' in out["problems"][0]
    denied = done(0, "path /var/log/nginx/error.log\nnow 1\nzone +0000\ndenied\n")
    out = NginxAdapter(file_reader(denied)).read_log_files(
        "edge", "p-0", "nginx", plan("/var/log/nginx/error.log")
    )
    assert "permission denied" in out["problems"][0]


def test_the_built_in_error_log_is_found_with_nginx_v(tmp_path):
    """No error_log in the main context: nginx -V's --error-log-path (Debian's is stderr)."""
    fake_nginx = tmp_path / "nginx"
    fake_nginx.write_text(
        "#!/bin/sh\necho 'nginx version: nginx/1.22.1' >&2\n"
        "echo 'configure arguments: --with-cc-opt=-ffile-prefix-map=/x=. --prefix=%s "
        "--error-log-path=logs/error.log' >&2\n" % tmp_path
    )
    fake_nginx.chmod(0o755)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "error.log").write_text(REFUSED + "\n")

    def with_path(argv, container):
        env = dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"]))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        return done(proc.returncode, proc.stdout, proc.stderr)

    out = NginxAdapter(file_reader(with_path)).read_log_files("edge", "p-0", "nginx", plan(""))
    assert out["files"][0]["path"] == str(tmp_path / "logs" / "error.log")
    assert out["files"][0]["lines"] == [REFUSED]
    fake_nginx.write_text("#!/bin/sh\necho 'configure arguments: --error-log-path=stderr' >&2\n")
    out = NginxAdapter(file_reader(with_path)).read_log_files("edge", "p-0", "nginx", plan(""))
    assert out == {"files": [], "local_offset": 0, "problems": []}


def test_summarize_log_merges_the_files_with_the_container_log():
    container = [
        '2026-11-25T02:39:36.500000Z 127.0.0.1 - - [25/Nov/2026:02:39:36 +0000] "GET / '
        'HTTP/1.1" 502 157 "-" "curl"'
    ]
    files = {
        "files": [{"path": "/var/log/nginx/error.log", "lines": [MARKER, REFUSED]}],
        "local_offset": 0,
        "problems": [],
    }
    summary = NginxAdapter(None).summarize_log(container, files=files)
    assert summary["reload_source"] == "log"
    assert summary["counts_after_reload"]["connect_refused"] == 1
    assert summary["access"]["status_counts_after_reload"] == {"502": 1}
    # without the file: a 502 and no upstream error at all
    alone = NginxAdapter(None).summarize_log(container)
    assert alone["errors_after_reload"] == 0
