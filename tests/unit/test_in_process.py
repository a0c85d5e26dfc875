"""When an action plugin runs its module's task in the controller's process (plugin_utils/
_in_process.py), and what the task's options and results look like then (module_utils/_tasks.py).
The same results both ways, against the lab: tests/integration/test_modules.py."""

import os
import sys

from ansible_collections.badgateway.k8s.plugins.module_utils import _k8s_tasks
from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import run_task
from ansible_collections.badgateway.k8s.plugins.plugin_utils._in_process import (
    environment,
    same_python,
)


def test_only_this_very_python_is_the_same_python(tmp_path):
    here = os.path.abspath(sys.executable)
    assert same_python(here)
    assert not same_python("python3")  # a name on PATH: not known to be this one
    assert not same_python(None) and not same_python("")
    # A wrapper elsewhere, even one that runs this Python, is another interpreter.
    wrapper = tmp_path / "python"
    wrapper.write_text('#!/bin/sh\nexec "%s" "$@"\n' % here)
    wrapper.chmod(0o755)
    assert not same_python(str(wrapper))
    # Another name for it beside it (a virtualenv's python and python3) is the same.
    alias = tmp_path / "bin" / "python3"
    alias.parent.mkdir()
    alias.symlink_to(tmp_path / "bin" / "python")
    (tmp_path / "bin" / "python").symlink_to(here)
    assert same_python(str(alias), here=str(tmp_path / "bin" / "python"))


def test_the_tasks_environment_is_set_while_it_runs_and_then_restored(monkeypatch):
    monkeypatch.setenv("BADGATEWAY_KEPT", "before")
    monkeypatch.delenv("BADGATEWAY_NEW", raising=False)
    with environment({"BADGATEWAY_KEPT": "during", "BADGATEWAY_NEW": 1}):
        assert os.environ["BADGATEWAY_KEPT"] == "during" and os.environ["BADGATEWAY_NEW"] == "1"
    assert os.environ["BADGATEWAY_KEPT"] == "before" and "BADGATEWAY_NEW" not in os.environ


def test_options_are_checked_as_ansible_module_checks_them():
    assert "max_in_flight" in _k8s_tasks.AUTH_ARG_SPEC  # the Kubernetes tasks are registered
    result = run_task("pod_info", {"namespace": "a", "label_selector": "x", "service": "y"})
    assert result["failed"] and result["msg"] == (
        "parameters are mutually exclusive: label_selector|service"
    )
    result = run_task("pod_info", {"label_selector": "x"})
    assert result["msg"] == "missing required arguments: namespace"
    result = run_task("pod_info", {"namespace": "a", "service": "b", "bogus": 1}, module_name="m")
    assert result["msg"].startswith("Unsupported parameters for (m) module: bogus.")
    result = run_task("proxy_info", {"namespace": "a", "selector": "b", "request_timeout": 0})
    assert result["msg"] == "request_timeout must be a positive number of seconds, got 0.0"


def test_secrets_never_leave_in_the_result(tmp_path):
    """A no_log option and a kubeconfig dict's credentials are hidden, as AnsibleModule hides
    them, in every message and in the invocation."""
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
        "users": [{"name": "u", "user": {"token": "s3cr3t-token"}}],
    }
    result = run_task(
        "pod_info",
        {"namespace": "a", "label_selector": "x", "kubeconfig": kubeconfig, "request_timeout": 1},
        invocation=True,
    )
    assert result["failed"] and "s3cr3t-token" not in repr(result)
    result = run_task(
        "pod_info",
        {"namespace": "a", "label_selector": "x", "host": "https://127.0.0.1:9", "api_key": "k3y"},
        invocation=True,
    )
    assert result["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "k3y" not in repr(result)
