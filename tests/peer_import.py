"""Importing the test-peers dependencies (torch, torchjd, ...) in a test module.

``torch, torchjd = require("torch", "torchjd")`` at module level: in CI (``CI`` set), where the
test-peers extra is installed, a missing one is an ImportError (a failure); elsewhere the module
is skipped, naming what is missing and the install command.
"""
import importlib
import os

import pytest

INSTALL = "a test-peers dependency: pip install -e '.[test-peers]'"


def require(*names):
    """The modules ``names``, imported (one, or a tuple for several)."""
    if os.environ.get("CI"):
        modules = [importlib.import_module(n) for n in names]
    else:
        modules = [pytest.importorskip(n, reason=f"{n} is {INSTALL}") for n in names]
    return modules[0] if len(modules) == 1 else tuple(modules)
