#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.service_info."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service_info
short_description: A Service, the pods its selector matches, its ports and its EndpointSlices
version_added: 0.1.0
description:
  - Reads one Service and reports whether its selector matches pods (and which), each port
    with its C(targetPort) resolved (number or name) against the matching pods'
    C(containerPorts), the EndpointSlices labelled C(kubernetes.io/service-name) with every
    address's ready / serving / terminating conditions, and whether it is headless.
  - A Service that does not exist is reported as RV(service.exists=false), not as a failure,
    unless O(must_exist=true). An unknown namespace always fails.
  - Read-only; needs C(get) on C(services), C(list) on C(pods) and C(list) on
    C(endpointslices.discovery.k8s.io) in the namespace.
options:
  namespace:
    description: Namespace of the Service.
    type: str
    required: true
  name:
    description: Name of the Service.
    type: str
    required: true
  must_exist:
    description: Fail when the Service does not exist.
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
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Service web and its endpoints
  badgateway.k8s.service_info:
    namespace: shop
    name: web
  register: web_svc

- name: Stop when nothing backs it
  ansible.builtin.assert:
    that: web_svc.service.ready_addresses | length > 0
    fail_msg: "Service web has no ready endpoint"
"""

RETURN = r"""
service:
  description: The Service facts (DESIGN.md shape).
  returned: success
  type: dict
  contains:
    namespace:
      description: "Namespace."
      type: str
      returned: always
    name:
      description: "Service name."
      type: str
      returned: always
    exists:
      description: "Whether the Service exists."
      type: bool
      returned: always
    type:
      description: "ClusterIP, NodePort, LoadBalancer, ExternalName; null if missing."
      type: str
      returned: always
    cluster_ip:
      description: "ClusterIP, null when headless or missing."
      type: str
      returned: always
    headless:
      description: "True when clusterIP is None."
      type: bool
      returned: always
    creation_timestamp:
      description: "When the Service was created (RFC 3339), null if missing. A recreated Service has a new one (and a new ClusterIP)."
      type: str
      returned: always
    selector:
      description: "The Service selector, label name to value (any names, so no fixed keys); empty when missing."
      type: dict
      returned: always
    ports:
      description: "The Service's ports."
      type: list
      elements: dict
      returned: always
      contains:
        name:
          description: "Port name, or null."
          type: str
          returned: always
        port:
          description: "The Service port."
          type: int
          returned: always
        protocol:
          description: "C(TCP), C(UDP) or C(SCTP)."
          type: str
          returned: always
        target_port:
          description: "The targetPort as written: a number, a port name, or null (then the same as the Service port)."
          type: raw
          returned: always
        resolved_target_ports:
          description: "Where each matching pod receives this port."
          type: list
          elements: dict
          returned: always
          contains:
            pod:
              description: "The pod, C(namespace/name)."
              type: str
              returned: always
            port:
              description: "The container port the targetPort resolves to in that pod; null when a named targetPort names no port of it."
              type: int
              returned: always
    matching_pods:
      description: "Pods (ns/name) its selector matches."
      type: list
      elements: str
      returned: always
    selector_matches:
      description: "Whether the selector matches at least one pod."
      type: bool
      returned: always
    endpoints:
      description: "Every address and port of the Service's EndpointSlices, sorted by address."
      type: list
      elements: dict
      returned: always
      contains:
        address:
          description: "C(IP:PORT) (C([IP]:PORT) for IPv6), or the IP alone when the slice has no port."
          type: str
          returned: always
        ip:
          description: "The IP address."
          type: str
          returned: always
        port:
          description: "The port number, or null."
          type: int
          returned: always
        port_name:
          description: "The slice's port name, or null."
          type: str
          returned: always
        ready:
          description: "The ready condition (a missing condition counts as ready, as Kubernetes reads it)."
          type: bool
          returned: always
        serving:
          description: "The serving condition (the same as C(ready) when missing)."
          type: bool
          returned: always
        terminating:
          description: "The terminating condition."
          type: bool
          returned: always
        target:
          description: "The pod behind the address, C(namespace/name), or null when it is not a pod."
          type: str
          returned: always
        slice:
          description: "Name of the EndpointSlice."
          type: str
          returned: always
    ready_addresses:
      description: "Ready and not terminating IP:PORT."
      type: list
      elements: str
      returned: always
    not_ready_addresses:
      description: "Not ready and not terminating IP:PORT."
      type: list
      elements: str
      returned: always
    terminating_addresses:
      description: "Terminating IP:PORT."
      type: list
      elements: str
      returned: always
    port_mismatches:
      description: "Ports whose targetPort some matching pod lacks."
      type: list
      elements: dict
      returned: always
      contains:
        port:
          description: "The Service port."
          type: int
          returned: always
        target_port:
          description: "Its targetPort as written (a number or a name)."
          type: raw
          returned: always
        pods_without_it:
          description: "The matching pods, C(namespace/name), that do not declare that port (or have no port of that name)."
          type: list
          elements: str
          returned: always
  sample:
    namespace: shop
    name: web
    exists: true
    type: ClusterIP
    cluster_ip: 127.0.20.1
    headless: false
    selector: {app: web}
    ready_addresses: ["127.0.10.7:8080"]
    selector_matches: true
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _k8s_tasks.py, run by AnsibleModule."""
    run_module("service_info")


if __name__ == "__main__":
    main()
