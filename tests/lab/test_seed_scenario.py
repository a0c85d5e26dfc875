"""The seed incident end to end, with the machine's kubectl and curl against a running lab.

502 from the proxy URL; nginx's real `connect() failed (111: Connection refused)` line naming the
replaced pod's old IP in `kubectl logs`; 200 from inside the proxy pod for the Service name;
`kubectl exec … nginx -s reload` turns the proxy URL to 200. Then lab-down leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from badlab.fixture import start_lab, stop_lab

pytestmark = pytest.mark.lab

CURL = shutil.which("curl") or "/usr/bin/curl"


def _settles_to(lab, want: int, seconds: float = 5.0, streak: int = 5) -> list:
    """Statuses seen until ``streak`` answers in a row are ``want`` (or time runs out).

    Right after ``nginx -s reload`` the old worker may still take a connection for some
    milliseconds (real nginx behaviour), so one answer alone proves nothing either way.
    """
    deadline = time.monotonic() + seconds
    seen: list = []
    while time.monotonic() < deadline and seen[-streak:] != [want] * streak:
        seen.append(lab.http_status())
    return seen


def _replacement(lab) -> dict:
    return next(h for h in lab.info["history"] if "replace_pod" in h["step"])


def test_seed_answers_502_with_the_old_ip_in_the_proxy_log(lab):
    assert lab.info["expect"] == {
        "cause": "stale_upstream",
        "proxy_status": 502,
        "stale_addresses": True,
        "proxy_log_contains": [
            "connect() failed (111: Connection refused) while connecting to upstream"
        ],
    }
    curl = subprocess.run(
        [CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", lab.proxy_url],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert curl.stdout == "502"
    replaced = _replacement(lab)
    assert replaced["old_ip"] != replaced["new_ip"]
    assert replaced["old_uid"] != replaced["new_uid"]

    ns, pod = lab.info["proxy_pods"][0].split("/")
    logs = lab.kubectl("logs", "-n", ns, pod)
    assert logs.returncode == 0, logs.stderr
    stale = [
        line
        for line in logs.stdout.splitlines()
        if "connect() failed (111: Connection refused) while connecting to upstream" in line
    ]
    assert stale, logs.stdout
    assert f'upstream: "http://{replaced["old_ip"]}:8080/' in stale[-1]
    assert "[error]" in stale[-1]
    assert not any(replaced["new_ip"] in line for line in stale)
    assert (
        '"GET / HTTP/1.1" 502' in logs.stdout
    )  # the access log goes to stdout, as in the nginx image


def test_seed_service_answers_inside_the_proxy_pod_and_reload_fixes_it(lab):
    ns, pod = lab.info["proxy_pods"][0].split("/")
    for name in ("open-webui", "open-webui-headless", "open-webui.open-webui.svc.cluster.local"):
        probe = lab.kubectl(
            "exec",
            "-n",
            ns,
            pod,
            "--",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"http://{name}:8080/",
        )
        assert (probe.returncode, probe.stdout) == (0, "200"), (name, probe.stderr)
    hosts = lab.kubectl("exec", "-n", ns, pod, "--", "getent", "hosts", "open-webui-headless")
    assert hosts.stdout.split()[0] == _replacement(lab)["new_ip"]

    check = lab.kubectl("exec", "-n", ns, pod, "--", "nginx", "-t")
    assert check.returncode == 0 and "test is successful" in check.stderr, check.stderr
    assert lab.http_status() == 502
    reload = lab.kubectl("exec", "-n", ns, pod, "--", "nginx", "-s", "reload")
    assert reload.returncode == 0, reload.stderr
    seen = _settles_to(lab, 200)
    assert seen[-5:] == [200] * 5, seen


def test_seed_cluster_objects_match_the_processes(lab):
    replaced = _replacement(lab)
    pods = json.loads(lab.kubectl("get", "pods", "-n", "open-webui", "-o", "json").stdout)["items"]
    app = next(p for p in pods if p["metadata"]["name"] == "open-webui-0")
    assert app["status"]["podIP"] == replaced["new_ip"]
    assert app["metadata"]["uid"] == replaced["new_uid"]
    assert app["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in app["status"]["conditions"]}["Ready"] == "True"
    assert app["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]

    slices = lab.endpoint_slices("open-webui", "open-webui")
    addresses = [a for s in slices for e in s["endpoints"] for a in e["addresses"]]
    assert addresses == [replaced["new_ip"]]
    assert slices[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert slices[0]["endpoints"][0]["targetRef"]["uid"] == replaced["new_uid"]

    svc = json.loads(
        lab.kubectl("get", "svc", "-n", "open-webui", "open-webui-headless", "-o", "json").stdout
    )
    assert svc["spec"]["clusterIP"] == "None"
    assert lab.vars == {
        "diagnose_502_proxy_namespace": "open-webui",
        "diagnose_502_proxy_selector": "app=nginx-proxy",
        "diagnose_502_service_namespace": "open-webui",
        "diagnose_502_service_name": "open-webui",
        "diagnose_502_url": lab.proxy_url,
        "diagnose_502_kubeconfig": str(lab.kubeconfig),
    }


def _lab_pids(directory: Path) -> list[int]:
    """Processes whose command line mentions the lab directory or that work inside it."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(directory) in cmdline or cwd == str(directory) or cwd.startswith(f"{directory}/"):
            found.append(int(entry))
    return found


def test_lab_down_leaves_nothing_behind(tmp_path):
    directory = tmp_path / "lab"
    lab = start_lab("stale_upstream", directory)
    try:
        running = _lab_pids(directory)
        assert lab.info["daemon_pid"] in running
        assert len(running) >= 4  # daemon, app, nginx master and worker
    finally:
        down = stop_lab(directory)
    assert down.returncode == 0, down.stderr
    assert _lab_pids(directory) == []
    assert str(directory) not in Path("/proc/self/mountinfo").read_text()
    assert lab.http_status() is None  # the proxy Service's address no longer listens
    again = stop_lab(directory)
    assert again.returncode == 0 and "no lab process" in again.stdout


def test_lab_down_after_the_daemon_crashed(tmp_path):
    directory = tmp_path / "lab"
    lab = start_lab("stale_upstream", directory)
    try:
        os.kill(lab.info["daemon_pid"], 9)
        time.sleep(0.2)
    finally:
        down = stop_lab(directory)
    assert down.returncode == 0, down.stderr
    assert _lab_pids(directory) == []


def test_nothing_outlives_a_daemon_killed_with_sigkill(tmp_path):
    """No `down` at all: the lab's reaper kills what the daemon's death left (nginx workers)."""
    directory = tmp_path / "lab"
    lab = start_lab("stale_upstream", directory)
    try:
        os.kill(lab.info["daemon_pid"], 9)
        deadline = time.monotonic() + 5
        while _lab_pids(directory) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _lab_pids(directory) == []
    finally:
        stop_lab(directory)


def test_lab_stops_when_its_owner_exits(tmp_path):
    """What keeps a killed test run from leaving labs behind: --owner-pid."""
    directory = tmp_path / "lab"
    owner = subprocess.Popen(["sleep", "60"])
    try:
        start_lab("stale_upstream", directory, owner_pid=owner.pid)
        assert _lab_pids(directory)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 5
    while _lab_pids(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert _lab_pids(directory) == []
    finally:
        stop_lab(directory)
