#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action plugin badgateway.k8s.assert_judgement (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: assert_judgement
short_description: Pass or fail on a judgement, showing its messages, like an assertion
version_added: 0.1.0
description:
  - The step of the badgateway.k8s.diagnose_502 role that asserts a layer over every target of
    the play. It does what M(ansible.builtin.assert) does with O(judgement.passed) as its
    condition and the judgement's messages, from one value.
  - M(ansible.builtin.assert) renders its condition and each message on its own; a judgement
    built from every target's variables (one C(hostvars) lookup per target) was then built three
    times. Given whole, it is built once.
  - Passes (C(ok)) showing O(judgement.success_msg), or fails showing O(judgement.fail_msg).
  - This is an action plugin; it runs on the controller and contacts no host.
options:
  judgement:
    description: The judgement, as the badgateway.k8s.layer_judgement filter gives it.
    type: dict
    required: true
    suboptions:
      passed:
        description: Whether it passes.
        type: bool
        required: true
      fail_msg:
        description: What is shown when it does not pass (a line or a list of lines).
        type: raw
        default: []
      success_msg:
        description: What is shown when it passes (a line or a list of lines).
        type: raw
        default: ""
extends_documentation_fragment:
  - badgateway.k8s.controller_action
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Assert the layer passes
  badgateway.k8s.assert_judgement:
    judgement: "{{ {inventory_hostname: gathered} | badgateway.k8s.layer_judgement('service') }}"
  ignore_errors: true
"""

RETURN = r"""
evaluated_to:
  description: V(false), the value of the condition that failed (as M(ansible.builtin.assert) returns it).
  returned: when the judgement did not pass
  type: bool
  sample: false
assertion:
  description: The condition that failed, V(judgement.passed) (as M(ansible.builtin.assert) returns it).
  returned: when the judgement did not pass
  type: str
  sample: judgement.passed
msg:
  description: The judgement's O(judgement.success_msg) when it passed, else its O(judgement.fail_msg).
  returned: always
  type: raw
  sample: ["[fail] 0 of 1 endpoints are ready"]
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._controller_actions import (
    action_only_main,
)


def main():
    """Only reached when run without the action plugin (e.g. on a remote host)."""
    action_only_main("assert_judgement")


if __name__ == "__main__":
    main()
