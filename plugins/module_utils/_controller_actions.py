# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the collection's controller-only actions (outcome, report_files,
diagnose_report, assert_judgement), written once for both sides: the action plugin validates a task's options
against them (plugin_utils/_controller_action.py) and the module of the same name, which only
documents the action, declares them and says it cannot run as a module.

Private to the collection.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.badgateway.k8s.plugins.module_utils.outcome import EXIT_STATUS
from ansible_collections.badgateway.k8s.plugins.module_utils.result import REPORT_FILES_SPEC

SPECS: dict[str, dict[str, t.Any]] = {
    "assert_judgement": {
        "judgement": {
            "type": "dict",
            "required": True,
            "options": {
                "passed": {"type": "bool", "required": True},
                "fail_msg": {"type": "raw", "default": []},
                "success_msg": {"type": "raw", "default": ""},
            },
        },
    },
    "outcome": {
        "outcome": {"type": "str", "required": True, "choices": sorted(EXIT_STATUS)},
        "msg": {"type": "str", "default": ""},
        "fail_on_problem": {"type": "bool", "default": True},
        "fail_on_error": {"type": "bool", "default": True},
    },
    "report_files": {
        "files": {
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": {
                "dest": {"type": "path", "required": True},
                "content": {"type": "str", "required": True},
            },
        },
        "mode": {"type": "raw", "default": "0644"},
    },
    "diagnose_report": {
        "gathered": {"type": "dict", "required": True},
        "proxy": {"type": "str", "required": True},
        "url": {"type": "str", "default": ""},
        "remediation": {"type": "dict"},
        "files": REPORT_FILES_SPEC,
        "show_summary": {"type": "bool", "default": True},
    },
}


def action_only_main(name: str) -> None:
    """The module ``name``'s entry point, reached only without its action plugin (e.g. on a
    remote host): its options are declared, and it fails saying why it cannot run."""
    module = AnsibleModule(argument_spec=SPECS[name], supports_check_mode=True)
    module.fail_json(
        msg="badgateway.k8s.%s runs as an action plugin on the controller; "
        "it cannot run as a module" % name
    )
