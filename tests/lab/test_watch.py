"""The lab's watch (the emulated API server) and its timeline steps on demand (``badlab step``).

A real watch client, the kubernetes Python client's ``watch.Watch``, and a plain HTTP reader of
the event stream see: the current objects first, each change of the seed's pod replacement,
bookmarks, the 410 Expired of a resume from before a compaction, and a reconnect after an API
restart that replays what changed while it was down.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from badlab.errors import LabError
from badlab.fixture import Lab

pytestmark = pytest.mark.lab

SLICES = "/apis/discovery.k8s.io/v1/namespaces/open-webui/endpointslices"


class Stream:
    """A watch request read in a thread: ``events`` gets each decoded line, then None at the end."""

    def __init__(self, lab: Lab, path: str, kubeconfig: str = "kubeconfig-watch") -> None:
        doc = yaml.safe_load((lab.dir / kubeconfig).read_text())
        cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
        context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        request = urllib.request.Request(
            cluster["server"] + path, headers={"Authorization": f"Bearer {user['token']}"}
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.status: int | None = None

        def read() -> None:
            try:
                with urllib.request.urlopen(request, context=context, timeout=30) as resp:
                    self.status = resp.status
                    for line in resp:
                        self.events.put(json.loads(line))
            except OSError as exc:
                self.events.put({"type": "CLIENT-ERROR", "object": {"message": str(exc)}})
            self.events.put(None)

        threading.Thread(target=read, daemon=True).start()

    def take(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The next ``count`` events (fewer when the stream ends first)."""
        got: list[dict[str, Any]] = []
        while len(got) < count:
            item = self.events.get(timeout=timeout)
            if item is None:
                break
            got.append(item)
        return got

    def rest(self, timeout: float = 10) -> Iterator[dict[str, Any]]:
        """Every event until the stream ends."""
        while (item := self.events.get(timeout=timeout)) is not None:
            yield item


def _endpoints(event: dict[str, Any]) -> list[str]:
    return [e["addresses"][0] for e in event["object"].get("endpoints") or []]


def _replacement(answer: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [h for h in answer["history"] if "new_ip" in h]
    return entry


def test_watch_streams_the_replacement_with_bookmarks(lab: Lab) -> None:
    stream = Stream(
        lab,
        f"{SLICES}?watch=1&allowWatchBookmarks=true&labelSelector=kubernetes.io/service-name%3Dopen-webui-headless&timeoutSeconds=8",
    )
    (first,) = stream.take(1)
    assert first["type"] == "ADDED" and first["object"]["kind"] == "EndpointSlice"
    old = _endpoints(first)
    replaced = _replacement(lab.step("{replace_pod: {pod: open-webui-0}}"))
    assert old == [replaced["old_ip"]]
    rest = list(stream.rest())
    changes = [e for e in rest if e["type"] != "BOOKMARK"]
    # the old pod leaves the slice, then the new one joins it: two changes, no repeats
    assert [(e["type"], _endpoints(e)) for e in changes] == [
        ("MODIFIED", []),
        ("MODIFIED", [replaced["new_ip"]]),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in rest]
    assert versions == sorted(versions)
    assert any(e["type"] == "BOOKMARK" for e in rest), "timeoutSeconds=8 outlasts a 5 s bookmark"


def test_resume_from_a_resource_version_replays_and_expiry_answers_410(lab: Lab) -> None:
    start = Stream(lab, f"{SLICES}?watch=1&timeoutSeconds=1")
    listed = list(start.rest())
    since = max(int(e["object"]["metadata"]["resourceVersion"]) for e in listed)
    lab.step("{replace_pod: {pod: open-webui-0}}")
    replay = list(Stream(lab, f"{SLICES}?watch=1&resourceVersion={since}&timeoutSeconds=1").rest())
    assert {e["type"] for e in replay} == {"MODIFIED"} and len(replay) == 4  # 2 slices x 2
    # a watch open across the expiry is ended; a resume from before the compaction gets 410
    open_watch = Stream(lab, f"{SLICES}?watch=1&resourceVersion={since}")
    assert len(open_watch.take(4)) == 4
    answer = lab.step("{expire_watches: {during: {replace_pod: {pod: open-webui-0}}}}")
    assert answer["history"][0]["ended_watches"] >= 1
    assert list(open_watch.rest()) == []
    (gone,) = list(Stream(lab, f"{SLICES}?watch=1&resourceVersion={since}").rest())
    assert gone["type"] == "ERROR"
    assert (gone["object"]["code"], gone["object"]["reason"]) == (410, "Expired")


def test_api_restart_drops_watches_and_a_resume_sees_what_changed_meanwhile(lab: Lab) -> None:
    stream = Stream(lab, f"{SLICES}?watch=1")
    listed = stream.take(3)
    since = max(int(e["object"]["metadata"]["resourceVersion"]) for e in listed)
    answer = lab.step("{restart_api: {seconds: 1, during: {replace_pod: {pod: open-webui-0}}}}")
    assert answer["history"][0]["down_seconds"] >= 1
    assert [e["type"] for e in stream.rest()] in ([], ["CLIENT-ERROR"])  # dropped, not hung
    replaced = _replacement(answer)
    replay = list(Stream(lab, f"{SLICES}?watch=1&resourceVersion={since}&timeoutSeconds=1").rest())
    assert [replaced["new_ip"]] in [_endpoints(e) for e in replay]
    assert lab.kubectl("get", "pods", "-n", "open-webui").returncode == 0


def test_kubernetes_client_watch_and_rbac(lab: Lab) -> None:
    from kubernetes import client, config, watch

    api = client.DiscoveryV1Api(config.new_client_from_config(str(lab.dir / "kubeconfig-watch")))
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            api.list_namespaced_endpoint_slice, "open-webui", timeout_seconds=1
        )
    ]
    assert {kind for kind, _ in seen} == {"ADDED"}
    assert sorted(name.rsplit("-", 1)[0] for _, name in seen) == [
        "nginx-proxy",
        "open-webui",
        "open-webui-headless",
    ]
    # the diagnosis' least-privilege token may list but not watch
    denied = Stream(lab, f"{SLICES}?watch=1", kubeconfig="kubeconfig-diagnose")
    (error,) = list(denied.rest())
    assert error["type"] == "CLIENT-ERROR" and "403" in error["object"]["message"]


def test_step_errors_name_the_mistake(lab: Lab) -> None:
    with pytest.raises(LabError, match=r"replace_pod\.pod: expected the name of a pod"):
        lab.step("{replace_pod: {pod: nope}}")
    with pytest.raises(LabError, match=r"restart_api: expected a mapping with at most the keys"):
        lab.step("{restart_api: {minutes: 1}}")
    with pytest.raises(LabError, match="not valid YAML"):
        lab.step("{replace_pod: ")
