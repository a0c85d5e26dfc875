# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Kubernetes access layer shared by the collection's modules.

* ``AUTH_ARG_SPEC``: the kubernetes.core-compatible auth options with ``K8S_AUTH_*`` fallbacks.
* ``K8sClient``: GET by path (JSON), pod logs (bounded) and exec over WebSocket (v5/v4), each
  under ``request_timeout``; every failure becomes a ``K8sError`` with a message a user can act
  on (unreachable API, 401, 403 naming the verb and resource, 404), never a traceback. Safe to
  share between threads: at most ``max_in_flight`` calls (requests and exec streams) are in
  flight to its API server at once, the others wait for a free slot.

Lean on purpose: it talks HTTP through urllib3 directly (``CoreV1Api`` and
``kubernetes.stream`` are never imported: importing ``kubernetes.client.api.core_v1_api``
costs about 0.8-1.8 s), and it reads a kubeconfig whose user has a token, a client
certificate or a user name and password itself (``read_kubeconfig``). Only a kubeconfig it
does not read that way (an exec credential plugin, an auth-provider, several files, a dict)
and in-cluster configuration import ``kubernetes.config`` (about 0.2-0.3 s), which then
loads it as before.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import ipaddress
import json
import os
import signal
import ssl
import tempfile
import threading
import traceback
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import urllib3
    from urllib3._collections import HTTPHeaderDict

    # Imported when a configuration needs it (kubernetes_config), not here: it is found.
    HAS_K8S = importlib.util.find_spec("kubernetes") is not None
    K8S_IMPORT_ERROR = None if HAS_K8S else "ModuleNotFoundError: No module named 'kubernetes'"
except ImportError:
    HAS_K8S = False
    K8S_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.badgateway.k8s.plugins.module_utils._ws_exec import (
    SUBPROTOCOLS,
    WEBSOCKET_IMPORT_ERROR,
    ExecConnectError,
    ExecHandshakeError,
    run_exec,
)

if WEBSOCKET_IMPORT_ERROR:
    HAS_K8S = False
    K8S_IMPORT_ERROR = K8S_IMPORT_ERROR or WEBSOCKET_IMPORT_ERROR

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_IN_FLIGHT = 8

AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "raw", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "username": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_USERNAME"])},
    "password": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_PASSWORD"])},
    "validate_certs": {
        "type": "bool",
        "aliases": ["verify_ssl"],
        "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"]),
    },
    "ca_cert": {
        "type": "path",
        "aliases": ["ssl_ca_cert"],
        "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"]),
    },
    "client_cert": {
        "type": "path",
        "aliases": ["cert_file"],
        "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"]),
    },
    "client_key": {
        "type": "path",
        "aliases": ["key_file"],
        "no_log": False,
        "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"]),
    },
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "no_proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_NO_PROXY"])},
    "proxy_headers": {
        "type": "dict",
        "options": {
            "proxy_basic_auth": {
                "type": "str",
                "no_log": True,
                "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_PROXY_BASIC_AUTH"]),
            },
            "basic_auth": {
                "type": "str",
                "no_log": True,
                "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_BASIC_AUTH"]),
            },
            "user_agent": {
                "type": "str",
                "fallback": (env_fallback, ["K8S_AUTH_PROXY_HEADERS_USER_AGENT"]),
            },
        },
    },
    "impersonate_user": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_USER"])},
    "impersonate_groups": {
        "type": "list",
        "elements": "str",
        "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_GROUPS"]),
    },
    "request_timeout": {
        "type": "float",
        "default": DEFAULT_TIMEOUT,
        "fallback": (env_fallback, ["K8S_AUTH_REQUEST_TIMEOUT"]),
    },
    # Calls (API requests and exec streams) in flight at once to the API server, per client.
    "max_in_flight": {"type": "int", "default": DEFAULT_MAX_IN_FLIGHT},
    # As in kubernetes.core: write a token that a kubeconfig auth-provider refreshed back to
    # the kubeconfig file (off by default; a kubeconfig given as a dict has no file).
    "persist_config": {
        "type": "bool",
        "default": False,
        "fallback": (env_fallback, ["K8S_AUTH_PERSIST_CONFIG"]),
    },
}


class K8sError(Exception):
    """A Kubernetes call failed; ``str()`` is the user-facing message, ``status`` the HTTP code."""

    def __init__(self, message, status=None, timed_out=False):
        super().__init__(message)
        self.status = status
        self.timed_out = timed_out


class K8sNotFound(K8sError):
    """404: the object (or its namespace) does not exist."""


# Keys of a kubeconfig whose values are credentials (users[].user, auth-provider config, ...).
_SECRET_KEY_WORDS = ("token", "password", "secret", "key-data", "certificate-data")


def kubeconfig_secrets(value, key=""):
    """Every credential string in a kubeconfig given as a dict (to hide from any output)."""
    found = set()
    if isinstance(value, dict):
        for name, item in value.items():
            found |= kubeconfig_secrets(item, str(name).lower())
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= kubeconfig_secrets(item, key)
    elif isinstance(value, str) and value and any(word in key for word in _SECRET_KEY_WORDS):
        found.add(value)
    return found


def k8s_module(argument_spec, **kwargs):
    """Build an AnsibleModule with the auth options merged in; fail cleanly without kubernetes."""
    spec = dict(AUTH_ARG_SPEC)
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    # A kubeconfig passed as a dict carries tokens and keys: hide them from the invocation
    # that -vvv shows and from every message, as no_log does for api_key.
    module.no_log_values.update(kubeconfig_secrets(module.params.get("kubeconfig")))
    if not HAS_K8S:
        module.fail_json(
            msg=missing_required_lib("kubernetes (with websocket-client)"),
            exception=K8S_IMPORT_ERROR,
        )
    problem = param_problem(module.params)
    if problem:
        module.fail_json(msg=problem)
    return module


def param_problem(params):
    """Why the connection options ``params`` cannot be used (a value out of range), or None."""
    if params["request_timeout"] <= 0:
        return (
            "request_timeout must be a positive number of seconds, got %s"
            % (params["request_timeout"])
        )
    if params.get("max_in_flight") is not None and params["max_in_flight"] < 1:
        return "max_in_flight must be at least 1, got %s" % params["max_in_flight"]
    return None


def client_from_module(module):
    """Return a K8sClient for the module's auth options, or fail_json with the reason."""
    try:
        return K8sClient(module.params)
    except K8sError as exc:
        module.fail_json(msg=str(exc))


def _describe(verb, resource, namespace):
    where = ' in namespace "%s"' % namespace if namespace else " at cluster scope"
    return '"%s" on "%s"%s' % (verb, resource, where)


def _status_message(body):
    """The ``message`` of a Kubernetes Status body, or a short text of the body."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        doc = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("reason") or "").strip()
    return ""


def _bypass_proxy(host, no_proxy):
    """Whether ``host`` (no port) matches a comma-separated no_proxy list."""
    if not no_proxy:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if addr is not None:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def _api_key_header(cfg):
    """The Authorization value a Configuration holds, refreshed by its hook if any.

    Client 37 keeps the token under ``BearerToken``, client 31 under ``authorization``, and
    their ``get_api_key_with_prefix`` signatures differ, so both keys are read here.
    """
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    for identifier in ("BearerToken", "authorization"):
        key = cfg.api_key.get(identifier)
        if key:
            prefix = cfg.api_key_prefix.get(identifier)
            return "%s %s" % (prefix, key) if prefix else key
    return None


def signals_to_the_main_thread():
    """Block SIGINT and SIGTERM in the calling thread (one the collection started), so that the
    kernel delivers them to the main thread: Python runs a signal's handler in the main thread
    only, and a main thread waiting for these threads would otherwise not wake up for it (an
    interrupted run, an Ansible worker told to stop, would wait for the calls in flight)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


class Settings:
    """The connection settings a K8sClient uses: the attributes of kubernetes' ``Configuration``
    it reads, with that class's defaults (a configuration read without the library)."""

    def __init__(self):
        self.host = "http://localhost"
        self.verify_ssl = True
        self.ssl_ca_cert = None
        self.cert_file = None
        self.key_file = None
        self.assert_hostname = None
        self.tls_server_name = None
        self.proxy = None
        self.no_proxy = None
        self.proxy_headers = None
        self.api_key = {}
        self.api_key_prefix = {}
        self.refresh_api_key_hook = None
        self.username = ""
        self.password = ""


# What read_kubeconfig reads; a kubeconfig with more (an exec plugin, an auth-provider,
# impersonation, a proxy-url, which only newer versions of the library honour...) in its
# context's user or cluster is left to the kubernetes library.
_USER_KEYS = frozenset(
    (
        "token",
        "tokenFile",
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "username",
        "password",
    )
)
_CLUSTER_KEYS = frozenset(
    (
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
    )
)


class NotRead(Exception):
    """read_kubeconfig leaves this kubeconfig to the kubernetes library."""


def _one_named(items, name):
    """The one dict of ``items`` called ``name`` (NotRead when there is none or several)."""
    found = [i for i in items if isinstance(i, dict) and i.get("name") == name]
    if len(found) != 1:
        raise NotRead()
    return found[0]


def _as_file(section, key, base, temp_files):
    """``key``'s file (relative to ``base``) or ``key-data`` (base64, written to a temporary
    file listed in ``temp_files``), the data first, as the kubernetes library reads them."""
    if key + "-data" in section:
        try:
            data = base64.standard_b64decode(section[key + "-data"])
        except (TypeError, ValueError, binascii.Error):
            raise NotRead() from None
        if not data:
            return None
        handle, name = tempfile.mkstemp(prefix="badgateway-k8s-")
        temp_files.append(name)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return name
    if key in section:
        path = os.path.normpath(os.path.join(base, str(section[key])))
        if not os.path.isfile(path):
            raise NotRead()  # the library says which file is missing
        return path
    return None


def read_kubeconfig(path, context, temp_files):
    """Settings from the kubeconfig file ``path`` (the ``context``, else its current one) when
    its user has a token (or token file), a client certificate, or a user name and password;
    None when the kubernetes library should read it instead (anything else, or anything
    unexpected: then the library's own message names the problem). The values are those the
    library would set; ``*-data`` is written to temporary files listed in ``temp_files``."""
    try:
        import yaml  # pylint: disable=import-outside-toplevel  # kubernetes' own dependency

        with open(path) as handle:
            # libyaml's parser when PyYAML has it (the same safe constructors, a tenth of the
            # CPU); a document it cannot read goes to the library below, as any other.
            doc = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if not isinstance(doc, dict):
            raise NotRead()
        ctx = _one_named(doc.get("contexts") or [], context or doc.get("current-context"))
        ctx = ctx.get("context")
        if not isinstance(ctx, dict):
            raise NotRead()
        cluster = _one_named(doc.get("clusters") or [], ctx.get("cluster")).get("cluster")
        users = (doc.get("users") or []) if ctx.get("user") else []
        named = [u for u in users if isinstance(u, dict) and u.get("name") == ctx["user"]]
        if len(named) > 1:
            raise NotRead()
        user = named[0].get("user") if named else {}
        if not isinstance(cluster, dict) or not isinstance(user, dict):
            raise NotRead()
        if set(user) - _USER_KEYS or set(cluster) - _CLUSTER_KEYS:
            raise NotRead()
        base = os.path.abspath(os.path.dirname(path))
        settings = Settings()
        if "server" in cluster:
            settings.host = str(cluster["server"]).rstrip("/")
            if settings.host.startswith("https"):
                settings.ssl_ca_cert = _as_file(cluster, "certificate-authority", base, temp_files)
                settings.cert_file = _as_file(user, "client-certificate", base, temp_files)
                settings.key_file = _as_file(user, "client-key", base, temp_files)
        token = user.get("token")
        if "token" not in user and "tokenFile" in user:
            token_file = os.path.normpath(os.path.join(base, str(user["tokenFile"])))
            with open(token_file) as handle:
                token = handle.read()
        if token:
            settings.api_key = {"authorization": "Bearer %s" % token}
        elif "username" in user and "password" in user:
            basic = base64.b64encode(
                ("%s:%s" % (user["username"], user["password"])).encode()
            ).decode()
            settings.api_key = {"authorization": "Basic " + basic}
        if "insecure-skip-tls-verify" in cluster:
            settings.verify_ssl = not cluster["insecure-skip-tls-verify"]
        if "tls-server-name" in cluster:
            settings.tls_server_name = cluster["tls-server-name"]
        return settings
    except Exception:  # pylint: disable=broad-except  # NotRead, or anything the library reports
        return None


class K8sClient:
    """Configured access to one API server; every call is bounded by ``request_timeout``.

    Threads may share one client: at most ``max_in_flight`` calls run at once (a slot is taken
    before a call starts and given back when it ends or is abandoned at its deadline), and
    ``stats`` counts what was asked and read: ``requests`` (GETs), ``execs``, ``bytes`` (response
    bodies and exec output).
    """

    def __init__(self, params):
        self.timeout = float(params.get("request_timeout") or DEFAULT_TIMEOUT)
        self.max_in_flight = max(1, int(params.get("max_in_flight") or DEFAULT_MAX_IN_FLIGHT))
        self._temp_files: list[str] = []
        self._library_temp_files = False
        try:
            self.config = self._load_configuration(params)
        except BaseException:
            self._remove_temp_files()
            raise
        self.host = self.config.host.rstrip("/")
        self._impersonate_user = params.get("impersonate_user")
        self._impersonate_groups = params.get("impersonate_groups") or []
        self._slots = threading.BoundedSemaphore(self.max_in_flight)
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "execs": 0, "bytes": 0}
        self._exec_ssl: ssl.SSLContext | None | bool = False  # False: not built yet
        self._pool = self._make_pool()

    def _count(self, kind, size):
        with self._lock:
            self.stats[kind] += 1
            self.stats["bytes"] += size

    # ----------------------------------------------------------------- configuration
    def _load_configuration(self, params):
        kubeconfig = params.get("kubeconfig")
        context = params.get("context")
        host = params.get("host")
        persist = bool(params.get("persist_config"))
        if isinstance(kubeconfig, dict):
            cfg = self._library_configuration("dict", kubeconfig, context, persist)
        elif kubeconfig:
            path = os.path.expanduser(str(kubeconfig))
            for part in path.split(os.pathsep):
                if not os.path.exists(part):
                    raise K8sError(
                        "kubeconfig file %s does not exist (option kubeconfig or "
                        "K8S_AUTH_KUBECONFIG)" % part
                    )
            cfg = self._file_configuration(path, kubeconfig, context, persist)
        elif not host:
            default = os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config"))
            if any(os.path.exists(p) for p in default.split(os.pathsep)):
                cfg = self._file_configuration(default, kubeconfig, context, persist)
            elif os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
                cfg = self._library_configuration("in-cluster", None, context, persist)
            else:
                raise K8sError(
                    "no Kubernetes configuration found: set kubeconfig (or "
                    "K8S_AUTH_KUBECONFIG / KUBECONFIG), or host with api_key (K8S_AUTH_HOST, "
                    "K8S_AUTH_API_KEY), or run inside a pod with a service account"
                )
        else:
            cfg = Settings()
        if host:
            cfg.host = host
        if params.get("api_key"):
            key = params["api_key"]
            cfg.api_key = {
                "authorization": key if key.lower().startswith("bearer ") else "Bearer " + key
            }
            cfg.api_key_prefix = {}
            cfg.refresh_api_key_hook = None
        if params.get("username") and params.get("password") is not None:
            token = base64.b64encode(
                ("%s:%s" % (params["username"], params["password"])).encode()
            ).decode()
            cfg.api_key = {"authorization": "Basic " + token}
            cfg.api_key_prefix = {}
            cfg.refresh_api_key_hook = None
        if params.get("validate_certs") is not None:
            cfg.verify_ssl = params["validate_certs"]
        for option, attr in (
            ("ca_cert", "ssl_ca_cert"),
            ("client_cert", "cert_file"),
            ("client_key", "key_file"),
        ):
            if params.get(option):
                if not os.path.exists(params[option]):
                    raise K8sError("%s file %s does not exist" % (option, params[option]))
                setattr(cfg, attr, params[option])
        if params.get("proxy"):
            cfg.proxy = params["proxy"]
        if params.get("no_proxy"):
            cfg.no_proxy = params["no_proxy"]
        if params.get("proxy_headers"):
            cfg.proxy_headers = urllib3.util.make_headers(
                **{k: v for k, v in params["proxy_headers"].items() if v is not None}
            )
        if not cfg.host or not urlsplit(cfg.host).hostname:
            raise K8sError(
                "the API server address is empty or invalid (%r): set host or a "
                "kubeconfig with a cluster server" % cfg.host
            )
        return cfg

    def _file_configuration(self, path, kubeconfig, context, persist):
        """A kubeconfig file (or several, ``os.pathsep``-separated) read: by read_kubeconfig
        when it can, else by the kubernetes library."""
        if os.pathsep not in path:
            settings = read_kubeconfig(path, context, self._temp_files)
            if settings is not None:
                return settings
        return self._library_configuration(path, kubeconfig, context, persist)

    def _library_configuration(self, source, kubeconfig, context, persist):
        """A configuration loaded by the kubernetes library: a kubeconfig file or dict
        (``source`` the path or ``"dict"``), or the in-cluster one (``"in-cluster"``)."""
        # pylint: disable=import-outside-toplevel  # only this needs the library, imported here
        from kubernetes.client.configuration import Configuration
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.config.incluster_config import load_incluster_config
        from kubernetes.config.kube_config import load_kube_config, load_kube_config_from_dict

        self._library_temp_files = True
        cfg = Configuration()
        try:
            if source == "dict":
                load_kube_config_from_dict(
                    kubeconfig, context=context, client_configuration=cfg, persist_config=False
                )
            elif source == "in-cluster":
                load_incluster_config(client_configuration=cfg)
            else:
                load_kube_config(
                    config_file=source,
                    context=context,
                    client_configuration=cfg,
                    persist_config=persist,
                )
        except ConfigException as exc:
            raise K8sError(
                "cannot load the Kubernetes configuration%s: %s"
                % (" (context %s)" % context if context else "", exc)
            ) from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise K8sError(
                "cannot read kubeconfig %s: %s: %s"
                % (
                    "(dict)" if isinstance(kubeconfig, dict) else kubeconfig,
                    exc.__class__.__name__,
                    exc,
                )
            ) from None
        return cfg

    def close(self):
        """Drop the pooled connections and remove the temporary files the configuration was
        written to (a kubeconfig's ``*-data``): an Ansible worker ends without running the exit
        handlers that would."""
        self._remove_temp_files()
        self._pool.clear()

    def _remove_temp_files(self):
        for name in self._temp_files:
            try:
                os.unlink(name)
            except OSError:
                pass
        del self._temp_files[:]
        if self._library_temp_files:
            from kubernetes.config import kube_config  # pylint: disable=import-outside-toplevel

            cleanup = getattr(kube_config, "_cleanup_temp_files", None)
            if cleanup is not None:
                cleanup()

    def _proxy_url(self):
        proxy = getattr(self.config, "proxy", None)
        if proxy and not _bypass_proxy(
            urlsplit(self.host).hostname or "", getattr(self.config, "no_proxy", None)
        ):
            return proxy
        return None

    def _tls(self):
        """The TLS settings of the API connection, once for both transports; None for http.

        ``verify`` and ``check_hostname`` (off without verification, or when the kubeconfig
        says ``assert_hostname: false``), and the file/name settings that are set: ``ca_certs``
        (only when verifying), ``cert_file``, ``key_file``, ``server_hostname``.
        """
        cfg = self.config
        if urlsplit(self.host).scheme != "https":
            return None
        verify = bool(cfg.verify_ssl)
        files = {
            "ca_certs": cfg.ssl_ca_cert if verify else None,
            "cert_file": cfg.cert_file,
            "key_file": cfg.key_file,
            "server_hostname": getattr(cfg, "tls_server_name", None),
        }
        return {
            "verify": verify,
            "check_hostname": verify and getattr(cfg, "assert_hostname", None) is not False,
            "files": {k: v for k, v in files.items() if v},
        }

    def _tls_kwargs(self):
        """The TLS settings in urllib3's spelling (PoolManager keyword arguments)."""
        tls = self._tls()
        if tls is None:
            return {}
        kwargs: dict[str, object] = {"cert_reqs": "CERT_REQUIRED" if tls["verify"] else "CERT_NONE"}
        kwargs.update(tls["files"])
        if not tls["check_hostname"]:
            kwargs["assert_hostname"] = False
        return kwargs

    def _shared_context(self, tls, context):
        """``context`` (a new SSLContext) with the CA and client certificate of ``tls`` (as
        ``_tls``) loaded once, to be shared by every connection of one transport: each new
        connection would otherwise build its own and read the files again (about 1 ms of CPU
        each). None, to leave it to the transport as before, when the system's CA store would
        be used (the transport knows where to find it) or a file cannot be loaded now (the
        transport then reports it on the connection, in its own words)."""
        files = tls["files"]
        if tls["verify"] and not files.get("ca_certs"):
            return None
        try:
            if tls["verify"]:
                context.load_verify_locations(cafile=files["ca_certs"])
            if files.get("cert_file"):
                context.load_cert_chain(files["cert_file"], files.get("key_file"))
        except (OSError, ValueError, ssl.SSLError):
            return None
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog:
            context.keylog_filename = keylog
        # check_hostname first: verify_mode cannot be CERT_NONE while it is on.
        context.check_hostname = tls["check_hostname"]
        context.verify_mode = ssl.CERT_REQUIRED if tls["verify"] else ssl.CERT_NONE
        return context

    def _pool_kwargs(self):
        """``_tls_kwargs`` for the pool, the CA and client certificate loaded once into an
        SSLContext shared by its connections when that can be done (``_shared_context``)."""
        kwargs = self._tls_kwargs()
        tls = self._tls()
        if tls is None:
            return kwargs
        context = self._shared_context(
            tls,
            urllib3.util.ssl_.create_urllib3_context(
                cert_reqs=ssl.CERT_REQUIRED if tls["verify"] else ssl.CERT_NONE
            ),
        )
        if context is not None:
            for name in ("ca_certs", "cert_file", "key_file"):
                kwargs.pop(name, None)
            kwargs["ssl_context"] = context
        return kwargs

    def _make_pool(self):
        kwargs = self._pool_kwargs()
        kwargs.update(num_pools=2, maxsize=max(4, self.max_in_flight), retries=False)
        if not self.config.verify_ssl:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        proxy = self._proxy_url()
        if proxy:
            return urllib3.ProxyManager(proxy, proxy_headers=self.config.proxy_headers, **kwargs)
        return urllib3.PoolManager(**kwargs)

    def _headers(self, accept="application/json"):
        headers = HTTPHeaderDict()
        headers["Accept"] = accept
        headers["User-Agent"] = "badgateway.k8s"
        with self._lock:  # a token refresh (exec plugin, auth-provider) runs once at a time
            auth = _api_key_header(self.config)
        if auth:
            headers["Authorization"] = auth
        elif self.config.username and self.config.password:
            headers.update(
                urllib3.util.make_headers(
                    basic_auth="%s:%s" % (self.config.username, self.config.password)
                )
            )
        if self._impersonate_user:
            headers["Impersonate-User"] = self._impersonate_user
        for group in self._impersonate_groups:
            headers.add("Impersonate-Group", group)
        return headers

    def connection(self):
        """How to talk to the API server as this client does, for another transport (the drift
        watch's long-lived watch streams): ``host``, ``tls`` (as ``_tls``), ``proxy`` (a URL
        or None) and ``headers`` (name, value pairs; a refreshed token each time)."""
        return {
            "host": self.host,
            "tls": self._tls(),
            "proxy": self._proxy_url(),
            "headers": list(self._headers().items()),
        }

    def error_for(self, status, body, verb, resource, namespace):
        """The K8sError of an answer with HTTP ``status`` to a call another transport made."""
        return self._error(status, body, verb, resource, namespace)

    # ----------------------------------------------------------------- HTTP
    def _error(self, status, body, verb, resource, namespace, name=None):
        detail = _status_message(body)
        suffix = " (API says: %s)" % detail if detail else ""
        if status == 401:
            return K8sError(
                "the API server at %s rejected the credentials (401 Unauthorized): check "
                "api_key / K8S_AUTH_API_KEY, username/password, the client certificate or the "
                "kubeconfig user%s" % (self.host, suffix),
                status,
            )
        if status == 403:
            return K8sError(
                "the credentials lack %s (403 Forbidden): grant it with a Role/RoleBinding "
                "or use other credentials%s" % (_describe(verb, resource, namespace), suffix),
                status,
            )
        if status == 404:
            what = '%s "%s"' % (resource, name) if name else resource
            where = ' in namespace "%s"' % namespace if namespace else ""
            return K8sNotFound("%s not found%s%s" % (what, where, suffix), status)
        return K8sError(
            "%s failed with HTTP %s%s" % (_describe(verb, resource, namespace), status, suffix),
            status,
        )

    def _unreachable(self, exc):
        reason = getattr(exc, "reason", None) or exc
        text = str(reason)
        if "[Errno" in text:
            text = text[text.index("[Errno") :]
        if isinstance(reason, urllib3.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return K8sError(
                "TLS with the Kubernetes API at %s failed: %s; set ca_cert "
                "(K8S_AUTH_SSL_CA_CERT) to the cluster's CA, or validate_certs=false "
                "to skip verification" % (self.host, text)
            )
        return K8sError(
            "cannot reach the Kubernetes API at %s: %s (request_timeout %gs); check "
            "host / kubeconfig / context and that the API server is running"
            % (self.host, text, self.timeout)
        )

    def _bounded(self, what, limit, call):
        """Run ``call()`` and return its value, but give up after ``limit`` seconds in all.

        urllib3's and websocket-client's timeouts bound each socket operation, not the call:
        an API server that sends its answer one byte a second never trips them. The call runs
        in a daemon thread; past the deadline the pool's idle connections are dropped and a
        K8sError names the call (the thread ends with its socket, or with the process).
        The call takes one of the ``max_in_flight`` slots first (waiting for calls that are
        bounded themselves) and gives it back when it ends or is abandoned: an abandoned call
        never holds a slot, so stuck calls cannot starve the ones after them.
        """
        box = {}

        def run():
            signals_to_the_main_thread()
            try:
                box["value"] = call()
            except BaseException as exc:  # pylint: disable=broad-except
                box["error"] = exc

        worker = threading.Thread(target=run, name="badgateway-k8s-call", daemon=True)
        with self._slots:
            worker.start()
            worker.join(limit)
        if worker.is_alive():
            self._pool.clear()
            raise K8sError(
                "%s timed out: no complete answer within %gs (request_timeout) from "
                "the API server at %s; check that it is healthy and reachable, or "
                "raise request_timeout" % (what, limit, self.host),
                status=None,
                timed_out=True,
            )
        if "error" in box:
            raise box["error"]
        return box["value"]

    def request(
        self,
        path,
        query=None,
        verb="get",
        resource="",
        namespace=None,
        name=None,
        accept="application/json",
        max_bytes=None,
    ):
        """GET ``path``; return ``(body_bytes, truncated)``; raise K8sError on any failure.

        ``verb``/``resource``/``namespace``/``name`` only describe the call for error messages
        (a 403 names exactly the permission that is missing). ``max_bytes`` bounds the read;
        ``request_timeout`` bounds the whole call: connect, headers and body.
        """
        what = "GET %s%s" % (
            path,
            " (%s)" % _describe(verb, resource, namespace) if resource else "",
        )
        return self._bounded(
            what,
            self.timeout,
            lambda: self._request(path, query, verb, resource, namespace, name, accept, max_bytes),
        )

    def _request(self, path, query, verb, resource, namespace, name, accept, max_bytes):
        url = self.host + path
        if query:
            url += "?" + urlencode(query, doseq=True)
        timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        try:
            resp = self._pool.request(
                "GET",
                url,
                headers=self._headers(accept),
                timeout=timeout,
                preload_content=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            truncated = False
            if max_bytes is None:
                body = resp.read()
            else:
                chunks, size = [], 0
                for chunk in resp.stream(65536):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        truncated = True
                        break
                body = b"".join(chunks)[:max_bytes]
        except urllib3.exceptions.HTTPError as exc:
            raise K8sError(
                "reading %s from %s failed: %s (request_timeout %gs)"
                % (path, self.host, exc, self.timeout)
            ) from None
        finally:
            resp.release_conn()
        self._count("requests", len(body))
        if resp.status >= 300:
            raise self._error(resp.status, body, verb, resource, namespace, name)
        return body, truncated

    def get_json(self, path, query=None, verb="get", resource="", namespace=None, name=None):
        """GET a JSON document."""
        body, _truncated = self.request(path, query, verb, resource, namespace, name)
        try:
            return json.loads(body)
        except ValueError:
            raise K8sError(
                "the API server at %s answered %s with something that is not JSON: %r"
                % (self.host, path, body[:200])
            ) from None

    # ----------------------------------------------------------------- typed helpers
    @staticmethod
    def _core_path(namespace, plural, name=None, sub=None):
        path = "/api/v1"
        if namespace:
            path += "/namespaces/" + quote(namespace, safe="")
        path += "/" + plural
        if name:
            path += "/" + quote(name, safe="")
        if sub:
            path += "/" + sub
        return path

    def list(
        self,
        api_prefix,
        plural,
        namespace=None,
        label_selector=None,
        resource=None,
        field_selector=None,
    ):
        """List a resource (following ``continue``); return the items."""
        path = api_prefix
        if namespace:
            path += "/namespaces/" + quote(namespace, safe="")
        path += "/" + plural
        query: dict[str, str | int] = {"limit": 500}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[dict] = []
        while True:
            doc = self.get_json(path, query, "list", resource or plural, namespace)
            items.extend(doc.get("items") or [])
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def list_pods(self, namespace, label_selector=None, field_selector=None):
        """Pods of a namespace, optionally by label and field selector (e.g.
        ``status.podIP=10.0.0.5``: the pods at one address, whatever else the namespace holds)."""
        return self.list(
            "/api/v1", "pods", namespace, label_selector, field_selector=field_selector
        )

    def list_services(self, namespace):
        """Services of a namespace."""
        return self.list("/api/v1", "services", namespace)

    def list_endpointslices(self, namespace, service=None):
        """EndpointSlices of a namespace, or of one Service (label kubernetes.io/service-name)."""
        selector = "kubernetes.io/service-name=%s" % service if service else None
        return self.list(
            "/apis/discovery.k8s.io/v1",
            "endpointslices",
            namespace,
            selector,
            resource="endpointslices.discovery.k8s.io",
        )

    def get_pod(self, namespace, name):
        """One pod (K8sNotFound if missing)."""
        return self.get_json(
            self._core_path(namespace, "pods", name), None, "get", "pods", namespace, name
        )

    def get_service(self, namespace, name):
        """One Service (K8sNotFound if missing)."""
        return self.get_json(
            self._core_path(namespace, "services", name), None, "get", "services", namespace, name
        )

    def namespace_exists(self, namespace):
        """True/False, or None when the credentials may not read namespaces."""
        try:
            self.get_json(
                self._core_path(None, "namespaces", namespace),
                None,
                "get",
                "namespaces",
                None,
                namespace,
            )
            return True
        except K8sNotFound:
            return False
        except K8sError as exc:
            if exc.status in (401, 403):
                return None
            raise

    def require_namespace(self, namespace):
        """Raise K8sError when ``namespace`` does not exist; else return namespace_exists's
        answer (True, or None when the credentials may not read namespaces).

        Called after a read found nothing (no pod matched, an object was not found), so that
        the message names the missing namespace instead of the missing object.
        """
        exists = self.namespace_exists(namespace)
        if exists is False:
            raise K8sError('namespace "%s" does not exist' % namespace)
        return exists

    def read_log(
        self,
        namespace,
        pod,
        container=None,
        tail_lines=None,
        since_seconds=None,
        limit_bytes=None,
        timestamps=True,
        previous=False,
    ):
        """Read a bounded pod log; return ``(text, bytes_read, truncated)``."""
        query: dict[str, str | int] = {"timestamps": "true" if timestamps else "false"}
        if container:
            query["container"] = container
        if tail_lines is not None:
            query["tailLines"] = int(tail_lines)
        if since_seconds is not None:
            query["sinceSeconds"] = int(since_seconds)
        if limit_bytes is not None:
            query["limitBytes"] = int(limit_bytes)
        if previous:
            query["previous"] = "true"
        body, truncated = self.request(
            self._core_path(namespace, "pods", pod, "log"),
            query,
            "get",
            "pods/log",
            namespace,
            pod,
            # kubectl's: kube-apiserver answers a log's errors as JSON Status objects and
            # refuses (406) an Accept of text/plain alone
            accept="application/json, */*",
            max_bytes=limit_bytes,
        )
        if limit_bytes is not None and len(body) >= int(limit_bytes):
            truncated = True
        return body.decode("utf-8", "replace"), len(body), truncated

    # ----------------------------------------------------------------- exec
    # websocket-client's (ssl's) names for the file settings of _tls.
    _SSLOPT_NAMES = {"cert_file": "certfile", "key_file": "keyfile"}

    def _ws_options(self):
        """The TLS settings (websocket-client's ``sslopt``) and the proxy for exec."""
        cfg = self.config
        tls = self._tls()
        sslopt = {}
        if tls is not None:
            sslopt = {
                "cert_reqs": ssl.CERT_REQUIRED if tls["verify"] else ssl.CERT_NONE,
                "check_hostname": tls["check_hostname"],
            }
            sslopt.update((self._SSLOPT_NAMES.get(k, k), v) for k, v in tls["files"].items())
        proxy = None
        proxy_url = self._proxy_url()
        if proxy_url:
            parts = urlsplit(proxy_url)
            proxy = {
                "host": parts.hostname,
                "port": parts.port or 80,
                "auth": (parts.username, parts.password or "") if parts.username else None,
                "no_proxy": [e.strip() for e in (cfg.no_proxy or "").split(",") if e.strip()],
            }
        return sslopt, proxy

    def _exec_context(self):
        """The SSLContext every exec of this client shares (``_shared_context``), built at the
        first exec; None for http, or to let websocket-client build one per exec as before."""
        with self._lock:
            if self._exec_ssl is False:
                tls = self._tls()
                self._exec_ssl = tls and self._shared_context(
                    tls, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                )
            return self._exec_ssl or None

    def exec(self, namespace, pod, argv, container=None, timeout=None, subprotocols=None):
        """Run ``argv`` (a list, no shell) in a pod's container; return an ExecResult.

        The command gets ``timeout`` seconds (default ``request_timeout``) from connect to the
        server's CLOSE. A non-zero exit is not an error here: look at ``rc``; ``rc`` is None
        with ``error`` set when the container could not start the command (e.g. the binary is
        missing: the runtime says so in the exec stream) or the stream timed out.
        Raises K8sError when the exec call itself failed: the API refused the upgrade (any
        HTTP status: 400 for a container that cannot run anything, 401, 403, 404, 500, ...),
        or the server could not be reached. Such an error says nothing about the pod.
        """
        if not argv or not all(isinstance(a, str) for a in argv):
            raise K8sError("exec needs a non-empty list of strings, got %r" % (argv,))
        query = [("command", a) for a in argv]
        if container:
            query.append(("container", container))
        query += [("stdin", "false"), ("stdout", "true"), ("stderr", "true"), ("tty", "false")]
        parts = urlsplit(self.host)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = "%s://%s%s?%s" % (
            scheme,
            parts.netloc,
            parts.path.rstrip("/") + self._core_path(namespace, "pods", pod, "exec"),
            urlencode(query),
        )
        headers = ["%s: %s" % (k, v) for k, v in self._headers("*/*").iteritems() if k != "Accept"]
        sslopt, proxy = self._ws_options()
        context = self._exec_context()
        if context is not None:
            sslopt = {
                "context": context,
                **{k: v for k, v in sslopt.items() if k == "server_hostname"},
            }
        limit = float(timeout if timeout is not None else self.timeout)
        call = "exec of `%s` in pod %s/%s%s" % (
            " ".join(argv)[:80],
            namespace,
            pod,
            " (container %s)" % container if container else "",
        )
        try:
            # run_exec bounds the stream by ``limit``; the grace covers a handshake that drips.
            result = self._bounded(
                call,
                limit + 2.0,
                lambda: run_exec(
                    url,
                    headers,
                    limit,
                    sslopt=sslopt,
                    proxy=proxy,
                    subprotocols=subprotocols or SUBPROTOCOLS,
                ),
            )
        except ExecHandshakeError as exc:
            error = self._error(exc.status, exc.body, "create", "pods/exec", namespace, pod)
            if exc.status == 403:
                raise K8sError(
                    "%s: %s; exec over WebSocket starts with a GET, so grant both "
                    '"get" and "create" on "pods/exec"' % (call, error),
                    403,
                ) from None
            raise error.__class__("%s: %s" % (call, error), exc.status) from None
        except ExecConnectError as exc:
            raise K8sError(
                "%s: cannot open exec via %s: %s (timeout %gs)" % (call, self.host, exc, limit)
            ) from None
        self._count("execs", len(result.stdout) + len(result.stderr))
        return result
