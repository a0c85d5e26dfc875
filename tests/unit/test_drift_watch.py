"""The drift watch's core (module_utils/drift_watch.py): resume, debounce, the at-risk rule."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import drift_watch as dw

T0 = datetime.datetime(2026, 11, 30, 9, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def eps(name: str, ips: list[str], rv: int, service: str = "web-headless", ready: bool = True):
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "resourceVersion": str(rv),
            "labels": {dw.SERVICE_LABEL: service},
        },
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": "web-%s" % ip.rsplit(".", 1)[1]},
            }
            for ip in ips
        ],
    }


def pod(name: str, uid: str, ip: str, rv: int, restarts: int = 0):
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": str(rv)},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "containerStatuses": [{"name": "nginx", "restartCount": restarts}],
        },
    }


def test_slice_endpoints_ready_addresses_with_ports_and_targets() -> None:
    obj = eps("a", ["10.0.0.1", "10.0.0.2"], 5)
    obj["endpoints"][1]["conditions"]["ready"] = False
    obj["endpoints"].append({"addresses": ["fd00::1"]})  # no conditions: ready, no target
    assert dw.slice_endpoints(obj) == (
        "shop/web-headless",
        {"10.0.0.1:8080": "shop/web-1", "[fd00::1]:8080": None},
    )
    assert dw.slice_endpoints({"metadata": {"name": "x"}}) == (None, {})


def test_state_apply_reports_the_services_whose_ready_endpoints_changed_and_before() -> None:
    state = dw.WatchState(dw.ENDPOINTSLICES)
    assert state.version is None  # list first
    assert state.replace([eps("a", ["10.0.0.1"], 3)], "7") == {"shop/web-headless": {}}
    assert state.version == "7"
    # a write that changes nothing ready (a not-ready endpoint appears) changes nothing
    quiet = eps("a", ["10.0.0.1"], 8)
    quiet["endpoints"].append({"addresses": ["10.0.0.9"], "conditions": {"ready": False}})
    assert state.apply("MODIFIED", quiet) == {}
    assert state.version == "8"
    one = {"10.0.0.1:8080": "shop/web-1"}
    assert state.apply("MODIFIED", eps("a", [], 9)) == {"shop/web-headless": one}
    assert state.endpoints("shop/web-headless") == {}
    assert state.apply("ADDED", eps("b", ["10.0.0.2"], 10)) == {"shop/web-headless": {}}
    two = {"10.0.0.2:8080": "shop/web-2"}
    assert state.apply("DELETED", eps("b", ["10.0.0.2"], 11)) == {"shop/web-headless": two}
    # a slice moving to another Service changes both
    state.apply("ADDED", eps("c", ["10.0.0.3"], 12))
    moved = state.apply("MODIFIED", eps("c", ["10.0.0.3"], 13, service="other"))
    assert moved == {"shop/web-headless": {"10.0.0.3:8080": "shop/web-3"}, "shop/other": {}}
    state.bookmark("15")
    assert state.version == "15"
    with pytest.raises(ValueError, match="collection"):
        dw.WatchState("services")


def test_a_410_relists_and_the_change_made_meanwhile_is_not_lost() -> None:
    state = dw.WatchState(dw.ENDPOINTSLICES)
    state.replace([eps("a", ["10.0.0.1"], 3), eps("z", ["10.1.0.1"], 4, "other")], "4")
    state.expired()
    assert state.version is None  # list again before watching
    # meanwhile the pod was replaced and the other Service's slice deleted
    changed = state.replace([eps("a", ["10.0.0.2"], 20)], "21")
    assert changed == {
        "shop/web-headless": {"10.0.0.1:8080": "shop/web-1"},
        "shop/other": {"10.1.0.1:8080": "shop/web-1"},
    }
    assert state.endpoints("shop/web-headless") == {"10.0.0.2:8080": "shop/web-2"}
    assert state.version == "21"
    assert state.replace([eps("a", ["10.0.0.2"], 20)], "22") == {}


def test_state_pods_changed_on_a_new_uid_ip_or_restart_only() -> None:
    state = dw.WatchState(dw.PODS)
    assert state.replace([pod("nginx-0", "u1", "10.0.1.1", 2)], "2") == {"shop/nginx-0": {}}
    assert state.apply("MODIFIED", pod("nginx-0", "u1", "10.0.1.1", 3)) == {}
    assert state.apply("MODIFIED", pod("nginx-0", "u1", "10.0.1.1", 4, 1)) == {"shop/nginx-0": {}}
    assert state.apply("DELETED", pod("nginx-0", "u1", "10.0.1.1", 5, 1)) == {"shop/nginx-0": {}}
    assert state.apply("DELETED", pod("nginx-0", "u1", "10.0.1.1", 6, 1)) == {}
    assert state.replace([pod("nginx-0", "u2", "10.0.1.2", 9)], "9") == {"shop/nginx-0": {}}
    assert state.version == "9"


def test_a_rollout_of_ten_pods_is_one_burst() -> None:
    state, debounce = dw.WatchState(dw.ENDPOINTSLICES), dw.Debouncer(quiet=1.0, longest=5.0)
    old = ["10.0.0.%d" % i for i in range(1, 11)]
    state.replace([eps("a", old, 1)], "1")
    current, now, rv = list(old), 0.0, 1
    for i in range(10):  # each pod replaced: the old address leaves, the new one joins
        for change in ("leave", "join"):
            rv += 1
            if change == "leave":
                current.remove(old[i])
            else:
                current.append("10.0.0.%d" % (100 + i))
            for service, before in state.apply("MODIFIED", eps("a", current, rv)).items():
                debounce.note(service, before, now)
            assert debounce.due(now) == []
            now += 0.2
    assert debounce.deadline() == pytest.approx(now - 0.2 + 1.0)
    assert debounce.due(now + 0.5) == []
    (burst,) = debounce.due(now + 1.0)
    assert sorted(burst.old) == sorted("%s:8080" % ip for ip in old)
    assert debounce.pending == {} and debounce.deadline() is None


def test_a_burst_that_never_goes_quiet_is_due_after_longest() -> None:
    debounce = dw.Debouncer(quiet=1.0, longest=3.0)
    for n in range(8):
        debounce.note("shop/web", {"a:1": None}, n * 0.5)
        if n * 0.5 < 3.0:
            assert debounce.due(n * 0.5) == []
    assert [b.service for b in debounce.due(3.0)] == ["shop/web"]
    with pytest.raises(ValueError, match="quiet"):
        dw.Debouncer(quiet=2, longest=1)


def test_pinned_services() -> None:
    hosts = [
        {"host": "web-headless", "service": "shop/web-headless"},
        {"host": "web", "service": "shop/web"},
        {"host": "web-0.web-headless", "service": "shop/web-headless", "pod": "shop/web-0"},
        {"host": "api", "service": "shop/api", "runtime_resolved": True},
        {"host": "example.com", "service": None},
        {"host": "cache", "service": "shop/cache"},
    ]
    pinned, dialled = dw.pinned_services(
        hosts, {"shop/web-headless": True, "shop/web": False, "shop/api": True}
    )
    # a ClusterIP name and a run-time resolved one are not pinned; an unknown kind may be
    assert pinned == {"shop/web-headless": "web-headless", "shop/cache": "cache"}
    assert dialled == ["shop/api", "shop/cache", "shop/web", "shop/web-headless"]


def replica(**kw) -> dw.Replica:
    values = {
        "namespace": "shop",
        "name": "nginx-0",
        "container": "nginx",
        "pinned": {"shop/web-headless": "web-headless"},
        "dialled": ["shop/web-headless"],
        "last_reload": at(0),
        "reload_id": "10:11",
    }
    values.update(kw)
    return dw.Replica(**values)


def burst(old: list[str]) -> dw.Burst:
    return dw.Burst("shop/web-headless", {a: None for a in old}, 10.0, 10.2, at(30))


def test_the_seed_replacement_puts_the_replica_at_risk() -> None:
    event = dw.replica_at_risk(
        replica(),
        burst(["10.0.0.1:8080"]),
        {"10.0.0.2:8080": "shop/web-2"},
        {"shop/web-2": at(31)},
        at(32),
        1.25,
    )
    assert event is not None
    assert {k: event[k] for k in ("status", "replica", "service", "old_endpoints")} == {
        "status": "at_risk",
        "replica": "nginx-0",
        "service": "shop/web-headless",
        "old_endpoints": ["10.0.0.1:8080"],
    }
    assert event["new_endpoints"] == event["unknown_endpoints"] == ["10.0.0.2:8080"]
    assert event["seconds_since_reload"] == 32.0 and event["detected_seconds"] == 1.25
    assert event["last_reload"] == "2026-11-30T09:00:00Z"
    assert event["endpoints_since"] == "2026-11-30T09:00:31Z"
    assert "may still dial 10.0.0.1:8080" in event["reasons"][0]


@pytest.mark.parametrize(
    "kw, new, since, why",
    [
        ({"last_reload": at(40)}, {"10.0.0.2:8080": "shop/web-2"}, at(31), "reloaded after"),
        ({"pinned": {}}, {"10.0.0.2:8080": "shop/web-2"}, at(31), "ClusterIP name"),
        ({}, {}, at(31), "no endpoints left: no_endpoints, not a reload"),
        ({}, {"10.0.0.1:8080": "shop/web-1"}, at(-50), "nothing changed"),
    ],
)
def test_not_at_risk(kw, new, since, why) -> None:
    pods = {p: since for p in new.values()}
    assert (
        dw.replica_at_risk(replica(**kw), burst(["10.0.0.1:8080"]), new, pods, at(50), 1) is None
    ), why


def test_reload_within_the_clock_slack_is_still_at_risk() -> None:
    new = {"10.0.0.2:8080": "shop/web-2"}
    reloaded_same_second = replica(last_reload=at(31.5))
    event = dw.replica_at_risk(
        reloaded_same_second, burst([]), new, {"shop/web-2": at(31)}, at(33), 1
    )
    assert event is not None and event["status"] == "at_risk"
    later = replica(last_reload=at(32))
    assert dw.replica_at_risk(later, burst([]), new, {"shop/web-2": at(31)}, at(33), 1) is None


def test_what_could_not_be_read_is_could_not_check() -> None:
    new = {"10.0.0.2:8080": "shop/web-2"}
    unread = replica(unread="nginx processes: exec refused (403)", last_reload=None)
    event = dw.replica_at_risk(unread, burst(["10.0.0.1:8080"]), new, {}, at(33), 1)
    assert event["status"] == "could_not_check" and "exec refused" in event["reasons"][0]
    assert event["seconds_since_reload"] is None
    no_time = dw.replica_at_risk(
        replica(), burst(["10.0.0.1:8080"]), new, {"shop/web-2": None}, at(33), 1
    )
    assert no_time["status"] == "could_not_check"
    assert "10.0.0.2:8080 became ready could not be read" in no_time["reasons"][0]
    # one known newer endpoint decides it even when another's time is unknown
    both = {"10.0.0.2:8080": "shop/web-2", "10.0.0.3:8080": None}
    event = dw.replica_at_risk(replica(), burst([]), both, {"shop/web-2": at(31)}, at(33), 1)
    assert event["status"] == "at_risk" and event["unknown_endpoints"] == ["10.0.0.2:8080"]


def test_reported_once_per_replica_until_it_reloads() -> None:
    reported = dw.Reported(repeat=60)
    event = {"namespace": "shop", "replica": "nginx-0", "reload_id": "7:8", "status": "at_risk"}
    assert reported.should_send(event, 0.0)
    # the same workers, their start time read a tick later: the same reload
    assert not reported.should_send(dict(event, last_reload="09:00:00.01"), 10.0)
    assert reported.should_send(dict(event, status="could_not_check"), 10.5)
    assert reported.should_send(dict(event, reload_id="7:9"), 11.0)  # it reloaded: news again
    assert not reported.should_send(dict(event, reload_id="7:9"), 12.0)
    assert reported.should_send(dict(event, reload_id="7:9"), 72.0)  # repeat passed


def test_ready_time_and_backoff() -> None:
    assert dw.ready_time({"ready_since": "2026-11-30T09:00:31Z", "creation_timestamp": "x"}) == at(
        31
    )
    assert dw.ready_time({"ready_since": None, "creation_timestamp": "2026-11-30T09:00:00Z"}) == at(
        0
    )
    assert dw.ready_time(None) is None
    backoff = dw.Backoff(first=0.5, most=4)
    assert [backoff.next_delay() for attempt in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_a_failing_watch_is_could_not_check_never_quiet() -> None:
    event = dw.watch_failed_event("endpointslices", "shop", "connection refused", 31.4)
    replica_event = dw.replica_at_risk(
        replica(), burst([]), {"10.0.0.2:8080": "shop/web-2"}, {"shop/web-2": at(31)}, at(33), 1
    )
    assert set(event) == set(replica_event)  # one shape for the rulebook
    assert event["status"] == "could_not_check" and event["replica"] is None
    assert "has failed for 31 s (last: connection refused)" in event["reasons"][0]
