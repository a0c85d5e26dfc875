"""The fault matrix: the installed role and drift check against a lab behind a fault proxy.

Every row holds the same promises: no traceback; the exit status of the documented contract
(docs/usage.md: 0 healthy/remediated, 2 problem found/remediation failed, 4 could not check); a
message naming what is wrong; the result written, naming what could not be checked; no reload
that the evidence did not earn; bounded time; nothing left running; no secret in any output.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from badlab.network import in_netns

from faults.conftest import RUN_MARKER, _marked, clean_env, explain, run_playbook
from faults.faultproxy import forbidden

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "lab" / "scenarios"
RELOAD = {"command": r"^nginx -s reload$"}


def layers_of(result):
    return {layer["name"]: layer["status"] for layer in result["layers"]}


def no_traceback(proc, fl=None):
    """No traceback, nothing of the run left running after it ended, and no token in the output."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, explain(proc)
    assert getattr(proc, "leftovers", []) == [], proc.leftovers
    if fl is not None:
        for path in (fl.kubeconfig, fl.kubeconfig_diagnose):
            token = yaml.safe_load(path.read_text())["users"][0]["user"]["token"]
            assert token not in out, "a token of %s is in the output" % path


def derived_scenario(tmp_path, name, change):
    """A written scenario with one change (a function on its data), saved under tmp_path."""
    data = yaml.safe_load((SCENARIOS / f"{name}.yml").read_text())
    change(data)
    path = tmp_path / f"{name}-derived.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


# ---------------------------------------------------------------- reads that fail


def test_log_500_is_could_not_check_not_healthy(fault_lab, tmp_path):
    fl = fault_lab(
        "healthy", rules=[{"path": r"/pods/[^/]+/log$", "action": "status", "code": 500}]
    )
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert result["outcome"]["outcome"] == "could_not_check"
    assert layers_of(result)["proxy_logs"] == "error"
    assert "pods/log" in proc.stdout and "HTTP 500" in proc.stdout
    assert result["verdict"]["cause"] != "healthy"
    assert not fl.proxy.execs(query=RELOAD)

    drift, drift_result = run_playbook(fl, tmp_path, playbook="drift_check")
    no_traceback(drift, fl)
    assert drift.returncode == 4, explain(drift, fl)
    assert drift_result["status"] == "could_not_check" and "HTTP 500" in drift_result["message"]


def test_exec_500_is_could_not_check_never_a_missing_client(fault_lab, tmp_path):
    fl = fault_lab(
        "healthy", rules=[{"path": r"/pods/[^/]+/exec$", "action": "status", "code": 500}]
    )
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    layers = layers_of(result)
    assert layers["connectivity"] == "error" and layers["symptom"] in ("error", "pass"), layers
    assert "neither curl nor wget" not in proc.stdout
    assert "HTTP 500" in json.dumps(result["outcome"])

    drift, drift_result = run_playbook(fl, tmp_path, playbook="drift_check")
    no_traceback(drift, fl)
    assert drift.returncode == 4, explain(drift, fl)
    assert "current endpoints none" not in drift.stdout
    assert drift_result["status"] == "could_not_check"


def test_exec_500_on_a_stale_proxy_finds_it_and_does_not_reload_blind(fault_lab, tmp_path):
    """The log proves the stale address; without exec the reload could be neither tested nor proven."""
    fl = fault_lab(
        "stale_upstream", rules=[{"path": r"/pods/[^/]+/exec$", "action": "status", "code": 500}]
    )
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert proc.returncode == 2, explain(proc, fl)
    assert result["verdict"]["cause"] == "stale_upstream"
    assert result["verdict"]["reload_safe"] is False
    assert result["remediation"]["performed"] is False
    assert result["outcome"]["unchecked"], result["outcome"]
    drift, drift_result = run_playbook(fl, tmp_path, playbook="drift_check")
    assert drift.returncode == 2 and drift_result["status"] == "drift", explain(drift, fl)
    assert "current endpoints none" not in drift.stdout and "could not be read" in drift.stdout


def test_one_forbidden_replica_does_not_hide_the_other(fault_lab, tmp_path):
    """stale_upstream-one_replica: nginx-proxy-0 is stale; nginx-proxy-1's log is forbidden by
    resourceNames. The readable replica is diagnosed and reloaded; the other is named."""
    fl = fault_lab("stale_upstream-one_replica", rules=[forbidden("open-webui", "nginx-proxy-1")])
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert result["verdict"]["cause"] == "stale_upstream", explain(proc, fl)
    assert result["verdict"]["stale_replicas"] == ["open-webui/nginx-proxy-0"]
    reloaded = {r["name"] for r in result["remediation"]["replicas"] if r["reloaded"]}
    assert reloaded == {"nginx-proxy-0"}
    assert proc.returncode == 0 and result["outcome"]["outcome"] == "remediated", explain(proc, fl)
    assert any(
        "nginx-proxy-1" in line and "forbidden" in line for line in result["outcome"]["unchecked"]
    )


def test_a_dripping_api_is_bounded(fault_lab, tmp_path):
    """Headers at once, then one byte a second: every call ends at request_timeout."""
    fl = fault_lab(
        "healthy", rules=[{"method": "GET", "upgrade": False, "action": "drip", "interval": 1}]
    )
    started = time.monotonic()
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_request_timeout=3", timeout=200)
    took = time.monotonic() - started
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert result["outcome"]["outcome"] == "could_not_check"
    assert "timed out" in proc.stdout
    assert took < 120, took


def test_a_dripping_exec_is_bounded(fault_lab, tmp_path):
    """The upgrade answers at once, then the exec stream drips: every exec ends at its deadline."""
    fl = fault_lab("healthy", rules=[{"path": r"/exec$", "action": "drip", "interval": 1}])
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_request_timeout=3", timeout=200)
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert result["outcome"]["outcome"] == "could_not_check"
    assert proc.seconds < 150, proc.seconds
    assert fl.proxy.execs(action="drip")


def test_a_gigabyte_log_is_read_only_up_to_its_bound(fault_lab, tmp_path):
    """An API that ignores limitBytes and sends a 1 GiB log: the modules read 1 MiB and stop."""
    fl = fault_lab(
        "healthy", rules=[{"path": r"/pods/[^/]+/log$", "action": "flood", "size": 1 << 30}]
    )
    proc, result = run_playbook(
        fl,
        tmp_path,
        "-e",
        "diagnose_502_log_limit_bytes=1048576",
        "-e",
        "diagnose_502_show_report=false",
        "-v",
        timeout=200,
    )
    no_traceback(proc, fl)
    assert result is not None, explain(proc, fl)
    assert proc.seconds < 120, proc.seconds
    assert proc.returncode in (0, 4), explain(proc, fl)
    assert "log read stopped at limit_bytes=1048576" in proc.stdout, explain(proc, fl)


def test_an_html_login_page_is_could_not_check(fault_lab, tmp_path):
    fl = fault_lab("healthy", rules=[{"action": "html"}])
    proc, result = run_playbook(fl, tmp_path)
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert "not JSON" in proc.stdout
    assert result["outcome"]["outcome"] == "could_not_check"


# ---------------------------------------------------------------- remediation that cannot be proven


def test_no_http_client_in_the_proxy_reloads_but_says_unproven(fault_lab, tmp_path):
    def no_clients(data):
        for pod in data["pods"]:
            for container in pod["containers"]:
                if "nginx" in container:
                    container["missing"] = ["curl", "wget"]

    fl = fault_lab(derived_scenario(tmp_path, "stale_upstream", no_clients))
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert result is not None, explain(proc, fl)
    assert proc.returncode == 2, explain(proc, fl)
    assert result["outcome"]["outcome"] == "remediation_failed"
    replica = result["remediation"]["replicas"][0]
    assert replica["reloaded"] is True and replica["verified"] is False
    assert "neither curl nor wget" in replica["unproven"]
    assert "REMEDIATION FAILED" in proc.stdout and "unproven" in proc.stdout
    assert layers_of(result)["connectivity"] == "error"
    assert fl.lab.http_status() == 200  # the reload did fix it; only the proof was missing


def test_a_reload_the_master_ignores_is_reported_and_the_result_written(fault_lab, tmp_path):
    """The new config cannot bind a listen address: nginx -t passes, the master keeps the old
    workers. No new workers: remediation_failed, and the report is still written."""
    fl = fault_lab("stale_upstream")
    ns, name = fl.info["proxy_pods"][0].split("/")
    master = fl.lab.kubectl("exec", "-n", ns, name, "--", "cat", "/run/nginx.pid")
    assert master.returncode == 0, master.stderr

    def taken() -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        return sock

    # a port already taken in the pod's own network namespace (its loopback is its own)
    holder = in_netns(f"/proc/{int(master.stdout)}/ns/net", taken)
    try:
        port = holder.getsockname()[1]
        add = fl.lab.kubectl(
            "exec",
            "-n",
            ns,
            name,
            "--",
            "sh",
            "-c",
            "printf 'server { listen 127.0.0.1:%d; return 204; }\\n' > /etc/nginx/conf.d/taken.conf"
            % port,
        )
        assert add.returncode == 0, add.stderr
        proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    finally:
        holder.close()
    no_traceback(proc, fl)
    assert result is not None, explain(proc, fl)
    assert proc.returncode == 2, explain(proc, fl)
    assert result["outcome"]["outcome"] == "remediation_failed"
    replica = result["remediation"]["replicas"][0]
    assert replica["reload_sent"] is True and replica["reloaded"] is False
    assert "not replaced" in replica["error"]


def test_a_broken_config_is_not_reloaded(fault_lab, tmp_path):
    fl = fault_lab("stale_upstream")
    ns, name = fl.info["proxy_pods"][0].split("/")
    broken = fl.lab.kubectl(
        "exec",
        "-n",
        ns,
        name,
        "--",
        "sh",
        "-c",
        "echo 'this is not nginx;' > /etc/nginx/conf.d/broken.conf",
    )
    assert broken.returncode == 0, broken.stderr
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_remediate=true")
    no_traceback(proc, fl)
    assert proc.returncode == 2, explain(proc, fl)
    assert result["verdict"]["reload_safe"] is False
    assert not fl.proxy.execs(query=RELOAD)
    assert result["remediation"]["performed"] is False


# ---------------------------------------------------------------- access and input


def test_a_kubeconfig_dict_keeps_its_token_out_of_every_output(fault_lab, tmp_path):
    fl = fault_lab("stale_upstream")
    kubeconfig = yaml.safe_load(fl.kubeconfig.read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    variables = dict(fl.vars, diagnose_502_kubeconfig=kubeconfig)
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    reports = {kind: tmp_path / f"r.{kind}" for kind in ("md", "html")}
    proc, result = run_playbook(
        fl,
        tmp_path,
        "-vvvv",
        "-e",
        "diagnose_502_remediate=true",
        "-e",
        "diagnose_502_report_markdown_file=" + str(reports["md"]),
        "-e",
        "diagnose_502_report_html_file=" + str(reports["html"]),
        vars_file=vars_file,
    )
    no_traceback(proc, fl)
    assert result["verdict"]["cause"] == "stale_upstream", explain(proc, fl)
    assert token not in proc.stdout + proc.stderr
    assert token not in json.dumps(result)
    for path in reports.values():
        assert token not in path.read_text()


@pytest.mark.parametrize("kind", ["missing", "broken"])
def test_missing_or_broken_kubeconfig_is_could_not_check(fault_lab, tmp_path, kind):
    fl = fault_lab("healthy")
    path = tmp_path / "kubeconfig"
    if kind == "broken":
        path.write_text("apiVersion: v1\nclusters: [this is: not: yaml\n")
    proc, result = run_playbook(fl, tmp_path, "-e", "diagnose_502_kubeconfig=" + str(path))
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert str(path) in proc.stdout
    assert result["outcome"]["outcome"] == "could_not_check"
    assert not fl.proxy.requests


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["-e", '{"diagnose_502_proxy_selector": "app in (nginx"}'], "unable to parse requirement"),
        (["-e", "diagnose_502_log_tail_lines=0"], "tail_lines must be a positive number"),
    ],
)
def test_invalid_input_is_named(fault_lab, tmp_path, extra, needle):
    fl = fault_lab("healthy")
    proc, result = run_playbook(fl, tmp_path, *extra)
    no_traceback(proc, fl)
    assert proc.returncode == 4, explain(proc, fl)
    assert needle in proc.stdout, explain(proc, fl)
    assert result is not None and result["outcome"]["outcome"] == "could_not_check"


def test_an_interrupted_run_leaves_nothing_running_and_changes_nothing(fault_lab, tmp_path):
    fl = fault_lab("stale_upstream", rules=[{"path": r"/pods/[^/]+/log$", "action": "hang"}])
    marker = "interrupt-%d" % os.getpid()
    env = clean_env(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        **{RUN_MARKER: marker},
    )
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(ROOT / "playbooks" / "diagnose_502.yml"),
        "-e",
        "@" + str(fl.vars_file),
        "-e",
        "diagnose_502_remediate=true",
        "-e",
        "diagnose_502_request_timeout=60",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not fl.proxy.seen(path=r"/log$") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fl.proxy.seen(path=r"/log$"), "the run never reached the log read"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in out
    assert proc.returncode != 0
    time.sleep(1)
    assert _marked(marker) == [], "processes of the interrupted run are still running"
    assert not fl.proxy.execs(query=RELOAD)
    assert fl.lab.http_status() == 502
