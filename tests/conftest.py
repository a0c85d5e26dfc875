"""Shared pytest fixtures: ``lab`` and ``lab_factory`` start labs and always stop them (see badlab.fixture)."""

from badlab.fixture import lab, lab_factory  # noqa: F401 - re-exported as fixtures
