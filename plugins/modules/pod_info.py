#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.pod_info."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_info
short_description: Health facts of the backend pods behind a Service or a label selector
version_added: 0.1.0
description:
  - Lists the pods chosen by O(label_selector), or by the selector of the Service O(service),
    and reports for each its phase, readiness, container states and reasons
    (C(CrashLoopBackOff), C(OOMKilled), exit codes), restarts, last termination, pod IPs,
    container ports and creation / deletion times, with a list of problems found.
  - Read-only; needs C(list) on C(pods) (and C(get) on C(services) with O(service)).
options:
  namespace:
    description: Namespace of the pods (and of O(service)).
    type: str
    required: true
  label_selector:
    description:
      - Label selector, for example V(app=web) or V(app in (web,api),tier!=db).
    type: str
  service:
    description:
      - Name of a Service whose C(spec.selector) chooses the pods.
    type: str
  allow_empty:
    description:
      - When the selector matches no pod, return O(ignore:pods=[]) instead of failing.
      - An unknown namespace fails either way.
    type: bool
    default: false
extends_documentation_fragment:
  - badgateway.k8s.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Exactly one of O(label_selector) and O(service) is required.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Pods behind the Service web
  badgateway.k8s.pod_info:
    namespace: shop
    service: web
  register: web_pods

- name: Pods by label, tolerating none
  badgateway.k8s.pod_info:
    namespace: shop
    label_selector: app=web,track=canary
    allow_empty: true
    kubeconfig: ~/.kube/lab
"""

RETURN = r"""
selector:
  description: The label selector used (the Service's selector when O(service) is given).
  returned: success
  type: str
  sample: app=web
pods:
  description: The matching pods, sorted by namespace and name.
  returned: success
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
    uid:
      description: "Pod UID."
      type: str
      returned: always
    phase:
      description: "Pod phase (Pending, Running, Succeeded, Failed, Unknown)."
      type: str
      returned: always
    ready:
      description: "Whether the pod's Ready condition is True."
      type: bool
      returned: always
    pod_ip:
      description: "Primary pod IP or null."
      type: str
      returned: always
    pod_ips:
      description: "All pod IPs."
      type: list
      elements: str
      returned: always
    node:
      description: "Node name or null."
      type: str
      returned: always
    labels:
      description: "Pod labels, label name to value (any names, so no fixed keys)."
      type: dict
      returned: always
    creation_timestamp:
      description: "RFC 3339 creation time."
      type: str
      returned: always
    ready_since:
      description:
        - "While the pod is Ready, the RFC 3339 time it became Ready (its Ready condition's lastTransitionTime); null otherwise."
        - "The time its endpoint became one a proxy should dial: a proxy replica reloaded before it may still dial the address it replaced."
      type: str
      returned: always
    deletion_timestamp:
      description: "RFC 3339 deletion time or null."
      type: str
      returned: always
    restarts:
      description: "Sum of the containers' restart counts."
      type: int
      returned: always
    containers:
      description: One entry per container of the pod spec.
      type: list
      elements: dict
      returned: always
      contains:
        name:
          description: "Container name."
          type: str
          returned: always
        image:
          description: "Image reference."
          type: str
          returned: always
        ready:
          description: "Container ready."
          type: bool
          returned: always
        started:
          description: "Container started."
          type: bool
          returned: always
        restart_count:
          description: "Restart count."
          type: int
          returned: always
        state:
          description: "running, waiting, terminated or null."
          type: str
          returned: always
        reason:
          description: "Reason of the state, e.g. CrashLoopBackOff."
          type: str
          returned: always
        exit_code:
          description: "Exit code when terminated."
          type: int
          returned: always
        last_state:
          description: "The container's last termination, or null when it has none."
          type: dict
          returned: always
          contains:
            state:
              description: "Always C(terminated)."
              type: str
              returned: always
            reason:
              description: "Why it ended, e.g. C(OOMKilled), C(Error), C(Completed)."
              type: str
              returned: always
            exit_code:
              description: "Its exit code."
              type: int
              returned: always
            finished_at:
              description: "When it ended (RFC 3339)."
              type: str
              returned: always
        ports:
          description: "The ports the container declares, sorted by number."
          type: list
          elements: dict
          returned: always
          contains:
            name:
              description: "Port name, or null."
              type: str
              returned: always
            container_port:
              description: "Port number."
              type: int
              returned: always
            protocol:
              description: "C(TCP), C(UDP) or C(SCTP)."
              type: str
              returned: always
    problems:
      description: "Human-readable problems, e.g. C(container app: CrashLoopBackOff)."
      type: list
      elements: str
      returned: always
  sample:
    - namespace: shop
      name: web-7d4b9-abcde
      phase: Running
      ready: true
      pod_ip: 127.0.10.5
      restarts: 0
      problems: []
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _k8s_tasks.py, run by AnsibleModule."""
    run_module("pod_info")


if __name__ == "__main__":
    main()
