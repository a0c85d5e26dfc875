"""The scenario generator (tests/lab/generate.py), and a small generated run end to end.

The generator's checks need only Python. The end-to-end run starts real labs (nginx, root) and
the diagnose_502 role with remediation on, over 12 generated cases, with the reload oracle: it
asserts that every case's lab ran and that no run lost its result or printed a traceback. The
accuracy figure is printed, not asserted (``make accuracy-generated`` is the measure).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import accuracy_generated
from generate import FAMILIES, FAMILY_DECK, case_name, generate, main, validate, write_case

SEED = 1


def test_the_same_seed_gives_the_same_cases():
    for index in range(20):
        assert generate(SEED, index) == generate(SEED, index)


def test_another_seed_gives_other_cases():
    first = [generate(SEED, i)[0] for i in range(10)]
    second = [generate(SEED + 1, i)[0] for i in range(10)]
    assert first != second


def test_every_case_validates_with_the_lab_loader(tmp_path):
    for index in range(60):
        scenario, injected = generate(SEED, index)
        loaded = validate(write_case(tmp_path, scenario, injected))
        assert loaded.name == case_name(SEED, index) == injected["name"]
        assert loaded.expect["cause"] == injected["family"]
        assert injected["acceptable"] == [injected["family"]]
        proxies = sorted(p.split("/", 1)[1] for p in _proxy_pods(loaded))
        assert sorted(injected["expected_oracle"]) == proxies
        assert set(injected["stale_replicas"]) <= set(proxies)


def _proxy_pods(spec):
    sel = spec.proxy["selector"]
    return [
        f"{p.namespace}/{p.name}"
        for p in spec.pods
        if p.namespace == spec.proxy["namespace"]
        and all(p.labels.get(k) == v for k, v in sel.items())
    ]


def test_every_family_is_generated_in_60_cases():
    families = [generate(SEED, i)[1]["family"] for i in range(60)]
    assert set(families) == set(FAMILIES)
    # each deck holds every family
    deck = families[: len(FAMILY_DECK)]
    assert set(deck) == set(FAMILIES)


def test_stale_cases_say_which_replicas_are_stale():
    for index in range(60):
        scenario, injected = generate(SEED, index)
        oracle = injected["expected_oracle"]
        if injected["family"] == "stale_upstream":
            assert injected["stale_replicas"]
            assert scenario["expect"]["stale_replicas"] == injected["stale_replicas"]
            assert {n for n, c in oracle.items() if c == "needed"} == set(
                injected["stale_replicas"]
            )
        else:
            assert not injected["stale_replicas"]
            assert "needed" not in oracle.values()


def test_the_command_line_writes_valid_files(tmp_path, capsys):
    assert main(["--seed", "3", "-n", "4", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.yml"))
    assert [f.stem for f in files] == sorted(case_name(3, i) for i in range(4))
    for path in files:
        validate(path)


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.tools
def test_a_small_generated_run_loses_no_result_and_prints_no_traceback(tmp_path, capsys):
    """12 generated cases (seed 1) through the role and the oracle, two labs at a time."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    assert nginx, "the lab needs nginx (make system-deps installs nginx-light)"
    assert os.geteuid() == 0, "the lab needs root (private mount namespaces)"
    cases = accuracy_generated.run_all(SEED, list(range(12)), tmp_path, jobs=2)
    accuracy_generated.report(cases, 0.0)
    with capsys.disabled():
        print()
        for case in cases:
            print(
                f"  {case.name:36} verdict={case.verdict} reloaded={case.reloaded} "
                f"oracle={case.classes} {case.kinds()}"
            )
        right = sum(c.correct for c in cases)
        print(f"  verdict in family: {right}/{len(cases)}")
    assert [c.name for c in cases if c.lab_error] == [], [c.lab_error for c in cases]
    assert [c.name for c in cases if c.lost] == [], [c.output for c in cases if c.lost]
    assert [c.name for c in cases if c.traceback] == [], [c.output for c in cases if c.traceback]
