# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of badgateway.k8s.proxy_probe: runs on the controller in-process when the module would
run there (plugin_utils/_in_process.py), else the module; module_defaults of kubernetes.core's
groups reach it."""

from __future__ import annotations

from ansible_collections.badgateway.k8s.plugins.plugin_utils._k8s_group_defaults import (
    K8sActionModule,
)


class ActionModule(K8sActionModule):
    """The proxy_probe task (module_utils/_k8s_tasks.py) here or the proxy_probe module, with the connection
    options of group/kubernetes.core.k8s as well."""

    TASK = "proxy_probe"
