# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: run one command in a pod over the Kubernetes exec WebSocket.

Speaks the ``v5.channel.k8s.io`` and ``v4.channel.k8s.io`` subprotocols (the server picks;
client 31 era servers and proxies may only know v4). Every frame starts with a channel byte:
1 stdout, 2 stderr, 3 status (a JSON ``Status``), 255 (v5 only) "channel closed". The whole
exchange runs under one deadline; the exit code is read from the status without ever raising
on an odd status (empty, non-numeric cause, OCI runtime text).
"""

from __future__ import annotations

import json
import ssl
import time
import traceback
import typing as t

try:
    import websocket

    WEBSOCKET_IMPORT_ERROR = None
except ImportError:  # k8s_access turns this into missing_required_lib
    websocket = None  # type: ignore[assignment]  # checked through WEBSOCKET_IMPORT_ERROR
    WEBSOCKET_IMPORT_ERROR = traceback.format_exc()

SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, STATUS, CLOSE_CHANNEL = 1, 2, 3, 255
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024


class ExecHandshakeError(Exception):
    """The server refused the WebSocket upgrade; carries the HTTP status and body."""

    def __init__(self, status, body, message):
        super().__init__(message)
        self.status = status
        self.body = body


class ExecConnectError(Exception):
    """The exec endpoint could not be reached (refused, TLS failure, timeout)."""


def parse_exec_status(raw):
    """Read the exit code out of a channel-3 ``Status`` document.

    Returns ``(rc, error)``: ``rc`` is an int when the status states one (``Success`` is 0,
    ``NonZeroExitCode`` carries it in ``details.causes[reason=ExitCode].message``), else None;
    ``error`` is a human-readable text when the command did not run or the status is unusable
    (e.g. the OCI runtime message of a missing binary), else None. Never raises.
    """
    if raw is None or not raw.strip():
        return None, "the exec stream ended without a status (no exit code reported)"
    try:
        status = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return None, "unreadable exec status: %s" % text.strip()[:500]
    if not isinstance(status, dict):
        return None, "unreadable exec status: %s" % json.dumps(status)[:500]
    if status.get("status") == "Success":
        return 0, None
    message = str(status.get("message") or "").strip()
    details = status.get("details")
    details = details if isinstance(details, dict) else {}
    causes = details.get("causes")
    causes = causes if isinstance(causes, list) else []
    if status.get("reason") == "NonZeroExitCode":
        for cause in causes:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                value = str(cause.get("message", "")).strip()
                if value.lstrip("-").isdigit():
                    return int(value), None
                return None, "exit code is not a number: %r" % value[:200]
        return None, message or "NonZeroExitCode without an ExitCode cause"
    return None, message or "exec failed: %s" % json.dumps(status)[:500]


class ExecResult:
    """Outcome of one exec: ``rc`` (int or None), ``stdout``/``stderr`` (str), ``error``."""

    __slots__ = ("rc", "stdout", "stderr", "error", "timed_out", "truncated", "protocol")

    def __init__(self, rc, stdout, stderr, error, timed_out, truncated, protocol):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.error = error
        self.timed_out = timed_out
        self.truncated = truncated
        self.protocol = protocol

    @property
    def ok(self):
        """True when the command ran and exited 0."""
        return self.rc == 0

    def as_dict(self):
        """Plain-dict form for module results."""
        return {name: getattr(self, name) for name in self.__slots__}


def run_exec(
    url,
    headers,
    timeout,
    sslopt=None,
    proxy=None,
    subprotocols=SUBPROTOCOLS,
    max_output=DEFAULT_MAX_OUTPUT,
):
    """Open ``url`` (ws:// or wss://), collect stdout/stderr/status until CLOSE or ``timeout``.

    ``proxy``: dict with ``host``, ``port``, ``auth`` (tuple or None), ``no_proxy`` (list).
    Raises ExecHandshakeError (HTTP status on upgrade) or ExecConnectError; everything after
    the handshake ends in an ExecResult.
    """
    deadline = time.monotonic() + timeout
    options: dict[str, t.Any] = {
        "header": list(headers),
        "subprotocols": list(subprotocols),
        "sslopt": sslopt or {"cert_reqs": ssl.CERT_NONE},
        "enable_multithread": False,
    }
    if proxy:
        options.update(
            http_proxy_host=proxy["host"],
            http_proxy_port=proxy["port"],
            http_proxy_auth=proxy.get("auth"),
            http_no_proxy=proxy.get("no_proxy"),
            proxy_type="http",
        )
    try:
        ws = websocket.create_connection(url, timeout=timeout, **options)
    except websocket.WebSocketBadStatusException as exc:
        body = getattr(exc, "resp_body", None) or b""
        raise ExecHandshakeError(exc.status_code, body, str(exc)) from None
    except (OSError, websocket.WebSocketException) as exc:
        raise ExecConnectError(str(exc) or exc.__class__.__name__) from None
    out, err, status = bytearray(), bytearray(), None
    timed_out = truncated = False
    error = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ws.settimeout(remaining)
            try:
                opcode, frame = ws.recv_data_frame(control_frame=False)
            except websocket.WebSocketTimeoutException:
                timed_out = True
                break
            except websocket.WebSocketConnectionClosedException:
                break
            except (OSError, websocket.WebSocketException) as exc:
                error = "exec stream broke: %s" % (exc or exc.__class__.__name__)
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            data = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STATUS:
                status = (status or b"") + payload
            elif channel in (STDOUT, STDERR):
                target = out if channel == STDOUT else err
                room = max_output - len(target)
                if len(payload) > room:
                    truncated = True
                    payload = payload[:room]
                target.extend(payload)
            # channel 255 (v5 "channel closed") and resize acks carry nothing we need
    finally:
        protocol = ws.getsubprotocol()
        try:
            ws.close(timeout=0.5)
        except (OSError, websocket.WebSocketException):
            pass
    if timed_out:
        rc, error = None, "timed out after %ss" % _fmt_seconds(timeout)
    elif error is None:
        rc, error = parse_exec_status(status)
    else:
        rc = None
    return ExecResult(
        rc,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        error,
        timed_out,
        truncated,
        protocol,
    )


def _fmt_seconds(value):
    return ("%g" % value) if isinstance(value, float) else str(value)
