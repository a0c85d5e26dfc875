# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.outcome: end a target's run with the exit status of its outcome."""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.module_utils.outcome import EXIT_STATUS, HEADLINE
from ansible_collections.badgateway.k8s.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


class ActionModule(ControllerAction):
    """Runs on the controller; nothing is sent to the host."""

    NAME = "outcome"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.options()
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
