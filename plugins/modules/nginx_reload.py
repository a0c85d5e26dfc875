#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.nginx_reload."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_reload
short_description: Reload nginx (or HAProxy) in chosen proxy replicas, safely, and prove it took
version_added: 0.1.0
description:
  - For each pod in O(pods), in order, inside its nginx container - run C(nginx -t); only if
    it passes, run C(nginx -s reload); then prove the reload took - the worker processes were
    replaced (new PIDs, newer start times; nginx keeps the old workers when the master fails
    to re-read its config, whatever C(nginx -s reload) returned) and, when a probe is asked
    for, the replica's own listen address answers something other than 502.
  - No reload storms - a replica whose nginx workers were re-spawned after O(reloaded_after)
    (it already re-read its config with the current endpoints), or less than O(cooldown)
    seconds ago, is not reloaded again unless O(force=true); it is only probed. The time is read from the pod itself (the newest worker's start), so no
    state is kept anywhere and concurrent runs agree. Runs against the same replica take turns
    through a short-lived lock directory in the container (C(/run), C(/var/run) or C(/tmp)),
    so that of several concurrent runs only the first reloads; the others then see the fresh
    workers and skip. A lock left by a run that died is broken after two minutes.
  - With O(kind=haproxy) (or V(auto) finding HAProxy) the same steps run as C(haproxy -c) on
    the config the master was started with, then the master CLI's C(reload) (or C(kill -USR2)
    of the master), proven by new worker PIDs; the probe must not answer 502, 503 or 504 (a
    stale HAProxy server answers 503).
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
    description: The proxy's container. Default, the container whose name or image says the proxy kind (O(kind)).
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
  reloaded_after:
    description:
      - "An RFC 3339 time: when the endpoints the replicas should dial appeared (the diagnosis' C(verdict.endpoints_since))."
      - "A replica whose worker processes started at least a second after it is not reloaded again, only probed:
        it already re-read its config with those endpoints (a concurrent run, or someone, reloaded it),
        and another reload would resolve the same addresses."
      - "This is the rule against reload storms that never blocks a needed reload:
        a replica last reloaded before the endpoints changed is reloaded however recently that was."
    type: str
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
  - badgateway.k8s.proxy_kind
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
      description: "The proxy's container (null in check mode or when the pod was not found)."
      type: str
      returned: always
    kind:
      description: "The proxy kind reloaded (V(nginx), V(haproxy)); null in check mode or when the pod was not found."
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
        - "Why this replica was not reloaded although asked (it was reloaded after O(reloaded_after), or within the cooldown); null otherwise."
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

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _k8s_tasks.py, run by AnsibleModule."""
    run_module("nginx_reload")


if __name__ == "__main__":
    main()
