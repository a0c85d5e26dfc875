# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxy kinds the collection knows: kind name -> adapter class (``proxy_adapter``).

A second kind is its module_utils file and one line in ``ADAPTERS``. ``auto`` (the default)
tells the kind per pod (:class:`AutoAdapter`): from the containers' names and images, else by
which kind's version command runs in one of them.
"""

from __future__ import annotations

import threading
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_adapter import (
    ProxyAdapter,
    image_name,
    pod_ref,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_haproxy import HaproxyAdapter
from ansible_collections.badgateway.k8s.plugins.module_utils.proxy_nginx import NginxAdapter

ADAPTERS: dict[str, type[ProxyAdapter]] = {
    NginxAdapter.kind: NginxAdapter,
    HaproxyAdapter.kind: HaproxyAdapter,
}
AUTO = "auto"
DEFAULT_KIND = AUTO
#: What the ``kind`` options accept, in the order ``auto`` tries the kinds.
KINDS = (AUTO,) + tuple(ADAPTERS)


def proxy_adapter(client: Any = None, kind: str | None = None) -> ProxyAdapter:
    """The adapter of ``kind`` (default ``auto``) bound to ``client``; K8sError for an unknown
    kind."""
    kind = kind or DEFAULT_KIND
    if kind == AUTO:
        return AutoAdapter(client)
    try:
        return ADAPTERS[kind](client)
    except KeyError:
        raise K8sError("unknown proxy kind %r (known: %s)" % (kind, ", ".join(KINDS))) from None


def strong_kinds(pod: dict[str, Any]) -> list[str]:
    """The kinds a pod's containers name by container name or image (``nginx:1.27``,
    ``haproxy:2.6``, a container called ``haproxy``), in ``ADAPTERS`` order."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return [
        kind
        for kind, adapter in ADAPTERS.items()
        if any(
            c.get("name") == kind or image_name(c.get("image")) in adapter.images
            for c in containers
        )
    ]


class AutoAdapter(ProxyAdapter):
    """Each pod's own kind: chosen when its container is picked, then every call about that pod
    goes to that kind's adapter. A fleet (or a selector) may mix kinds."""

    kind = AUTO

    def __init__(self, client: Any = None) -> None:
        super().__init__(client)
        self.adapters = {kind: cls(client) for kind, cls in ADAPTERS.items()}
        self._chosen: dict[tuple[str | None, str | None], ProxyAdapter] = {}
        self._lock = threading.Lock()

    def _steps(self, name: str) -> str:
        seen = sorted({a.kind for a in self._chosen.values()}) or list(self.adapters)
        return " / ".join(getattr(self.adapters[k], name) for k in seen)

    @property
    def config_dump_step(self) -> str:
        return self._steps("config_dump_step")

    @property
    def config_test_step(self) -> str:
        return self._steps("config_test_step")

    @property
    def reload_step(self) -> str:
        return self._steps("reload_step")

    def kind_for(self, namespace: str | None, pod: str | None) -> str:
        return self._of(namespace, pod).kind

    def _of(self, namespace: str | None, pod: str | None) -> ProxyAdapter:
        with self._lock:
            adapter = self._chosen.get((namespace, pod))
        if adapter is None:
            raise K8sError(
                "pod %s/%s: its proxy kind is not known yet (its container was not picked)"
                % (namespace, pod)
            )
        return adapter

    def pick_container(self, pod: dict[str, Any], wanted: str | None = None) -> str:
        """The kind the pod's names and images say (when exactly one), else the first kind whose
        version command runs in one of its containers; that kind's container."""
        meta = pod.get("metadata") or {}
        strong = strong_kinds(pod)
        order = (
            strong if len(strong) == 1 else strong + [k for k in self.adapters if k not in strong]
        )
        problems = []
        for kind in order:
            adapter = self.adapters[kind]
            try:
                container = adapter.pick_container(pod, wanted)
                if len(strong) != 1:  # nothing says which kind: its binary must run there
                    ran = adapter._run(
                        meta.get("namespace"), meta.get("name"), container, adapter.version_argv
                    )
                    if ran.rc != 0:
                        problems.append(
                            "%s: %s does not run in container %s"
                            % (kind, " ".join(adapter.version_argv), container)
                        )
                        continue
            except K8sError as exc:
                if len(strong) == 1 or exc.status is not None:
                    raise
                problems.append(str(exc))
                continue
            with self._lock:
                self._chosen[(meta.get("namespace"), meta.get("name"))] = adapter
            return container
        raise K8sError(
            "pod %s: no container runs a known proxy (%s); set the proxy kind and container"
            % (pod_ref(pod), "; ".join(problems))
        )

    def read_config(self, namespace, pod, container, cluster_domain="cluster.local"):
        return self._of(namespace, pod).read_config(namespace, pod, container, cluster_domain)

    def read_processes(self, namespace, pod, container):
        return self._of(namespace, pod).read_processes(namespace, pod, container)

    def read_log_files(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        config: dict[str, Any] | None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
    ) -> dict[str, Any]:
        return self._of(namespace, pod).read_log_files(
            namespace, pod, container, config, tail_lines, since_seconds, limit_bytes
        )

    def read_runtime(self, namespace, pod, container, config):
        return self._of(namespace, pod).read_runtime(namespace, pod, container, config)

    def adapter_for(self, namespace: str | None, pod: str | None) -> ProxyAdapter:
        return self._of(namespace, pod)

    def remember(self, namespace: str | None, pod: str | None, kind: str) -> None:
        if kind in self.adapters:
            with self._lock:
                self._chosen[(namespace, pod)] = self.adapters[kind]

    def test_config(self, namespace, pod, container):
        return self._of(namespace, pod).test_config(namespace, pod, container)

    def apply_reload(self, namespace, pod, container):
        return self._of(namespace, pod).apply_reload(namespace, pod, container)
