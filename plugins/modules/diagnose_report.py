#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action plugin badgateway.k8s.diagnose_report (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose_report
short_description: Build a diagnosed target's result, set it as a fact and add it to the job's artifacts
version_added: 0.1.0
description:
  - The result step of the badgateway.k8s.diagnose_502 role after a reload (and when nothing could be read); in a run
    that does not reload, M(badgateway.k8s.diagnose) builds the result itself (its O(badgateway.k8s.diagnose#module:result)).
    From what M(badgateway.k8s.diagnose) gathered and judged, the target's settings and the remediation record, it builds
    the target's structured result (docs/result-schema.md) and decides its outcome, as
    P(badgateway.k8s.diagnose_result#filter) does.
  - Sets the fact C(diagnose_502_result), and adds the result to the job's artifacts under
    C(diagnose_502_results), keyed by the inventory host (merged over every target of the play, as
    M(ansible.builtin.set_stats) with O(ansible.builtin.set_stats#module:aggregate=true) merges).
  - Says which result files and whether the summary the target's settings ask for (C(outputs),
    C(show_summary)); it writes nothing itself.
  - This is an action plugin; it runs on the controller and contacts no host.
options:
  gathered:
    description: What M(badgateway.k8s.diagnose) returned (C(started), C(facts), C(layers), C(verdict),
      C(chain), C(service_namespace), C(service_name)).
    type: dict
    required: true
  proxy:
    description: The proxy target, C(namespace/selector).
    type: str
    required: true
  url:
    description: The URL users hit, or empty.
    type: str
    default: ""
  remediation:
    description: The remediation record (P(badgateway.k8s.remediation_record#filter)).
    type: dict
  files:
    description: The result files asked for, by format; an empty path asks for none.
    type: dict
    default: {}
    suboptions:
      json:
        description: Path of the JSON result.
        type: path
      markdown:
        description: Path of the Markdown report.
        type: path
      html:
        description: Path of the HTML report.
        type: path
  show_summary:
    description: Whether the target's summary is to be shown.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Computes only; runs the same in check mode (the result says it was one).
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  action:
    support: full
    description: Runs on the controller as an action plugin.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Build the result
  badgateway.k8s.diagnose_report:
    gathered: "{{ gathered }}"
    proxy: web/app=nginx
    url: https://example.test/
    remediation: "{{ 'read-only run' | badgateway.k8s.remediation_record }}"
  register: report
"""

RETURN = r"""
ansible_facts:
  description: The fact C(diagnose_502_result), the result (docs/result-schema.md) with its outcome.
  returned: always
  type: dict
outputs:
  description: The result files asked for.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The inventory host of the target.
      type: str
    format:
      description: V(json), V(markdown) or V(html).
      type: str
    dest:
      description: The path.
      type: str
show_summary:
  description: Whether the target's summary is to be shown.
  returned: always
  type: bool
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._controller_actions import (
    action_only_main,
)


def main():
    """Only reached when run without the action plugin (e.g. on a remote host)."""
    action_only_main("diagnose_report")


if __name__ == "__main__":
    main()
