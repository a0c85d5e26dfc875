# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy kinds the collection knows: kind name -> adapter class (``proxy_adapter``).

A second kind is its module_utils file and one line in ``ADAPTERS``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import ProxyAdapter
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter

ADAPTERS: dict[str, type[ProxyAdapter]] = {NginxAdapter.kind: NginxAdapter}
DEFAULT_KIND = NginxAdapter.kind


def proxy_adapter(client: Any = None, kind: str | None = None) -> ProxyAdapter:
    """The adapter of ``kind`` (default nginx) bound to ``client``; K8sError for an unknown kind."""
    try:
        return ADAPTERS[kind or DEFAULT_KIND](client)
    except KeyError:
        raise K8sError(
            "unknown proxy kind %r (known: %s)" % (kind, ", ".join(sorted(ADAPTERS)))
        ) from None
