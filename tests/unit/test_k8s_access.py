"""Unit tests of module_utils.k8s_access / _ws_exec against a small local fake API server.

The fake (aiohttp, in a thread, on 127.0.0.1) serves only what these tests need: a pod list,
a pod log, Status errors for 401/403/404 and a pods/exec WebSocket whose behaviour is picked
by the command: exit 0, exit 3, a non-numeric cause (OCI runtime text), no status, a hang.
"""

import asyncio
import base64
import json
import os
import socket
import ssl
import threading
import time

from pathlib import Path

import pytest
import yaml
from aiohttp import web

from ansible_collections.badgateway.k8s.plugins.module_utils import k8s_access
from ansible_collections.badgateway.k8s.plugins.module_utils._ws_exec import parse_exec_status
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    K8sClient,
    K8sError,
    K8sNotFound,
)

GOOD, LIMITED = "good-token", "limited-token"


def _status(code, reason, message):
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        },
        status=code,
    )


def _auth(request):
    token = request.headers.get("Authorization", "")
    if token not in ("Bearer " + GOOD, "Bearer " + LIMITED):
        return _status(401, "Unauthorized", "Unauthorized")
    return None


async def list_pods(request):
    denied = _auth(request)
    if denied:
        return denied
    if request.match_info["ns"] == "gone":
        return web.json_response(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "items": [],
                "metadata": {"resourceVersion": "1"},
            }
        )
    # two pages, to exercise `continue`
    if request.query.get("continue") == "page2":
        return web.json_response(
            {"kind": "PodList", "items": [{"metadata": {"name": "b"}}], "metadata": {}}
        )
    assert request.query.get("labelSelector") == "app=web"
    return web.json_response(
        {
            "kind": "PodList",
            "items": [{"metadata": {"name": "a"}}],
            "metadata": {"continue": "page2"},
        }
    )


async def get_namespace(request):
    denied = _auth(request)
    if denied:
        return denied
    if request.headers["Authorization"] == "Bearer " + LIMITED:
        return _status(403, "Forbidden", 'namespaces "x" is forbidden')
    if request.match_info["ns"] == "default":
        return web.json_response({"kind": "Namespace", "metadata": {"name": "default"}})
    return _status(404, "NotFound", 'namespaces "%s" not found' % request.match_info["ns"])


async def pod_log(request):
    denied = _auth(request)
    if denied:
        return denied
    if request.headers["Authorization"] == "Bearer " + LIMITED:
        return _status(403, "Forbidden", 'pods "p" is forbidden: cannot get resource "pods/log"')
    text = "".join("2026-01-01T00:00:%02dZ line %d\n" % (i, i) for i in range(50))
    limit = int(request.query.get("limitBytes", 0))
    if request.query.get("ignore_limit") != "1" and limit:
        text = text[:limit]
    return web.Response(text=text, content_type="text/plain")


async def pod_exec(request):
    denied = _auth(request)
    if denied:
        return denied
    if request.headers["Authorization"] == "Bearer " + LIMITED:
        return _status(403, "Forbidden", "cannot create pods/exec")
    if request.match_info["pod"] == "missing":
        return _status(404, "NotFound", 'pods "missing" not found')
    if request.match_info["pod"] == "broken":
        return _status(500, "InternalError", "Internal error occurred: error dialing backend")
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    ws = web.WebSocketResponse(
        protocols=[p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in offered]
    )
    await ws.prepare(request)
    command = request.query.getall("command")
    action = command[0]
    await ws.send_bytes(b"\x01" + json.dumps({"argv": command, "proto": ws.ws_protocol}).encode())
    await ws.send_bytes(b"\x02warn\n")
    if ws.ws_protocol == "v5.channel.k8s.io":
        await ws.send_bytes(b"\xff\x01")
    if action == "ok":
        await ws.send_bytes(b'\x03{"status":"Success"}')
    elif action == "fail3":
        await ws.send_bytes(
            b"\x03"
            + json.dumps(
                {
                    "status": "Failure",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
                }
            ).encode()
        )
    elif action == "nobinary":
        await ws.send_bytes(
            b"\x03"
            + json.dumps(
                {
                    "status": "Failure",
                    "reason": "InternalError",
                    "message": "OCI runtime exec failed: exec failed: unable to start container process: "
                    'exec: "nobinary": executable file not found in $PATH: unknown',
                    "details": {
                        "causes": [{"message": 'OCI runtime exec failed: exec: "nobinary"'}]
                    },
                }
            ).encode()
        )
    elif action == "hang":
        try:
            await ws.receive(timeout=30)  # ends when the client gives up and closes
        except asyncio.TimeoutError:
            pass
    # action "empty": no status at all
    await ws.close()
    return ws


@pytest.fixture(scope="module")
def fake_api():
    """Run the fake API server on a free 127.0.0.1 port in a background thread."""
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/pods", list_pods)
    app.router.add_get("/api/v1/namespaces/{ns}", get_namespace)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/log", pod_log)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", pod_exec)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    for _attempt in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield "http://127.0.0.1:%d" % port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def client(host, token=GOOD, **extra):
    params = {"host": host, "api_key": token, "request_timeout": 3}
    params.update(extra)
    return K8sClient(params)


# ---------------------------------------------------------------- exit-code parsing (pure)
@pytest.mark.parametrize(
    "raw, rc, error_part",
    [
        (b'{"status":"Success"}', 0, None),
        (
            b'{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":'
            b'[{"reason":"ExitCode","message":"3"}]}}',
            3,
            None,
        ),
        (
            b'{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":'
            b'[{"reason":"ExitCode","message":"OCI runtime said no"}]}}',
            None,
            "not a number",
        ),
        (
            b'{"status":"Failure","reason":"InternalError","message":"OCI runtime exec failed"}',
            None,
            "OCI runtime exec failed",
        ),
        (b"", None, "without a status"),
        (None, None, "without a status"),
        (b"not json", None, "unreadable"),
        (b"[1, 2]", None, "unreadable"),
        (b'{"status":"Failure","reason":"NonZeroExitCode"}', None, "NonZeroExitCode"),
    ],
)
def test_parse_exec_status(raw, rc, error_part):
    got_rc, error = parse_exec_status(raw)
    assert got_rc == rc
    if error_part is None:
        assert error is None
    else:
        assert error_part in error


# ---------------------------------------------------------------- exec over WebSocket
@pytest.mark.parametrize(
    "protocols, expect",
    [
        (None, "v5.channel.k8s.io"),
        (("v4.channel.k8s.io",), "v4.channel.k8s.io"),
    ],
)
def test_exec_success_both_protocols(fake_api, protocols, expect):
    result = client(fake_api).exec(
        "ns", "p", ["ok", "a b", "--x=1"], container="c", subprotocols=protocols
    )
    assert result.rc == 0 and result.ok and result.error is None
    assert json.loads(result.stdout) == {"argv": ["ok", "a b", "--x=1"], "proto": expect}
    assert result.stderr == "warn\n"
    assert result.protocol == expect


def test_exec_nonzero_exit(fake_api):
    result = client(fake_api).exec("ns", "p", ["fail3"])
    assert result.rc == 3 and not result.ok and result.error is None


def test_exec_non_numeric_failure_does_not_raise(fake_api):
    result = client(fake_api).exec("ns", "p", ["nobinary"])
    assert result.rc is None
    assert "executable file not found" in result.error


def test_exec_empty_status(fake_api):
    result = client(fake_api).exec("ns", "p", ["empty"])
    assert result.rc is None and "without a status" in result.error


def test_exec_deadline(fake_api):
    start = time.monotonic()
    result = client(fake_api).exec("ns", "p", ["hang"], timeout=0.7)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.rc is None and "timed out after 0.7s" in result.error
    assert 0.6 < elapsed < 3


def test_exec_forbidden_names_verb_and_resource(fake_api):
    with pytest.raises(K8sError) as err:
        client(fake_api, LIMITED).exec("shop", "p", ["ok"])
    assert 'lack "create" on "pods/exec" in namespace "shop"' in str(err.value)
    assert err.value.status == 403


def test_exec_pod_missing(fake_api):
    with pytest.raises(K8sNotFound) as err:
        client(fake_api).exec("ns", "missing", ["ok"])
    assert 'pods/exec "missing" not found in namespace "ns"' in str(err.value)


def test_exec_rejects_bad_argv(fake_api):
    with pytest.raises(K8sError, match="non-empty list of strings"):
        client(fake_api).exec("ns", "p", [])


# ---------------------------------------------------------------- GET / list / log
def test_list_follows_continue(fake_api):
    pods = client(fake_api).list_pods("ns", "app=web")
    assert [p["metadata"]["name"] for p in pods] == ["a", "b"]


def test_401_is_clear(fake_api):
    with pytest.raises(K8sError) as err:
        client(fake_api, "wrong").list_pods("ns", "app=web")
    assert "rejected the credentials (401 Unauthorized)" in str(err.value)
    assert "wrong" not in str(err.value)


def test_403_names_verb_resource_namespace(fake_api):
    with pytest.raises(K8sError) as err:
        client(fake_api, LIMITED).read_log("x", "p")
    assert 'the credentials lack "get" on "pods/log" in namespace "x"' in str(err.value)


def test_namespace_exists(fake_api):
    assert client(fake_api).namespace_exists("default") is True
    assert client(fake_api).namespace_exists("nope") is False
    assert client(fake_api, LIMITED).namespace_exists("default") is None


def test_require_namespace_raises_only_for_a_missing_one(fake_api):
    assert client(fake_api).require_namespace("default") is True
    assert client(fake_api, LIMITED).require_namespace("nope") is None  # cannot tell: no error
    with pytest.raises(K8sError, match='^namespace "nope" does not exist$'):
        client(fake_api).require_namespace("nope")


def test_read_log_bounded(fake_api):
    text, size, truncated = client(fake_api).read_log("ns", "p", limit_bytes=100)
    assert size == 100 and truncated and text.startswith("2026-01-01T00:00:00Z line 0\n")
    text, size, truncated = client(fake_api).read_log("ns", "p")
    assert not truncated and text.count("\n") == 50 and size == len(text)


def test_unreachable_api_is_clear():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    start = time.monotonic()
    with pytest.raises(K8sError) as err:
        client("http://127.0.0.1:%d" % port).list_pods("ns")
    assert "cannot reach the Kubernetes API at http://127.0.0.1:%d" % port in str(err.value)
    assert "Connection refused" in str(err.value)
    assert time.monotonic() - start < 3


def test_read_timeout_is_enforced():
    """A server that accepts but never answers: the call ends after request_timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        start = time.monotonic()
        with pytest.raises(K8sError) as err:
            client("http://127.0.0.1:%d" % port, request_timeout=0.5).list_pods("ns")
        assert 0.4 < time.monotonic() - start < 3
        assert "timed out" in str(err.value).lower()
    finally:
        server.close()


def _dripping_server(head_first):
    """A raw HTTP server that drips its answer, one byte every 0.2 s, for ~30 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except OSError:
                continue
            conn.recv(65536)
            answer = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
            )
            if head_first:
                conn.sendall(answer)
                answer = b"{" + b" " * 399
            for byte in answer[:150]:
                if stop.wait(0.2):
                    break
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, stop, thread


@pytest.mark.parametrize("head_first", [True, False], ids=["body-drips", "headers-drip"])
def test_a_dripping_api_is_bounded_by_request_timeout(head_first):
    """Every byte arrives within the read timeout, yet the whole call ends at request_timeout."""
    server, stop, thread = _dripping_server(head_first)
    port = server.getsockname()[1]
    try:
        start = time.monotonic()
        with pytest.raises(K8sError) as err:
            client("http://127.0.0.1:%d" % port, request_timeout=1).list_pods("ns")
        took = time.monotonic() - start
        assert 0.9 < took < 3, took
        assert err.value.timed_out and "timed out" in str(err.value)
        assert '"list" on "pods" in namespace "ns"' in str(err.value)
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_refused_exec_is_an_error_naming_the_call_not_a_command_that_did_not_run(fake_api):
    with pytest.raises(K8sError) as err:
        client(fake_api).exec("web", "broken", ["curl", "http://x/"])
    text = str(err.value)
    assert err.value.status == 500
    assert "exec of `curl http://x/` in pod web/broken" in text and "HTTP 500" in text
    assert "error dialing backend" in text


def test_kubeconfig_secrets_are_found_in_a_dict():
    exec_user = {"command": "aws", "env": [{"name": "X", "value": "v"}]}
    provider = {"config": {"id-token": "idt", "refresh-token": "rt", "client-secret": "cs"}}
    kubeconfig = {
        "users": [
            {
                "name": "u",
                "user": {"token": "tok-123", "client-key-data": "S0VZ", "exec": exec_user},
            },
            {"name": "o", "user": {"auth-provider": provider}},
            {"name": "b", "user": {"username": "admin", "password": "pw"}},
        ],
        "clusters": [{"name": "c", "cluster": {"server": "https://k:6443"}}],
    }
    assert k8s_access.kubeconfig_secrets(kubeconfig) == {"tok-123", "S0VZ", "idt", "rt", "cs", "pw"}
    assert k8s_access.kubeconfig_secrets("/path/to/kubeconfig") == set()


# ---------------------------------------------------------------- configuration
def _kubeconfig(server, token):
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": "u"}},
            {"name": "other", "context": {"cluster": "lab", "user": "u"}},
        ],
    }


def test_kubeconfig_dict_and_explicit_override(fake_api):
    kc = _kubeconfig(fake_api, GOOD)
    assert K8sClient({"kubeconfig": kc}).list_pods("ns", "app=web")
    # an explicit api_key wins over the kubeconfig user's token
    with pytest.raises(K8sError, match="401"):
        K8sClient({"kubeconfig": kc, "api_key": "wrong"}).list_pods("ns", "app=web")


def test_kubeconfig_file_and_context(fake_api, tmp_path):
    path = tmp_path / "config"
    path.write_text(json.dumps(_kubeconfig(fake_api, GOOD)))
    assert K8sClient({"kubeconfig": str(path), "context": "other"}).host == fake_api
    with pytest.raises(K8sError, match="context"):
        K8sClient({"kubeconfig": str(path), "context": "nope"})


def test_missing_kubeconfig_file(tmp_path):
    with pytest.raises(K8sError, match="does not exist"):
        K8sClient({"kubeconfig": str(tmp_path / "absent")})


def test_no_configuration_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(K8sError, match="no Kubernetes configuration found"):
        K8sClient({})


def test_auth_spec_env_fallbacks():
    spec = k8s_access.AUTH_ARG_SPEC
    expected = {
        "kubeconfig": "K8S_AUTH_KUBECONFIG",
        "context": "K8S_AUTH_CONTEXT",
        "host": "K8S_AUTH_HOST",
        "api_key": "K8S_AUTH_API_KEY",
        "validate_certs": "K8S_AUTH_VERIFY_SSL",
        "ca_cert": "K8S_AUTH_SSL_CA_CERT",
        "client_cert": "K8S_AUTH_CERT_FILE",
        "client_key": "K8S_AUTH_KEY_FILE",
        "proxy": "K8S_AUTH_PROXY",
        "no_proxy": "K8S_AUTH_NO_PROXY",
    }
    for option, env in expected.items():
        assert spec[option]["fallback"][1] == [env], option
    assert spec["api_key"]["no_log"] and spec["password"]["no_log"]
    assert "verify_ssl" in spec["validate_certs"]["aliases"]
    assert "ssl_ca_cert" in spec["ca_cert"]["aliases"]


def test_impersonation_headers(fake_api):
    c = client(fake_api, impersonate_user="alice", impersonate_groups=["g1", "g2"])
    headers = c._headers()
    assert headers["Impersonate-User"] == "alice"
    assert headers.getlist("Impersonate-Group") == ["g1", "g2"]


def test_proxy_bypass_rules():
    bypass = k8s_access._bypass_proxy
    assert bypass("127.0.0.1", "127.0.0.0/8")
    assert bypass("api.example.test", ".example.test")
    assert not bypass("api.example.test", "other.test")
    assert not bypass("10.0.0.1", "")


# ---------------------------------------------------------------- TLS options, one source
@pytest.mark.parametrize(
    "extra, pool, ws",
    [
        ({"host": "http://127.0.0.1:1"}, {}, {}),
        (
            {},
            {"cert_reqs": "CERT_REQUIRED"},
            {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True},
        ),
        # validate_certs=false: the CA is not used, nor the host name checked, on either path
        (
            {"validate_certs": False, "ca_cert": "ca.crt"},
            {"cert_reqs": "CERT_NONE", "assert_hostname": False},
            {"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
        ),
        (
            {"ca_cert": "ca.crt", "client_cert": "c.crt", "client_key": "c.key"},
            {
                "cert_reqs": "CERT_REQUIRED",
                "ca_certs": "ca.crt",
                "cert_file": "c.crt",
                "key_file": "c.key",
            },
            {
                "cert_reqs": ssl.CERT_REQUIRED,
                "check_hostname": True,
                "ca_certs": "ca.crt",
                "certfile": "c.crt",
                "keyfile": "c.key",
            },
        ),
        (
            {"assert_hostname": False, "tls_server_name": "api.example.test"},
            {
                "cert_reqs": "CERT_REQUIRED",
                "assert_hostname": False,
                "server_hostname": "api.example.test",
            },
            {
                "cert_reqs": ssl.CERT_REQUIRED,
                "check_hostname": False,
                "server_hostname": "api.example.test",
            },
        ),
    ],
)
def test_tls_options_are_the_same_settings_for_requests_and_exec(tmp_path, extra, pool, ws):
    """urllib3 (GET, logs) and websocket-client (exec) get the same TLS settings, each in its
    own spelling."""
    params = {"host": "https://127.0.0.1:1", "api_key": GOOD}
    files = {}
    for option in ("ca_cert", "client_cert", "client_key"):
        if option in extra:
            files[extra[option]] = tmp_path / extra[option]
            files[extra[option]].write_text("x")
            params[option] = str(files[extra[option]])
    params.update({k: v for k, v in extra.items() if k in ("host", "validate_certs")})
    c = K8sClient(params)
    for attr in ("assert_hostname", "tls_server_name"):
        if attr in extra:
            setattr(c.config, attr, extra[attr])
    paths = {name: str(path) for name, path in files.items()}
    expect_pool = {k: paths.get(v, v) if isinstance(v, str) else v for k, v in pool.items()}
    expect_ws = {k: paths.get(v, v) if isinstance(v, str) else v for k, v in ws.items()}
    assert c._tls_kwargs() == expect_pool
    assert c._ws_options()[0] == expect_ws


def test_each_transport_shares_one_tls_context_with_the_files_loaded_once(tmp_path):
    """The CA (and client certificate) are loaded once into one SSLContext for the pool's
    connections and one for the execs, verifying as the per-connection settings above would;
    a file that does not load is left to urllib3 and websocket-client, which report it."""
    from badlab.certs import write_certs  # pylint: disable=import-outside-toplevel

    ca = str(write_certs(tmp_path).ca_cert)
    c = K8sClient({"host": "https://127.0.0.1:1", "api_key": GOOD, "ca_cert": ca})
    pool = c._pool_kwargs()
    assert "ca_certs" not in pool and pool["cert_reqs"] == "CERT_REQUIRED"
    exec_context = c._exec_context()
    assert exec_context is c._exec_context()
    for context in (pool["ssl_context"], exec_context):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert [cert["subject"] for cert in context.get_ca_certs()] == [
            ((("organizationName", "badlab"),), (("commonName", "badlab-ca"),))
        ]

    c = K8sClient({"host": "https://127.0.0.1:1", "api_key": GOOD, "validate_certs": False})
    for context in (c._pool_kwargs()["ssl_context"], c._exec_context()):
        assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
        assert context.get_ca_certs() == []

    bad = tmp_path / "bad.crt"
    bad.write_text("not a certificate")
    c = K8sClient({"host": "https://127.0.0.1:1", "api_key": GOOD, "ca_cert": str(bad)})
    assert c._pool_kwargs() == c._tls_kwargs() and c._pool_kwargs()["ca_certs"] == str(bad)
    assert c._exec_context() is None
    assert K8sClient({"host": "http://127.0.0.1:1", "api_key": GOOD})._exec_context() is None


# ---------------------------------------------------------------- kubeconfig without the library
def _kubeconfig_doc(cluster, user):
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "cl", "cluster": cluster}],
        "contexts": [
            {"name": "c", "context": dict({"cluster": "cl"}, **({"user": "u"} if user else {}))}
        ],
        "users": [{"name": "u", "user": user}] if user else [],
    }
    return doc


def _b64(text):
    return base64.b64encode(text.encode()).decode()


READ_HERE = {
    "token and CA file": (
        {"server": "https://h:6443/", "certificate-authority": "ca.crt"},
        {"token": "abc"},
    ),
    "inline CA, client certificate and key": (
        {"server": "https://h:6443", "certificate-authority-data": _b64("CA")},
        {"client-certificate-data": _b64("CERT"), "client-key-data": _b64("KEY")},
    ),
    "insecure, TLS name, basic auth": (
        {"server": "https://h", "insecure-skip-tls-verify": True, "tls-server-name": "x"},
        {"username": "u", "password": "p"},
    ),
    "token file": ({"server": "https://h"}, {"tokenFile": "token"}),
    "plain HTTP": ({"server": "http://h:8080"}, {"token": "t"}),
    "empty token, then basic auth": (
        {"server": "https://h"},
        {"token": "", "username": "u", "password": "p"},
    ),
    "no user": ({"server": "https://h"}, None),
}


@pytest.mark.parametrize("cluster, user", list(READ_HERE.values()), ids=list(READ_HERE))
def test_a_plain_kubeconfig_is_read_as_the_kubernetes_library_reads_it(tmp_path, cluster, user):
    from kubernetes.client.configuration import Configuration
    from kubernetes.config.kube_config import load_kube_config

    (tmp_path / "ca.crt").write_text("CA\n")
    (tmp_path / "token").write_text("from-a-file")
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig_doc(cluster, user)))
    temp_files = []
    here = k8s_access.read_kubeconfig(str(path), None, temp_files)
    assert here is not None
    library = Configuration()
    load_kube_config(config_file=str(path), client_configuration=library, persist_config=False)
    for key in ("host", "verify_ssl", "tls_server_name", "proxy"):
        assert getattr(here, key) == getattr(library, key), key
    for key in ("ssl_ca_cert", "cert_file", "key_file"):
        ours, theirs = getattr(here, key), getattr(library, key)
        assert (ours is None) == (theirs is None), key
        if ours:
            assert Path(ours).read_bytes() == Path(theirs).read_bytes(), key
    assert k8s_access._api_key_header(here) == k8s_access._api_key_header(library)
    for name in temp_files:
        os.unlink(name)


@pytest.mark.parametrize(
    "cluster, user",
    [
        ({}, {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "get-token"}}),
        ({}, {"auth-provider": {"name": "oidc", "config": {}}}),
        ({}, {"token": "t", "as": "someone"}),
        ({"proxy-url": "http://p:3128"}, {"token": "t"}),  # only newer libraries honour it
    ],
    ids=["exec plugin", "auth-provider", "impersonation", "proxy-url"],
)
def test_a_kubeconfig_with_more_is_left_to_the_library(tmp_path, cluster, user):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig_doc(dict({"server": "https://h"}, **cluster), user)))
    assert k8s_access.read_kubeconfig(str(path), None, []) is None


def test_a_missing_context_or_file_is_left_to_the_library_and_its_message(tmp_path):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig_doc({"server": "https://h"}, {"token": "t"})))
    assert k8s_access.read_kubeconfig(str(path), "nope", []) is None
    with pytest.raises(K8sError, match="context nope"):
        K8sClient({"kubeconfig": str(path), "context": "nope"})
    doc = _kubeconfig_doc(
        {"server": "https://h", "certificate-authority": "gone.crt"}, {"token": "t"}
    )
    path.write_text(yaml.safe_dump(doc))
    assert k8s_access.read_kubeconfig(str(path), None, []) is None
    with pytest.raises(K8sError, match="gone.crt"):
        K8sClient({"kubeconfig": str(path)})


def test_inline_certificates_are_removed_when_the_client_closes(tmp_path):
    doc = _kubeconfig_doc(
        {"server": "https://127.0.0.1:9", "certificate-authority-data": _b64("CA")},
        {"client-certificate-data": _b64("CERT"), "client-key-data": _b64("KEY")},
    )
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    client = K8sClient({"kubeconfig": str(path)})
    files = [client.config.ssl_ca_cert, client.config.cert_file, client.config.key_file]
    assert all(Path(f).exists() for f in files)
    assert Path(client.config.key_file).read_text() == "KEY"
    client.close()
    assert not any(Path(f).exists() for f in files)
