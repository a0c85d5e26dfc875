"""ansible-rulebook running the collection's drift_watch rulebook against a running lab.

Shared by tests/integration/test_eda.py and bench/eda.py. ``Rulebook(lab, directory, **vars)``
starts the real ansible-rulebook of ``.venv-eda`` (``make venv-eda``) with a Java 17 runtime, in
its own process group, on ``badgateway.k8s.drift_watch`` from the collection; ``lines()`` and
``events()`` read the source's own log lines, ``stop()`` ends it. What it needs and lacks is an
EdaError naming it (never a skip).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]


class EdaError(Exception):
    """ansible-rulebook could not run, ended, or did not do what was waited for."""


EDA_VENV = ROOT / ".venv-eda"

LOG_LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - badgateway\.k8s\.drift_watch - "
    r"(?:INFO|WARNING) - "
    r"drift_watch: (?P<text>.*)$"
)


def java_home() -> str:
    """JAVA_HOME for ansible-rulebook (the runtime ``java`` on PATH belongs to)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        raise EdaError(
            "no java on PATH: ansible-rulebook needs a Java 17 runtime (make system-deps)"
        )
    return str(Path(os.path.realpath(java)).parents[1])


def rulebook_binary() -> Path:
    binary = EDA_VENV / "bin" / "ansible-rulebook"
    if not binary.exists():
        raise EdaError(
            f"{binary} is missing: make venv-eda installs ansible-rulebook (make test does)"
        )
    return binary


class Rulebook:
    """ansible-rulebook running the collection's drift_watch rulebook in its own process group."""

    def __init__(self, lab: Any, tmp_path: Path, **variables: Any) -> None:
        self.reports = tmp_path / "reports"
        self.reports.mkdir()
        (tmp_path / "inventory.yml").write_text(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        )
        values = {
            "diagnose_502_proxy_namespace": lab.vars["diagnose_502_proxy_namespace"],
            "diagnose_502_proxy_selector": lab.vars["diagnose_502_proxy_selector"],
            "diagnose_502_kubeconfig": str(lab.dir / "kubeconfig"),
            "drift_watch_report_dir": str(self.reports),  # no drift_watch_remediate: off
            **variables,
        }
        (tmp_path / "vars.yml").write_text(yaml.safe_dump(values))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")}
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
            ANSIBLE_NOCOLOR="1",
            JAVA_HOME=java_home(),
            PATH=f"{EDA_VENV / 'bin'}:{env.get('PATH', '')}",
        )
        self.output = tmp_path / "rulebook.log"
        self.proc = subprocess.Popen(
            [
                str(rulebook_binary()),
                "-r",
                "badgateway.k8s.drift_watch",
                "-i",
                "inventory.yml",
                "--vars",
                "vars.yml",
                "-v",
            ],
            cwd=tmp_path,
            env=env,
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def lines(self) -> list[tuple[float, str]]:
        """(Unix time, text) of the drift watch's own log lines."""
        found = []
        for line in self.text().splitlines():
            m = LOG_LINE.match(line)
            if m:
                when = datetime.datetime.strptime(m["when"], "%Y-%m-%d %H:%M:%S,%f")
                found.append((when.timestamp(), m["text"]))  # local time, as logging writes it
        return found

    def events(self) -> list[tuple[float, str]]:
        return [
            (w, text)
            for w, text in self.lines()
            if text.startswith(("at_risk ", "could_not_check "))
        ]

    def wait_for(self, what: Callable[[], Any], seconds: float = 60) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EdaError(
                    f"ansible-rulebook exited {self.proc.returncode}:\n{self.text()[-4000:]}"
                )
            value = what()
            if value:
                return value
            time.sleep(0.1)
        raise EdaError(
            f"gave up waiting after {seconds} s; ansible-rulebook's output:\n{self.text()[-6000:]}"
        )

    def watching(self, count: int = 2) -> None:
        """Wait until the source listed its collections (pods and EndpointSlices) and watches."""
        self.wait_for(
            lambda: len([t for _, t in self.lines() if t.startswith("watching ")]) >= count
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def reload_proxies(lab: Any) -> None:
    """Reload every proxy replica (the lab's own exec step): nothing is stale to begin with."""
    for pod in lab.info["proxy_pods"]:
        lab.step("{exec: {pod: %s, command: [nginx, -s, reload]}}" % pod.split("/")[1])


def report(rb: Rulebook, name: str, seconds: float = 90) -> dict[str, Any]:
    """A JSON result the rulebook's playbooks wrote to drift_watch_report_dir."""
    path = rb.reports / name
    rb.wait_for(path.exists, seconds)
    time.sleep(0.2)  # written by ansible.builtin.copy: whole once it exists, settle anyway
    result: dict[str, Any] = json.loads(path.read_text())
    return result
