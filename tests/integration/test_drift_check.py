"""playbooks/drift_check.yml on the lab: read-only, drift and could-not-check told apart."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "drift_check.yml"

pytestmark = pytest.mark.lab


def run_drift(lab, tmp_path, *extra):
    report = tmp_path / "drift.json"
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    env.pop("KUBECONFIG", None)
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(PLAYBOOK),
        "-e",
        "@" + str(lab.dir / "vars.yml"),
        "-e",
        "drift_check_report_file=" + str(report),
        *extra,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, (json.loads(report.read_text()) if report.exists() else None)


def nginx_pids(lab):
    """The proxy pod's nginx master and worker PIDs, read inside the pod."""
    ns, name = lab.info["proxy_pods"][0].split("/")
    proc = lab.kubectl(
        "exec", "-n", ns, name, "--", "sh", "-c", "m=$(cat /run/nginx.pid); echo $m $(pgrep -P $m)"
    )
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split())


def explain(proc):
    return "exit %s\n%s\n%s" % (proc.returncode, proc.stdout[-5000:], proc.stderr[-2000:])


def test_stale_proxy_fails_the_check_naming_replica_and_addresses_and_changes_nothing(
    lab_factory, tmp_path
):
    lab = lab_factory("stale_upstream")
    before = nginx_pids(lab)
    proc, result = run_drift(lab, tmp_path)
    assert proc.returncode == 2, explain(proc)
    step = next(h for h in lab.info["history"] if h["step"].endswith("replace_pod"))
    replica = lab.info["proxy_pods"][0]
    assert "DRIFT:" in proc.stdout
    for needle in (replica, step["old_ip"], step["new_ip"], "nginx -s reload"):
        assert needle in proc.stdout, explain(proc)
    assert result["status"] == "drift" and result["drifted"] == [replica]
    assert nginx_pids(lab) == before
    assert lab.http_status() == 502


def test_check_mode_runs_the_check_too(lab_factory, tmp_path):
    lab = lab_factory("stale_upstream")
    proc, result = run_drift(lab, tmp_path, "--check")
    assert proc.returncode == 2 and result["status"] == "drift", explain(proc)


def test_healthy_proxy_passes(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    proc, result = run_drift(lab, tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert result["status"] == "ok"


def test_dead_api_is_could_not_check_not_drift(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    proc, result = run_drift(
        lab,
        tmp_path,
        "-e",
        "diagnose_502_host=https://127.0.0.1:9",
        "-e",
        "diagnose_502_api_key=not-a-real-token",
        "-e",
        "diagnose_502_request_timeout=3",
    )
    assert proc.returncode == 4, explain(proc)
    assert "COULD NOT CHECK:" in proc.stdout and "DRIFT:" not in proc.stdout, explain(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert result["status"] == "could_not_check"


def test_validate_certs_is_honoured(lab_factory, tmp_path):
    """The drift check builds its access options where the role does: validate_certs=false with
    no CA given reaches the lab's API (its CA is the lab's own); with verification on, it cannot."""
    lab = lab_factory("healthy")
    kubeconfig = yaml.safe_load(lab.kubeconfig.read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    direct = [
        "-e",
        "diagnose_502_kubeconfig=",
        "-e",
        "diagnose_502_host=" + lab.info["api_server"],
        "-e",
        "diagnose_502_api_key=" + token,
    ]
    proc, result = run_drift(lab, tmp_path, *direct, "-e", "diagnose_502_validate_certs=false")
    assert proc.returncode == 0 and result["status"] == "ok", explain(proc)
    proc, result = run_drift(lab, tmp_path, *direct, "-e", "diagnose_502_validate_certs=true")
    assert proc.returncode == 4 and result["status"] == "could_not_check", explain(proc)
    assert "TLS" in result["message"] and token not in proc.stdout + proc.stderr
