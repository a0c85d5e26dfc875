# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's controller-only action plugins (outcome, report_files,
diagnose_report): nothing is sent to a host, and a task's options are validated against the
action's spec (module_utils/_controller_actions.py) with the messages AnsibleModule gives,
prefixed by the action's name.

Private to the collection.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.badgateway.k8s.plugins.module_utils._controller_actions import SPECS


class ControllerAction(ActionBase):
    """Runs on the controller; nothing is sent to the host. ``NAME`` names the action and its
    options (``SPECS[NAME]``)."""

    NAME = ""
    TRANSFERS_FILES = False
    _requires_connection = False

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._VALID_ARGS = frozenset(SPECS[cls.NAME])

    def options(self) -> dict[str, t.Any]:
        """The task's options, validated and completed with their defaults."""
        validated = ArgumentSpecValidator(SPECS[self.NAME]).validate(self._task.args)
        if validated.error_messages:
            raise AnsibleActionFail("%s: %s" % (self.NAME, "; ".join(validated.error_messages)))
        return validated.validated_parameters
