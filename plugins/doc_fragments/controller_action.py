# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes of the controller-only actions that compute and change nothing."""


class ModuleDocFragment:
    """check_mode, diff_mode and action of an action plugin that only computes."""

    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: Computes only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  action:
    support: full
    description: Runs on the controller as an action plugin.
"""
