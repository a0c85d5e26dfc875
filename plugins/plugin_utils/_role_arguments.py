# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnose_502 role's argument validation, done inside its first step.

Private to the collection. ansible-core validates a role's variables against its
``meta/argument_specs.yml`` in a task it inserts before the role's first (one more task for
every target: a worker, its templating, its result, about 30 ms of CPU a target). A play that
includes the role with ``rolespec_validate: false`` (as the collection's own playbooks do) skips
that task; the role's gather step then validates the same variables, against the same spec,
with the same validator and the same message ("Validation of arguments failed: ..."), before it
reads anything. A play that leaves ansible-core's validation on is validated once, by it.
"""

from __future__ import annotations

import os
import typing as t

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.utils.vars import combine_vars

try:
    _Loader: t.Any = yaml.CSafeLoader
except AttributeError:  # PyYAML without libyaml
    _Loader = yaml.SafeLoader


def _entry_point_spec(role_path: str, entry_point: str) -> dict[str, t.Any]:
    """The options of ``entry_point`` in the role's meta/argument_specs.yml ({} when none)."""
    for name in ("argument_specs.yml", "argument_specs.yaml"):
        path = os.path.join(role_path, "meta", name)
        if os.path.exists(path):
            with open(path, "rb") as handle:
                data = yaml.load(handle, Loader=_Loader) or {}
            return ((data.get("argument_specs") or {}).get(entry_point) or {}).get("options") or {}
    return {}


#: The role this validates for: this collection's diagnose_502, nobody else's.
ROLE_PATH = os.path.realpath(
    os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "roles", "diagnose_502")
)
# Read and prepared once, at import: ansible-playbook's own process imports this (with the
# diagnose action) before it forks a worker per target, and each worker inherits them.
_SPEC = _entry_point_spec(ROLE_PATH, "main")
_VALIDATOR = ArgumentSpecValidator(_SPEC) if _SPEC else None


def role_argument_failure(task: t.Any, task_vars: dict[str, t.Any], templar: t.Any):
    """The failed result of the diagnose_502 role's argument validation for ``task`` (one of
    its steps), or None when the variables are valid, when ansible-core validates them itself
    (``rolespec_validate`` left on), or when ``task`` is not in that role."""
    role = getattr(task, "_role", None)
    if role is None or getattr(role, "_should_validate", True):
        return None
    if os.path.realpath(getattr(role, "_role_path", "") or "") != ROLE_PATH:
        return None
    if _VALIDATOR is None:
        return None
    found = {name: task_vars[name] for name in _SPEC if name in task_vars}
    values = combine_vars(templar.template(found), getattr(role, "_role_params", {}) or {})
    checked = _VALIDATOR.validate(values, validate_role_argument_spec=True)
    if not checked.error_messages:
        return None
    return {
        "failed": True,
        "msg": "Validation of arguments failed:\n%s" % "\n".join(checked.error_messages),
        "argument_errors": checked.error_messages,
    }
