#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.nginx_reload."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_reload
short_description: Reload nginx in chosen proxy replicas, safely, and prove it took
version_added: 0.1.0
description:
  - For each pod in O(pods), in order, inside its nginx container - run C(nginx -t); only if
    it passes, run C(nginx -s reload); then prove the reload took - the worker processes were
    replaced (new PIDs, newer start times; nginx keeps the old workers when the master fails
    to re-read its config, whatever C(nginx -s reload) returned) and, when a probe is asked
    for, the replica's own listen address answers something other than 502.
  - No reload storms - a replica whose nginx workers were re-spawned less than O(cooldown)
    seconds ago (so it was reloaded that recently) is not reloaded again unless O(force=true);
    it is only probed. The time is read from the pod itself (the newest worker's start), so no
    state is kept anywhere and concurrent runs agree. Runs against the same replica take turns
    through a short-lived lock directory in the container (C(/run), C(/var/run) or C(/tmp)),
    so that of several concurrent runs only the first reloads; the others then see the fresh
    workers and skip. A lock left by a run that died is broken after two minutes.
  - A replica whose C(nginx -t) fails is not reloaded. The module fails when any replica could
    not be reloaded or verified, after trying all of them, with the per-replica results.
  - Needs C(get) on C(pods) and C(get)/C(create) on C(pods/exec).
options:
  namespace:
    description: Namespace of the proxy pods.
    type: str
    required: true
  pods:
    description: Names of the replicas to reload (only these; e.g. the stale ones).
    type: list
    elements: str
    required: true
  container:
    description: The nginx container. Default, the container whose name or image says nginx.
    type: str
  probe_path:
    description:
      - Path to request at C(http://<podIP>:<probe_port>) after the reload. The reload counts
        as verified only if the answer is not 502. Omit it (and O(probe_url)) to skip the probe.
    type: str
  probe_port:
    description: Port for O(probe_path). Default, the first C(listen) port of the running config.
    type: int
  probe_url:
    description: Full URL to request from inside the pod instead of O(probe_path).
    type: str
  settle_timeout:
    description: Seconds to wait for the new worker processes to appear after the reload.
    type: float
    default: 5
  probe_timeout:
    description: Seconds the verification request may take.
    type: float
    default: 5
  cooldown:
    description:
      - Seconds after a replica's last reload during which it is not reloaded again.
      - C(0) turns the cooldown off.
    type: int
    default: 300
  force:
    description: Reload even within the cooldown.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another run's reload of the same replica to finish.
    type: float
    default: 30
extends_documentation_fragment:
  - badgateway.k8s.k8s_auth
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing at all runs in the pods (not even C(nginx -t)); the module
        reports, per replica, the steps it would run, and C(changed=true).
  diff_mode:
    support: none
    description: No diff is produced.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Reload only the stale replicas and prove it
  badgateway.k8s.nginx_reload:
    namespace: edge
    pods: "{{ verdict.stale_replicas | map('regex_replace', '^.*/', '') | list }}"
    probe_path: /
  register: reload
"""

RETURN = r"""
replicas:
  description: One entry per pod in O(pods), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: "Namespace."
      type: str
      returned: always
    name:
      description: "Pod name."
      type: str
      returned: always
    container:
      description: "The nginx container (null in check mode or when the pod was not found)."
      type: str
      returned: always
    planned:
      description: "The steps that run (or would run in check mode)."
      type: list
      elements: str
      returned: always
    config_test:
      description: "Output of nginx -t, rc and ok; null when not run."
      type: dict
      returned: always
      contains:
        rc:
          description: "Exit code of nginx -t, null when it could not run."
          type: int
          returned: always
        ok:
          description: "nginx -t exited 0: the configuration is valid."
          type: bool
          returned: always
        output:
          description: "What nginx -t printed, or why it could not run."
          type: str
          returned: always
    reload_sent:
      description: "nginx -s reload ran and exited 0."
      type: bool
      returned: always
    skipped:
      description:
        - "Why this replica was not reloaded although asked, e.g. it was reloaded 4s ago, within the cooldown; null otherwise."
        - "It is still probed: RV(replicas[].verified) then says whether it answers well now."
      type: str
      returned: always
    last_reload_age:
      description:
        - "Seconds since the replica's last reload before this run, from the pod's own clock."
        - "Null when it was not reloaded since nginx started (its workers are as old as its master), or when unknown."
      type: float
      returned: always
    reloaded:
      description: "The worker processes were replaced (the new config is live)."
      type: bool
      returned: always
    workers_before:
      description: "Worker processes before."
      type: list
      elements: dict
      returned: always
      contains:
        pid:
          description: "Process ID in the container."
          type: int
          returned: always
        start_time:
          description: "When the worker started (RFC 3339 UTC)."
          type: str
          returned: always
    workers_after:
      description: "Worker processes after."
      type: list
      elements: dict
      returned: always
      contains:
        pid:
          description: "Process ID in the container."
          type: int
          returned: always
        start_time:
          description: "When the worker started (RFC 3339 UTC)."
          type: str
          returned: always
    last_reload:
      description: "Newest worker start time after the reload (RFC 3339)."
      type: str
      returned: always
    probe:
      description: "The verification probe (the shape of M(badgateway.k8s.proxy_probe)'s RV(badgateway.k8s.proxy_probe#module:probes) items) or null."
      type: dict
      returned: always
      contains:
        namespace:
          description: "Namespace of the pod."
          type: str
          returned: always
        name:
          description: "Pod name."
          type: str
          returned: always
        url:
          description: "The URL requested from inside the pod."
          type: str
          returned: always
        tool:
          description: "curl, wget, or null when neither could run."
          type: str
          returned: always
        status:
          description: "HTTP status, null when no response."
          type: int
          returned: always
        ok:
          description: "A response below 500 was received."
          type: bool
          returned: always
        error:
          description: "Why there is no usable status, or null."
          type: str
          returned: always
        time_total:
          description: "Seconds the request took (curl only)."
          type: float
          returned: always
        rc:
          description: "Exit code of curl/wget, null when it did not run."
          type: int
          returned: always
        ran:
          description: "Whether a client ran in the pod, so that its status or error is evidence."
          type: bool
          returned: always
    verified:
      description: "Reloaded and, when probed, the probe did not answer 502."
      type: bool
      returned: always
    unproven:
      description:
        - "Set when the reload happened (new worker processes) but nothing could prove that the replica answers: the probe could not
          run (no curl or wget in the container, or the exec call failed). Null otherwise. Such a replica is not verified."
      type: str
      returned: always
    error:
      description: "Why this replica was not reloaded or not verified, or null."
      type: str
      returned: always
changed:
  description: True when at least one replica was reloaded (in check mode, when one would be).
  returned: always
  type: bool
"""

import time

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import fmt_address
from ansible_collections.badgateway.k8s.plugins.module_utils._proxy_exec import (
    listen_ports,
    pick_container,
    probe,
    read_processes,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    K8sError,
    client_from_module,
    k8s_module,
)


# Take turns per replica: mkdir is atomic. A lock older than two minutes belongs to a run that
# died and is broken. Prints the lock path; exits 75 when the wait runs out.
LOCK_SCRIPT = r"""
for d in /run /var/run /tmp; do [ -d "$d" ] && [ -w "$d" ] && break; done
l="$d/badgateway-k8s-reload.lock"
n=0
while ! mkdir "$l" 2>/dev/null; do
  if [ -n "$(find "$l" -maxdepth 0 -mmin +2 2>/dev/null)" ]; then rmdir "$l" 2>/dev/null; continue; fi
  n=$((n + 1))
  if [ "$n" -gt "$1" ]; then echo "another run has held $l for too long" >&2; exit 75; fi
  sleep 0.1
done
echo "$l"
"""


def plan(params):
    """The steps run per replica, as text."""
    steps = ["take the replica's reload lock",
             "skip the reload if the workers started less than %ss ago%s" % (
                 params["cooldown"], " (no: force)" if params["force"] else ""),
             "nginx -t", "nginx -s reload (only if nginx -t passes)",
             "wait up to %gs for new worker processes" % params["settle_timeout"]]
    if params["probe_url"]:
        steps.append("GET %s from inside the pod, expect not 502" % params["probe_url"])
    elif params["probe_path"] is not None:
        steps.append("GET http://<podIP>:%s%s from inside the pod, expect not 502"
                     % (params["probe_port"] or "<listen port>", params["probe_path"]))
    return steps


def _new_result(namespace, name, steps):
    return {"namespace": namespace, "name": name, "container": None, "planned": steps,
            "config_test": None, "reload_sent": False, "reloaded": False, "skipped": None,
            "last_reload_age": None,
            "workers_before": [], "workers_after": [], "last_reload": None, "probe": None,
            "verified": False, "unproven": None, "error": None}


def _replaced(before, after):
    """New workers exist and none of the old worker PIDs is still a worker."""
    old = {w["pid"] for w in before}
    return bool(after) and not old & {w["pid"] for w in after}


def _lock(client, namespace, name, container, params):
    """Take the replica's reload lock; return its path, or raise K8sError."""
    tries = max(1, int(params["lock_timeout"] * 10))
    taken = client.exec(namespace, name, ["sh", "-c", LOCK_SCRIPT, "sh", str(tries)],
                        container=container, timeout=params["lock_timeout"] + 10)
    path = taken.stdout.strip()
    if taken.rc != 0 or not path:
        raise K8sError("cannot take the reload lock in %s/%s: %s" % (
            namespace, name, (taken.stderr or taken.stdout).strip() or taken.error or "exit %s" % taken.rc))
    return path


def reload_replica(client, namespace, name, params, steps):
    """Test, reload and verify one replica, holding its reload lock; return its result dict."""
    result = _new_result(namespace, name, steps)
    pod = client.get_pod(namespace, name)
    container = result["container"] = pick_container(client, pod, params["container"])
    lock = _lock(client, namespace, name, container, params)
    try:
        if not _reload_locked(client, namespace, name, container, params, result):
            return result
    finally:
        try:
            client.exec(namespace, name, ["rmdir", lock], container=container)
        except K8sError:
            pass   # a lock left behind is broken by the next run after two minutes
    return _verify(client, namespace, name, container, pod, params, result)


def _reload_locked(client, namespace, name, container, params, result):
    """The part under the lock: cooldown, nginx -t, reload, new workers.

    True when the replica should be probed next (it was reloaded, or skipped in the cooldown),
    False when it failed (``result["error"]`` says why).
    """
    before = read_processes(client, namespace, name, container)
    result["workers_before"] = before["workers"]
    age = result["last_reload_age"] = before.get("last_reload_age")
    if params["cooldown"] > 0 and not params["force"] and age is not None and age < params["cooldown"]:
        result["skipped"] = ("its workers started %ss ago, within the cooldown of %ss: not reloaded "
                             "again (force: true overrides)" % (int(age), params["cooldown"]))
        result["workers_after"] = before["workers"]
        return True
    test = client.exec(namespace, name, ["nginx", "-t"], container=container)
    result["config_test"] = {"rc": test.rc, "ok": test.rc == 0,
                             "output": (test.stderr + test.stdout).strip() or test.error}
    if test.rc != 0:
        result["error"] = "nginx -t failed, not reloading: %s" % (
            result["config_test"]["output"] or test.error)
        return False
    sent = client.exec(namespace, name, ["nginx", "-s", "reload"], container=container)
    if sent.rc != 0:
        result["error"] = "nginx -s reload failed: %s" % (
            (sent.stderr + sent.stdout).strip() or sent.error or "exit %s" % sent.rc)
        return False
    result["reload_sent"] = True
    deadline = time.monotonic() + params["settle_timeout"]
    while True:
        after = read_processes(client, namespace, name, container)
        if _replaced(before["workers"], after["workers"]) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    result["workers_after"] = after["workers"]
    if before["problem"] or after["problem"]:
        result["error"] = "cannot prove the reload: %s" % (after["problem"] or before["problem"])
        return False
    result["reloaded"] = _replaced(before["workers"], after["workers"])
    if not result["reloaded"]:
        result["error"] = ("nginx -s reload exited 0 but the worker processes were not replaced "
                           "within %gs: the master probably kept the old config (see its error "
                           "log)" % params["settle_timeout"])
        return False
    result["last_reload"] = after["workers"][-1]["start_time"]
    return True


def _verify(client, namespace, name, container, pod, params, result):
    """Probe the replica (reloaded, or skipped in the cooldown); set verified."""
    url = params["probe_url"]
    if not url and params["probe_path"] is not None:
        port = params["probe_port"]
        if port is None:
            ports, problem = listen_ports(client, namespace, name, container)
            port = ports[0] if ports else None
            if port is None:
                result["error"] = "cannot probe: %s" % (problem or "no listen port")
                return result
        ip = (pod.get("status") or {}).get("podIP")
        path = params["probe_path"] if params["probe_path"].startswith("/") else \
            "/" + params["probe_path"]
        url = "http://%s%s" % (fmt_address(ip, port), path)
    if url:
        result["probe"] = probe(client, namespace, name, container, url, params["probe_timeout"])
        if not result["probe"].get("ran", True):
            # Nothing could ask the replica: the new workers prove the reload, not the fix.
            result["unproven"] = ("%s, but not proven to answer: %s" % (
                "new worker processes took over" if result["reloaded"] else
                "skipped in the cooldown", result["probe"]["error"]))
            result["error"] = "unproven: " + result["unproven"]
            return result
        if result["probe"]["status"] in (None, 502):
            result["error"] = "%s, but the probe of %s got %s" % (
                "skipped in the cooldown" if result["skipped"] else "reloaded", url,
                result["probe"]["status"] or result["probe"]["error"])
            return result
    result["verified"] = True
    return result


def main():
    """Module entry point."""
    module = k8s_module(
        {"namespace": {"type": "str", "required": True},
         "pods": {"type": "list", "elements": "str", "required": True},
         "container": {"type": "str"},
         "probe_path": {"type": "str"},
         "probe_port": {"type": "int"},
         "probe_url": {"type": "str"},
         "settle_timeout": {"type": "float", "default": 5},
         "probe_timeout": {"type": "float", "default": 5},
         "cooldown": {"type": "int", "default": 300},
         "force": {"type": "bool", "default": False},
         "lock_timeout": {"type": "float", "default": 30}},
        supports_check_mode=True,
        mutually_exclusive=[("probe_url", "probe_path")],
    )
    params = module.params
    names = list(dict.fromkeys(params["pods"]))
    if not names:
        module.exit_json(changed=False, replicas=[], msg="no replica given: nothing to reload")
    steps = plan(params)
    if module.check_mode:
        replicas = [_new_result(params["namespace"], name, steps) for name in names]
        module.exit_json(changed=True, replicas=replicas,
                         msg="check mode: would run, in each of %s: %s"
                         % (", ".join(names), "; ".join(steps)))
    client = client_from_module(module)
    replicas = []
    for name in names:
        try:
            replicas.append(reload_replica(client, params["namespace"], name, params, steps))
        except K8sError as exc:
            failed = _new_result(params["namespace"], name, steps)
            failed["error"] = str(exc)
            replicas.append(failed)
    changed = any(r["reloaded"] for r in replicas)
    bad = [r for r in replicas if not r["verified"]]
    if bad:
        module.fail_json(msg="; ".join("%s/%s: %s" % (r["namespace"], r["name"], r["error"])
                                       for r in bad),
                         changed=changed, replicas=replicas)
    skipped = [r["name"] for r in replicas if r["skipped"]]
    note = "; not reloaded (cooldown): %s" % ", ".join(skipped) if skipped else ""
    module.exit_json(changed=changed, replicas=replicas, msg="verified: %s%s" % (", ".join(names), note))


if __name__ == "__main__":
    main()
