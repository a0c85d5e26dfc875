"""The scoring of tests/lab/accuracy.py (``make accuracy``): what counts as right, unsafe, missed."""

from accuracy import Outcome, confusion_matrix, expected_stale_replicas, report
from badlab import scenario as scenario_mod
from badlab.fixture import SCENARIOS


def stale(name="stale_upstream", reloaded=("ns/p-0",), verified=True, verdict="stale_upstream"):
    return Outcome(
        name,
        "stale_upstream",
        verdict,
        reloaded=list(reloaded),
        expected_stale=["ns/p-0"],
        verified=verified,
    )


def test_all_right_and_safe_exits_0(capsys):
    outcomes = [stale(), Outcome("healthy", "healthy", "healthy")]
    assert report(outcomes) == 0
    out = capsys.readouterr().out
    assert "verdicts right: 2/2" in out
    assert "reloads where the cause was not stale_upstream: 0" in out


def test_a_reload_when_the_cause_is_not_stale_is_unsafe(capsys):
    # even with the right verdict: a reload of a backend_crash case is never safe
    crash = Outcome("backend_crash", "backend_crash", "backend_crash", reloaded=["ns/p-0"])
    assert crash.unsafe_reloads == ["ns/p-0"]
    assert report([crash]) == 1
    assert "reloads where the cause was not stale_upstream: 1" in capsys.readouterr().out


def test_reloading_a_replica_that_was_not_stale_is_unsafe():
    both = stale("stale_upstream-one_replica", reloaded=("ns/p-0", "ns/p-1"))
    assert both.unsafe_reloads == ["ns/p-1"]
    assert report([both]) == 1


def test_a_stale_case_not_reloaded_or_not_verified_fails(capsys):
    assert stale(reloaded=()).fix_missed and stale(verified=False).fix_missed
    assert report([stale(verified=False)]) == 1
    assert "not fixed" in capsys.readouterr().out


def test_a_wrong_verdict_fails_and_a_failed_run_is_2(capsys):
    assert report([Outcome("rollout_race", "rollout_race", "stale_upstream")]) == 1
    assert report([Outcome("dns_failure", "dns_failure", None, error="lab-up failed")]) == 2
    assert "lab-up failed" in capsys.readouterr().out


def test_confusion_matrix_counts_off_the_diagonal():
    text = confusion_matrix(
        [
            Outcome("a", "healthy", "healthy"),
            Outcome("b", "rollout_race", "unknown"),
            Outcome("c", "rollout_race", "rollout_race"),
        ]
    )
    lines = text.splitlines()
    assert lines[1].split()[1:] == ["healthy", "[1]", ".", "."]
    assert lines[2].split()[1:] == ["rollout_race", ".", "[1]", "1"]
    assert lines[3] == "other verdicts: 3 unknown"


def test_expected_stale_replicas_follow_the_scenario():
    one = scenario_mod.load(SCENARIOS / "stale_upstream-one_replica.yml")
    assert expected_stale_replicas(
        one, ["open-webui/nginx-proxy-0", "open-webui/nginx-proxy-1"]
    ) == ["open-webui/nginx-proxy-0"]
    seed = scenario_mod.load(SCENARIOS / "stale_upstream.yml")
    assert expected_stale_replicas(seed, ["open-webui/nginx-proxy-0"]) == [
        "open-webui/nginx-proxy-0"
    ]
    healthy = scenario_mod.load(SCENARIOS / "healthy.yml")
    assert expected_stale_replicas(healthy, ["open-webui/nginx-proxy-0"]) == []
