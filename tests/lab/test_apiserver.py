"""The lab API server through real clients: kubectl, the kubernetes package, raw HTTP.

One HTTPS server (module scope) with a fake runtime whose log files the tests write and
whose exec commands are real local processes (sh, cat, head, nginx -t).
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websocket
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from websocket import WebSocketBadStatusException
from kubernetes.stream import stream, ws_client

from apiserver_support import (
    ADMIN_TOKEN,
    AUTH_TABLE,
    KUBECTL,
    READER_TOKEN,
    EXEC_VERB_TOKENS,
    FakeRuntime,
    cri_time,
    kubectl,
    kubectl_json,
    seed,
    write_kubeconfig,
)
from badlab.apiserver import ThreadedServer, kube_age
from badlab.errors import LabError
from badlab.rbac import Auth
from badlab.store import Store

pytestmark = pytest.mark.lab

NOW = datetime.datetime.now(datetime.timezone.utc)
HOUR_AGO = NOW - datetime.timedelta(hours=1)
WEB0_LOG = [
    *(
        f"{cri_time(HOUR_AGO + datetime.timedelta(seconds=i))} {'stderr' if i % 2 else 'stdout'} F old {i}"
        for i in range(6)
    ),
    f"{cri_time(HOUR_AGO + datetime.timedelta(seconds=7))} stdout P parti",
    f"{cri_time(HOUR_AGO + datetime.timedelta(seconds=7))} stdout F al",
    *(f"{cri_time(NOW + datetime.timedelta(milliseconds=i))} stdout F new {i}" for i in range(3)),
]
WEB0_TEXT = (
    "".join(f"old {i}\n" for i in range(6)) + "partial\n" + "".join(f"new {i}\n" for i in range(3))
)


class Lab:
    """What the tests need of the running server."""

    def __init__(self, server: ThreadedServer, runtime: FakeRuntime, tmp: Path) -> None:
        self.server, self.runtime, self.tmp = server, runtime, tmp
        self.admin_kc = write_kubeconfig(tmp, server.url, ADMIN_TOKEN, server.ca_file)
        self.reader_kc = write_kubeconfig(tmp, server.url, READER_TOKEN, server.ca_file)

    def api_client(self, token: str = ADMIN_TOKEN) -> k8s.ApiClient:
        conf = k8s.Configuration()
        conf.host = self.server.url
        conf.ssl_ca_cert = str(self.server.ca_file)
        conf.api_key = {"authorization": token}
        conf.api_key_prefix = {"authorization": "Bearer"}
        return k8s.ApiClient(conf)

    def core(self, token: str = ADMIN_TOKEN) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client(token))

    def http(
        self,
        path: str,
        token: str | None = ADMIN_TOKEN,
        headers: dict | None = None,
        method: str = "GET",
        body: dict | None = None,
    ) -> tuple[int, str, str]:
        """(status, content-type, body text) of one request."""
        request = urllib.request.Request(
            self.server.url + path, method=method, headers=dict(headers or {})
        )
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        if body is not None:
            request.data = json.dumps(body).encode()
            if not request.has_header("Content-type"):
                request.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return (
                    response.status,
                    response.headers.get("Content-Type", ""),
                    response.read().decode(),
                )
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()

    def status(self, path: str, **kwargs) -> tuple[int, dict]:
        code, ctype, text = self.http(path, **kwargs)
        assert ctype.startswith("application/json"), (code, ctype, text)
        return code, json.loads(text)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    tmp = tmp_path_factory.mktemp("apiserver")
    store = Store()
    seed(store)
    runtime = FakeRuntime(tmp / "runtime")
    runtime.write_log("shop", "web-0", "nginx", WEB0_LOG)
    runtime.write_log(
        "shop",
        "web-0",
        "nginx",
        [f"{cri_time(HOUR_AGO)} stdout F from the previous run"],
        previous=True,
    )
    runtime.write_log("shop", "multi", "app", [f"{cri_time(NOW)} stdout F app says hi"])
    runtime.write_log("shop", "multi", "sidecar", [f"{cri_time(NOW)} stderr F sidecar says hi"])
    runtime.stopped.add(("shop", "db-0"))
    runtime.unchecked.add(("shop", "web-1"))
    with ThreadedServer(store, runtime, Auth(AUTH_TABLE), tls_dir=tmp / "tls") as server:
        yield Lab(server, runtime, tmp)


def names(items: list) -> list[str]:
    """namespace/name of list items (dicts or client models)."""
    out = []
    for item in items:
        meta = item["metadata"] if isinstance(item, dict) else item.metadata
        ns = meta.get("namespace") if isinstance(meta, dict) else meta.namespace
        name = meta.get("name") if isinstance(meta, dict) else meta.name
        out.append(f"{ns}/{name}")
    return out


# ---------------------------------------------------------------- kubectl


def test_kubectl_get_pods_all_namespaces_json(lab: Lab) -> None:
    doc = kubectl_json(lab.admin_kc, "get", "pods", "-A")
    assert doc["kind"] == "List"
    assert names(doc["items"]) == [
        "other/web-0",
        "shop/db-0",
        "shop/done",
        "shop/multi",
        "shop/web-0",
        "shop/web-1",
    ]
    assert {item["kind"] for item in doc["items"]} == {"Pod"}
    assert doc["items"][4]["status"]["podIP"] == "127.0.10.1"


def test_kubectl_get_services_and_endpointslices(lab: Lab) -> None:
    doc = kubectl_json(lab.admin_kc, "get", "svc,endpointslices", "-n", "shop")
    kinds = [(item["kind"], item["metadata"]["name"]) for item in doc["items"]]
    assert kinds == [("Service", "web"), ("EndpointSlice", "web-abcde")]
    assert doc["items"][1]["endpoints"][0]["addresses"] == ["127.0.10.1"]


def test_kubectl_short_names_and_other_kinds(lab: Lab) -> None:
    doc = kubectl_json(lab.admin_kc, "get", "ns,ing,netpol,ev,ep", "-n", "shop")
    assert [(i["kind"], i["metadata"]["name"]) for i in doc["items"]] == [
        ("Namespace", "other"),
        ("Namespace", "shop"),
        ("Ingress", "shop"),
        ("NetworkPolicy", "deny-all"),
        ("Event", "web-1.17a"),
        ("Endpoints", "web"),
    ]


def test_kubectl_selectors(lab: Lab) -> None:
    doc = kubectl_json(
        lab.admin_kc, "get", "pods", "-n", "shop", "-l", "app in (web,db),track!=canary"
    )
    assert names(doc["items"]) == ["shop/db-0", "shop/web-0"]
    doc = kubectl_json(lab.admin_kc, "get", "pods", "-A", "--field-selector", "metadata.name=web-0")
    assert names(doc["items"]) == ["other/web-0", "shop/web-0"]
    done = kubectl(lab.admin_kc, "get", "pods", "-n", "shop", "-l", "app in web")
    assert done.returncode == 1
    assert "unable to parse requirement" in done.stderr


def test_kubectl_get_shows_table_columns(lab: Lab) -> None:
    done = kubectl(lab.admin_kc, "get", "pods", "-n", "shop", "-o", "wide")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["web-1"][1:4] == ["1/1", "Running", "2"]
    assert rows["multi"][1] == "2/2"
    assert rows["done"][2] == "Completed"
    assert rows["web-0"][5:7] == ["127.0.10.1", "lab-node"]
    done = kubectl(lab.admin_kc, "get", "svc", "-n", "shop")
    assert done.stdout.split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "web",
        "ClusterIP",
        "127.0.30.1",
        "<none>",
        "80/TCP",
        done.stdout.split()[-1],
    ]


def test_kubectl_tables_for_other_kinds(lab: Lab) -> None:
    def table(*args: str) -> list[list[str]]:
        done = kubectl(lab.admin_kc, "get", *args)
        assert done.returncode == 0, done.stderr
        return [line.split(None) for line in done.stdout.splitlines()]

    assert [row[:2] for row in table("ns")] == [
        ["NAME", "STATUS"],
        ["other", "Active"],
        ["shop", "Active"],
    ]
    assert table("endpointslices", "-n", "shop")[1][:4] == [
        "web-abcde",
        "IPv4",
        "8080",
        "127.0.10.1",
    ]
    assert table("ep", "-n", "shop")[1][:2] == ["web", "127.0.10.1:8080"]
    assert table("ing", "-n", "shop")[1][:4] == [
        "shop",
        "<none>",
        "shop.example",
        "80",
    ]  # no ADDRESS yet
    assert table("netpol", "-n", "shop")[1][:2] == ["deny-all", "<none>"]
    events = table("events", "-n", "shop")
    assert events[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert events[1][1:5] == ["Warning", "BackOff", "pod/web-1", "Back-off"]


def test_age_is_written_like_kubectl() -> None:
    now = datetime.datetime(2026, 1, 10, tzinfo=datetime.timezone.utc)

    def ago(**delta: float) -> str:
        return kube_age((now - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ"), now)

    assert [
        ago(seconds=5),
        ago(seconds=150),
        ago(minutes=9),
        ago(minutes=42),
        ago(hours=5, minutes=3),
        ago(hours=30),
        ago(days=3, hours=2),
        ago(days=40),
    ] == ["5s", "2m30s", "9m", "42m", "5h3m", "30h", "3d2h", "40d"]
    assert kube_age("not a time", now) == "<unknown>"


def test_kubectl_logs(lab: Lab) -> None:
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "web-0")
    assert (done.returncode, done.stdout) == (0, WEB0_TEXT)
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "web-0", "--tail=5")
    assert done.stdout == "old 5\npartial\nnew 0\nnew 1\nnew 2\n"
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "web-0", "--since=10m")
    assert done.stdout == "new 0\nnew 1\nnew 2\n"
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "web-0", "--previous", "--timestamps")
    assert done.stdout == f"{cri_time(HOUR_AGO)} from the previous run\n"
    # kubectl picks the first container of a two-container pod itself
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "multi")
    assert done.stdout == "app says hi\n"
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "multi", "-c", "sidecar")
    assert done.stdout == "sidecar says hi\n"
    done = kubectl(lab.admin_kc, "logs", "-n", "shop", "web-1", "--previous")
    assert done.returncode == 1
    assert 'previous terminated container "nginx" in pod "web-1" not found' in done.stderr


def test_kubectl_exec_nginx_t(lab: Lab) -> None:
    assert shutil.which("nginx", path="/usr/sbin:/usr/bin"), (
        "the lab needs nginx (apt-get install nginx-light)"
    )
    done = kubectl(lab.admin_kc, "exec", "-n", "shop", "web-0", "--", "nginx", "-t")
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def test_kubectl_exec_exit_code_and_streams(lab: Lab) -> None:
    done = kubectl(
        lab.admin_kc,
        "exec",
        "-n",
        "shop",
        "web-0",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    )
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert "err\n" in done.stderr and "command terminated with exit code 3" in done.stderr


def test_kubectl_exec_stdin(lab: Lab) -> None:
    done = kubectl(
        lab.admin_kc,
        "exec",
        "-i",
        "-n",
        "shop",
        "web-0",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z; echo done",
        stdin="hello\nworld\n",
    )
    assert (done.returncode, done.stdout) == (0, "HELLO\nWORLD\ndone\n"), done.stderr


def test_kubectl_exec_missing_binary_and_bad_pods(lab: Lab) -> None:
    done = kubectl(lab.admin_kc, "exec", "-n", "shop", "web-0", "--", "no-such-binary")
    assert done.returncode == 1
    assert 'exec: "no-such-binary": executable file not found in $PATH: unknown' in done.stderr
    done = kubectl(lab.admin_kc, "exec", "-n", "shop", "done", "--", "true")
    assert done.returncode == 1
    assert (
        "cannot exec into a container in a completed pod; current phase is Succeeded" in done.stderr
    )
    done = kubectl(lab.admin_kc, "exec", "-n", "shop", "gone", "--", "true")
    assert done.returncode == 1
    assert 'pods "gone" not found' in done.stderr


def test_kubectl_least_privilege_token(lab: Lab) -> None:
    doc = kubectl_json(lab.reader_kc, "get", "pods", "-n", "shop", "-l", "app=web")
    assert names(doc["items"]) == ["shop/web-0", "shop/web-1"]
    done = kubectl(lab.reader_kc, "logs", "-n", "shop", "web-0")
    assert done.returncode == 1
    assert (
        'pods "web-0" is forbidden: User "reader" cannot get resource "pods/log" in API group "" '
        'in the namespace "shop"'
    ) in done.stderr
    done = kubectl(lab.reader_kc, "get", "pods", "-A")
    assert (
        'pods is forbidden: User "reader" cannot list resource "pods" in API group "" '
        "at the cluster scope"
    ) in done.stderr
    # the WebSocket GET is refused (get pods/exec), kubectl falls back to SPDY POST (create)
    done = kubectl(lab.reader_kc, "exec", "-n", "shop", "web-0", "--", "true")
    assert done.returncode == 1
    assert (
        'pods "web-0" is forbidden: User "reader" cannot create resource "pods/exec" in API group "" '
        'in the namespace "shop"'
    ) in done.stderr


@pytest.mark.parametrize(
    ("verbs", "refusal"),
    [
        # kube-apiserver v1.36.3 (docs/lab.md, the real tier): the WebSocket exec is authorized
        # as "get" on pods/exec and then as "create"; the second refusal names nothing
        (("get",), 'pods "web-0" is forbidden: '),
        (
            ("create",),
            'pods "web-0" is forbidden: User "exec-create" cannot get resource "pods/exec" in '
            'API group "" in the namespace "shop"',
        ),
        (("create", "get"), None),
    ],
)
def test_a_websocket_exec_needs_get_and_create(
    lab: Lab, verbs: tuple[str, ...], refusal: str | None
) -> None:
    if refusal is None:
        session = _exec(lab, ["true"], token=EXEC_VERB_TOKENS[verbs])
        session.run_forever(timeout=10)
        assert session.returncode == 0
        return
    # the handshake itself, as a WebSocket client sends it: refused before any upgrade
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods/web-0/exec?command=true&stdout=true",
        token=EXEC_VERB_TOKENS[verbs],
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
            "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
        },
    )
    assert (code, body["reason"], body["message"]) == (403, "Forbidden", refusal)


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (("get", "pods", "-n", "shop"), "yes"),
        (("get", "pods", "--subresource=log", "-n", "shop"), "no"),
        (("list", "pods", "-A"), "no"),
        (("list", "endpointslices.discovery.k8s.io", "-n", "shop"), "yes"),
        (("list", "endpointslices.discovery.k8s.io", "-n", "other"), "no"),
        (("create", "pods", "--subresource=exec", "-n", "shop"), "no"),
        (("get", "/version"), "yes"),
    ],
)
def test_kubectl_auth_can_i(lab: Lab, args: tuple[str, ...], answer: str) -> None:
    done = kubectl(lab.reader_kc, "auth", "can-i", *args)
    assert (done.stdout.strip(), done.returncode) == (answer, 0 if answer == "yes" else 1), (
        done.stderr
    )


def test_client_access_review_json(lab: Lab) -> None:
    api = k8s.AuthorizationV1Api(lab.api_client(READER_TOKEN))
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {"verb": "list", "resource": "services", "namespace": "shop"}
        },
    }
    assert api.create_self_subject_access_review(review).status.allowed is True
    review["spec"]["resourceAttributes"]["namespace"] = "other"
    assert api.create_self_subject_access_review(review).status.allowed is False
    code, body = lab.status(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", method="POST", body={"spec": {}}
    )
    assert (code, body["reason"]) == (422, "Invalid")


def test_kubectl_wrong_token(lab: Lab) -> None:
    bad = write_kubeconfig(lab.tmp, lab.server.url, "wrong-token", lab.server.ca_file)
    done = kubectl(bad, "get", "pods", "-n", "shop")
    assert done.returncode == 1
    assert "Unauthorized" in done.stderr


# ---------------------------------------------------------------- kubernetes Python client


def test_client_lists_with_selectors(lab: Lab) -> None:
    core = lab.core()
    assert names(core.list_namespaced_pod("shop", label_selector="app=web").items) == [
        "shop/web-0",
        "shop/web-1",
    ]
    every = core.list_pod_for_all_namespaces(label_selector="app=web")
    assert names(every.items) == ["other/web-0", "shop/web-0", "shop/web-1"]
    assert every.kind == "PodList" and every.metadata.resource_version
    assert names(
        core.list_namespaced_pod("shop", label_selector="tier notin (frontend),!track").items
    ) == ["shop/db-0", "shop/done", "shop/multi"]
    assert names(
        core.list_namespaced_pod(
            "shop",
            field_selector="metadata.name!=web-0,status.phase=Running",
            label_selector="tier",
        ).items
    ) == ["shop/db-0", "shop/web-1"]
    assert names(core.list_namespaced_pod("no-such-namespace").items) == []
    pod = core.read_namespaced_pod("web-0", "shop")
    assert pod.status.pod_ip == "127.0.10.1" and pod.spec.containers[0].name == "nginx"
    assert core.read_namespace("shop").status.phase == "Active"


def test_dynamic_client(lab: Lab) -> None:
    dyn = DynamicClient(lab.api_client())
    slices = dyn.resources.get(api_version="discovery.k8s.io/v1", kind="EndpointSlice")
    found = slices.get(namespace="shop", label_selector="kubernetes.io/service-name=web")
    assert found.kind == "EndpointSliceList"
    assert [s.metadata.name for s in found.items] == ["web-abcde"]
    assert (
        slices.get(namespace="shop", label_selector="kubernetes.io/service-name=other").items == []
    )
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert [p.metadata.namespace for p in pods.get(label_selector="app=web").items] == [
        "other",
        "shop",
        "shop",
    ]
    assert pods.get(name="multi", namespace="shop").status.podIP == "127.0.10.4"
    ingresses = dyn.resources.get(api_version="networking.k8s.io/v1", kind="Ingress")
    assert ingresses.get(namespace="shop").items[0].spec.rules[0].host == "shop.example"
    svc = dyn.resources.get(api_version="v1", kind="Service").get(namespace="shop", name="web")
    assert svc.spec.selector.app == "web"


def test_client_not_found_status(lab: Lab) -> None:
    with pytest.raises(k8s.ApiException) as err:
        lab.core().read_namespaced_pod("nope", "shop")
    assert err.value.status == 404
    body = json.loads(err.value.body)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    code, body = lab.status("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/nope")
    assert (code, body["message"], body["details"]) == (
        404,
        'endpointslices.discovery.k8s.io "nope" not found',
        {"name": "nope", "group": "discovery.k8s.io", "kind": "endpointslices"},
    )


def test_client_logs_parameters(lab: Lab) -> None:
    core = lab.core()
    assert core.read_namespaced_pod_log("web-0", "shop") == WEB0_TEXT
    assert core.read_namespaced_pod_log("web-0", "shop", tail_lines=2) == "new 1\nnew 2\n"
    assert core.read_namespaced_pod_log("web-0", "shop", tail_lines=0) == ""
    assert core.read_namespaced_pod_log("web-0", "shop", tail_lines=100) == WEB0_TEXT
    assert (
        core.read_namespaced_pod_log("web-0", "shop", since_seconds=600) == "new 0\nnew 1\nnew 2\n"
    )
    assert core.read_namespaced_pod_log("web-0", "shop", limit_bytes=9) == "old 0\nold"
    stamped = core.read_namespaced_pod_log("web-0", "shop", timestamps=True, tail_lines=1)
    assert stamped == WEB0_LOG[-1].replace(" stdout F ", " ") + "\n"
    assert core.read_namespaced_pod_log("web-0", "shop", container="nginx", previous=True) == (
        "from the previous run\n"
    )
    assert core.read_namespaced_pod_log("multi", "shop", container="sidecar") == "sidecar says hi\n"


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("", 400, "a container name must be specified for pod multi, choose one of: [app sidecar]"),
        ("?container=nginx", 400, "container nginx is not valid for pod multi"),
        (
            "?container=app&previous=true",
            400,
            'previous terminated container "app" in pod "multi" not found',
        ),
        ("?container=app&tailLines=x", 400, "tailLines: Invalid value: 'x': must be an integer"),
        (
            "?container=app&tailLines=-1",
            422,
            "tailLines: Invalid value: -1: must be greater than or equal to 0",
        ),
        ("?container=app&sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z", 422, "at most one of"),
    ],
)
def test_log_errors(lab: Lab, query: str, code: int, message: str) -> None:
    got, body = lab.status(f"/api/v1/namespaces/shop/pods/multi/log{query}")
    assert (got, body["kind"], body["code"]) == (code, "Status", code)
    assert message in body["message"]


def test_log_content_type_is_text_plain(lab: Lab) -> None:
    code, ctype, text = lab.http("/api/v1/namespaces/shop/pods/web-0/log?tailLines=1")
    assert (code, ctype.split(";")[0], text) == (200, "text/plain", "new 2\n")


LOG_PATH = "/api/v1/namespaces/shop/pods/web-0/log?tailLines=1"
OFFERED_FOR_LOGS = (
    "406: Not Acceptable\n\nAvailable representations: text/plain, application/json, "
    "application/yaml, application/vnd.kubernetes.protobuf"
)
ONLY_SERIALIZED = (
    "only the following media types are accepted: application/json, application/yaml, "
    "application/vnd.kubernetes.protobuf"
)
OFFERED_FOR_LISTS = (
    "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, "
    "application/vnd.kubernetes.protobuf, application/json;stream=watch, "
    "application/vnd.kubernetes.protobuf;stream=watch"
)


@pytest.mark.parametrize(
    ("path", "accept", "message"),
    [
        # kube-apiserver v1.36.3 (the real tier): a log asked for as text/plain only is refused
        # (its errors are Status objects); kubectl's "application/json, */*" is served.
        (LOG_PATH, "text/plain", ONLY_SERIALIZED),
        (LOG_PATH, "text/*", OFFERED_FOR_LOGS),
        (LOG_PATH, "application/*", OFFERED_FOR_LOGS),
        (LOG_PATH, "*/*", None),
        (LOG_PATH, "application/json, */*", None),
        (LOG_PATH, "text/plain, application/json;q=0.5", None),
        ("/api/v1/namespaces/shop/pods", "text/plain", OFFERED_FOR_LISTS),
        ("/api/v1/namespaces/shop/pods", "text/html, application/json;q=0.9", None),
    ],
)
def test_accept_is_negotiated_as_the_real_api_server_does(
    lab: Lab, path: str, accept: str, message: str | None
) -> None:
    code, ctype, text = lab.http(path, headers={"Accept": accept})
    if message is None:
        assert code == 200, (code, text)
        return
    body = json.loads(text)
    assert (code, ctype.split(";")[0], body["reason"], body["message"]) == (
        406,
        "application/json",
        "NotAcceptable",
        message,
    )


CLIENT_HAS_V5 = hasattr(ws_client, "V5_CHANNEL_PROTOCOL")  # kubernetes >= 32
DEFAULT_PROTOCOL = "v5.channel.k8s.io" if CLIENT_HAS_V5 else "v4.channel.k8s.io"


def negotiated(resp: ws_client.WSClient) -> str | None:
    """The subprotocol the server chose (kubernetes 31 sends it as a raw header, so read that)."""
    return resp.sock.getheaders().get("sec-websocket-protocol")


def _exec(
    lab: Lab,
    command: list[str],
    pod: str = "web-0",
    protocol: str | None = None,
    stdin: bool = False,
    token: str = ADMIN_TOKEN,
) -> ws_client.WSClient:
    """An exec session (as ``token``'s user): through ``stream()`` as callers do, or offering
    one chosen protocol."""
    if protocol is None:
        return stream(
            lab.core(token).connect_get_namespaced_pod_exec,
            pod,
            "shop",
            command=command,
            stderr=True,
            stdout=True,
            stdin=stdin,
            tty=False,
            _preload_content=False,
        )
    # the client's own WebSocket class, offering only ``protocol``; booleans go as True/False
    # (what kubernetes 31 sends), the stream() path above sends true/false
    url = ws_client.get_websocket_url(
        f"{lab.server.url}/api/v1/namespaces/shop/pods/{pod}/exec",
        [
            ("command", command),
            ("stdin", stdin),
            ("stdout", True),
            ("stderr", True),
            ("tty", False),
        ],
    )
    conf = lab.api_client().configuration
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}", "sec-websocket-protocol": protocol}
    return ws_client.WSClient(conf, url, headers, capture_all=True)


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_client_exec_streams_and_exit_codes(lab: Lab, protocol: str) -> None:
    resp = _exec(
        lab, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], protocol=protocol, stdin=False
    )
    assert negotiated(resp) == protocol
    resp.run_forever(timeout=10)
    assert (resp.read_stdout(), resp.read_stderr(), resp.returncode) == ("to-out\n", "to-err\n", 3)
    resp = _exec(lab, ["true"], protocol=protocol, stdin=False)
    resp.run_forever(timeout=10)
    assert json.loads(resp.peek_channel(3)) == {"metadata": {}, "status": "Success"}
    assert resp.returncode == 0


def test_client_exec_status_json_is_kubernetes_shape(lab: Lab) -> None:
    resp = _exec(lab, ["sh", "-c", "exit 3"], stdin=False)
    resp.run_forever(timeout=10)
    assert json.loads(resp.read_channel(3)) == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        "[sh -c exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }


@pytest.mark.parametrize("pod", ["web-0", "web-1"])  # runtime says ExecNotFound / spawn fails
def test_client_exec_missing_binary(lab: Lab, pod: str) -> None:
    resp = _exec(lab, ["no-such-binary", "-x"], pod=pod, stdin=False)
    resp.run_forever(timeout=10)
    assert not resp.is_open()
    status = json.loads(resp.peek_channel(3))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert status["message"].startswith(
        "Internal error occurred: error executing command in container"
    )
    assert status["message"].endswith(
        "OCI runtime exec failed: exec failed: unable to start container process: "
        'exec: "no-such-binary": executable file not found in $PATH: unknown'
    )
    with pytest.raises(ValueError):
        _ = resp.returncode  # the cause is text, not an exit code: clients must cope


@pytest.mark.skipif(
    not CLIENT_HAS_V5, reason="this kubernetes client (< 32) cannot close a channel (no v5)"
)
def test_client_exec_stdin_v5_close(lab: Lab) -> None:
    resp = _exec(lab, ["sh", "-c", "cat; echo eof-seen"], stdin=True)
    assert negotiated(resp) == "v5.channel.k8s.io"
    resp.write_stdin("line one\n")
    resp.write_stdin(b"line two\n")
    resp.close_channel(0)
    resp.run_forever(timeout=10)
    assert resp.read_stdout() == "line one\nline two\neof-seen\n"
    assert resp.returncode == 0


def test_client_exec_stdin_v4(lab: Lab) -> None:
    resp = _exec(lab, ["head", "-c", "6"], protocol="v4.channel.k8s.io", stdin=True)
    resp.write_stdin("abcdefgh")
    resp.run_forever(timeout=10)
    assert (resp.read_stdout(), resp.returncode) == ("abcdef", 0)


def _raw_frames(
    lab: Lab, query: str, protocol: str | None, send: list[str] = ()
) -> tuple[str | None, list]:
    """Talk to exec with bare websocket-client; returns (negotiated protocol, frames received)."""
    url = f"{lab.server.url.replace('https', 'wss', 1)}/api/v1/namespaces/shop/pods/web-0/exec?{query}"
    ws = websocket.create_connection(
        url,
        header=[f"Authorization: Bearer {ADMIN_TOKEN}"],
        subprotocols=[protocol] if protocol else None,
        sslopt={"ca_certs": str(lab.server.ca_file)},
        timeout=10,
    )
    for text in send:
        ws.send(text)
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        frames.append(data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data)
    negotiated = ws.getsubprotocol()
    ws.close()
    return negotiated, frames


def test_exec_base64_and_v1_protocols(lab: Lab) -> None:
    query = "command=sh&command=-c&command=head%20-c%202%3B%20exit%205&stdin=true&stdout=true&stderr=true"
    negotiated, frames = _raw_frames(
        lab, query, "base64.channel.k8s.io", send=["0" + base64.b64encode(b"hi there").decode()]
    )
    assert negotiated == "base64.channel.k8s.io"
    assert frames[0] == "1" + base64.b64encode(b"hi").decode()
    assert (
        base64.b64decode(frames[-1][1:])
        .decode()
        .startswith("command terminated with non-zero exit code")
    )
    assert frames[-1][0] == "3"
    # no protocol offered: the unversioned channel protocol, binary frames, error text on channel 3
    negotiated, frames = _raw_frames(lab, "command=echo&command=plain&stdout=true", None)
    assert negotiated is None
    assert frames == [b"\x01plain\n"]  # success: nothing on channel 3


def test_client_exec_default_protocol(lab: Lab) -> None:
    resp = _exec(lab, ["sh", "-c", "exit 7"])
    assert negotiated(resp) == DEFAULT_PROTOCOL
    resp.run_forever(timeout=10)
    assert resp.returncode == 7


def test_exec_session_killed_when_the_client_leaves(lab: Lab) -> None:
    resp = _exec(lab, ["sh", "-c", "sleep 300 & echo $!; sleep 300"])
    child = int(resp.readline_stdout(timeout=10))
    resp.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists(), "the exec's background child outlived the session"


def test_concurrent_exec_sessions_stay_apart(lab: Lab) -> None:
    def run(n: int) -> tuple[str, str, int]:
        resp = _exec(lab, ["sh", "-c", f"echo out-{n}; sleep 0.3; echo err-{n} >&2; exit {n}"])
        resp.run_forever(timeout=20)
        return resp.read_stdout(), resp.read_stderr(), resp.returncode

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(1, 9)))
    assert results == [(f"out-{n}\n", f"err-{n}\n", n) for n in range(1, 9)]


def test_client_exec_preloaded_content(lab: Lab) -> None:
    out = stream(
        lab.core().connect_get_namespaced_pod_exec,
        "web-0",
        "shop",
        command=["sh", "-c", "printf 'a b'"],
        stderr=True,
        stdout=True,
        stdin=False,
        tty=False,
    )
    assert out == "a b"


def test_exec_refusals_before_upgrade(lab: Lab) -> None:
    with pytest.raises(k8s.ApiException) as err:
        _exec(lab, ["true"], pod="db-0", stdin=False)  # runtime: container not running
    assert "400" in str(err.value)
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods/db-0/exec?command=true&stdout=true",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
        },
    )
    assert (code, body["reason"], body["message"]) == (
        400,
        "BadRequest",
        'container "nginx" in pod "db-0" is not running',
    )
    code, body = lab.status("/api/v1/namespaces/shop/pods/web-0/exec?command=true&stdout=true")
    assert (code, body["message"]) == (400, "Upgrade request required")
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods/web-0/exec?stdout=true",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert (code, body["message"]) == (400, "you must specify at least 1 command")
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods/web-0/exec?command=true",
        method="POST",
        headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"},
    )
    assert code == 400 and "SPDY" in body["message"]
    with pytest.raises(WebSocketBadStatusException, match="400"):
        _exec(lab, ["true"], stdin=False, protocol="v9.channel.example")
    with pytest.raises(k8s.ApiException) as err:
        _exec(lab, ["true"], token=READER_TOKEN)
    assert "403" in str(err.value)


# ---------------------------------------------------------------- raw HTTP: auth, RBAC, discovery, errors


def test_unauthorized_without_or_with_wrong_token(lab: Lab) -> None:
    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert lab.status("/api/v1/pods", token=None) == (401, expected)
    assert lab.status("/api", token="wrong") == (401, expected)
    assert lab.http("/healthz", token=None)[::2] == (200, "ok")
    assert lab.http("/readyz", token=None)[0] == 200


@pytest.mark.parametrize(
    ("path", "message", "details"),
    [
        (
            "/api/v1/namespaces/shop/pods/web-0/log",
            'pods "web-0" is forbidden: User "reader" cannot get resource "pods/log" in API group "" in the namespace "shop"',
            {"name": "web-0", "kind": "pods"},
        ),
        (
            "/api/v1/pods",
            'pods is forbidden: User "reader" cannot list resource "pods" in API group "" at the cluster scope',
            {"kind": "pods"},
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/other/endpointslices",
            'endpointslices.discovery.k8s.io is forbidden: User "reader" cannot list resource "endpointslices" '
            'in API group "discovery.k8s.io" in the namespace "other"',
            {"group": "discovery.k8s.io", "kind": "endpointslices"},
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-abcde",
            'endpointslices.discovery.k8s.io "web-abcde" is forbidden: User "reader" cannot get resource '
            '"endpointslices" in API group "discovery.k8s.io" in the namespace "shop"',
            {"name": "web-abcde", "group": "discovery.k8s.io", "kind": "endpointslices"},
        ),
        (
            "/api/v1/namespaces/other/events",
            'events is forbidden: User "reader" cannot list resource "events" in API group "" in the namespace "other"',
            {"kind": "events"},
        ),
    ],
)
def test_forbidden_status(lab: Lab, path: str, message: str, details: dict) -> None:
    code, body = lab.status(path, token=READER_TOKEN)
    assert code == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


def test_impersonation(lab: Lab) -> None:
    # the admin may impersonate; the request then has the reader's rights only
    done = kubectl(lab.admin_kc, "--as", "reader", "get", "pods", "-A")
    assert 'pods is forbidden: User "reader" cannot list resource "pods"' in done.stderr
    assert kubectl_json(lab.admin_kc, "--as", "reader", "get", "pods", "-n", "shop")["items"]
    code, body = lab.status("/api/v1/namespaces/shop/pods", headers={"Impersonate-User": "nobody"})
    assert code == 403 and 'User "nobody" cannot list resource "pods"' in body["message"]
    # the reader may not impersonate anyone
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods", token=READER_TOKEN, headers={"Impersonate-User": "admin"}
    )
    assert (code, body["message"], body["details"]) == (
        403,
        'users "admin" is forbidden: User "reader" cannot impersonate resource "users" in API group "" '
        "at the cluster scope",
        {"name": "admin", "kind": "users"},
    )
    code, body = lab.status(
        "/api/v1/namespaces/shop/pods", headers={"Impersonate-Group": "system:masters"}
    )
    assert (code, body["reason"]) == (400, "BadRequest")


def test_reader_allowed_paths(lab: Lab) -> None:
    assert lab.status("/api/v1/namespaces/shop/pods", token=READER_TOKEN)[0] == 200
    assert (
        lab.status("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", token=READER_TOKEN)[
            0
        ]
        == 200
    )
    assert lab.status("/api/v1", token=READER_TOKEN)[0] == 200  # discovery is open to every user


def test_discovery_documents(lab: Lab) -> None:
    aggregated = {
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
        "application/json"
    }
    code, ctype, text = lab.http("/api", headers=aggregated)
    assert (code, ctype.split(";")[0]) == (200, "application/json")
    assert json.loads(text)["versions"] == ["v1"]
    _, groups = lab.status("/apis", headers=aggregated)
    assert groups["kind"] == "APIGroupList"
    assert [g["name"] for g in groups["groups"]] == [
        "authorization.k8s.io",
        "discovery.k8s.io",
        "networking.k8s.io",
    ]
    _, group = lab.status("/apis/networking.k8s.io")
    assert group["preferredVersion"] == {"groupVersion": "networking.k8s.io/v1", "version": "v1"}
    _, core = lab.status("/api/v1")
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert set(by_name) == {
        "namespaces",
        "pods",
        "pods/log",
        "pods/exec",
        "services",
        "endpoints",
        "events",
    }
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["namespaced"] is True
    assert by_name["namespaces"]["namespaced"] is False and by_name["namespaces"]["shortNames"] == [
        "ns"
    ]
    assert (
        by_name["pods/exec"]["kind"] == "PodExecOptions" and "get" in by_name["pods/exec"]["verbs"]
    )
    assert [by_name[n]["shortNames"] for n in ("services", "endpoints", "events")] == [
        ["svc"],
        ["ep"],
        ["ev"],
    ]
    _, net = lab.status("/apis/networking.k8s.io/v1")
    assert {r["name"]: r["shortNames"] for r in net["resources"]} == {
        "ingresses": ["ing"],
        "networkpolicies": ["netpol"],
    }
    _, version = lab.status("/version")
    assert (version["major"], version["minor"]) == ("1", "32")
    for path in ("/apis/apps/v1", "/openapi/v2", "/apis/nope.example"):
        assert lab.status(path)[0] == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/shop/widgets",
        "/api/v1/pods/web-0",  # namespaced resource without a namespace
        "/apis/apps/v1/namespaces/shop/deployments",
        "/api/v1/namespaces/shop/pods/web-0/attach",
        "/api/v2/pods",
    ],
)
def test_unknown_resources(lab: Lab, path: str) -> None:
    code, body = lab.status(path)
    assert (code, body["reason"], body["message"]) == (
        404,
        "NotFound",
        "the server could not find the requested resource",
    )


def test_bad_selector_and_unsupported_verbs(lab: Lab) -> None:
    code, body = lab.status("/api/v1/pods?labelSelector=app%20in%20web")
    assert (code, body["reason"]) == (400, "BadRequest")
    assert "unable to parse requirement: found 'web', expected: '('" in body["message"]
    code, body = lab.status("/api/v1/services?fieldSelector=spec.type%3DClusterIP")
    assert (code, body["message"].split(" (")[0]) == (400, "field label not supported: spec.type")
    code, body = lab.status("/api/v1/namespaces/shop/pods/web-0", method="PATCH")
    assert (code, body["reason"]) == (405, "MethodNotAllowed")
    code, body = lab.status("/api/v1/namespaces/shop/pods/web-0", method="DELETE")
    assert (code, body["reason"]) == (405, "MethodNotAllowed")


def test_create_and_conflict(lab: Lab) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "made-by-test"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
        "reason": "Test",
    }
    code, created = lab.status("/api/v1/namespaces/shop/events", method="POST", body=event)
    assert code == 201 and created["metadata"]["namespace"] == "shop" and created["metadata"]["uid"]
    code, body = lab.status("/api/v1/namespaces/shop/events", method="POST", body=event)
    assert (code, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'events "made-by-test" already exists',
    )
    code, body = lab.status("/api/v1/namespaces/nowhere/events", method="POST", body=event)
    assert (code, body["message"]) == (404, 'namespaces "nowhere" not found')
    code, body = lab.status(
        "/api/v1/namespaces/shop/events",
        method="POST",
        body=event,
        headers={"Content-Type": "application/yaml"},
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    code, body = lab.status(
        "/api/v1/namespaces/shop/events", method="POST", token=READER_TOKEN, body=event
    )
    assert code == 403 and 'cannot create resource "events"' in body["message"]
    listed = lab.core().list_namespaced_event("shop", field_selector="reason=Test")
    assert [e.metadata.name for e in listed.items] == ["made-by-test"]


def test_internal_error_is_a_status(lab: Lab) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("log store exploded")

    original = lab.runtime.log_path
    lab.runtime.log_path = broken
    try:
        code, body = lab.status("/api/v1/namespaces/shop/pods/web-0/log")
    finally:
        lab.runtime.log_path = original
    assert (code, body["reason"], body["message"]) == (
        500,
        "InternalError",
        "Internal error occurred: log store exploded",
    )


def test_pagination_with_limit_and_continue(lab: Lab) -> None:
    core = lab.core()
    seen, token = [], None
    while True:
        page = core.list_pod_for_all_namespaces(limit=4, _continue=token)
        seen += names(page.items)
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 6 - len(seen)
    assert seen == names(core.list_pod_for_all_namespaces().items)
    code, body = lab.status("/api/v1/pods?limit=2&continue=garbage")
    assert (code, body["reason"]) == (410, "Expired")


def test_log_follow_streams_new_lines(lab: Lab) -> None:
    path = lab.runtime.write_log("shop", "web-1", "nginx", [f"{cri_time(NOW)} stdout F first"])
    request = urllib.request.Request(
        lab.server.url + "/api/v1/namespaces/shop/pods/web-1/log?follow=true&limitBytes=12",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    context = ssl.create_default_context(cafile=str(lab.server.ca_file))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        assert response.read(6) == b"first\n"
        with path.open("a") as handle:
            handle.write(
                f"{cri_time(datetime.datetime.now(datetime.timezone.utc))} stdout F second\n"
            )
        assert response.read() == b"second"  # limitBytes=12 ends the stream


def test_kubectl_logs_follow_ends_when_the_pod_goes(tmp_path: Path) -> None:
    store = Store()
    seed(store)
    runtime = FakeRuntime(tmp_path / "runtime")
    path = runtime.write_log("shop", "web-0", "nginx", [f"{cri_time(NOW)} stdout F before"])
    with ThreadedServer(store, runtime, Auth(AUTH_TABLE), tls_dir=tmp_path / "tls") as server:
        kc = write_kubeconfig(tmp_path, server.url, ADMIN_TOKEN, server.ca_file)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(kc)}
        with subprocess.Popen(
            [KUBECTL, "logs", "-f", "-n", "shop", "web-0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as follower:
            try:
                assert follower.stdout.readline() == "before\n"
                with path.open("a") as handle:
                    handle.write(
                        f"{cri_time(datetime.datetime.now(datetime.timezone.utc))} stdout F after\n"
                    )
                assert follower.stdout.readline() == "after\n"
                server.call(store.delete, "pods", "shop", "web-0")
                assert follower.wait(timeout=10) == 0
            finally:
                if follower.poll() is None:
                    follower.kill()
        # a restart (the runtime hands out a new log file) ends a follow, as kubelet does
        runtime.write_log("shop", "web-1", "nginx", [f"{cri_time(NOW)} stdout F first run"])
        with subprocess.Popen(
            [KUBECTL, "logs", "-f", "-n", "shop", "web-1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as follower:
            try:
                assert follower.stdout.readline() == "first run\n"
                runtime.restart("shop", "web-1", "nginx", [f"{cri_time(NOW)} stdout F second run"])
                assert follower.wait(timeout=10) == 0
                assert follower.stdout.read() == ""
            finally:
                if follower.poll() is None:
                    follower.kill()
        done = kubectl(kc, "logs", "-n", "shop", "web-1", "--previous")
        assert done.stdout == "first run\n"


def test_plain_http_server_and_start_time(tmp_path: Path) -> None:
    store = Store()
    seed(store)
    started = time.perf_counter()
    with ThreadedServer(store, FakeRuntime(tmp_path), Auth(AUTH_TABLE)) as server:
        elapsed = time.perf_counter() - started
        assert server.url.startswith("http://127.0.0.1:") and server.ca_file is None
        conf = k8s.Configuration()
        conf.host = server.url
        conf.api_key = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        core = k8s.CoreV1Api(k8s.ApiClient(conf))
        assert names(core.list_namespaced_pod("other").items) == ["other/web-0"]
        server.call(store.delete, "pods", "other", "web-0")
        assert core.list_namespaced_pod("other").items == []
        # kubectl does not send a bearer token over plain HTTP: the lab uses HTTPS for it
        kc = write_kubeconfig(tmp_path, server.url, ADMIN_TOKEN, None)
        assert "You must be logged in to the server" in kubectl(kc, "get", "pods").stderr
    assert elapsed < 2.0, f"server took {elapsed:.2f}s to start"


def test_start_errors_are_clear(tmp_path: Path, lab: Lab) -> None:
    with pytest.raises(LabError, match="only listens on loopback addresses"):
        with ThreadedServer(Store(), FakeRuntime(tmp_path), Auth(AUTH_TABLE), host="192.0.2.1"):
            pass
    with pytest.raises(
        LabError, match=f"cannot listen on 127.0.0.1:{lab.server.port}: .*choose another port"
    ):
        with ThreadedServer(Store(), FakeRuntime(tmp_path), Auth(AUTH_TABLE), port=lab.server.port):
            pass
