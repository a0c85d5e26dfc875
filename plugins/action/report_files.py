# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.report_files: write report files on the controller, in
ansible-playbook's own worker (module_utils/report_files.py), not a module per file."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.badgateway.k8s.plugins.module_utils.report_files import write_files

ARGUMENT_SPEC = {
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
}


def file_mode(value) -> int:
    """An octal mode as a string (``"0644"``) or an int (0o644, as YAML reads ``0644``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise AnsibleActionFail(
            "report_files: mode must be an octal file mode such as '0644', got %r" % (value,)
        ) from None


class ActionModule(ActionBase):
    """Runs on the controller; nothing is sent to the host."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validated.error_messages:
            raise AnsibleActionFail("report_files: %s" % "; ".join(validated.error_messages))
        args = validated.validated_parameters
        done, errors = write_files(
            args["files"], file_mode(args["mode"]), bool(self._task.check_mode)
        )
        result.update(changed=any(f["changed"] for f in done), files=done)
        if errors:
            result.update(failed=True, msg="; ".join(errors))
        return result
