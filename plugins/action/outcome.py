# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.outcome: end a target's run with the exit status of its outcome."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.badgateway.k8s.plugins.module_utils.outcome import EXIT_STATUS, HEADLINE

ARGUMENT_SPEC = {
    "outcome": {"type": "str", "required": True, "choices": sorted(EXIT_STATUS)},
    "msg": {"type": "str", "default": ""},
    "fail_on_problem": {"type": "bool", "default": True},
    "fail_on_error": {"type": "bool", "default": True},
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
            raise AnsibleActionFail("outcome: %s" % "; ".join(validated.error_messages))
        args = validated.validated_parameters
        outcome = args["outcome"]
        text = "%s: %s" % (HEADLINE[outcome], args["msg"]) if args["msg"] else HEADLINE[outcome]
        status = EXIT_STATUS[outcome]
        result.update(changed=False, outcome=outcome, exit_status=status, msg=text)
        if status == 4 and args["fail_on_error"]:
            # ansible-playbook exits 4 when a host is unreachable: the target could not be checked.
            result["unreachable"] = True
        elif status == 2 and args["fail_on_problem"]:
            result["failed"] = True
        return result
