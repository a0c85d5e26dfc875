"""Upstream drift rules: stale addresses in the log, and pods newer than the last reload."""

import shapes
from ansible_collections.badgateway.k8s.plugins.module_utils.drift import upstream_drift


def proxy(name, last_reload="2026-11-25T10:00:00.123456789Z", stale=(), host="web", headless=True):
    return shapes.proxy(
        name,
        last_reload=last_reload,
        stale_addresses=list(stale),
        upstream_hosts=[shapes.upstream_host(host, service="app/web")],
    )


def svc(headless=True, ready=("10.0.0.7:8080",), target="app/web-0"):
    return shapes.service(
        headless=headless,
        ready_addresses=list(ready),
        endpoints=[shapes.endpoint(a, target=target) for a in ready],
    )


def pod(created):
    return shapes.pod("web-0", creation_timestamp=created)


def test_stale_address_in_log_is_drift_with_fix_command():
    got = upstream_drift(
        [proxy("nginx-0", stale=["10.0.0.4:8080"]), proxy("nginx-1")],
        [svc()],
        [pod("2026-11-25T09:00:00Z")],
    )
    assert got["status"] == "drift"
    assert got["drifted"] == ["edge/nginx-0"]
    assert "10.0.0.4:8080" in got["message"] and "10.0.0.7:8080" in got["message"]
    assert "kubectl exec -n edge nginx-0 -c nginx -- nginx -s reload" in got["message"]
    assert "nginx-1" not in got["message"]


def test_pod_created_after_reload_is_drift_before_any_error():
    got = upstream_drift([proxy("nginx-0")], [svc()], [pod("2026-11-25T10:00:01Z")])
    assert got["status"] == "drift"
    assert got["replicas"][0]["unknown_addresses"] == ["10.0.0.7:8080"]
    assert "cannot know new 10.0.0.7:8080" in got["message"]


def test_pod_older_than_reload_is_fine():
    got = upstream_drift([proxy("nginx-0")], [svc()], [pod("2026-11-25T09:59:59Z")])
    assert got["status"] == "ok"


def test_clusterip_service_cannot_drift_by_pod_age():
    got = upstream_drift([proxy("nginx-0")], [svc(headless=False)], [pod("2026-11-25T10:00:01Z")])
    assert got["status"] == "ok"


def test_no_replicas_and_unreadable_replicas_are_could_not_check():
    assert upstream_drift([], [svc()], [])["status"] == "could_not_check"
    broken = shapes.proxy("nginx-0", problems=["exec forbidden"], last_reload=None, config_ok=None)
    got = upstream_drift([broken], [svc()], [])
    assert got["status"] == "could_not_check" and "exec forbidden" in got["message"]


def test_a_pod_dns_name_drifts_when_its_pod_is_newer_than_the_reload():
    """proxy_pass to web-0.web-headless.app (a pod's own DNS name, behind a ClusterIP Service
    here): nginx resolved it to the pod's IP at its last reload; a newer pod is unknown to it."""
    replica = proxy("nginx-0")
    replica["upstream_hosts"] = [
        shapes.upstream_host("web-0.web-headless.app", service="app/web", pod="web-0")
    ]
    got = upstream_drift([replica], [svc(headless=False)], [pod("2026-11-25T11:00:00Z")])
    assert got["status"] == "drift", got
    assert got["replicas"][0]["unknown_addresses"] == ["10.0.0.7:8080"]
    older = upstream_drift([replica], [svc(headless=False)], [pod("2026-11-25T09:00:00Z")])
    assert older["status"] == "ok"


def test_an_haproxy_replica_gets_its_own_reload_command():
    replica = shapes.proxy(
        "haproxy-0",
        kind="haproxy",
        master_pid=7,
        container="haproxy",
        last_reload="2026-11-25T10:00:00Z",
        stale_addresses=["10.0.0.4:8080"],
        upstream_hosts=[shapes.upstream_host("web", service="app/web")],
    )
    got = upstream_drift([replica], [svc()], [pod("2026-11-25T09:00:00Z")])
    assert got["replicas"][0]["kind"] == "haproxy"
    assert got["replicas"][0]["fix"].startswith(
        "kubectl exec -n edge haproxy-0 -c haproxy -- kill -USR2 7"
    )


def test_a_stale_address_the_config_on_disk_still_lists_is_not_fixed_by_a_reload():
    replica = shapes.proxy(
        "nginx-0",
        last_reload="2026-11-25T10:00:00Z",
        stale_addresses=["10.0.0.4:8080"],
        upstream_hosts=[
            shapes.upstream_host(
                "10.0.0.4",
                upstream="web_8080",
                source="upstream",
                file="/etc/nginx/conf.d/h.conf:3",
            )
        ],
    )
    got = upstream_drift([replica], [svc()], [pod("2026-11-25T09:00:00Z")])
    assert got["status"] == "drift"
    fix = got["replicas"][0]["fix"]
    assert fix.startswith("not a reload: the config on disk still lists 10.0.0.4:8080")
    assert "upstream web_8080 at /etc/nginx/conf.d/h.conf:3" in fix
    assert "nginx -s reload" not in got["message"]
