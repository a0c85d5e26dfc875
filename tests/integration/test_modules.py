"""The collection's modules run for real (``ansible`` ad-hoc subprocesses) against the lab.

Each test starts its own lab (tests/lab/badlab, real nginx + emulated API server) through the
``lab`` / ``lab_factory`` fixtures, which always tear it down.
"""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.lab]

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "build" / "collections"
ANSIBLE = str(Path(sys.executable).parent / "ansible")
RESULT_LINE = re.compile(r"^localhost \| (SUCCESS|CHANGED|FAILED!) => ", re.M)


def run_module(module, args, check=False, env=None, python=None):
    """Run ``badgateway.k8s.<module>`` on localhost; return (failed, result dict)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_AUTH_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    environ.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    environ.update(env or {})
    argv = [
        ANSIBLE,
        "localhost",
        "-m",
        "badgateway.k8s." + module,
        "-a",
        json.dumps(args),
        "-e",
        "ansible_python_interpreter=%s" % (python or sys.executable),
    ]
    if check:
        argv.append("--check")
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=environ, cwd=str(REPO)
    )
    # ad-hoc output ends with "localhost | SUCCESS => {json}" (or CHANGED / FAILED!)
    found = RESULT_LINE.search(proc.stdout)
    try:
        if not found:
            raise ValueError("no result line")
        result = json.loads(proc.stdout[found.end() :])
    except ValueError:
        raise AssertionError(
            "no JSON result from ansible (rc %s):\n%s\n%s"
            % (proc.returncode, proc.stdout, proc.stderr)
        ) from None
    assert "Traceback" not in result.get("msg", "") + result.get("module_stderr", "")
    return found.group(1) == "FAILED!" or bool(result.get("failed")), result


def ok(module, args, **kw):
    """Run a module that must succeed; return its result."""
    failed, result = run_module(module, args, **kw)
    assert not failed, result.get("msg", result)
    return result


def fail_msg(module, args, **kw):
    """Run a module that must fail; return its message."""
    failed, result = run_module(module, args, **kw)
    assert failed, "expected a failure, got %s" % json.dumps(result)[:2000]
    return result["msg"]


def returned_doc(module):
    """The module's RETURN documentation."""
    text = (REPO / "plugins" / "modules" / ("%s.py" % module)).read_text()
    start = text.index('RETURN = r"""') + len('RETURN = r"""')
    return yaml.safe_load(text[start : text.index('"""', start)])


def documented_keys(module, key):
    """The sub-keys the module's RETURN documents for ``key`` (its ``contains``)."""
    return set(returned_doc(module)[key]["contains"])


def contains_errors(where, doc, value):
    """Where ``value`` (a dict, or a list of dicts) differs from the ``contains`` of ``doc``,
    all the way down: every key returned ``always`` is there, no key is undocumented."""
    contains = doc.get("contains")
    if not contains or value is None:
        return []
    errors = []
    for index, entry in enumerate(value if isinstance(value, list) else [value]):
        here = "%s[%d]" % (where, index) if isinstance(value, list) else where
        if not isinstance(entry, dict):
            errors.append("%s: a %s, documented as a dict" % (here, type(entry).__name__))
            continue
        always = {k for k, v in contains.items() if v.get("returned", "always") == "always"}
        errors += [
            "%s.%s: returned, not documented" % (here, k)
            for k in sorted(set(entry) - set(contains))
        ]
        errors += [
            "%s.%s: documented as always returned, missing" % (here, k)
            for k in sorted(always - set(entry))
        ]
        for name in set(entry) & set(contains):
            errors += contains_errors("%s.%s" % (here, name), contains[name], entry[name])
    return errors


def assert_documented(module, key, value):
    """RETURN must match the code: every entry has exactly the documented keys, and so has
    every nested dict whose keys RETURN documents (``contains``)."""
    entries = value if isinstance(value, list) else [value]
    assert entries, "nothing returned under %s" % key
    for entry in entries:
        assert set(entry) == documented_keys(module, key), (module, key)
    assert contains_errors(key, returned_doc(module)[key], value) == [], module


def auth(lab, diagnose=True):
    """Connection options: the lab's least-privilege kubeconfig (or the admin one)."""
    return {"kubeconfig": lab.info["kubeconfig_diagnose" if diagnose else "kubeconfig"]}


def old_and_new_ip(lab):
    """The replaced app pod's old and new IPs, from the lab's timeline history."""
    step = next(h for h in lab.info["history"] if h.get("step", "").endswith("replace_pod"))
    return step["old_ip"], step["new_ip"]


def closed_port():
    """A loopback port with nothing listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# ------------------------------------------------------------------ the seed incident
@pytest.fixture(scope="session")
def module_python(tmp_path_factory):
    """An interpreter that is not this Python's path, though it runs it: the action plugins
    then run their modules as modules (the remote way) instead of in the controller's process."""
    wrapper = tmp_path_factory.mktemp("python") / "python"
    wrapper.write_text('#!/bin/sh\nexec "%s" "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(params=["in-process", "module"])
def way(request, module_python):
    """The two ways a module runs: its action plugin's task in the controller's process, or the
    module itself (as on a remote host): the interpreter to run it with."""
    return None if request.param == "in-process" else module_python


def test_seed_facts(lab, way):
    """Every module's result matches its RETURN, run either way."""
    old_ip, new_ip = old_and_new_ip(lab)
    ns = lab.info["proxy_namespace"]
    svc_ns, svc_name = lab.info["service"].split("/")

    def ok(module, args, **kw):
        return globals()["ok"](module, args, python=way, **kw)

    pods = ok("pod_info", dict(auth(lab), namespace=svc_ns, service=svc_name))
    assert pods["selector"] == "app=open-webui"
    assert_documented("pod_info", "pods", pods["pods"])
    assert [(p["name"], p["pod_ip"], p["ready"]) for p in pods["pods"]] == [
        ("open-webui-0", new_ip, True)
    ]
    assert pods["pods"][0]["containers"][0]["ports"] == [
        {"name": "http", "container_port": 8080, "protocol": "TCP"}
    ]

    svc = ok("service_info", dict(auth(lab), namespace=svc_ns, name="open-webui-headless"))
    service = svc["service"]
    assert_documented("service_info", "service", service)
    assert service["exists"] and service["headless"] and service["cluster_ip"] is None
    assert service["ready_addresses"] == ["%s:8080" % new_ip]
    assert service["ports"][0]["resolved_target_ports"] == [
        {"pod": "%s/open-webui-0" % svc_ns, "port": 8080}
    ]
    assert service["port_mismatches"] == []

    proxy = ok("proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"]))
    assert [p["namespace"] + "/" + p["name"] for p in proxy["proxies"]] == lab.info["proxy_pods"]
    assert_documented("proxy_info", "proxies", proxy["proxies"])
    for replica in proxy["proxies"]:
        assert replica["config_ok"] is True and replica["container"] == "nginx"
        assert {h["service"] for h in replica["upstream_hosts"]} == {
            "%s/open-webui-headless" % svc_ns
        }
        assert replica["listen_ports"] == [80]
        assert replica["last_reload"] and replica["master_pid"]
        assert replica["stale_addresses"] == ["%s:8080" % old_ip]
        states = {a["address"]: a["state"] for a in replica["upstream_addresses"]}
        assert states["%s:8080" % old_ip] == "stale"
        assert replica["counts_after_reload"]["connect_refused"] >= 3
        assert replica["access"]["status_counts"]["502"] >= 3
        assert replica["log"]["lines_read"] > 0 and not replica["log"]["truncated"]
        assert all(e["errno"] == 111 for e in replica["errors"])

    # from inside the proxy: the Service answers, the replica itself answers 502
    via_svc = ok(
        "proxy_probe",
        dict(
            auth(lab),
            namespace=ns,
            selector=lab.info["proxy_selector"],
            url="http://%s.%s:8080/" % (svc_name, svc_ns),
        ),
    )
    assert [(p["tool"], p["status"], p["ok"]) for p in via_svc["probes"]] == [("curl", 200, True)]
    assert_documented("proxy_probe", "probes", via_svc["probes"])
    itself = ok("proxy_probe", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], target="self"))
    assert [(p["status"], p["ok"]) for p in itself["probes"]] == [(502, False)]
    assert (
        itself["probes"][0]["url"]
        == "http://%s:80/" % lab.info["pods"]["%s/nginx-proxy-0" % ns]["ip"]
    )

    # The read-only diagnosis in one task: every layer read, judged, and the cause.
    args = dict(
        auth(lab),
        proxy_namespace=ns,
        proxy_selector=lab.info["proxy_selector"],
        service_namespace=svc_ns,
        service_name=svc_name,
        url=lab.proxy_url,
    )
    diagnosis = ok("diagnose", args)
    documented = returned_doc("diagnose")
    with_result = {key for key, doc in documented.items() if "O(result)" in doc["returned"]}
    assert with_result == {"reload_reason", "ansible_facts", "outputs", "show_summary"}
    assert set(diagnosis) >= set(documented) - with_result
    assert not with_result & set(diagnosis)
    for key in ("facts", "layers"):
        assert_documented("diagnose", key, diagnosis[key])
    facts = diagnosis["facts"]
    assert facts["errors"] == {} and facts["symptom"] == {"url": lab.proxy_url, "status": 502}
    assert_documented("proxy_info", "proxies", facts["proxies"])
    assert_documented("pod_info", "pods", facts["pods"])
    assert_documented("service_info", "service", facts["service"])
    assert_documented("proxy_probe", "probes", facts["self_probes"] + facts["svc_probes"])
    assert [(p["status"], p["ok"]) for p in facts["svc_probes"]] == [(200, True)]
    assert diagnosis["verdict"]["cause"] == "stale_upstream"
    assert {layer["name"]: layer["status"] for layer in diagnosis["layers"]} == {
        "symptom": "fail",
        "backend_pods": "pass",
        "service": "pass",
        "connectivity": "pass",
        "proxy_logs": "fail",
    }
    small = ok("diagnose", dict(args, return_facts=False))
    assert small["facts"] == {"errors": {}} and small["verdict"]["cause"] == "stale_upstream"

    # Asked for the role's result: built here when no reload is earned (read-only: remediate
    # is off), and its files named; left to the step after the reload when one is earned.
    report = {"inventory_host": "edge-1", "files": {"json": "/tmp/edge-1.json", "html": ""}}
    reported = ok("diagnose", dict(args, return_facts=False, result=report))
    assert set(reported) >= set(documented)
    assert reported["reload_reason"] == (
        "remediation is off (diagnose_502_remediate=false): read-only run"
    )
    built = reported["ansible_facts"]["diagnose_502_result"]
    assert built["target"] == {
        "proxy": "%s/%s" % (ns, lab.info["proxy_selector"]),
        "service": "%s/%s" % (svc_ns, svc_name),
        "url": lab.proxy_url,
        "inventory_host": "edge-1",
    }
    assert built["verdict"]["cause"] == "stale_upstream" and built["layers"] == reported["layers"]
    assert built["remediation"]["performed"] is False
    assert built["remediation"]["reason"] == reported["reload_reason"]
    assert built["outcome"]["outcome"] == "problem_found"
    assert reported["outputs"] == [{"host": "edge-1", "format": "json", "dest": "/tmp/edge-1.json"}]
    assert reported["show_summary"] is True
    earned = ok("diagnose", dict(args, return_facts=False, result={"remediate": True}))
    assert earned["reload_reason"] == "" and "ansible_facts" not in earned
    assert earned["outputs"] == [] and earned["verdict"]["cause"] == "stale_upstream"
    verdict = ok("diagnose_verdict", {"facts": facts})
    assert_documented("diagnose_verdict", "verdict", verdict["verdict"])


def test_reload_check_mode_runs_nothing_then_reload_fixes(lab):
    ns = lab.info["proxy_namespace"]
    before = ok("proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"]))
    planned = ok(
        "nginx_reload",
        dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], probe_path="/"),
        check=True,
    )
    assert planned["changed"] is True
    assert planned["replicas"][0]["config_test"] is None
    assert "nginx -t" in planned["replicas"][0]["planned"]
    still = ok("proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"]))
    assert still["proxies"][0]["worker_pids"] == before["proxies"][0]["worker_pids"]
    assert lab.http_status() == 502

    done = ok("nginx_reload", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], probe_path="/"))
    replica = done["replicas"][0]
    assert_documented("nginx_reload", "replicas", done["replicas"])
    assert done["changed"] is True
    assert replica["config_test"]["ok"] and replica["reload_sent"] and replica["reloaded"]
    assert replica["verified"] and replica["probe"]["status"] == 200
    assert {w["pid"] for w in replica["workers_before"]}.isdisjoint(
        w["pid"] for w in replica["workers_after"]
    )
    assert lab.http_status() == 200

    after = ok("proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"]))
    assert after["proxies"][0]["last_reload"] > before["proxies"][0]["last_reload"]
    assert after["proxies"][0]["worker_pids"] == [w["pid"] for w in replica["workers_after"]]
    assert after["proxies"][0]["stale_addresses"] == []

    # No reload storms: within the cooldown the replica is only probed, unless forced.
    again = ok(
        "nginx_reload", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], probe_path="/")
    )
    assert again["changed"] is False
    assert (
        "cooldown" in again["replicas"][0]["skipped"] and again["replicas"][0]["verified"] is True
    )
    assert again["replicas"][0]["config_test"] is None
    assert [w["pid"] for w in again["replicas"][0]["workers_after"]] == after["proxies"][0][
        "worker_pids"
    ]
    forced = ok(
        "nginx_reload",
        dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], probe_path="/", force=True),
    )
    assert forced["changed"] is True and forced["replicas"][0]["reloaded"] is True


def test_reload_refuses_a_broken_config(lab):
    """nginx -t fails: no reload, changed=false, the module fails naming the reason."""
    ns = lab.info["proxy_namespace"]
    pod_dir = next(Path(lab.dir, "pods").glob("%s_nginx-proxy-0_*" % ns), None)
    conf = next(pod_dir.rglob("default.conf"), None) if pod_dir else None
    if conf is None:
        pytest.fail("cannot find the proxy pod's default.conf under %s/pods" % lab.dir)
    conf.write_text(conf.read_text().replace("location / {", "location / { bogus_directive on;"))
    failed, result = run_module(
        "nginx_reload", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"])
    )
    assert failed and result["changed"] is False
    assert "nginx -t failed" in result["msg"] and "bogus_directive" in result["msg"]
    assert result["replicas"][0]["reload_sent"] is False


def test_per_replica_staleness(lab_factory, tmp_path):
    """Two proxy replicas, both stale; reload one: only the other stays stale."""
    scenario = yaml.safe_load((REPO / "tests/lab/scenarios/stale_upstream.yml").read_text())
    for pod in scenario["pods"]:
        if pod["name"] == "nginx-proxy":
            pod["replicas"] = 2
    path = tmp_path / "stale_upstream-two_replicas.yml"
    path.write_text(yaml.safe_dump(scenario))
    lab = lab_factory(str(path))
    old_ip, _ = old_and_new_ip(lab)
    ns, selector = lab.info["proxy_namespace"], lab.info["proxy_selector"]
    # make every replica dial the upstream once, from inside itself
    probes = ok("proxy_probe", dict(auth(lab), namespace=ns, selector=selector, target="self"))
    assert [(p["name"], p["status"]) for p in probes["probes"]] == [
        ("nginx-proxy-0", 502),
        ("nginx-proxy-1", 502),
    ]
    ok("nginx_reload", dict(auth(lab), namespace=ns, pods=["nginx-proxy-1"], probe_path="/"))
    proxy = ok("proxy_info", dict(auth(lab), namespace=ns, selector=selector))
    stale = {p["name"]: p["stale_addresses"] for p in proxy["proxies"]}
    assert stale == {"nginx-proxy-0": ["%s:8080" % old_ip], "nginx-proxy-1": []}


# ------------------------------------------------------------------ clear failures
def test_missing_service_and_must_exist(lab):
    ns = lab.info["service"].split("/")[0]
    svc = ok("service_info", dict(auth(lab), namespace=ns, name="nope"))
    assert svc["service"]["exists"] is False and svc["service"]["ready_addresses"] == []
    msg = fail_msg("service_info", dict(auth(lab), namespace=ns, name="nope", must_exist=True))
    assert msg == 'Service "nope" not found in namespace "%s"' % ns


def test_unknown_namespace(lab):
    msg = fail_msg(
        "pod_info", dict(auth(lab, diagnose=False), namespace="no-such-ns", label_selector="app=x")
    )
    assert msg == 'namespace "no-such-ns" does not exist'
    msg = fail_msg(
        "proxy_info",
        dict(auth(lab, diagnose=False), namespace="no-such-ns", selector="app=nginx-proxy"),
    )
    assert msg == 'namespace "no-such-ns" does not exist'
    msg = fail_msg(
        "proxy_probe",
        dict(
            auth(lab, diagnose=False), namespace="no-such-ns", pods=["nginx-proxy-0"], target="self"
        ),
    )
    assert msg == 'namespace "no-such-ns" does not exist'
    ns = lab.info["proxy_namespace"]
    msg = fail_msg("proxy_probe", dict(auth(lab), namespace=ns, pods=["ghost-0"], target="self"))
    assert msg.startswith('pods "ghost-0" not found in namespace "%s"' % ns)


def test_selector_matching_nothing(lab):
    ns = lab.info["proxy_namespace"]
    msg = fail_msg("pod_info", dict(auth(lab), namespace=ns, label_selector="app=ghost"))
    assert 'no pod in namespace "%s" matches the selector "app=ghost"' % ns in msg
    empty = ok(
        "pod_info", dict(auth(lab), namespace=ns, label_selector="app=ghost", allow_empty=True)
    )
    assert empty["pods"] == []
    msg = fail_msg(
        "proxy_probe", dict(auth(lab), namespace=ns, selector="app=ghost", target="self")
    )
    assert 'matches the selector "app=ghost"' in msg


def test_wrong_token_401(lab):
    msg = fail_msg(
        "pod_info",
        dict(
            auth(lab),
            api_key="not-a-valid-token",
            namespace=lab.info["proxy_namespace"],
            label_selector="app=nginx-proxy",
        ),
    )
    assert "rejected the credentials (401 Unauthorized)" in msg
    assert "not-a-valid-token" not in msg


def test_env_fallback_and_rbac_403(lab):
    """K8S_AUTH_KUBECONFIG is honoured; the limited user may not list pods elsewhere."""
    msg = fail_msg(
        "pod_info",
        {"namespace": "kube-system", "label_selector": "app=x"},
        env={"K8S_AUTH_KUBECONFIG": lab.info["kubeconfig_diagnose"]},
    )
    assert msg.startswith(
        'the credentials lack "list" on "pods" in namespace "kube-system" (403 Forbidden)'
    )


def test_unreachable_api(lab):
    port = closed_port()
    msg = fail_msg(
        "pod_info",
        {
            "host": "https://127.0.0.1:%d" % port,
            "api_key": "x",
            "validate_certs": False,
            "request_timeout": 3,
            "namespace": "a",
            "label_selector": "b=c",
        },
    )
    assert msg.startswith("cannot reach the Kubernetes API at https://127.0.0.1:%d" % port)
    assert "Connection refused" in msg


def test_explicit_host_token_and_tls_options(lab):
    """host + api_key (+ ca_cert / validate_certs) without a kubeconfig."""
    config = yaml.safe_load(Path(lab.info["kubeconfig_diagnose"]).read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    base = {
        "host": cluster["server"],
        "api_key": user["token"],
        "namespace": lab.info["proxy_namespace"],
        "label_selector": lab.info["proxy_selector"],
    }
    with_ca = ok("pod_info", dict(base, ca_cert=cluster["certificate-authority"]))
    assert [p["name"] for p in with_ca["pods"]] == ["nginx-proxy-0"]
    assert ok("pod_info", dict(base, validate_certs=False))["pods"] == with_ca["pods"]
    msg = fail_msg("pod_info", base)
    assert msg.startswith("TLS with the Kubernetes API at %s failed" % cluster["server"])
    assert "CERTIFICATE_VERIFY_FAILED" in msg and "ca_cert" in msg


def test_missing_kubernetes_library(lab):
    """A Python without the kubernetes package: missing_required_lib, no traceback."""
    bare = "/usr/bin/python3"
    probe = subprocess.run([bare, "-c", "import kubernetes"], capture_output=True)
    if probe.returncode == 0:
        pytest.fail("%s has the kubernetes package; this test needs a Python without it" % bare)
    msg = fail_msg("pod_info", dict(auth(lab), namespace="a", label_selector="b=c"), python=bare)
    assert "Failed to import the required Python library (kubernetes" in msg


def test_diagnose_verdict_on_seed(lab):
    ns = lab.info["proxy_namespace"]
    svc_ns, svc_name = lab.info["service"].split("/")
    old_ip, new_ip = old_and_new_ip(lab)
    facts = {
        "symptom": {"status": lab.http_status(), "url": lab.proxy_url},
        "pods": ok("pod_info", dict(auth(lab), namespace=svc_ns, service=svc_name))["pods"],
        "service": ok(
            "service_info", dict(auth(lab), namespace=svc_ns, name="open-webui-headless")
        )["service"],
        "proxies": ok(
            "proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"])
        )["proxies"],
        "probes": ok(
            "proxy_probe",
            dict(
                auth(lab),
                namespace=ns,
                selector=lab.info["proxy_selector"],
                url="http://%s.%s:8080/" % (svc_name, svc_ns),
            ),
        )["probes"],
        "layers": {},
    }
    verdict = ok("diagnose_verdict", {"facts": facts})["verdict"]
    assert_documented("diagnose_verdict", "verdict", verdict)
    assert verdict["cause"] == "stale_upstream"
    assert verdict["stale_replicas"] == lab.info["proxy_pods"]
    assert verdict["stale_addresses"] == ["%s:8080" % old_ip]
    assert verdict["reload_safe"] is True
    assert "%s:8080" % new_ip in verdict["current_addresses"]


# ------------------------------------------------------------------ exec against the lab
@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_exec_exit_codes_against_lab(lab, protocol):
    """k8s_access.exec over each subprotocol: exit codes, a missing binary, the deadline."""
    from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import K8sClient

    client = K8sClient({"kubeconfig": lab.info["kubeconfig_diagnose"], "request_timeout": 5})
    ns, pod = lab.info["proxy_pods"][0].split("/")
    run = lambda argv, **kw: client.exec(ns, pod, argv, subprotocols=[protocol], **kw)  # noqa: E731
    done = run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (done.rc, done.stdout, done.stderr, done.protocol) == (7, "out\n", "err\n", protocol)
    assert run(["nginx", "-t"]).rc == 0
    missing = run(["no-such-binary"])
    assert missing.rc is None and "no-such-binary" in missing.error
    slow = run(["sleep", "5"], timeout=0.5)
    assert slow.timed_out and slow.rc is None


# ------------------------------------------------------------------ the two ways, one result
def test_the_action_plugins_return_what_the_modules_return(lab, tmp_path, module_python):
    """Each module run in the controller's process (its action plugin) and as a module (an
    interpreter that is not the controller's): the same registered result, failures too."""
    ns = lab.info["proxy_namespace"]
    svc_ns, svc_name = lab.info["service"].split("/")
    calls = [
        ("pod_info", dict(auth(lab), namespace=svc_ns, service=svc_name)),
        ("pod_info", dict(auth(lab), namespace="no-such-ns", label_selector="a=b")),
        ("pod_info", dict(auth(lab), namespace=svc_ns, service=svc_name, bogus=1)),
        ("pod_info", dict(auth(lab), namespace=svc_ns, label_selector="a=b", service="x")),
        ("service_info", dict(auth(lab), namespace=svc_ns, name="open-webui-headless")),
        ("proxy_info", dict(auth(lab), namespace=ns, selector=lab.info["proxy_selector"])),
        ("proxy_info", dict(auth(lab), namespace=ns, selector="x=y", tail_lines=0)),
        ("proxy_probe", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], target="self")),
        ("nginx_reload", dict(auth(lab), namespace=ns, pods=["nginx-proxy-0"], probe_path="/")),
        ("diagnose_verdict", {"facts": {"symptom": {"status": 502, "url": "http://x/"}}}),
        (
            "diagnose",
            dict(
                auth(lab),
                proxy_namespace=ns,
                proxy_selector=lab.info["proxy_selector"],
                service_namespace=svc_ns,
                service_name=svc_name,
                return_facts=False,
            ),
        ),
        ("pod_info", {"namespace": svc_ns, "service": svc_name, "kubeconfig": "/nonexistent"}),
    ]
    tasks = []
    for index, (module, args) in enumerate(calls):
        for way, python in (("here", sys.executable), ("module", module_python)):
            tasks.append(
                {
                    "name": "%s %d %s" % (module, index, way),
                    "badgateway.k8s." + module: args,
                    "vars": {"ansible_python_interpreter": python},
                    "register": "r_%d_%s" % (index, way),
                    "ignore_errors": True,
                    "check_mode": module == "nginx_reload",
                }
            )
    dump = tmp_path / "results.json"
    names = ["r_%d_%s" % (i, way) for i in range(len(calls)) for way in ("here", "module")]
    tasks.append(
        {
            "name": "Keep the results",
            "ansible.builtin.copy": {
                "dest": str(dump),
                "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names),
            },
        }
    )
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_AUTH_") and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(ANSIBLE).parent / "ansible-playbook"), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(REPO),
    )
    assert dump.exists(), proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads(dump.read_text())

    def same(value):
        """The values that differ between two reads of the same lab a moment apart masked."""
        if isinstance(value, dict):
            return {
                k: same(v)
                for k, v in value.items()
                if k
                not in (
                    "time_total",
                    "started",
                    "nginx_time",
                    "last_seen",
                    "count",
                    "errors_after_reload",
                )
                and not k.startswith("_ansible")
            }
        if isinstance(value, list):
            return [same(v) for v in value]
        if isinstance(value, str):
            return re.sub(r"x\d+\b|\d+ times|\d{4}-\d\d-\d\dT[\d:.]+Z?", "N", value)
        return value

    def differences(a, b, where=""):
        if isinstance(a, dict) and isinstance(b, dict):
            return [
                d
                for k in sorted(set(a) | set(b))
                for d in (
                    differences(a[k], b[k], where + "." + k)
                    if k in a and k in b
                    else ["%s.%s only %s" % (where, k, "here" if k in a else "as a module")]
                )
            ]
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [
                d
                for i, (x, y) in enumerate(zip(a, b))
                for d in differences(x, y, "%s[%d]" % (where, i))
            ]
        return [] if a == b else ["%s: %r != %r" % (where, a, b)]

    for index, (module, _args) in enumerate(calls):
        here, there = results["r_%d_here" % index], results["r_%d_module" % index]
        assert differences(same(here), same(there)) == [], (module, index)
    assert results["r_2_here"]["msg"].startswith(
        "Unsupported parameters for (badgateway.k8s.pod_info) module: bogus."
    )
    assert results["r_11_here"]["failed"] and "does not exist" in results["r_11_here"]["msg"]
