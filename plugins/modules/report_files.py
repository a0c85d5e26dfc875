#!/usr/bin/python
# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action plugin badgateway.k8s.report_files (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: report_files
short_description: Write report files on the controller
version_added: 0.1.0
description:
  - Writes each file's content on the machine that runs C(ansible-playbook), as the
    badgateway.k8s.diagnose_502 role writes a diagnosis' reports (JSON, Markdown, HTML) and the
    fleet summary.
  - Each file is written whole - to a temporary file in the same folder, then moved over the
    destination - so a reader never sees half a report. A file whose content and mode are
    already those asked for is left alone.
  - A file that cannot be written (a missing folder, no permission) fails the task with a
    message naming it; the other files are still written.
  - This is an action plugin; it runs in C(ansible-playbook)'s own process rather than starting
    a module for every file (as M(ansible.builtin.copy) does), and contacts no host.
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Path of the file on the controller. Its folder must exist.
        type: path
        required: true
      content:
        description: What the file holds (written as UTF-8).
        type: str
        required: true
  mode:
    description: The files' permissions, an octal mode such as V(0644).
    type: raw
    default: "0644"
attributes:
  check_mode:
    support: full
    description: Writes nothing; says whether it would change a file.
  diff_mode:
    support: none
    description: No diff is shown.
  action:
    support: full
    description: Runs on the controller as an action plugin.
author:
  - badgateway.k8s developers (@badgateway)
"""

EXAMPLES = r"""
- name: Write the result as JSON and Markdown
  badgateway.k8s.report_files:
    files:
      - dest: /tmp/diagnosis.json
        content: "{{ diagnose_502_result | to_nice_json }}\n"
      - dest: /tmp/diagnosis.md
        content: "{{ diagnose_502_result | badgateway.k8s.report_markdown }}"
"""

RETURN = r"""
files:
  description: Each file written or left as it was.
  returned: always
  type: list
  elements: dict
  contains:
    dest:
      description: The path.
      type: str
    changed:
      description: Whether its content or mode changed (in check mode, would change).
      type: bool
"""

from ansible_collections.badgateway.k8s.plugins.module_utils._controller_actions import (
    action_only_main,
)


def main():
    """Only reached when run without the action plugin (e.g. on a remote host)."""
    action_only_main("report_files")


if __name__ == "__main__":
    main()
