"""Debian tools some tests drive for real (nginx for the proxy recipe, Alertmanager for the
live suite). CI installs them (.ci/run) and a missing one fails the run there; elsewhere
(`make test` on a laptop) a missing one skips the tests that need it, with the command that
installs it in the summary, so a run without them is never mistaken for a full one."""

from __future__ import annotations

import os
import shutil

import pytest


def system_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` on the PATH (or in /usr/sbin), else fail in CI and
    skip elsewhere, naming the package."""
    for name in names:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path:
            return path
    message = f"{names[0]} is not installed: apt-get install {package}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run these tests; .ci/run installs it)", pytrace=False)
    pytest.skip(f"{message} (CI installs it and runs these tests)")
