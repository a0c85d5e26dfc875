"""``module_defaults`` written for kubernetes.core reach this collection's modules.

Plays run with ansible-playbook against the lab. Kubernetes access comes only from
``module_defaults`` (``KUBECONFIG`` points nowhere, ``HOME`` is empty, no ``K8S_AUTH_*``), so a
module that did not get the defaults fails with "no Kubernetes configuration found".

kubernetes.core itself is not installed here. ansible-core resolves ``group/kubernetes.core.k8s``
from kubernetes.core's ``meta/runtime.yml`` alone, so the tests that name that group put a
stand-in kubernetes.core on the collections path: that file and nothing else, with the group as
kubernetes.core declares it (``k8s`` with its eight modules, none of them present).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_CMD = str(Path(sys.executable).parent / "ansible-playbook")
KUBERNETES_CORE_GROUP = [
    "k8s",
    "k8s_exec",
    "k8s_info",
    "k8s_log",
    "k8s_scale",
    "k8s_service",
    "k8s_cp",
    "k8s_drain",
]


def stand_in_kubernetes_core(base):
    """A collections directory whose kubernetes.core has only its meta/runtime.yml."""
    meta = base / "ansible_collections" / "kubernetes" / "core" / "meta"
    meta.mkdir(parents=True)
    (meta / "runtime.yml").write_text(
        yaml.safe_dump(
            {"requires_ansible": ">=2.9.17", "action_groups": {"k8s": KUBERNETES_CORE_GROUP}}
        )
    )
    return base


def run_play(tmp_path, module_defaults, task_args=None, collections=(), env=None):
    """One play that reads the backend pods with badgateway.k8s.pod_info; the finished process."""
    play = [
        {
            "name": "module_defaults from kubernetes.core",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "module_defaults": module_defaults,
            "tasks": [
                {
                    "name": "Read the backend pods",
                    "badgateway.k8s.pod_info": task_args,
                    "register": "found",
                },
                {
                    "name": "Show",
                    "ansible.builtin.debug": {
                        "msg": "PODS={{ found.pods | map(attribute='name') | join(',') }}"
                    },
                },
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_AUTH_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    environ.update(
        HOME=str(home),
        KUBECONFIG=str(tmp_path / "no-such-kubeconfig"),
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(
            [str(ROOT / "build" / "collections"), *map(str, collections)]
        ),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    environ.update(env or {})
    return subprocess.run(
        [PLAYBOOK_CMD, str(path)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def explain(proc):
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (
        proc.returncode,
        proc.stdout[-4000:],
        proc.stderr[-2000:],
    )


# The seed scenario's (stale_upstream) backend: Service open-webui and its one pod.
PODS_ARGS = {"namespace": "open-webui", "service": "open-webui"}


@pytest.fixture
def pods_args(lab):
    return dict(PODS_ARGS)


def test_kubernetes_core_group_with_persist_config_reaches_the_modules(lab, tmp_path, pods_args):
    collections = stand_in_kubernetes_core(tmp_path / "collections")
    defaults = {
        "group/kubernetes.core.k8s": {
            "kubeconfig": lab.info["kubeconfig_diagnose"],
            "persist_config": True,
            # kubernetes.core options these modules do not have are left to kubernetes.core
            "wait": True,
            "wait_timeout": 30,
        }
    }
    before = Path(lab.info["kubeconfig_diagnose"]).read_bytes()
    proc = run_play(tmp_path, defaults, pods_args, collections=[collections])
    assert proc.returncode == 0, explain(proc)
    assert "PODS=open-webui-0" in proc.stdout, explain(proc)
    # A token kubeconfig has nothing to refresh: persist_config writes nothing then.
    assert Path(lab.info["kubeconfig_diagnose"]).read_bytes() == before


def test_ansible_core_k8s_group_reaches_the_modules(lab, tmp_path, pods_args):
    """``group/k8s`` is ansible-core's own group (it includes kubernetes.core.k8s); no stand-in."""
    proc = run_play(
        tmp_path, {"group/k8s": {"kubeconfig": lab.info["kubeconfig_diagnose"]}}, pods_args
    )
    assert proc.returncode == 0, explain(proc)
    assert "PODS=open-webui-0" in proc.stdout, explain(proc)


def test_own_group_task_and_module_defaults_win_over_kubernetes_core_group(
    lab, tmp_path, pods_args
):
    collections = stand_in_kubernetes_core(tmp_path / "collections")
    wrong = str(tmp_path / "wrong-kubeconfig")
    good = lab.info["kubeconfig_diagnose"]
    # The block a kubernetes.core user would copy, persist_config included, under this
    # collection's group; kubernetes.core's group points elsewhere and must lose.
    proc = run_play(
        tmp_path,
        {
            "group/kubernetes.core.k8s": {"kubeconfig": wrong},
            "group/badgateway.k8s.k8s": {"kubeconfig": good, "persist_config": False},
        },
        dict(pods_args),
        collections=[collections],
    )
    assert proc.returncode == 0, explain(proc)
    assert "does not exist" not in proc.stdout
    # An option set on the task itself, under an alias, wins too.
    proc = run_play(
        tmp_path,
        {"group/kubernetes.core.k8s": {"kubeconfig": good, "validate_certs": True}},
        dict(pods_args, verify_ssl=False, kubeconfig=good),
        collections=[collections],
    )
    assert proc.returncode == 0, explain(proc)
    # And when kubernetes.core's group is the only source, its (wrong) value is what is used.
    proc = run_play(
        tmp_path,
        {"group/kubernetes.core.k8s": {"kubeconfig": wrong}},
        pods_args,
        collections=[collections],
    )
    assert proc.returncode != 0
    assert "kubeconfig file %s does not exist" % wrong in proc.stdout, explain(proc)


def test_persist_config_from_the_environment_is_accepted(lab, tmp_path, pods_args):
    proc = run_play(
        tmp_path,
        {"group/badgateway.k8s.k8s": {"kubeconfig": lab.info["kubeconfig_diagnose"]}},
        pods_args,
        env={"K8S_AUTH_PERSIST_CONFIG": "true"},
    )
    assert proc.returncode == 0, explain(proc)


def test_without_kubernetes_core_its_group_stops_the_play_before_any_task(tmp_path):
    """What ansible-core does when the group's collection is missing (the k8s_auth doc fragment says so)."""
    proc = run_play(
        tmp_path,
        {"group/kubernetes.core.k8s": {"kubeconfig": "/nowhere"}},
        {"namespace": "x", "label_selector": "a=b"},
    )
    assert proc.returncode != 0
    assert (
        "could not resolve the module_defaults group kubernetes.core.k8s"
        in proc.stdout + proc.stderr
    ), explain(proc)
    assert "Read the backend pods" not in proc.stdout
