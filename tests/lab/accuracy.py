"""Run the diagnose_502 role over every lab scenario and score its verdicts (``make accuracy``).

For each ``tests/lab/scenarios/*.yml``: start the lab, run ``playbooks/diagnose_502.yml`` with
remediation ON (as a user who lets it fix things would), read the JSON result, stop the lab.
Labs run a few at a time. Prints one line per scenario, a confusion matrix (expected cause ×
verdict) and the number of unsafe reloads: a reload when the scenario's cause is not
``stale_upstream``, or of a replica that was not stale. Exits 1 if any verdict is wrong or any
reload was unsafe, 2 if a lab or a run could not be carried out.

    python tests/lab/accuracy.py [-j 3] [--save DIR] [scenario names or files ...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from badlab import scenario as scenario_mod  # noqa: E402
from badlab.errors import LabError  # noqa: E402
from badlab.fixture import SCENARIOS, scenario_path, start_lab, stop_lab  # noqa: E402

PLAYBOOK = ROOT / "playbooks" / "diagnose_502.yml"
STALE = "stale_upstream"


@dataclass
class Outcome:
    """What one scenario's role run gave, and how it scores."""

    name: str
    expected: str
    verdict: str | None = None
    reloaded: list[str] = field(default_factory=list)
    expected_stale: list[str] = field(default_factory=list)
    stale_replicas: list[str] = field(default_factory=list)
    verified: bool = False
    error: str | None = None
    seconds: float = 0.0
    summary: str = ""
    result: dict | None = None
    output: str = ""
    proxy_pods: list[str] = field(default_factory=list)
    lab_dir: str = ""
    role_seconds: float = 0.0  # the ansible-playbook run alone
    up_seconds: float = 0.0  # the lab's start

    @property
    def correct(self) -> bool:
        return self.error is None and self.verdict == self.expected

    @property
    def fix_missed(self) -> bool:
        """A correctly diagnosed stale_upstream whose stale replicas were not all reloaded and verified."""
        return (
            self.expected == STALE
            and self.correct
            and (self.reloaded != self.expected_stale or not self.verified)
        )

    @property
    def unsafe_reloads(self) -> list[str]:
        """Replicas reloaded although the cause is not stale_upstream or they were not stale."""
        if self.expected != STALE:
            return list(self.reloaded)
        return [name for name in self.reloaded if name not in self.expected_stale]


def scenario_files(names: list[str]) -> list[Path]:
    """The scenario files to run: the given names/files, or every file in tests/lab/scenarios."""
    if names:
        return [scenario_path(name) for name in names]
    return sorted(SCENARIOS.glob("*.yml"))


def expected_stale_replicas(spec, proxy_pods: list[str]) -> list[str]:
    """``ns/name`` of the replicas a correct run reloads: expect.stale_replicas, else every proxy
    replica for a stale_upstream scenario, else none."""
    if spec.expect["cause"] != STALE:
        return []
    names = spec.expect.get("stale_replicas")
    if names is None:
        return sorted(proxy_pods)
    return sorted(f"{spec.proxy['namespace']}/{name}" for name in names)


def run_role(
    vars_file: Path, report: Path, *extra: str, timeout: float = 300
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """ansible-playbook diagnose_502.yml with remediation on; returns (process, result or None)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    env.pop("KUBECONFIG", None)
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(PLAYBOOK),
        "-e",
        "@" + str(vars_file),
        "-e",
        "diagnose_502_remediate=true",
        "-e",
        "diagnose_502_report_file=" + str(report),
        *extra,
    ]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    result = json.loads(report.read_text()) if report.exists() else None
    return proc, result


def reloaded_replicas(result: dict) -> list[str]:
    """``ns/name`` of every replica the run really reloaded."""
    replicas = (result.get("remediation") or {}).get("replicas") or []
    return sorted(f"{r['namespace']}/{r['name']}" for r in replicas if r.get("reloaded"))


def run_scenario(
    path: Path,
    workdir: Path,
    save: Path | None = None,
    tier: str | None = None,
    least_privilege: bool = False,
) -> Outcome:
    """Start the scenario's lab, run the role with remediation on, stop the lab; never raises.
    ``tier``: the lab's (start_lab); ``least_privilege``: the role uses the lab's
    kubeconfig-diagnose (the shipped Roles) instead of the admin's."""
    started = time.monotonic()
    try:
        spec = scenario_mod.load(path)
    except LabError as exc:
        return Outcome(path.stem, "?", error=str(exc))
    outcome = Outcome(spec.name, spec.expect["cause"])
    lab_dir = workdir / spec.name
    lab_dir.mkdir(parents=True, exist_ok=True)
    outcome.lab_dir = str(lab_dir)
    try:
        lab = start_lab(path, lab_dir, owner_pid=os.getpid(), tier=tier)
        outcome.up_seconds = time.monotonic() - started
        outcome.proxy_pods = list(lab.info["proxy_pods"])
        outcome.expected_stale = expected_stale_replicas(spec, lab.info["proxy_pods"])
        extra = []
        if least_privilege:
            extra = ["-e", "diagnose_502_kubeconfig=" + lab.info["kubeconfig_diagnose"]]
        role_started = time.monotonic()
        proc, result = run_role(lab_dir / "vars.yml", lab_dir / "result.json", *extra)
        outcome.role_seconds = time.monotonic() - role_started
        outcome.result = result
        outcome.output = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-2000:]}"
        if result is None:
            outcome.error = f"no result written (ansible-playbook exit {proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-800:]}"
        else:
            verdict = result.get("verdict") or {}
            outcome.verdict = verdict.get("cause")
            outcome.summary = verdict.get("summary") or ""
            outcome.stale_replicas = sorted(verdict.get("stale_replicas") or [])
            outcome.reloaded = reloaded_replicas(result)
            outcome.verified = bool((result.get("remediation") or {}).get("verified"))
            if save is not None:
                (save / f"{spec.name}.json").write_text(
                    json.dumps(result, indent=1, sort_keys=True)
                )
    except (LabError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        outcome.error = str(exc)
    finally:
        stop_lab(lab_dir)
        outcome.seconds = time.monotonic() - started
    return outcome


def run_all(
    files: list[Path],
    workdir: Path,
    jobs: int = 3,
    save: Path | None = None,
    tier: str | None = None,
    least_privilege: bool = False,
) -> list[Outcome]:
    """run_scenario over files, ``jobs`` labs at a time; outcomes in the order of files."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(
            pool.map(lambda f: run_scenario(f, workdir, save, tier, least_privilege), files)
        )


def confusion_matrix(outcomes: list[Outcome]) -> str:
    """Rows: expected cause; columns (numbered, legend below): the verdicts given (``error``
    when the run failed). The diagonal, in brackets, holds the right verdicts."""
    rows = sorted({o.expected for o in outcomes})
    cols = rows + sorted({o.verdict or "error" for o in outcomes} - set(rows))
    counts: dict[tuple[str, str], int] = {}
    for o in outcomes:
        key = (o.expected, o.verdict or "error")
        counts[key] = counts.get(key, 0) + 1
    width = max(len(r) for r in rows + ["expected \\ verdict"]) + 4
    lines = ["expected \\ verdict".ljust(width) + "".join(f"{n + 1:>5}" for n in range(len(cols)))]
    for i, r in enumerate(rows):
        cells = []
        for c in cols:
            n = counts.get((r, c), 0)
            text = str(n) if n else "."
            cells.append((f"[{text}]" if r == c else text).rjust(5))
        lines.append(f"{i + 1:>2} {r}".ljust(width) + "".join(cells))
    extra = [f"{n + 1} {c}" for n, c in enumerate(cols) if c not in rows]
    if extra:
        lines.append("other verdicts: " + ", ".join(extra))
    return "\n".join(lines)


def report(outcomes: list[Outcome]) -> int:
    """Print the per-scenario lines, the matrix and the totals; return the exit code."""
    print(f"{'scenario':44} {'expected':20} {'verdict':20} {'reloaded':24} time")
    for o in outcomes:
        mark = "ok " if o.correct and not o.unsafe_reloads else "BAD"
        reloaded = ",".join(n.split("/", 1)[1] for n in o.reloaded) or "-"
        print(
            f"{mark} {o.name:40} {o.expected:20} {(o.verdict or 'error'):20} {reloaded:24} {o.seconds:4.0f}s"
        )
        if o.error:
            print("    error: " + o.error.strip().replace("\n", "\n    ")[:2000])
        elif not o.correct:
            print("    summary: " + o.summary[:400])
        if o.fix_missed:
            print(
                f"    reloaded {o.reloaded} (verified: {o.verified}), expected {o.expected_stale} reloaded and verified"
            )
    print()
    print(confusion_matrix(outcomes))
    right = sum(o.correct for o in outcomes)
    non_stale_reloads = sum(1 for o in outcomes if o.expected != STALE and o.reloaded)
    unsafe = sum(len(o.unsafe_reloads) for o in outcomes)
    missed = [o.name for o in outcomes if o.fix_missed]
    errors = [o.name for o in outcomes if o.error]
    print()
    print(f"verdicts right: {right}/{len(outcomes)}")
    print(f"reloads where the cause was not stale_upstream: {non_stale_reloads}")
    print(f"replicas reloaded that were not stale (all scenarios): {unsafe}")
    if missed:
        print(
            f"stale scenarios not fixed (stale replicas not exactly the ones reloaded, or not verified): {', '.join(missed)}"
        )
    if errors:
        print(f"runs that could not be carried out: {', '.join(errors)}")
        return 2
    return 0 if right == len(outcomes) and unsafe == 0 and not missed else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every scenario (a few labs at a time), print the score."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        help="scenario names or files (default: every file in tests/lab/scenarios)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=3, help="labs run at the same time (default 3)"
    )
    parser.add_argument(
        "--save", type=Path, help="write each scenario's result JSON to DIR/<scenario>.json"
    )
    args = parser.parse_args(argv)
    files = scenario_files(args.scenarios)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print("no such scenario file: " + ", ".join(missing), file=sys.stderr)
        return 2
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="badlab-accuracy-") as tmp:
        outcomes = run_all(files, Path(tmp), args.jobs, args.save)
    code = report(outcomes)
    print(f"{len(outcomes)} scenarios in {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
