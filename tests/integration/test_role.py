"""The diagnose_502 role through real ansible-playbook runs against the lab.

Each test starts a lab (real nginx, real backends, the emulated API server), runs
playbooks/diagnose_502.yml the way a user would, and checks the structured result it wrote, the
play's exit status, and what the proxy answers afterwards.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "diagnose_502.yml"
SCHEMA = json.loads((ROOT / "docs" / "result.schema.json").read_text())

pytestmark = pytest.mark.lab


def run_playbook(lab, tmp_path, *extra, vars_file=None, playbook=PLAYBOOK, env_extra=None):
    """Run a playbook against a lab; return (completed process, result dict or None)."""
    report = tmp_path / "result.json"
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    env.update(env_extra or {})
    env.pop("KUBECONFIG", None)
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(playbook),
        "-e",
        "@" + str(vars_file or lab.dir / "vars.yml"),
        "-e",
        "diagnose_502_report_file=" + str(report),
        *extra,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    result = json.loads(report.read_text()) if report.exists() else None
    return proc, result


def explain(proc):
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (
        proc.returncode,
        proc.stdout[-6000:],
        proc.stderr[-3000:],
    )


def replaced(lab):
    """(old IP, new IP) of the pod the scenario replaced."""
    step = next(h for h in lab.info["history"] if h["step"].endswith("replace_pod"))
    return step["old_ip"], step["new_ip"]


def test_seed_incident_is_diagnosed_reloaded_and_verified(lab_factory, tmp_path):
    lab = lab_factory("stale_upstream")
    assert lab.http_status() == 502
    proc, result = run_playbook(lab, tmp_path, "-e", "diagnose_502_remediate=true")
    assert proc.returncode == 0, explain(proc)
    jsonschema.validate(result, SCHEMA)
    assert result["outcome"]["outcome"] == "remediated", result["outcome"]
    old_ip, new_ip = replaced(lab)
    verdict = result["verdict"]
    assert verdict["cause"] == "stale_upstream", explain(proc)
    assert old_ip in verdict["summary"] and new_ip in verdict["summary"]
    assert verdict["stale_replicas"] == lab.info["proxy_pods"]
    layers = {layer["name"]: layer["status"] for layer in result["layers"]}
    assert layers == {
        "symptom": "fail",
        "backend_pods": "pass",
        "service": "pass",
        "connectivity": "pass",
        "proxy_logs": "fail",
    }
    remediation = result["remediation"]
    assert remediation["performed"] is True and remediation["verified"] is True, remediation
    assert remediation["url_status_after"] == 200
    assert lab.http_status() == 200
    # The human summary walks the seed post's five steps.
    for step in (
        "1. Observe",
        "2. Test each hypothesis",
        "3. Pinpoint",
        "4. Remediate",
        "5. Learn",
    ):
        assert step in proc.stdout


def test_healthy_proxy_is_healthy_and_nothing_is_done(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    proc, result = run_playbook(lab, tmp_path, "-e", "diagnose_502_remediate=true")
    assert proc.returncode == 0, explain(proc)
    jsonschema.validate(result, SCHEMA)
    assert result["verdict"]["cause"] == "healthy"
    assert result["outcome"]["outcome"] == "healthy"
    assert all(layer["status"] == "pass" for layer in result["layers"]), result["layers"]
    assert result["remediation"]["performed"] is False
    assert "healthy" in result["remediation"]["reason"]
    assert lab.http_status() == 200


@pytest.mark.parametrize("mode", ["check", "remediation_off"])
def test_read_only_runs_change_nothing_and_agree_on_the_verdict(lab_factory, tmp_path, mode):
    lab = lab_factory("stale_upstream")
    extra = ["--check", "-e", "diagnose_502_remediate=true"] if mode == "check" else []
    proc, result = run_playbook(lab, tmp_path, *extra)
    # A problem found and left alone: exit 2, after the result was written.
    assert proc.returncode == 2, explain(proc)
    assert result["outcome"]["outcome"] == "problem_found"
    assert "PROBLEM FOUND: stale_upstream" in proc.stdout
    assert result["verdict"]["cause"] == "stale_upstream"
    assert result["remediation"]["performed"] is False
    assert ("check mode" if mode == "check" else "remediation is off") in result["remediation"][
        "reason"
    ]
    reload_task = re.search(
        r"TASK \[[^]]*Reload the stale proxy replicas[^]]*\] \**\n(\w+)", proc.stdout
    )
    assert reload_task and reload_task.group(1) == "skipping", explain(proc)
    assert lab.http_status() == 502


def test_least_privilege_token_is_enough(lab_factory, tmp_path):
    """The documented namespace-scoped permissions carry the whole diagnosis and the reload."""
    lab = lab_factory("stale_upstream")
    proc, result = run_playbook(
        lab,
        tmp_path,
        "-e",
        "diagnose_502_remediate=true",
        "-e",
        "diagnose_502_kubeconfig=" + lab.info["kubeconfig_diagnose"],
    )
    assert proc.returncode == 0, explain(proc)
    assert result["verdict"]["cause"] == "stale_upstream"
    assert result["remediation"]["verified"] is True


def assert_clear_failure(proc, result, *needles):
    # Could not check: exit 4 (the target shows as unreachable), never healthy nor sick.
    assert proc.returncode == 4, explain(proc)
    assert "COULD NOT CHECK" in proc.stdout, explain(proc)
    assert result["outcome"]["outcome"] == "could_not_check", result["outcome"]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, explain(proc)
    for needle in needles:
        assert needle in out, explain(proc)
    # The result is still built and written, with the reason recorded.
    assert result is not None and result["errors"], explain(proc)
    assert result["remediation"]["performed"] is False


def test_unreachable_api_is_a_clear_failure(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    proc, result = run_playbook(
        lab,
        tmp_path,
        "-e",
        "diagnose_502_host=https://127.0.0.1:9",
        "-e",
        "diagnose_502_api_key=nothing",
        "-e",
        "diagnose_502_request_timeout=3",
        "-e",
        "diagnose_502_validate_certs=false",
    )
    assert_clear_failure(proc, result, "127.0.0.1:9")


def test_forbidden_is_a_clear_failure_naming_the_permission(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    # The least-privilege token holds nothing in the namespace "default".
    proc, result = run_playbook(
        lab,
        tmp_path,
        "-e",
        "diagnose_502_kubeconfig=" + lab.info["kubeconfig_diagnose"],
        "-e",
        "diagnose_502_proxy_namespace=default",
    )
    assert_clear_failure(proc, result, '"list"', '"pods"', '"default"')


def test_unknown_namespace_is_a_clear_failure(lab_factory, tmp_path):
    lab = lab_factory("healthy")
    proc, result = run_playbook(lab, tmp_path, "-e", "diagnose_502_proxy_namespace=no-such-ns")
    assert_clear_failure(proc, result, "no-such-ns")


def published(proc):
    """The job's artifacts (set_stats) as ansible-playbook prints them with
    ANSIBLE_SHOW_CUSTOM_STATS: the JSON after ``RUN:``."""
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("RUN:"))
    return json.loads(line.split("RUN:", 1)[1])


def test_the_artifacts_are_the_result_the_run_wrote(lab_factory, tmp_path, monkeypatch):
    """What AWX workflows read (docs/awx.md): every target's result by inventory host, and with
    one target its result and cause on their own - the same result as the JSON file."""
    lab = lab_factory("stale_upstream")
    monkeypatch.setenv("ANSIBLE_SHOW_CUSTOM_STATS", "1")
    proc, result = run_playbook(lab, tmp_path, "-e", "diagnose_502_fail_on_problem=false")
    assert proc.returncode == 0, explain(proc)
    artifacts = published(proc)
    assert set(artifacts) == {"diagnose_502_results", "diagnose_502_result", "diagnose_502_cause"}
    assert artifacts["diagnose_502_results"] == {"localhost": result}
    assert artifacts["diagnose_502_result"] == result
    assert artifacts["diagnose_502_cause"] == "stale_upstream" == result["verdict"]["cause"]


def test_the_fact_read_as_the_role_readme_reads_it_warns_of_nothing(lab_factory, tmp_path):
    """roles/diagnose_502/README.md reads the result under ansible_facts: ansible-core 2.21
    deprecates facts injected as top-level variables (INJECT_FACTS_AS_VARS), and such a read
    warns there. The example's way gives this run's result, with deprecation warnings on."""
    lab = lab_factory("stale_upstream")
    playbook = tmp_path / "readme.yml"
    playbook.write_text(
        """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - role: badgateway.k8s.diagnose_502
      diagnose_502_fail_on_problem: false
  post_tasks:
    - name: Show the cause
      ansible.builtin.debug:
        msg: "cause={{ ansible_facts.diagnose_502_result.verdict.cause }}"
"""
    )
    proc, result = run_playbook(
        lab, tmp_path, playbook=playbook, env_extra={"ANSIBLE_DEPRECATION_WARNINGS": "1"}
    )
    assert proc.returncode == 0, explain(proc)
    assert "cause=stale_upstream" in proc.stdout and result["verdict"]["cause"] == "stale_upstream"
    assert "INJECT_FACTS_AS_VARS" not in proc.stdout + proc.stderr, explain(proc)


def test_a_report_file_that_cannot_be_written_loses_nothing_else(lab_factory, tmp_path):
    """The report is never lost: the Markdown file's folder does not exist; the task says so,
    and the JSON result, the summary and the outcome's exit status still come."""
    lab = lab_factory("healthy")
    missing = tmp_path / "no-such-folder" / "r.md"
    proc, result = run_playbook(
        lab, tmp_path, "-e", "diagnose_502_report_markdown_file=" + str(missing)
    )
    assert proc.returncode == 0, explain(proc)
    assert "cannot write %s: No such file or directory" % missing in proc.stdout, explain(proc)
    assert result["outcome"]["outcome"] == "healthy"
    assert "outcome: HEALTHY (exit status 0)" in proc.stdout, explain(proc)
    assert not missing.exists()


@pytest.mark.slow
def test_ten_concurrent_remediation_runs_reload_once(lab_factory, tmp_path):
    """No reload storm: ten runs at once against one stale proxy; the reloaded-since rule (the
    pod's own workers started after the current endpoints appeared), read under a per-replica
    lock, lets exactly one of them reload."""
    lab = lab_factory("stale_upstream")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    env.pop("KUBECONFIG", None)
    procs = []
    for i in range(10):
        report = tmp_path / ("result-%d.json" % i)
        cmd = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(PLAYBOOK),
            "-e",
            "@" + str(lab.dir / "vars.yml"),
            "-e",
            "diagnose_502_remediate=true",
            "-e",
            "diagnose_502_report_file=" + str(report),
            "-e",
            "diagnose_502_show_report=false",
        ]
        procs.append(
            (
                subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                ),
                report,
            )
        )
    results = []
    for proc, report in procs:
        out, _err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-4000:]
        results.append(json.loads(report.read_text()))
    reloads = [r for r in results if r["remediation"]["performed"]]
    assert len(reloads) == 1, [r["remediation"] for r in results]
    skipped = [
        r for r in results if any(rep.get("skipped") for rep in r["remediation"]["replicas"])
    ]
    # Every other run either saw the stale proxy and stood back (reloaded since) or came late enough
    # to find it healthy; none reloaded.
    assert all(r["verdict"]["cause"] in ("stale_upstream", "healthy") for r in results)
    assert all(r["remediation"]["verified"] for r in skipped)
    assert lab.http_status() == 200


def test_missing_proxy_variables_are_named_before_anything_runs(tmp_path):
    """The role's argument specs stop a run that does not say which proxy, naming both variables."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(PLAYBOOK),
            "-e",
            "diagnose_502_report_file=" + str(tmp_path / "r.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert (
        "missing required arguments: diagnose_502_proxy_namespace, diagnose_502_proxy_selector"
        in proc.stdout
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "r.json").exists()
