#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action plugin badgateway.k8s.outcome (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: outcome
short_description: End a diagnosed target's run with the exit status of its outcome
version_added: 0.1.0
description:
  - The last task of the badgateway.k8s.diagnose_502 role and of the drift check playbook. It
    turns an outcome into the status of the target in the play, so that C(ansible-playbook)
    exits with a status that says what was found.
  - V(healthy) and V(remediated) leave the target C(ok) (exit status 0).
  - V(problem_found) and V(remediation_failed) fail the target (exit status 2); the message
    starts with C(PROBLEM FOUND) or C(REMEDIATION FAILED).
  - V(could_not_check) marks the target unreachable (exit status 4) - it could not be looked
    at, which is neither healthy nor sick; the message starts with C(COULD NOT CHECK).
  - ansible-playbook has no other exit statuses a play can produce; the outcome itself is in
    the result (C(outcome)) and in the job's artifacts.
  - This is an action plugin; it runs on the controller and contacts no host.
options:
  outcome:
    description: The outcome, as the badgateway.k8s.diagnose_outcome filter decides it.
    type: str
    required: true
    choices: [could_not_check, healthy, problem_found, remediated, remediation_failed]
  msg:
    description: What was found, in one sentence; it follows the outcome's headline.
    type: str
    default: ""
  fail_on_problem:
    description: Fail the target on V(problem_found) and V(remediation_failed); false leaves it C(ok).
    type: bool
    default: true
  fail_on_error:
    description: Mark the target unreachable on V(could_not_check); false leaves it C(ok).
    type: bool
    default: true
extends_documentation_fragment:
  - badgateway.k8s.controller_action
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: End with the outcome's exit status
  badgateway.k8s.outcome:
    outcome: "{{ (diagnose_502_result | badgateway.k8s.diagnose_outcome).outcome }}"
    msg: "{{ (diagnose_502_result | badgateway.k8s.diagnose_outcome).message }}"
"""

RETURN = r"""
outcome:
  description: The outcome given.
  returned: always
  type: str
  sample: problem_found
exit_status:
  description: The exit status of ansible-playbook that carries it (0, 2 or 4).
  returned: always
  type: int
  sample: 2
msg:
  description: The headline and the message.
  returned: always
  type: str
  sample: "PROBLEM FOUND: stale_upstream: proxy replica(s) web/nginx-0 still dial 10.1.1.2:8080"
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._controller_actions import (
    action_only_main,
)


def main():
    """Only reached when run without the action plugin (e.g. on a remote host)."""
    action_only_main("outcome")


if __name__ == "__main__":
    main()
