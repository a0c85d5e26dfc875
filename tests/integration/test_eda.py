"""The drift watch with the real ansible-rulebook (from .venv-eda, Java 17) against the lab.

ansible-rulebook loads extensions/eda/rulebooks/drift_watch.yml from the collection (by its
FQCN) and the event source badgateway.k8s.drift_watch from the collection too; the lab changes
the cluster while it runs (``badlab step``). Asserted: the seed's replacement gives one event
and the drift check names the stale replica; with remediation the proxy answers 200 again; a
watch that expires (410) and an API restart lose no event (and the outage is could_not_check); a
rollout of ten pods gives one event per proxy replica. The times (replacement to event, to the
verified reload) are printed here; their targets (an event within 5 s) are bench/eda.py's.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from eda_rulebook import Rulebook, reload_proxies, report

ROLLOUT = Path(__file__).resolve().parent / "eda" / "healthy-ten_backends.yml"

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.tools]


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
    print(f"\nseed replacement -> drift_watch event: {seconds:.2f} s (target: bench/eda.py)")
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
