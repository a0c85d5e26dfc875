"""persist_config: a token that the kubeconfig's auth-provider refreshed is written back to the
kubeconfig file when asked, and only then.

A kubeconfig whose ``oidc`` auth-provider holds an expired id-token makes the kubernetes client
refresh it at load time, from a small OpenID provider served here on 127.0.0.1 (discovery
document and token endpoint). No API server is needed: the configuration is loaded when
``K8sClient`` is built.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from ansible.module_utils.basic import env_fallback

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    AUTH_ARG_SPEC,
    K8sClient,
)


def _b64(data):
    return (
        base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def jwt(claims):
    """An unsigned JWT: the client reads only ``exp`` (and rejects '=', '+', '/' in it)."""
    payload = _b64(claims)
    while len(payload) % 4 == 1:  # a length the client's padding check refuses
        claims = dict(claims, pad=claims.get("pad", "") + "x")
        payload = _b64(claims)
    return "%s.%s.sig" % (_b64({"alg": "none"}), payload)


EXPIRED = jwt({"sub": "diagnose", "exp": 1})
FRESH = jwt({"sub": "diagnose", "exp": 4102444800})


class Provider(BaseHTTPRequestHandler):
    """OpenID discovery plus a token endpoint that hands out FRESH and a new refresh token."""

    refreshes = []

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path != "/.well-known/openid-configuration":
            return self._json(404, {"error": "not found"})
        return self._json(
            200, {"issuer": self.issuer(), "token_endpoint": self.issuer() + "/token"}
        )

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        Provider.refreshes.append(self.rfile.read(length).decode())
        return self._json(
            200,
            {
                "access_token": "unused",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": FRESH,
                "refresh_token": "refresh-2",
            },
        )

    def issuer(self):
        return "http://%s:%d" % self.server.server_address[:2]

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(monkeypatch):
    # requests-oauthlib refuses a plain-HTTP token endpoint unless told it is a test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Provider.refreshes = []
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def write_kubeconfig(path, issuer):
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "oidc"}}],
                "users": [
                    {
                        "name": "oidc",
                        "user": {
                            "auth-provider": {
                                "name": "oidc",
                                "config": {
                                    "client-id": "badgateway",
                                    "client-secret": "s3cret",
                                    "idp-issuer-url": issuer,
                                    "id-token": EXPIRED,
                                    "refresh-token": "refresh-1",
                                },
                            }
                        },
                    }
                ],
            }
        )
    )
    return path


def provider_config(path):
    return yaml.safe_load(path.read_text())["users"][0]["user"]["auth-provider"]["config"]


def bearer(made):
    """The token the client will send (client 37 keeps it under BearerToken, 31 under authorization)."""
    keys = made.config.api_key
    return keys.get("BearerToken") or keys.get("authorization")


def client(path, **params):
    return K8sClient(dict({"kubeconfig": str(path), "request_timeout": 5}, **params))


def test_persist_config_writes_the_refreshed_tokens_to_the_kubeconfig(provider, tmp_path):
    path = write_kubeconfig(tmp_path / "kubeconfig", provider)
    made = client(path, persist_config=True)
    assert len(Provider.refreshes) == 1 and "refresh-1" in Provider.refreshes[0]
    assert FRESH in bearer(made)
    saved = provider_config(path)
    assert (saved["id-token"], saved["refresh-token"]) == (FRESH, "refresh-2")


@pytest.mark.parametrize("params", [{"persist_config": False}, {}], ids=["false", "not set"])
def test_without_persist_config_the_file_is_left_as_it_was(provider, tmp_path, params):
    path = write_kubeconfig(tmp_path / "kubeconfig", provider)
    before = path.read_bytes()
    made = client(path, **params)
    assert len(Provider.refreshes) == 1
    assert FRESH in bearer(made)  # used for this run only
    assert path.read_bytes() == before


def test_persist_config_is_a_bool_option_with_kubernetes_core_environment_variable():
    spec = AUTH_ARG_SPEC["persist_config"]
    assert spec["type"] == "bool" and spec["default"] is False
    assert spec["fallback"] == (env_fallback, ["K8S_AUTH_PERSIST_CONFIG"])
