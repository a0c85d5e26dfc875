# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.diagnose_report: one target's result (module_utils/result.py),
set as the fact diagnose_502_result and added to the job's artifacts, in one step."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.badgateway.k8s.plugins.module_utils.result import build_result

FORMATS = ("json", "markdown", "html")

#: The job's artifact this step publishes (docs/awx.md): every target's result, by inventory host.
ARTIFACT = "diagnose_502_results"

ARGUMENT_SPEC = {
    "gathered": {"type": "dict", "required": True},
    "proxy": {"type": "str", "required": True},
    "url": {"type": "str", "default": ""},
    "remediation": {"type": "dict"},
    "files": {
        "type": "dict",
        "default": {},
        "options": {name: {"type": "path"} for name in FORMATS},
    },
    "show_summary": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    """Runs on the controller; nothing is sent to the host."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validated.error_messages:
            raise AnsibleActionFail("diagnose_report: %s" % "; ".join(validated.error_messages))
        args = validated.validated_parameters
        host = (task_vars or {}).get("inventory_hostname")
        built = build_result(
            args["gathered"],
            args["proxy"],
            args["url"],
            host,
            bool(self._task.check_mode),
            args["remediation"],
        )
        result.update(
            changed=False,
            ansible_facts={"diagnose_502_result": built},
            # Every target's result by inventory host, merged over the play's targets.
            ansible_stats={
                "data": {ARTIFACT: {host: built}},
                "per_host": False,
                "aggregate": True,
            },
            outputs=[
                {"host": host, "format": name, "dest": (args["files"] or {}).get(name)}
                for name in FORMATS
                if (args["files"] or {}).get(name)
            ],
            show_summary=args["show_summary"],
        )
        return result
