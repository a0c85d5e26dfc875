# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse nginx error and access log lines and summarise a log stream.

Pure Python (standard library only). Errno values are matched by NUMBER, never by their
text: glibc writes ``(113: No route to host)``, musl ``(113: Host is unreachable)``.

Lines may carry the prefix the Kubernetes log API adds with ``timestamps=true``
(``2026-11-25T02:21:05.123456789Z <line>``); that time is UTC and is preferred over
nginx's own ``2026/11/25 02:21:05``, which is the container's local time (taken as UTC
when nothing better is known; ``time_source`` says which one was used).

Public API: :func:`parse_time`, :func:`format_time`, :func:`split_k8s_timestamp`,
:func:`parse_error_line`, :func:`parse_access_line`, :func:`parse_line`, :func:`line_time`,
:func:`parse_utc_offset`, :func:`lines_since`, :func:`merge_logs`, :func:`about_upstream`,
:func:`upstream_address`, :func:`summarize`, :data:`SIGNATURES`, :data:`ERROR_SIGNATURES`,
:data:`SECONDARY_SIGNATURES`, :data:`NOT_UPSTREAM_SIGNATURES`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import collections
import datetime
import functools
import heapq
import re

#: Signature IDs and what they mean. ``reload`` marks a successful (re)load (new workers
#: started), ``reload_signal`` a reload attempt (it may have failed: see ``host_not_found``).
#: A line counts as an upstream error only when nginx's own text says it is about an
#: upstream (:func:`about_upstream`); every other line keeps a signature of its own.
SIGNATURES = collections.OrderedDict(
    [
        ("connect_refused", "connect() failed (111: connection refused)"),
        ("connect_unreachable", "connect() failed (113 host / 101 network unreachable)"),
        ("connect_timeout", "timed out (110) while connecting to upstream"),
        ("connect_error", "connect() failed with another errno"),
        ("upstream_timeout", "upstream timed out (110) while sending or reading"),
        ("reset", "connection reset by peer (104) or broken pipe (32)"),
        ("premature_close", "upstream prematurely closed connection"),
        ("header_too_big", "upstream sent too big header"),
        ("invalid_header", "upstream sent an invalid or no valid HTTP header"),
        ("ssl_handshake", "SSL handshake to upstream failed"),
        ("ssl_verify", "upstream SSL certificate verify error / name mismatch"),
        ("dns_not_found", "X could not be resolved (runtime resolver)"),
        ("no_resolver", "no resolver defined to resolve X"),
        ("host_not_found", "[emerg] host not found in upstream (config load)"),
        ("other", "another line about an upstream at warn level or above"),
        (
            "no_live_upstreams",
            "secondary: no live upstreams (every server of the group is marked failed)",
        ),
        (
            "server_disabled",
            "secondary: upstream server temporarily disabled (max_fails reached)",
        ),
        ("client_closed", "client prematurely closed connection (499)"),
        ("resolver_error", "the resolver itself failed (while resolving)"),
        ("buffered", "a request body or upstream response buffered to a temporary file"),
        ("not_upstream", "a line at warn level or above about no upstream (file, client, rule)"),
        ("reload", "start worker processes: a (re)load took effect"),
        ("reload_signal", "reconfiguring / signal process started: a reload was requested"),
        ("info", "another line below warn level"),
    ]
)

#: Primary upstream errors: a request to an upstream failed (or the config could not load).
#: The only signatures counted as upstream errors (``errors_after_reload``,
#: ``health.upstream_errors``).
ERROR_SIGNATURES = frozenset(
    [
        "connect_refused",
        "connect_unreachable",
        "connect_timeout",
        "connect_error",
        "upstream_timeout",
        "reset",
        "premature_close",
        "header_too_big",
        "invalid_header",
        "ssl_handshake",
        "ssl_verify",
        "dns_not_found",
        "no_resolver",
        "host_not_found",
        "other",
    ]
)

#: Consequences of earlier failures, never a cause by themselves: nginx marks a server failed
#: after ``max_fails`` failed attempts (a connect or read error, or an answer that
#: ``proxy_next_upstream`` lists, such as ``http_502``) and then logs ``upstream server
#: temporarily disabled``; with every server of a group so marked it logs ``no live upstreams``
#: and answers 502 itself. Counted apart (``secondary_after_reload``), never as upstream errors.
SECONDARY_SIGNATURES = frozenset(["no_live_upstreams", "server_disabled"])

#: Lines about no upstream request: kept and counted under their own names, never as errors.
NOT_UPSTREAM_SIGNATURES = frozenset(["resolver_error", "buffered", "not_upstream", "info"])

# Signatures whose line names an upstream address nginx dialled.
_DIALLED = ERROR_SIGNATURES | SECONDARY_SIGNATURES | {"client_closed"}
# Lines only a worker process logs (it serves requests; the master never talks to upstreams).
_BY_WORKERS = _DIALLED

LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
_WARN = LEVELS.index("warn")

#: errno numbers (Linux, same in glibc and musl) that matter for upstream failures.
ERRNO_NAMES = {
    2: "ENOENT",
    3: "ESRCH",
    11: "EAGAIN",
    22: "EINVAL",
    24: "EMFILE",
    32: "EPIPE",
    98: "EADDRINUSE",
    99: "EADDRNOTAVAIL",
    101: "ENETUNREACH",
    103: "ECONNABORTED",
    104: "ECONNRESET",
    110: "ETIMEDOUT",
    111: "ECONNREFUSED",
    113: "EHOSTUNREACH",
}

MAX_LINE = 16384

_K8S_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")
_CRI_STREAM = re.compile(r"^(?:stdout|stderr) [FP] ")
_ERROR_LOG_TIME = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d$")
_ACCESS_LOG_TIME = re.compile(r"^\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+(?:%\w+)?$")
_UTC_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")
_ERROR_HEAD = re.compile(
    r"^(?P<date>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>[a-z]+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<cid>\d+) )?(?P<body>.*)$"
)
_STDERR_HEAD = re.compile(r"^nginx: \[(?P<level>[a-z]+)\] (?P<body>.*)$")
_CTX_FIELD = re.compile(
    r", (client|server|request|subrequest|upstream|host|referrer): "
    r'("(?:[^"\\]|\\.)*"|[^,]*)'
)
_ERRNO = re.compile(r"\((?P<errno>\d+): (?P<text>[^)]*)\)")
_CONNECT_TO = re.compile(r"connect\(\) to (?P<addr>\S+) failed")
_QUOTED = re.compile(r'"([^"]*)"')
_RESOLVE = re.compile(r"^(?P<name>\S+) could not be resolved")
_NO_RESOLVER = re.compile(r"no resolver defined to resolve (?P<name>\S+)")
_LIST_SEP = re.compile(r"\s*,\s*|\s+:\s+")
_URL = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<rest>.*)$", re.I)

_ACCESS = re.compile(
    r"^(?P<remote>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)"(?P<rest>.*)$'
)
_INGRESS_TAIL = re.compile(
    r"^ (?P<request_length>\d+) (?P<request_time>[\d.]+) \[(?P<upstream_name>[^\]]*)\] "
    r"\[(?P<alternative_upstream_name>[^\]]*)\] (?P<upstream>.*)$"
)


def parse_time(value):
    """Return an aware UTC ``datetime`` for a time string, or None if it is not one.

    Accepts RFC 3339 (any fraction length, ``Z`` or an offset), nginx's error log format
    ``2026/11/25 02:21:05`` (taken as UTC), the access log's ``25/Nov/2026:02:21:05 +0000``,
    a ``datetime`` (naive is taken as UTC) and None.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = re.match(
        r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
        r"(Z|z|[+-]\d\d:?\d\d)?$",
        text,
    )
    try:
        if match:
            year, month, day, hour, minute, second, frac, zone = match.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            tz = datetime.timezone.utc
            if zone and zone not in ("Z", "z"):
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = datetime.timezone(
                    sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
                )
            stamp = datetime.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                micro,
                tzinfo=tz,
            )
            return stamp.astimezone(datetime.timezone.utc)
        if _ERROR_LOG_TIME.match(text):
            return datetime.datetime.strptime(text, "%Y/%m/%d %H:%M:%S").replace(
                tzinfo=datetime.timezone.utc
            )
        if _ACCESS_LOG_TIME.match(text):
            return datetime.datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").astimezone(
                datetime.timezone.utc
            )
    except ValueError:
        return None
    return None


@functools.lru_cache(maxsize=4096)
def _slow_key(text):
    stamp = parse_time(text)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") if stamp else None


def _time_key(value):
    """A fixed-width UTC key ``YYYY-MM-DDTHH:MM:SS.ffffff`` that sorts like the time.

    Fast paths for the two formats met on every line (RFC 3339 ``...Z`` as the log API
    writes it, and nginx's ``YYYY/MM/DD HH:MM:SS``); anything else goes through
    :func:`parse_time` (cached: access-log times repeat within a second).
    """
    if isinstance(value, str):
        if (
            len(value) >= 20
            and value[-1] == "Z"
            and value[4] == "-"
            and value[10] == "T"
            and value[:4].isdigit()
            and value[11:13].isdigit()
        ):
            if len(value) == 20:
                return value[:19] + ".000000"
            if value[19] == "." and value[20:-1].isdigit():
                return value[:19] + "." + value[20:-1][:6].ljust(6, "0")
        elif (
            len(value) == 19
            and value[4] == "/"
            and value[13] == ":"
            and value[:4].isdigit()
            and value[17:].isdigit()
        ):
            return value[:10].replace("/", "-") + "T" + value[11:] + ".000000"
        return _slow_key(value)
    stamp = parse_time(value)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") if stamp else None


def _key_to_text(key):
    if key is None:
        return None
    return key[:19] + ("Z" if key.endswith(".000000") else key[19:] + "Z")


def format_time(value):
    """Format a time as an RFC 3339 UTC string (``...Z``, microseconds when non-zero)."""
    return _key_to_text(_time_key(value))


def _to_text(line):
    """Decode bytes (invalid UTF-8 replaced), strip the line end, cap the length."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    elif not isinstance(line, str):
        line = str(line)
    line = line.rstrip("\r\n")
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE]
    return line


def split_k8s_timestamp(line):
    """Split the Kubernetes ``timestamps=true`` prefix off a line.

    Returns ``(timestamp or None, rest)``; the timestamp is kept as written. A CRI log
    stream marker after it (``stderr F``), as in a node's container log file, is dropped.
    """
    line = _to_text(line)
    match = _K8S_TS.match(line)
    if not match:
        return None, line
    rest = line[match.end() :]
    cri = _CRI_STREAM.match(rest)
    if cri:
        rest = rest[cri.end() :]
    return match.group(1), rest


def upstream_address(url):
    """Return the peer address of an upstream URL as nginx logs it.

    ``http://10.0.0.5:8080/x`` → ``10.0.0.5:8080``; ``http://[fd00::5]:80/`` →
    ``[fd00::5]:80``; ``http://10.0.0.5/`` → ``10.0.0.5:80`` (scheme default port);
    ``http://backend_grp/x`` (``no live upstreams``) → ``backend_grp`` (the group name);
    ``http://unix:/run/app.sock:/x`` → ``unix:/run/app.sock``. None for an empty value.
    """
    if not url:
        return None
    match = _URL.match(url.strip())
    if match is None:
        return None
    scheme = (match.group("scheme") or "").lower()
    rest = match.group("rest")
    if rest.startswith("unix:"):
        path = rest[5:].split(":", 1)[0]
        return "unix:" + path
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return rest
        host = rest[: end + 1]
        tail = rest[end + 1 :]
        port = tail[1:].split("/", 1)[0] if tail.startswith(":") else ""
    else:
        hostport = rest.split("/", 1)[0]
        host, port = hostport.partition(":")[::2]
    if port.isdigit():
        return "%s:%s" % (host, port)
    if _is_ip(host.strip("[]")):
        default = {"https": "443", "grpcs": "443"}.get(scheme, "80")
        return "%s:%s" % (host, default)
    return host


def _is_ip(text):
    """True for a literal IPv4 or IPv6 address."""
    if _IPV4.match(text):
        return all(int(part) < 256 for part in text.split("."))
    return ":" in text and bool(_IPV6.match(text))


# Messages that name the upstream themselves, whatever the phase.
_UPSTREAM_MESSAGES = ("upstream ", "no live upstreams", "an upstream response")


def about_upstream(message, phase, upstream=None):
    """Whether an error-log message is about talking to an upstream, by nginx's own words.

    Yes when the message names the upstream (``upstream timed out``, ``upstream sent …``,
    ``upstream server temporarily disabled``, ``no live upstreams``, ``connect() to X
    failed``, ``host not found in upstream``), when its phase (the text after ``while``)
    does (``connecting to upstream``, ``SSL handshaking to upstream``, ``sending request
    to upstream``, ``reading response header from upstream``, ``reading upstream``) or is
    ``proxying upgraded connection``, and, for a line without a phase, when it resolves the
    name of a proxied host at run time (``could not be resolved``, ``no resolver defined``)
    or carries the ``upstream:`` context field. A phase about the client (``reading client
    request headers``, ``sending to client``), the resolver (``resolving``) or anything else
    (``logging request``) makes it a line about no upstream, whatever its fields.
    """
    if message.startswith(_UPSTREAM_MESSAGES) or message.startswith("connect() to "):
        return True
    if "host not found in upstream" in message or "upstream sent " in message:
        return True
    if phase:
        return "upstream" in phase or phase.startswith("proxying upgraded connection")
    if "could not be resolved" in message or "no resolver defined to resolve" in message:
        return True
    return bool(upstream)


def _classify(level, message, errno, phase, upstream=None):
    """Return the signature ID of an error-log message (``upstream``: its context field)."""
    connecting = phase == "connecting to upstream"
    if message.startswith("start worker processes"):
        return "reload"
    if (
        message.startswith("reconfiguring")
        or message.startswith("signal process started")
        or "(SIGHUP) received" in message
    ):
        return "reload_signal"
    if "host not found in upstream" in message:
        return "host_not_found"
    if "is buffered to a temporary file" in message:
        return "buffered"
    at_warn = level is not None and level in LEVELS and LEVELS.index(level) >= _WARN
    if phase and phase.startswith("resolving"):
        return "resolver_error" if at_warn else "info"
    if not about_upstream(message, phase, upstream):
        return "not_upstream" if at_warn else "info"
    if "client prematurely closed connection" in message:
        return "client_closed"
    if "could not be resolved" in message:
        return "dns_not_found"
    if "no resolver defined to resolve" in message:
        return "no_resolver"
    if message.startswith("no live upstreams"):
        return "no_live_upstreams"
    if message.startswith("upstream server temporarily disabled"):
        return "server_disabled"
    if "upstream sent too big header" in message:
        return "header_too_big"
    if (
        "upstream sent invalid" in message
        or "upstream sent no valid" in message
        or "upstream sent duplicate" in message
        or "upstream sent unexpected" in message
    ):
        return "invalid_header"
    if "upstream SSL certificate" in message:
        return "ssl_verify"
    if "SSL_do_handshake() failed" in message or phase == "SSL handshaking to upstream":
        return "ssl_handshake"
    if message.startswith("upstream prematurely closed connection"):
        return "premature_close"
    if message.startswith("upstream timed out") or (errno == 110 and connecting):
        return "connect_timeout" if connecting else "upstream_timeout"
    if message.startswith("connect() "):
        if errno == 111:
            return "connect_refused"
        if errno in (101, 113):
            return "connect_unreachable"
        if errno == 110:
            return "connect_timeout"
        return "connect_error"
    if errno in (104, 32) and phase and "upstream" in phase:
        return "reset"
    return "other" if at_warn else "info"


def _split_context(body):
    """Split ``message, client: …, server: …, …`` into (message, {field: value})."""
    start = body.find(", client: ")
    while start >= 0:
        fields = {}
        pos = start
        for match in _CTX_FIELD.finditer(body, start):
            if match.start() != pos:
                break
            value = match.group(2)
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = value[1:-1]
            fields[match.group(1)] = value
            pos = match.end()
        if "client" in fields and "server" in fields and pos == len(body):
            return body[:start], fields
        start = body.find(", client: ", start + 1)
    return body, {}


def parse_error_line(line):
    """Parse one nginx error-log line; return a dict, or None if it is not one.

    Accepts an optional Kubernetes timestamp prefix and the ``nginx: [emerg] …`` form nginx
    prints on stderr before its error log is open. Keys: ``kind`` ("error"), ``time``
    (RFC 3339 UTC), ``time_source`` ("k8s", "nginx" or None), ``nginx_time``, ``level``,
    ``pid``, ``tid``, ``cid`` (ints or None), ``message`` (without the context), ``errno``
    (int or None: for ``could not be resolved`` the resolver's code, 3 = not found),
    ``errno_text``, ``phase``, ``client``, ``server``, ``request``, ``upstream`` (URL),
    ``upstream_address`` ("IP:PORT", or the group/host name when nginx logs one),
    ``host``, ``name`` (the host name a DNS/config error is about), ``signature``.
    """
    return _parse_error_text(*split_k8s_timestamp(line))


def _parse_error_text(k8s_time, text, local_offset=0):
    head = _ERROR_HEAD.match(text) if text[:1].isdigit() else None
    if head:
        nginx_time = head.group("date")
        level = head.group("level")
        pid, tid = int(head.group("pid")), int(head.group("tid"))
        cid = int(head.group("cid")) if head.group("cid") else None
        body = head.group("body")
    else:
        head = _STDERR_HEAD.match(text)
        if not head:
            return None
        nginx_time, pid, tid, cid = None, None, None, None
        level = head.group("level")
        body = head.group("body")
    message, ctx = _split_context(body)
    errno = errno_text = None
    found = _ERRNO.search(message)
    if found:
        errno, errno_text = int(found.group("errno")), found.group("text")
    phase = None
    idx = message.rfind(" while ")
    if idx >= 0:
        phase = message[idx + 7 :]
    upstream = ctx.get("upstream")
    address = None
    target = _CONNECT_TO.search(message)
    if target:
        address = target.group("addr")
    elif upstream:
        address = upstream_address(upstream)
    name = None
    for pattern in (_RESOLVE, _NO_RESOLVER):
        hit = pattern.search(message)
        if hit:
            name = hit.group("name")
    if "host not found in upstream" in message:
        quoted = _QUOTED.search(message)
        name = quoted.group(1) if quoted else None
    if k8s_time:
        stamp, source = format_time(k8s_time), "k8s"
    elif nginx_time:
        stamp, source = _nginx_utc(nginx_time, local_offset), "nginx"
    else:
        stamp, source = None, None
    return {
        "kind": "error",
        "time": stamp,
        "time_source": source,
        "nginx_time": nginx_time,
        "level": level,
        "pid": pid,
        "tid": tid,
        "cid": cid,
        "message": message,
        "errno": errno,
        "errno_text": errno_text,
        "phase": phase,
        "client": ctx.get("client"),
        "server": ctx.get("server"),
        "request": ctx.get("request"),
        "upstream": upstream,
        "upstream_address": address,
        "host": ctx.get("host"),
        "name": name,
        "signature": _classify(level, message, errno, phase, upstream),
    }


def _split_list(value):
    """Split an nginx upstream variable (``a,b,c`` once joined) into its items; ``-`` → []."""
    if value == "-":
        return []
    return [item for item in value.split(",") if item and item != "-"]


def parse_access_line(line):
    """Parse one access-log line (``combined``, optionally ingress-nginx's upstreaminfo tail).

    Returns None for anything else. Keys: ``kind`` ("access"), ``time``, ``time_source``,
    ``remote_addr``, ``request``, ``status`` (int), ``bytes_sent``, ``referer``,
    ``user_agent``, and for the ingress-nginx format: ``request_length``, ``request_time``,
    ``upstream_name``, ``alternative_upstream_name``, ``upstream_addresses`` (list, every
    server tried), ``upstream_statuses`` (list of ints), ``upstream_status`` (the last one,
    int or None), ``req_id``.
    """
    return _parse_access_text(*split_k8s_timestamp(line))


def _parse_access_text(k8s_time, text):
    match = _ACCESS.match(text)
    if not match:
        return None
    stamp: str | None
    source: str | None
    if k8s_time:
        stamp, source = format_time(k8s_time), "k8s"
    else:
        stamp = format_time(match.group("time"))
        source = "nginx" if stamp else None
    sent = match.group("bytes")
    result: dict[str, object] = {
        "kind": "access",
        "time": stamp,
        "time_source": source,
        "remote_addr": match.group("remote"),
        "request": match.group("request"),
        "status": int(match.group("status")),
        "bytes_sent": int(sent) if sent.isdigit() else 0,
        "referer": match.group("referer"),
        "user_agent": match.group("agent"),
        "upstream_addresses": [],
        "upstream_statuses": [],
        "upstream_status": None,
    }
    tail = _INGRESS_TAIL.match(match.group("rest"))
    if tail:
        fields = _ingress_upstream_fields(tail.group("upstream"))
        if fields is not None:
            result.update(
                {
                    "request_length": int(tail.group("request_length")),
                    "request_time": float(tail.group("request_time")),
                    "upstream_name": tail.group("upstream_name"),
                    "alternative_upstream_name": tail.group("alternative_upstream_name"),
                }
            )
            result.update(fields)
    return result


def _ingress_upstream_fields(text):
    """Parse ``$upstream_addr $upstream_response_length $upstream_response_time
    $upstream_status $req_id``; each of the first four may be a list (``a, b``)."""
    if "," in text or " : " in text:
        text = _LIST_SEP.sub(",", text.strip())
    parts = text.split()
    if len(parts) != 5:
        return None
    statuses = [int(item) for item in _split_list(parts[3]) if item.isdigit()]
    return {
        "upstream_addresses": _split_list(parts[0]),
        "upstream_statuses": statuses,
        "upstream_status": statuses[-1] if statuses else None,
        "req_id": parts[4],
    }


def parse_line(line, local_offset=0):
    """Parse an error-log or access-log line; None when it is neither.

    ``local_offset``: minutes east of UTC of the clock nginx wrote its error-log times in (the
    container's local time; see :func:`parse_utc_offset`), for lines without a Kubernetes
    timestamp, such as those of an error log file.
    """
    k8s_time, text = split_k8s_timestamp(line)
    return _parse_error_text(k8s_time, text, local_offset) or _parse_access_text(k8s_time, text)


def _nginx_utc(nginx_time, local_offset=0):
    """An error-log time (the container's local time) as RFC 3339 UTC."""
    if not local_offset:
        return format_time(nginx_time)
    stamp = parse_time(nginx_time)
    if stamp is None:
        return None
    return format_time(stamp - datetime.timedelta(minutes=local_offset))


def parse_utc_offset(text):
    """Minutes east of UTC from ``date +%z``'s ``+0100`` / ``-0530`` (or ``+01:00``); None
    for anything else."""
    match = _UTC_OFFSET.match((text or "").strip())
    if not match:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return -minutes if match.group(1) == "-" else minutes


def line_time(line, local_offset=0):
    """The UTC time of a log line as a sortable key ``YYYY-MM-DDTHH:MM:SS.ffffff`` (None when
    it has none): its Kubernetes timestamp, else nginx's own (error log: the container's local
    time, ``local_offset`` minutes east of UTC; access log: ``$time_local`` with its offset)."""
    k8s_time, text = split_k8s_timestamp(line)
    if k8s_time:
        return _time_key(k8s_time)
    head = _ERROR_HEAD.match(text) if text[:1].isdigit() else None
    if head:
        return _time_key(_nginx_utc(head.group("date"), local_offset))
    access = _ACCESS.match(text)
    return _time_key(access.group("time")) if access else None


def lines_since(lines, since, local_offset=0):
    """The lines timed at or after ``since`` (RFC 3339 or a datetime); a line without a time
    goes with the line before it (kept at the start)."""
    since_key = _time_key(since)
    out, keep = [], True
    for line in lines:
        stamp = line_time(line, local_offset)
        if stamp is not None:
            keep = since_key is None or stamp >= since_key
        if keep:
            out.append(line)
    return out


def merge_logs(streams, local_offset=0):
    """Lines of several logs of one nginx, each in its own time order, as one stream in time
    order (a stable merge: a tie keeps the earlier stream's line first).

    ``streams``: iterables of lines, e.g. the container log (Kubernetes timestamps) and the
    error log files nginx writes (their own times, in the container's local time,
    ``local_offset`` minutes east of UTC). A line without a time keeps the place of the line
    before it in its stream. nginx's error-log times have whole seconds: within one second a
    file's line sorts before the container log's lines of that second.
    """

    def keyed(index, lines):
        last = ""
        for seq, line in enumerate(lines):
            last = line_time(line, local_offset) or last
            yield last, index, seq, line

    for _key, _index, _seq, line in heapq.merge(
        *(keyed(index, lines) for index, lines in enumerate(streams))
    ):
        yield line


def _peer_status(entry):
    """The ``$upstream_status`` a server gave: the last one not logged against a group name
    (nginx logs the group's name and 502 for ``no live upstreams``: no server answered)."""
    addresses, statuses = entry["upstream_addresses"], entry["upstream_statuses"]
    if len(addresses) != len(statuses):
        return entry["upstream_status"]
    for address, code in reversed(list(zip(addresses, statuses))):
        if address.startswith("unix:") or address.rpartition(":")[2].isdigit():
            return code
    return None


class _After:
    """Counters of what happened after the last reload, by one way of placing the reload."""

    def __init__(self):
        self.counts: collections.Counter[str] = collections.Counter()
        self.status: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.addresses: collections.Counter[str] = collections.Counter()

    def uncount(self, code):
        """Take back one request counted with status ``code``."""
        self.requests -= 1
        self.status[code] -= 1
        if self.status[code] <= 0:
            del self.status[code]

    def reset(self):
        self.counts, self.status, self.addresses = (
            collections.Counter(),
            collections.Counter(),
            collections.Counter(),
        )
        self.requests = 0


#: nginx's master names each worker it starts: ``start worker process 1234`` (notice level).
_STARTED_WORKER = re.compile(r"^start worker process (?P<pid>\d+)")
#: Lines waiting to be paired (a failed request's upstream line, an unpaired 5xx access line), kept
#: at most, oldest dropped first.
_MAX_PENDING = 4096
#: A failed request's last upstream line and its access line are written within this many seconds
#: of each other (the access line when the request ends, right after its last failure).
_PAIR_SECONDS = 2


@functools.lru_cache(maxsize=256)
def _second(key):
    """The whole UTC second of a :func:`_time_key` key, as a number."""
    return datetime.datetime.strptime(key[:19], "%Y-%m-%dT%H:%M:%S").timestamp()


def _near(one, other):
    return one is None or other is None or abs(_second(one) - _second(other)) <= _PAIR_SECONDS


class _Generations:
    """Which generation of workers a line belongs to, for placing lines around a reload.

    nginx's master starts the new workers (``start worker processes``, then ``start worker
    process PID`` for each) BEFORE it tells the old ones to stop; until they get that signal
    the old workers still accept requests on the shared listen sockets and log them, after the
    new generation's marker. An old worker's upstream line carries its PID and is placed by it.
    Its request's access line carries no PID: it is paired with the request's upstream line
    (same client and request line, a 5xx status, within :data:`_PAIR_SECONDS`; the error and
    access logs are two streams, so either may come first) and placed with it: the access line
    of a request an old worker failed is not after the reload either.
    """

    def __init__(self):
        self.started: set[int] = set()  # the workers the last marker started
        self.seen: set[int] = set()  # the workers that wrote since the last marker
        self.before: set[int] = set()  # the workers named or seen before the last marker
        self.marker = 0  # markers seen
        # failed requests whose access line was not read yet, and 5xx access lines no upstream
        # line was paired with yet: each oldest first, by time and by (client, request line);
        # a paired item is marked "done" and dropped from the other queue when it comes up
        self.requests: collections.deque[dict] = collections.deque()
        self.requests_by_key: dict[tuple, collections.deque[dict]] = {}
        self.answers: collections.deque[dict] = collections.deque()
        self.answers_by_key: dict[tuple, collections.deque[dict]] = {}
        self.open_conns: dict[tuple, dict] = {}  # (pid, connection) -> its failed request

    def new_marker(self):
        self.before.update(self.started, self.seen)
        self.started, self.seen = set(), set()
        self.marker += 1

    def note_started(self, message):
        found = _STARTED_WORKER.match(message)
        if found:
            self.started.add(int(found.group("pid")))

    def old_worker(self, pid):
        """True when a line by worker ``pid`` is known to be the last marker's old generation:
        not one it started, and a worker before it (the master logs the marker before it starts
        the new workers, the old ones may log in between) or not one of those it has named."""
        if pid is None or pid in self.started:
            return False
        return pid in self.before or bool(self.started)

    def note_worker(self, pid):
        self.seen.add(pid)

    @staticmethod
    def _add(queue, index, item):
        queue.append(item)
        index.setdefault(item["key"], collections.deque()).append(item)
        if len(queue) > _MAX_PENDING:
            queue.popleft()["done"] = True

    @staticmethod
    def _take(index, key, stamp):
        """The oldest item of ``key`` near ``stamp`` not taken yet (marked done), or None."""
        items = index.get(key)
        while items:
            item = items[0]
            if item["done"] or not _near(item["stamp"], stamp):
                items.popleft()  # taken, or too old to pair with this line or a later one
                continue
            items.popleft()
            item["done"] = True
            return item
        if items is not None:
            del index[key]
        return None

    def expire(self, stamp):
        """Forget what is too old to pair with a line of ``stamp`` (the log runs forward in
        time, so the oldest are first)."""
        if stamp is None:
            return
        for queue, index in (
            (self.requests, self.requests_by_key),
            (self.answers, self.answers_by_key),
        ):
            while queue and (queue[0]["done"] or not _near(queue[0]["stamp"], stamp)):
                item = queue.popleft()
                item["done"] = True
                conn = item.get("conn")
                if conn is not None and self.open_conns.get(conn) is item:
                    del self.open_conns[conn]
                keyed = index.get(item["key"])
                while keyed and keyed[0]["done"]:
                    keyed.popleft()
                if keyed is not None and not keyed:
                    del index[item["key"]]

    def failed_request(self, entry, stamp, after_marker, after_given):
        """A worker's upstream line: the 5xx access line already read that it pairs with (dict
        with ``code``, ``marker``, ``after_given``: where it was counted), or None (the line is
        kept for an access line that comes after it)."""
        if entry["pid"] is None or entry["cid"] is None or not entry["request"]:
            return None
        conn = (entry["pid"], entry["cid"])
        request = self.open_conns.get(conn)
        if request is not None and not request["done"]:
            request["stamp"] = stamp  # another try of the same request (proxy_next_upstream)
            return None
        key = (entry["client"], entry["request"])
        answer = self._take(self.answers_by_key, key, stamp)
        if answer is not None:
            return answer
        request = {
            "key": key,
            "conn": conn,
            "stamp": stamp,
            "after_marker": after_marker,
            "marker": self.marker,
            "after_given": after_given,
            "done": False,
        }
        self.open_conns[conn] = request
        self._add(self.requests, self.requests_by_key, request)
        return None

    def answer(self, entry, stamp):
        """A 5xx access line: the failed request it ends, as ``(after_marker, after_given)``, or
        None (the line is kept for an upstream line that comes after it)."""
        key = (entry["remote_addr"], entry["request"])
        request = self._take(self.requests_by_key, key, stamp)
        if request is None:
            return None
        conn = request["conn"]
        if self.open_conns.get(conn) is request:
            del self.open_conns[conn]
        return request["after_marker"] and request["marker"] == self.marker, request["after_given"]

    def keep_answer(self, entry, stamp, code, after_given):
        """Keep an unpaired 5xx access line, counted after the current marker (and after the
        given reload when ``after_given``), for an upstream line that comes after it."""
        item = {
            "key": (entry["remote_addr"], entry["request"]),
            "stamp": stamp,
            "code": code,
            "marker": self.marker,
            "after_given": after_given,
            "done": False,
        }
        self._add(self.answers, self.answers_by_key, item)


class _Address:
    """Running counters for one dialled upstream address."""

    __slots__ = ("count", "first_seen", "last_seen", "signatures")

    def __init__(self):
        self.count = 0
        self.first_seen = None
        self.last_seen = None
        self.signatures: collections.Counter[str] = collections.Counter()


def summarize(
    lines,
    since=None,
    reload_time=None,
    max_errors=50,
    max_addresses=1000,
    local_offset=0,
    worker_pids=None,
):
    """Summarise a stream of log lines without holding the whole log.

    ``lines``: any iterable of ``str`` or ``bytes`` (decoded as UTF-8, invalid bytes
    replaced), error and access lines interleaved with anything else (several logs of one
    nginx: :func:`merge_logs` first). ``since``: skip lines timed before it.
    ``local_offset``: see :func:`parse_line`.

    Where the last (re)load was: nginx's master logs ``start worker processes`` (notice
    level) each time new workers start, in the same stream and on the same clock as the
    error lines, so the last such line wins when the log has one. ``reload_time`` (e.g. the
    workers' start time read from /proc, which can be off by a second or more) is used
    when the log has none (error_log above notice, or the line is older than the window).
    With neither, every line counts as after the reload and ``reload_known`` is False.
    ``worker_pids`` (the current workers' PIDs, with ``reload_time``): a line only a worker
    logs (about an upstream) is after the reload exactly when a current worker wrote it; this
    places the lines of an error log file, whose times are whole seconds, that fall in the
    same second as the reload, and the lines old workers still write while they finish.
    With the log's marker the same holds without ``worker_pids``: the master names the workers
    it starts (``start worker process PID``), and an upstream line another worker writes after
    the marker is the old generation's (it still serves requests until it is told to stop,
    after the new workers started). An access line has no PID: when it finishes a request a
    worker logged an upstream line for (same client and request line), it is placed with that
    line (see :class:`_Generations`).

    Returns a dict: ``lines_read``, ``bytes_read``, ``error_lines``, ``access_lines``,
    ``skipped_lines`` (before ``since``), ``first_time``, ``last_time``, ``reload_time``
    (the one used), ``reload_source`` ("log", "argument" or None), ``log_reload_time``,
    ``argument_reload_time``, ``reload_known``, ``reloads`` (successful (re)loads seen),
    ``reload_attempts``, ``failed_reloads`` (attempts followed by ``[emerg]`` or by another
    attempt instead of new workers), ``counts`` and ``counts_after_reload`` ({signature: n},
    all lines), ``errors_after_reload`` (lines with an error signature, :data:`ERROR_SIGNATURES`),
    ``secondary_after_reload`` (lines with a secondary one, :data:`SECONDARY_SIGNATURES`),
    ``errors`` (the newest ``max_errors`` parsed error lines with an error signature, newest
    last, each with ``after_reload``: secondary lines never push a primary one out),
    ``upstream_addresses`` (sorted list of ``{address, count, count_after_reload, first_seen,
    last_seen, after_reload, signatures}``, from lines about an upstream),
    ``addresses_dropped``, ``unresolved_names`` (sorted), and ``access``: ``{requests,
    requests_after_reload, status_counts, status_counts_after_reload,
    upstream_status_counts (the last ``$upstream_status`` a server gave, per request: not
    the 502 nginx logs against the group's name for ``no live upstreams``),
    upstream_addresses: [{address, count, status_counts}]}``.
    """
    if lines is None or isinstance(lines, (str, bytes)) or not hasattr(lines, "__iter__"):
        raise TypeError(
            "summarize() needs an iterable of log lines (str or bytes), got %s; "
            "pass text.splitlines() or an open file" % type(lines).__name__
        )
    for name, value in (("since", since), ("reload_time", reload_time)):
        if value is not None and _time_key(value) is None:
            raise ValueError(
                "summarize(): %s=%r is not a time; give an RFC 3339 string such "
                "as 2026-11-25T02:21:05Z, or a datetime" % (name, value)
            )
    since_key = _time_key(since)
    given_key = _time_key(reload_time)
    current_pids = frozenset(worker_pids or ()) if given_key is not None else frozenset()
    counts: collections.Counter[str] = collections.Counter()
    by_marker, by_time = _After(), _After()
    errors: collections.deque[tuple[int, bool, bool, dict]] = collections.deque(
        maxlen=max(0, int(max_errors))
    )
    addresses: dict[str, _Address] = {}
    dropped = 0
    names = set()
    status: collections.Counter[str] = collections.Counter()
    upstream_status: collections.Counter[str] = collections.Counter()
    access_addresses: dict[str, collections.Counter[str]] = {}
    totals: collections.Counter[str] = collections.Counter()
    first_time = last_time = None
    marker_key = None
    marker_seq = -1
    generations = _Generations()
    pending_attempt = False

    for seq, raw in enumerate(lines):
        totals["lines"] += 1
        totals["bytes"] += len(raw) if isinstance(raw, (bytes, str)) else 0
        entry = parse_line(raw, local_offset)
        if entry is None:
            continue
        stamp = _time_key(entry["time"])
        if since_key is not None and stamp is not None and stamp < since_key:
            totals["skipped"] += 1
            continue
        if stamp is not None:
            first_time = first_time or stamp
            last_time = stamp
        after_given = given_key is None or stamp is None or stamp >= given_key
        by_worker = (
            entry["kind"] == "error"
            and entry["pid"] is not None
            and entry["signature"] in _BY_WORKERS
        )
        if current_pids and by_worker:
            # Only workers talk to upstreams; the current ones started at the last reload. The
            # PID places a line that nginx's whole-second time cannot (same second as the reload).
            after_given = entry["pid"] in current_pids
        # After the last marker, unless an old worker (not one it started) wrote it.
        after_marker = not (by_worker and generations.old_worker(entry["pid"]))
        if entry["kind"] == "access":
            totals["access"] += 1
            code = str(entry["status"])
            status[code] += 1
            if entry["status"] >= 500:
                # the end of a request a worker failed: placed with its upstream line
                generations.expire(stamp)
                placed = generations.answer(entry, stamp)
                if placed is not None:
                    after_marker, after_given = placed
                else:
                    generations.keep_answer(entry, stamp, code, after_given)
            for after, applies in ((by_marker, after_marker), (by_time, after_given)):
                if applies:
                    after.requests += 1
                    after.status[code] += 1
            answered = _peer_status(entry)
            if answered is not None:
                upstream_status[str(answered)] += 1
            for index, addr in enumerate(entry["upstream_addresses"]):
                slot = access_addresses.get(addr)
                if slot is None:
                    if len(access_addresses) >= max_addresses:
                        dropped += 1
                        continue
                    slot = access_addresses[addr] = collections.Counter()
                slot["count"] += 1
                statuses = entry["upstream_statuses"]
                if index < len(statuses):
                    slot[str(statuses[index])] += 1
            continue
        totals["error"] += 1
        signature = entry["signature"]
        if signature == "reload":
            pending_attempt = False
            totals["reloads"] += 1
            by_marker.reset()
            generations.new_marker()
            marker_seq, marker_key = seq, stamp
        elif signature == "reload_signal":
            if entry["message"].startswith("reconfiguring"):
                if pending_attempt:
                    totals["failed_reloads"] += 1
                pending_attempt = True
                totals["reload_attempts"] += 1
        elif pending_attempt and entry["level"] == "emerg":
            totals["failed_reloads"] += 1
            pending_attempt = False
        else:
            generations.note_started(entry["message"])
        if by_worker:
            generations.note_worker(entry["pid"])
            generations.expire(stamp)
            answer = generations.failed_request(entry, stamp, after_marker, after_given)
            if answer is not None:
                # its access line came first and was counted where it stood: not after the
                # reload if this request was not
                if not after_marker and answer["marker"] == generations.marker:
                    by_marker.uncount(answer["code"])
                if not after_given and answer["after_given"]:
                    by_time.uncount(answer["code"])
        counts[signature] += 1
        if after_marker:
            by_marker.counts[signature] += 1
        if after_given:
            by_time.counts[signature] += 1
        if entry["name"] and signature in ("dns_not_found", "no_resolver", "host_not_found"):
            names.add(entry["name"])
        addr = entry["upstream_address"]
        if addr and signature in _DIALLED:
            record = addresses.get(addr)
            if record is None and len(addresses) < max_addresses:
                record = addresses[addr] = _Address()
            if record is None:
                dropped += 1
            else:
                record.count += 1
                record.signatures[signature] += 1
                seen = entry["time"]
                record.first_seen = record.first_seen or seen
                record.last_seen = seen or record.last_seen
                if after_marker:
                    by_marker.addresses[addr] += 1
                if after_given:
                    by_time.addresses[addr] += 1
        if signature in ERROR_SIGNATURES:
            errors.append((seq, after_marker, after_given, entry))

    if marker_seq >= 0:
        after, source, reload_key = by_marker, "log", marker_key
    elif given_key is not None:
        after, source, reload_key = by_time, "argument", given_key
    else:
        after, source, reload_key = by_marker, None, None
    errors_list = []
    for seq, after_marker, after_given, entry in errors:
        flag = seq > marker_seq and after_marker if source in ("log", None) else after_given
        errors_list.append(dict(entry, after_reload=flag))
    return {
        "lines_read": totals["lines"],
        "bytes_read": totals["bytes"],
        "error_lines": totals["error"],
        "access_lines": totals["access"],
        "skipped_lines": totals["skipped"],
        "first_time": _key_to_text(first_time),
        "last_time": _key_to_text(last_time),
        "reload_time": _key_to_text(reload_key),
        "reload_source": source,
        "log_reload_time": _key_to_text(marker_key),
        "argument_reload_time": _key_to_text(given_key),
        "reload_known": source is not None,
        "reloads": totals["reloads"],
        "reload_attempts": totals["reload_attempts"],
        "failed_reloads": totals["failed_reloads"],
        "counts": dict(sorted(counts.items())),
        "counts_after_reload": dict(sorted(after.counts.items())),
        "errors_after_reload": sum(n for sig, n in after.counts.items() if sig in ERROR_SIGNATURES),
        "secondary_after_reload": sum(
            n for sig, n in after.counts.items() if sig in SECONDARY_SIGNATURES
        ),
        "errors": errors_list,
        "upstream_addresses": [
            {
                "address": addr,
                "count": slot.count,
                "count_after_reload": after.addresses[addr],
                "first_seen": slot.first_seen,
                "last_seen": slot.last_seen,
                "after_reload": after.addresses[addr] > 0,
                "signatures": dict(sorted(slot.signatures.items())),
            }
            for addr, slot in sorted(addresses.items())
        ],
        "addresses_dropped": dropped,
        "unresolved_names": sorted(names),
        "access": {
            "requests": totals["access"],
            "requests_after_reload": after.requests,
            "status_counts": dict(sorted(status.items())),
            "status_counts_after_reload": dict(sorted(after.status.items())),
            "upstream_status_counts": dict(sorted(upstream_status.items())),
            "upstream_addresses": [
                {
                    "address": addr,
                    "count": slot["count"],
                    "status_counts": dict(sorted((k, v) for k, v in slot.items() if k != "count")),
                }
                for addr, slot in sorted(access_addresses.items())
            ],
        },
    }


# ansible-playbook's own process imports this (with the action plugins) before it forks a worker
# per task and target: the first strptime imports _strptime and compiles a pattern per format
# (about 1 ms), done here once for the formats above, so each worker inherits them.
for _text, _format in (
    ("2000/01/01 00:00:00", "%Y/%m/%d %H:%M:%S"),
    ("01/Jan/2000:00:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z"),
    ("2000-01-01T00:00:00", "%Y-%m-%dT%H:%M:%S"),
):
    datetime.datetime.strptime(_text, _format)
