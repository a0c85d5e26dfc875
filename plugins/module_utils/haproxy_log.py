# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse HAProxy's configuration, its runtime API's server state and its HTTP log lines.

Pure Python (standard library only). HAProxy's HTTP log line (``option httplog``) names the
backend and the server, never the server's address: the address comes from the runtime API
(``show servers state``), which holds what the workers dial now. A line's termination state
(two letters: who ended the session, and in which phase) is mapped onto the signature IDs of
``nginx_log`` where the mechanism is the same:

* ``SC`` the server refused the connection (a TCP reset or an ICMP error) -> ``connect_refused``
* ``sC`` the connect timed out -> ``connect_timeout``
* ``SH`` the server closed or reset before a complete response header -> ``premature_close``
* ``sH`` the server did not answer within ``timeout server`` -> ``upstream_timeout``
* ``PH`` haproxy refused the server's response (invalid header, 502) -> ``invalid_header``
* ``SD`` / ``sD`` the server aborted or timed out sending the body -> ``reset`` /
  ``upstream_timeout``
* ``<NOSRV>`` (no server could take it: every server down or none resolved, 503 "no server
  available") -> ``no_live_upstreams``, a secondary line as nginx's ``no live upstreams`` is
* a client's abort or bad request (``C?``, ``c?``) -> ``client_closed`` / ``not_upstream``

Public API: :func:`parse_config`, :func:`parse_servers_state`, :func:`parse_log_line`,
:func:`summarize`, :data:`TERMINATION_SIGNATURES`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import collections
import datetime
import re
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.correlate import literal_address
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import k8s_name_info
from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import (
    ERROR_SIGNATURES,
    SECONDARY_SIGNATURES,
    parse_time,
    split_k8s_timestamp,
)

_HEADER = re.compile(r"^# configuration file (?P<path>.+):\s*$")
_SECTIONS = (
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "program",
    "http-errors",
    "ring",
    "mailers",
    "cache",
)

#: termination state (its first two letters) -> signature ID of nginx_log.SIGNATURES
TERMINATION_SIGNATURES = {
    "SC": "connect_refused",
    "sC": "connect_timeout",
    "SH": "premature_close",
    "sH": "upstream_timeout",
    "PH": "invalid_header",
    "SD": "reset",
    "sD": "upstream_timeout",
    "SL": "reset",
}


def _split_host_port(text):
    """``host:port`` / ``[v6]:port`` / ``ipv4@host:port`` -> (host, port or None)."""
    if "@" in text:
        text = text.split("@", 1)[1]
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.count(":") > 1:  # a bare IPv6 address, or ipv6:port written without brackets
        host, port = text, ""
    else:
        host, port = text, ""
    return host, int(port) if port.isdigit() else None


def parse_config(text, namespace=None, cluster_domain="cluster.local"):
    """The config text (``# configuration file PATH:`` headers before each file, as the adapter
    prints them) as ``{listen_ports, upstream_hosts, upstream_keepalive: [], error_logs,
    errors, sockets: [path or "ipv4@…"], files: [path]}``.

    ``upstream_hosts``: one per ``server`` line of a backend or listen section, in the shape of
    ``nginx_conf.upstream_hosts`` (``upstream`` the backend's name; ``runtime_resolved`` when
    the server or its ``default-server`` names ``resolvers``: haproxy then follows DNS at run
    time; without it a name is resolved once, at start or reload).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    files, path, lineno = [], "<input>", 0
    section, name = None, None
    defaults_resolvers = False
    backend_resolvers = {}
    servers, listen_ports, sockets, errors = [], set(), [], []
    for raw in text.splitlines():
        header = _HEADER.match(raw)
        if header:
            path, lineno = header.group("path") or "", 0
            files.append(path)
            continue
        lineno += 1
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        keyword = words[0]
        if keyword in _SECTIONS and not raw[:1].isspace():
            section, name = keyword, (words[1] if len(words) > 1 else None)
            continue
        where = "%s:%d" % (path, lineno) if path != "<input>" else None
        if section == "global" and keyword == "stats" and words[1:2] == ["socket"]:
            if len(words) > 2:
                sockets.append(words[2])
        elif section in ("frontend", "listen") and keyword == "bind" and len(words) > 1:
            for address in words[1].split(","):
                port = _split_host_port(address)[1]
                if port is not None:
                    listen_ports.add(port)
        elif keyword == "default-server" and "resolvers" in words:
            if section == "defaults":
                defaults_resolvers = True
            else:
                backend_resolvers[name] = True
        elif section in ("backend", "listen") and keyword in ("server", "server-template"):
            at = 2 if keyword == "server" else 3
            if len(words) <= at:
                errors.append("%s: %s without an address" % (where or path, keyword))
                continue
            host, port = _split_host_port(words[at])
            servers.append(
                {
                    "backend": name,
                    "server": words[1],
                    "host": host,
                    "port": port,
                    "resolvers": "resolvers" in words[at + 1 :],
                    "template": keyword == "server-template",
                    "file": where,
                }
            )
    hosts = []
    for server in servers:
        info = k8s_name_info(server["host"], namespace, cluster_domain)
        runtime = (
            server["resolvers"]
            or backend_resolvers.get(server["backend"], False)
            or defaults_resolvers
        )
        hosts.append(
            {
                "host": server["host"],
                "port": server["port"],
                "source": "upstream",
                "upstream": server["backend"],
                "runtime_resolved": bool(runtime),
                "service": info["service"] if info else None,
                "pod": info["pod"] if info else None,
                "file": server["file"],
            }
        )
    hosts.sort(key=lambda h: (h["upstream"] or "", h["host"], h["port"] or 0))
    return {
        "listen_ports": sorted(listen_ports),
        "upstream_hosts": hosts,
        "upstream_keepalive": [],
        "error_logs": {"files": [], "unreadable": []},
        "errors": errors,
        "sockets": sockets,
        "files": files,
    }


def parse_servers_state(text):
    """``show servers state`` (format 1) as ``[{backend, server, address: "IP:PORT" | None,
    fqdn: str | None, op_state: int | None, admin_state: int | None}]``; the columns are found
    by the header's names. A server without an address (``0.0.0.0``, ``::``: a
    ``server-template`` slot no DNS record filled, ``init-addr none``) has ``address`` None: it
    dials nothing. Raises ValueError when the text is not such a dump."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1" or len(lines) < 2 or not lines[1].startswith("#"):
        raise ValueError("not a 'show servers state' dump (format 1): %r" % (text or "")[:200])
    columns = lines[1].lstrip("#").split()
    out = []
    for line in lines[2:]:
        if line.startswith("#"):
            continue
        row = dict(zip(columns, line.split()))
        port = row.get("srv_port", "")
        if row.get("srv_addr") in ("0.0.0.0", "::"):
            row["srv_addr"] = None
        out.append(
            {
                "backend": row.get("be_name"),
                "server": row.get("srv_name"),
                "address": literal_address(
                    row.get("srv_addr"), int(port) if port.isdigit() else None
                ),
                "fqdn": None if row.get("srv_fqdn") in (None, "-") else row["srv_fqdn"],
                "op_state": int(row["srv_op_state"])
                if row.get("srv_op_state", "").isdigit()
                else None,
                "admin_state": int(row["srv_admin_state"])
                if row.get("srv_admin_state", "").isdigit()
                else None,
            }
        )
    return out


_LOG = re.compile(
    r"^(?P<client>\S+) \[(?P<date>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?)\] (?P<frontend>\S+) "
    r"(?P<backend>[^\s/]+)/(?P<server>\S+) (?P<timers>[-+\d/]+) (?P<status>-?\d+) (?P<bytes>\+?\d+) "
    r"\S+ \S+ (?P<term>\S{4}) "
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _local_date(text):
    """haproxy's accept date ``30/Nov/2026:09:42:19.028`` (taken as UTC) or None."""
    match = re.match(r"(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d+))?$", text)
    if not match or match.group(2) not in _MONTHS:
        return None
    day, _mon, year, hour, minute, second, frac = match.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    return datetime.datetime(
        int(year),
        _MONTHS[match.group(2)],
        int(day),
        int(hour),
        int(minute),
        int(second),
        micro,
        tzinfo=datetime.timezone.utc,
    )


def parse_log_line(line):
    """One HTTP log line as ``{time, client, frontend, backend, server, status, termination,
    signature, message}``, or None when it is not one (haproxy's own notices, a TCP log)."""
    stamp, rest = split_k8s_timestamp(line)
    match = _LOG.match(rest)
    if not match:
        return None
    term = match.group("term")
    server = match.group("server")
    status = int(match.group("status"))
    signature: str | None
    if server == "<NOSRV>" and term[:1] in ("S", "s", "-") and status >= 500:
        signature = "no_live_upstreams"
    elif term[:1] in ("C", "c"):
        signature = "client_closed" if term[1:2] in ("D", "H", "C", "Q") else "not_upstream"
    else:
        signature = TERMINATION_SIGNATURES.get(term[:2])
    when = parse_time(stamp) if stamp else _local_date(match.group("date"))
    return {
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None,
        "moment": when,
        "client": match.group("client"),
        "frontend": match.group("frontend"),
        "backend": match.group("backend"),
        "server": None if server.startswith("<") else server,
        "status": status,
        "termination": term,
        "signature": signature,
        "message": rest.strip(),
    }


def summarize(lines, servers, reload_time=None, max_errors=50):
    """The log lines with the runtime's servers (:func:`parse_servers_state`) as
    ``nginx_log.summarize``'s dict (the keys proxy_info reads).

    A line names its backend and server; the address is the one the runtime holds now, which
    is what the workers loaded at their start, so only lines since ``reload_time`` are
    attributed to it. Every server of the runtime is an ``upstream_addresses`` entry (the
    current workers dial it), with the count and signatures of its lines since the reload.
    """
    since = parse_time(reload_time) if reload_time else None
    by_name = {(s["backend"], s["server"]): s for s in servers}
    counts: collections.Counter[str] = collections.Counter()
    after_counts: collections.Counter[str] = collections.Counter()
    status: collections.Counter[str] = collections.Counter()
    status_after: collections.Counter[str] = collections.Counter()
    upstream_status: collections.Counter[str] = collections.Counter()
    per_address: dict[str, dict[str, t.Any]] = {}
    for server in servers:
        if server["address"]:
            per_address.setdefault(
                server["address"],
                {
                    "count": 0,
                    "first_seen": None,
                    "last_seen": None,
                    "signatures": collections.Counter(),
                },
            )
    errors, requests, requests_after, failed_reloads = [], 0, 0, 0
    for line in lines:
        entry = parse_log_line(line)
        if entry is None:
            # the master's own line when a reload could not load the config
            failed_reloads += "Loading failure!" in line
            continue
        requests += 1
        after = since is None or (entry["moment"] is not None and entry["moment"] >= since)
        code = str(entry["status"])
        status[code] += 1
        if after:
            requests_after += 1
            status_after[code] += 1
        signature = entry["signature"]
        if signature is None and entry["server"] and entry["termination"][:1] == "-":
            upstream_status[code] += 1  # the server answered; haproxy passed it on
        if signature is None:
            continue
        counts[signature] += 1
        if after:
            after_counts[signature] += 1
        server = by_name.get((entry["backend"], entry["server"]))
        address = server["address"] if server and after else None
        if address and signature in ERROR_SIGNATURES:
            slot = per_address[address]
            slot["count"] += 1
            slot["signatures"][signature] += 1
            slot["first_seen"] = slot["first_seen"] or entry["time"]
            slot["last_seen"] = entry["time"]
        if signature in ERROR_SIGNATURES or signature in SECONDARY_SIGNATURES:
            errors.append(
                {
                    "time": entry["time"],
                    "level": "error",
                    "signature": signature,
                    "message": entry["message"],
                    "upstream": address,
                    "server": "%s/%s" % (entry["backend"], entry["server"] or "<NOSRV>"),
                    "termination": entry["termination"],
                    "status": entry["status"],
                    "after_reload": after,
                }
            )
    return {
        "errors": errors[-max_errors:] if max_errors else errors,
        "counts": dict(sorted(counts.items())),
        "counts_after_reload": dict(sorted(after_counts.items())),
        "errors_after_reload": sum(n for s, n in after_counts.items() if s in ERROR_SIGNATURES),
        "secondary_after_reload": sum(
            n for s, n in after_counts.items() if s in SECONDARY_SIGNATURES
        ),
        "upstream_addresses": [
            {
                "address": address,
                "count": slot["count"],
                "count_after_reload": slot["count"],
                "first_seen": slot["first_seen"],
                "last_seen": slot["last_seen"],
                "after_reload": True,
                "signatures": dict(sorted(slot["signatures"].items())),
            }
            for address, slot in per_address.items()
        ],
        "access": {
            "requests": requests,
            "requests_after_reload": requests_after,
            "status_counts": dict(sorted(status.items())),
            "status_counts_after_reload": dict(sorted(status_after.items())),
            "upstream_status_counts": dict(sorted(upstream_status.items())),
        },
        "failed_reloads": failed_reloads,
        "reload_source": None,
        "reload_time": reload_time,
    }
