"""Numbers of the lab API server: start time, pod-list latency, exec round trip, kubectl get.

Run: PYTHONPATH=tests/lab .venv/bin/python tests/lab/bench_apiserver.py  (the Makefile exports that path)
Prints one line per figure; medians over repeated runs on this machine.
"""

from __future__ import annotations

import http.client
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from kubernetes import client as k8s
from kubernetes.stream import stream

from apiserver_support import ADMIN_TOKEN, AUTH_TABLE, FakeRuntime, kubectl, seed, write_kubeconfig
from badlab.apiserver import ThreadedServer
from badlab.rbac import Auth
from badlab.store import Store


def bulk_store(pods: int) -> Store:
    """The test seed plus ``pods`` pods in namespace ``bulk``."""
    store = Store()
    seed(store)
    template = store.get("pods", "shop", "web-0")
    for i in range(pods):
        pod = {key: value for key, value in template.items() if key != "metadata"}
        pod["metadata"] = {
            "name": f"p-{i:04d}",
            "namespace": "bulk",
            "labels": {"app": "bulk", "shard": str(i % 10)},
        }
        store.put(pod)
    return store


def median_ms(samples: list[float]) -> str:
    """Median in milliseconds, and the 95th percentile."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def timed(action, repeat: int) -> list[float]:
    """Wall times of ``repeat`` calls of ``action``."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def measure_lists(server: ThreadedServer, pods: int, tmp: Path) -> None:
    """Pod-list, exec and kubectl figures against a running server with ``pods`` bulk pods."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def raw_list(query: str = "") -> None:
        conn.request("GET", f"/api/v1/namespaces/bulk/pods{query}", headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200

    print(f"list {pods} pods, raw HTTPS keep-alive: {median_ms(timed(raw_list, 200))}")
    print(
        f"list {pods} pods with labelSelector shard in (1,2): "
        f"{median_ms(timed(lambda: raw_list('?labelSelector=shard%20in%20(1,2)'), 200))}"
    )
    conf = k8s.Configuration()
    conf.host, conf.ssl_ca_cert = server.url, str(server.ca_file)
    conf.api_key = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    core = k8s.CoreV1Api(k8s.ApiClient(conf))
    core.list_namespaced_pod("bulk")  # the first call builds the client's models
    print(
        f"list {pods} pods, CoreV1Api: {median_ms(timed(lambda: core.list_namespaced_pod('bulk'), 50))}"
    )

    def exec_true() -> None:
        ws = stream(
            core.connect_get_namespaced_pod_exec,
            "web-0",
            "shop",
            command=["true"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
        )
        ws.run_forever(timeout=10)
        assert ws.returncode == 0

    print(f"exec `true` round trip, stream(): {median_ms(timed(exec_true, 30))}")
    kubeconfig = write_kubeconfig(tmp, server.url, ADMIN_TOKEN, server.ca_file)
    kubectl(kubeconfig, "get", "pods", "-n", "bulk")  # fills kubectl's discovery cache
    print(
        f"kubectl get pods -n bulk, warm discovery cache: "
        f"{median_ms(timed(lambda: kubectl(kubeconfig, 'get', 'pods', '-n', 'bulk'), 10))}"
    )


def main() -> None:
    """Measure and print."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runtime = FakeRuntime(tmp / "runtime")
        for tls in (False, True):
            samples = []
            for k in range(10):
                started = time.perf_counter()
                with ThreadedServer(
                    Store(), runtime, Auth(AUTH_TABLE), tls_dir=tmp / f"tls{k}" if tls else None
                ):
                    samples.append(time.perf_counter() - started)
            label = "HTTPS, new CA and certificate" if tls else "plain HTTP"
            print(f"server start ({label}): {median_ms(samples)}")
        for pods in (10, 200):
            with ThreadedServer(
                bulk_store(pods), runtime, Auth(AUTH_TABLE), tls_dir=tmp / "tls-bench"
            ) as server:
                measure_lists(server, pods, tmp)


if __name__ == "__main__":
    main()
