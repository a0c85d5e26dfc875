"""Score the diagnose_502 role on generated cases, with the reload oracle (``make accuracy-generated``).

For each of N cases of tests/lab/generate.py (seed S): write the scenario, start its lab, ask
every proxy replica on its own address (the oracle's "before"), run ``playbooks/diagnose_502.yml``
with remediation ON, reload through the lab what failed and was not reloaded and ask again (the
oracle's "after", tests/lab/oracle.py), stop the lab. Labs run a few at a time.

Prints a line per failing case, the confusion matrix (injected family × verdict), the right
verdicts per variation, the counts of unsafe reloads (a replica reloaded whose oracle class is
``useless`` or ``not_failing``), missed reloads (class ``needed``, not reloaded and verified),
lost results (no JSON written), tracebacks (``Traceback`` in ansible-playbook's output), the
wall time and, last, ``verdict in family: X/N (P%)``. Exits 1 on any unsafe or missed reload,
lost result or traceback, or when P < 95; 2 when a generated case's lab could not be run.

    python tests/lab/accuracy_generated.py [-n 200] [--seed 1] [-j 2] [--keep DIR] [--save DIR]
    python tests/lab/accuracy_generated.py --only 3,17 --seed 1      # some cases again
    python tests/lab/accuracy_generated.py --lab-only -n 60            # the generator alone:
        # each case's lab and the oracle, no diagnosis; the measured classes against the injected
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
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import oracle  # noqa: E402
from accuracy import Outcome, confusion_matrix, reloaded_replicas, run_role  # noqa: E402
from badlab import scenario as scenario_mod  # noqa: E402
from badlab.errors import LabError  # noqa: E402
from badlab.fixture import start_lab, stop_lab  # noqa: E402
from generate import generate, write_case  # noqa: E402

THRESHOLD = 95.0
# Variations whose right-verdict rate is printed (keys of injected["choices"], "style", "kind").
AXES = ("kind", "style", "error_log", "proxy_replicas", "same_namespace", "libc_musl", "log_noise")


@dataclass
class Case:
    """One generated case: what was injected, what the role said, what the oracle measured."""

    seed: int
    index: int
    scenario: dict[str, Any]
    injected: dict[str, Any]
    verdict: str | None = None
    summary: str = ""
    reloaded: list[str] = field(default_factory=list)  # namespace/name
    verified: dict[str, bool] = field(default_factory=dict)  # per reloaded replica
    replicas: list[oracle.Replica] = field(default_factory=list)
    lost: bool = False
    traceback: bool = False
    lab_error: str | None = None
    exit_code: int | None = None
    output: str = ""
    result: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return str(self.injected["name"])

    @property
    def expected(self) -> str:
        return str(self.injected["family"])

    @property
    def correct(self) -> bool:
        return self.verdict in self.injected["acceptable"]

    @property
    def classes(self) -> dict[str, str | None]:
        return oracle.classes(self.replicas)

    @property
    def unsafe(self) -> list[str]:
        """Replicas the role reloaded although a reload was useless or nothing failed."""
        cls = {r.key: r.cls for r in self.replicas}
        return [k for k in self.reloaded if cls.get(k) in (oracle.USELESS, oracle.NOT_FAILING)]

    @property
    def missed(self) -> list[str]:
        """Replicas a reload fixed that the role did not reload, or did not verify."""
        return [
            r.key
            for r in self.replicas
            if r.cls == oracle.NEEDED and not (r.key in self.reloaded and self.verified.get(r.key))
        ]

    @property
    def generator_mismatch(self) -> dict[str, tuple[str, str | None]]:
        """Replicas whose measured class is not the one the generator meant to inject."""
        wanted = self.injected["expected_oracle"]
        return {
            name: (wanted.get(name), got)
            for name, got in self.classes.items()
            if wanted.get(name) != got
        }

    def kinds(self, lab_only: bool = False) -> list[str]:
        """What went wrong: lab error, lost, traceback, unsafe, missed, wrong family."""
        if self.lab_error is not None:
            return ["lab error"]
        if lab_only:
            return ["generator mismatch"] if self.generator_mismatch else []
        kinds = []
        if self.lost:
            kinds.append("lost")
        if self.traceback:
            kinds.append("traceback")
        if self.unsafe:
            kinds.append("unsafe")
        if self.missed:
            kinds.append("missed")
        if not self.lost and not self.correct:
            kinds.append("wrong family")
        return kinds


def run_case(seed: int, index: int, workdir: Path, lab_only: bool = False) -> Case:
    """Generate, start, measure, diagnose, measure, stop; never raises."""
    started = time.monotonic()
    scenario, injected = generate(seed, index)
    case = Case(seed, index, scenario, injected)
    lab_dir = workdir / case.name
    try:
        path = write_case(workdir / "cases", scenario, injected)
        spec = scenario_mod.load(path)
        lab_dir.mkdir(parents=True, exist_ok=True)
        lab = start_lab(path, lab_dir, owner_pid=os.getpid())
        case.replicas = oracle.replicas(lab.info, spec)
        oracle.before(case.replicas)
        if not lab_only:
            _diagnose(case, lab_dir)
        oracle.after(lab_dir, case.replicas, set(case.reloaded))
    except (LabError, OSError, ValueError, subprocess.SubprocessError) as exc:
        case.lab_error = str(exc)
    finally:
        stop_lab(lab_dir)
        case.seconds = time.monotonic() - started
    return case


def _diagnose(case: Case, lab_dir: Path) -> None:
    """The role with remediation on; fills verdict, reloads, lost, traceback."""
    try:
        proc, result = run_role(lab_dir / "vars.yml", lab_dir / "result.json")
    except subprocess.TimeoutExpired as exc:
        case.lost = True
        case.output = f"ansible-playbook timed out after {exc.timeout}s"
        return
    except ValueError as exc:  # a report that is not JSON
        case.lost = True
        case.output = f"the result file is not JSON: {exc}"
        return
    output = proc.stdout + proc.stderr
    case.exit_code = proc.returncode
    case.traceback = "Traceback" in output
    case.output = f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-1500:]}"
    case.result = result
    if result is None:
        case.lost = True
        return
    verdict = result.get("verdict") or {}
    case.verdict = verdict.get("cause")
    case.summary = verdict.get("summary") or ""
    case.reloaded = reloaded_replicas(result)
    for rep in (result.get("remediation") or {}).get("replicas") or []:
        case.verified[f"{rep['namespace']}/{rep['name']}"] = bool(rep.get("verified"))


def run_all(
    seed: int, indexes: list[int], workdir: Path, jobs: int, lab_only: bool = False
) -> list[Case]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda i: run_case(seed, i, workdir, lab_only), indexes))


# ---------------------------------------------------------------------- the report


def _names(keys: list[str]) -> str:
    return ",".join(k.split("/", 1)[1] for k in keys) or "-"


def case_line(case: Case, kinds: list[str]) -> str:
    """One line (and an indented excerpt) for a failing case."""
    oracle_text = ",".join(f"{n}={c}" for n, c in case.classes.items()) or "-"
    head = (
        f"FAIL {case.seed:>3} {case.index:>4} {case.expected:18} "
        f"verdict={case.verdict or '-':18} reloaded={_names(case.reloaded)} "
        f"oracle={oracle_text} [{', '.join(kinds)}] {case.seconds:.0f}s"
    )
    detail = case.lab_error or case.summary or (case.output if case.lost else "")
    detail = " ".join(detail.split())[:300]
    mismatch = case.generator_mismatch
    extra = f"\n     injected oracle differs: {mismatch}" if mismatch else ""
    return head + (f"\n     {detail}" if detail else "") + extra


def by_axis(cases: list[Case]) -> str:
    """Right verdicts per value of a few variations."""
    lines = []
    for axis in AXES:
        counts: dict[str, list[int]] = {}
        for case in cases:
            value = (
                case.injected[axis]
                if axis in ("style", "kind")
                else case.injected["choices"].get(axis)
            )
            right_total = counts.setdefault(str(value), [0, 0])
            right_total[0] += case.correct
            right_total[1] += 1
        cells = "  ".join(f"{v}: {r}/{t}" for v, (r, t) in sorted(counts.items()))
        lines.append(f"  {axis:15} {cells}")
    return "right verdicts by variation:\n" + "\n".join(lines)


def report(cases: list[Case], seconds: float, lab_only: bool = False) -> int:
    """Print everything; the exit code."""
    failing = [(c, c.kinds(lab_only)) for c in cases]
    failing = [(c, k) for c, k in failing if k]
    for case, kinds in failing:
        print(case_line(case, kinds))
    if failing:
        print()
    errors = [c for c in cases if c.lab_error is not None]
    mismatched = [c for c in cases if c.lab_error is None and c.generator_mismatch]
    if lab_only:
        print(f"labs that could not be run: {len(errors)}")
        print(f"cases whose measured oracle classes differ from the injected: {len(mismatched)}")
        print(f"wall time: {seconds:.0f}s for {len(cases)} cases")
        return 2 if errors else (1 if mismatched else 0)
    print(confusion_matrix([Outcome(c.name, c.expected, verdict=c.verdict) for c in cases]))
    print()
    print(by_axis(cases))
    print()
    unsafe = sum(len(c.unsafe) for c in cases)
    missed = sum(len(c.missed) for c in cases)
    lost = sum(c.lost for c in cases)
    tracebacks = sum(c.traceback for c in cases)
    print(f"unsafe reloads (replicas): {unsafe}")
    print(f"missed reloads (replicas): {missed}")
    print(f"lost results: {lost}")
    print(f"tracebacks: {tracebacks}")
    print(f"labs that could not be run: {len(errors)}")
    print(
        f"cases whose measured oracle classes differ from the injected (generator check): "
        f"{len(mismatched)}"
    )
    print(f"wall time: {seconds:.0f}s")
    right = sum(c.correct for c in cases)
    percent = 100.0 * right / len(cases) if cases else 0.0
    print(f"verdict in family: {right}/{len(cases)} ({percent:.1f}%)")
    if errors:
        return 2
    return 1 if unsafe or missed or lost or tracebacks or percent < THRESHOLD else 0


def keep(cases: list[Case], directory: Path, lab_only: bool = False) -> None:
    """Write every failing case as a scenario file (expect from the injected family)."""
    for case in cases:
        kinds = case.kinds(lab_only)
        if not kinds:
            continue
        note = (
            f"kept by accuracy_generated.py: {', '.join(kinds)}; verdict {case.verdict}; "
            f"reloaded {_names(case.reloaded)}; oracle {case.classes}"
        )
        write_case(directory, case.scenario, case.injected, note)


def save(cases: list[Case], directory: Path) -> None:
    """Each case's result JSON and oracle measurements to DIR/<name>.json."""
    directory.mkdir(parents=True, exist_ok=True)
    for case in cases:
        data = {
            "injected": case.injected,
            "verdict": case.verdict,
            "reloaded": case.reloaded,
            "oracle": {r.name: r.to_json() for r in case.replicas},
            "lab_error": case.lab_error,
            "lost": case.lost,
            "traceback": case.traceback,
            "result": case.result,
        }
        (directory / f"{case.name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="number of cases (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="labs at a time (default 2)")
    parser.add_argument("--only", help="comma-separated case indexes (instead of 0..n-1)")
    parser.add_argument("--keep", type=Path, help="write each failing case as a scenario to DIR")
    parser.add_argument("--save", type=Path, help="write each case's result and oracle to DIR")
    parser.add_argument(
        "--lab-only",
        action="store_true",
        help="no diagnosis: check that each case reproduces (oracle classes as injected)",
    )
    args = parser.parse_args(argv)
    if args.only:
        indexes = [int(i) for i in args.only.split(",") if i.strip()]
    else:
        indexes = list(range(args.n))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="badlab-generated-") as tmp:
        cases = run_all(args.seed, indexes, Path(tmp), args.jobs, args.lab_only)
    if args.keep is not None:
        keep(cases, args.keep, args.lab_only)
    if args.save is not None:
        save(cases, args.save)
    return report(cases, time.monotonic() - started, args.lab_only)


if __name__ == "__main__":
    sys.exit(main())
