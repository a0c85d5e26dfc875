"""Errors shared by the lab's API server, runtime and scenario loader."""


class LabError(Exception):
    """Base class of every error the lab raises on purpose."""


class ScenarioError(LabError):
    """A scenario file is wrong; the message names the file, the key and what was expected."""


class ExecNotFound(LabError):
    """The executable of an exec request does not exist in the pod's container."""


class PodNotRunning(LabError):
    """An exec or log request names a container that is not running (or does not exist)."""
