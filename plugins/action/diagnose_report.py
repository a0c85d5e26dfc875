# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin badgateway.k8s.diagnose_report: one target's result (module_utils/result.py),
set as the fact diagnose_502_result and added to the job's artifacts, in one step."""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.module_utils.result import (
    build_result,
    outputs,
    publication,
)
from ansible_collections.badgateway.k8s.plugins.plugin_utils._controller_action import (
    ControllerAction,
)


class ActionModule(ControllerAction):
    """Runs on the controller; nothing is sent to the host."""

    NAME = "diagnose_report"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.options()
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
            publication(built, host),
            changed=False,
            outputs=outputs(host, args["files"]),
            show_summary=args["show_summary"],
        )
        return result
