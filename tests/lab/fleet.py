"""A fleet of labs: many targets for playbooks/diagnose_502.yml, each one its own "cluster".

    python tests/lab/fleet.py up --dir DIR [--targets 50] [--scenarios stale_upstream,healthy,...]
    python tests/lab/fleet.py down --dir DIR

``up`` starts one lab per live target (scenarios taken in turn from --scenarios), plus three
targets that cannot be checked (a dead API, a wrong token, a kubeconfig that does not exist),
and writes DIR/inventory.yml (group ``fleet``: one host per target with its diagnose_502_*
variables) and DIR/expected.json (target -> expected cause, ``could_not_check`` for the broken
ones). ``down`` stops every lab it started. Several labs start at once to keep this quick.
"""

import argparse
import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from badlab.fixture import start_lab, stop_lab

DEFAULT_SCENARIOS = (
    "stale_upstream,healthy,no_endpoints,port_mismatch,stale_upstream-one_replica,backend_not_ready"
)
BROKEN = ("dead-api", "wrong-token", "missing-kubeconfig")


def _broken_targets(directory, template_vars):
    """Targets that cannot be checked, each for a different reason."""
    proxy = {
        k: v
        for k, v in template_vars.items()
        if k.startswith(("diagnose_502_proxy", "diagnose_502_service"))
    }
    kubeconfig = yaml.safe_load(Path(template_vars["diagnose_502_kubeconfig"]).read_text())
    kubeconfig["users"][0]["user"]["token"] = "not-a-valid-token"
    wrong = directory / "wrong-token.kubeconfig"
    wrong.write_text(yaml.safe_dump(kubeconfig))
    wrong.chmod(0o600)
    return {
        "dead-api": dict(
            proxy,
            diagnose_502_host="https://127.0.0.1:9",
            diagnose_502_api_key="not-a-real-token",
            diagnose_502_validate_certs="false",
            diagnose_502_request_timeout=3,
        ),
        "wrong-token": dict(proxy, diagnose_502_kubeconfig=str(wrong)),
        "missing-kubeconfig": dict(
            proxy, diagnose_502_kubeconfig=str(directory / "no-such-kubeconfig")
        ),
    }


def up(directory, targets, scenarios, parallel=4):
    directory.mkdir(parents=True, exist_ok=True)
    names = [scenarios[i % len(scenarios)] for i in range(targets)]
    hosts = ["t%02d-%s" % (i + 1, name) for i, name in enumerate(names)]
    (directory / "targets.json").write_text(json.dumps(hosts))

    def start(pair):
        host, scenario = pair
        return host, start_lab(scenario, directory / host)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        labs = dict(pool.map(start, zip(hosts, names)))
    inventory_hosts, expected = {}, {}
    for host in hosts:
        lab = labs[host]
        inventory_hosts[host] = dict(lab.vars, ansible_connection="local")
        expected[host] = lab.info["expect"]["cause"]
    for host, hostvars in _broken_targets(directory, labs[hosts[0]].vars).items():
        inventory_hosts[host] = dict(hostvars, ansible_connection="local")
        expected[host] = "could_not_check"
    inventory = {"all": {"children": {"fleet": {"hosts": inventory_hosts}}}}
    (directory / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (directory / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    return inventory_hosts, expected


def down(directory):
    hosts = (
        json.loads((directory / "targets.json").read_text())
        if (directory / "targets.json").exists()
        else []
    )
    failures = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for host, proc in zip(hosts, pool.map(lambda h: stop_lab(directory / h), hosts)):
            if proc.returncode != 0:
                failures.append("%s: %s" % (host, (proc.stdout + proc.stderr).strip()))
    if failures:
        raise SystemExit("some labs did not stop cleanly:\n" + "\n".join(failures))
    shutil.rmtree(directory, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the fleet's labs and write inventory.yml")
    p_up.add_argument("--dir", type=Path, required=True)
    p_up.add_argument(
        "--targets", type=int, default=50, help="live targets (labs); 3 broken ones are added"
    )
    p_up.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        help="comma-separated scenario names, used in turn",
    )
    p_down = sub.add_parser("down", help="stop every lab of the fleet")
    p_down.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        if args.targets < 1:
            parser.error("--targets must be at least 1")
        try:
            hosts, _expected = up(
                args.dir.resolve(),
                args.targets,
                [s.strip() for s in args.scenarios.split(",") if s.strip()],
            )
        except Exception:
            down(args.dir.resolve())
            raise
        print(
            "fleet up: %d targets (%d labs + %d broken); inventory %s"
            % (len(hosts), args.targets, len(BROKEN), args.dir.resolve() / "inventory.yml")
        )
    else:
        down(args.dir.resolve())
        print("fleet down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
