"""A fault-injecting HTTPS proxy in front of the lab's Kubernetes API server.

``FaultProxy`` listens on ``127.0.0.1`` (a port the kernel picks) with a certificate the lab's
CA verifies, and forwards every request to the lab API (HTTPS, verifying the lab CA). Each
client connection carries exactly one request: the proxy asks the upstream for
``Connection: close`` and tells the client the same, so every request a client makes opens a
new connection and is matched against the rules on its own. Upgrades (``pods/exec`` over
WebSocket, or kubectl's SPDY fallback) are tunnelled byte for byte after the request head.

Rules are dicts, tried in order, first match wins; no match means pass through::

    {"path": r"/pods/[^/]+/log$", "action": "status", "code": 500}
    {"path": r"/pods/[^/]+/exec$", "action": "status", "code": 500}           # the upgrade too
    forbidden("web", "nginx-proxy-1")                                         # 403, RBAC words
    {"method": "GET", "action": "drip", "interval": 1}                        # slow API
    {"path": r"/pods$", "action": "hang"}
    {"path": r"/exec$", "query": {"command": r"^nginx -s reload$"}, "action": "close", "times": 1}

Match keys (all optional): ``method`` (a string or a list, any case), ``path`` (regex searched
in the URL path), ``query`` (param -> regex searched in its values joined by single spaces, so
``command=nginx&command=-s&command=reload`` reads ``"nginx -s reload"``; ``None`` means the param
is absent, ``True`` that it is present), ``upgrade`` (``True``: any upgrade, ``False``: none,
``"websocket"`` / ``"spdy"``: that kind). Counting keys: ``skip`` (let the first N matching
requests through first), ``times`` (fire at most N times, then the rule no longer matches),
``delay`` (seconds to wait before acting), ``name`` (shown in the request log).

Actions:

- ``pass``: forward (useful before a broader rule, or just to name requests in the log).
- ``status``: answer ``code`` (default 500) with a Kubernetes ``Status`` body: ``message``,
  ``reason`` (default from the code, e.g. ``InternalError``), ``details``. On an upgrade request
  this is a plain HTTP answer, not a 101, as a real API server refuses an upgrade.
- ``drip``: the real upstream answer's status line and headers at once, then the rest one byte
  every ``interval`` seconds (default 1). ``upstream: False`` drips a fake answer instead
  (``code`` default 200, ``body`` default a Status JSON padded with 64 KiB of spaces).
- ``drip_headers``: the same, but the head itself is dripped too.
- ``hang``: read the request, never answer (until the client or the proxy gives up).
- ``html``: a ``200 text/html`` login page (``code``, ``body`` to change it).
- ``close``: close the connection without answering.
- ``flood``: a ``200 text/plain`` answer of ``size`` bytes (default 1 GiB) made of ``line``
  repeated, sent as fast as the client reads it, whatever ``limitBytes`` asked: an API (or a
  proxy before it) that does not bound a huge log. Nothing is held in memory but one chunk.

Every request is recorded (``proxy.requests``: ``Seen`` records with method, path, query,
upgrade, matched rule, action and the status the client was sent), rules can be replaced while
the proxy runs (``set_rules``), and ``stop()`` ends every connection, drips and hangs included,
closes the port and joins the thread. Nothing here talks to anything but ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http
import itertools
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FaultProxy", "Rule", "Seen", "forbidden", "status_body", "ACTIONS"]

ACTIONS = ("pass", "status", "drip", "drip_headers", "hang", "html", "close", "flood")
_MATCH_KEYS = {"name", "method", "path", "query", "upgrade", "action", "times", "skip", "delay"}
_ACTION_KEYS = {
    "pass": set(),
    "status": {"code", "reason", "message", "details"},
    "drip": {"interval", "upstream", "code", "body"},
    "drip_headers": {"interval", "upstream", "code", "body"},
    "hang": set(),
    "html": {"code", "body"},
    "close": set(),
    "flood": {"size", "line"},
}
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MAX_HEAD = 64 * 1024
_UNSET = object()
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate SSO</title></head>\n"
    '<body><h1>Sign in</h1><form method="post" action="/login">'
    '<input name="username"><input name="password" type="password">'
    "<button>Sign in</button></form></body></html>\n"
)


def status_body(
    code: int, message: str | None = None, reason: str | None = None, details: dict | None = None
) -> dict:
    """A Kubernetes ``Status`` object for an error answer with HTTP ``code``."""
    reason = reason or _REASONS.get(code, "Unknown")
    if message is None:
        if code == 500:
            message = "Internal error occurred: injected by faultproxy"
        else:
            message = f"the server answered {code} ({reason}): injected by faultproxy"
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def forbidden(
    namespace: str,
    pod: str,
    resource: str = "pods/log",
    verb: str = "get",
    user: str = "diagnose-502",
    **match: Any,
) -> dict:
    """A rule answering 403 for one pod's ``resource``, in the words RBAC ``resourceNames`` give.

    ``forbidden("web", "nginx-proxy-1")`` refuses that pod's log; ``resource="pods/exec",
    verb="create"`` its exec. Extra keyword arguments are added to the rule (``times``...).
    """
    sub = resource.split("/", 1)[1] if "/" in resource else None
    path = rf"^/api/v1/namespaces/{re.escape(namespace)}/pods/{re.escape(pod)}" + (
        rf"/{re.escape(sub)}$" if sub else "$"
    )
    message = (
        f'pods "{pod}" is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "" in the namespace "{namespace}"'
    )
    rule = {
        "path": path,
        "action": "status",
        "code": 403,
        "message": message,
        "details": {"name": pod, "kind": "pods"},
    }
    rule.update(match)
    return rule


# ---------------------------------------------------------------- rules and the request log


@dataclass
class Seen:
    """One request the proxy received."""

    seq: int
    time: float
    method: str
    path: str
    query: dict[str, list[str]]
    upgrade: str | None
    rule: str | None  # the name of the rule that fired, None when none did
    action: str  # what the proxy did: "pass" when no rule fired
    status: int | None = None  # the status the client was sent (None: none, or not yet)

    @property
    def command(self) -> str:
        """The exec command as one string (``command`` params joined by spaces), or ''."""
        return " ".join(self.query.get("command", []))

    @property
    def container(self) -> str | None:
        values = self.query.get("container")
        return values[0] if values else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, vs in self.query.items() for v in vs)
        return (
            f"#{self.seq} {self.method} {self.path}{'?' + query if query else ''}"
            f"{' [upgrade ' + self.upgrade + ']' if self.upgrade else ''} -> {self.action}"
            f"{' (' + self.rule + ')' if self.rule else ''} {self.status if self.status is not None else '-'}"
        )


@dataclass
class Rule:
    """A compiled rule (see the module docstring); ``Rule.from_dict`` validates a dict."""

    name: str
    action: str
    options: dict[str, Any]
    methods: frozenset[str] | None = None
    path: re.Pattern | None = None
    query: dict[str, Any] = field(default_factory=dict)
    upgrade: bool | str | None = None
    times: int | None = None
    skip: int = 0
    delay: float = 0.0
    matched: int = 0  # requests that matched (skipped ones included)
    fired: int = 0  # requests the action was applied to

    @classmethod
    def from_dict(cls, spec: dict, index: int = 0) -> Rule:
        if not isinstance(spec, dict):
            raise ValueError(f"rule {index}: expected a mapping, got {spec!r}")
        action = spec.get("action", "pass")
        if action not in ACTIONS:
            raise ValueError(f"rule {index}: action {action!r} is not one of {', '.join(ACTIONS)}")
        unknown = set(spec) - _MATCH_KEYS - _ACTION_KEYS[action]
        if unknown:
            raise ValueError(
                f"rule {index}: unknown key(s) for action {action!r}: {', '.join(sorted(unknown))}"
            )
        methods = spec.get("method")
        if methods is not None:
            methods = frozenset(
                m.upper() for m in ([methods] if isinstance(methods, str) else methods)
            )
        query = {}
        for param, pattern in (spec.get("query") or {}).items():
            query[param] = (
                pattern if pattern is None or pattern is True else re.compile(str(pattern))
            )
        upgrade = spec.get("upgrade")
        if upgrade is not None and not isinstance(upgrade, (bool, str)):
            raise ValueError(
                f"rule {index}: upgrade must be true, false or a protocol name, got {upgrade!r}"
            )
        for key in ("times", "skip", "code"):
            if key in spec and (
                not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 0
            ):
                raise ValueError(
                    f"rule {index}: {key} must be a non-negative integer, got {spec[key]!r}"
                )
        for key in ("delay", "interval"):
            if key in spec and (not isinstance(spec[key], (int, float)) or spec[key] < 0):
                raise ValueError(
                    f"rule {index}: {key} must be a non-negative number, got {spec[key]!r}"
                )
        options = {k: v for k, v in spec.items() if k in _ACTION_KEYS[action]}
        return cls(
            name=str(spec.get("name") or f"rule {index}: {action}"),
            action=action,
            options=options,
            methods=methods,
            path=re.compile(spec["path"]) if spec.get("path") else None,
            query=query,
            upgrade=upgrade,
            times=spec.get("times"),
            skip=int(spec.get("skip", 0)),
            delay=float(spec.get("delay", 0)),
        )

    def matches(
        self, method: str, path: str, query: dict[str, list[str]], upgrade: str | None
    ) -> bool:
        """Whether the request matches (counters not considered)."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.path is not None and not self.path.search(path):
            return False
        for param, pattern in self.query.items():
            values = query.get(param)
            if pattern is None:
                if values is not None:
                    return False
            elif values is None:
                return False
            elif pattern is not True and not pattern.search(" ".join(values)):
                return False
        if self.upgrade is True and not upgrade:
            return False
        if self.upgrade is False and upgrade:
            return False
        if isinstance(self.upgrade, str) and not (upgrade or "").lower().startswith(
            self.upgrade.lower()
        ):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


def _compile(rules: Iterable[dict | Rule] | None) -> list[Rule]:
    return [r if isinstance(r, Rule) else Rule.from_dict(r, i) for i, r in enumerate(rules or [])]


# ---------------------------------------------------------------- HTTP heads


@dataclass
class _Head:
    first: str  # request or status line
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, raw: bytes) -> _Head:
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line {line!r}")
            headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers)

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def with_close(self) -> _Head:
        """The same head with ``Connection: close`` instead of any keep-alive headers."""
        drop = {"connection", "keep-alive", "proxy-connection"}
        return _Head(
            self.first,
            [(k, v) for k, v in self.headers if k.lower() not in drop] + [("Connection", "close")],
        )

    def encode(self) -> bytes:
        return (
            "\r\n".join([self.first] + [f"{k}: {v}" for k, v in self.headers]) + "\r\n\r\n"
        ).encode("latin-1")


def _upgrade_of(head: _Head) -> str | None:
    connection = (head.get("Connection") or "").lower()
    upgrade = head.get("Upgrade")
    if upgrade and "upgrade" in [t.strip() for t in connection.split(",")]:
        return upgrade
    return None


def _response(code: int, body: bytes, content_type: str) -> _Head:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    return _Head(
        f"HTTP/1.1 {code} {phrase}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache, private"),
            ("Connection", "close"),
        ],
    )


def _status_code(line: str) -> int | None:
    parts = line.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


# ---------------------------------------------------------------- the proxy


class FaultProxy:
    """The proxy on its own asyncio loop in a background thread.

    ``FaultProxy(upstream_url, ca_file, cert_file, key_file, rules)``; ``start()`` returns once it
    listens (``url``, ``port``), ``stop()`` ends everything. Also a context manager.
    """

    def __init__(
        self,
        upstream: str,
        ca_file: str | Path,
        cert_file: str | Path,
        key_file: str | Path,
        rules: Iterable[dict | Rule] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "https" or parts.hostname not in _LOOPBACK or not parts.port:
            raise ValueError(
                f"upstream must be https://127.0.0.1:PORT (loopback only), got {upstream!r}"
            )
        if host not in _LOOPBACK:
            raise ValueError(f"the proxy listens on loopback only, not {host!r}")
        self.upstream = upstream
        self._up_host, self._up_port = parts.hostname, parts.port
        self.host = host
        self.port: int | None = None
        self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ctx.load_cert_chain(str(cert_file), str(key_file))
        self._server_ctx.set_alpn_protocols(["http/1.1"])
        self._client_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._client_ctx.set_alpn_protocols(["http/1.1"])
        self._lock = threading.Lock()
        self._rules = _compile(rules)
        self._seen: list[Seen] = []
        self._seq = itertools.count(1)
        self.errors: list[str] = []  # unexpected exceptions in connection handlers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()

    # -------------------------------------------------------------- control (any thread)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the proxy is not started")
        return f"https://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("a FaultProxy is started once")
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="faultproxy", daemon=True
        )
        self._thread.start()
        self.port = ready.result(timeout=timeout)
        return self

    def stop(self, timeout: float = 10) -> None:
        """End every connection (drips and hangs too), close the port, join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if thread is None or not thread.is_alive():
            return
        if loop is not None and self._stop_event is not None:
            try:
                loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"faultproxy on port {self.port} did not stop within {timeout} s")

    def __enter__(self) -> FaultProxy:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_rules(self, rules: Iterable[dict | Rule] | None) -> None:
        """Replace the rules (counters start again); takes effect for the next request."""
        compiled = _compile(rules)
        with self._lock:
            self._rules = compiled

    def add_rule(self, rule: dict, first: bool = True) -> None:
        """Add one rule, in front of the others (``first``) or behind them."""
        with self._lock:
            compiled = Rule.from_dict(rule, 0 if first else len(self._rules))
            self._rules = [compiled, *self._rules] if first else [*self._rules, compiled]

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def fired(self, name: str) -> int:
        """How many times the rule named ``name`` fired."""
        return sum(r.fired for r in self.rules if r.name == name)

    @property
    def requests(self) -> list[Seen]:
        """Every request received so far (a copy), in order of arrival."""
        with self._lock:
            return list(self._seen)

    def clear_requests(self) -> None:
        with self._lock:
            self._seen.clear()

    def seen(self, **match: Any) -> list[Seen]:
        """The recorded requests that match rule-style keys (``method``, ``path``, ``query``,
        ``upgrade``) and optionally ``action`` / ``rule`` (a name) / ``status`` (``None``: the
        client got no status line)."""
        action, rule_name = match.pop("action", None), match.pop("rule", None)
        status = match.pop("status", _UNSET)  # status=None: requests that got no answer
        matcher = Rule.from_dict(dict(match))
        return [
            s
            for s in self.requests
            if matcher.matches(s.method, s.path, s.query, s.upgrade)
            and (action is None or s.action == action)
            and (rule_name is None or s.rule == rule_name)
            and (status is _UNSET or s.status == status)
        ]

    def execs(self, **match: Any) -> list[Seen]:
        """The recorded ``pods/exec`` requests (any method), filtered like ``seen``."""
        path = match.pop("path", None)
        found = self.seen(path=r"/pods/[^/]+/exec$", **match)
        return [s for s in found if path is None or re.search(path, s.path)]

    def wait_for(self, timeout: float = 30, **match: Any) -> Seen:
        """Block until a request matching ``seen``-style keys has been received; return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen(**dict(match))
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no request matching {match} within {timeout} s; saw:\n"
                    + "\n".join(map(str, self.requests))
                )
            time.sleep(0.05)

    def log(self) -> str:
        """The request log as text (for assertion messages)."""
        return "\n".join(map(str, self.requests)) or "(no request)"

    # -------------------------------------------------------------- the loop (proxy thread)

    def _run(self, ready: concurrent.futures.Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # noqa: B036 - reported to start() or kept for the test
            if not ready.done():
                ready.set_exception(exc)
            else:
                self.errors.append(f"proxy loop: {exc!r}")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _serve(self, ready: concurrent.futures.Future) -> None:
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._accept, self.host, 0, limit=_MAX_HEAD)
        try:
            ready.set_result(server.sockets[0].getsockname()[1])
            await self._stop_event.wait()
        finally:
            server.close()
            # Every other task of this loop is a connection (or one just accepted): end them all.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            if others:
                await asyncio.wait(others, timeout=5)
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await writer.start_tls(self._server_ctx, ssl_handshake_timeout=10)
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            pass
        except (
            ConnectionError,
            ssl.SSLError,
            asyncio.IncompleteReadError,
            asyncio.TimeoutError,
            OSError,
        ):
            pass
        except Exception as exc:  # a bug here must not pass silently
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    def _decide(
        self, method: str, path: str, query: dict, upgrade: str | None
    ) -> tuple[Seen, Rule | None]:
        with self._lock:
            chosen = None
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path, query, upgrade):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                rule.fired += 1
                chosen = rule
                break
            seen = Seen(
                next(self._seq),
                time.time(),
                method,
                path,
                query,
                upgrade,
                chosen.name if chosen else None,
                chosen.action if chosen else "pass",
            )
            self._seen.append(seen)
        return seen, chosen

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return  # the client went away before a request
        except asyncio.LimitOverrunError:
            await self._answer(writer, None, _response(431, b"", "text/plain"), b"")
            return
        head = _Head.parse(raw)
        parts = head.first.split(" ")
        if len(parts) != 3:
            raise ValueError(f"malformed request line {head.first!r}")
        method, target, _version = parts
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        upgrade = _upgrade_of(head)
        seen, rule = self._decide(method, unquote(split.path), query, upgrade)
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        action = rule.action if rule else "pass"
        options = rule.options if rule else {}
        if action == "pass":
            await self._forward(reader, writer, head, upgrade, seen)
        elif action == "status":
            code = options.get("code", 500)
            body = json.dumps(
                status_body(
                    code, options.get("message"), options.get("reason"), options.get("details")
                )
            ).encode()
            await self._drain_request(reader, head)
            await self._answer(writer, seen, _response(code, body, "application/json"), body)
        elif action == "html":
            body = str(options.get("body", LOGIN_PAGE)).encode()
            await self._drain_request(reader, head)
            await self._answer(
                writer,
                seen,
                _response(options.get("code", 200), body, "text/html; charset=utf-8"),
                body,
            )
        elif action == "close":
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
                pass
        elif action == "hang":
            await self._until_client_leaves(reader)
        elif action == "flood":
            await self._drain_request(reader, head)
            await self._flood(
                writer,
                seen,
                int(options.get("size", 1 << 30)),
                str(
                    options.get(
                        "line",
                        "2026-11-30T00:00:00.000000000Z 2026/11/30 00:00:00 [notice] 1#1: noise\n",
                    )
                ).encode(),
            )
        elif action in ("drip", "drip_headers"):
            interval = float(options.get("interval", 1.0))
            head_interval = interval if action == "drip_headers" else 0.0
            if options.get("upstream", True):
                await self._forward(reader, writer, head, upgrade, seen, head_interval, interval)
            else:
                code = options.get("code", 200)
                body = options.get("body")
                if body is None:
                    body = (
                        json.dumps(status_body(code, "dripped by faultproxy", "InternalError"))
                        + " " * 65536
                    )
                body = (
                    body
                    if isinstance(body, bytes)
                    else (
                        json.dumps(body) if isinstance(body, (dict, list)) else str(body)
                    ).encode()
                )
                seen.status = code
                answer = _response(code, body, "application/json")
                dripper = asyncio.ensure_future(
                    self._send(writer, answer.encode(), head_interval, body, interval)
                )
                watcher = asyncio.ensure_future(self._until_client_leaves(reader))
                await self._first_of(dripper, watcher)

    # -------------------------------------------------------------- actions

    @staticmethod
    async def _first_of(*tasks: asyncio.Future) -> None:
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, (ConnectionError, ssl.SSLError, OSError)):
                raise exc

    @staticmethod
    async def _until_client_leaves(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    @staticmethod
    async def _drain_request(reader: asyncio.StreamReader, head: _Head) -> None:
        """Read a Content-Length body (up to 1 MiB, 5 s), so that closing does not reset the client."""
        length = head.get("Content-Length")
        if length and length.isdigit() and 0 < int(length) <= 1 << 20:
            try:
                await asyncio.wait_for(reader.readexactly(int(length)), 5)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                pass

    @staticmethod
    async def _flood(writer: asyncio.StreamWriter, seen: Seen, size: int, line: bytes) -> None:
        seen.status = 200
        head = _response(200, b"", "text/plain; charset=utf-8")
        head.headers = [(k, str(size) if k == "Content-Length" else v) for k, v in head.headers]
        chunk = line * max(1, (1 << 20) // len(line))
        writer.write(head.encode())
        sent = 0
        try:
            while sent < size:
                piece = chunk[: size - sent]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except (ConnectionError, ssl.SSLError, OSError):
            pass  # the client stopped reading: as it should
        writer.close()

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        head: bytes,
        head_interval: float,
        body: bytes,
        interval: float,
    ) -> None:
        for data, pause in ((head, head_interval), (body, interval)):
            if pause:
                for i in range(len(data)):
                    writer.write(data[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(pause)
            else:
                writer.write(data)
                await writer.drain()

    async def _answer(
        self, writer: asyncio.StreamWriter, seen: Seen | None, head: _Head, body: bytes
    ) -> None:
        if seen is not None:
            seen.status = _status_code(head.first)
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: _Head,
        upgrade: str | None,
        seen: Seen,
        head_interval: float = 0.0,
        interval: float = 0.0,
    ) -> None:
        """Send the request upstream and tunnel both ways; the answer may be dripped."""
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._up_host,
                    self._up_port,
                    ssl=self._client_ctx,
                    server_hostname=self._up_host,
                    limit=_MAX_HEAD,
                ),
                10,
            )
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            body = json.dumps(
                status_body(
                    502,
                    f"faultproxy: cannot reach the lab API at {self.upstream}: {exc}",
                    "InternalError",
                )
            ).encode()
            await self._answer(writer, seen, _response(502, body, "application/json"), body)
            return
        try:
            up_writer.write((head if upgrade else head.with_close()).encode())
            await up_writer.drain()
            upstream = asyncio.ensure_future(self._pipe(reader, up_writer))
            downstream = asyncio.ensure_future(
                self._relay(up_reader, writer, upgrade, seen, head_interval, interval)
            )
            await self._first_of(upstream, downstream)
        finally:
            up_writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    async def _relay(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upgrade: str | None,
        seen: Seen,
        head_interval: float,
        interval: float,
    ) -> None:
        """Upstream answer → client: the head (Connection: close unless switching protocols),
        then the rest, one byte per ``interval`` when dripping."""
        while True:
            head = _Head.parse(await up_reader.readuntil(b"\r\n\r\n"))
            code = _status_code(head.first)
            if code is not None and 100 <= code < 200 and code != 101:
                writer.write(head.encode())  # 100 Continue and the like: the real answer follows
                await writer.drain()
                continue
            break
        seen.status = code
        if not (upgrade and code == 101):
            head = head.with_close()
        await self._send(writer, head.encode(), head_interval, b"", 0)
        while True:
            data = await up_reader.read(1 if interval else 65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if interval:
                await asyncio.sleep(interval)
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
