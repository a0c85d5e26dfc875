# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.assert_judgement: pass or fail on a judgement computed once."""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


class ActionModule(ControllerAction):
    """Runs on the controller; nothing is sent to the host.

    ``ansible.builtin.assert`` renders its condition and each of its two messages apart, so a
    judgement over every target of a play (one ``hostvars`` lookup per target) was rendered
    three times per layer; this step takes it rendered once, whole."""

    NAME = "assert_judgement"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        judgement = self.options()["judgement"]
        passed = judgement["passed"]
        # Shown as ansible.builtin.assert shows it: the message in either case (without -v),
        # and on a failure the condition that was false.
        result.update(
            changed=False,
            _ansible_verbose_always=True,
            msg=judgement["success_msg"] if passed else judgement["fail_msg"],
        )
        if not passed:
            result.update(failed=True, evaluated_to=False, assertion="judgement.passed")
        return result
