"""proxy_info reads further back, once, when the newest log lines hold only secondary lines
(``no live upstreams``): the failures that marked the servers failed are older than the tail."""

from ansible_collections.badgateway.k8s.plugins.module_utils import proxy_nginx
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter
from ansible_collections.badgateway.k8s.plugins.module_utils._proxy_info import (
    WIDEN_FACTOR,
    inspect_replica,
)
from ansible_collections.badgateway.k8s.tests.unit.fake_k8s import FakeExec, done

START = "2026/11/25 02:39:30 [notice] 468#468: start worker processes"
REFUSED = (
    "2026/11/25 02:39:31 [error] 469#469: *3 connect() failed (111: Connection refused) while "
    'connecting to upstream, client: 127.0.0.1, server: _, request: "GET / HTTP/1.1", '
    'upstream: "http://10.1.1.9:8080/", host: "x"'
)
NO_LIVE = (
    "2026/11/25 02:39:40 [error] 469#469: *9 no live upstreams while connecting to upstream, "
    'client: 127.0.0.1, server: _, request: "GET / HTTP/1.1", upstream: "http://backend/", '
    'host: "x"'
)
HEALTH = (
    '127.0.0.1 - - [25/Nov/2026:02:39:35 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe" "-"'
)
CONFIG = (
    "# configuration file /etc/nginx/nginx.conf:\n"
    "error_log stderr notice;\nevents {}\nhttp { server { listen 10.0.0.7:80; location / { proxy_pass http://web:8080; } } }\n"
)


class Client(FakeExec):
    """A container log of 2 + 40 + 2 lines, served by tail_lines as the API does."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.lines = [START, REFUSED] + [HEALTH] * 40 + [NO_LIVE, NO_LIVE]
        self.tails = []

    fail_wider = False

    def read_log(self, namespace, pod, container=None, tail_lines=None, **_bounds):
        self.tails.append(tail_lines)
        if self.fail_wider and len(self.tails) > 1:
            raise K8sError("GET /api/v1/namespaces/edge/pods/nginx-0/log: 500 Internal Error")
        text = "\n".join(self.lines[-tail_lines:] if tail_lines else self.lines) + "\n"
        return text, len(text), False


def inspect(tail_lines, fail_wider=False):
    client = Client(
        {"nginx -T": done(0, CONFIG), "procs": done(2, stderr="sh: /proc: Permission denied")},
        scripts={proxy_nginx.PROC_SCRIPT: "procs"},
    )
    client.fail_wider = fail_wider
    pod = {
        "metadata": {"namespace": "edge", "name": "nginx-0"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.7"},
    }
    params = {
        "container": None,
        "cluster_domain": "cluster.local",
        "tail_lines": tail_lines,
        "since_seconds": None,
        "limit_bytes": 1 << 20,
        "max_errors": 50,
    }
    proxy, _summary = inspect_replica(NginxAdapter(client), pod, params)
    return proxy, client


def test_only_secondary_lines_in_a_full_tail_read_further_back_once():
    proxy, client = inspect(10)
    assert client.tails == [10, 10 * WIDEN_FACTOR]
    assert proxy["counts_after_reload"].get("connect_refused") == 1
    assert proxy["log"]["tail_lines"] == 10 * WIDEN_FACTOR
    assert any("only secondary lines" in p for p in proxy["problems"])


def test_a_tail_that_holds_the_primary_lines_is_not_read_again():
    proxy, client = inspect(100)
    assert client.tails == [100]
    assert proxy["counts_after_reload"].get("connect_refused") == 1
    assert not any("only secondary lines" in p for p in proxy["problems"])


def test_a_failed_wider_read_is_named_never_taken_for_clean():
    proxy, client = inspect(10, fail_wider=True)
    assert client.tails == [10, 10 * WIDEN_FACTOR]
    assert "pods/nginx-0/log: 500" in proxy["read_errors"]["log"]
    assert "last %d lines" % (10 * WIDEN_FACTOR) in proxy["read_errors"]["log"]
