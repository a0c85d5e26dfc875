"""Config text as a controller renders it: ``$(UPSTREAM_SERVERS:<service>[.<namespace>])`` in an
nginx container's files becomes one ``server IP:PORT;`` line per ready endpoint of that Service
(its first port), the way NGINX Gateway Fabric and in-house controllers write pod IPs into
``upstream {}`` blocks. The runtime renders the files when the container starts and again at a
``render_config`` step (a controller pushing new config, without a reload).
"""

from __future__ import annotations

import re
from collections.abc import Callable

UPSTREAM_SERVERS = re.compile(
    r"\$\(UPSTREAM_SERVERS:(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"(?:\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?))?\)"
)


def services_named(text: str, namespace: str) -> list[tuple[str, str]]:
    """(namespace, service) of every ``$(UPSTREAM_SERVERS:…)`` in ``text``."""
    return [
        (m.group("namespace") or namespace, m.group("service"))
        for m in UPSTREAM_SERVERS.finditer(text)
    ]


def render_servers(
    text: str, namespace: str, addresses: Callable[[str, str], list[str]]
) -> tuple[str, list[str]]:
    """``text`` with each ``$(UPSTREAM_SERVERS:…)`` replaced by ``server ADDRESS;`` lines (the
    next ones indented like the placeholder), and every address written. ``addresses(namespace,
    service)`` gives the Service's ready endpoints as ``IP:PORT``; none renders a comment (nginx
    then refuses an upstream block without servers, as it would)."""
    written: list[str] = []

    def one(match: re.Match[str]) -> str:
        line_start = text.rfind("\n", 0, match.start()) + 1
        indent = re.match(r"[ \t]*", text[line_start : match.start()])
        pad = indent.group(0) if indent else ""
        found = addresses(match.group("namespace") or namespace, match.group("service"))
        written.extend(found)
        if not found:
            return "# no ready endpoint of %s" % match.group("service")
        return ("\n" + pad).join("server %s;" % address for address in found)

    return UPSTREAM_SERVERS.sub(one, text), written
