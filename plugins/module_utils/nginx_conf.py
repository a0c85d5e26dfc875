# -*- coding: utf-8 -*-
# Copyright (c) badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse ``nginx -T`` output and map upstream host names to Kubernetes Services.

Pure Python (standard library only). ``nginx -T`` prints every configuration file after a
``# configuration file PATH:`` header; ``include`` directives are NOT inlined there, so
they are expanded here by matching their pattern against the dumped paths.

Public API: :func:`split_files`, :func:`tokenize`, :func:`parse_config`,
:func:`parse_nginx_t`, :func:`error_log_kind`, :func:`error_log_plan`, :func:`k8s_name_info`,
:func:`service_for_host`, :func:`upstream_hosts`.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import fnmatch
import posixpath
import re

_HEADER = re.compile(r"^# configuration file (?P<path>.+):\s*$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SVC_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_SCHEME = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.*)$", re.I)
_MAX_INCLUDE_DEPTH = 16
# variables that only ever make up the URI part of a proxy_pass target
_URI_VARS = re.compile(r"\$\{?(?:request_uri|uri|document_uri|is_args|args|query_string)\b\}?")


class ConfigSyntaxError(ValueError):
    """Raised by :func:`tokenize` for input that is not text."""


def split_files(text):
    """Split ``nginx -T`` output into ``[(path, text)]`` in dump order.

    Lines before the first header (``nginx: the configuration file … syntax is ok``) are
    dropped. Text without any header is returned as one file named ``<input>``.
    """
    files = []
    path = None
    chunk: list[str] = []
    preamble: list[str] = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            if path is not None:
                files.append((path, "\n".join(chunk)))
            path = match.group("path")
            chunk = []
        elif path is None:
            preamble.append(line)
        else:
            chunk.append(line)
    if path is not None:
        files.append((path, "\n".join(chunk)))
    else:
        files.append(("<input>", "\n".join(preamble)))
    return files


def _lua_block(text, pos, line):
    """Skip a Lua block body starting after its ``{``; return (end position, line)."""
    depth = 1
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == "\n":
            line += 1
        elif char == "-" and text.startswith("--", pos):
            end = text.find("\n", pos)
            pos = length if end < 0 else end
            continue
        elif char in "\"'":
            pos += 1
            while pos < length and text[pos] != char and text[pos] != "\n":
                pos += 2 if text[pos] == "\\" else 1
        elif char == "[" and text.startswith("[[", pos):
            end = text.find("]]", pos + 2)
            line += text.count("\n", pos, length if end < 0 else end)
            pos = length if end < 0 else end + 2
            continue
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return pos + 1, line
        pos += 1
    return pos, line


def tokenize(text):
    """Yield ``(token, line, quoted)`` for nginx config text.

    Tokens are words, quoted strings (unescaped), and the specials ``;`` ``{`` ``}``.
    Comments (``#`` at the start of a token) are skipped. The body of a ``*_by_lua_block``
    is yielded as one directive ``<lua>;`` so Lua syntax cannot upset the parser.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ConfigSyntaxError("nginx configuration must be text, got %s" % type(text).__name__)
    pos, line, length = 0, 1, len(text)
    last_words: list[str] = []
    while pos < length:
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
        elif char.isspace():
            pos += 1
        elif char == "#":
            end = text.find("\n", pos)
            pos = length if end < 0 else end
        elif char in ";{}":
            if char == "{" and last_words and last_words[0].endswith("_by_lua_block"):
                yield "{", line, False
                start_line = line
                pos, line = _lua_block(text, pos + 1, line)
                yield "<lua>", start_line, False
                yield ";", start_line, False
                yield "}", line, False
                last_words = []
                continue
            yield char, line, False
            last_words = []
            pos += 1
        elif char in "\"'":
            start_line = line
            pos += 1
            out = []
            while pos < length and text[pos] != char:
                if text[pos] == "\\" and pos + 1 < length and text[pos + 1] in "\"'\\":
                    pos += 1
                if text[pos] == "\n":
                    line += 1
                out.append(text[pos])
                pos += 1
            pos += 1
            token = "".join(out)
            last_words.append(token)
            yield token, start_line, True
        else:
            start = pos
            while pos < length:
                cur = text[pos]
                if cur == "{" and pos > start and text[pos - 1] == "$":
                    end = text.find("}", pos)
                    pos = length if end < 0 else end + 1
                    continue
                if cur.isspace() or cur in ";{}\"'":
                    break
                pos += 1
            token = text[start:pos]
            last_words.append(token)
            yield token, line, False


def parse_config(text, path="<input>", errors=None):
    """Parse one file into a list of directives.

    Each directive is ``{name, args: [str], block: [directives] | None, file, line}``.
    Syntax problems (unbalanced braces, a missing ``;``) are appended to ``errors`` (a
    list) as readable strings; parsing continues as far as it can.
    """
    if errors is None:
        errors = []
    root: list[dict] = []
    stack = [root]
    words: list[str] = []
    first_line = None
    for token, line, quoted in tokenize(text):
        if token == ";" and not quoted:
            if words:
                stack[-1].append(
                    {
                        "name": words[0],
                        "args": words[1:],
                        "block": None,
                        "file": path,
                        "line": first_line,
                    }
                )
            words = []
        elif token == "{" and not quoted:
            if not words:
                errors.append("%s:%d: '{' without a directive name" % (path, line))
                words = ["<anonymous>"]
            block: list[dict] = []
            stack[-1].append(
                {
                    "name": words[0],
                    "args": words[1:],
                    "block": block,
                    "file": path,
                    "line": first_line or line,
                }
            )
            stack.append(block)
            words = []
        elif token == "}" and not quoted:
            if words:
                errors.append(
                    "%s:%d: directive %r is not terminated by ';'" % (path, line, words[0])
                )
                words = []
            if len(stack) == 1:
                errors.append("%s:%d: unexpected '}'" % (path, line))
            else:
                stack.pop()
        else:
            if not words:
                first_line = line
            words.append(token)
    if words:
        errors.append("%s: directive %r is not terminated by ';' at end of file" % (path, words[0]))
    if len(stack) > 1:
        errors.append("%s: %d block(s) not closed at end of file" % (path, len(stack) - 1))
    return root


def _expand_includes(directives, files, base_dir, errors, depth=0):
    """Replace ``include`` directives by the parsed directives of the matching files."""
    out = []
    for directive in directives:
        if directive["name"] == "include" and directive["block"] is None and directive["args"]:
            pattern = directive["args"][0]
            if not pattern.startswith("/"):
                pattern = posixpath.join(base_dir, pattern)
            matched = sorted(p for p in files if fnmatch.fnmatchcase(p, pattern))
            if depth >= _MAX_INCLUDE_DEPTH:
                errors.append(
                    "%s:%s: includes nested more than %d deep"
                    % (directive["file"], directive["line"], _MAX_INCLUDE_DEPTH)
                )
                continue
            for match in matched:
                files[match]["used"] = True
                out.extend(
                    _expand_includes(files[match]["tree"], files, base_dir, errors, depth + 1)
                )
            continue
        if directive["block"] is not None:
            directive = dict(
                directive,
                block=_expand_includes(directive["block"], files, base_dir, errors, depth),
            )
        out.append(directive)
    return out


def _walk(directives, context=()):
    """Yield ``(directive, context)`` for every directive, depth first."""
    for directive in directives:
        yield directive, context
        if directive["block"] is not None:
            yield from _walk(directive["block"], context + (directive["name"],))


def _error_logs(directives, context=(), block="main"):
    """Every ``error_log`` directive: ``{destination, level, context, block, file, line}``;
    ``block`` names the block holding it (``main``, or ``FILE:LINE`` of its directive)."""
    out = []
    for directive in directives:
        if directive["name"] == "error_log" and directive["block"] is None and directive["args"]:
            args = directive["args"]
            out.append(
                {
                    "destination": args[0],
                    "level": args[1] if len(args) > 1 else None,
                    "context": "/".join(context) or "main",
                    "block": block,
                    "file": directive["file"],
                    "line": directive["line"],
                }
            )
        elif directive["block"] is not None:
            out.extend(
                _error_logs(
                    directive["block"],
                    context + (directive["name"],),
                    "%s:%s" % (directive["file"], directive["line"]),
                )
            )
    return out


#: ``error_log`` destinations that are the container's own stdout/stderr: the container log.
STD_STREAMS = (
    "stderr",
    "/dev/stderr",
    "/dev/stdout",
    "/proc/self/fd/1",
    "/proc/self/fd/2",
    "/dev/fd/1",
    "/dev/fd/2",
)


def error_log_kind(destination):
    """``stderr`` (the container log), ``syslog``, ``memory`` (nginx's in-memory debug
    buffer), ``discarded`` (``/dev/null``) or ``file`` for an ``error_log`` destination."""
    if destination in STD_STREAMS:
        return "stderr"
    if destination.startswith("syslog:"):
        return "syslog"
    if destination.startswith("memory:"):
        return "memory"
    if destination == "/dev/null":
        return "discarded"
    return "file"


_UNREADABLE = {
    "syslog": "nginx sends these lines to syslog, which cannot be read from the pod",
    "memory": "nginx keeps these lines in a memory buffer, which cannot be read from the pod",
    "discarded": "nginx throws these lines away",
}


def error_log_plan(parsed):
    """Where the error lines of the HTTP server go, and what can be read of them.

    ``parsed`` is :func:`parse_nginx_t`'s result. Returns ``{files: [{path, where}],
    unreadable: [str]}``: ``files`` are the error log files to read (``path`` as written;
    ``""`` for nginx's compiled-in error log, used when the main context sets none; ``where``
    is ``FILE:LINE`` of the directive, or ``built-in``), each once; ``unreadable`` says, per
    block, why its lines cannot be read when none of its ``error_log`` destinations can be
    (syslog, nginx's memory buffer, ``/dev/null``: nginx writes a line to every destination of
    the block, so one readable destination is enough). ``stream`` and ``mail`` blocks are left
    out: they are not the HTTP server's.
    """
    logs = [
        log
        for log in (parsed or {}).get("error_logs") or []
        if not log["context"].startswith(("stream", "mail"))
    ]
    if not any(log["context"] == "main" for log in logs):
        logs.insert(
            0,
            {
                "destination": "",
                "level": None,
                "context": "main",
                "block": "main",
                "file": "built-in",
                "line": None,
            },
        )
    files: dict[str, str] = {}
    readable_blocks = set()
    for log in logs:
        kind = error_log_kind(log["destination"]) if log["destination"] else "file"
        if kind in ("stderr", "file"):
            readable_blocks.add(log["block"])
        if kind == "file":
            where = log["file"] if log["line"] is None else "%s:%s" % (log["file"], log["line"])
            files.setdefault(log["destination"], where)
    unreadable = [
        "error_log %s (%s:%s): %s"
        % (
            log["destination"],
            log["file"],
            log["line"],
            _UNREADABLE[error_log_kind(log["destination"])],
        )
        for log in logs
        if log["destination"]
        and error_log_kind(log["destination"]) in _UNREADABLE
        and log["block"] not in readable_blocks
    ]
    return {
        "files": [{"path": path, "where": where} for path, where in files.items()],
        "unreadable": unreadable,
    }


def _split_host_port(text):
    """Split ``host[:port]`` (IPv6 in brackets); port is an int or None."""
    if text.startswith("["):
        end = text.find("]")
        host = text[: end + 1] if end >= 0 else text
        rest = text[end + 1 :] if end >= 0 else ""
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, port = text.partition(":")[::2]
    return host, int(port) if port.isdigit() else None


def _parse_target(raw, upstream_names, set_values):
    """Describe a ``proxy_pass``/``grpc_pass`` argument."""
    match = _SCHEME.match(raw)
    scheme = match.group("scheme").lower() if match else None
    rest = match.group("rest") if match else raw
    hostport = rest.split("/", 1)[0] if not rest.startswith("unix:") else rest
    hostport = _URI_VARS.sub("", hostport)
    variables = sorted({a or b for a, b in _VAR.findall(hostport)})
    resolved_via_set = None
    if variables:
        substituted: str | None = hostport
        for var in variables:
            values = set_values.get(var, set())
            if len(values) != 1:
                substituted = None
                break
            value = next(iter(values))
            substituted = (
                (substituted or "").replace("${%s}" % var, value).replace("$" + var, value)
            )
        resolved_via_set = substituted
    effective = resolved_via_set or hostport
    if effective.startswith("unix:"):
        host, port = effective, None
    else:
        host, port = _split_host_port(effective)
    group = None
    if not variables and port is None and host in upstream_names:
        group = host
    if port is None and group is None and not host.startswith("unix:") and "$" not in host:
        port = {"https": 443, "grpcs": 443, "grpc": 80}.get(scheme or "http", 80)
    return {
        "target": raw,
        "scheme": scheme,
        "host": host,
        "port": port,
        "upstream": group,
        "variables": sorted({a or b for a, b in _VAR.findall(raw)}),
        "runtime_resolved": "$" in raw,
        "resolved_via_set": resolved_via_set is not None,
    }


def _listen_port(args):
    """Return the port of a ``listen`` directive, or None (unix socket)."""
    if not args:
        return None
    addr = args[0]
    if addr.startswith("unix:"):
        return None
    if addr.isdigit():
        return int(addr)
    if addr.startswith("["):
        port = _split_host_port(addr)[1]
        return port if port is not None else 80
    if ":" in addr:
        port = addr.rsplit(":", 1)[1]
        return int(port) if port.isdigit() else None
    return 80


def parse_nginx_t(text):
    """Parse ``nginx -T`` output (or a single config file's text).

    Returns ``{files: [path], upstreams: [{name, context, servers: [{host, port, params,
    file, line}], zone, keepalive (idle connections cached per worker, or None),
    keepalive_timeout (as written; nginx's default "60s" when keepalive is set), file, line}],
    proxy_passes: [{target, scheme, host, port, upstream,
    variables, runtime_resolved, resolved_via_set, directive, context, file, line}],
    resolvers: [{addresses, params, file, line}], has_resolver, listen_ports: [int],
    server_names: [str], error_logs: [{destination, level, context, block, file, line}],
    errors: [str]}``. Never raises for text input; syntax problems are reported in
    ``errors``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ConfigSyntaxError("nginx -T output must be text, got %s" % type(text).__name__)
    errors: list[str] = []
    dumped = split_files(text)
    files = {}
    for path, body in dumped:
        files[path] = {"tree": parse_config(body, path, errors), "used": False}
    main_path = dumped[0][0]
    base_dir = posixpath.dirname(main_path) if main_path.startswith("/") else ""
    files[main_path]["used"] = True
    tree = _expand_includes(files[main_path]["tree"], files, base_dir, errors)
    for path, _body in dumped:
        if not files[path]["used"]:
            tree.extend(files[path]["tree"])

    upstreams, proxy_passes, resolvers = [], [], []
    listen_ports: set[int] = set()
    server_names: set[str] = set()
    set_values: dict[str, set[str]] = {}
    for directive, _context in _walk(tree):
        if directive["name"] == "set" and len(directive["args"]) >= 2:
            name = directive["args"][0].lstrip("$")
            set_values.setdefault(name, set()).add(directive["args"][1])
    upstream_names = {
        d["args"][0]
        for d, _ctx in _walk(tree)
        if d["name"] == "upstream" and d["block"] is not None and d["args"]
    }
    for directive, context in _walk(tree):
        name, args = directive["name"], directive["args"]
        where = {"file": directive["file"], "line": directive["line"]}
        if name == "upstream" and directive["block"] is not None and args:
            servers, zone, keepalive, keepalive_timeout = [], None, None, None
            for inner in directive["block"]:
                if inner["name"] == "server" and inner["args"]:
                    addr = inner["args"][0]
                    if addr.startswith("unix:"):
                        host, port = addr, None
                    else:
                        host, port = _split_host_port(addr)
                        port = 80 if port is None else port
                    servers.append(
                        dict(
                            {"host": host, "port": port, "params": inner["args"][1:]},
                            file=inner["file"],
                            line=inner["line"],
                        )
                    )
                elif inner["name"] == "zone" and inner["args"]:
                    zone = inner["args"][0]
                elif inner["name"] == "keepalive" and inner["args"] and inner["args"][0].isdigit():
                    keepalive = int(inner["args"][0])
                elif inner["name"] == "keepalive_timeout" and inner["args"]:
                    keepalive_timeout = inner["args"][0]
            if keepalive and keepalive_timeout is None:
                keepalive_timeout = "60s"
            upstreams.append(
                dict(
                    {
                        "name": args[0],
                        "context": "/".join(context),
                        "servers": servers,
                        "zone": zone,
                        "keepalive": keepalive,
                        "keepalive_timeout": keepalive_timeout,
                    },
                    **where,
                )
            )
        elif name in ("proxy_pass", "grpc_pass") and args and directive["block"] is None:
            entry = _parse_target(args[0], upstream_names, set_values)
            entry.update({"directive": name, "context": "/".join(context)}, **where)
            proxy_passes.append(entry)
        elif name == "resolver" and args:
            resolvers.append(
                dict(
                    {
                        "addresses": [a for a in args if "=" not in a],
                        "params": [a for a in args if "=" in a],
                    },
                    **where,
                )
            )
        elif name == "listen":
            port = _listen_port(args)
            if port is not None:
                listen_ports.add(port)
        elif name == "server_name":
            server_names.update(a for a in args if a)
    return {
        "files": [path for path, _body in dumped],
        "upstreams": upstreams,
        "proxy_passes": proxy_passes,
        "resolvers": resolvers,
        "has_resolver": bool(resolvers),
        "listen_ports": sorted(listen_ports),
        "server_names": sorted(server_names),
        "error_logs": _error_logs(tree),
        "errors": errors,
    }


def _is_ip(host):
    host = host.strip("[]")
    if _IPV4.match(host):
        return all(int(p) < 256 for p in host.split("."))
    return ":" in host and bool(re.match(r"^[0-9a-fA-F:.]+$", host))


def k8s_name_info(host, namespace=None, cluster_domain="cluster.local"):
    """Describe how a host name maps to Kubernetes DNS, or return None.

    Forms (``form``): ``short`` (``svc``, needs ``namespace``), ``svc.ns``, ``svc.ns.svc``,
    ``fqdn`` (``svc.ns.svc.<cluster_domain>``), ``pod`` (``pod-0.svc.ns.svc[.<domain>]``, a
    headless Service's pod), ``pod_ip`` (``10-1-2-3.ns.pod.<domain>``). Returns
    ``{service: "ns/name" | None, namespace, name, pod, form}``; None for IP literals,
    ``localhost``, names with a port, variables, and names outside the cluster domain.
    ``svc.ns`` is only a candidate: ``example.com`` fits it too, so callers should check
    that the Service exists.
    """
    if not host or not isinstance(host, str) or "$" in host or _is_ip(host):
        return None
    name = host.strip().rstrip(".").lower()
    if name.startswith("unix:") or name == "localhost" or ":" in name:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    suffix = cluster_domain.strip(".").lower().split(".") if cluster_domain else []
    if suffix and labels[-len(suffix) :] == suffix and len(labels) > len(suffix):
        labels = labels[: -len(suffix)]
        in_domain = True
    else:
        in_domain = False

    def result(svc, ns, form, pod=None):
        if not _SVC_LABEL.match(svc):
            return None
        return {
            "service": "%s/%s" % (ns, svc),
            "namespace": ns,
            "name": svc,
            "pod": pod,
            "form": form,
        }

    if len(labels) == 3 and labels[2] == "pod" and in_domain:
        return {
            "service": None,
            "namespace": labels[1],
            "name": None,
            "pod": None,
            "form": "pod_ip",
            "ip": labels[0].replace("-", "."),
        }
    if len(labels) == 3 and labels[2] == "svc":
        return result(labels[0], labels[1], "fqdn" if in_domain else "svc.ns.svc")
    if len(labels) == 4 and labels[3] == "svc":
        return result(labels[1], labels[2], "pod", pod=labels[0])
    if in_domain:
        return None
    if len(labels) == 2:
        return result(labels[0], labels[1], "svc.ns")
    if len(labels) == 1 and namespace:
        return result(labels[0], namespace, "short")
    return None


def service_for_host(host, namespace=None, cluster_domain="cluster.local"):
    """Return ``"ns/name"`` of the Service a host name refers to, or None."""
    info = k8s_name_info(host, namespace, cluster_domain)
    return info["service"] if info else None


def _where(directive):
    """``path:line`` of a parsed directive, or None when it names no file."""
    if not directive.get("file") or directive["file"] == "<input>":
        return None
    return (
        "%s:%s" % (directive["file"], directive["line"])
        if directive.get("line")
        else directive["file"]
    )


def upstream_hosts(parsed, namespace=None, cluster_domain="cluster.local"):
    """The hosts the proxy dials, in the ``proxy_info.upstream_hosts`` shape of DESIGN.md.

    ``parsed`` is :func:`parse_nginx_t`'s result (None: no config read, no hosts). Returns a sorted, de-duplicated list of
    ``{host, port, source: "upstream" | "proxy_pass", upstream: group name | None,
    runtime_resolved: bool, service: "ns/name" | None, pod: name | None, file: "path:line" |
    None}``; a
    ``proxy_pass`` naming an upstream group is represented by that group's servers.
    """
    if not isinstance(parsed, dict):
        return []
    seen = {}
    where: dict[tuple, str | None] = {}
    for group in parsed.get("upstreams") or []:
        for server in group.get("servers") or []:
            key = (server["host"], server["port"], "upstream", group["name"])
            seen[key] = False
            where.setdefault(key, _where(server))
    for target in parsed.get("proxy_passes") or []:
        if target.get("upstream"):
            continue
        key = (target["host"], target["port"], "proxy_pass", None)
        seen[key] = seen.get(key, False) or bool(target.get("runtime_resolved"))
        where.setdefault(key, _where(target))
    out = []
    for key, runtime in seen.items():
        host, port, source, group = key
        info = k8s_name_info(host, namespace, cluster_domain)
        out.append(
            {
                "host": host,
                "port": port,
                "source": source,
                "upstream": group,
                "runtime_resolved": runtime,
                "service": info["service"] if info else None,
                "pod": info["pod"] if info else None,
                "file": where[key],
            }
        )
    out.sort(key=lambda h: (h["source"], h["upstream"] or "", h["host"], h["port"] or 0))
    return out
