"""pytest fixtures for labs: ``lab_factory(scenario_name)`` and ``lab``.

Each lab runs in its own temporary directory, started with the real ``python -m badlab up``
(with ``--owner-pid``, so the lab also stops if pytest itself is killed) and ALWAYS stopped
with ``python -m badlab down`` when the test ends, passed or failed.

    def test_something(lab_factory):
        lab = lab_factory("stale_upstream")
        assert lab.http_status() == 502
        print(lab.kubectl("get", "pods").stdout)

    @pytest.mark.parametrize("lab", ["healthy"], indirect=True)
    def test_other(lab): ...            # ``lab`` alone starts stale_upstream
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from badlab.errors import LabError

LAB_ROOT = Path(__file__).resolve().parent.parent  # tests/lab
SCENARIOS = LAB_ROOT / "scenarios"
KUBECTL = os.environ.get("BADLAB_KUBECTL", "/usr/bin/kubectl")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(LAB_ROOT), env.get("PYTHONPATH")]))
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        env.pop(name, None)
    return env


def scenario_path(name: str) -> Path:
    """``stale_upstream`` or ``stale_upstream.yml`` → the file under tests/lab/scenarios/."""
    path = Path(name)
    if not path.is_absolute() and path.parent == Path("."):
        path = SCENARIOS / (name if name.endswith(".yml") else f"{name}.yml")
    return path


@dataclass
class Lab:
    """A running lab: its directory, lab.json, vars.yml, and helpers to use it."""

    dir: Path
    info: dict[str, Any]  # lab.json
    vars: dict[str, Any]  # vars.yml

    @property
    def kubeconfig(self) -> Path:
        return Path(self.info["kubeconfig"])

    @property
    def proxy_url(self) -> str:
        url: str = self.info["proxy_url"]
        return url

    def kubectl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run the machine's kubectl against this lab (not checked: look at returncode)."""
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
        )

    def endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """The Service's EndpointSlices, read with kubectl (label kubernetes.io/service-name)."""
        done = self.kubectl(
            "get",
            "endpointslices",
            "-n",
            namespace,
            "-o",
            "json",
            "-l",
            f"kubernetes.io/service-name={service}",
        )
        if done.returncode != 0:
            raise LabError(f"kubectl get endpointslices -n {namespace} failed: {done.stderr}")
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        return items

    def step(self, step: str, timeout: float = 120) -> dict[str, Any]:
        """Run one timeline step (YAML, e.g. ``{replace_pod: {pod: web-0}}``) now."""
        return lab_step(self.dir, step, timeout)

    def http_status(self, url: str | None = None, timeout: float = 10) -> int | None:
        """GET a URL of the lab (default: proxy_url) without any proxy; the status or None."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url or self.proxy_url, timeout=timeout) as resp:
                status: int = resp.status  # typeshed types what open() returns as Any
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return None


def lab_step(directory: Path, step: str, timeout: float = 120) -> dict[str, Any]:
    """``python -m badlab step``: run one step (YAML) in the running lab; its JSON answer."""
    proc = subprocess.run(
        [sys.executable, "-m", "badlab", "step", "--dir", str(directory), "--step", step],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )
    if proc.returncode != 0:
        raise LabError(f"badlab step {step} failed (exit {proc.returncode}):\n{proc.stderr}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def start_lab(
    scenario: str | Path, directory: Path, owner_pid: int | None = None, tier: str | None = None
) -> Lab:
    """``python -m badlab up``; raises LabError with its output if it fails. ``tier``: ``real``
    or ``emulated``; None leaves it to ``BADLAB_TIER`` (emulated without it)."""
    argv = [
        sys.executable,
        "-m",
        "badlab",
        "up",
        "--scenario",
        str(scenario_path(str(scenario))),
        "--dir",
        str(directory),
    ]
    if owner_pid is not None:
        argv += ["--owner-pid", str(owner_pid)]
    if tier is not None:
        argv += ["--tier", tier]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=_env())
    if proc.returncode != 0:
        raise LabError(
            f"lab-up of {scenario} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    info = json.loads((directory / "lab.json").read_text())
    return Lab(directory, info, yaml.safe_load((directory / "vars.yml").read_text()))


def stop_lab(directory: Path) -> subprocess.CompletedProcess[str]:
    """``python -m badlab down`` (returns the finished process; raises nothing)."""
    return subprocess.run(
        [sys.executable, "-m", "badlab", "down", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )


@pytest.fixture
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Lab]]:
    """A function ``start(scenario_name) -> Lab``; every lab it started is stopped afterwards."""
    started: list[Path] = []

    def start(name: str) -> Lab:
        directory = tmp_path_factory.mktemp(f"lab-{Path(name).stem}")
        started.append(directory)
        return start_lab(name, directory, owner_pid=os.getpid())

    yield start
    failures = []
    for directory in started:
        proc = stop_lab(directory)
        if proc.returncode != 0:
            failures.append(f"{directory}: {proc.stdout}{proc.stderr}")
    if failures:
        pytest.fail("lab-down failed:\n" + "\n".join(failures))


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_factory: Callable[[str], Lab]) -> Lab:
    """A running lab of ``stale_upstream`` (or of the scenario given by indirect parametrization)."""
    return lab_factory(getattr(request, "param", "stale_upstream"))
