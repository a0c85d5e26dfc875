# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the collection's modules: run a module's task in the controller's own
process when the module would have run in this very process's Python on this machine anyway.

Private to the collection. A module run by ansible-core costs a process, its packaging, an
interpreter start and its imports, for a few milliseconds of work; the collection's modules
run on the controller (``connection: local``) almost always. So each one's action plugin runs
its task (``module_utils/_tasks.py``: the same code the module runs) right here when:

* the connection is ``local`` (also when delegated to such a host), without become (another
  user) and without async;
* the Python interpreter the module would get is this one (``ansible_python_interpreter``, or
  the interpreter discovered for the host): the same packages, the same environment;
* the task's libraries import here (else the module says what is missing, as always).

Then the task's options are validated as AnsibleModule validates them (same messages), the
task's ``environment`` is in effect while it runs, no_log values are hidden, and the result is
the one the module would have returned (``invocation`` too, when this ansible-core injects it).
Otherwise the module runs, as ansible-core's ``normal`` action runs it. The action plugin's
module (and so the task's imports: the Kubernetes client) is loaded by ansible-playbook's own
process before it forks a task's worker, so they are imported once per run, not per task.
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing as t

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.badgateway.k8s.plugins.module_utils._tasks import run_task

AUTO = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")


def same_python(path: str | None, here: str | None = None) -> bool:
    """Whether the interpreter ``path`` is this process's Python: the same path, or another
    name for it in the same directory (a virtualenv's ``python`` and ``python3``)."""
    here = os.path.abspath(here or sys.executable)
    if not path or not os.path.isabs(path):
        return False
    path = os.path.abspath(path)
    if path == here:
        return True
    return os.path.dirname(path) == os.path.dirname(here) and os.path.realpath(
        path
    ) == os.path.realpath(here)


@contextlib.contextmanager
def environment(values: dict[str, t.Any]) -> t.Iterator[None]:
    """The task's ``environment`` set in this (worker) process while the task runs."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            os.environ[key] = str(value)
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class InProcessAction(NormalAction):
    """Runs the task ``TASK`` here when its module would run in this Python (see the module
    docstring), else the module of the same name, as the ``normal`` action does."""

    #: The task's name in ``_tasks.TASKS`` (its module's name).
    TASK = ""

    def available(self) -> bool:
        """Whether the task's libraries import here."""
        return True

    def _use_vars(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        delegated = self._task.delegate_to and task_vars.get("ansible_delegated_vars")
        if delegated and self._task.delegate_to in delegated:
            return delegated[self._task.delegate_to]
        return task_vars

    def interpreter(self, task_vars: dict[str, t.Any]) -> str | None:
        """The Python the module would run with, or None when it is not known yet."""
        use_vars = self._use_vars(task_vars)
        value = C.config.get_config_value("INTERPRETER_PYTHON", variables=use_vars)
        value = self._templar.template(value)
        if not value or value in AUTO:
            facts = use_vars.get("ansible_facts") or {}
            value = facts.get("discovered_interpreter_python")
        return value if isinstance(value, str) else None

    def runs_here(self, task_vars: dict[str, t.Any]) -> bool:
        """Whether the module would run in this very Python on this machine."""
        return (
            getattr(self._connection, "transport", None) == "local"
            and not self._play_context.become
            and not self._task.async_val
            and self.available()
            and same_python(self.interpreter(task_vars))
        )

    def inject_invocation(self, task_vars: dict[str, t.Any]) -> bool:
        """Whether a module's result carries ``invocation`` with this ansible-core."""
        try:
            return bool(C.config.get_config_value("INJECT_INVOCATION", variables=task_vars))
        except Exception:  # pylint: disable=broad-except  # before 2.21: no such setting, always
            return True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        if not self.runs_here(task_vars):
            return super().run(tmp, task_vars)
        result = ActionBase.run(self, tmp, task_vars)
        env: dict[str, t.Any] = {}
        self._compute_environment_string(env)
        # Internal arguments (_ansible_*) are ansible-core's to set, as it sets a module's.
        args = {k: v for k, v in self._task.args.items() if not str(k).startswith("_ansible_")}
        with environment(env):
            result.update(
                run_task(
                    self.TASK,
                    args,
                    check_mode=bool(self._task.check_mode),
                    module_name=self._task.action,
                    invocation=self.inject_invocation(task_vars),
                )
            )
        return result
