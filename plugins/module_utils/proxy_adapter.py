# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The seam between the collection and one kind of reverse proxy running in a pod.

``proxy_info``, ``proxy_probe``, ``nginx_reload`` and the reload plan (``_reload.py``) never
run a proxy's command themselves: they ask a :class:`ProxyAdapter`, chosen by kind in
``proxy_kinds.py`` (nginx, ``proxy_nginx.py``, by default). What the adapter returns is
proxy-neutral (the shapes below, which are also those of DESIGN.md), so a second kind of proxy
is one new file with a subclass, one line in ``proxy_kinds.py``, its lab support and its
scenarios.

A subclass sets the class attributes (its name, images and commands) and implements
:meth:`~ProxyAdapter.parse_config`, :meth:`~ProxyAdapter.read_processes` and
:meth:`~ProxyAdapter.summarize_log`; the rest works from the attributes and may be overridden
where the proxy differs (a reload that is not one command, a proof other than new workers).

Shapes:

* config (:meth:`~ProxyAdapter.read_config`): ``{listen_ports: [int], upstream_hosts:
  [{host, port, source, upstream, runtime_resolved, service, pod}], upstream_keepalive:
  [{upstream, keepalive, keepalive_timeout}], error_logs: {files: [{path, where}],
  unreadable: [str]}, errors: [str]}`` (``error_logs``: where the proxy writes its error lines
  besides the container log, see ``nginx_conf.error_log_plan``);
* log files (:meth:`~ProxyAdapter.read_log_files`): ``{files: [{path, lines, lines_read,
  bytes_read, truncated}], local_offset (minutes east of UTC of the pod's clock), problems:
  [str]}``;
* processes (:meth:`~ProxyAdapter.read_processes`): ``{master_pid|None, workers: [{pid,
  start_time}] (oldest first), problem: str|None, last_reload_age: float|None}``;
* log summary (:meth:`~ProxyAdapter.summarize_log`, of the container log merged in time order
  with the log files): what ``nginx_log.summarize`` returns
  (``errors``, ``counts``, ``counts_after_reload``, ``errors_after_reload``, ``access``,
  ``failed_reloads``, ``reload_source``, ``reload_time``, ``upstream_addresses``, ...);
* config test (:meth:`~ProxyAdapter.test_config`): ``{rc, ok, output}``.

Every method that runs something in the pod ends as data or raises ``K8sError`` naming the
call (the exec itself failed); a command that ran and failed is data (a problem, ``ok: false``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sError


def pod_ref(pod: dict[str, Any]) -> str:
    """``namespace/name`` of a raw pod."""
    meta = pod.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace"), meta.get("name"))


def image_name(image: str | None) -> str:
    """``docker.io/nginxinc/nginx-unprivileged:1.27@sha256:...`` -> ``nginx-unprivileged``."""
    last = (image or "").split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _why(result: Any) -> str:
    """Why a command that ran (or could not start) did not succeed, in one line."""
    return result.error or result.stderr.strip()[-2000:] or "exit %s" % result.rc


class ProxyAdapter:
    """One kind of proxy, as the modules need it; bound to a ``K8sClient`` (None in check mode,
    where only the names of the steps are read)."""

    #: Name of the kind, e.g. ``nginx``: in messages, and the key in ``proxy_kinds``.
    kind: str = ""
    #: Image names (last path part, no tag or digest) that are this proxy itself.
    images: tuple[str, ...] = ()
    #: A command that runs only where the proxy's binary is (to pick the container).
    version_argv: tuple[str, ...] = ()
    #: Prints the configuration the proxy would load, includes expanded.
    config_dump_argv: tuple[str, ...] = ()
    #: Tests the configuration on disk without applying it; exits 0 when it is valid.
    config_test_argv: tuple[str, ...] = ()
    #: Makes the running proxy load the configuration on disk.
    reload_argv: tuple[str, ...] = ()

    def __init__(self, client: Any = None) -> None:
        self.client = client

    def kind_for(self, namespace: str | None, pod: str | None) -> str:
        """The kind of proxy that serves ``pod`` (one kind per adapter but ``auto``)."""
        return self.kind

    def adapter_for(self, namespace: str | None, pod: str | None) -> ProxyAdapter:
        """The adapter of the kind that serves ``pod`` (itself but for ``auto``)."""
        return self

    def remember(self, namespace: str | None, pod: str | None, kind: str) -> None:
        """Take ``kind`` as the kind of ``pod`` (found by another adapter of the run: ``auto``
        keeps it; a single kind has nothing to remember)."""

    # ------------------------------------------------------------- names of the steps
    @property
    def config_dump_step(self) -> str:
        """The config read as text, e.g. ``nginx -T``."""
        return " ".join(self.config_dump_argv)

    @property
    def config_test_step(self) -> str:
        """The config test as text, e.g. ``nginx -t``."""
        return " ".join(self.config_test_argv)

    @property
    def reload_step(self) -> str:
        """The reload as text, e.g. ``nginx -s reload``."""
        return " ".join(self.reload_argv)

    def _run(
        self,
        namespace: str | None,
        pod: str | None,
        container: str | None,
        argv: Sequence[str],
        timeout: float | None = None,
    ) -> Any:
        return self.client.exec(namespace, pod, list(argv), container=container, timeout=timeout)

    # ------------------------------------------------------------- finding the proxy
    def pick_container(self, pod: dict[str, Any], wanted: str | None = None) -> str:
        """Name of the proxy's container in a raw pod; K8sError when it cannot be told.

        ``wanted`` wins. Else the container named like the kind or running one of its
        :attr:`images`, when exactly one does; else the only container; else the first in
        which :attr:`version_argv` runs, trying those whose name or image merely mention the
        kind (an ``nginx-prometheus-exporter`` sidecar does) before the others.
        """
        containers = (pod.get("spec") or {}).get("containers") or []
        names = [c.get("name") for c in containers]
        meta: dict[str, Any] = pod.get("metadata") or {}
        if wanted:
            if wanted not in names:
                raise K8sError(
                    'pod %s has no container "%s" (it has: %s)'
                    % (pod_ref(pod), wanted, ", ".join(names))
                )
            return wanted
        strong = [
            c.get("name")
            for c in containers
            if c.get("name") == self.kind or image_name(c.get("image")) in self.images
        ]
        if len(strong) == 1:
            return strong[0]
        if len(names) == 1:
            return names[0]
        weak = [
            c.get("name")
            for c in containers
            if self.kind in (c.get("name") or "") or self.kind in (c.get("image") or "")
        ]
        order = list(dict.fromkeys(strong + weak + names))
        for name in order:
            try:
                result = self._run(meta.get("namespace"), meta.get("name"), name, self.version_argv)
            except K8sError as exc:
                if exc.status == 400:  # this container cannot run anything now: try the next
                    continue
                raise
            if result.rc == 0:
                return name
        raise K8sError(
            "pod %s: no container runs %s (tried %s in %s); set container"
            % (pod_ref(pod), self.kind, " ".join(self.version_argv), ", ".join(order))
        )

    # ------------------------------------------------------------- reading it
    def read_config(
        self, namespace: str, pod: str, container: str | None, cluster_domain: str = "cluster.local"
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Read the running configuration; ``(config or None, problem or None)``.

        ``problem`` says why the dump command failed (it ran, but the config could not be
        read); ``namespace`` and ``cluster_domain`` resolve the Kubernetes names it dials.
        """
        result = self._run(namespace, pod, container, self.config_dump_argv)
        if result.rc != 0:
            return None, "%s failed: %s" % (self.config_dump_step, _why(result))
        return self.parse_config(result.stdout, namespace, cluster_domain), None

    def parse_config(self, text: str, namespace: str | None, cluster_domain: str) -> dict[str, Any]:
        """The config shape (module docstring) from the dump's text."""
        raise NotImplementedError

    def listen_ports(
        self, namespace: str, pod: str, container: str | None
    ) -> tuple[list[int], str | None]:
        """The replica's listen ports from its running config; ``(ports, problem)``."""
        config, problem = self.read_config(namespace, pod, container)
        if config is None:
            return [], problem
        ports = config["listen_ports"]
        return ports, None if ports else "%s listens on no port" % self.kind

    def read_processes(self, namespace: str, pod: str, container: str | None) -> dict[str, Any]:
        """The proxy's master and worker processes (the processes shape; ``problem`` set when
        they could not be read or make no sense)."""
        raise NotImplementedError

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
        """The logs the proxy writes to files in its container rather than to the container
        log (the log files shape), bounded like the container log; ``problems`` names each one
        that could not be read and the call. A kind that logs only to stdout/stderr reads none.
        """
        return {"files": [], "local_offset": 0, "problems": []}

    def read_runtime(
        self, namespace: str, pod: str, container: str | None, config: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]] | None, str | None]:
        """What the running proxy holds now, from its runtime API: ``(servers, problem)``, each
        server ``{backend, server, address, fqdn, op_state, admin_state}``; ``problem`` names
        why and the call when it could not be read. A kind without a runtime API (nginx: what
        its workers dial shows only in its log) returns ``(None, None)``."""
        return None, None

    def summarize_log(
        self,
        lines: Iterable[str],
        reload_time: str | None = None,
        max_errors: int = 50,
        files: dict[str, Any] | None = None,
        worker_pids: list[int] | None = None,
        runtime: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The container log's lines, with the log files ``read_log_files`` read (``files``)
        and the runtime's servers (``read_runtime``), summarised by the proxy's log parser."""
        raise NotImplementedError

    # ------------------------------------------------------------- changing it
    def test_config(self, namespace: str, pod: str, container: str | None) -> dict[str, Any]:
        """Test the configuration on disk: ``{rc, ok, output}`` (``output``: what the test
        printed, or why it could not run)."""
        result = self._run(namespace, pod, container, self.config_test_argv)
        return {
            "rc": result.rc,
            "ok": result.rc == 0,
            "output": (result.stderr + result.stdout).strip() or result.error,
        }

    def apply_reload(self, namespace: str, pod: str, container: str | None) -> str | None:
        """Ask the proxy to load the configuration on disk; None when the command said yes,
        else why not. Whether it took is for :meth:`reload_took` to tell."""
        result = self._run(namespace, pod, container, self.reload_argv)
        if result.rc == 0:
            return None
        return (result.stderr + result.stdout).strip() or result.error or "exit %s" % result.rc

    def reload_took(self, before: dict[str, Any], after: dict[str, Any]) -> bool:
        """Proof of a reload from two process readings: new workers exist and none of the old
        worker PIDs is still a worker."""
        old = {w["pid"] for w in before["workers"]}
        return bool(after["workers"]) and not old & {w["pid"] for w in after["workers"]}
