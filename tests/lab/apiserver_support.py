"""Shared by the API server tests: a fake runtime, seed objects, client helpers.

The fake runtime keeps the API server's contract with ``badlab.runtime``: log files in
CRI format that the tests write, and exec argv that really run as local processes.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from badlab.apiserver import kubeconfig
from badlab.errors import ExecNotFound, PodNotRunning
from badlab.store import Store

ADMIN_TOKEN = "admin-token-0123456789"
READER_TOKEN = "reader-token-0123456789"
KUBECTL = "/usr/bin/kubectl"

# Users with "get" on pods and these verbs on pods/exec (a WebSocket exec needs both)
EXEC_VERB_TOKENS = {
    ("get",): "exec-get-token-0123456789",
    ("create",): "exec-create-token-0123456789",
    ("create", "get"): "exec-both-token-0123456789",
}

AUTH_TABLE = {
    ADMIN_TOKEN: {"user": "admin", "rules": None},
    **{
        token: {
            "user": "exec-" + "-".join(verbs),
            "rules": [
                {"verbs": ["get"], "resources": ["pods"], "namespaces": ["shop"]},
                {"verbs": list(verbs), "resources": ["pods/exec"], "namespaces": ["shop"]},
            ],
        }
        for verbs, token in EXEC_VERB_TOKENS.items()
    },
    READER_TOKEN: {
        "user": "reader",
        "rules": [
            {"verbs": ["get", "list"], "resources": ["pods", "services"], "namespaces": ["shop"]},
            {
                "verbs": ["list"],
                "resources": ["endpointslices"],
                "apiGroups": ["discovery.k8s.io"],
                "namespaces": ["shop"],
            },
        ],
    },
}

NGINX_CONF = """\
error_log stderr;
pid {prefix}/nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream web {{ server 127.0.0.1:1; }}
    server {{ listen 127.0.0.1:18081; location / {{ proxy_pass http://web; }} }}
}}
"""


def cri_time(when: datetime.datetime) -> str:
    """RFC 3339 with nanoseconds, as CRI log files carry it."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class FakeRuntime:
    """Log files written by the test; exec argv run as local processes.

    ``nginx`` is given the test's own prefix and config, as the image's defaults would.
    Commands of pods in ``stopped`` raise PodNotRunning; unknown binaries raise
    ExecNotFound, except in pods listed in ``unchecked`` (so the API server meets the
    spawn failure itself).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs: dict[tuple[str, str, str, bool], Path] = {}
        self.stopped: set[tuple[str, str]] = set()
        self.unchecked: set[tuple[str, str]] = set()
        self.nginx_prefix = root / "nginx"
        self.nginx_prefix.mkdir(parents=True, exist_ok=True)
        self.nginx_conf = self.nginx_prefix / "nginx.conf"
        self.nginx_conf.write_text(NGINX_CONF.format(prefix=self.nginx_prefix))
        self.restarts = 0

    def write_log(
        self, namespace: str, pod: str, container: str, lines: list[str], previous: bool = False
    ) -> Path:
        """Write a CRI log file of ready-made records and register it."""
        path = self.root / f"{namespace}_{pod}_{container}{'_prev' if previous else ''}.log"
        path.write_text("".join(line + "\n" for line in lines))
        self.logs[(namespace, pod, container, previous)] = path
        return path

    def restart(self, namespace: str, pod: str, container: str, lines: list[str]) -> Path:
        """A container restart: the current log becomes the previous one, a new file starts."""
        key = (namespace, pod, container, False)
        self.logs[(namespace, pod, container, True)] = self.logs[key]
        self.restarts += 1
        path = self.root / f"{namespace}_{pod}_{container}_{self.restarts}.log"
        path.write_text("".join(line + "\n" for line in lines))
        self.logs[key] = path
        return path

    def log_path(
        self, namespace: str, pod: str, container: str | None, previous: bool = False
    ) -> Path | None:
        """The registered log file, or None."""
        return self.logs.get((namespace, pod, container or "", previous))

    def exec_command(
        self, namespace: str, pod: str, container: str | None, argv: list[str]
    ) -> list[str]:
        """argv to run for an exec, following the runtime contract."""
        if (namespace, pod) in self.stopped:
            raise PodNotRunning(f'container "{container}" in pod "{pod}" is not running')
        if (namespace, pod) in self.unchecked:
            return list(argv)
        if shutil.which(argv[0]) is None:
            raise ExecNotFound(f"{argv[0]}: not found in pod {namespace}/{pod}")
        if argv[0] == "nginx":
            return ["nginx", "-p", str(self.nginx_prefix), "-c", str(self.nginx_conf), *argv[1:]]
        return list(argv)


def _pod(
    namespace: str,
    name: str,
    labels: dict,
    ip: str,
    containers: tuple[str, ...] = ("nginx",),
    phase: str = "Running",
    restarts: int = 0,
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": "lab-node",
            "containers": [
                {
                    "name": c,
                    "image": "nginx:1.22",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                }
                for c in containers
            ],
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "containerStatuses": [
                {
                    "name": c,
                    "ready": phase == "Running",
                    "restartCount": restarts,
                    "image": "nginx:1.22",
                    "imageID": "docker.io/library/nginx@sha256:" + "0" * 64,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                    if phase == "Running"
                    else {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
                for c in containers
            ],
        },
    }


def seed(store: Store) -> None:
    """Objects every API server test can rely on."""
    store.put(_pod("shop", "web-0", {"app": "web", "tier": "frontend"}, "127.0.10.1"))
    store.put(
        _pod(
            "shop",
            "web-1",
            {"app": "web", "tier": "frontend", "track": "canary"},
            "127.0.10.2",
            restarts=2,
        )
    )
    store.put(_pod("shop", "db-0", {"app": "db", "tier": "backend"}, "127.0.10.3"))
    store.put(_pod("shop", "multi", {"app": "multi"}, "127.0.10.4", containers=("app", "sidecar")))
    store.put(_pod("shop", "done", {"app": "batch"}, "127.0.10.5", phase="Succeeded"))
    store.put(_pod("other", "web-0", {"app": "web"}, "127.0.20.1"))
    store.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "127.0.30.1",
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            },
        }
    )
    store.put(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-abcde",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": ["127.0.10.1"],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-0"},
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    )
    store.put(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [
                {"addresses": [{"ip": "127.0.10.1"}], "ports": [{"name": "http", "port": 8080}]}
            ],
        }
    )
    store.put(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17a", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
            "reason": "BackOff",
            "type": "Warning",
            "message": "Back-off restarting failed container",
        }
    )
    store.put(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "shop"},
            "spec": {
                "rules": [
                    {
                        "host": "shop.example",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        }
    )
    store.put(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-all", "namespace": "shop"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        }
    )


def write_kubeconfig(directory: Path, url: str, token: str, ca_file: Path | None) -> Path:
    """A kubeconfig file for kubectl and the Python client."""
    path = directory / f"kubeconfig-{token[:6]}"
    path.write_text(yaml.safe_dump(kubeconfig(url, token, ca_file)))
    return path


def kubectl(
    kubeconfig_path: Path, *args: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    """Run the machine's kubectl against the lab server (own cache dir, no user config)."""
    home = kubeconfig_path.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig_path),
        "KUBECACHEDIR": str(home / "cache"),
    }
    return subprocess.run(
        [KUBECTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def kubectl_json(kubeconfig_path: Path, *args: str) -> dict:
    """kubectl … -o json, parsed; fails with kubectl's stderr if it did."""
    done = kubectl(kubeconfig_path, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
