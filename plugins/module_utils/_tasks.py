# Copyright: badgateway.k8s contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: what a module does, written once for both ways it runs.

A module (``plugins/modules/X.py``) runs as a module anywhere: ``module_main("X")``. Its action
plugin runs the same task in the controller's own process when the module would have run on
the controller anyway (``plugin_utils/_in_process.py``): ``run_task("X", args, ...)``
validates the options as ``AnsibleModule`` does and returns what the module would have printed.

A :class:`Task` is the module's options (``argument_spec`` and AnsibleModule's constraints) and
a body ``body(params, connect, check_mode, run) -> result``: ``connect()`` gives what the task
talks to (the Kubernetes tasks: the run's ``SharedReads``, one client), ``run`` runs
independent calls at once. A body returns the module's result; ``failed: True`` with ``msg`` is
the module failing. The Kubernetes tasks are in ``_k8s_tasks.py``; diagnose_verdict, which
talks to nothing, is here.
"""

from __future__ import annotations

import json
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.badgateway.k8s.plugins.module_utils.verdict import decide

Body = t.Callable[[dict, t.Callable[[], t.Any], bool, t.Callable[..., list]], dict]


def _serial(calls):
    return [(call(), None) for call in calls]


class Task:
    """A module's options and body (see the module docstring).

    ``argument_spec``: every option; ``constraints``: AnsibleModule's ``mutually_exclusive``,
    ``required_one_of``, ``required_if``...; ``make_module(constraints)`` builds the module's
    AnsibleModule (it may fail it early, as for a missing library); ``check(params)`` says why
    valid options still cannot be used; ``secrets(params)`` are more values to hide than the
    no_log options; ``connect(params)`` and ``runner(params)`` make a run's ``connect`` and
    ``run``; an exception of ``errors`` (a failed call) that the body lets through is the
    module failing with its message.
    """

    def __init__(
        self,
        name: str,
        argument_spec: dict,
        body: Body,
        make_module: t.Callable[..., t.Any] | None = None,
        check: t.Callable[[dict], str | None] = lambda params: None,
        secrets: t.Callable[[dict], set] = lambda params: set(),
        connect: t.Callable[[dict], t.Callable[[], t.Any]] = lambda params: lambda: None,
        runner: t.Callable[[dict], t.Callable[..., list]] = lambda params: _serial,
        errors: tuple[type[Exception], ...] = (),
        **constraints: t.Any,
    ) -> None:
        self.name = name
        self.argument_spec = argument_spec
        self.body = body
        self.make_module = make_module or self._plain_module
        self.check = check
        self.secrets = secrets
        self.connect = connect
        self.runner = runner
        self.errors = errors
        self.constraints = constraints

    def _plain_module(self):
        return AnsibleModule(
            argument_spec=dict(self.argument_spec), supports_check_mode=True, **self.constraints
        )


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add ``task`` to TASKS, by its module's name."""
    TASKS[task.name] = task
    return task


def failed(msg, **extra):
    """A module failure."""
    return dict(extra, failed=True, msg=msg)


def execute(task, params, check_mode=False, connect=None):
    """Run ``task``'s body with valid ``params``: the module result (``failed`` set on a
    failure); ``connect`` defaults to a new one (``task.connect``)."""
    run = task.runner(params)
    own = connect is None
    if own:
        connect = task.connect(params)
    try:
        return task.body(params, connect, check_mode, run)
    except task.errors as exc:
        return failed(str(exc))
    finally:
        if own:
            getattr(connect, "close", lambda: None)()


def module_main(name):
    """A module's entry point: the task ``name`` run by AnsibleModule, its result printed."""
    task = TASKS[name]
    module = task.make_module()
    result = execute(task, module.params, module.check_mode)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


def validate(task, args, module_name):
    """``args`` validated as AnsibleModule validates a module's: ``(params, no_log_values,
    warnings, failure)``; ``failure`` is the module's failure result, or None."""
    checked = ArgumentSpecValidator(task.argument_spec, **task.constraints).validate(args)
    params = checked.validated_parameters
    no_log = set(checked._no_log_values) | task.secrets(params)  # pylint: disable=protected-access
    warnings = [
        "Both option %s and its alias %s are set." % (w["option"], w["alias"])
        for w in checked._warnings  # pylint: disable=protected-access
    ]
    if checked.error_messages:
        msg = checked.errors.msg
        if isinstance(checked.errors[0], UnsupportedError):
            msg = "Unsupported parameters for (%s) module: %s" % (module_name, msg)
        return params, no_log, warnings, failed(msg)
    problem = task.check(params)
    return params, no_log, warnings, failed(problem) if problem else None


def run_task(name, args, check_mode=False, module_name=None, invocation=False):
    """Run the task ``name`` here, as its module would run: the module's result in JSON types,
    the values of no_log options (and a task's ``secrets``) replaced as AnsibleModule replaces
    them, with ``invocation`` (the validated options) when asked."""
    task = TASKS[name]
    params, no_log, warnings, result = validate(task, args, module_name or name)
    if result is None:
        result = execute(task, params, check_mode)
    if warnings:
        result["warnings"] = warnings
    if invocation and "invocation" not in result:
        result["invocation"] = {"module_args": params}
    return json.loads(json.dumps(remove_values(result, no_log)))


def _diagnose_verdict(params, _connect, _check_mode, _run):
    # decide() never raises: facts it cannot read give cause "unknown" naming what was wrong
    return {"changed": False, "verdict": decide(params["facts"])}


register(Task("diagnose_verdict", {"facts": {"type": "dict", "required": True}}, _diagnose_verdict))
