# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the collection's Kubernetes modules: Kubernetes connection settings set for
kubernetes.core's modules reach these modules too.

Private to the collection. ``module_defaults`` set for ``group/kubernetes.core.k8s`` (or for
ansible-core's ``group/k8s``, which includes it) apply only to modules that are members of that
group, and a collection cannot add its modules to another collection's group: ``extend_group``
in ``meta/runtime.yml`` only pulls other groups into one's own. So the action plugin of each
module that talks to a cluster takes the connection options (``kubeconfig``, ``context``,
``host``, ``api_key``, ``persist_config``, ...; nothing else, such as ``namespace``) from those
groups' defaults, for the options the task did not set itself or through
``group/badgateway.k8s.k8s`` or the module's own defaults.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail

# Registers the Kubernetes tasks; imports the client: once, in ansible-playbook's own process.
from ansible_collections.badgateway.k8s.plugins.module_utils import _k8s_tasks
from ansible_collections.badgateway.k8s.plugins.module_utils.k8s_access import HAS_K8S
from ansible_collections.badgateway.k8s.plugins.plugin_utils._in_process import InProcessAction

# Least specific first: a later group's value wins over an earlier one's.
FOREIGN_GROUPS = ("group/ansible.builtin.k8s", "group/kubernetes.core.k8s")


def auth_option_names():
    """``{name or alias: option name}`` of the connection options (the modules' auth spec)."""
    names: dict[str, str] = {}
    for name, spec in _k8s_tasks.AUTH_ARG_SPEC.items():
        names[name] = name
        for alias in t.cast("dict[str, list[str]]", spec).get("aliases") or []:
            names[alias] = name
    return names


def foreign_defaults(module_defaults, template):
    """The defaults the task's ``module_defaults`` set for FOREIGN_GROUPS, merged in that order.

    ``module_defaults`` is the task's list of dicts (the innermost last); ``template`` renders a
    value (a group's defaults may be a template of a dict).
    """
    merged: dict[str, t.Any] = {}
    for defaults in module_defaults or []:
        merged.update(defaults or {})
    found = {}
    for group in FOREIGN_GROUPS:
        if group not in merged:
            continue
        values = template(merged[group])
        if not isinstance(values, dict):
            raise AnsibleActionFail(
                "module_defaults for %s must be a dictionary of options, got %s"
                % (group, type(values).__name__)
            )
        found.update(values)
    return found


def merged_args(task_args, foreign):
    """``task_args`` plus each connection option of ``foreign`` that the task does not set yet
    (under its name or an alias). Other options of ``foreign`` (``namespace``, ``wait``, ...)
    belong to kubernetes.core's modules and are left out."""
    if not foreign:
        return task_args
    names = auth_option_names()
    have = {names.get(key) for key in task_args}
    args = dict(task_args)
    for key, value in foreign.items():
        option = names.get(key)
        if option is not None and option not in have:
            args[key] = value
            have.add(option)
    return args


class K8sActionModule(InProcessAction):
    """Runs the module's task (in this process when the module would run in it, see
    ``_in_process``), after filling in connection options from kubernetes.core's groups'
    ``module_defaults``."""

    def available(self):
        return HAS_K8S

    def run(self, tmp=None, task_vars=None):
        foreign = foreign_defaults(self._task.module_defaults, self._templar.template)
        self._task.args = merged_args(self._task.args, foreign)
        return super().run(tmp, task_vars)
