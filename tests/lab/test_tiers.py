"""The curated scenarios on both tiers of the lab: the emulated API server and the real one
(kube-apiserver, etcd, kube-controller-manager built by realk8s/build.sh; docs/lab.md).

Each scenario's lab is started on each tier and the diagnose_502 role runs against it with
remediation on, through the lab's least-privilege kubeconfig (the Roles docs/awx.md ships, as
RBAC really enforces them on the real tier). On each tier the verdict must be the scenario's
cause, and only the stale replicas reloaded and verified; between the tiers, the verdict, the
stale replicas, the reloads and each layer's status must agree: a difference is a bug in the
emulator (fixed there, with a test naming the real behaviour), or in the collection.

The real tier's binaries must be built (``make realk8s-build``, which ``make test`` runs first):
without them these tests fail, naming the command; they never skip.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from accuracy import Outcome, run_all
from badlab.fixture import scenario_path, start_lab, stop_lab
from realk8s.controlplane import ControlPlaneError, find_binaries

# The set: the seed, a two-replica stale case, no endpoints, a backend not Ready, a
# rollout race with terminating endpoints, a port mismatch, a NetworkPolicy block, healthy; and
# what the real tier checks besides: HAProxy's stale server, a controller's config not applied,
# a Service recreated after the reload.
CURATED = (
    "stale_upstream",
    "stale_upstream-one_replica",
    "no_endpoints",
    "backend_not_ready",
    "rollout_race",
    "port_mismatch",
    "network_blocked",
    "healthy",
    "stale_upstream-haproxy",
    "config_not_applied",
    "stale_upstream-service_recreated",
)
TIERS = ("emulated", "real")

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Outcome]]:
    """{tier: {scenario: Outcome}}, every lab stopped; the real tier's binaries must exist."""
    try:
        find_binaries()
    except ControlPlaneError as exc:
        pytest.fail(f"the real tier is not built: {exc}")
    jobs = int(os.environ.get("BADLAB_ACCURACY_JOBS", "2"))
    files = [scenario_path(name) for name in CURATED]
    done: dict[str, dict[str, Outcome]] = {}
    for tier in TIERS:
        work = tmp_path_factory.mktemp(f"tier-{tier}")
        ran = run_all(files, work, jobs, tier=tier, least_privilege=True)
        done[tier] = {o.name: o for o in ran}
    times = {
        name: {tier: round(done[tier][name].role_seconds, 2) for tier in TIERS} for name in CURATED
    }
    print("seconds of the role's run per scenario, by tier:", json.dumps(times))
    return done


def _layers(outcome: Outcome) -> dict[str, Any]:
    return {
        layer["name"]: layer["status"]
        for layer in (outcome.result or {}).get("layers") or []
        if isinstance(layer, dict) and "name" in layer
    }


def _explain(outcome: Outcome) -> str:
    verdict = (outcome.result or {}).get("verdict") or {}
    return (
        f"error: {outcome.error}\nverdict: {verdict.get('cause')}\n"
        f"summary: {verdict.get('summary')}\n{outcome.output[-3000:]}"
    )


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", CURATED)
def test_the_verdict_is_the_scenarios_cause(
    outcomes: dict[str, dict[str, Outcome]], tier: str, name: str
) -> None:
    outcome = outcomes[tier][name]
    assert outcome.correct, _explain(outcome)
    assert outcome.unsafe_reloads == [], _explain(outcome)
    assert not outcome.fix_missed, _explain(outcome)


@pytest.mark.parametrize("name", CURATED)
def test_both_tiers_agree(outcomes: dict[str, dict[str, Outcome]], name: str) -> None:
    emulated, real = outcomes["emulated"][name], outcomes["real"][name]

    def seen(o: Outcome) -> dict[str, Any]:
        return {
            "verdict": o.verdict,
            "stale_replicas": o.stale_replicas,
            "reloaded": o.reloaded,
            "verified": o.verified,
            "layers": _layers(o),
        }

    assert seen(real) == seen(emulated), f"real tier:\n{_explain(real)}"


def test_the_real_tier_really_ran_on_kube_apiserver(
    outcomes: dict[str, dict[str, Outcome]],
) -> None:
    """The real runs' API was the built kube-apiserver (its version in lab.json), not the emulator."""
    versions = set()
    for name in CURATED:
        lab_json = Path(outcomes["real"][name].lab_dir) / "lab.json"
        versions.add(json.loads(lab_json.read_text()).get("server_version"))
    built = (Path(__file__).resolve().parent / "realk8s" / "VERSION").read_text().strip()
    assert versions == {built}


def _control_plane_processes(directory: Path) -> list[int]:
    """PIDs whose command line names this lab's control plane folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(directory / "realk8s") in cmdline:
            found.append(int(entry.name))
    return found


def test_a_killed_real_lab_leaves_no_control_plane(tmp_path: Path) -> None:
    """kill -9 of the lab's daemon: etcd, kube-apiserver, the controller manager and the stand-in
    go with it (the kernel kills them, PR_SET_PDEATHSIG), like every other process of the lab."""
    lab = start_lab(scenario_path("healthy"), tmp_path / "lab", tier="real")
    try:
        assert len(_control_plane_processes(tmp_path / "lab")) == 4
        os.kill(lab.info["daemon_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while _control_plane_processes(tmp_path / "lab") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _control_plane_processes(tmp_path / "lab") == []
    finally:
        stop_lab(tmp_path / "lab")


def test_a_deleted_services_endpointslices_are_collected(tmp_path: Path) -> None:
    """On the real tier the garbage collector deletes a deleted Service's EndpointSlices (their
    owner is gone; the EndpointSlice controller only replaces slices of Services that exist)."""
    lab = start_lab(scenario_path("healthy"), tmp_path / "lab", tier="real")

    def slices() -> list[dict[str, Any]]:
        return lab.endpoint_slices("open-webui", "open-webui")

    try:
        assert slices(), "the Service has its EndpointSlice before the delete"
        lab.step("{delete_service: {service: open-webui, namespace: open-webui}}")
        deadline = time.monotonic() + 30
        while slices() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slices() == []
    finally:
        stop_lab(tmp_path / "lab")
