"""Fixtures for the fault matrix: a lab with ``faultproxy.FaultProxy`` in front of its API server.

    from faults.conftest import run_playbook, explain

    def test_log_500(fault_lab, tmp_path):
        fl = fault_lab("stale_upstream", rules=[{"path": r"/pods/[^/]+/log$", "action": "status", "code": 500}])
        proc, result = run_playbook(fl, tmp_path, playbook="diagnose_502")
        assert proc.returncode == 2, explain(proc, fl)
        assert fl.proxy.seen(path=r"/log$", status=500)

``fault_lab(scenario, rules=None)`` starts the lab with ``lab_factory`` (tests/conftest.py), then
the proxy, and writes ``kubeconfig``, ``kubeconfig-diagnose`` and ``vars.yml`` pointing at the
proxy in a directory of its own (the lab's own files still point at the lab API, for a direct
look: ``fl.lab.kubectl(...)``). Every proxy is stopped when the test ends, before its lab; the
test fails if a proxy could not be stopped or its port still accepts connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest
import yaml

from badlab.fixture import KUBECTL, Lab
from faults.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
_PROXY_ENV = (
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


@dataclass
class FaultLab:
    """A running lab behind a running fault proxy."""

    lab: Lab
    proxy: FaultProxy
    dir: Path  # where the files below are
    kubeconfig: Path  # cluster-admin token (as the lab's vars.yml uses), server = the proxy
    kubeconfig_diagnose: Path  # the least-privilege token (user "diagnose-502"), server = the proxy
    vars_file: Path  # the lab's vars.yml with diagnose_502_kubeconfig = self.kubeconfig
    vars: dict

    @property
    def info(self) -> dict:
        """The lab's lab.json."""
        return self.lab.info

    def kubectl(
        self, *args: str, timeout: float = 30, diagnose: bool = False
    ) -> subprocess.CompletedProcess:
        """The machine's kubectl through the proxy (not checked: look at returncode)."""
        config = self.kubeconfig_diagnose if diagnose else self.kubeconfig
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )

    def close(self) -> None:
        """Stop the proxy (idempotent) and check its port is closed; the lab is lab_factory's."""
        self.proxy.stop()
        if port_open(self.proxy.port):
            raise RuntimeError(
                f"faultproxy port {self.proxy.port} still accepts connections after stop()"
            )


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without proxy variables and KUBECONFIG: traffic goes to 127.0.0.1 only."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_ENV and k != "KUBECONFIG"}
    env.update(extra)
    return env


def port_open(port: int | None, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    if port is None:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def _proxied_kubeconfig(source: Path, target: Path, server: str) -> None:
    config = yaml.safe_load(source.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = server
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    target.chmod(0o600)


def make_fault_lab(lab: Lab, directory: Path, rules: Iterable[dict] | None = None) -> FaultLab:
    """Start a proxy in front of ``lab`` and write its kubeconfigs and vars.yml in ``directory``.

    The proxy serves the lab's own server certificate (``pki/server.crt``: 127.0.0.1, ::1,
    localhost), so the lab's CA and tokens work unchanged. Close it with ``FaultLab.close()``.
    """
    pki = lab.dir / "pki"
    proxy = FaultProxy(
        lab.info["api_server"], pki / "ca.crt", pki / "server.crt", pki / "server.key", rules
    ).start()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        kubeconfig, diagnose = directory / "kubeconfig", directory / "kubeconfig-diagnose"
        _proxied_kubeconfig(Path(lab.info["kubeconfig"]), kubeconfig, proxy.url)
        _proxied_kubeconfig(Path(lab.info["kubeconfig_diagnose"]), diagnose, proxy.url)
        variables = dict(lab.vars, diagnose_502_kubeconfig=str(kubeconfig))
        vars_file = directory / "vars.yml"
        vars_file.write_text(
            f"# {lab.info['name']} through faultproxy {proxy.url}\n"
            + yaml.safe_dump(variables, sort_keys=False)
        )
    except BaseException:
        proxy.stop()
        raise
    return FaultLab(lab, proxy, directory, kubeconfig, diagnose, vars_file, variables)


@contextlib.contextmanager
def fault_lab_for(
    lab: Lab, directory: Path, rules: Iterable[dict] | None = None
) -> Iterator[FaultLab]:
    """``make_fault_lab`` as a context manager: the proxy is stopped on exit."""
    fl = make_fault_lab(lab, directory, rules)
    try:
        yield fl
    finally:
        fl.close()


@pytest.fixture
def fault_lab(lab_factory, tmp_path_factory):
    """A function ``start(scenario="stale_upstream", rules=None) -> FaultLab``.

    Every proxy it started is stopped when the test ends (then lab_factory stops the labs).
    """
    opened: list[FaultLab] = []

    def start(scenario: str = "stale_upstream", rules: Iterable[dict] | None = None) -> FaultLab:
        lab = lab_factory(scenario)
        fl = make_fault_lab(lab, tmp_path_factory.mktemp(f"faults-{Path(scenario).stem}"), rules)
        opened.append(fl)
        return fl

    yield start
    problems = []
    for fl in opened:
        try:
            fl.close()
        except Exception as exc:  # every proxy gets its chance to stop before failing
            problems.append(str(exc))
        if fl.proxy.errors:
            problems.append(f"faultproxy {fl.proxy.port} handler errors: {fl.proxy.errors}")
    if problems:
        pytest.fail("fault_lab teardown:\n" + "\n".join(problems))


# ---------------------------------------------------------------- ansible-playbook

RUN_MARKER = "FAULTLAB_RUN"


def _marked(marker: str) -> list[tuple[int, str]]:
    """(pid, command) of every live process whose environment holds ``FAULTLAB_RUN=marker``.

    An environment variable follows a run everywhere: into Ansible's workers (which call
    setsid(), leaving the session) and the modules they start, and past the parent's death."""
    needle = f"{RUN_MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie waits for its parent; it runs nothing
            cmd = (
                (entry / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
                .strip()
            )
        except (OSError, IndexError):
            continue
        found.append((int(entry.name), cmd))
    return found


def _kill_marked(marker: str) -> list[str]:
    """SIGKILL every process of the run (again, until none is left); return what was killed."""
    killed: list[str] = []
    for _round in range(20):
        members = _marked(marker)
        if not members:
            break
        for pid, cmd in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(f"{pid} {cmd}")
        time.sleep(0.05)
    return killed


def run_playbook(
    fault_lab: FaultLab,
    tmp_path: Path,
    *extra: str,
    playbook: str | Path = "diagnose_502",
    vars_file: Path | None = None,
    timeout: float = 240,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess, Any]:
    """Run ``ansible-playbook`` through the proxy; return (completed process, result or None).

    ``playbook``: ``"diagnose_502"``, ``"drift_check"`` (files of playbooks/) or a path; its
    result file is asked for with ``diagnose_502_report_file`` (``drift_check_report_file`` for
    drift_check) and read back as JSON (None when not written). ``vars_file`` defaults to the
    proxied vars.yml; ``extra`` are more arguments (``"-e", "diagnose_502_remediate=true"``).

    Every process of the run carries ``FAULTLAB_RUN=<random>`` in its environment: past
    ``timeout`` seconds all of them are killed and the test fails with the output so far.
    ``proc.seconds`` is how long it took; ``proc.leftovers`` lists processes of the run still
    alive after ansible-playbook exited (they are killed; assert it is empty).
    """
    path = Path(playbook)
    if path.parent == Path(".") and path.suffix != ".yml":
        path = PLAYBOOKS / f"{path}.yml"
    report_var = (
        "drift_check_report_file" if path.stem == "drift_check" else "diagnose_502_report_file"
    )
    report = tmp_path / f"{path.stem}-result.json"
    report.unlink(missing_ok=True)
    run_env = clean_env(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    run_env.update(env or {})
    marker = secrets.token_hex(8)
    run_env[RUN_MARKER] = marker
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(path),
        "-e",
        "@" + str(vars_file or fault_lab.vars_file),
        "-e",
        f"{report_var}={report}",
        *extra,
    ]
    started = time.monotonic()
    popen = subprocess.Popen(
        cmd,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = popen.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or pytest interrupted: leave nothing running
        popen.kill()
        _kill_marked(marker)
        if not isinstance(exc, subprocess.TimeoutExpired):
            popen.communicate()
            raise
        try:
            stdout, stderr = popen.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a process that left the session holds the pipes
            stdout, stderr = "(output lost: the pipes stayed open)", ""
        pytest.fail(
            f"{path.name} did not finish within {timeout} s (killed)\n--- stdout\n{stdout[-6000:]}\n"
            f"--- stderr\n{stderr[-3000:]}\n--- API requests\n{fault_lab.proxy.log()[-4000:]}"
        )
    proc = subprocess.CompletedProcess(cmd, popen.returncode, stdout, stderr)
    proc.seconds = time.monotonic() - started
    proc.leftovers = _kill_marked(marker)
    result = None
    if report.exists():
        text = report.read_text()
        try:
            result = json.loads(text)
        except ValueError as exc:
            pytest.fail(f"{report} is not JSON ({exc}):\n{text[:2000]}")
    return proc, result


def explain(proc: subprocess.CompletedProcess, fault_lab: FaultLab | None = None) -> str:
    """An assertion message: exit status, output tails and (with ``fault_lab``) the API requests."""
    text = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    if fault_lab is not None:
        text += f"\n--- API requests through the proxy\n{fault_lab.proxy.log()[-4000:]}"
    return text
