"""The diagnosis' speed, side by side, in one run: the figures of issue 13 and its acceptance.

Prints, against the lab (tests/lab), medians of several runs each:

* the diagnose_502 role read-only on the seed scenario, and the same with remediation (a fresh
  stale lab per run: the reload fixes it);
* the seed post's five kubectl commands (get pods, get services, exec curl to the Service, logs
  of the proxy, ``nginx -t`` as the read-only stand-in for its reload);
* a bare one-task playbook (Ansible's own floor);
* the role on a proxy of 1 and of 10 replicas;
* the API calls and bytes one diagnosis reads in a namespace holding 10 and 1 000 unrelated
  pods (``badgateway.k8s.diagnose`` run here, its client's counters);
* the fleet of 50 targets at forks 10 against one target (tests/lab/fleet.py);

then the ratios against the acceptance of issue 13, and the machine's load (``/proc/loadavg``)
before and after: on a busy machine every figure is slower, the role's more than the others.
Last, for context: Ansible's floor against the kubectl script on this machine (role / kubectl is
role / floor times that, a property of the machine: Python's start against Go's), and the
role's own seconds above the floor.

    PYTHONPATH=tests/lab:build/collections .venv/bin/python bench/speed.py
    BENCH_RUNS=5 (medians), BENCH_FLEET_TARGETS=50, BENCH_FLEET_RUNS=3 (fleet runs, median),
    BENCH_FLEET=0 (leave the fleet out), BENCH_KEEP=1 (keep the labs' folders, removed otherwise)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from badlab.fixture import start_lab, stop_lab

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PLAYBOOK_CMD = str(Path(PY).parent / "ansible-playbook")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
FLEET_TARGETS = int(os.environ.get("BENCH_FLEET_TARGETS", "50"))
FLEET_RUNS = int(os.environ.get("BENCH_FLEET_RUNS", "3"))
FORKS = 10
SEED = ROOT / "tests/lab/scenarios/stale_upstream.yml"
UNRELATED = (10, 1000)


def env():
    """The environment of every command: the collection found, no proxy, no stray access."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_AUTH_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    environ.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    environ.pop("KUBECONFIG", None)
    return environ


def timed(cmd, extra_env=None, ok=(0,)):
    """Wall seconds of one command; it must end with an exit status in ``ok``."""
    start = time.monotonic()
    proc = subprocess.run(
        cmd, env=dict(env(), **(extra_env or {})), capture_output=True, text=True, check=False
    )
    took = time.monotonic() - start
    if proc.returncode not in ok:
        sys.exit(
            "command failed (%d): %s\n%s\n%s"
            % (proc.returncode, " ".join(cmd), proc.stdout[-3000:], proc.stderr[-3000:])
        )
    return took


def load():
    """The machine's load averages (1, 5, 15 minutes)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def role(lab_dir, *extra):
    """The diagnose_502 playbook on a lab, as a user runs it (no summary printed)."""
    return [
        PLAYBOOK_CMD,
        str(ROOT / "playbooks/diagnose_502.yml"),
        "-e",
        "@%s" % (Path(lab_dir) / "vars.yml"),
        "-e",
        "diagnose_502_show_report=false",
        "-e",
        "diagnose_502_fail_on_problem=false",
        *extra,
    ]


def kubectl_script(lab):
    """The seed post's walkthrough with kubectl (read-only: ``nginx -t`` for the reload)."""
    proxy_ns, proxy = lab.info["proxy_pods"][0].split("/")
    svc_ns, svc = lab.info["service"].split("/")
    return "\n".join(
        [
            "set -e",
            "export KUBECONFIG=%s" % lab.kubeconfig,
            "kubectl get pods -n %s >/dev/null" % svc_ns,
            "kubectl get services -n %s >/dev/null" % svc_ns,
            "kubectl exec -n %s %s -- curl -s -o /dev/null -w '%%{http_code}' http://%s.%s:8080/"
            " >/dev/null" % (proxy_ns, proxy, svc, svc_ns),
            "kubectl logs -n %s %s >/dev/null" % (proxy_ns, proxy),
            "kubectl exec -n %s %s -- nginx -t >/dev/null 2>&1" % (proxy_ns, proxy),
        ]
    )


def median(samples):
    return statistics.median(samples)


def scenario_with_replicas(directory, replicas):
    """The seed scenario with ``replicas`` proxy replicas, written under ``directory``."""
    data = yaml.safe_load(SEED.read_text())
    for pod in data["pods"]:
        if pod["name"] == "nginx-proxy":
            pod["replicas"] = replicas
    path = Path(directory) / ("stale_upstream-%d_replicas.yml" % replicas)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def add_unrelated_pods(lab, count):
    """``count`` pods that nothing selects, in the proxy's and the backend's namespace: stored
    by the lab's API server (no process runs them), each a full pod object with an IP."""
    import http.client
    import ssl

    kubeconfig = yaml.safe_load(lab.kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    token = kubeconfig["users"][0]["user"]["token"]
    server = cluster["server"].split("//", 1)[1]
    host, port = server.split(":")
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    conn = http.client.HTTPSConnection(host, int(port), context=context)
    namespace = lab.info["proxy_namespace"]
    slot = lab.info["slot"]
    for i in range(count):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "unrelated-%04d" % i,
                "namespace": namespace,
                "uid": "00000000-0000-4000-8000-%012d" % i,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "unrelated", "shard": str(i % 10)},
            },
            "spec": {
                "containers": [
                    {
                        "name": "worker",
                        "image": "registry.example/worker:1.0",
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }
                ],
                "nodeName": "lab-node",
            },
            "status": {
                "phase": "Running",
                "podIP": "127.%d.3.%d" % (slot, i % 250 + 1),
                "podIPs": [{"ip": "127.%d.3.%d" % (slot, i % 250 + 1)}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": "worker",
                        "image": "registry.example/worker:1.0",
                        "imageID": "registry.example/worker@sha256:%064x" % i,
                        "ready": True,
                        "restartCount": 0,
                        "started": True,
                        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                    }
                ],
                "startTime": "2026-01-01T00:00:00Z",
            },
        }
        conn.request(
            "POST",
            "/api/v1/namespaces/%s/pods" % namespace,
            body=json.dumps(pod),
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            sys.exit("could not add an unrelated pod: HTTP %d" % response.status)
    conn.close()


def diagnosis_reads(lab):
    """One diagnosis (badgateway.k8s.diagnose, run here): the API calls and bytes it read."""
    from ansible_collections.badgateway.k8s.plugins.module_utils import _diagnose
    from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import Connector
    from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import (
        TASKS,
        execute,
        validate,
    )

    assert _diagnose.LAYERS  # the module registers the diagnose task
    task = TASKS["diagnose"]
    args = {
        "kubeconfig": lab.info["kubeconfig_diagnose"],
        "proxy_namespace": lab.info["proxy_namespace"],
        "proxy_selector": lab.info["proxy_selector"],
        "service_namespace": lab.vars["diagnose_502_service_namespace"],
        "service_name": lab.vars["diagnose_502_service_name"],
        "url": lab.proxy_url,
        "return_facts": False,
    }
    params, _no_log, _warnings, failure = validate(task, args, "diagnose")
    if failure:
        sys.exit("diagnose: %s" % failure["msg"])
    connector = Connector(params)
    started = time.monotonic()
    result = execute(task, params, connect=connector)
    took = time.monotonic() - started
    if result.get("failed"):
        sys.exit("diagnose failed: %s" % result["msg"])
    stats = dict(connector.made[0].client.stats)
    stats["seconds"] = took
    stats["cause"] = result["verdict"]["cause"]
    return stats


def fleet(work):
    """Seconds of one target and of every target (forks 10) over the lab fleet, run as
    bench/fleet.py runs them (its summary checked against the scenarios)."""
    spec = importlib.util.spec_from_file_location(
        "bench_fleet", Path(__file__).with_name("fleet.py")
    )
    bench_fleet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_fleet)
    fleet_dir = Path(work) / "fleet"
    lab_py = [PY, str(ROOT / "tests/lab/fleet.py")]
    subprocess.run(
        lab_py + ["up", "--dir", str(fleet_dir), "--targets", str(FLEET_TARGETS)],
        check=True,
        env=env(),
        stdout=subprocess.DEVNULL,
    )
    try:
        expected = json.loads((fleet_dir / "expected.json").read_text())
        first = sorted(h for h in expected if expected[h] != "could_not_check")[0]
        # Medians, the runs alternated (one target, the fleet, one target, ...) as the figures
        # above are: a single run of each swung the ratio by a fifth on a busy 2-core machine.
        times, cpus = {"one": [], "all": []}, []
        for index in range(max(FLEET_RUNS, RUNS)):
            for name, limit, runs in (("one", first, RUNS), ("all", "fleet", FLEET_RUNS)):
                if index >= runs:
                    continue
                reports = Path(work) / ("reports-%s-%d" % (name, index))
                reports.mkdir()
                cpu = {} if name == "all" else None
                took, summary = bench_fleet.run(fleet_dir / "inventory.yml", limit, reports, cpu)
                times[name].append(took)
                if name != "all":
                    continue
                cpus.append(cpu)
                if summary is None:
                    sys.exit("the fleet run wrote no fleet summary")
                got = {row["target"]: row["cause"] for row in summary["rows"]}
                wrong = {
                    t: (expected[t], got.get(t)) for t in expected if got.get(t) != expected[t]
                }
                if wrong:
                    sys.exit("the fleet summary disagrees with the scenarios: %s" % wrong)
    finally:
        subprocess.run(lab_py + ["down", "--dir", str(fleet_dir)], check=False, env=env())
    cpu = {key: statistics.mean(c[key] for c in cpus) for key in cpus[0]}
    return median(times["one"]), median(times["all"]), len(expected), cpu


def measure(work):
    """Every figure, with the labs and files in ``work``; prints them."""
    started_load = load()
    figures = {}
    rows = []
    bare = work / "bare.yml"
    bare.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        "  tasks:\n    - ansible.builtin.debug:\n        msg: floor\n"
    )
    seed = start_lab(SEED, work / "seed")
    ten = start_lab(scenario_with_replicas(work, 10), work / "ten")
    try:
        script = work / "kubectl.sh"
        script.write_text(kubectl_script(seed))
        samples = {"bare": [], "kubectl": [], "role": [], "one": [], "ten": []}
        # Round-robin: every figure sees the same moments of the machine's load.
        for _ in range(RUNS):
            samples["bare"].append(timed([PLAYBOOK_CMD, str(bare)]))
            samples["kubectl"].append(timed(["bash", str(script)]))
            samples["role"].append(timed(role(seed.dir)))
            samples["ten"].append(timed(role(ten.dir)))
        samples["one"] = samples["role"]
        remediation = []
        for index in range(max(1, RUNS // 2)):
            fresh = start_lab(SEED, work / ("fix-%d" % index))
            try:
                remediation.append(timed(role(fresh.dir, "-e", "diagnose_502_remediate=true")))
            finally:
                stop_lab(fresh.dir)
        for name in samples:
            figures[name] = median(samples[name])
        figures["remediation"] = median(remediation)
    finally:
        stop_lab(seed.dir)
        stop_lab(ten.dir)

    reads = {}
    for count in UNRELATED:
        lab = start_lab(SEED, work / ("pods-%d" % count))
        try:
            add_unrelated_pods(lab, count)
            reads[count] = diagnosis_reads(lab)
        finally:
            stop_lab(lab.dir)

    fleet_figures = None
    if os.environ.get("BENCH_FLEET", "1") != "0":
        fleet_figures = fleet(work)

    print("load average before: %s, after: %s (2 cores: >2 means busy)" % (started_load, load()))
    print()
    print("%-46s %8s %6s" % ("", "median s", "runs"))
    for label, key, runs in (
        ("bare one-task playbook (Ansible's floor)", "bare", RUNS),
        ("seed post's five kubectl commands", "kubectl", RUNS),
        ("diagnose_502 read-only, seed (1 replica)", "role", RUNS),
        ("diagnose_502 with remediation, seed", "remediation", max(1, RUNS // 2)),
        ("diagnose_502 read-only, 10 replicas", "ten", RUNS),
    ):
        print("%-46s %8.2f %6d" % (label, figures[key], runs))
    if fleet_figures:
        one, everything, targets, cpu = fleet_figures
        print("%-46s %8.2f %6d" % ("fleet: 1 target", one, RUNS))
        print(
            "%-46s %8.2f %6d"
            % ("fleet: %d targets, forks %d" % (targets, FORKS), everything, FLEET_RUNS)
        )
        # The labs share this machine's cores with Ansible: their CPU is the clusters' own work.
        print("%-46s %8.2f" % ("  its CPU s (mean): ansible-playbook + workers", cpu["ansible"]))
        print("%-46s %8.2f" % ("  its CPU s (mean): the labs' processes", cpu["labs"]))
    print()
    print(
        "%-46s %6s %6s %9s %8s" % ("one diagnosis, unrelated pods", "calls", "GETs", "bytes", "s")
    )
    for count in UNRELATED:
        r = reads[count]
        print(
            "%-46s %6d %6d %9d %8.2f"
            % (
                "%d unrelated pods in the namespace" % count,
                r["requests"] + r["execs"],
                r["requests"],
                r["bytes"],
                r["seconds"],
            )
        )
    low, high = reads[UNRELATED[0]], reads[UNRELATED[1]]
    rows = [
        ("role / bare playbook", figures["role"] / figures["bare"], "<= 2.5"),
        ("role / kubectl script", figures["role"] / figures["kubectl"], "<= 5"),
        ("10 replicas / 1 replica", figures["ten"] / figures["one"], "<= 1.5"),
        (
            "API calls, 1 000 / 10 unrelated pods",
            (high["requests"] + high["execs"]) / float(low["requests"] + low["execs"]),
            "== 1",
        ),
        ("bytes read, 1 000 / 10 unrelated pods", high["bytes"] / float(low["bytes"]), "<= 1.1"),
    ]
    if fleet_figures:
        rows.append(
            (
                "fleet %d targets / 1 target" % fleet_figures[2],
                fleet_figures[1] / fleet_figures[0],
                "<= 6",
            )
        )
    print()
    print("%-46s %8s %8s %6s" % ("acceptance (issue 13)", "ratio", "target", "holds"))
    for label, ratio, target in rows:
        bound = float(target.split()[-1])
        holds = ratio == bound if target.startswith("==") else ratio <= bound
        print("%-46s %8.2f %8s %6s" % (label, ratio, target, "yes" if holds else "NO"))
    # role / kubectl = role / floor x floor / kubectl: the second factor is this machine's
    # (Ansible's Python start against kubectl's Go start), not the role's.
    print()
    print("this machine (context, no target)")
    print(
        "%-46s %8.2f" % ("Ansible's floor / kubectl script", figures["bare"] / figures["kubectl"])
    )
    print("%-46s %8.2f" % ("the role's own s (role - floor)", figures["role"] - figures["bare"]))


def main():
    work = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        measure(work)
    finally:
        # Every lab was stopped where it was started; its folder (logs, kubeconfigs, reports)
        # goes too, unless BENCH_KEEP=1 keeps them to look into.
        if os.environ.get("BENCH_KEEP") == "1":
            print("kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
