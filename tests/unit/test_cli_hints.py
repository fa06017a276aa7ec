"""The `certdesk` command CertDesk tells people to run works from where they are."""

import os
import shlex
import subprocess
import sys

from webapp.cli import certdesk_command


def _venv(tmp_path, monkeypatch):
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    script = bindir / "certdesk"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return script


def test_the_script_beside_python_relative_to_the_current_directory(tmp_path, monkeypatch):
    script = _venv(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert certdesk_command() == os.path.join("venv", "bin", "certdesk")
    monkeypatch.chdir(script.parent)
    assert certdesk_command() == os.path.join(".", "certdesk")  # the shell does not search .
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    command = certdesk_command()
    assert os.sep in command and os.path.abspath(command) == str(script)


def test_a_path_with_a_space_is_quoted_for_the_shell(tmp_path, monkeypatch):
    folder = tmp_path / "my certdesk"
    folder.mkdir()
    script = _venv(folder, monkeypatch)
    script.write_text('#!/bin/sh\necho certdesk ran "$@"\n')
    monkeypatch.chdir(tmp_path)
    command = certdesk_command()
    assert command == shlex.quote(os.path.join("my certdesk", "venv", "bin", "certdesk"))
    ran = subprocess.run(  # noqa: S602 (as an operator pastes it)
        f"{command} create-admin USERNAME", shell=True, capture_output=True, text=True
    )
    assert ran.stdout == "certdesk ran create-admin USERNAME\n"


def test_plain_certdesk_when_path_finds_that_script_or_there_is_none(tmp_path, monkeypatch):
    script = _venv(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert certdesk_command() == "certdesk"
    script.unlink()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert certdesk_command() == "certdesk"  # run as `python -m webapp`: no script to name
