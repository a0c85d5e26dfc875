# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for nginx_conf: a real ``nginx -T`` dump and hand-written Kubernetes-style ones."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_conf import (
    ConfigSyntaxError,
    error_log_kind,
    error_log_plan,
    k8s_name_info,
    parse_config,
    parse_nginx_t,
    service_for_host,
    split_files,
    tokenize,
    upstream_hosts,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# Hand-written in the shape `nginx -T` prints (the names cannot resolve on this machine, so
# nginx itself could not dump it): relative include, a stream block, a Lua block with
# quotes and braces in Lua comments/strings, and every Kubernetes DNS name form.
K8S_DUMP = r"""nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
nginx: configuration file /etc/nginx/nginx.conf test is successful
# configuration file /etc/nginx/nginx.conf:
user nginx;
events { worker_connections 1024; }
http {
    include mime.types;
    include /etc/nginx/conf.d/*.conf;
}
stream {
    upstream pg { server postgres-0.postgres.db.svc.cluster.local:5432; }
    server { listen 5432; proxy_pass pg; }
    server { listen 6379; proxy_pass redis.cache:6379; }
}

# configuration file /etc/nginx/mime.types:
types {
    text/html  html htm;
}

# configuration file /etc/nginx/conf.d/default.conf:
upstream webui {
    server open-webui:8080;              # short name: the proxy's namespace
    server open-webui.open-webui.svc.cluster.local:8080 backup;
}
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    listen 127.0.0.1:8081;
    server_name _;
    location / { proxy_pass http://webui; }
    location /api { proxy_pass http://api.backend.svc:9000/v1; }
    location /auth { proxy_pass https://auth.security; }
    location /ext { proxy_pass http://example.com; }
    location /dyn {
        resolver kube-dns.kube-system.svc.cluster.local valid=5s;
        set $target "search.backend.svc.cluster.local";
        proxy_pass http://$target:7700$request_uri;
    }
    location /lua {
        content_by_lua_block {
            -- don't trip on this apostrophe { or brace
            local s = "}"  -- a brace in a string
            ngx.say(s)
        }
    }
    location = /q { return 200 '{"ok": true; "x": "}"}'; }
}
"""


def read_fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_real_dump_upstreams_and_targets():
    parsed = parse_nginx_t(read_fixture("nginx_T.txt"))
    assert parsed["errors"] == []
    assert len(parsed["files"]) == 2
    groups = {g["name"]: g for g in parsed["upstreams"]}
    assert sorted(groups) == ["api_v1", "webui"]
    assert groups["webui"]["context"] == "http"  # the include was expanded inside http{}
    assert [(s["host"], s["port"]) for s in groups["webui"]["servers"]] == [
        ("localhost", 8080),
        ("127.77.0.2", 8080),
        ("127.77.0.3", 8081),
    ]
    assert groups["webui"]["servers"][2]["params"] == ["backup"]
    assert groups["api_v1"]["servers"][0]["port"] == 80
    assert groups["webui"]["zone"] == "webui"
    targets = {t["target"]: t for t in parsed["proxy_passes"]}
    assert targets["http://webui"]["upstream"] == "webui"
    assert targets["http://127.77.0.2:8080/"]["upstream"] is None
    dyn = targets["http://$backend:9000"]
    assert dyn["runtime_resolved"] is True
    assert dyn["host"] == "api.lab.svc.cluster.local" and dyn["port"] == 9000
    assert parsed["has_resolver"] is True
    assert parsed["resolvers"][0]["addresses"] == ["127.77.0.53:5353"]
    assert parsed["listen_ports"] == [8002, 8443]
    assert parsed["server_names"] == ["alt.example", "webui.example"]


def test_comment_braces_and_quoted_semicolons_do_not_confuse():
    parsed = parse_nginx_t(read_fixture("nginx_T.txt"))
    health = [d for d in parsed["proxy_passes"] if d["line"] == 20]
    assert health == []  # `return 200 "ok; {fine}"` is not a proxy_pass and broke nothing
    assert parsed["upstreams"][0]["line"] == 2


def test_k8s_dump():
    parsed = parse_nginx_t(K8S_DUMP)
    assert parsed["errors"] == []
    assert parsed["files"][0] == "/etc/nginx/nginx.conf"
    groups = {g["name"]: g for g in parsed["upstreams"]}
    assert groups["pg"]["context"] == "stream"
    assert groups["webui"]["context"] == "http"
    assert parsed["listen_ports"] == [80, 5432, 6379, 8081]
    targets = {t["target"]: t for t in parsed["proxy_passes"]}
    assert targets["redis.cache:6379"]["host"] == "redis.cache"
    assert targets["redis.cache:6379"]["context"] == "stream/server"
    assert targets["pg"]["upstream"] == "pg"
    assert targets["https://auth.security"]["port"] == 443
    dyn = targets["http://$target:7700$request_uri"]
    assert dyn["runtime_resolved"] is True
    assert dyn["host"] == "search.backend.svc.cluster.local"
    assert dyn["variables"] == ["request_uri", "target"]


def test_upstream_hosts_map_to_services():
    hosts = upstream_hosts(parse_nginx_t(K8S_DUMP), namespace="proxy")
    by_host = {(h["host"], h["source"]): h for h in hosts}
    assert by_host[("open-webui", "upstream")]["service"] == "proxy/open-webui"
    assert (
        by_host[("open-webui.open-webui.svc.cluster.local", "upstream")]["service"]
        == "open-webui/open-webui"
    )
    pg = by_host[("postgres-0.postgres.db.svc.cluster.local", "upstream")]
    assert (pg["service"], pg["pod"], pg["upstream"]) == ("db/postgres", "postgres-0", "pg")
    assert by_host[("api.backend.svc", "proxy_pass")]["service"] == "backend/api"
    assert by_host[("redis.cache", "proxy_pass")]["service"] == "cache/redis"
    search = by_host[("search.backend.svc.cluster.local", "proxy_pass")]
    assert search["runtime_resolved"] is True and search["service"] == "backend/search"
    # proxy_pass to a group is represented by the group's servers, not by the group name
    assert not any(h["host"] in ("webui", "pg") for h in hosts)
    assert hosts == sorted(
        hosts, key=lambda h: (h["source"], h["upstream"] or "", h["host"], h["port"] or 0)
    )


@pytest.mark.parametrize(
    "host,namespace,expected",
    [
        ("web", "shop", "shop/web"),
        ("web", None, None),
        ("web.shop", None, "shop/web"),
        ("web.shop.svc", None, "shop/web"),
        ("web.shop.svc.cluster.local", None, "shop/web"),
        ("WEB.Shop.svc.cluster.local.", None, "shop/web"),
        ("web-0.web.shop.svc.cluster.local", None, "shop/web"),
        ("web.shop.svc.corp.internal", None, None),
        ("10-244-1-7.shop.pod.cluster.local", None, None),
        ("10.244.1.7", "shop", None),
        ("[fd00::1]", "shop", None),
        ("localhost", "shop", None),
        ("$backend", "shop", None),
        ("under_score", "shop", None),
        ("a.b.c.d.e", None, None),
    ],
)
def test_service_for_host(host, namespace, expected):
    assert service_for_host(host, namespace) == expected


def test_k8s_name_info_forms_and_custom_domain():
    assert (
        k8s_name_info("web.shop.svc.corp.internal", cluster_domain="corp.internal")["form"]
        == "fqdn"
    )
    assert k8s_name_info("web-0.web.shop.svc")["form"] == "pod"
    pod_ip = k8s_name_info("10-244-1-7.shop.pod.cluster.local")
    assert pod_ip["form"] == "pod_ip" and pod_ip["ip"] == "10.244.1.7"
    assert k8s_name_info("example.com")["form"] == "svc.ns"  # a candidate only, see docstring


def test_split_files_without_headers():
    assert split_files("events {}\n") == [("<input>", "events {}")]


def test_syntax_errors_are_reported_not_raised():
    errors = []
    parse_config("http { server { listen 80 }\n", "x.conf", errors)
    assert any("not terminated" in e for e in errors)
    assert any("not closed" in e for e in errors)
    parsed = parse_nginx_t("}\nupstream a { server 10.0.0.1:80; }")
    assert parsed["upstreams"][0]["servers"][0]["host"] == "10.0.0.1"
    assert any("unexpected '}'" in e for e in parsed["errors"])


def test_tokenizer_quotes_escapes_and_variables():
    tokens = [
        token[0] for token in tokenize('set $a "x\\"y"; log_format f \'${a}b\';\n# c { ;\nz;')
    ]
    assert tokens == ["set", "$a", 'x"y', ";", "log_format", "f", "${a}b", ";", "z", ";"]
    unquoted = [token[0] for token in tokenize("return 200 ${a}b;")]
    assert unquoted == ["return", "200", "${a}b", ";"]


def test_bad_input_type_gives_clear_error():
    with pytest.raises(ConfigSyntaxError, match="must be text"):
        parse_nginx_t(None)
    assert parse_nginx_t(b"upstream a { server 10.0.0.1:80; }")["upstreams"][0]["name"] == "a"


def test_upstream_hosts_without_a_config():
    assert upstream_hosts(None) == []


def test_upstream_keepalive_and_its_default_timeout():
    parsed = parse_nginx_t(
        "upstream a { server a.ns.svc.cluster.local:8080; keepalive 16; }\n"
        "upstream b { server b:80; keepalive 4; keepalive_timeout 5s; }\n"
        "upstream c { server c:80; }\n"
    )
    groups = {g["name"]: (g["keepalive"], g["keepalive_timeout"]) for g in parsed["upstreams"]}
    assert groups == {"a": (16, "60s"), "b": (4, "5s"), "c": (None, None)}


# ---------------------------------------------------------------- where the error lines go

ERROR_LOG_CONF = """
error_log /var/log/nginx/error.log notice;
error_log syslog:server=10.0.0.9 warn;
events {}
http {
    error_log memory:32m debug;
    server {
        listen 80;
        error_log /var/log/nginx/app.error.log;
        location /quiet/ { error_log /dev/null; }
        location /shipped/ { error_log syslog:server=10.0.0.9; error_log stderr; }
    }
}
stream {
    error_log syslog:server=10.0.0.9;
}
"""


def test_error_logs_are_listed_with_their_block():
    logs = parse_nginx_t(ERROR_LOG_CONF)["error_logs"]
    assert [(e["destination"], e["context"]) for e in logs] == [
        ("/var/log/nginx/error.log", "main"),
        ("syslog:server=10.0.0.9", "main"),
        ("memory:32m", "http"),
        ("/var/log/nginx/app.error.log", "http/server"),
        ("/dev/null", "http/server/location"),
        ("syslog:server=10.0.0.9", "http/server/location"),
        ("stderr", "http/server/location"),
        ("syslog:server=10.0.0.9", "stream"),
    ]
    assert logs[0]["level"] == "notice" and logs[3]["level"] is None
    assert logs[0]["block"] == logs[1]["block"] == "main"
    assert logs[5]["block"] == logs[6]["block"] != logs[4]["block"]


@pytest.mark.parametrize(
    "destination,kind",
    [
        ("stderr", "stderr"),
        ("/dev/stderr", "stderr"),
        ("/proc/self/fd/2", "stderr"),
        ("/dev/stdout", "stderr"),
        ("syslog:server=unix:/dev/log", "syslog"),
        ("memory:32m", "memory"),
        ("/dev/null", "discarded"),
        ("/var/log/nginx/error.log", "file"),
        ("logs/error.log", "file"),
    ],
)
def test_error_log_kind(destination, kind):
    assert error_log_kind(destination) == kind


def test_error_log_plan_files_to_read_and_what_cannot_be_read():
    plan = error_log_plan(parse_nginx_t(ERROR_LOG_CONF))
    assert [f["path"] for f in plan["files"]] == [
        "/var/log/nginx/error.log",
        "/var/log/nginx/app.error.log",
    ]
    assert plan["files"][0]["where"] == "<input>:2"
    # main's syslog copy is beside a file, the location's beside stderr: both readable; the
    # http block's memory buffer and the /quiet/ location's /dev/null are all their blocks have
    assert len(plan["unreadable"]) == 2
    memory, null = plan["unreadable"]
    assert memory.startswith("error_log memory:32m (<input>:6): ") and "memory buffer" in memory
    assert null.startswith("error_log /dev/null (<input>:10): ") and "throws" in null


def test_error_log_plan_of_the_official_image_and_of_a_config_without_error_log():
    official = parse_nginx_t(
        "error_log /var/log/nginx/error.log notice;\nevents {}\nhttp { server { listen 80; } }\n"
    )
    # a link to /dev/stderr in the image: only reading it in the pod tells (proxy_nginx)
    assert error_log_plan(official) == {
        "files": [{"path": "/var/log/nginx/error.log", "where": "<input>:1"}],
        "unreadable": [],
    }
    assert error_log_plan(parse_nginx_t("error_log stderr;\nevents {}\n")) == {
        "files": [],
        "unreadable": [],
    }
    # no error_log in the main context: nginx's built-in one (nginx -V), "" to the reader
    assert error_log_plan(parse_nginx_t("events {}\nhttp {}\n")) == {
        "files": [{"path": "", "where": "built-in"}],
        "unreadable": [],
    }
    assert error_log_plan(None)["files"] == [{"path": "", "where": "built-in"}]
