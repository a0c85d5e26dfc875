# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of badgateway.k8s.diagnose: the read-only diagnosis on the controller,
in-process when the module would run there (plugin_utils/_in_process.py), else the module;
module_defaults of kubernetes.core's groups reach it."""

from __future__ import annotations

# The collection's filter plugins (and the module_utils they use), imported with this action:
# ansible-playbook loads it in its own process before the diagnose_502 role's first step that
# renders them, so the workers of the role's later steps (one per target and step) inherit
# them instead of importing them again, each (about 5 ms a worker).
from ansible_collections.badgateway.k8s.plugins.filter import diagnose as _filters  # noqa: F401
from ansible_collections.badgateway.k8s.plugins.filter import report as _report_filters  # noqa: F401
from ansible_collections.badgateway.k8s.plugins.module_utils import _diagnose
from ansible_collections.badgateway.k8s.plugins.plugin_utils._k8s_group_defaults import (
    K8sActionModule,
)
from ansible_collections.badgateway.k8s.plugins.plugin_utils._role_arguments import (
    role_argument_failure,
)


class ActionModule(K8sActionModule):
    """The diagnose task (module_utils/_diagnose.py) here or the diagnose module, with the
    connection options of group/kubernetes.core.k8s as well."""

    TASK = _diagnose.NAME

    def run(self, tmp=None, task_vars=None):
        # The diagnose_502 role's variables, when its play turned ansible-core's check off
        # (plugin_utils/_role_arguments.py): before anything is read.
        failure = role_argument_failure(self._task, task_vars or {}, self._templar)
        if failure is not None:
            return failure
        return super().run(tmp, task_vars)
