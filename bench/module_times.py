"""Each module's own run time against a running lab, and the import cost behind it.

For every module it measures (median of ``--runs``):

* ``module``: the module process alone - ``python plugins/modules/X.py args.json`` with the
  collection on PYTHONPATH: interpreter start, imports, API calls and execs, result JSON;
* ``adhoc``: the same through ``ansible localhost -m badgateway.k8s.X`` (adds Ansible's own
  start, AnsiballZ packing and the module's transfer);

and, once, the import times that decide most of a module's cost: the kubernetes client's
``CoreV1Api`` (which these modules avoid) versus what ``k8s_access`` imports.

    PYTHONPATH=tests/lab .venv/bin/python -m badlab up --scenario tests/lab/scenarios/stale_upstream.yml --dir /tmp/lab
    .venv/bin/python bench/module_times.py --lab /tmp/lab [--runs 5]

Without ``--lab`` it starts the seed lab in a temporary directory and stops it afterwards.
nginx_reload runs in check mode (nothing runs in the pods), so the lab stays as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / "build" / "collections"
MODULES = ROOT / "plugins" / "modules"
ANSIBLE = str(Path(sys.executable).parent / "ansible")


def module_args(info):
    """Arguments per module for the seed lab (least-privilege kubeconfig)."""
    auth = {"kubeconfig": info["kubeconfig_diagnose"]}
    ns = info["proxy_namespace"]
    svc_ns, svc = info["service"].split("/")
    pod = info["proxy_pods"][0].split("/")[1]
    return {
        "pod_info": dict(auth, namespace=svc_ns, service=svc),
        "service_info": dict(auth, namespace=svc_ns, name=svc),
        "proxy_info": dict(auth, namespace=ns, selector=info["proxy_selector"]),
        "proxy_probe": dict(auth, namespace=ns, pods=[pod], target="self"),
        "nginx_reload": dict(
            auth, namespace=ns, pods=[pod], probe_path="/", _ansible_check_mode=True
        ),
        "diagnose_verdict": {"facts": {"symptom": {"status": 502, "url": info["proxy_url"]}}},
    }


def clean_env():
    """The environment without proxies or K8S_AUTH_* leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_AUTH_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env["PYTHONPATH"] = str(COLLECTIONS)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
    return env


def timed(argv, env, **kw):
    """Wall time of one subprocess; raise with its output if it failed."""
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, **kw)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(
            "%s failed (rc %s):\n%s%s"
            % (argv[:4], proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        )
    return elapsed, proc.stdout


def run_direct(name, args, env, tmp):
    """The module as a plain process reading its args file; returns (seconds, result)."""
    path = Path(tmp) / ("%s.json" % name)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    elapsed, out = timed([sys.executable, str(MODULES / ("%s.py" % name)), str(path)], env)
    result = json.loads(out)
    if result.get("failed"):
        raise RuntimeError("%s failed: %s" % (name, result.get("msg")))
    return elapsed


def run_adhoc(name, args, env):
    """The module through ``ansible localhost -m``."""
    args = dict(args)
    check = args.pop("_ansible_check_mode", False)
    argv = [
        ANSIBLE,
        "localhost",
        "-m",
        "badgateway.k8s." + name,
        "-a",
        json.dumps(args),
        "-e",
        "ansible_python_interpreter=%s" % sys.executable,
    ]
    if check:
        argv.append("--check")
    return timed(argv, env, cwd=str(ROOT))[0]


def import_time(statement, env, runs):
    """Median seconds of ``python -c statement`` minus a bare interpreter start."""
    bare = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(runs))
    full = statistics.median(timed([sys.executable, "-c", statement], env)[0] for _ in range(runs))
    return full - bare


def bench(info, runs):
    """Print the table; return 0."""
    env = clean_env()
    print("imports (median of %d, interpreter start subtracted):" % runs)
    for label, statement in (
        ("kubernetes.client.api.core_v1_api (avoided)", "import kubernetes.client.api.core_v1_api"),
        (
            "k8s_access (kubernetes.config + Configuration + websocket)",
            "import ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access",
        ),
    ):
        print("  %-62s %6.3f s" % (label, import_time(statement, env, runs)))
    print("\n%-18s %10s %10s   (median of %d runs, seconds)" % ("module", "module", "adhoc", runs))
    with tempfile.TemporaryDirectory(prefix="module-times-") as tmp:
        for name, args in module_args(info).items():
            direct = statistics.median(run_direct(name, args, env, tmp) for _ in range(runs))
            adhoc = statistics.median(run_adhoc(name, args, env) for _ in range(runs))
            print("%-18s %10.3f %10.3f" % (name, direct, adhoc))
    return 0


def main():
    """Parse arguments, start a lab if none is given, run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", help="directory of a running lab (with lab.json)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.lab:
        return bench(json.loads((Path(args.lab) / "lab.json").read_text()), args.runs)
    lab_env = dict(os.environ)
    lab_env["PYTHONPATH"] = str(ROOT / "tests" / "lab")
    with tempfile.TemporaryDirectory(prefix="module-times-lab-") as tmp:
        lab_dir = Path(tmp) / "lab"
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "badlab",
                "up",
                "--scenario",
                str(ROOT / "tests/lab/scenarios/stale_upstream.yml"),
                "--dir",
                str(lab_dir),
            ],
            capture_output=True,
            text=True,
            env=lab_env,
        )
        if up.returncode != 0:
            print("lab up failed:\n" + up.stdout + up.stderr, file=sys.stderr)
            return 1
        try:
            return bench(json.loads((lab_dir / "lab.json").read_text()), args.runs)
        finally:
            subprocess.run(
                [sys.executable, "-m", "badlab", "down", "--dir", str(lab_dir)],
                capture_output=True,
                text=True,
                env=lab_env,
            )


if __name__ == "__main__":
    sys.exit(main())
