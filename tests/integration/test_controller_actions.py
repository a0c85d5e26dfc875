"""The controller-side actions badgateway.k8s.report_files, diagnose_report and
assert_judgement through real Ansible runs (no lab: they run on the controller and contact no
host)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def ansible_env():
    """The environment of an ``ansible`` run here: this repository's collection, plain output."""
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )


def run(args, *extra, module="report_files"):
    """``ansible localhost -m badgateway.k8s.MODULE -a ARGS``: (exit status, its result)."""
    env = ansible_env()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "badgateway.k8s." + module,
            "-a",
            json.dumps(args),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "=> {" in proc.stdout, proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout.split("=> ", 1)[1])


def test_files_are_written_once_and_left_alone_after(tmp_path):
    files = [
        {"dest": str(tmp_path / "r.json"), "content": '{"a": 1}\n'},
        {"dest": str(tmp_path / "r.md"), "content": "# r\n"},
    ]
    rc, first = run({"files": files})
    assert rc == 0, first
    assert first["changed"] is True
    assert (tmp_path / "r.json").read_text() == '{"a": 1}\n'
    assert oct(os.stat(tmp_path / "r.md").st_mode & 0o777) == "0o644"
    rc, again = run({"files": files})
    assert rc == 0
    assert again["changed"] is False
    assert again["files"] == [{"dest": f["dest"], "changed": False} for f in files]


def test_check_mode_writes_nothing(tmp_path):
    rc, result = run({"files": [{"dest": str(tmp_path / "r.json"), "content": "{}"}]}, "--check")
    assert rc == 0
    assert result["changed"] is True
    assert not (tmp_path / "r.json").exists()


def test_a_file_that_cannot_be_written_fails_the_task_naming_it(tmp_path):
    missing = tmp_path / "no-such-folder" / "r.json"
    files = [
        {"dest": str(missing), "content": "{}"},
        {"dest": str(tmp_path / "ok.md"), "content": "ok"},
    ]
    rc, result = run({"files": files})
    assert rc == 2
    assert result["files"] == [{"dest": str(tmp_path / "ok.md"), "changed": True}]
    assert result["msg"].startswith("cannot write %s: No such file or directory" % missing)
    assert (tmp_path / "ok.md").read_text() == "ok"


def test_bad_options_are_named(tmp_path):
    rc, result = run({"files": [{"dest": str(tmp_path / "x")}], "mode": "rw"})
    assert rc == 2
    assert "report_files:" in result["msg"]
    assert "content" in result["msg"]
    rc, result = run({"files": [{"dest": str(tmp_path / "x"), "content": ""}], "mode": "rw"})
    assert rc == 2
    assert result["msg"] == "report_files: mode must be an octal file mode such as '0644', got 'rw'"


def test_the_result_step_names_what_it_lacks(tmp_path):
    env = ansible_env()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local"]
        + ["-m", "badgateway.k8s.diagnose_report", "-a", json.dumps({"proxy": "web/app=nginx"})],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "diagnose_report: missing required arguments: gathered" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def returned_doc(module):
    """The RETURN documentation of ``module``."""
    text = (ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text()
    start = text.index('RETURN = r"""') + len('RETURN = r"""')
    return yaml.safe_load(text[start : text.index('"""', start)])


def test_a_judgement_passes_or_fails_with_its_messages_as_an_assertion_would():
    documented = set(returned_doc("assert_judgement")) | {"changed", "failed"}
    passed = {"passed": True, "fail_msg": [], "success_msg": "[pass] every target (3)"}
    rc, result = run({"judgement": passed}, module="assert_judgement")
    assert rc == 0, result
    assert result == {"changed": False, "msg": "[pass] every target (3)"}
    failing = {"passed": False, "fail_msg": ["a: [fail] no endpoint", "    ready: none"]}
    rc, result = run({"judgement": failing}, module="assert_judgement")
    assert rc == 2, result  # failed (the printed result leaves "failed" out)
    assert result["msg"] == ["a: [fail] no endpoint", "    ready: none"]
    assert result["evaluated_to"] is False and result["assertion"] == "judgement.passed"
    assert set(result) <= documented, set(result) - documented


def test_a_judgement_without_its_verdict_is_named():
    rc, result = run({"judgement": {"fail_msg": ["x"]}}, module="assert_judgement")
    assert rc == 2
    assert result["msg"] == (
        "assert_judgement: missing required arguments: passed found in judgement"
    )
