# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of badgateway.k8s.diagnose_verdict: the verdict decided on the controller
in-process when the module would run there (plugin_utils/_in_process.py), else the module."""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.plugin_utils._in_process import InProcessAction


class ActionModule(InProcessAction):
    """The diagnose_verdict task (module_utils/_tasks.py) here, or the diagnose_verdict module."""

    TASK = "diagnose_verdict"
