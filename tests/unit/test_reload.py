"""Unit tests of the reload plan (_reload) through the nginx adapter, against a fake exec client.

Each replica is a small model of an nginx pod (master, workers with start times as /proc shows
them, the reload lock, the config test, the answer to a probe); the real /proc parser, config
parser and probe code read what it prints. No root, no nginx, no lab; the wait for new workers
runs on a fake clock.
"""

import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.badgateway.k8s.plugins.module_utils import _reload
from ansible_collections.badgateway.k8s.plugins.module_utils._reload import (
    LOCK_SCRIPT,
    ReloadPlan,
    cooldown_skip,
    reloaded_since_skip,
    new_result,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import (
    PROC_SCRIPT,
    NginxAdapter,
)
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import NOT_FOUND, FakeExec, done

REPO = Path(__file__).resolve().parents[2]
BTIME, HZ, UPTIME = 1767225600, 100, 1000.0  # boot at 2026-01-01T00:00:00Z
LOCK = "/run/badgateway-k8s-reload.lock"
STAT = "stat {pid} (nginx) S {ppid} 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {ticks} 0 0"


def start_time(ticks):
    """What the /proc reader reports for a process started ``ticks`` after boot."""
    return "2026-01-01T00:%02d:%05.2fZ" % divmod(ticks / HZ, 60)


class Replica:
    """One nginx pod as exec sees it. ``reloaded_ago``: seconds since its last reload (None:
    never, its workers are as old as its master). ``obeys``: the master replaces its workers on
    a reload. ``settle_reads``: process reads after the reload before the new workers show.
    ``answer``: the HTTP status a probe gets before the reload, ``answer_after`` after it."""

    def __init__(
        self,
        name,
        ip="10.0.0.7",
        reloaded_ago=None,
        obeys=True,
        settle_reads=1,
        answer=502,
        answer_after=200,
    ):
        self.name, self.obeys, self.settle_reads = name, obeys, settle_reads
        self.answer, self.answer_after = answer, answer_after
        self.pod = {
            "metadata": {"namespace": "edge", "name": name},
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx:1.27"},
                    {"name": "exporter", "image": "nginx/nginx-prometheus-exporter:1.3"},
                ]
            },
            "status": {"phase": "Running", "podIP": ip},
        }
        ticks = HZ if reloaded_ago is None else int((UPTIME - reloaded_ago) * HZ)
        self.workers = [(11, ticks), (12, ticks)]
        self.next_pid, self.pending, self.reloaded = 20, None, False
        self.locked, self.urls = False, []
        self.answers = {
            "lock": self.lock,
            "procs": self.procs,
            "rmdir": self.unlock,
            "nginx -t": done(
                0, stderr="nginx: configuration file /etc/nginx/nginx.conf test is successful\n"
            ),
            "nginx -s reload": self.reload,
            "nginx -T": done(0, "events {}\nhttp { server { listen 80; } }\n"),
            "curl": self.curl,
        }

    def lock(self, argv, container):
        assert not self.locked, "the lock is taken twice"
        self.locked = True
        return done(0, LOCK + "\n")

    def unlock(self, argv, container):
        assert argv == ["rmdir", LOCK] and self.locked
        self.locked = False
        return done(0)

    def procs(self, argv, container):
        if self.pending is not None:
            self.pending -= 1
            if self.pending <= 0:
                self.pending = None
                self.new_workers()
        lines = [
            "pidfile /run/nginx.pid 10",
            "btime %d" % BTIME,
            "hz %d" % HZ,
            "clock %.3f %.2f" % (BTIME + UPTIME, UPTIME),
            STAT.format(pid=10, ppid=1, ticks=HZ),
            "cmd nginx: master process nginx -g daemon off;",
        ]
        for pid, ticks in self.workers:
            lines += [STAT.format(pid=pid, ppid=10, ticks=ticks), "cmd nginx: worker process"]
        return done(0, "\n".join(lines) + "\n")

    def new_workers(self):
        self.workers = [(self.next_pid, int(UPTIME * HZ)), (self.next_pid + 1, int(UPTIME * HZ))]
        self.next_pid += 2
        self.reloaded = True

    def reload(self, argv, container):
        if self.obeys:
            self.pending = self.settle_reads
        return done(0, stderr="2026/01/01 00:16:40 [notice] 30#30: signal process started\n")

    def curl(self, argv, container):
        self.urls.append(argv[-1])
        return done(0, "%d 0.001" % (self.answer_after if self.reloaded else self.answer))


class Cluster(FakeExec):
    """The fake client: each pod's commands answered by its Replica."""

    def __init__(self, *replicas):
        super().__init__(
            pods=[r.pod for r in replicas], scripts={LOCK_SCRIPT: "lock", PROC_SCRIPT: "procs"}
        )
        self.replicas = {r.name: r for r in replicas}
        self.timeouts = {}

    def exec(self, namespace, pod, argv, container=None, timeout=None):
        assert namespace == "edge" and container == "nginx"
        self.answers = self.replicas[pod].answers
        result = super().exec(namespace, pod, argv, container, timeout)
        self.timeouts[self.calls[-1]] = timeout
        return result


class Clock:
    """A monotonic clock that only sleeping moves."""

    def __init__(self):
        self.now, self.sleeps = 100.0, 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1


def options(**changed):
    """The nginx_reload module's defaults, with the role's probe_path."""
    opts = {
        "container": None,
        "probe_path": "/",
        "probe_port": None,
        "probe_url": None,
        "settle_timeout": 5.0,
        "probe_timeout": 5.0,
        "cooldown": 300,
        "force": False,
        "lock_timeout": 30.0,
        "reloaded_after": None,
    }
    opts.update(changed)
    return opts


def run(cluster, names=("p-0",), clock=None, **changed):
    clock = clock or Clock()
    plan = ReloadPlan(NginxAdapter(cluster), options(**changed), clock=clock, sleep=clock.sleep)
    return plan.run("edge", list(names))


def pids(workers):
    return [w["pid"] for w in workers]


# ---------------------------------------------------------------- the plan that works
def test_a_reload_is_tested_sent_proven_by_new_workers_and_probed():
    replica = Replica("p-0", settle_reads=3)
    cluster, clock = Cluster(replica), Clock()
    [result] = run(cluster, clock=clock)
    assert cluster.calls == [
        "lock",
        "procs",
        "nginx -t",
        "nginx -s reload",
        "procs",
        "procs",
        "procs",
        "rmdir",
        "nginx -T",
        "curl",
    ]
    assert clock.sleeps == 2  # two reads saw the old workers
    assert result["container"] == "nginx"  # not the exporter sidecar
    assert result["config_test"] == {
        "rc": 0,
        "ok": True,
        "output": "nginx: configuration file /etc/nginx/nginx.conf test is successful",
    }
    assert result["reload_sent"] and result["reloaded"] and result["verified"]
    assert pids(result["workers_before"]) == [11, 12] and pids(result["workers_after"]) == [20, 21]
    assert (
        result["last_reload"]
        == result["workers_after"][-1]["start_time"]
        == start_time(UPTIME * HZ)
    )
    assert result["last_reload_age"] is None  # never reloaded before
    assert result["probe"]["url"] == "http://10.0.0.7:80/" and result["probe"]["status"] == 200
    assert (result["skipped"], result["unproven"], result["error"]) == (None, None, None)
    assert not replica.locked
    assert cluster.timeouts["lock"] == 40.0  # lock_timeout + 10


def test_the_result_has_exactly_the_fields_nginx_reload_documents():
    text = (REPO / "plugins/modules/nginx_reload.py").read_text()
    start = text.index('RETURN = r"""') + len('RETURN = r"""')
    documented = set(yaml.safe_load(text[start : text.index('"""', start)])["replicas"]["contains"])
    assert set(new_result("edge", "p-0", [])) == documented
    assert set(run(Cluster(Replica("p-0")))[0]) == documented


def test_steps_name_the_adapters_commands_and_the_probe():
    steps = ReloadPlan(
        NginxAdapter(), options(force=True, probe_port=8080, probe_path="health")
    ).steps()
    assert steps == [
        "take the replica's reload lock",
        "skip the reload if the workers started less than 300s ago (no: force)",
        "nginx -t",
        "nginx -s reload (only if nginx -t passes)",
        "wait up to 5s for new worker processes",
        "GET http://<podIP>:8080health from inside the pod, expect no gateway error (502/503/504)",
    ]
    by_url = ReloadPlan(NginxAdapter(), options(probe_path=None, probe_url="http://x/")).steps()
    assert by_url[-1] == "GET http://x/ from inside the pod, expect no gateway error (502/503/504)"
    assert len(ReloadPlan(NginxAdapter(), options(probe_path=None)).steps()) == 5


def test_a_probe_url_and_port_are_used_as_given():
    replica = Replica("p-0", ip="fd00::7")
    [result] = run(Cluster(replica), probe_port=8080, probe_path="healthz")
    assert replica.urls == ["http://[fd00::7]:8080/healthz"] and result["verified"]
    other = Replica("p-0")
    cluster = Cluster(other)
    [result] = run(cluster, probe_path=None, probe_url="http://web.shop:8080/")
    assert other.urls == ["http://web.shop:8080/"] and "nginx -T" not in cluster.calls


def test_without_a_probe_new_workers_are_the_proof():
    replica = Replica("p-0", answer_after=502)
    cluster = Cluster(replica)
    [result] = run(cluster, probe_path=None)
    assert result["verified"] and result["probe"] is None and "curl" not in cluster.calls


# ---------------------------------------------------------------- failure paths
def test_a_failing_config_test_sends_no_reload():
    replica = Replica("p-0")
    replica.answers["nginx -t"] = done(
        1,
        stderr='nginx: [emerg] unknown directive "bogus_directive" in /etc/nginx/conf.d/default.conf:3\n'
        "nginx: configuration file /etc/nginx/nginx.conf test failed\n",
    )
    cluster = Cluster(replica)
    [result] = run(cluster)
    assert "nginx -s reload" not in cluster.calls and "curl" not in cluster.calls
    assert result["config_test"]["rc"] == 1 and result["config_test"]["ok"] is False
    assert result["error"].startswith(
        'nginx -t failed, not reloading: nginx: [emerg] unknown directive "bogus_directive"'
    )
    assert not result["reload_sent"] and not result["reloaded"] and not result["verified"]
    assert result["probe"] is None and not replica.locked


def test_a_config_test_that_cannot_run_is_not_a_pass():
    replica = Replica("p-0")
    replica.answers["nginx -t"] = NOT_FOUND
    [result] = run(Cluster(replica))
    assert result["config_test"] == {"rc": None, "ok": False, "output": NOT_FOUND.error}
    assert result["error"] == "nginx -t failed, not reloading: " + NOT_FOUND.error
    assert not result["reload_sent"]


def test_a_refused_reload_command_is_an_error():
    replica = Replica("p-0")
    replica.answers["nginx -s reload"] = done(
        1, stderr='nginx: [error] invalid PID number "" in "/run/nginx.pid"\n'
    )
    [result] = run(Cluster(replica))
    assert (
        result["error"]
        == 'nginx -s reload failed: nginx: [error] invalid PID number "" in "/run/nginx.pid"'
    )
    assert not result["reload_sent"] and not result["verified"] and not replica.locked


def test_a_reload_the_master_ignores_is_not_taken_for_one():
    replica = Replica("p-0", obeys=False)
    clock = Clock()
    [result] = run(Cluster(replica), clock=clock, settle_timeout=2)
    assert (
        result["reload_sent"] is True
        and result["reloaded"] is False
        and result["verified"] is False
    )
    assert result["error"] == (
        "nginx -s reload exited 0 but the worker processes were not replaced within 2s: "
        "the master probably kept the old config (see its error log)"
    )
    assert pids(result["workers_after"]) == pids(result["workers_before"]) == [11, 12]
    assert result["last_reload"] is None and result["probe"] is None
    assert clock.now >= 102.0 and clock.sleeps == 10  # waited the whole settle_timeout, no longer


def test_processes_that_cannot_be_read_cannot_prove_a_reload():
    replica = Replica("p-0")
    replica.answers["procs"] = done(2, stderr="sh: can't open /proc/stat: Permission denied")
    [result] = run(Cluster(replica))
    assert result["reload_sent"] and not result["reloaded"] and not result["verified"]
    assert result["error"] == (
        "cannot prove the reload: cannot read nginx processes from /proc: "
        "sh: can't open /proc/stat: Permission denied"
    )


def test_a_replica_that_still_answers_502_is_not_verified():
    replica = Replica("p-0", answer_after=502)
    [result] = run(Cluster(replica))
    assert result["reloaded"] is True and result["verified"] is False
    assert result["probe"]["status"] == 502 and result["probe"]["ran"] is True
    assert result["error"] == "reloaded, but the probe of http://10.0.0.7:80/ got 502"
    assert result["unproven"] is None


def test_no_http_client_in_the_pod_leaves_the_reload_unproven():
    replica = Replica("p-0")
    replica.answers.update({"curl": NOT_FOUND, "wget": NOT_FOUND})
    cluster = Cluster(replica)
    [result] = run(cluster)
    assert cluster.calls[-2:] == ["curl", "wget"]
    assert result["reloaded"] is True and result["verified"] is False
    assert result["probe"]["ran"] is False and result["probe"]["tool"] is None
    assert result["unproven"].startswith(
        "new worker processes took over, but not proven to answer: "
        "neither curl nor wget can run in container nginx of pod edge/p-0"
    )
    assert result["error"] == "unproven: " + result["unproven"]


def test_a_refused_probe_exec_leaves_the_reload_unproven():
    replica = Replica("p-0")
    replica.answers["curl"] = K8sError(
        "exec of `curl -sS` in pod edge/p-0 (container nginx): the credentials lack "
        '"create" on "pods/exec" in namespace "edge" (403 Forbidden)',
        403,
    )
    [result] = run(Cluster(replica))
    assert result["reloaded"] and not result["verified"]
    assert "could not run the probe: exec of `curl -sS` in pod edge/p-0" in result["unproven"]


def test_no_listen_port_means_no_probe_and_no_verification():
    replica = Replica("p-0")
    replica.answers["nginx -T"] = done(0, "events {}\nhttp { }\n")
    [result] = run(Cluster(replica))
    assert result["reloaded"] and not result["verified"]
    assert result["error"] == "cannot probe: nginx listens on no port"


def test_a_lock_held_by_another_run_waits_then_skips_in_the_cooldown():
    """Another run holds the lock and reloads meanwhile: this run gets the lock when it is
    released, sees workers 0 s old, and only probes."""
    replica = Replica("p-0")

    def held_then_released(argv, container):
        assert argv[-1] == "300"  # lock_timeout 30 s in 0.1 s tries
        replica.new_workers()  # what the other run did
        return replica.lock(argv, container)

    replica.answers["lock"] = held_then_released
    cluster = Cluster(replica)
    [result] = run(cluster)
    assert "nginx -t" not in cluster.calls and "nginx -s reload" not in cluster.calls
    assert result["skipped"] == (
        "its workers started 0s ago, within the cooldown of 300s: not reloaded again "
        "(force: true overrides)"
    )
    assert result["last_reload_age"] == 0.0 and result["config_test"] is None
    assert (
        result["reloaded"] is False
        and result["verified"] is True
        and result["probe"]["status"] == 200
    )
    assert pids(result["workers_after"]) == pids(result["workers_before"]) == [20, 21]
    assert not replica.locked


def test_a_lock_never_released_is_an_error_and_nothing_runs():
    replica = Replica("p-0")
    replica.answers["lock"] = done(75, stderr="another run has held %s for too long\n" % LOCK)
    cluster = Cluster(replica)
    [result] = run(cluster)
    assert cluster.calls == ["lock"]  # not even the lock's release
    assert (
        result["error"]
        == "cannot take the reload lock in edge/p-0: another run has held %s for too long" % LOCK
    )
    assert (
        result["container"] == "nginx" and result["config_test"] is None and not result["verified"]
    )


def test_an_exec_refused_mid_way_names_the_call_and_the_other_replicas_are_still_handled():
    forbidden = K8sError(
        "exec of `nginx -s reload` in pod edge/p-0 (container nginx): the credentials lack "
        '"create" on "pods/exec" in namespace "edge" (403 Forbidden)',
        403,
    )
    first, second = Replica("p-0"), Replica("p-1", ip="10.0.0.8")
    first.answers["nginx -s reload"] = forbidden
    cluster = Cluster(first, second)
    results = run(cluster, names=("p-0", "missing", "p-1"))
    assert [r["name"] for r in results] == ["p-0", "missing", "p-1"]
    broken, missing, fine = results
    assert broken["error"] == str(forbidden)
    assert broken["config_test"]["ok"] and not broken["reload_sent"] and not broken["verified"]
    assert not first.locked  # released on the way out
    assert (
        missing["error"] == 'pods "missing" not found in namespace "edge"'
        and missing["container"] is None
    )
    assert fine["reloaded"] and fine["verified"] and fine["error"] is None
    assert ("p-1", "nginx", "nginx -s reload") in cluster.execs


def test_an_error_after_the_reload_keeps_what_was_done():
    replica = Replica("p-0")
    replica.answers["nginx -T"] = K8sError(
        "exec of `nginx -T` in pod edge/p-0 (container nginx): cannot open exec "
        "via https://127.0.0.1:6443: timed out (timeout 10s)"
    )
    [result] = run(Cluster(replica))
    assert result["reloaded"] is True and result["verified"] is False
    assert result["error"].startswith("exec of `nginx -T` in pod edge/p-0")


def test_cooldown_skips_a_fresh_replica_and_force_reloads_it():
    fresh = Replica("p-0", reloaded_ago=4, answer=200)
    cluster = Cluster(fresh)
    [skipped] = run(cluster)
    assert skipped["last_reload_age"] == 4.0
    assert skipped["skipped"] == (
        "its workers started 4s ago, within the cooldown of 300s: not reloaded again "
        "(force: true overrides)"
    )
    assert skipped["verified"] and not skipped["reloaded"] and skipped["config_test"] is None
    assert cluster.calls == ["lock", "procs", "rmdir", "nginx -T", "curl"]
    [forced] = run(cluster, force=True)
    assert forced["skipped"] is None and forced["reloaded"] and forced["verified"]
    assert forced["last_reload_age"] == 4.0 and forced["config_test"]["ok"]
    [off] = run(Cluster(Replica("p-0", reloaded_ago=4)), cooldown=0)
    assert off["reloaded"] and off["skipped"] is None


def test_a_skipped_replica_that_answers_502_is_not_verified():
    [result] = run(Cluster(Replica("p-0", reloaded_ago=4, answer=502)))
    assert result["skipped"] and not result["verified"]
    assert (
        result["error"]
        == "not reloaded (its workers started 4s ago, within the cooldown of 300s: not reloaded "
        "again (force: true overrides)), but the probe of http://10.0.0.7:80/ got 502"
    )


@pytest.mark.parametrize(
    "age, cooldown, force, skips",
    [
        (None, 300, False, False),
        (4.0, 300, False, True),
        (4.0, 300, True, False),
        (4.0, 0, False, False),
        (300.0, 300, False, False),
        (299.9, 300, False, True),
    ],
)
def test_cooldown_rule(age, cooldown, force, skips):
    assert (cooldown_skip(age, cooldown, force) is not None) is skips


@pytest.mark.parametrize(
    "starts, after, skips",
    [
        # reloaded a minute after the endpoints appeared: a concurrent run did it, skip
        (["2026-11-25T01:00:00Z", "2026-11-25T01:01:00Z"], "2026-11-25T01:00:00Z", True),
        # reloaded 4 s BEFORE the endpoints changed: however recent, the reload is needed
        (["2026-11-25T00:59:56Z"], "2026-11-25T01:00:00Z", False),
        # the same second: whole-second timestamps cannot order them, so not "after"
        (["2026-11-25T01:00:00Z"], "2026-11-25T01:00:00Z", False),
        (["2026-11-25T01:00:01Z"], "2026-11-25T01:00:00Z", True),
        # nothing to compare: never holds a reload back
        ([], "2026-11-25T01:00:00Z", False),
        (["2026-11-25T01:01:00Z"], None, False),
        ([None], "2026-11-25T01:00:00Z", False),
    ],
)
def test_reloaded_since_rule(starts, after, skips):
    workers = [{"pid": 10 + i, "start_time": start} for i, start in enumerate(starts)]
    why = reloaded_since_skip(workers, after)
    assert (why is not None) is skips
    if skips:
        assert after in why and "reloaded since" in why


# ---------------------------------------------------------------- the lock script, for real
def lock_script(tmp_path):
    """LOCK_SCRIPT with its lock directory candidates replaced by tmp_path."""
    assert "for d in /run /var/run /tmp;" in LOCK_SCRIPT
    return LOCK_SCRIPT.replace("/run /var/run /tmp", str(tmp_path))


def test_lock_script_takes_turns_and_breaks_a_dead_runs_lock(tmp_path):
    script = lock_script(tmp_path)
    lock = tmp_path / "badgateway-k8s-reload.lock"
    first = subprocess.run(
        ["sh", "-c", script, "sh", "3"], capture_output=True, text=True, check=False
    )
    assert (first.returncode, first.stdout.strip()) == (0, str(lock)) and lock.is_dir()
    second = subprocess.run(
        ["sh", "-c", script, "sh", "2"], capture_output=True, text=True, check=False
    )
    assert second.returncode == 75
    assert second.stderr.strip() == "another run has held %s for too long" % lock
    subprocess.run(["touch", "-d", "3 minutes ago", str(lock)], check=True)
    third = subprocess.run(
        ["sh", "-c", script, "sh", "2"], capture_output=True, text=True, check=False
    )
    assert (third.returncode, third.stdout.strip()) == (0, str(lock))


def test_options_are_exactly_the_modules():
    text = (REPO / "plugins/modules/nginx_reload.py").read_text()
    start = text.index('DOCUMENTATION = r"""') + len('DOCUMENTATION = r"""')
    documented = set(yaml.safe_load(text[start : text.index('"""', start)])["options"])
    assert set(_reload.OPTIONS) == documented - {"namespace", "pods"}


def test_a_replica_reloaded_since_the_endpoints_appeared_is_only_probed():
    """Its workers started 4 s ago (2026-01-01T00:16:36Z): after endpoints that appeared at
    00:16:00 it already dials them, so it is probed, not reloaded; endpoints that appeared at
    00:16:40, after that reload, make the reload needed however recent the last one was."""
    cluster = Cluster(Replica("p-0", reloaded_ago=4, answer=200))
    [held] = run(cluster, cooldown=0, reloaded_after="2026-01-01T00:16:00Z")
    assert held["skipped"].startswith("its workers started at 2026-01-01T00:16:36Z, after")
    assert held["verified"] and not held["reloaded"] and held["config_test"] is None
    [needed] = run(
        Cluster(Replica("p-0", reloaded_ago=4)), cooldown=0, reloaded_after="2026-01-01T00:16:40Z"
    )
    assert needed["skipped"] is None and needed["reloaded"] and needed["verified"]
    [forced] = run(
        Cluster(Replica("p-0", reloaded_ago=4)),
        cooldown=0,
        force=True,
        reloaded_after="2026-01-01T00:16:00Z",
    )
    assert forced["skipped"] is None and forced["reloaded"]
