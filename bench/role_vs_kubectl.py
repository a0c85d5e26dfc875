"""Wall time of the diagnose_502 role on the seed scenario, beside the seed post's own commands.

Starts the lab's stale_upstream scenario, then times, several runs each:
  - `ansible-playbook playbooks/diagnose_502.yml` read-only (every layer, the verdict, the report);
  - a shell script running the seed post's walkthrough with kubectl: get pods, get services,
    exec curl to the Service, logs of the proxy, and `nginx -t` (the read-only stand-in for its
    final `nginx -s reload`, so both sides leave the lab as they found it).
Prints both medians and the ratio. Run through `make bench` (it sets PYTHONPATH).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def timed(cmd, env):
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(
            "command failed (%d): %s\n%s\n%s"
            % (proc.returncode, " ".join(cmd), proc.stdout[-3000:], proc.stderr[-3000:])
        )
    return took


def main():
    import yaml

    lab = tempfile.mkdtemp(prefix="bench-role-")
    env = dict(os.environ)
    subprocess.run(
        [
            PY,
            "-m",
            "badlab",
            "up",
            "--scenario",
            os.path.join(ROOT, "tests/lab/scenarios/stale_upstream.yml"),
            "--dir",
            lab,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        info = json.load(open(os.path.join(lab, "lab.json")))
        with open(os.path.join(lab, "vars.yml")) as f:
            labvars = yaml.safe_load(f)
        env["KUBECONFIG"] = os.path.join(lab, "kubeconfig")
        proxy_ns, proxy = info["proxy_pods"][0].split("/")
        svc_ns = labvars.get("diagnose_502_service_namespace") or proxy_ns
        svc = labvars["diagnose_502_service_name"]
        svc_port = (
            labvars.get("diagnose_502_service_port")
            or subprocess.run(
                [
                    "kubectl",
                    "get",
                    "service",
                    "-n",
                    svc_ns,
                    svc,
                    "-o",
                    "jsonpath={.spec.ports[0].port}",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        script = "\n".join(
            [
                "set -e",
                "kubectl get pods -n %s >/dev/null" % svc_ns,
                "kubectl get services -n %s >/dev/null" % svc_ns,
                "kubectl exec -n %s %s -- curl -s -o /dev/null -w '%%{http_code}' http://%s.%s:%s/ >/dev/null"
                % (proxy_ns, proxy, svc, svc_ns, svc_port),
                "kubectl logs -n %s %s >/dev/null" % (proxy_ns, proxy),
                "kubectl exec -n %s %s -- nginx -t >/dev/null 2>&1" % (proxy_ns, proxy),
            ]
        )
        playbook = [
            os.path.join(os.path.dirname(PY), "ansible-playbook"),
            os.path.join(ROOT, "playbooks/diagnose_502.yml"),
            "-e",
            "@" + os.path.join(lab, "vars.yml"),
            "-e",
            "diagnose_502_show_report=false",
            "-e",
            "diagnose_502_fail_on_problem=false",
        ]
        role_times = [timed(playbook, env) for _ in range(RUNS)]
        shell_times = [timed(["bash", "-c", script], env) for _ in range(RUNS)]
    finally:
        subprocess.run(
            [PY, "-m", "badlab", "down", "--dir", lab],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    role, shell = statistics.median(role_times), statistics.median(shell_times)
    print(
        "diagnose_502 role (read-only, all layers + verdict): median %.2f s over %d runs"
        % (role, RUNS)
    )
    print(
        "seed post's five kubectl commands (by hand, no verdict): median %.2f s over %d runs"
        % (shell, RUNS)
    )
    print("ratio role / kubectl script: %.2f" % (role / shell))


if __name__ == "__main__":
    main()
