# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.report_files: write report files on the controller, in
ansible-playbook's own worker (module_utils/report_files.py), not a module per file."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.badgateway.k8s.plugins.module_utils.report_files import write_files
from ansible_collections.badgateway.k8s.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


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


class ActionModule(ControllerAction):
    """Runs on the controller; nothing is sent to the host."""

    NAME = "report_files"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.options()
        done, errors = write_files(
            args["files"], file_mode(args["mode"]), bool(self._task.check_mode)
        )
        result.update(changed=any(f["changed"] for f in done), files=done)
        if errors:
            result.update(failed=True, msg="; ".join(errors))
        return result
