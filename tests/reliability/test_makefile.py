"""The Makefile's two installs: `make run` without the dev extra, test/lint/bench with it, and
neither order of `make run` and `make test` installing twice, every install taking the versions
of constraints.txt. A fake python records the calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INPUTS = ("pyproject.toml", "setup.py", "constraints.txt")  # a change to any installs again
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""


@pytest.fixture
def project(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", *INPUTS):
        shutil.copy(REPO / name, tmp_path / name)
    hour_ago = time.time() - 3600
    for name in INPUTS:
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def make(project: Path, target: str) -> list[str]:
    """Run `make TARGET` and return the python calls it made."""
    calls = project / "calls"
    calls.unlink(missing_ok=True)
    subprocess.run(
        ["make", "-s", target, "VENV=venv", f"PYTHON={project / 'fake-python'}"],
        cwd=project,
        env=dict(os.environ, CALLS=str(calls)),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return calls.read_text().splitlines() if calls.exists() else []


def installs(calls: list[str]) -> list[str]:
    """What each pip install installed; every one of them is held to constraints.txt."""
    found = [c.split("install --quiet ", 1)[1] for c in calls if "-m pip install" in c]
    assert all(c.startswith("-c constraints.txt ") for c in found), found
    return [c.removeprefix("-c constraints.txt ") for c in found]


def test_run_installs_without_the_dev_extra_and_test_then_adds_it(project):
    first = make(project, "run")
    assert first[0] == "-m venv venv"
    assert installs(first) == ["--upgrade pip", "-e ."]
    assert first[-1] == "scripts/run_demo.py"
    assert installs(make(project, "run")) == []  # installed already
    assert installs(make(project, "install")) == ["--upgrade pip", "-e .[dev]"]
    assert make(project, "run") == ["scripts/run_demo.py"]  # the dev install serves run too
    assert installs(make(project, "install")) == []


def test_after_the_dev_install_run_installs_nothing(project):
    assert installs(make(project, "install")) == ["--upgrade pip", "-e .[dev]"]
    assert make(project, "run") == ["scripts/run_demo.py"]


@pytest.mark.parametrize("changed", INPUTS)
def test_a_changed_input_installs_again(project, changed):
    make(project, "install")
    half_hour_ago = time.time() - 1800
    for stamp in (project / "venv").glob(".installed-*"):
        os.utime(stamp, (half_hour_ago, half_hour_ago))
    os.utime(project / changed)  # now: newer than both stamps
    assert installs(make(project, "run")) == ["--upgrade pip", "-e ."]
    assert installs(make(project, "install")) == ["--upgrade pip", "-e .[dev]"]
    assert make(project, "run") == ["scripts/run_demo.py"]
