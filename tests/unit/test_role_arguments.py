"""The diagnose_502 role's argument validation done by its gather step
(plugin_utils/_role_arguments.py), for plays that turn ansible-core's own validation task off."""

import os

from ansible_collections.badgateway.k8s.plugins.plugin_utils import _role_arguments


class Role:
    def __init__(self, path=_role_arguments.ROLE_PATH, validate=False, params=None):
        self._role_path = path
        self._should_validate = validate
        self._role_params = params or {}


class Task:
    def __init__(self, role):
        self._role = role


class Templar:
    """Values as they are (the role's variables are plain in these tests)."""

    def template(self, value):
        return value


GIVEN = {"diagnose_502_proxy_namespace": "edge", "diagnose_502_proxy_selector": "app=nginx"}


def failure(role, task_vars):
    return _role_arguments.role_argument_failure(Task(role), task_vars, Templar())


def test_the_role_path_is_the_collections_own_role():
    assert os.path.isfile(os.path.join(_role_arguments.ROLE_PATH, "meta", "argument_specs.yml"))


def test_missing_required_variables_are_named_as_ansible_core_names_them():
    found = failure(Role(), {"unrelated": 1})
    assert found["failed"] is True
    assert found["msg"] == (
        "Validation of arguments failed:\nmissing required arguments: "
        "diagnose_502_proxy_namespace, diagnose_502_proxy_selector"
    )
    assert found["argument_errors"] == [
        "missing required arguments: diagnose_502_proxy_namespace, diagnose_502_proxy_selector"
    ]


def test_a_value_of_the_wrong_type_is_named():
    found = failure(Role(), dict(GIVEN, diagnose_502_log_tail_lines="many"))
    assert "diagnose_502_log_tail_lines" in found["msg"] and "int" in found["msg"]


def test_role_parameters_count_as_given():
    assert failure(Role(params=GIVEN), {}) is None


def test_valid_variables_pass():
    assert failure(Role(), dict(GIVEN, diagnose_502_log_tail_lines=200)) is None


def test_nothing_is_checked_twice_or_for_another_role():
    # ansible-core's own validation task is on: it checks, this does not
    assert failure(Role(validate=True), {}) is None
    # a task of someone else's role that uses the diagnose action
    assert failure(Role(path="/somewhere/roles/mine"), {}) is None
    # a task in a play, not in a role
    assert _role_arguments.role_argument_failure(Task(None), {}, Templar()) is None
