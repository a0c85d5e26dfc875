"""An app pod's HTTP server, standard library only, with scenario-set behaviour.

Run as ``python backend.py --lab DIR --config JSON``; the JSON holds ``ip`` and the
behaviour keys of an ``app:`` block (see docs/lab.md): ``status``, ``body``, ``delay``,
``close`` (read the request, close without answering), ``reset`` (answer with a TCP RST),
``tls_only`` (answer a plaintext request the way a TLS server does: an alert record, then
close), ``header_bytes`` (an oversized response header), ``keepalive_timeout`` (seconds an
idle keep-alive connection stays open), ``keepalive_race`` (the idle timer and the next
request cross: a request on a connection idle longer than ``keepalive_timeout`` gets a TCP
RST), ``listen`` (false: run without listening), ``accept`` (false: listen but never accept,
with the accept queue full, so new SYNs are dropped), ``listen_port`` (on the pod IP),
``exit_after``/``exit_code``, ``paths`` (a path prefix → the behaviour keys ``status``,
``body``, ``delay``, ``close``, ``reset``, ``header_bytes`` for requests under it; the longest
prefix wins), ``fail_percent``/``fail_status`` (that share of the requests, spread evenly and
the same on every run, is answered with ``fail_status``).

Each request is logged to stdout the way uvicorn logs it, so ``kubectl logs`` of an app pod
looks like an app's. ``--lab`` only puts the lab directory on the command line, so the lab can
find its processes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

# A TLS alert record (fatal, protocol_version): what a TLS-only server sends to plaintext.
TLS_ALERT = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
TLS_HELLO = b"<tls client hello>"
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 20\r\nconnection: close\r\n\r\nInvalid HTTP request"
)


def log(text: str) -> None:
    """One line on stdout, flushed (the runtime turns it into a CRI log record)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def read_request(conn: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """Read one request head (and a Content-Length body); returns (head, rest of buffer).

    A TLS ClientHello (a client speaking https:// to this plaintext server) is returned as
    the head ``TLS_HELLO`` at once, as an HTTP server rejects it without waiting for more.
    """
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
        if buf.startswith(b"\x16\x03"):
            return TLS_HELLO, b""
        if len(buf) > 1 << 20:
            return None, b""
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head, rest[length:]


def response(cfg: dict[str, Any], keep_alive: bool) -> bytes:
    """The bytes of one HTTP/1.1 response for the configured status and body."""
    status = cfg["status"]
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    body: bytes = cfg["body"].encode()
    headers = [
        f"HTTP/1.1 {status} {reason}",
        f"date: {formatdate(usegmt=True)}",
        "server: uvicorn",
        f"content-length: {len(body)}",
        "content-type: application/json",
    ]
    if cfg["header_bytes"]:
        headers.append("set-cookie: session=" + "x" * cfg["header_bytes"])
    headers.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


PER_REQUEST_KEYS = ("status", "body", "delay", "close", "reset", "header_bytes")
_served = itertools.count(1)
_served_lock = threading.Lock()


def behaviour_for(cfg: dict[str, Any], request_line: str, n: int) -> dict[str, Any]:
    """The behaviour of the ``n``-th request (1, 2, ...): its path's (longest prefix of
    ``paths``), then ``fail_percent``: request n fails when it crosses a multiple of 100 in
    n * percent, so failures are spread evenly and the same on every run."""
    parts = request_line.split(" ")
    path = parts[1] if len(parts) > 1 else "/"
    own = dict(cfg)
    prefixes = [p for p in cfg.get("paths") or {} if path.startswith(p)]
    if prefixes:
        own.update(cfg["paths"][max(prefixes, key=len)])
    percent = cfg.get("fail_percent") or 0
    if percent and int(n * percent // 100) != int((n - 1) * percent // 100):
        own.update(status=cfg.get("fail_status", 503), close=False, reset=False)
    return own


def serve_connection(conn: socket.socket, peer: tuple[str, int], cfg: dict[str, Any]) -> None:
    """Answer requests on one connection until it closes or stays idle too long."""
    buf = b""
    race = cfg.get("keepalive_race", False)
    served = 0
    try:
        while True:
            # With keepalive_race the connection is never closed while idle (the client would
            # see the FIN and drop it); the close is decided when the next request arrives.
            conn.settimeout(None if race else (cfg["keepalive_timeout"] or None))
            idle_since = time.monotonic()
            try:
                head, buf = read_request(conn, buf)
            except (TimeoutError, socket.timeout):
                return
            if head is None:
                return
            conn.settimeout(None)
            if race and served and time.monotonic() - idle_since > cfg["keepalive_timeout"]:
                # What the kernel answers to data on a socket the app has just closed.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                log(
                    f"INFO:     {peer[0]}:{peer[1]} - keep-alive connection idle for more than "
                    f"{cfg['keepalive_timeout']:g}s: closed as a request arrived"
                )
                return
            served += 1
            if head == TLS_HELLO:
                conn.sendall(BAD_REQUEST)
                log("WARNING:  Invalid HTTP request received.")
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            client = f"{peer[0]}:{peer[1]}"
            with _served_lock:
                number = next(_served)
            if cfg["tls_only"]:
                conn.sendall(TLS_ALERT)
                log(f"WARNING:  {client} - plaintext request on a TLS port, sent a TLS alert")
                return
            now = behaviour_for(cfg, request_line, number)
            if now["delay"]:
                time.sleep(now["delay"])
            if now["close"]:
                log(f'ERROR:    {client} - "{request_line}" closed without a response')
                return
            if now["reset"]:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                log(f'ERROR:    {client} - "{request_line}" connection reset')
                return
            lowered = head.lower()
            keep_alive = request_line.endswith("HTTP/1.1") and b"connection: close" not in lowered
            keep_alive = keep_alive or b"connection: keep-alive" in lowered
            conn.sendall(response(now, keep_alive))
            try:
                phrase = HTTPStatus(now["status"]).phrase
            except ValueError:
                phrase = ""
            log(f'INFO:     {client} - "{request_line}" {now["status"]} {phrase}'.rstrip())
            if not keep_alive:
                return
    except OSError:
        return
    finally:
        conn.close()


def block_accept_queue(sock: socket.socket, address: str, port: int) -> None:
    """Listen with a backlog of 0, fill the queue with our own connection, never accept.

    Linux drops a SYN to a listener whose accept queue is full (net.ipv4.tcp_abort_on_overflow
    = 0), so a client's connect() hangs until its own timeout: on loopback, this is what a
    NetworkPolicy that drops packets looks like to nginx. Never returns.
    """
    sock.listen(0)
    _filler = socket.create_connection((address, port), timeout=2)  # held open: it fills the queue
    log(f"INFO:     Uvicorn running on http://{address}:{port} (Press CTRL+C to quit)")
    log("WARNING:  not accepting connections (accept queue full): new connections hang")
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    """Bind, announce, serve until SIGTERM (or ``exit_after``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lab", required=True, help="the lab directory (for process bookkeeping only)"
    )
    parser.add_argument("--config", required=True, help="the behaviour, as JSON")
    args = parser.parse_args(argv)
    cfg = json.loads(args.config)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if cfg.get("exit_after") is not None:

        def _exit() -> None:
            time.sleep(cfg["exit_after"])
            log(f"ERROR:    exiting with code {cfg['exit_code']}")
            os._exit(cfg["exit_code"])

        threading.Thread(target=_exit, daemon=True).start()
    log(f"INFO:     Started server process [{os.getpid()}]")
    if not cfg["listen"]:
        log("INFO:     Application startup complete (not listening on any port).")
        while True:
            time.sleep(3600)
    address = cfg["ip"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, cfg["listen_port"]))
    if not cfg.get("accept", True):
        block_accept_queue(sock, address, cfg["listen_port"])
    sock.listen(128)
    log(
        f"INFO:     Uvicorn running on http://{address}:{cfg['listen_port']} (Press CTRL+C to quit)"
    )
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=serve_connection, args=(conn, peer, cfg), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
