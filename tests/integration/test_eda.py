"""The drift watch with the real ansible-rulebook (from .venv-eda, Java 17) against the lab.

ansible-rulebook loads extensions/eda/rulebooks/drift_watch.yml from the collection (by its
FQCN) and the event source badgateway.k8s.drift_watch from the collection too; the lab changes
the cluster while it runs (``badlab step``). Asserted: the seed's replacement gives one event
within 5 s and the drift check names the stale replica; with remediation the proxy answers 200
again (the time from the replacement to the verified reload is measured and printed); a watch
that expires (410) and an API restart lose no event; a rollout of ten pods gives one event per
proxy replica.
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

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EDA_VENV = ROOT / ".venv-eda"
ROLLOUT = Path(__file__).resolve().parent / "eda" / "healthy-ten_backends.yml"

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.tools]

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
        pytest.fail("no java on PATH: ansible-rulebook needs a Java 17 runtime (make system-deps)")
    return str(Path(os.path.realpath(java)).parents[1])


def rulebook_binary() -> Path:
    binary = EDA_VENV / "bin" / "ansible-rulebook"
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: make venv-eda installs ansible-rulebook (make test does)"
        )
    return binary


class Rulebook:
    """ansible-rulebook running the collection's drift_watch rulebook in its own process group."""

    def __init__(self, lab, tmp_path: Path, **variables) -> None:
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

    def wait_for(self, what, seconds: float = 60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"ansible-rulebook exited {self.proc.returncode}:\n{self.text()[-4000:]}"
                )
            value = what()
            if value:
                return value
            time.sleep(0.1)
        pytest.fail(
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


@pytest.fixture
def rulebook(tmp_path):
    started: list[Rulebook] = []

    def start(lab, **variables) -> Rulebook:
        rb = Rulebook(lab, tmp_path, **variables)
        started.append(rb)
        return rb

    yield start
    for rb in started:
        rb.stop()


def reload_proxies(lab) -> None:
    """Reload every proxy replica (the lab's own exec step): nothing is stale to begin with."""
    for pod in lab.info["proxy_pods"]:
        lab.step("{exec: {pod: %s, command: [nginx, -s, reload]}}" % pod.split("/")[1])


def report(rb: Rulebook, name: str, seconds: float = 90) -> dict:
    path = rb.reports / name
    rb.wait_for(path.exists, seconds)
    time.sleep(0.2)  # written by ansible.builtin.copy: whole once it exists, settle anyway
    return json.loads(path.read_text())


def test_seed_replacement_one_event_within_5s_and_the_drift_check_names_the_replica(
    lab, rulebook
) -> None:
    reload_proxies(lab)
    rb = rulebook(lab)
    rb.watching()
    step = lab.step("{replace_pod: {pod: open-webui-0}}")
    drift = report(rb, "drift-nginx-proxy-0.json")
    (when, text), *more = rb.events()
    assert more == [], rb.events()
    seconds = when - step["started"]
    print(f"\nseed replacement -> drift_watch event: {seconds:.2f} s")
    assert seconds < 5, seconds
    replaced = step["history"][0]
    assert text.startswith("at_risk open-webui/nginx-proxy-0: ")
    assert (
        f"{replaced['new_ip']}:8080" in text and f"may still dial {replaced['old_ip']}:8080" in text
    )
    assert drift["status"] == "drift" and drift["drifted"] == ["open-webui/nginx-proxy-0"]
    assert "nginx-proxy-0" in drift["message"] and replaced["new_ip"] in drift["message"]
    assert lab.http_status() == 502  # read-only: nothing reloaded it


def test_remediation_reloads_and_the_proxy_answers_200(lab, rulebook) -> None:
    reload_proxies(lab)
    rb = rulebook(lab, drift_watch_remediate=True, diagnose_502_url=lab.proxy_url)
    rb.watching()
    step = lab.step("{replace_pod: {pod: open-webui-0}}")
    diagnosis = report(rb, "diagnosis-nginx-proxy-0.json", 120)
    verified_at = (rb.reports / "diagnosis-nginx-proxy-0.json").stat().st_mtime
    assert diagnosis["verdict"]["cause"] == "stale_upstream", diagnosis["verdict"]["summary"]
    (entry,) = diagnosis["remediation"]["replicas"]
    assert entry["name"] == "nginx-proxy-0" and entry["verified"] is True, entry
    assert lab.http_status() == 200
    reload_at = datetime.datetime.fromisoformat(entry["last_reload"].replace("Z", "+00:00"))
    print(
        f"\npod replacement -> reload {reload_at.timestamp() - step['started']:.2f} s, "
        f"-> verified (result written) {verified_at - step['started']:.2f} s"
    )
    # the drift check that follows finds nothing left to fix
    assert report(rb, "drift-nginx-proxy-0.json")["status"] == "ok"
    assert len(rb.events()) == 1


def test_expired_watch_and_api_restart_lose_no_event(lab, rulebook) -> None:
    reload_proxies(lab)
    rb = rulebook(lab, drift_watch_unreachable_seconds=1)

    def at_risk():
        return [t for _, t in rb.events() if t.startswith("at_risk ")]

    rb.watching()
    # the replacement happens while no watch runs; the resume gets 410 and lists again
    lab.step("{expire_watches: {during: {replace_pod: {pod: open-webui-0}}}}")
    rb.wait_for(lambda: len(at_risk()) == 1, 30)
    assert any("resourceVersion expired (410)" in t for _, t in rb.lines())
    report(rb, "drift-nginx-proxy-0.json")
    reload_proxies(lab)
    # the API goes away (every watch drops), the pod is replaced meanwhile, the API returns
    lab.step("{restart_api: {seconds: 5, during: {replace_pod: {pod: open-webui-0}}}}")
    rb.wait_for(lambda: len(at_risk()) == 2, 60)
    assert any("reconnecting in" in t for _, t in rb.lines())
    assert all(t.startswith("at_risk open-webui/nginx-proxy-0") for t in at_risk())
    # while it could not watch, it said so: could_not_check, never silence
    down = [t for _, t in rb.events() if t.startswith("could_not_check watch of ")]
    assert down and all("has failed for" in t for t in down), rb.events()
    assert any("works again" in t for _, t in rb.lines())


def test_a_wrong_kubeconfig_stops_ansible_rulebook_with_one_message(lab, rulebook) -> None:
    rb = rulebook(lab, diagnose_502_kubeconfig=str(lab.dir / "no-such-kubeconfig"))
    assert rb.proc.wait(timeout=120) != 0
    text = rb.text()
    assert (
        "ValueError: drift_watch: kubeconfig file %s does not exist"
        % (lab.dir / "no-such-kubeconfig")
        in text
    )
    assert "Traceback" not in text


def test_a_rollout_of_ten_pods_gives_one_event_per_replica(lab_factory, rulebook) -> None:
    lab = lab_factory(str(ROLLOUT))
    rb = rulebook(lab)
    rb.watching()
    for n in range(10):
        lab.step("{replace_pod: {pod: open-webui-%d}}" % n)
    rb.wait_for(lambda: len(rb.events()) >= 2, 30)
    time.sleep(5)  # room for more events, which must not come
    replicas = sorted(t.split(":")[0] for _, t in rb.events())
    assert replicas == ["at_risk open-webui/nginx-proxy-0", "at_risk open-webui/nginx-proxy-1"]
