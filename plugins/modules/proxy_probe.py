#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module badgateway.k8s.proxy_probe."""

from __future__ import annotations

DOCUMENTATION = r"""
module: proxy_probe
short_description: HTTP request from inside each nginx proxy replica
version_added: 0.1.0
description:
  - Runs one HTTP GET from inside each selected proxy pod, with C(curl), or C(wget) where
    curl is missing, and reports the HTTP status per replica.
  - With O(target=url) it requests O(url), for example the backend Service's URL, which tells
    whether the Service works from the proxy's network position. With O(target=self) it
    requests the replica's own listen address C(http://<podIP>:<port><path>), which shows the
    symptom (502) of that replica alone, bypassing any load balancer in front.
  - Read-only towards the cluster (the request is a GET). Needs C(get) on C(pods) and
    C(get)/C(create) on C(pods/exec).
options:
  namespace:
    description: Namespace of the proxy pods.
    type: str
    required: true
  pods:
    description: Names of the proxy pods to probe from.
    type: list
    elements: str
  selector:
    description: Label selector choosing the proxy pods, instead of O(pods).
    type: str
    aliases: [label_selector]
  container:
    description:
      - Container to run curl/wget in. Default, the container whose name or image says
        the proxy kind (O(kind)), or the only one.
    type: str
  target:
    description:
      - V(url) requests O(url); V(self) requests each replica's own pod IP.
      - Defaults to V(url) when O(url) is given, else V(self).
    type: str
    choices: [url, self]
  url:
    description: URL to request when O(target=url), for example V(http://web.shop:8080/).
    type: str
  port:
    description:
      - Port of the replica's listener for O(target=self). Default, the first C(listen) port
        of the replica's running config (C(nginx -T)).
    type: int
  path:
    description: Path (with query) requested with O(target=self).
    type: str
    default: /
  probe_timeout:
    description: Seconds the HTTP request may take (curl C(--max-time), wget C(-T)).
    type: float
    default: 5
extends_documentation_fragment:
  - badgateway.k8s.k8s_auth
  - badgateway.k8s.proxy_kind
attributes:
  check_mode:
    support: full
    description: Only sends GET requests, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Exactly one of O(pods) and O(selector) is required.
  - A replica where neither curl nor wget can run gets C(tool=null) and an error that says so;
    the module does not fail for it.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Does the Service answer from inside every proxy replica?
  badgateway.k8s.proxy_probe:
    namespace: edge
    selector: app=nginx-proxy
    url: http://web.shop.svc.cluster.local:8080/healthz
  register: svc_probe

- name: Which replica answers 502 itself?
  badgateway.k8s.proxy_probe:
    namespace: edge
    pods: [nginx-proxy-0, nginx-proxy-1]
    target: self
    path: /
  register: self_probe
"""

RETURN = r"""
probes:
  description: One entry per replica, sorted by namespace and name.
  returned: success
  type: list
  elements: dict
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
      description: "The URL requested (null when no URL could be built)."
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
      description:
        - "Whether a client ran in the pod, so that its status or error is evidence (an answer, a refusal, a timeout)."
        - "False when the probe could not be made (the exec call failed, or neither curl nor wget exists in the container):
          then nothing was learnt about the path, and the diagnosis reports it as could not be checked."
      type: bool
      returned: always
  sample:
    - namespace: edge
      name: nginx-proxy-0
      url: http://127.0.0.1:8080/
      tool: curl
      status: 502
      ok: false
      error: null
      time_total: 0.002
      rc: 0
      ran: true
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._k8s_tasks import run_module


def main():
    """Module entry point: the task of _k8s_tasks.py, run by AnsibleModule."""
    run_module("proxy_probe")


if __name__ == "__main__":
    main()
