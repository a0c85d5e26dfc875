"""Load and validate lab scenarios (``tests/lab/scenarios/*.yml``).

A scenario is data: the Kubernetes objects of one case, how each container behaves, a
timeline of steps that establishes the case, and the cause it reproduces. docs/lab.md
documents the format. Every mistake is reported as a :class:`badlab.errors.ScenarioError`
whose message names the file, the key (as a path such as ``pods[1].containers[0].app.status``)
and what was expected; nothing is started for a scenario that does not validate.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypedDict, cast

import yaml

from badlab.render import services_named

from badlab.errors import ScenarioError

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
PORT_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class AppBehaviour:
    """How an app container's HTTP server behaves (see backend.py)."""

    status: int = 200
    body: str = '{"status":true}'
    delay: float = 0.0
    close: bool = False
    reset: bool = False
    tls_only: bool = False
    header_bytes: int = 0
    keepalive_timeout: float = 5.0
    listen: bool = True
    listen_port: int | None = None
    exit_after: float | None = None
    exit_code: int = 1
    exit_reason: str | None = None
    accept: bool = True
    keepalive_race: bool = False
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_percent: float = 0.0
    fail_status: int = 503

    def to_json(self) -> dict[str, Any]:
        """The behaviour as the backend's ``--config`` JSON wants it."""
        return dict(self.__dict__)


@dataclass
class NginxSpec:
    """An nginx container: its /etc/nginx/nginx.conf (optional) and conf.d files."""

    nginx_conf: str | None = None
    conf_d: dict[str, str] = field(default_factory=dict)
    libc: str = "glibc"


@dataclass
class HaproxySpec:
    """An haproxy container: its /etc/haproxy/haproxy.cfg."""

    cfg: str


class _ContainerPortRequired(TypedDict):
    containerPort: int
    protocol: str


class ContainerPort(_ContainerPortRequired, total=False):
    """One entry of a container's ``ports``, as the Pod manifest carries it."""

    name: str


@dataclass
class ContainerSpec:
    """One container of a pod: an nginx or an app process."""

    name: str
    image: str
    ports: list[ContainerPort]
    kind: str  # "nginx", "haproxy" or "app"
    app: AppBehaviour | None = None
    nginx: NginxSpec | None = None
    haproxy: HaproxySpec | None = None
    ready: bool = True
    missing: list[str] = field(default_factory=list)


@dataclass
class PodSpec:
    """One pod as the scenario declares it (after ``replicas`` expansion)."""

    name: str
    namespace: str
    labels: dict[str, str]
    containers: list[ContainerSpec]
    hostname: str | None = None
    subdomain: str | None = None


@dataclass
class ServicePort:
    """One Service port; ``target_port`` is an int or a port name, as written."""

    name: str | None
    port: int
    target_port: int | str
    protocol: str = "TCP"


@dataclass
class ServiceSpec:
    """A Service: ClusterIP (an address is allocated) or headless (``clusterIP: None``)."""

    name: str
    namespace: str
    selector: dict[str, str] | None
    ports: list[ServicePort]
    headless: bool = False


@dataclass
class Step:
    """One timeline step: ``action`` plus its arguments."""

    action: str
    args: dict[str, Any]  # the action's arguments, checked and completed by _timeline
    where: str


class NetworkPolicy(TypedDict):
    """A NetworkPolicy as the scenario declares it; ``spec`` is served as written."""

    name: str
    namespace: str
    spec: dict[str, object]


@dataclass
class NetworkSpec:
    """What the lab's network does with addresses (top-level ``network``)."""

    vanished_ip: str = "refuse"  # refuse | timeout | unreachable (network.VANISHED_CHOICES)
    ip_reuse: bool = False  # a freed pod address goes to the next new pod of another name


@dataclass
class Scenario:
    """A validated scenario."""

    path: Path
    name: str
    description: str
    namespaces: list[str]
    pods: list[PodSpec]
    services: list[ServiceSpec]
    proxy: dict[str, Any]  # the checked mappings, defaults filled in (docs/lab.md)
    target: dict[str, Any]
    timeline: list[Step]
    expect: dict[str, Any]
    network_policies: list[NetworkPolicy] = field(default_factory=list)
    default_namespace: str = "default"
    network: NetworkSpec = field(default_factory=NetworkSpec)


class _Checker:
    """Small helpers that raise ScenarioError naming the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, expected: str, got: object = ...) -> NoReturn:
        got_text = "" if got is ... else f", got {got!r}"
        raise ScenarioError(f"{self.path}: {where}: expected {expected}{got_text}")

    def mapping(
        self, value: object, where: str, required: set[str], optional: set[str]
    ) -> dict[str, object]:
        """``value`` as a mapping whose keys are all among ``required`` and ``optional``."""
        if not isinstance(value, dict):
            self.fail(where, "a mapping", value)
        for key in value:
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                self.fail(
                    f"{where}.{key}" if where else str(key),
                    f"one of the known keys ({allowed})",
                    key,
                )
        for key in sorted(required):
            if key not in value:
                self.fail(
                    f"{where}.{key}" if where else key, "this key to be present (it is required)"
                )
        return value

    def seq(self, value: object, where: str, allow_empty: bool = True) -> list[object]:
        if not isinstance(value, list):
            self.fail(where, "a list", value)
        if not allow_empty and not value:
            self.fail(where, "a non-empty list", value)
        return value

    def string(
        self, value: object, where: str, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        if not isinstance(value, str) or not value:
            self.fail(where, what or "a non-empty string", value)
        if pattern is not None and not pattern.match(value):
            self.fail(where, what or f"a string matching {pattern.pattern}", value)
        return value

    def integer(self, value: object, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(where, f"an integer from {lo} to {hi}", value)
        return value

    def number(self, value: object, where: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            self.fail(where, f"a number from {lo} to {hi}", value)
        return float(value)

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, "true or false", value)
        return value

    def labels(self, value: object, where: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(where, "a mapping", value)
        labels: dict[str, str] = {}
        for key, val in value.items():
            name = self.string(
                key,
                f"{where}.{key}",
                LABEL_KEY_RE,
                "a label key such as app or app.kubernetes.io/name",
            )
            if not isinstance(val, str) or not LABEL_VALUE_RE.match(val) or len(val) > 63:
                self.fail(
                    f"{where}.{key}",
                    "a label value (a string of letters, digits, - _ . ; quote numbers)",
                    val,
                )
            labels[name] = val
        return labels


APP_KEYS = {
    "status",
    "body",
    "delay",
    "close",
    "reset",
    "tls_only",
    "header_bytes",
    "keepalive_timeout",
    "listen",
    "listen_port",
    "exit_after",
    "exit_code",
    "exit_reason",
    "accept",
    "keepalive_race",
    "paths",
    "fail_percent",
    "fail_status",
}
PATH_KEYS = {"status", "body", "delay", "close", "reset", "header_bytes"}
LIBC_CHOICES = ("glibc", "musl")
DEFAULT_IMAGES = {"nginx": "nginx:1.27", "haproxy": "haproxy:2.6", "app": "app:latest"}
#: Container kinds that are a proxy (the lab starts them after the backends).
PROXY_KINDS = ("nginx", "haproxy")
REQUEST_METHODS = ("GET", "POST")
STEP_ACTIONS = {
    "requests": ({"count"}, {"path", "expect_status", "method", "timeout"}),
    "replace_pod": ({"pod"}, {"namespace"}),
    "delete_pod": ({"pod"}, {"namespace"}),
    "terminate_pod": ({"pod"}, {"namespace", "app", "container"}),
    "log_noise": ({"pod", "lines"}, {"namespace", "container", "invalid_utf8"}),
    "set_ready": ({"pod", "ready"}, {"namespace", "container"}),
    "crash": ({"pod"}, {"namespace", "container", "exit_code", "reason"}),
    "set_behaviour": ({"pod", "app"}, {"namespace", "container"}),
    "exec": ({"pod", "command"}, {"namespace", "container"}),
    "render_config": ({"pod"}, {"namespace", "container"}),
    "wait": (set(), {"seconds"}),
    "update_service": ({"service"}, {"namespace", "selector", "ports"}),
    "delete_service": ({"service"}, {"namespace"}),
    "recreate_service": ({"service"}, {"namespace"}),
}
SERVICE_STEPS = ("update_service", "delete_service", "recreate_service")
VANISHED_CHOICES = ("refuse", "timeout", "unreachable")


def _app(c: _Checker, value: object, where: str) -> AppBehaviour:
    value = c.mapping({} if value is None else value, where, set(), APP_KEYS)
    app = AppBehaviour()
    if "status" in value:
        app.status = c.integer(value["status"], f"{where}.status", 100, 599)
    if "body" in value:
        body = value["body"]
        if not isinstance(body, str):
            c.fail(f"{where}.body", "a string", body)
        app.body = body
    for key in ("delay", "keepalive_timeout"):
        if key in value:
            setattr(app, key, c.number(value[key], f"{where}.{key}", 0, 3600))
    for key in ("close", "reset", "tls_only", "listen", "accept", "keepalive_race"):
        if key in value:
            setattr(app, key, c.boolean(value[key], f"{where}.{key}"))
    if sum((app.close, app.reset, app.tls_only)) > 1:
        c.fail(where, "at most one of close, reset, tls_only set to true", value)
    if "header_bytes" in value:
        app.header_bytes = c.integer(value["header_bytes"], f"{where}.header_bytes", 0, 1 << 20)
    if "listen_port" in value:
        app.listen_port = c.integer(value["listen_port"], f"{where}.listen_port", 1, 65535)
    if "exit_after" in value:
        app.exit_after = c.number(value["exit_after"], f"{where}.exit_after", 0, 3600)
    if "exit_code" in value:
        app.exit_code = c.integer(value["exit_code"], f"{where}.exit_code", 0, 255)
    if "exit_reason" in value and value["exit_reason"] is not None:
        app.exit_reason = c.string(
            value["exit_reason"],
            f"{where}.exit_reason",
            re.compile(r"^[A-Z][A-Za-z]*$"),
            "a kubelet termination reason such as OOMKilled or Error",
        )
    if "fail_percent" in value:
        app.fail_percent = c.number(value["fail_percent"], f"{where}.fail_percent", 0, 100)
    if "fail_status" in value:
        app.fail_status = c.integer(value["fail_status"], f"{where}.fail_status", 100, 599)
    paths = value.get("paths") or {}
    if not isinstance(paths, dict):
        c.fail(f"{where}.paths", "a mapping of path prefixes to behaviour keys", paths)
    for prefix, keys in paths.items():
        pw = f"{where}.paths.{prefix}"
        c.string(prefix, pw, re.compile(r"^/"), "a path prefix starting with /")
        keys = c.mapping(keys, pw, set(), PATH_KEYS)
        # the same checks as the container-wide keys, on a behaviour of their own
        own = _app(c, {k: v for k, v in keys.items()}, pw)
        app.paths[prefix] = {k: getattr(own, k) for k in keys}
    if not app.accept and not app.listen:
        c.fail(
            f"{where}.accept",
            "accept: false only with listen: true (it needs a listening socket)",
            value,
        )
    return app


def _container(c: _Checker, value: object, where: str) -> ContainerSpec:
    value = c.mapping(
        value, where, {"name"}, {"image", "ports", "app", "nginx", "haproxy", "ready", "missing"}
    )
    name = c.string(
        value["name"], f"{where}.name", NAME_RE, "a DNS label (lower-case letters, digits, -)"
    )
    if sum(key in value for key in ("app", "nginx", "haproxy")) != 1:
        c.fail(
            where,
            "exactly one of the keys app (an HTTP server), nginx (the Debian nginx) or haproxy "
            "(the Debian haproxy)",
        )
    kind = next(key for key in ("app", "nginx", "haproxy") if key in value)
    ports: list[ContainerPort] = []
    for i, port in enumerate(c.seq(value.get("ports", []), f"{where}.ports")):
        pw = f"{where}.ports[{i}]"
        port = c.mapping(port, pw, {"containerPort"}, {"name", "protocol"})
        entry: ContainerPort = {
            "containerPort": c.integer(port["containerPort"], f"{pw}.containerPort", 1, 65535),
            "protocol": "TCP",
        }
        if "name" in port:
            entry["name"] = c.string(
                port["name"], f"{pw}.name", PORT_NAME_RE, "a port name (DNS label, ≤15 chars)"
            )
        if port.get("protocol", "TCP") != "TCP":
            c.fail(f"{pw}.protocol", "TCP (the lab only runs TCP)", port.get("protocol"))
        ports.append(entry)
    spec = ContainerSpec(
        name=name,
        image=c.string(value.get("image", DEFAULT_IMAGES[kind]), f"{where}.image"),
        ports=ports,
        kind=kind,
    )
    if "ready" in value:
        spec.ready = c.boolean(value["ready"], f"{where}.ready")
    for i, prog in enumerate(c.seq(value.get("missing", []), f"{where}.missing")):
        spec.missing.append(
            c.string(
                prog,
                f"{where}.missing[{i}]",
                re.compile(r"^[^/\s]+$"),
                "a program name such as curl (it is hidden from exec in this container)",
            )
        )
    if spec.kind == "app":
        spec.app = _app(c, value["app"], f"{where}.app")
        if spec.app.listen_port is None:
            if not ports:
                c.fail(
                    f"{where}.app.listen_port",
                    "a port (or a ports list whose first containerPort is used)",
                )
            spec.app.listen_port = ports[0]["containerPort"]
    elif spec.kind == "haproxy":
        hw = f"{where}.haproxy"
        hval = c.mapping(value["haproxy"], hw, {"haproxy.cfg"}, set())
        spec.haproxy = HaproxySpec(
            c.string(hval["haproxy.cfg"], f"{hw}.haproxy.cfg", what="the text of haproxy.cfg")
        )
        if not ports:
            c.fail(
                f"{where}.ports",
                "at least one containerPort (the port haproxy binds, used for readiness)",
            )
    else:
        nw = f"{where}.nginx"
        nval = c.mapping(value["nginx"], nw, set(), {"nginx.conf", "conf.d", "libc"})
        nginx = NginxSpec()
        if "libc" in nval:
            libc = nval["libc"]
            if not isinstance(libc, str) or libc not in LIBC_CHOICES:
                c.fail(f"{nw}.libc", f"one of {', '.join(LIBC_CHOICES)}", libc)
            nginx.libc = libc
        if "nginx.conf" in nval:
            nginx.nginx_conf = c.string(
                nval["nginx.conf"], f"{nw}.nginx.conf", what="the text of nginx.conf"
            )
        conf_d = nval.get("conf.d", {})
        if not isinstance(conf_d, dict):
            c.fail(f"{nw}.conf.d", "a mapping", conf_d)
        for fname, text in conf_d.items():
            fname = c.string(
                fname, f"{nw}.conf.d", re.compile(r"^[\w.-]+\.conf$"), "file names ending in .conf"
            )
            nginx.conf_d[fname] = c.string(
                text, f"{nw}.conf.d.{fname}", what="the text of the file"
            )
        if not nginx.nginx_conf and not nginx.conf_d:
            c.fail(nw, "nginx.conf or conf.d (the proxy's configuration)")
        if not ports:
            c.fail(
                f"{where}.ports",
                "at least one containerPort (the port nginx listens on, used for readiness)",
            )
        spec.nginx = nginx
    return spec


def _pods(c: _Checker, value: object, default_ns: str) -> list[PodSpec]:
    pods: list[PodSpec] = []
    for i, pod in enumerate(c.seq(value, "pods", allow_empty=False)):
        where = f"pods[{i}]"
        pod = c.mapping(
            pod,
            where,
            {"name", "containers"},
            {"namespace", "labels", "replicas", "hostname", "subdomain"},
        )
        name = c.string(
            pod["name"], f"{where}.name", NAME_RE, "a DNS label (lower-case letters, digits, -)"
        )
        ns = c.string(
            pod.get("namespace", default_ns), f"{where}.namespace", NAME_RE, "a namespace name"
        )
        labels = c.labels(pod.get("labels", {}), f"{where}.labels")
        containers = [
            _container(c, ct, f"{where}.containers[{j}]")
            for j, ct in enumerate(
                c.seq(pod["containers"], f"{where}.containers", allow_empty=False)
            )
        ]
        if len({ct.name for ct in containers}) != len(containers):
            c.fail(f"{where}.containers", "distinct container names")
        replicas = (
            c.integer(pod.get("replicas", 1), f"{where}.replicas", 1, 20)
            if "replicas" in pod
            else None
        )
        names = [name] if replicas is None else [f"{name}-{k}" for k in range(replicas)]
        for pod_name in names:
            spec = PodSpec(pod_name, ns, labels, containers)
            for key in ("hostname", "subdomain"):
                if key in pod:
                    setattr(spec, key, c.string(pod[key], f"{where}.{key}", NAME_RE, "a DNS label"))
            pods.append(spec)
    seen: set[tuple[str, str]] = set()
    for pod in pods:
        if (pod.namespace, pod.name) in seen:
            c.fail(
                "pods",
                f"distinct pod names per namespace (pod {pod.namespace}/{pod.name} is declared twice)",
            )
        seen.add((pod.namespace, pod.name))
    return pods


def _service_ports(c: _Checker, value: object, where: str) -> list[ServicePort]:
    ports = []
    for j, port in enumerate(c.seq(value, where, allow_empty=False)):
        pw = f"{where}[{j}]"
        port = c.mapping(port, pw, {"port"}, {"name", "targetPort", "protocol"})
        number = c.integer(port["port"], f"{pw}.port", 1, 65535)
        target: object = port.get("targetPort", number)
        if isinstance(target, str):
            target = c.string(
                target,
                f"{pw}.targetPort",
                PORT_NAME_RE,
                "a port number or a container port name",
            )
        else:
            target = c.integer(target, f"{pw}.targetPort", 1, 65535)
        pname = (
            c.string(port["name"], f"{pw}.name", PORT_NAME_RE, "a port name")
            if "name" in port
            else None
        )
        if port.get("protocol", "TCP") != "TCP":
            c.fail(f"{pw}.protocol", "TCP (the lab only runs TCP)", port.get("protocol"))
        ports.append(ServicePort(pname, number, target))
    if len(ports) > 1 and any(p.name is None for p in ports):
        c.fail(where, "a name on every port when a Service has more than one")
    return ports


def _services(c: _Checker, value: object, default_ns: str) -> list[ServiceSpec]:
    services: list[ServiceSpec] = []
    for i, svc in enumerate(c.seq(value, "services")):
        where = f"services[{i}]"
        svc = c.mapping(
            svc, where, {"name", "ports"}, {"namespace", "selector", "clusterIP", "type"}
        )
        name = c.string(
            svc["name"], f"{where}.name", NAME_RE, "a DNS label (lower-case letters, digits, -)"
        )
        ns = c.string(
            svc.get("namespace", default_ns), f"{where}.namespace", NAME_RE, "a namespace name"
        )
        if svc.get("type", "ClusterIP") != "ClusterIP":
            c.fail(
                f"{where}.type",
                "ClusterIP (headless Services are ClusterIP with clusterIP: None)",
                svc.get("type"),
            )
        cluster_ip = svc.get("clusterIP", "auto")
        if cluster_ip not in ("auto", "None", None):
            c.fail(
                f"{where}.clusterIP",
                "None (a headless Service) or auto (an address is allocated)",
                cluster_ip,
            )
        selector = c.labels(svc["selector"], f"{where}.selector") if "selector" in svc else None
        ports = _service_ports(c, svc["ports"], f"{where}.ports")
        services.append(
            ServiceSpec(name, ns, selector, ports, headless=cluster_ip in ("None", None))
        )
    seen: set[tuple[str, str]] = set()
    for svc in services:
        if (svc.namespace, svc.name) in seen:
            c.fail(
                "services",
                f"distinct Service names per namespace ({svc.namespace}/{svc.name} twice)",
            )
        seen.add((svc.namespace, svc.name))
    return services


def _timeline(
    c: _Checker,
    value: object,
    pods: list[PodSpec],
    default_ns: str,
    services: list[ServiceSpec] | None = None,
) -> list[Step]:
    steps: list[Step] = []
    pod_keys = {(p.namespace, p.name): p for p in pods}
    svc_keys = {(s.namespace, s.name): s for s in services or []}
    for i, step in enumerate(c.seq(value, "timeline")):
        where = f"timeline[{i}]"
        if not isinstance(step, dict) or len(step) != 1:
            c.fail(
                where,
                f"a mapping with exactly one action ({', '.join(sorted(STEP_ACTIONS))})",
                step,
            )
        ((action, written),) = step.items()
        if not isinstance(action, str) or action not in STEP_ACTIONS:
            c.fail(
                f"{where}.{action}", f"one of the actions {', '.join(sorted(STEP_ACTIONS))}", action
            )
        aw = f"{where}.{action}"
        if action == "wait" and not isinstance(written, dict):
            written = {"seconds": written}
        required, optional = STEP_ACTIONS[action]
        args = dict(c.mapping(written, aw, required, optional))
        if action == "requests":
            c.integer(args["count"], f"{aw}.count", 1, 1000)
            # the client gives up after so many seconds (nginx logs 499), else after 10 s
            args["timeout"] = c.number(args.get("timeout", 10), f"{aw}.timeout", 0.05, 60)
            if "expect_status" in args:
                c.integer(args["expect_status"], f"{aw}.expect_status", 100, 599)
            args.setdefault("path", None)
            args["method"] = args.get("method", "GET")
            if args["method"] not in REQUEST_METHODS:
                c.fail(f"{aw}.method", f"one of {', '.join(REQUEST_METHODS)}", args["method"])
            if args["path"] is not None:
                c.string(args["path"], f"{aw}.path", re.compile(r"^/"), "a path starting with /")
        elif action == "wait":
            args["seconds"] = c.number(args.get("seconds", 0.1), f"{aw}.seconds", 0, 60)
        elif action in SERVICE_STEPS:
            namespace = args["namespace"] = c.string(
                args.get("namespace", default_ns), f"{aw}.namespace", NAME_RE
            )
            name = c.string(
                args["service"], f"{aw}.service", NAME_RE, "the name of a Service under services"
            )
            svc = svc_keys.get((namespace, name))
            if svc is None:
                c.fail(
                    f"{aw}.service",
                    "the name of a Service declared under services",
                    f"{namespace}/{name}",
                )
            if action == "update_service":
                if "selector" not in args and "ports" not in args:
                    c.fail(aw, "selector or ports (what the update changes)")
                if "selector" in args:
                    args["selector"] = c.labels(args["selector"], f"{aw}.selector")
                if "ports" in args:
                    args["ports"] = _service_ports(c, args["ports"], f"{aw}.ports")
        else:
            namespace = args["namespace"] = c.string(
                args.get("namespace", default_ns), f"{aw}.namespace", NAME_RE
            )
            pod_name = c.string(
                args["pod"], f"{aw}.pod", NAME_RE, "the name of a pod declared under pods"
            )
            pod = pod_keys.get((namespace, pod_name))
            if pod is None:
                c.fail(
                    f"{aw}.pod", "the name of a pod declared under pods", f"{namespace}/{pod_name}"
                )
            if "container" in args:
                if args["container"] not in {ct.name for ct in pod.containers}:
                    c.fail(f"{aw}.container", f"a container of pod {pod_name}", args["container"])
            elif action == "render_config":  # the pod's nginx, wherever it stands
                nginx = [ct.name for ct in pod.containers if ct.kind == "nginx"]
                args["container"] = (nginx or [pod.containers[0].name])[0]
            else:
                args["container"] = pod.containers[0].name
            if action == "exec":
                command = c.seq(args["command"], f"{aw}.command", allow_empty=False)
                for j, word in enumerate(command):
                    c.string(word, f"{aw}.command[{j}]", what="a command word (a string)")
            if action == "render_config" and not any(
                ct.name == args["container"] and ct.kind == "nginx" for ct in pod.containers
            ):
                c.fail(
                    f"{aw}.container",
                    "an nginx container (render_config rewrites its config files)",
                    args["container"],
                )
            if action == "set_ready":
                c.boolean(args["ready"], f"{aw}.ready")
            if action == "crash":
                args["exit_code"] = c.integer(args.get("exit_code", 137), f"{aw}.exit_code", 0, 255)
                args["reason"] = c.string(
                    args.get("reason", "OOMKilled" if args["exit_code"] == 137 else "Error"),
                    f"{aw}.reason",
                )
            if action == "log_noise":
                c.integer(args["lines"], f"{aw}.lines", 1, 200000)
                args["invalid_utf8"] = c.boolean(
                    args.get("invalid_utf8", True), f"{aw}.invalid_utf8"
                )
            if action in ("set_behaviour", "terminate_pod") and "app" in args:
                container = next(ct for ct in pod.containers if ct.name == args["container"])
                if (
                    container.app is None
                ):  # an nginx container (only app containers have a behaviour)
                    c.fail(
                        f"{aw}.container",
                        "an app container (nginx behaviour is its configuration)",
                        args["container"],
                    )
                merged = {k: v for k, v in container.app.to_json().items() if v is not None}
                merged.update(c.mapping(args["app"], f"{aw}.app", set(), APP_KEYS))
                args["app"] = _app(c, merged, f"{aw}.app")
        steps.append(Step(action, args, aw))
    return steps


def _network_policies(c: _Checker, value: object, default_ns: str) -> list[NetworkPolicy]:
    """NetworkPolicy objects as written (name, namespace, spec): served by the API, enforced by
    the lab's network (network.compile_policies), so every part it enforces is checked here."""
    policies: list[NetworkPolicy] = []
    for i, pol in enumerate(c.seq(value, "network_policies")):
        where = f"network_policies[{i}]"
        pol = c.mapping(pol, where, {"name", "spec"}, {"namespace"})
        name = c.string(
            pol["name"], f"{where}.name", NAME_RE, "a DNS label (lower-case letters, digits, -)"
        )
        ns = c.string(
            pol.get("namespace", default_ns), f"{where}.namespace", NAME_RE, "a namespace name"
        )
        spec = c.mapping(
            pol["spec"], f"{where}.spec", {"podSelector"}, {"policyTypes", "ingress", "egress"}
        )
        _selector(c, spec["podSelector"], f"{where}.spec.podSelector")
        types = c.seq(spec.get("policyTypes", ["Ingress"]), f"{where}.spec.policyTypes")
        for j, kind in enumerate(types):
            if kind not in ("Ingress", "Egress"):
                c.fail(f"{where}.spec.policyTypes[{j}]", "Ingress or Egress", kind)
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for j, rule in enumerate(c.seq(spec.get(direction, []), f"{where}.spec.{direction}")):
                rw = f"{where}.spec.{direction}[{j}]"
                rule = c.mapping({} if rule is None else rule, rw, set(), {peers_key, "ports"})
                for k, peer in enumerate(c.seq(rule.get(peers_key, []), f"{rw}.{peers_key}")):
                    _peer(c, peer, f"{rw}.{peers_key}[{k}]")
                for k, port in enumerate(c.seq(rule.get("ports", []), f"{rw}.ports")):
                    pw = f"{rw}.ports[{k}]"
                    port = c.mapping(port, pw, set(), {"protocol", "port", "endPort"})
                    if port.get("protocol", "TCP") not in ("TCP", "UDP"):
                        c.fail(f"{pw}.protocol", "TCP or UDP", port.get("protocol"))
                    if isinstance(port.get("port"), str):
                        c.string(port["port"], f"{pw}.port", PORT_NAME_RE, "a port number or name")
                    elif "port" in port:
                        c.integer(port["port"], f"{pw}.port", 1, 65535)
                    if "endPort" in port:
                        first = port.get("port")
                        if not isinstance(first, int):
                            c.fail(f"{pw}.endPort", "endPort only with a numeric port", port)
                        c.integer(port["endPort"], f"{pw}.endPort", first, 65535)
        policies.append({"name": name, "namespace": ns, "spec": spec})
    return policies


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _selector(c: _Checker, value: object, where: str) -> None:
    """A LabelSelector (matchLabels, matchExpressions), as the lab enforces it."""
    sel = c.mapping(
        {} if value is None else value, where, set(), {"matchLabels", "matchExpressions"}
    )
    c.labels(sel.get("matchLabels", {}), f"{where}.matchLabels")
    for i, expr in enumerate(c.seq(sel.get("matchExpressions", []), f"{where}.matchExpressions")):
        ew = f"{where}.matchExpressions[{i}]"
        expr = c.mapping(expr, ew, {"key", "operator"}, {"values"})
        if expr["operator"] not in SELECTOR_OPERATORS:
            c.fail(f"{ew}.operator", f"one of {', '.join(SELECTOR_OPERATORS)}", expr["operator"])
        values = c.seq(expr.get("values", []), f"{ew}.values")
        if (expr["operator"] in ("In", "NotIn")) != bool(values):
            c.fail(f"{ew}.values", "values for In and NotIn only, at least one", values)


def _peer(c: _Checker, value: object, where: str) -> None:
    """One ``from`` / ``to`` entry: podSelector and/or namespaceSelector, or an ipBlock."""
    peer = c.mapping(value, where, set(), {"podSelector", "namespaceSelector", "ipBlock"})
    if not peer:
        c.fail(where, "podSelector, namespaceSelector or ipBlock")
    if "ipBlock" in peer:
        if len(peer) > 1:
            c.fail(where, "ipBlock alone (without selectors)", peer)
        block = c.mapping(peer["ipBlock"], f"{where}.ipBlock", {"cidr"}, {"except"})
        try:
            net = ipaddress.ip_network(str(block["cidr"]), strict=False)
            for i, ex in enumerate(c.seq(block.get("except", []), f"{where}.ipBlock.except")):
                if not ipaddress.ip_network(str(ex), strict=False).subnet_of(net):  # type: ignore[arg-type]
                    c.fail(f"{where}.ipBlock.except[{i}]", f"a CIDR inside {net}", ex)
        except ValueError as exc:
            c.fail(f"{where}.ipBlock", f"IPv4 CIDRs ({exc})", block)
        return
    for key in ("podSelector", "namespaceSelector"):
        if key in peer:
            _selector(c, peer[key], f"{where}.{key}")


def load(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raises ScenarioError on any mistake."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    c = _Checker(path)
    data = c.mapping(
        data,
        "",
        {"pods", "proxy", "target", "expect"},
        {"description", "namespace", "services", "timeline", "network_policies", "network"},
    )
    default_ns = c.string(
        data.get("namespace", "default"), "namespace", NAME_RE, "a namespace name"
    )
    description = data.get("description", "")
    if not isinstance(description, str):
        c.fail("description", "a string", description)
    pods = _pods(c, data["pods"], default_ns)
    services = _services(c, data.get("services", []), default_ns)
    svc_keys = {(s.namespace, s.name): s for s in services}

    proxy = dict(c.mapping(data["proxy"], "proxy", {"service"}, {"namespace", "selector", "path"}))
    proxy_ns = proxy["namespace"] = c.string(
        proxy.get("namespace", default_ns), "proxy.namespace", NAME_RE
    )
    proxy_svc = c.string(
        proxy["service"],
        "proxy.service",
        NAME_RE,
        "the name of the Service in front of the proxy pods",
    )
    psvc = svc_keys.get((proxy_ns, proxy_svc))
    if psvc is None or psvc.headless:
        c.fail(
            "proxy.service",
            "a ClusterIP Service declared under services (the address a browser reaches)",
            proxy_svc,
        )
    selector = proxy["selector"] = c.labels(
        proxy.get("selector", psvc.selector or {}), "proxy.selector"
    )
    if not selector:
        c.fail("proxy.selector", "labels that select the proxy pods")
    proxy["path"] = c.string(
        proxy.get("path", "/"), "proxy.path", re.compile(r"^/"), "a path starting with /"
    )
    proxy_pods = [
        p
        for p in pods
        if p.namespace == proxy_ns and all(p.labels.get(k) == v for k, v in selector.items())
    ]
    if not proxy_pods or any(
        not any(ct.kind in PROXY_KINDS for ct in p.containers) for p in proxy_pods
    ):
        c.fail(
            "proxy.selector",
            "labels that select at least one pod, each with an nginx or haproxy container",
            selector,
        )

    # $(UPSTREAM_SERVERS:…) must name a Service the lab keeps endpoints for (the raw file's
    # indexes, as in every other message; replicas share their pod's text)
    raw_pods = cast("list[dict[str, Any]]", data["pods"])
    for i, raw in enumerate(raw_pods):
        ns = raw.get("namespace", default_ns)
        for j, ct in enumerate(raw["containers"]):
            for fname, text in ((ct.get("nginx") or {}).get("conf.d") or {}).items():
                for svc_ns, svc_name in services_named(text, ns):
                    known = svc_keys.get((svc_ns, svc_name))
                    if known is None or known.selector is None:
                        c.fail(
                            f"pods[{i}].containers[{j}].nginx.conf.d.{fname}",
                            "$(UPSTREAM_SERVERS:<service>[.<namespace>]) naming a Service "
                            "declared under services, with a selector",
                            f"{svc_ns}/{svc_name}",
                        )

    target = dict(c.mapping(data["target"], "target", {"service"}, {"namespace"}))
    target_ns = target["namespace"] = c.string(
        target.get("namespace", default_ns), "target.namespace", NAME_RE
    )
    c.string(target["service"], "target.service", NAME_RE, "the name of the backend Service")

    timeline = _timeline(c, data.get("timeline", []), pods, default_ns, services)
    expect = dict(
        c.mapping(
            data["expect"],
            "expect",
            {"cause", "proxy_status"},
            {"stale_addresses", "stale_replicas", "proxy_log_contains", "notes"},
        )
    )
    for i, wanted in enumerate(
        c.seq(expect.get("proxy_log_contains", []), "expect.proxy_log_contains")
    ):
        c.string(
            wanted,
            f"expect.proxy_log_contains[{i}]",
            what="a text the proxy pods' logs must contain",
        )
    cause = c.string(
        expect["cause"],
        "expect.cause",
        re.compile(r"^[a-z0-9_]+$"),
        "a cause ID of docs/result-schema.md (the registry plugins/module_utils/causes.py), such as stale_upstream",
    )
    c.integer(expect["proxy_status"], "expect.proxy_status", 100, 599)
    if "stale_addresses" in expect:
        c.boolean(expect["stale_addresses"], "expect.stale_addresses")
    if "stale_replicas" in expect:
        proxy_names = {p.name for p in proxy_pods}
        for i, name in enumerate(c.seq(expect["stale_replicas"], "expect.stale_replicas")):
            if name not in proxy_names:
                c.fail(
                    f"expect.stale_replicas[{i}]",
                    f"the name of a proxy pod ({', '.join(sorted(proxy_names))})",
                    name,
                )
    stem = path.stem
    if stem != cause and not stem.startswith(cause + "-"):
        c.fail(
            "expect.cause",
            f"the cause the file is named after ({stem.split('-')[0]}; "
            "variants are named <cause>-<variant>.yml)",
            cause,
        )
    policies = _network_policies(c, data.get("network_policies", []), default_ns)
    net = c.mapping(data.get("network", {}), "network", set(), {"vanished_ip", "ip_reuse"})
    network = NetworkSpec()
    if "vanished_ip" in net:
        if net["vanished_ip"] not in VANISHED_CHOICES:
            c.fail(
                "network.vanished_ip", f"one of {', '.join(VANISHED_CHOICES)}", net["vanished_ip"]
            )
        network.vanished_ip = str(net["vanished_ip"])
    if "ip_reuse" in net:
        network.ip_reuse = c.boolean(net["ip_reuse"], "network.ip_reuse")
    namespaces = sorted(
        {p.namespace for p in pods}
        | {s.namespace for s in services}
        | {proxy_ns, target_ns}
        | {n["namespace"] for n in policies}
    )
    return Scenario(
        path,
        stem,
        description,
        namespaces,
        pods,
        services,
        proxy,
        target,
        timeline,
        expect,
        policies,
        default_ns,
        network,
    )


def parse_steps(scenario: Scenario, value: object, source: str) -> list[Step]:
    """Timeline steps given to a running lab (``badlab step``), checked as the scenario's own
    are (the pods it declares, its namespace); ScenarioError names ``source`` and the key."""
    return _timeline(
        _Checker(Path(source)),
        value,
        scenario.pods,
        scenario.default_namespace,
        scenario.services,
    )
