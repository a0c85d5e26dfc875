"""Generate lab scenarios that no rule was written for (``make accuracy-generated``).

``generate(seed, index)`` composes one case from the lab's features (docs/lab.md): a family of
injected fault (the cause a correct diagnosis names) plus random variations that should not
change that answer: the proxy kind (nginx, or HAProxy for the families and styles it has),
1-4 proxy replicas, proxy and backend in the same or different namespaces,
how nginx finds the backend (a ClusterIP or headless Service name resolved at load, an
``upstream {}`` block, ``resolver`` + a variable), where nginx's error log goes, log noise,
warm-up traffic, reloads, restarts, names, ports, libc. It returns the scenario as a dict (a
valid file of tests/lab/scenarios once dumped) and ``injected``: the family, the verdicts that
count as right (just the family: an ambiguous case is not generated), the proxy replicas made
stale, what the reload oracle should measure per replica, and every random choice.

The same (seed, index) always gives the same case. The family of case ``index`` comes from a
shuffled deck of every family (stale_upstream and healthy twice), so each run of
``len(FAMILY_DECK)`` consecutive cases holds every family.

    python tests/lab/generate.py --seed 1 -n 40 --out DIR    # writes DIR/<family>-gen-1-<i>.yml
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from badlab import scenario as scenario_mod  # noqa: E402

STALE = "stale_upstream"
HEALTHY = "healthy"
UNAPPLIED = "config_not_applied"
FAMILIES = (
    STALE,
    HEALTHY,
    UNAPPLIED,
    "no_endpoints",
    "backend_not_ready",
    "backend_down",
    "port_mismatch",
    "backend_502",
    "upstream_timeout",
    "backend_crash",
    "dns_failure",
    "header_too_big",
    "protocol_mismatch",
    "network_blocked",
    "keepalive_mismatch",
)
# The families of one deck: the two that decide a reload come twice.
FAMILY_DECK = FAMILIES + (STALE, HEALTHY)
# Families whose proxy answers a GET without a 5xx: the oracle should find no replica failing.
NOT_FAILING_FAMILIES = {HEALTHY, "keepalive_mismatch"}

# How nginx finds the backend.
CLUSTERIP = "clusterip"  # proxy_pass http://<ClusterIP Service name>, resolved at load
HEADLESS = "headless"  # proxy_pass http://<headless Service name>: pod IPs, resolved at load
UPSTREAM_PODS = "upstream_pods"  # upstream {} with one server per pod (hostname.subdomain)
UPSTREAM_HEADLESS = "upstream_headless"  # upstream {} with the headless name
UPSTREAM_CLUSTERIP = "upstream_clusterip"  # upstream {} with the ClusterIP name
RESOLVER_HEADLESS = "resolver_headless"  # resolver + variable, headless FQDN, valid=1s
RESOLVER_CLUSTERIP = "resolver_clusterip"  # resolver + variable, ClusterIP FQDN, valid=1s
# upstream {} whose servers a controller renders (pod IPs, $(UPSTREAM_SERVERS:…)); rewritten
# only by a render_config step (the controller pushing), loaded only by a reload
CONTROLLER = "controller"
STYLES = (
    CLUSTERIP,
    HEADLESS,
    UPSTREAM_PODS,
    UPSTREAM_HEADLESS,
    UPSTREAM_CLUSTERIP,
    RESOLVER_HEADLESS,
    RESOLVER_CLUSTERIP,
)
# Styles whose addresses are fixed when nginx loads its configuration: a replaced pod's old IP
# stays in them until a reload (and they need the name to resolve at load).
LOAD_TIME_POD_IPS = (HEADLESS, UPSTREAM_PODS, UPSTREAM_HEADLESS)
# Styles that reach the backend through the ClusterIP (the kernel's DNAT in the lab network).
# Cases of a refusing or unreachable endpoint use the other styles, as they did when the lab's
# ClusterIPs were userspace forwarders that accepted first; the kernel now refuses as
# kube-proxy does, so these styles could join those cases (not done yet).
VIA_CLUSTERIP = (CLUSTERIP, UPSTREAM_CLUSTERIP, RESOLVER_CLUSTERIP)
RESOLVER_STYLES = (RESOLVER_HEADLESS, RESOLVER_CLUSTERIP)
UPSTREAM_STYLES = (UPSTREAM_PODS, UPSTREAM_HEADLESS, UPSTREAM_CLUSTERIP)
# Styles that write an upstream {} block (the controller's too)
UPSTREAM_BLOCKS = UPSTREAM_STYLES + (CONTROLLER,)

# nginx's `valid=1s` is counted in whole seconds: a cached answer lives up to 2 s.
RESOLVER_SETTLE = 2.2
RELOAD = ["nginx", "-s", "reload"]

# The proxy kinds (the lab runs Debian's nginx and haproxy). HAProxy is drawn for the families
# the issue names and the styles it has: a `server` naming the ClusterIP or the headless
# Service (or per-pod names), resolved at start and at each reload (no `resolvers`).
NGINX, HAPROXY = "nginx", "haproxy"
HAPROXY_FAMILIES = (STALE, HEALTHY, "no_endpoints", "backend_not_ready", "port_mismatch")
# its master CLI's reload; the master does not accept on it while it re-executes itself
HAPROXY_RELOAD = [
    "sh",
    "-c",
    "for i in 1 2 3 4 5; do echo reload | socat stdio /run/haproxy-master.sock && exit 0; "
    "sleep 1; done; exit 1",
]

APP_NAMES = ("open-webui", "api", "shop", "grafana", "billing")
PROXY_NAMES = ("nginx-proxy", "edge", "gateway", "web-proxy")
BACKEND_NAMESPACES = ("open-webui", "apps", "prod", "team-a")
PROXY_NAMESPACES = ("ingress", "edge", "frontend")
CONTAINER_PORTS = (8080, 3000, 8000, 5000)
WRONG_PORTS = {8080: 3000, 3000: 8080, 8000: 8080, 5000: 5001}


class _Case:
    """One case under construction: the random source, every choice made, the objects."""

    def __init__(self, rng: random.Random, family: str) -> None:
        self.rng = rng
        self.family = family
        self.choices: dict[str, Any] = {}
        self.timeline: list[dict[str, Any]] = []
        self.kind = NGINX  # the proxy kind
        self.stale: list[str] = []  # proxy pod names left stale
        self.unapplied: list[str] = []  # proxy pod names the controller did not push to
        self.final_status: int | None = 200  # what every final request answers (None: mixed)
        self.status_5xx = 502  # what a failing replica answers
        # set by the families
        self.style = CLUSTERIP
        self.app: dict[str, Any] = {"status": 200}
        self.app_ready = True
        self.backend_replicas = 1
        self.target_port_name_typo = False
        self.selector_typo: dict[str, str] | None = None
        self.scheme = "http"
        self.dns_name: str | None = None  # a name that does not resolve (dns_failure)
        self.resolver_valid = "1s"
        self.read_timeout: int | None = None
        self.connect_timeout: int | None = None
        self.keepalive_upstream = False
        self.next_upstream_off = False
        self.fault_at_start = True
        self.crash_noise_ok = False
        self.policy: str | None = None  # None, "deny" (the proxy not admitted) or "allow"

    # ------------------------------------------------------------------ random choices

    def pick(self, key: str, options: Any, weights: list[float] | None = None) -> Any:
        """One of ``options`` (recorded under ``key``)."""
        value = self.rng.choices(list(options), weights=weights)[0]
        self.choices[key] = value
        return value

    def chance(self, key: str, p: float) -> bool:
        """True with probability ``p`` (recorded under ``key``)."""
        value = self.rng.random() < p
        self.choices[key] = value
        return value

    def integer(self, key: str, lo: int, hi: int) -> int:
        value = self.rng.randint(lo, hi)
        self.choices[key] = value
        return value

    def sample(self, key: str, items: list[str], k: int) -> list[str]:
        value = sorted(self.rng.sample(items, k))
        self.choices[key] = value
        return value


# ---------------------------------------------------------------------- the layout


def _layout(case: _Case) -> dict[str, Any]:
    """Names, namespaces, replicas, ports: the parts every family shares."""
    lay: dict[str, Any] = {}
    lay["app"] = case.pick("app_name", APP_NAMES)
    lay["proxy"] = case.pick("proxy_name", PROXY_NAMES)
    lay["bns"] = case.pick("backend_namespace", BACKEND_NAMESPACES)
    same = case.chance("same_namespace", 0.6)
    lay["pns"] = lay["bns"] if same else case.pick("proxy_namespace", PROXY_NAMESPACES)
    lay["replicas"] = case.pick("proxy_replicas", (1, 2, 3, 4), [3, 3, 2, 2])
    lay["cport"] = case.pick("container_port", CONTAINER_PORTS)
    lay["sport"] = case.pick("service_port", (lay["cport"], 80))
    lay["target_by_name"] = case.chance("target_port_by_name", 0.5)
    lay["headless"] = f"{lay['app']}-headless"
    lay["listen"] = case.pick("proxy_listen_port", (80, 8080), [3, 1])
    lay["proxies"] = [f"{lay['proxy']}-{i}" for i in range(lay["replicas"])]
    return lay


def _name(case: _Case, lay: dict[str, Any], service: str, key: str) -> str:
    """A name of ``service`` (in the backend namespace) that /etc/hosts resolves from the
    proxy pod: short only from the same namespace."""
    forms = ["fqdn", "svc.ns", "svc.ns.svc"]
    if lay["bns"] == lay["pns"]:
        forms.append("short")
    form = case.pick(key, forms)
    return {
        "short": service,
        "svc.ns": f"{service}.{lay['bns']}",
        "svc.ns.svc": f"{service}.{lay['bns']}.svc",
        "fqdn": f"{service}.{lay['bns']}.svc.cluster.local",
    }[form]


def _backend_pods(lay: dict[str, Any], count: int) -> list[str]:
    return [f"{lay['app']}-{i}" for i in range(count)]


# ---------------------------------------------------------------------- nginx configuration


def _upstream_target(case: _Case, lay: dict[str, Any]) -> tuple[str, str]:
    """(text before the server block, what proxy_pass names) for the case's style."""
    style, scheme = case.style, case.scheme
    fqdn = "{}.%s.svc.cluster.local" % lay["bns"]
    if style == CLUSTERIP:
        return "", f"{scheme}://{_name(case, lay, lay['app'], 'name_form')}:{lay['sport']}"
    if style == HEADLESS:
        return "", f"{scheme}://{_name(case, lay, lay['headless'], 'name_form')}:{lay['cport']}"
    if style in UPSTREAM_BLOCKS:
        block = case.pick("upstream_name", (lay["app"], "backend", f"{lay['app']}-upstream"))
        if style == UPSTREAM_PODS:
            servers = [
                f"{pod}.{lay['headless']}.{lay['bns']}.svc.cluster.local:{lay['cport']}"
                for pod in _backend_pods(lay, case.backend_replicas)
            ]
        elif style == UPSTREAM_HEADLESS:
            servers = [f"{_name(case, lay, lay['headless'], 'name_form')}:{lay['cport']}"]
        else:
            servers = [f"{_name(case, lay, lay['app'], 'name_form')}:{lay['sport']}"]
        lines = [f"upstream {block} {{"] + [f"    server {s};" for s in servers]
        if style == CONTROLLER:
            lines = [
                "# rendered by the control plane from the EndpointSlices of "
                f"{lay['bns']}/{lay['app']}",
                f"upstream {block} {{",
                f"    $(UPSTREAM_SERVERS:{lay['app']}.{lay['bns']})",
            ]
        if case.keepalive_upstream:
            lines += ["    keepalive 16;", "    keepalive_timeout 60s;"]
        return "\n".join(lines + ["}", ""]), f"{scheme}://{block}"
    # resolver styles
    if case.dns_name is not None:
        host = case.dns_name
    elif style == RESOLVER_HEADLESS:
        host = fqdn.format(lay["headless"]) + f":{lay['cport']}"
    else:
        host = fqdn.format(lay["app"]) + f":{lay['sport']}"
    return "", f"{scheme}://{host}"


def _reload(case: _Case) -> list[str]:
    """The command that reloads the case's proxy kind (what the oracle and a user would run)."""
    return list(HAPROXY_RELOAD if case.kind == HAPROXY else RELOAD)


def _haproxy_cfg(case: _Case, lay: dict[str, Any]) -> str:
    """haproxy.cfg for the case's style: its `server` lines name what nginx's would."""
    style = case.style
    if style in (HEADLESS, UPSTREAM_HEADLESS):
        servers = [f"{_name(case, lay, lay['headless'], 'name_form')}:{lay['cport']}"]
    elif style == UPSTREAM_PODS:
        servers = [
            f"{pod}.{lay['headless']}.{lay['bns']}.svc.cluster.local:{lay['cport']}"
            for pod in _backend_pods(lay, case.backend_replicas)
        ]
    else:  # the ClusterIP name
        servers = [f"{_name(case, lay, lay['app'], 'name_form')}:{lay['sport']}"]
    backend = case.pick("upstream_name", (lay["app"], "backend", f"{lay['app']}-upstream"))
    lines = [
        "global",
        "    log stdout format raw local0",
        "    stats socket /run/haproxy/admin.sock mode 660 level admin",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    retries 1",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
    ]
    if case.chance("haproxy_redispatch", 0.3):
        lines.append("    option redispatch")
    lines += [
        "",
        "frontend http",
        f"    bind $(POD_IP):{lay['listen']}",
        f"    default_backend {backend}",
        "",
        f"backend {backend}",
    ]
    lines += [f"    server s{i} {server}" for i, server in enumerate(servers)]
    return "\n".join(lines) + "\n"


def _conf_d(case: _Case, lay: dict[str, Any]) -> str:
    before, target = _upstream_target(case, lay)
    server = [f"    listen       {lay['listen']};"]
    if case.chance("server_name", 0.5):
        server.append("    server_name  _;")
    if case.style in RESOLVER_STYLES:
        server.append(
            f"    resolver kube-dns.kube-system.svc.cluster.local valid={case.resolver_valid} ipv6=off;"
        )
        if case.chance("resolver_timeout", 0.3):
            server.append("    resolver_timeout 2s;")
    if case.chance("health_location", 0.3):
        server.append('    location = /healthz { return 200 "ok\\n"; }')
    loc: list[str] = []
    if case.read_timeout is not None:
        loc.append(f"proxy_read_timeout {case.read_timeout}s;")
    if case.connect_timeout is not None:
        loc.append(f"proxy_connect_timeout {case.connect_timeout}s;")
    if case.keepalive_upstream:
        loc += ["proxy_http_version 1.1;", 'proxy_set_header Connection "";']
    if case.next_upstream_off:
        loc.append("proxy_next_upstream off;")
    if case.chance("forward_headers", 0.5):
        loc += [
            "proxy_set_header Host $host;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        ]
    if case.style in RESOLVER_STYLES:
        loc += [f"set $backend {target};", "proxy_pass $backend;"]
    else:
        loc.append(f"proxy_pass {target};")
    server.append("    location / {")
    server += [f"        {line}" for line in loc]
    server.append("    }")
    return before + "server {\n" + "\n".join(server) + "\n}\n"


def _nginx_conf(case: _Case, lay: dict[str, Any]) -> str | None:
    """A whole nginx.conf, or None for the lab's default (error log → stderr).

    With ``error_log: file`` the error log is a real file in the pod (``kubectl logs`` then
    shows only the access log); the lab's /var/log/nginx/error.log is a link to stderr, so the
    file has another name.
    """
    where = case.pick("error_log", ("stderr", "file"), [4, 1])
    if where == "stderr" and not case.chance("own_nginx_conf", 0.2):
        return None
    error_log = (
        "/var/log/nginx/error.log" if where == "stderr" else "/var/log/nginx/proxy-error.log"
    )
    level = case.pick("error_log_level", ("notice", "warn", "error"))
    access = case.pick("access_log_format", ("main", "combined"))
    fmt = (
        "    log_format  main  '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
        "                      '$status $body_bytes_sent \"$http_referer\" '\n"
        '                      \'"$http_user_agent" "$http_x_forwarded_for"\';\n'
        if access == "main"
        else ""
    )
    access_line = (
        "    access_log  /var/log/nginx/access.log  main;\n"
        if access == "main"
        else "    access_log  /var/log/nginx/access.log;\n"
    )
    return (
        "worker_processes  1;\n"
        f"error_log  {error_log} {level};\n"
        "pid        /run/nginx.pid;\n"
        "events {\n    worker_connections  256;\n}\n"
        "http {\n"
        "    default_type  application/octet-stream;\n"
        f"{fmt}{access_line}"
        "    keepalive_timeout  65;\n"
        "    include /etc/nginx/conf.d/*.conf;\n"
        "}\n"
    )


# ---------------------------------------------------------------------- families


def _family_stale(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", LOAD_TIME_POD_IPS + (CONTROLLER,))
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.fault_at_start = False
    case.crash_noise_ok = True


def _stale_fault(case: _Case, lay: dict[str, Any]) -> None:
    """Every backend pod replaced (a rollout); some replicas reloaded after it, the rest stale."""
    for pod in _backend_pods(lay, case.backend_replicas):
        case.timeline.append({"replace_pod": {"pod": pod, "namespace": lay["bns"]}})
    if case.chance("requests_while_stale", 0.5):
        case.timeline.append(
            {"requests": {"count": lay["replicas"], "expect_status": case.status_5xx}}
        )
    stale_count = case.integer("stale_count", 1, lay["replicas"])
    case.stale = case.sample("stale_replicas", lay["proxies"], stale_count)
    for pod in lay["proxies"]:
        if case.style == CONTROLLER:
            # the controller wrote every replica's config: the stale ones missed the reload
            case.timeline.append({"render_config": {"pod": pod, "namespace": lay["pns"]}})
        if pod not in case.stale:
            case.timeline.append(
                {"exec": {"pod": pod, "namespace": lay["pns"], "command": _reload(case)}}
            )
    case.final_status = case.status_5xx if len(case.stale) == lay["replicas"] else None


def _family_unapplied(case: _Case, lay: dict[str, Any]) -> None:
    case.style = CONTROLLER
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.fault_at_start = False
    case.crash_noise_ok = True


def _unapplied_fault(case: _Case, lay: dict[str, Any]) -> None:
    """Every backend pod replaced; the controller pushes (rewrites, then reloads) to some
    replicas, never to the others: their config on disk still lists the old pod IPs."""
    for pod in _backend_pods(lay, case.backend_replicas):
        case.timeline.append({"replace_pod": {"pod": pod, "namespace": lay["bns"]}})
    count = case.integer("unapplied_count", 1, lay["replicas"])
    case.unapplied = case.sample("unapplied_replicas", lay["proxies"], count)
    for pod in lay["proxies"]:
        if pod not in case.unapplied:
            case.timeline.append({"render_config": {"pod": pod, "namespace": lay["pns"]}})
            case.timeline.append(
                {"exec": {"pod": pod, "namespace": lay["pns"], "command": list(RELOAD)}}
            )
    case.final_status = case.status_5xx if len(case.unapplied) == lay["replicas"] else None


def _family_healthy(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2, 3), [2, 2, 1])
    case.fault_at_start = False
    case.crash_noise_ok = True


def _healthy_events(case: _Case, lay: dict[str, Any]) -> None:
    """Changes that a correct proxy configuration survives (or a reload repaired)."""
    pods = _backend_pods(lay, case.backend_replicas)
    if case.style in LOAD_TIME_POD_IPS:
        events = ["none", "replaced_then_reloaded"]
        if len(pods) > 1 and not case.next_upstream_off and case.kind == NGINX:
            # One of several servers replaced: nginx still dials its old address, fails over to
            # a live one (proxy_next_upstream error) and answers 200. Nothing fails, so a
            # reload is not needed (the oracle: not_failing); the stale server is a warning.
            events.append("replace_one_retried")
        event = case.pick("healthy_event", tuple(events), [1, 1, 2][: len(events)])
        if event == "none":
            return
        if event == "replace_one_retried":
            pod = case.pick("replaced_pod", pods)
            case.timeline.append({"replace_pod": {"pod": pod, "namespace": lay["bns"]}})
            return
        for pod in pods:
            case.timeline.append({"replace_pod": {"pod": pod, "namespace": lay["bns"]}})
        if case.chance("requests_while_stale", 0.6):
            case.timeline.append(
                {"requests": {"count": lay["replicas"], "expect_status": case.status_5xx}}
            )
        for pod in lay["proxies"]:
            case.timeline.append(
                {"exec": {"pod": pod, "namespace": lay["pns"], "command": _reload(case)}}
            )
        return
    events = ["none", "replace"]
    if len(pods) > 1:
        events += ["delete_one", "not_ready_one"]
        if case.style in VIA_CLUSTERIP:
            events.append("terminate_one")
    event = case.pick("healthy_event", events)
    if event == "replace":
        for pod in case.sample("replaced_pods", pods, case.integer("replaced", 1, len(pods))):
            case.timeline.append({"replace_pod": {"pod": pod, "namespace": lay["bns"]}})
    elif event == "delete_one":
        case.timeline.append({"delete_pod": {"pod": pods[-1], "namespace": lay["bns"]}})
    elif event == "not_ready_one":
        case.timeline.append(
            {"set_ready": {"pod": pods[-1], "namespace": lay["bns"], "ready": False}}
        )
    elif event == "terminate_one":
        case.timeline.append({"terminate_pod": {"pod": pods[-1], "namespace": lay["bns"]}})
    if event != "none" and case.style == RESOLVER_HEADLESS:
        case.timeline.append({"wait": {"seconds": RESOLVER_SETTLE}})


def _family_no_endpoints(case: _Case, lay: dict[str, Any]) -> None:
    variant = case.pick("variant", ("selector_typo", "scaled_to_zero"))
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    if variant == "selector_typo":
        # the name must resolve at load: through the ClusterIP, or at run time
        case.style = case.pick("style", VIA_CLUSTERIP + (RESOLVER_HEADLESS,))
        typo = case.pick("typo", ("no_dash", "suffix", "other_key"))
        app = lay["app"]
        case.selector_typo = {
            "no_dash": {"app": app.replace("-", "") if "-" in app else app + "s"},
            "suffix": {"app": f"{app}-v2"},
            "other_key": {"app.kubernetes.io/name": app},
        }[typo]
    else:
        case.style = case.pick("style", STYLES)
        case.fault_at_start = False


def _no_endpoints_fault(case: _Case, lay: dict[str, Any]) -> None:
    for pod in _backend_pods(lay, case.backend_replicas):
        case.timeline.append({"delete_pod": {"pod": pod, "namespace": lay["bns"]}})


def _family_backend_not_ready(case: _Case, lay: dict[str, Any]) -> None:
    # not-ready pods have no headless DNS record: nginx could not start with a load-time name
    case.style = case.pick("style", VIA_CLUSTERIP + (RESOLVER_HEADLESS,))
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.fault_at_start = case.chance("not_ready_from_start", 0.5)
    if case.fault_at_start:
        case.app_ready = False


def _not_ready_fault(case: _Case, lay: dict[str, Any]) -> None:
    for pod in _backend_pods(lay, case.backend_replicas):
        case.timeline.append({"set_ready": {"pod": pod, "namespace": lay["bns"], "ready": False}})


def _crash_loop(case: _Case) -> dict[str, Any]:
    oom = case.chance("oomkilled", 0.4)
    app: dict[str, Any] = {"listen": False, "exit_after": 0.2}
    app.update({"exit_code": 137, "exit_reason": "OOMKilled"} if oom else {"exit_code": 1})
    return app


def _family_backend_down(case: _Case, lay: dict[str, Any]) -> None:
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.fault_at_start = case.chance("down_from_start", 0.5)
    if case.fault_at_start:
        # a pod that never stays up has no DNS record at nginx's start
        case.style = case.pick("style", VIA_CLUSTERIP + (RESOLVER_HEADLESS,))
        case.app = _crash_loop(case)
    else:
        case.style = case.pick("style", STYLES)


def _behaviour_fault(case: _Case, lay: dict[str, Any], app: dict[str, Any]) -> None:
    for pod in _backend_pods(lay, case.backend_replicas):
        case.timeline.append({"set_behaviour": {"pod": pod, "namespace": lay["bns"], "app": app}})


def _family_port_mismatch(case: _Case, lay: dict[str, Any]) -> None:
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    variant = case.pick("variant", ("app_listens_elsewhere", "named_target_port"))
    if variant == "named_target_port":
        case.style = case.pick("style", VIA_CLUSTERIP)
        case.target_port_name_typo = True
        return
    # the app's port refuses: seen directly (behind the lab's ClusterIP it would be a reset)
    case.style = case.pick("style", LOAD_TIME_POD_IPS + (RESOLVER_HEADLESS,))
    case.fault_at_start = case.chance("wrong_port_from_start", 0.5)
    if case.fault_at_start:
        case.app = {"status": 200, "listen_port": WRONG_PORTS[lay["cport"]]}


def _family_backend_502(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    body = case.pick(
        "body_502",
        ('{"detail":"upstream model server unavailable"}', "Bad Gateway", '{"error":"db down"}'),
    )
    case.fault_at_start = case.chance("502_from_start", 0.5)
    case.app = {"status": 502 if case.fault_at_start else 200, "body": body}


def _family_upstream_timeout(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = 1  # nginx tries each server of an upstream in turn on a timeout
    case.read_timeout = case.pick("read_timeout", (1, 2))
    case.status_5xx = 504
    case.fault_at_start = case.chance("slow_from_start", 0.5)
    if case.fault_at_start:
        case.app = {"status": 200, "delay": case.read_timeout + 1.5}


def _family_backend_crash(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    how = case.pick("crash_mode", ("close", "reset"))
    case.fault_at_start = case.chance("crashing_from_start", 0.5)
    if case.fault_at_start:
        case.app = {"status": 200, how: True}


def _crash_step(case: _Case, lay: dict[str, Any], pod: str) -> dict[str, Any]:
    code = case.pick("crash_exit_code", (137, 2, 139), [3, 1, 1])
    return {"crash": {"pod": pod, "namespace": lay["bns"], "exit_code": code}}


def _family_dns_failure(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", RESOLVER_STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.resolver_valid = case.pick("resolver_valid", ("1s", "10s", "30s"))
    service = lay["headless"] if case.style == RESOLVER_HEADLESS else lay["app"]
    port = lay["cport"] if case.style == RESOLVER_HEADLESS else lay["sport"]
    form = case.pick("bad_name", ("short", "svc.ns", "wrong_namespace", "misspelt"))
    other_ns = "default" if lay["bns"] != "default" else "apps"
    host = {
        "short": service,  # nginx's resolver ignores the search domains
        "svc.ns": f"{service}.{lay['bns']}",
        "wrong_namespace": f"{service}.{other_ns}.svc.cluster.local",
        "misspelt": f"{service}-svc.{lay['bns']}.svc.cluster.local",
    }[form]
    case.dns_name = f"{host}:{port}"


def _family_header_too_big(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    size = case.pick("header_bytes", (8192, 16384, 32768))
    case.fault_at_start = case.chance("big_header_from_start", 0.5)
    if case.fault_at_start:
        case.app = {"status": 200, "header_bytes": size}


def _family_protocol_mismatch(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", STYLES)
    case.backend_replicas = case.pick("backend_replicas", (1, 2))
    case.scheme = "https"


def _family_network_blocked(case: _Case, lay: dict[str, Any]) -> None:
    # nginx dials the pod itself (a load-time or resolved pod IP), whose connects hang
    case.style = case.pick("style", LOAD_TIME_POD_IPS + (RESOLVER_HEADLESS,))
    case.backend_replicas = 1  # nginx tries each server of an upstream in turn on a timeout
    case.connect_timeout = case.pick("connect_timeout", (1, 2))
    case.status_5xx = 504
    case.fault_at_start = case.chance("blocked_from_start", 0.5)
    # The lab enforces NetworkPolicies: a policy that admits only another namespace drops the
    # proxy's connects from the start, so it is the block itself (then the app accepts as
    # usual); otherwise the app stops accepting (from the start, or by a timeline step later).
    case.policy = "deny" if case.fault_at_start and case.chance("network_policy", 0.7) else None
    if case.fault_at_start and case.policy is None:
        case.app = {"status": 200, "accept": False}


def _family_keepalive_mismatch(case: _Case, lay: dict[str, Any]) -> None:
    case.style = case.pick("style", UPSTREAM_STYLES)
    case.backend_replicas = 1  # one idle connection per proxy replica, to the one pod
    case.keepalive_upstream = True
    case.app = {"status": 200, "keepalive_timeout": 1, "keepalive_race": True}


FAMILY_SETUP = {
    STALE: _family_stale,
    HEALTHY: _family_healthy,
    UNAPPLIED: _family_unapplied,
    "no_endpoints": _family_no_endpoints,
    "backend_not_ready": _family_backend_not_ready,
    "backend_down": _family_backend_down,
    "port_mismatch": _family_port_mismatch,
    "backend_502": _family_backend_502,
    "upstream_timeout": _family_upstream_timeout,
    "backend_crash": _family_backend_crash,
    "dns_failure": _family_dns_failure,
    "header_too_big": _family_header_too_big,
    "protocol_mismatch": _family_protocol_mismatch,
    "network_blocked": _family_network_blocked,
    "keepalive_mismatch": _family_keepalive_mismatch,
}


def _fault_steps(case: _Case, lay: dict[str, Any]) -> None:
    """The timeline steps that inject the family's fault (after the warm-up)."""
    family, pods = case.family, _backend_pods(lay, case.backend_replicas)
    if family == STALE:
        _stale_fault(case, lay)
    elif family == UNAPPLIED:
        _unapplied_fault(case, lay)
    elif family == HEALTHY:
        _healthy_events(case, lay)
    elif family == "no_endpoints" and not case.fault_at_start:
        _no_endpoints_fault(case, lay)
    elif family == "backend_not_ready" and not case.fault_at_start:
        _not_ready_fault(case, lay)
    elif family == "backend_down" and not case.fault_at_start:
        _behaviour_fault(case, lay, _crash_loop(case))
    elif family == "port_mismatch" and not case.fault_at_start and not case.target_port_name_typo:
        _behaviour_fault(case, lay, {"listen_port": WRONG_PORTS[lay["cport"]]})
    elif family == "backend_502" and not case.fault_at_start:
        _behaviour_fault(case, lay, {"status": 502})
    elif family == "upstream_timeout" and not case.fault_at_start:
        _behaviour_fault(case, lay, {"delay": (case.read_timeout or 1) + 1.5})
    elif family == "backend_crash":
        # The kills come before a change of behaviour: a kill after a restart is restarted with
        # a back-off, and the lab's ClusterIP forwarder may then be reopened by two syncs at once
        # ("address already in use" at lab-up, a race in badlab's Forwarder.update).
        crashed = case.sample("crashed_pods", pods, case.integer("crashes", 1, len(pods)))
        for pod in crashed:
            case.timeline.append(_crash_step(case, lay, pod))
        if not case.fault_at_start:
            _behaviour_fault(case, lay, {case.choices["crash_mode"]: True})
    elif family == "header_too_big" and not case.fault_at_start:
        _behaviour_fault(case, lay, {"header_bytes": case.choices["header_bytes"]})
    elif family == "network_blocked" and not case.fault_at_start:
        _behaviour_fault(case, lay, {"accept": False})
    if family == "backend_down":
        case.timeline.append({"wait": {"seconds": 1.5}})  # into CrashLoopBackOff
    elif (
        case.style == RESOLVER_HEADLESS
        and family in ("no_endpoints", "backend_not_ready")
        and not case.fault_at_start
    ):
        case.timeline.append({"wait": {"seconds": RESOLVER_SETTLE}})


def _final_requests(case: _Case, lay: dict[str, Any]) -> None:
    count = max(2, lay["replicas"])
    if case.family == "keepalive_mismatch":
        # each replica gets one GET (an idle upstream connection), then one POST on it
        count = lay["replicas"]
        case.timeline.append({"requests": {"count": count, "expect_status": 200}})
        case.timeline.append({"wait": {"seconds": 1.5}})
        case.timeline.append({"requests": {"count": count, "method": "POST", "expect_status": 502}})
        case.timeline.append({"requests": {"count": count, "expect_status": 200}})
        return
    if case.status_5xx == 504:
        count = 1  # each waits for nginx's timeout
    step: dict[str, Any] = {"count": count}
    if case.final_status is not None:
        step["expect_status"] = case.final_status
    case.timeline.append({"requests": step})


# ---------------------------------------------------------------------- assembly


def _objects(
    case: _Case, lay: dict[str, Any], conf_d: str, nginx_conf: str | None
) -> dict[str, Any]:
    app, bns, pns = lay["app"], lay["bns"], lay["pns"]
    selector = {"app": app}
    target_port: int | str = "http" if lay["target_by_name"] else lay["cport"]
    svc_target: int | str = "web" if case.target_port_name_typo else target_port
    services: list[dict[str, Any]] = [
        {
            "name": app,
            "namespace": bns,
            "selector": case.selector_typo or selector,
            "ports": [{"name": "http", "port": lay["sport"], "targetPort": svc_target}],
        }
    ]
    headless_needed = case.style in (HEADLESS, UPSTREAM_PODS, UPSTREAM_HEADLESS, RESOLVER_HEADLESS)
    if headless_needed or case.chance("extra_headless_service", 0.3):
        services.append(
            {
                "name": lay["headless"],
                "namespace": bns,
                "clusterIP": "None",
                "selector": case.selector_typo or selector,
                "ports": [{"name": "http", "port": lay["cport"], "targetPort": target_port}],
            }
        )
    services.append(
        {
            "name": lay["proxy"],
            "namespace": pns,
            "selector": {"app": lay["proxy"]},
            "ports": [{"name": "http", "port": 80, "targetPort": lay["listen"]}],
        }
    )
    backend_container: dict[str, Any] = {
        "name": app,
        "image": f"registry.example.com/{app}:1.{case.integer('image_minor', 0, 9)}",
        "ports": [{"name": "http", "containerPort": lay["cport"]}],
        "app": dict(case.app),
    }
    if not case.app_ready:
        backend_container["ready"] = False
    backend: dict[str, Any] = {
        "name": app,
        "namespace": bns,
        "replicas": case.backend_replicas,
        "labels": {"app": app},
        "containers": [backend_container],
    }
    if case.style == UPSTREAM_PODS or case.chance("pod_subdomain", 0.3):
        backend["subdomain"] = lay["headless"]
    nginx: dict[str, Any] = {}
    if nginx_conf is not None:
        nginx["nginx.conf"] = nginx_conf
    nginx["conf.d"] = {"default.conf": conf_d}
    if case.kind == NGINX and case.chance("libc_musl", 0.2):
        nginx["libc"] = "musl"
    proxy_container: dict[str, Any] = {
        "name": "nginx",
        "image": "nginx:1.27",
        "ports": [{"name": "http", "containerPort": lay["listen"]}],
        "nginx": nginx,
    }
    if case.kind == HAPROXY:
        proxy_container = {
            "name": "haproxy",
            "image": "haproxy:2.6",
            "ports": [{"name": "http", "containerPort": lay["listen"]}],
            "haproxy": {"haproxy.cfg": conf_d},
        }
    containers: list[dict[str, Any]] = [proxy_container]
    if case.chance("sidecar_first", 0.15):
        containers.insert(
            0,
            {
                "name": "log-shipper",
                "image": "fluent/fluent-bit:3.0",
                "ports": [{"name": "metrics", "containerPort": 2020}],
                "app": {"status": 200, "body": "fluent-bit ok\n"},
            },
        )
    proxy_pod = {
        "name": lay["proxy"],
        "namespace": pns,
        "replicas": lay["replicas"],
        "labels": {"app": lay["proxy"]},
        "containers": containers,
    }
    scenario: dict[str, Any] = {
        "namespace": pns,
        "services": services,
        "pods": [backend, proxy_pod],
        "proxy": {"service": lay["proxy"], "namespace": pns},
        "target": {"service": app, "namespace": bns},
    }
    policy = case.policy
    if policy is None and case.chance("unrelated_network_policy", 0.1):
        policy = "allow"
    if policy is not None:
        source = "monitoring" if policy == "deny" else pns
        scenario["network_policies"] = [
            {
                "name": f"{app}-allow-{source}",
                "namespace": bns,
                "spec": {
                    "podSelector": {"matchLabels": {"app": app}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": source}
                                    }
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": lay["cport"]}],
                        }
                    ],
                },
            }
        ]
    return scenario


def proxy_container_name(case: _Case) -> str:
    return "haproxy" if case.kind == HAPROXY else "nginx"


def family_of(seed: int, index: int) -> str:
    """The family of case ``index``: decks of FAMILY_DECK, each shuffled by the seed."""
    deck = list(FAMILY_DECK)
    random.Random(f"badlab-generate:{seed}:deck:{index // len(deck)}").shuffle(deck)
    return deck[index % len(deck)]


def case_name(seed: int, index: int, family: str | None = None) -> str:
    """``<family>-gen-<seed>-<index>``: a scenario file name the loader accepts for the cause."""
    return f"{family or family_of(seed, index)}-gen-{seed}-{index}"


def generate(seed: int, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The case ``index`` of ``seed``: (scenario dict, injected dict); always the same."""
    family = family_of(seed, index)
    case = _Case(random.Random(f"badlab-generate:{seed}:{index}"), family)
    lay = _layout(case)
    FAMILY_SETUP[family](case, lay)
    if (
        family in HAPROXY_FAMILIES
        and case.style in (CLUSTERIP, HEADLESS) + UPSTREAM_STYLES
        and case.chance("haproxy", 0.4)
    ):
        case.kind = HAPROXY
        case.status_5xx = 503  # a refused or failed connect: haproxy's SC, 503
    if case.style in RESOLVER_STYLES and family == STALE:  # pragma: no cover - setup guards it
        raise AssertionError("a resolver style cannot make a stale case")
    if case.kind == HAPROXY:
        pass  # nginx's own timeouts, keep-alive and next-upstream are not drawn
    elif case.read_timeout is None and case.chance("read_timeout_set", 0.3):
        case.read_timeout = case.pick("read_timeout", (1, 2, 30))  # the app answers at once
    if (
        case.kind != HAPROXY
        and case.connect_timeout is None
        and case.chance("connect_timeout_set", 0.3)
    ):
        case.connect_timeout = case.pick("connect_timeout", (1, 2, 5))
    if case.style in UPSTREAM_BLOCKS and family != "keepalive_mismatch" and case.kind != HAPROXY:
        case.next_upstream_off = case.chance("proxy_next_upstream_off", 0.3)
        # Upstream keep-alive is common; the app closes idle connections cleanly (a FIN). Not
        # with pods turned not ready: an open connection through the ClusterIP still reaches
        # them (as conntrack keeps it in a cluster), so the 502 would depend on timing.
        if family != "backend_not_ready":
            case.keepalive_upstream = case.chance("upstream_keepalive", 0.2)
    conf_d = _haproxy_cfg(case, lay) if case.kind == HAPROXY else _conf_d(case, lay)
    nginx_conf = None if case.kind == HAPROXY else _nginx_conf(case, lay)

    # the timeline: warm-up, an unrelated reload, the fault, noise, the final requests
    if not case.fault_at_start and case.chance("warm_up", 0.6):
        case.timeline.append({"requests": {"count": lay["replicas"], "expect_status": 200}})
    if not case.fault_at_start and case.chance("reload_before_fault", 0.15):
        for pod in case.sample("reloaded_before_fault", lay["proxies"], 1):
            case.timeline.append(
                {"exec": {"pod": pod, "namespace": lay["pns"], "command": _reload(case)}}
            )
    _fault_steps(case, lay)
    if case.crash_noise_ok and case.chance("backend_restart_noise", 0.15):
        pod = _backend_pods(lay, case.backend_replicas)[0]
        if not any("delete_pod" in step for step in case.timeline):
            case.timeline.append(_crash_step(case, lay, pod))
    if family in NOT_FAILING_FAMILIES or family in (STALE, UNAPPLIED):
        case.final_status = case.final_status if family in (STALE, UNAPPLIED) else 200
    else:
        case.final_status = case.status_5xx
    if case.chance("log_noise", 0.3):
        lines = case.pick("log_noise_lines", (200, 2000, 20000), [3, 2, 1])
        for pod in case.sample(
            "log_noise_pods", lay["proxies"], case.integer("noisy", 1, lay["replicas"])
        ):
            step: dict[str, Any] = {"pod": pod, "namespace": lay["pns"], "lines": lines}
            if case.choices.get("sidecar_first"):
                step["container"] = proxy_container_name(case)
            case.timeline.append({"log_noise": step})
    _final_requests(case, lay)

    scenario = _objects(case, lay, conf_d, nginx_conf)
    if case.choices.get("sidecar_first"):
        for step in case.timeline:
            if "exec" in step:
                step["exec"]["container"] = proxy_container_name(case)
    scenario["description"] = (
        f"generated case {seed}/{index}: {family} ({case.kind}, {case.style}, "
        f"{lay['replicas']} proxy replica(s), {case.backend_replicas} backend pod(s))"
    )
    scenario["timeline"] = case.timeline
    if family in (STALE, UNAPPLIED):
        proxy_status = case.status_5xx
    elif family in NOT_FAILING_FAMILIES:
        proxy_status = 200
    else:
        proxy_status = case.status_5xx
    expect: dict[str, Any] = {"cause": family, "proxy_status": proxy_status}
    if family == STALE:
        expect["stale_addresses"] = True
        expect["stale_replicas"] = list(case.stale)
    elif family == UNAPPLIED:
        expect["stale_addresses"] = True
    scenario["expect"] = expect
    ordered: dict[str, Any] = {
        key: scenario[key]
        for key in (
            "description",
            "namespace",
            "services",
            "pods",
            "network_policies",
            "proxy",
            "target",
            "timeline",
            "expect",
        )
        if key in scenario
    }
    oracle = {}
    for pod in lay["proxies"]:
        if family == STALE:
            oracle[pod] = "needed" if pod in case.stale else "not_failing"
        elif family == UNAPPLIED:  # a reload re-reads the stale config on disk
            oracle[pod] = "useless" if pod in case.unapplied else "not_failing"
        elif family in NOT_FAILING_FAMILIES:
            oracle[pod] = "not_failing"
        else:
            oracle[pod] = "useless"
    injected = {
        "name": case_name(seed, index, family),
        "seed": seed,
        "index": index,
        "family": family,
        "acceptable": [family],
        "style": case.style,
        "kind": case.kind,
        "proxy_namespace": lay["pns"],
        "stale_replicas": list(case.stale),
        "expected_oracle": oracle,
        "choices": case.choices,
    }
    return ordered, injected


# ---------------------------------------------------------------------- files


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (nginx configuration) as literal blocks, keys in insertion order,
    no anchors: every mapping written out where it stands."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(scenario: dict[str, Any], injected: dict[str, Any] | None = None) -> str:
    """The scenario as a file of tests/lab/scenarios (with the injection as a comment)."""
    head = ""
    if injected is not None:
        head = "".join(
            f"# {line}\n" for line in json.dumps(injected, sort_keys=True, indent=1).splitlines()
        )
        head = "# generated by tests/lab/generate.py; injected:\n" + head
    body = yaml.dump(scenario, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return head + body


def write_case(
    directory: Path, scenario: dict[str, Any], injected: dict[str, Any], extra: str = ""
) -> Path:
    """Write ``<directory>/<family>-gen-<seed>-<index>.yml``; ``extra``: comment lines first."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{injected['name']}.yml"
    comment = "".join(f"# {line}\n" for line in extra.splitlines())
    path.write_text(comment + to_yaml(scenario, injected))
    return path


def validate(path: Path) -> scenario_mod.Scenario:
    """badlab's own loader on a written case (raises ScenarioError on any mistake)."""
    return scenario_mod.load(path)


def main(argv: list[str] | None = None) -> int:
    """Write N generated cases of a seed as scenario files (each validated)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-n", type=int, default=20, help="number of cases (default 20)")
    parser.add_argument("--start", type=int, default=0, help="first index (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the files")
    args = parser.parse_args(argv)
    for index in range(args.start, args.start + args.n):
        scenario, injected = generate(args.seed, index)
        path = write_case(args.out, scenario, injected)
        validate(path)
        print(f"{path}  {injected['style']}  replicas {len(injected['expected_oracle'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
