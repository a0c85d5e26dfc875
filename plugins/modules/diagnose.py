#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.diagnose."""

from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose
short_description: The read-only diagnosis of a 502 in one pass - every layer read and judged, and the cause
version_added: 0.1.0
description:
  - The read-only part of the badgateway.k8s.diagnose_502 role in one task, with one Kubernetes
    client - what its five layers read, each layer judged (RV(layers)), the cause decided over
    them (RV(verdict), as M(badgateway.k8s.diagnose_verdict) decides it) and the request chain
    (RV(chain)). The role then asserts each layer, shows the verdict, remediates and reports.
  - What the layers read - the proxy replicas (as M(badgateway.k8s.proxy_info)
    reads them), the URL users hit (as C(ansible.builtin.uri) requests it, from where the task
    runs) and each replica's own listen address from inside it (M(badgateway.k8s.proxy_probe)
    O(badgateway.k8s.proxy_probe#module:target=self)), the backend pods
    (M(badgateway.k8s.pod_info)), the backend Service (M(badgateway.k8s.service_info)), and the
    Service requested from inside each replica (M(badgateway.k8s.proxy_probe)).
  - Each of those steps ends as facts or as the message of why it could not be read, under the
    layer it belongs to (RV(facts.errors)); the task itself does not fail for them.
  - What does not depend on something else is read at the same time, up to O(max_in_flight)
    calls in flight. The proxy is requested first (the URL, each replica's own address) and
    every replica's log is read after those requests ended, so the logs hold the evidence of
    the failure seen now.
  - Read-only. Needs the permissions of the modules named above.
options:
  proxy_namespace:
    description: Namespace of the proxy pods.
    type: str
    required: true
  proxy_selector:
    description: Label selector of the proxy pods.
    type: str
    required: true
  proxy_container:
    description: The proxy's container. Default, as M(badgateway.k8s.proxy_info) picks it.
    type: str
  proxy_kind:
    description:
      - The kind of proxy (O(badgateway.k8s.proxy_info#module:kind)) - V(nginx), V(haproxy), or V(auto), per pod from its
        containers' names, images or binaries.
    type: str
    choices: [auto, nginx, haproxy]
    default: auto
  proxy_port:
    description: The replicas' listen port to probe. Default, the first C(listen) port of each replica's config.
    type: int
  service_namespace:
    description: Namespace of the backend Service. Default, O(proxy_namespace).
    type: str
  service_name:
    description:
      - The backend Service. Default, the one Service the replicas' configs name; when they
        name none or several, the backend layers record why they could not be read.
    type: str
  service_port:
    description: The Service port to request from inside the replicas. Default, its first port.
    type: int
  url:
    description: The URL users hit, requested from where the task runs (redirects not followed, certificates not checked).
    type: str
  path:
    description: The path requested on each replica's own listen address and on the Service.
    type: str
    default: /
  tail_lines:
    description: Read at most this many of the newest log lines per replica.
    type: int
    default: 5000
  since_seconds:
    description: Read only log lines newer than this many seconds. Default, no time bound.
    type: int
  limit_bytes:
    description: Read at most this many bytes of log per replica.
    type: int
    default: 4194304
  return_facts:
    description:
      - Return what was read (RV(facts)). V(false) returns only RV(facts.errors), for a caller that needs no more than the
        judgements, the verdict and the chain (the diagnose_502 role), and keeps the result small.
    type: bool
    default: true
  result:
    description:
      - Also build the diagnose_502 role's result (docs/result-schema.md), as M(badgateway.k8s.diagnose_report) builds
        it, in this step, when nothing after it changes it; the role asks for it so that each target needs one step fewer.
      - Returns RV(reload_reason), RV(outputs) and RV(show_summary); when the verdict does not earn a reload
        (RV(reload_reason) is not empty), also the fact C(diagnose_502_result), with the remediation recorded as not
        performed and why, and adds it to the job's artifact C(diagnose_502_results) under O(result.inventory_host).
      - When the reload is earned, the result is left to the step that follows the reload.
    type: dict
    suboptions:
      remediate:
        description: Whether the stale replicas are to be reloaded when the verdict earns it (the role's C(diagnose_502_remediate)).
        type: bool
        default: false
      inventory_host:
        description: The target's inventory host, recorded in the result and keying its artifact.
        type: str
      files:
        description: The result files wanted, a path by format; an empty or missing one is not written.
        type: dict
        default: {}
        suboptions:
          json:
            description: The JSON file.
            type: path
          markdown:
            description: The Markdown file.
            type: path
          html:
            description: The HTML file.
            type: path
      show_summary:
        description: Whether the target's summary is to be shown.
        type: bool
        default: true
extends_documentation_fragment:
  - badgateway.k8s.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads and GET requests only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Diagnose the proxy in front of the Service web
  badgateway.k8s.diagnose:
    proxy_namespace: edge
    proxy_selector: app=nginx-proxy
    service_namespace: shop
    service_name: web
    url: https://shop.example.com/
  register: diagnosis

- name: Show the cause
  ansible.builtin.debug:
    msg: "{{ diagnosis.verdict.summary }}"
"""

RETURN = r"""
started:
  description: When the diagnosis started (ISO 8601, UTC).
  returned: success
  type: str
  sample: "2026-11-30T06:51:04.123456Z"
facts:
  description:
    - What the layers read, under the keys the layers and the verdict read (DESIGN.md's fact shapes).
    - A part is null when it could not be read; RV(facts.errors) then says why, under its layer.
    - With O(return_facts=false), only RV(facts.errors).
  returned: success
  type: dict
  contains:
    symptom:
      description: "The URL users hit (null when none was given) and the HTTP status it answered (-1 when nothing answered; null without a URL)."
      type: dict
      returned: unless O(return_facts=false)
      contains:
        url:
          description: "The URL requested, or null."
          type: str
          returned: always
        status:
          description: "Its HTTP status, -1 when nothing answered, null without a URL."
          type: int
          returned: always
    self_probes:
      description:
        - "Each replica's request to its own listen address"
        - "(the items of M(badgateway.k8s.proxy_probe)'s RV(badgateway.k8s.proxy_probe#module:probes))."
      type: list
      elements: dict
      returned: unless O(return_facts=false)
    pods:
      description: "The backend pods (M(badgateway.k8s.pod_info)'s RV(badgateway.k8s.pod_info#module:pods))."
      type: list
      elements: dict
      returned: unless O(return_facts=false)
    service:
      description: "The backend Service (M(badgateway.k8s.service_info)'s RV(badgateway.k8s.service_info#module:service))."
      type: dict
      returned: unless O(return_facts=false)
    svc_probes:
      description:
        - "The Service requested from inside each replica"
        - "(the items of M(badgateway.k8s.proxy_probe)'s RV(badgateway.k8s.proxy_probe#module:probes))."
      type: list
      elements: dict
      returned: unless O(return_facts=false)
    proxies:
      description: "The proxy replicas (M(badgateway.k8s.proxy_info)'s RV(badgateway.k8s.proxy_info#module:proxies))."
      type: list
      elements: dict
      returned: unless O(return_facts=false)
    errors:
      description:
        - "Layer name (C(symptom), C(backend_pods), C(service), C(connectivity), C(proxy_logs)) to the message of the step that
          could not read that layer's facts; empty when every step read them."
      type: dict
      returned: always
  sample:
    symptom: {url: "https://shop.example.com/", status: 502}
    errors: {}
layers:
  description:
    - "Each layer judged from RV(facts), in the order symptom, backend_pods, service, connectivity, proxy_logs: what the
      badgateway.k8s.assess_layer filter gives for each."
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: "The layer."
      type: str
      returned: always
    hypothesis:
      description: "What the layer tests."
      type: str
      returned: always
    status:
      description: "C(pass), C(fail), or C(error) (could not be checked)."
      type: str
      returned: always
    message:
      description: "The judgement in one sentence."
      type: str
      returned: always
    evidence:
      description: "The lines it rests on."
      type: list
      elements: str
      returned: always
verdict:
  description:
    - "The cause decided over RV(facts) and RV(layers):"
    - "what M(badgateway.k8s.diagnose_verdict) returns as RV(badgateway.k8s.diagnose_verdict#module:verdict)."
  returned: success
  type: dict
chain:
  description:
    - "The request chain (client, proxy replicas, Service, endpoints, pods) with each node's and link's status:"
    - "what the badgateway.k8s.report_chain filter gives."
  returned: success
  type: dict
service_namespace:
  description: The backend Service's namespace (O(service_namespace), or the one the configs name).
  returned: success
  type: str
  sample: shop
service_name:
  description: The backend Service (O(service_name), or the one the configs name); empty when it could not be told.
  returned: success
  type: str
  sample: web
reload_reason:
  description: Why the stale replicas are not reloaded, or empty when the reload is earned.
  returned: success, with O(result)
  type: str
  sample: "remediation is off (diagnose_502_remediate=false): read-only run"
ansible_facts:
  description: The fact C(diagnose_502_result), the result (docs/result-schema.md) with its outcome.
  returned: success, with O(result), when RV(reload_reason) is not empty
  type: dict
outputs:
  description: The result files asked for, as RV(badgateway.k8s.diagnose_report#module:outputs).
  returned: success, with O(result)
  type: list
  elements: dict
show_summary:
  description: Whether the target's summary is to be shown.
  returned: success, with O(result)
  type: bool
"""

from ansible_collections.badgateway.k8s.plugins.module_utils import _diagnose
from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _diagnose.py, run by AnsibleModule."""
    run_module(_diagnose.NAME)


if __name__ == "__main__":
    main()
