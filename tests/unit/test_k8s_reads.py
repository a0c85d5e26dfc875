"""The run's shared reads (_k8s_reads) and the client's bound on calls in flight (k8s_access).

No timing is asserted: concurrency is shown by calls that wait for each other (a barrier or an
event), never by how long something took.
"""

import threading

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils import k8s_access
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_reads import (
    SharedReads,
    parallel_runner,
    serial,
    values,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    K8sError,
    K8sNotFound,
)


class CountingClient:
    """Lists answered from a table; every call recorded; a call may wait for a gate."""

    def __init__(self, gate=None):
        self.calls = []
        self.gate = gate
        self.lock = threading.Lock()

    def _call(self, *what):
        with self.lock:
            self.calls.append(what)
        if self.gate is not None:
            self.gate.wait(10)

    def list_pods(self, namespace, label_selector=None, field_selector=None):
        self._call("pods", namespace, label_selector, field_selector)
        return [{"metadata": {"name": "p", "namespace": namespace}}]

    def get_service(self, namespace, name):
        self._call("service", namespace, name)
        raise K8sNotFound('services "%s" not found' % name, 404)

    def list_endpointslices(self, namespace, service=None):
        self._call("endpointslices", namespace, service)
        return [
            {"metadata": {"name": "a", "labels": {"kubernetes.io/service-name": "web"}}},
            {"metadata": {"name": "b", "labels": {"kubernetes.io/service-name": "api"}}},
        ]


def test_a_read_asked_at_once_by_several_threads_is_made_once():
    gate = threading.Event()
    client = CountingClient(gate)
    reads = SharedReads(client)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(reads.pods("ns", "app=web")))
        for _thread in range(5)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert client.calls == [("pods", "ns", "app=web", None)]
    assert len(results) == 5 and all(r is results[0] for r in results)


def test_a_failed_read_is_the_same_error_for_every_caller_and_not_asked_again():
    client = CountingClient()
    reads = SharedReads(client)
    for _attempt in range(3):
        with pytest.raises(K8sNotFound, match='services "web" not found') as caught:
            reads.service("ns", "web")
        assert caught.value.status == 404
    assert client.calls == [("service", "ns", "web")]


def test_a_services_slices_come_from_the_whole_list_when_it_is_read_anyway():
    client = CountingClient()
    selected = SharedReads(client)
    assert [s["metadata"]["name"] for s in selected.endpointslices("ns", "web")] == ["a", "b"]
    assert client.calls == [("endpointslices", "ns", "web")]  # label-selected by the API

    client = CountingClient()
    whole = SharedReads(client, whole_namespaces=["ns"])
    assert [s["metadata"]["name"] for s in whole.endpointslices("ns", "web")] == ["a"]
    assert [s["metadata"]["name"] for s in whole.endpointslices("ns")] == ["a", "b"]
    assert client.calls == [("endpointslices", "ns", None)]  # one list for both


def test_runners_keep_the_order_and_hand_back_errors():
    def fail():
        raise K8sError("no")

    for run in (serial, parallel_runner(4)):
        outcomes = run([lambda: 1, fail, lambda: 3])
        assert [value for value, _error in outcomes] == [1, None, 3]
        assert isinstance(outcomes[1][1], K8sError)
        with pytest.raises(K8sError, match="no"):
            values(outcomes)


def test_a_parallel_runner_runs_the_calls_at_the_same_time():
    barrier = threading.Barrier(3, timeout=10)
    # Each call waits for the two others: run one after the other, the barrier would break.
    outcomes = parallel_runner(3)([barrier.wait, barrier.wait, barrier.wait])
    assert all(error is None for _value, error in outcomes)


def test_the_client_keeps_at_most_max_in_flight_calls_in_flight(monkeypatch):
    client = k8s_access.K8sClient(
        {"host": "https://127.0.0.1:9", "api_key": "t", "max_in_flight": 2, "request_timeout": 10}
    )
    gate = threading.Event()
    lock = threading.Lock()
    state = {"now": 0, "most": 0, "entered": threading.Semaphore(0)}

    def fake_request(path, *_args):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        state["entered"].release()
        gate.wait(10)
        with lock:
            state["now"] -= 1
        return b"{}", False

    monkeypatch.setattr(client, "_request", fake_request)
    threads = [threading.Thread(target=client.request, args=("/api/v1/x",)) for _thread in range(5)]
    for thread in threads:
        thread.start()
    # Two calls get in; the three others wait for a slot.
    assert state["entered"].acquire(timeout=10) and state["entered"].acquire(timeout=10)
    assert not state["entered"].acquire(timeout=0.2)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert state["most"] == 2
    assert client.stats["requests"] == 0  # the fake replaced what counts


def test_an_abandoned_call_gives_its_slot_back():
    """A call past its deadline is abandoned and frees its slot: stuck calls cannot starve
    the ones after them."""
    client = k8s_access.K8sClient(
        {"host": "https://127.0.0.1:9", "api_key": "t", "max_in_flight": 1, "request_timeout": 1}
    )
    stuck = threading.Event()
    with pytest.raises(K8sError, match="timed out") as caught:
        client._bounded("a stuck call", 0.05, lambda: stuck.wait(30))
    assert caught.value.timed_out
    # The one slot is free again: the next call runs.
    assert client._bounded("the next call", 5, lambda: "ran") == "ran"
    stuck.set()


def test_the_collections_threads_leave_sigint_and_sigterm_to_the_main_thread():
    """Python runs signal handlers in the main thread only: a signal the kernel gave one of
    these threads would not wake a main thread waiting for them (an interrupted run, an Ansible
    worker told to stop, would wait for the calls in flight)."""
    import signal

    def blocked():
        return {signal.SIGINT, signal.SIGTERM} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])

    assert not blocked()  # the main thread takes them
    outcomes = parallel_runner(2)([blocked, blocked])
    assert [value for value, _error in outcomes] == [True, True]
    client = k8s_access.K8sClient({"host": "https://127.0.0.1:9", "api_key": "t"})
    assert client._bounded("a call", 5, blocked) is True
    assert not blocked()
