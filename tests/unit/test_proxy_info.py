"""Unit tests of proxy_info's per-replica read (inspect_replica) through the nginx adapter: the
error log files a config writes to are read, merged with the container log, and named in
``read_errors`` when they cannot be read; never taken for a clean log."""

import subprocess
import threading
from pathlib import Path

from ansible_collections.badgateway.k8s.plugins.module_utils import proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import parallel_runner
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter
from ansible_collections.badgateway.k8s.plugins.module_utils._proxy_info import inspect_replica
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import FakeExec, done

FIXTURES = Path(__file__).parent / "fixtures"
LINES = (FIXTURES / "nginx_error.log").read_text().splitlines()
REFUSED = next(line for line in LINES if "GET /refused" in line)
MARKER = next(line for line in LINES if "start worker processes" in line)
ACCESS_502 = (
    '2026-11-25T02:39:36.500000Z 127.0.0.1 - - [25/Nov/2026:02:39:36 +0000] "GET / HTTP/1.1" '
    '502 157 "-" "curl" "-"'
)
PARAMS = {
    "container": None,
    "cluster_domain": "cluster.local",
    "tail_lines": 5000,
    "since_seconds": None,
    "limit_bytes": 4 * 1024 * 1024,
    "max_errors": 50,
}


def config(error_log):
    return (
        "# configuration file /etc/nginx/nginx.conf:\n"
        "error_log %s notice;\nevents {}\n"
        "http { server { listen 10.0.0.7:80; location / { proxy_pass http://web:8080; } } }\n"
        % error_log
    )


class Client(FakeExec):
    """FakeExec with the container log of the pod."""

    def __init__(self, log_text, answers, **kw):
        super().__init__(answers, **kw)
        self.log_text = log_text

    def read_log(self, namespace, pod, container=None, **_bounds):
        return self.log_text, len(self.log_text), False


def run_here(argv, _container):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return done(proc.returncode, proc.stdout, proc.stderr)


def replica(error_log, log_answer=run_here, procs_answer=None, run=None):
    client = Client(
        ACCESS_502 + "\n",
        {
            "nginx -T": done(0, config(error_log)),
            "procs": procs_answer or done(2, stderr="sh: /proc: Permission denied"),
            "log file": log_answer,
        },
        scripts={proxy_nginx.PROC_SCRIPT: "procs", proxy_nginx.LOG_FILE_SCRIPT: "log file"},
    )
    pod = {
        "metadata": {"namespace": "edge", "name": "nginx-0"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.7"},
    }
    if run is None:
        proxy, summary = inspect_replica(NginxAdapter(client), pod, PARAMS)
    else:
        proxy, summary = inspect_replica(NginxAdapter(client), pod, PARAMS, run)
    return proxy, summary, client


def test_errors_in_an_error_log_file_are_read_and_merged(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("%s\n%s\n" % (MARKER, REFUSED))
    proxy, summary, client = replica(log)
    # The config, then the file it names, at the same time as the processes (serial here).
    assert client.calls == ["nginx -T", "log file", "procs"]
    assert "error_log_file" not in proxy["read_errors"]
    assert proxy["log_files"] == [
        {"path": str(log), "lines_read": 2, "bytes_read": log.stat().st_size, "truncated": False}
    ]
    assert proxy["counts_after_reload"]["connect_refused"] == 1
    assert proxy["errors_after_reload"] == 1
    assert proxy["access"]["status_counts_after_reload"] == {"502": 1}
    assert proxy["last_reload"] == "2026-11-25T02:39:34Z"  # the file's reload marker
    assert [a["address"] for a in summary["upstream_addresses"]] == ["127.77.0.3:8081"]


def test_the_log_file_is_read_while_the_processes_are_and_the_result_is_the_same(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("%s\n%s\n" % (MARKER, REFUSED))
    file_started = threading.Event()
    overlapped = []

    def read_file(argv, container):
        file_started.set()
        return run_here(argv, container)

    def read_procs(_argv, _container):
        # The processes' exec waits for the file's: read one after the other, it would not
        # start before this one ended (then the wait times out and records False).
        overlapped.append(file_started.wait(5))
        return done(2, stderr="sh: /proc: Permission denied")

    proxy, summary, client = replica(log, read_file, read_procs, parallel_runner(3))
    assert overlapped == [True]
    assert sorted(client.calls) == ["log file", "nginx -T", "procs"]
    serial_proxy, serial_summary, _client = replica(log)
    assert proxy == serial_proxy and summary == serial_summary


def test_an_unreadable_error_log_file_is_a_read_error_not_a_clean_log(tmp_path):
    missing = tmp_path / "error.log"
    proxy, _summary, _client = replica(missing)
    assert proxy["errors_after_reload"] == 0  # the 502 is there, its error line is not
    assert proxy["read_errors"]["error_log_file"] == (
        "error log file %s (error_log at /etc/nginx/nginx.conf:1): no such file "
        "(exec of sh -c LOG_FILE_SCRIPT in pod edge/nginx-0)" % missing
    )
    assert proxy["log_files"] == []
    refused = K8sError("exec of `sh -c ...` in pod edge/nginx-0: Forbidden", 403)
    proxy, _summary, _client = replica("/var/log/nginx/error.log", refused)
    assert "Forbidden" in proxy["read_errors"]["error_log_file"]
    assert "/var/log/nginx/error.log" in proxy["read_errors"]["error_log_file"]


def test_syslog_only_is_a_read_error_and_stderr_reads_no_file():
    proxy, _summary, client = replica("syslog:server=10.0.0.9")
    assert "log file" not in client.calls
    assert proxy["read_errors"]["error_log_file"].startswith(
        "error_log syslog:server=10.0.0.9 (/etc/nginx/nginx.conf:1): nginx sends these lines "
        "to syslog"
    )
    proxy, _summary, client = replica("/dev/stderr")
    assert client.calls == ["nginx -T", "procs"]
    assert proxy["read_errors"] == {} and proxy["log_files"] == []
