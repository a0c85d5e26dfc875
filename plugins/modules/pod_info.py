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

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_facts import (
    selector_string,
    sort_pods,
    summarize_pod,
)
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import (
    K8sError,
    K8sNotFound,
    client_from_module,
    k8s_module,
)


def choose_selector(client, namespace, service):
    """The label selector of Service ``namespace/service``; K8sError when unusable."""
    try:
        svc = client.get_service(namespace, service)
    except K8sNotFound:
        client.require_namespace(namespace)
        raise K8sError('Service "%s" not found in namespace "%s"' % (service, namespace)) from None
    selector = (svc.get("spec") or {}).get("selector") or {}
    if not selector:
        raise K8sError(
            'Service "%s/%s" has no selector (its endpoints are managed by hand), '
            "so it chooses no pods; give label_selector instead" % (namespace, service)
        )
    return selector_string(selector)


def gather(client, namespace, selector, allow_empty):
    """List and summarize the pods; fail clearly on an unknown namespace or no match."""
    raw = client.list_pods(namespace, selector)
    if not raw:
        exists = client.require_namespace(namespace)
        if not allow_empty:
            raise K8sError(
                'no pod in namespace "%s" matches the selector "%s"%s; check the labels '
                "(kubectl get pods --show-labels) or set allow_empty=true"
                % (
                    namespace,
                    selector,
                    ""
                    if exists
                    else " (whether the namespace exists could not be "
                    "checked: no get on namespaces)",
                )
            )
    return sort_pods([summarize_pod(p) for p in raw])


def main():
    """Module entry point."""
    module = k8s_module(
        {
            "namespace": {"type": "str", "required": True},
            "label_selector": {"type": "str"},
            "service": {"type": "str"},
            "allow_empty": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
        mutually_exclusive=[("label_selector", "service")],
        required_one_of=[("label_selector", "service")],
    )
    params = module.params
    client = client_from_module(module)
    try:
        selector = params["label_selector"]
        if params["service"]:
            selector = choose_selector(client, params["namespace"], params["service"])
        pods = gather(client, params["namespace"], selector, params["allow_empty"])
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, selector=selector, pods=pods)


if __name__ == "__main__":
    main()
