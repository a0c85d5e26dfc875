# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: the reads of one run, each made once and shared, and the small
concurrency the modules use.

``SharedReads`` wraps one ``K8sClient``: a list (pods by selector, Services, EndpointSlices of
a namespace), a Service and the proxy adapter's container choice and config dump are read once
per run, by the first caller; a concurrent caller of the same read waits for that one and gets
the same answer (or the same ``K8sError``). ``parallel`` runs independent calls at once, a
bounded number of threads; the client bounds what is in flight to its API server.
"""

from __future__ import annotations

import concurrent.futures
import copy
import threading
import typing as t

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    K8sError,
    signals_to_the_main_thread,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def serial(calls: t.Sequence[t.Callable[[], t.Any]]) -> list[tuple[t.Any, BaseException | None]]:
    """Run ``calls`` one after the other; ``[(value, None) or (None, exception)]`` in order."""
    return [_outcome(call) for call in calls]


def _outcome(call: t.Callable[[], t.Any]) -> tuple[t.Any, BaseException | None]:
    try:
        return call(), None
    except Exception as exc:  # pylint: disable=broad-except  # handed back to the caller
        return None, exc


def parallel_runner(limit: int) -> t.Callable[..., list[tuple[t.Any, BaseException | None]]]:
    """A runner like :func:`serial` that runs the calls at once, at most ``limit`` threads."""

    def run(calls: t.Sequence[t.Callable[[], t.Any]]) -> list[tuple[t.Any, BaseException | None]]:
        if len(calls) < 2 or limit < 2:
            return serial(calls)
        workers = min(limit, len(calls))
        with concurrent.futures.ThreadPoolExecutor(
            workers, "badgateway-k8s-read", initializer=signals_to_the_main_thread
        ) as pool:
            return list(pool.map(_outcome, calls))

    return run


def values(outcomes: t.Iterable[tuple[t.Any, BaseException | None]]) -> list[t.Any]:
    """The values of a runner's outcomes; the first exception, in order, is raised."""
    found = []
    for value, error in outcomes:
        if error is not None:
            raise error
        found.append(value)
    return found


class _Once:
    """One read: done when its first caller has its value or its error."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: t.Any = None
        self.error: BaseException | None = None


class SharedReads:
    """The reads of one run through ``client``, each made once (see the module docstring).

    ``whole_namespaces``: namespaces whose EndpointSlices are listed whole anyway (to compare
    dialled addresses with); a Service's slices there are taken from that list instead of a
    second, label-selected one.
    """

    def __init__(self, client: t.Any, whole_namespaces: t.Iterable[str] = ()) -> None:
        self.client = client
        self.whole_namespaces = set(whole_namespaces)
        self._lock = threading.Lock()
        self._reads: dict[tuple[t.Any, ...], _Once] = {}

    def once(self, key: tuple[t.Any, ...], read: t.Callable[[], t.Any]) -> t.Any:
        """``read()``'s value, read once per ``key`` for the whole run."""
        with self._lock:
            slot = self._reads.get(key)
            first = slot is None
            if slot is None:
                slot = self._reads[key] = _Once()
        if first:
            try:
                slot.value = read()
            except Exception as exc:  # pylint: disable=broad-except  # raised to every caller
                slot.error = exc
            finally:
                slot.done.set()
        else:
            slot.done.wait()
        if slot.error is not None:
            raise copy.copy(slot.error)
        return slot.value

    def close(self):
        """Close the client (its pooled connections and temporary files)."""
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------------ the cluster's objects
    def pods(
        self, namespace: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, t.Any]]:
        """Raw pods of a namespace by label and field selector."""
        return self.once(
            ("pods", namespace, label_selector or "", field_selector or ""),
            lambda: self.client.list_pods(namespace, label_selector, field_selector),
        )

    def service(self, namespace: str, name: str) -> dict[str, t.Any]:
        """One raw Service (``K8sNotFound`` when it does not exist)."""
        return self.once(
            ("service", namespace, name), lambda: self.client.get_service(namespace, name)
        )

    def services(self, namespace: str) -> list[dict[str, t.Any]]:
        """Every raw Service of a namespace."""
        return self.once(("services", namespace), lambda: self.client.list_services(namespace))

    def endpointslices(self, namespace: str, service: str | None = None) -> list[dict[str, t.Any]]:
        """Raw EndpointSlices of a namespace, or of one Service (its ``kubernetes.io/service-name``
        label): from the namespace's whole list when that is read anyway, else selected."""
        if service is None or namespace in self.whole_namespaces:
            slices = self.once(
                ("endpointslices", namespace, ""),
                lambda: self.client.list_endpointslices(namespace),
            )
            if service is None:
                return slices
            return [
                s
                for s in slices
                if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
                == service
            ]
        return self.once(
            ("endpointslices", namespace, service),
            lambda: self.client.list_endpointslices(namespace, service),
        )

    def require_namespace(self, namespace: str) -> bool | None:
        """``K8sClient.require_namespace``, asked once."""
        return self.once(("namespace", namespace), lambda: self.client.require_namespace(namespace))

    # ------------------------------------------------------------------ inside the proxy pods
    def share_adapter(self, adapter: t.Any) -> t.Any:
        """``adapter`` (a ``ProxyAdapter``) whose container choice and config dump are read once
        per pod for the run: proxy_info, the probes' own listen port and a reload's probe all
        ask for them."""

        def pick_container(pod: dict[str, t.Any], wanted: str | None = None) -> str:
            meta = pod.get("metadata") or {}
            ns, name = meta.get("namespace"), meta.get("name")
            key = ("container", adapter.kind, ns, name, wanted)
            container, kind = self.once(
                key, lambda: (real_pick(pod, wanted), adapter.kind_for(ns, name))
            )
            adapter.remember(ns, name, kind)  # auto: the kind found by the first caller
            return container

        def read_config(
            namespace: str, pod: str, container: str | None, cluster_domain: str = "cluster.local"
        ) -> t.Any:
            key = ("config", namespace, pod, container, cluster_domain)
            return self.once(key, lambda: real_read(namespace, pod, container, cluster_domain))

        real_pick, real_read = adapter.pick_container, adapter.read_config
        # Instance attributes: the adapter's own methods (listen_ports) call these too.
        adapter.pick_container = pick_container
        adapter.read_config = read_config
        return adapter


def k8s_errors_only(error: BaseException | None) -> K8sError | None:
    """``error`` when it is a K8sError (a failed call: data), None when there is none; any other
    exception is a bug and is raised."""
    if error is None or isinstance(error, K8sError):
        return error
    raise error
