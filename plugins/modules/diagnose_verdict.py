#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.diagnose_verdict."""

from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose_verdict
short_description: Decide the cause of a 502 from the facts gathered by the other modules
version_added: 0.1.0
description:
  - Applies the collection's verdict rules to facts gathered by M(badgateway.k8s.pod_info),
    M(badgateway.k8s.service_info), M(badgateway.k8s.proxy_info) and
    M(badgateway.k8s.proxy_probe), and returns the cause ID (see the collection's
    C(docs/)), the evidence for it, what is missing, the stale replicas and whether a reload
    is safe.
  - Needs no cluster access and takes no connection options; it only computes.
options:
  facts:
    description:
      - "The gathered facts: C(symptom) (C({status, url}) or null),
        C(pods) (RV(badgateway.k8s.pod_info#module:pods)),
        C(service) (RV(badgateway.k8s.service_info#module:service)),
        C(proxies) (RV(badgateway.k8s.proxy_info#module:proxies)),
        C(probes) (RV(badgateway.k8s.proxy_probe#module:probes) towards the Service),
        C(self_probes) (proxy_probe with O(badgateway.k8s.proxy_probe#module:target=self)),
        C(layers) (per-layer judgements) and C(errors) (per layer, why it could not be
        gathered). Missing keys count as not gathered."
      - Facts the rules cannot read give the cause C(unknown) with the reason in
        RV(verdict.summary), not a failure.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Computes only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Decide
  badgateway.k8s.diagnose_verdict:
    facts:
      symptom: {status: 502, url: "https://chat.example.com/"}
      pods: "{{ web_pods.pods }}"
      service: "{{ web_svc.service }}"
      proxies: "{{ proxy.proxies }}"
      probes: "{{ svc_probe.probes }}"
  register: decision

- name: Show it
  ansible.builtin.debug:
    msg: "{{ decision.verdict.cause }}: {{ decision.verdict.summary }}"
"""

RETURN = r"""
verdict:
  description: The decision (DESIGN.md shape).
  returned: success
  type: dict
  contains:
    cause:
      description: "Cause ID, e.g. stale_upstream, no_endpoints, backend_down, healthy, unknown."
      type: str
      returned: always
    summary:
      description: "One-sentence explanation."
      type: str
      returned: always
    evidence:
      description: "The observations that support the cause."
      type: list
      elements: str
      returned: always
    recommendation:
      description: "fix and prevention texts."
      type: dict
      returned: always
      contains:
        fix:
          description: What to do now about this cause.
          type: str
          returned: always
        prevention:
          description: What keeps the cause from coming back.
          type: str
          returned: always
    missing_evidence:
      description: "What was not gathered and would make the verdict firmer."
      type: list
      elements: str
      returned: always
    candidates:
      description: "Other causes that still fit."
      type: list
      elements: str
      returned: always
    stale_replicas:
      description: "Proxy replicas (ns/name) dialling stale addresses."
      type: list
      elements: str
      returned: always
    stale_addresses:
      description: "The stale addresses."
      type: list
      elements: str
      returned: always
    current_addresses:
      description: "The Service's current ready endpoint addresses."
      type: list
      elements: str
      returned: always
    reload_safe:
      description:
        - "True only for stale_upstream with ready current endpoints, on replicas whose config and nginx processes could be read."
      type: bool
      returned: always
    unchecked:
      description:
        - "Each part that could not be read - a replica's log, config or processes, a probe that could not run - naming the call."
        - "Such a part counts neither as healthy nor as sick; with one, the cause is never healthy."
      type: list
      elements: str
      returned: always
    warnings:
      description:
        - "What is wrong but is not the cause: a replica that dialled a vanished address and is not to be reloaded
          (it answers now, resolves at run time, or was reloaded after the current endpoints appeared), a backend pod crashing beside ready ones."
      type: list
      elements: str
      returned: always
    proxy_kinds:
      description:
        - "The proxy kinds of the replicas read (V(nginx), V(haproxy)), sorted; empty when none could be told."
      type: list
      elements: str
      returned: always
    endpoints_since:
      description:
        - "When the Service's newest ready endpoint became Ready (RFC 3339), or null; a replica last reloaded after it is not reloaded again."
      type: str
      returned: always
    hypotheses:
      description:
        - "Every cause the evidence pointed to, with the evidence for it, against it, and what would settle it."
      type: list
      elements: dict
      returned: always
      contains:
        cause:
          description: "The cause ID."
          type: str
        fit:
          description: "V(chosen), V(strong) or V(weak) (it fits; another was chosen, or none could be), or V(ruled_out) (other evidence contradicts it)."
          type: str
        for:
          description: "The evidence for it."
          type: list
          elements: str
        against:
          description: "The evidence against it (for V(ruled_out))."
          type: list
          elements: str
        missing:
          description: "What would settle it."
          type: list
          elements: str
  sample:
    cause: stale_upstream
    stale_replicas: [open-webui/nginx-proxy-0]
    stale_addresses: ["127.20.1.10:8080"]
    current_addresses: ["127.20.1.12:8080"]
    reload_safe: true
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import module_main


def main():
    """Module entry point: the task of _tasks.py, run by AnsibleModule."""
    module_main("diagnose_verdict")


if __name__ == "__main__":
    main()
