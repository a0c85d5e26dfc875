"""An app pod's HTTP server, standard library only, with scenario-set behaviour.

Run as ``python backend.py --lab DIR --config JSON``; the JSON holds ``ip`` and the
behaviour keys of an ``app:`` block (see docs/lab.md): ``status``, ``body``, ``delay``,
``close`` (read the request, close without answering), ``reset`` (answer with a TCP RST),
``tls_only`` (answer a plaintext request the way a TLS server does: an alert record, then
close), ``header_bytes`` (an oversized response header), ``keepalive_timeout`` (seconds an
idle keep-alive connection stays open), ``listen`` (false: run without listening),
``listen_port`` (on the pod IP), ``exit_after``/``exit_code``.

Each request is logged to stdout the way uvicorn logs it, so ``kubectl logs`` of an app pod
looks like an app's. ``--lab`` only puts the lab directory on the command line, so the lab can
find its processes.
"""

from __future__ import annotations

import argparse
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

# A TLS alert record (fatal, protocol_version): what a TLS-only server sends to plaintext.
TLS_ALERT = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
TLS_HELLO = b"<tls client hello>"
BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
               b"content-length: 20\r\nconnection: close\r\n\r\nInvalid HTTP request")


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


def response(cfg: dict, keep_alive: bool) -> bytes:
    """The bytes of one HTTP/1.1 response for the configured status and body."""
    status = cfg["status"]
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    body = cfg["body"].encode()
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


def serve_connection(conn: socket.socket, peer: tuple, cfg: dict) -> None:
    """Answer requests on one connection until it closes or stays idle too long."""
    buf = b""
    try:
        while True:
            conn.settimeout(cfg["keepalive_timeout"] or None)
            try:
                head, buf = read_request(conn, buf)
            except (TimeoutError, socket.timeout):
                return
            if head is None:
                return
            conn.settimeout(None)
            if head == TLS_HELLO:
                conn.sendall(BAD_REQUEST)
                log("WARNING:  Invalid HTTP request received.")
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            client = f"{peer[0]}:{peer[1]}"
            if cfg["tls_only"]:
                conn.sendall(TLS_ALERT)
                log(f"WARNING:  {client} - plaintext request on a TLS port, sent a TLS alert")
                return
            if cfg["delay"]:
                time.sleep(cfg["delay"])
            if cfg["close"]:
                log(f'ERROR:    {client} - "{request_line}" closed without a response')
                return
            if cfg["reset"]:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                log(f'ERROR:    {client} - "{request_line}" connection reset')
                return
            lowered = head.lower()
            keep_alive = request_line.endswith("HTTP/1.1") and b"connection: close" not in lowered
            keep_alive = keep_alive or b"connection: keep-alive" in lowered
            conn.sendall(response(cfg, keep_alive))
            try:
                phrase = HTTPStatus(cfg["status"]).phrase
            except ValueError:
                phrase = ""
            log(f'INFO:     {client} - "{request_line}" {cfg["status"]} {phrase}'.rstrip())
            if not keep_alive:
                return
    except OSError:
        return
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """Bind, announce, serve until SIGTERM (or ``exit_after``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True, help="the lab directory (for process bookkeeping only)")
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
    sock.listen(128)
    log(f"INFO:     Uvicorn running on http://{address}:{cfg['listen_port']} (Press CTRL+C to quit)")
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=serve_connection, args=(conn, peer, cfg), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
