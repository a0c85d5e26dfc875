"""Shared pytest fixtures: ``lab`` and ``lab_factory`` start labs and always stop them (see badlab.fixture)."""

from badlab.fixture import lab, lab_factory  # noqa: F401 - re-exported as fixtures

# Fixtures that start a program from outside Python (nginx, headless Chromium, ansible-builder):
# the tests that use them are marked ``tools``, so ``make unit`` can leave them out and stay fast,
# rootless and free of system packages. ``make test`` runs them all; a missing tool fails them.
TOOL_FIXTURES = {"nginx", "chromium", "ee_context", "de_context"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if TOOL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.tools)
