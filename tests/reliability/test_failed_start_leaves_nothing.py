"""A start that fails (its port held, its database not there, a setting refused) leaves nothing
behind: no instance folder, session key, master key or SQLite file it did not need to find the
failure. A master key made for a database CertDesk never reached would stop the next start on
the right one; an empty certdesk.db would pass for a new instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.live import ROOT, free_port, run_certdesk


def _left(tmp_path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_leaves_no_instance(tmp_path, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = run_certdesk(
            tmp_path / "instance", "serve", "--port", str(port), "--workers", workers
        )
    assert ran.returncode == 1, ran
    assert "Address already in use" in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


def test_a_database_server_that_does_not_answer_leaves_no_instance(tmp_path):
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://certdesk:pw@127.0.0.1:{free_port()}/certdesk"
    for command in (["serve", "--port", str(free_port())], ["create-admin", "ann"]):
        ran = run_certdesk(tmp_path / "instance", *command, DATABASE_URL=url)
        assert ran.returncode == 2, ran
        assert "CertDesk cannot use its database" in ran.stderr, ran.stderr
        assert _left(tmp_path) == [], command


def test_an_sqlite_file_in_a_folder_that_is_not_there_leaves_no_instance(tmp_path):
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'certdesk.db'}"
    ran = run_certdesk(tmp_path / "instance", "serve", "--port", str(free_port()), DATABASE_URL=url)
    assert ran.returncode == 2, ran
    assert "unable to open database file" in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


def test_an_sqlite_file_that_is_no_database_gets_no_keys_beside_it(tmp_path):
    """A restore that put a bad copy in a new folder: the keys restored after it are not met by
    ones made for a database that could not be read."""
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    (instance / "certdesk.db").write_bytes(b"not a database, a gzip perhaps " * 200)
    ran = run_certdesk(instance, "serve", "--port", str(free_port()))
    assert ran.returncode == 2, ran
    assert "file is not a database" in ran.stderr, ran.stderr
    assert _left(tmp_path) == ["instance", "instance/certdesk.db"]


def test_a_session_key_too_short_leaves_no_instance(tmp_path):
    ran = run_certdesk(
        tmp_path / "instance", "serve", "--port", str(free_port()), CERTDESK_SECRET_KEY="short"
    )
    assert ran.returncode == 2, ran
    assert "CERTDESK_SECRET_KEY holds 5 characters" in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


@pytest.mark.parametrize("args", [["--help"], ["db", "--help"], ["no-such-command"]])
def test_help_and_a_mistyped_command_make_no_instance(tmp_path, args):
    ran = run_certdesk(tmp_path / "instance", *args)
    assert "Traceback" not in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


def test_a_command_that_succeeds_still_makes_the_instance(tmp_path):
    ran = run_certdesk(
        tmp_path / "instance", "create-admin", "ann", CERTDESK_ADMIN_PASSWORD="a long password 1"
    )
    assert ran.returncode == 0, ran
    made = set(_left(tmp_path))
    assert {
        "instance",
        "instance/certdesk.db",
        "instance/master.key",
        "instance/secret_key",
    } <= made


@pytest.mark.parametrize(
    ("username", "password", "said"),
    [
        ("ops/lead", "a long password 1", "the user name 'ops/lead': Use 1-64 letters"),
        ("scheduler", "a long password 1", "the user name 'scheduler': The audit trail names"),
        ("ann", "short", "the password of CERTDESK_ADMIN_PASSWORD: Use at least 10 characters."),
        ("ann", "ann", "the password of CERTDESK_ADMIN_PASSWORD: Use at least 10 characters."),
        ("ann", "aaaaaaaaaaaa", "the password of CERTDESK_ADMIN_PASSWORD: That password is"),
    ],
)
def test_create_admin_refused_its_name_or_password_leaves_no_instance(
    tmp_path, username, password, said
):
    """The name and the password are checked before the instance is made or its database
    migrated: refused, create-admin on a new install makes nothing."""
    ran = run_certdesk(
        tmp_path / "instance", "create-admin", username, CERTDESK_ADMIN_PASSWORD=password
    )
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert f"Error: {said}" in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


def _create_admin_typing(instance, typed: str) -> subprocess.CompletedProcess:
    """create-admin with its password typed (no CERTDESK_ADMIN_PASSWORD), with no terminal of
    its own: the prompt reads the input."""
    environ = dict(os.environ, CERTDESK_INSTANCE=str(instance))
    for name in ("DATABASE_URL", "CERTDESK_ADMIN_PASSWORD"):
        environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "webapp", "create-admin", "ann"],
        env=environ,
        cwd=ROOT,
        input=typed,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def test_create_admin_refused_a_password_typed_leaves_no_instance(tmp_path):
    ran = _create_admin_typing(tmp_path / "instance", "short\nshort\n")
    assert ran.returncode == 1, ran
    assert "Error: the password: Use at least 10 characters." in ran.stderr, ran.stderr
    assert _left(tmp_path) == []
    ran = _create_admin_typing(tmp_path / "instance", "a long password 1\na long password 1\n")
    assert ran.returncode == 0, ran
    assert "Administrator ann created." in ran.stdout
    assert "instance/certdesk.db" in _left(tmp_path)


@pytest.mark.parametrize(
    "command",
    [["serve", "--port", "0"], ["create-admin", "ann"], ["db", "upgrade"]],
    ids=["serve", "create-admin", "db upgrade"],
)
def test_a_master_key_refused_leaves_no_instance(tmp_path, command):
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    ran = run_certdesk(
        tmp_path / "instance",
        *command,
        CERTDESK_MASTER_KEY="notbase64",
        CERTDESK_ADMIN_PASSWORD="a long password 1",
    )
    assert ran.returncode == 2, ran
    assert "CertDesk cannot start: CERTDESK_MASTER_KEY is not base64" in ran.stderr, ran.stderr
    assert _left(tmp_path) == []


def test_a_restored_database_without_its_master_key_gets_no_session_key(tmp_path):
    """The master key missing for a database with sealed data is found before the session key
    is made: the folder holds what was restored, and nothing else."""
    made = run_certdesk(
        tmp_path / "made", "create-admin", "ann", CERTDESK_ADMIN_PASSWORD="a long password 1"
    )
    assert made.returncode == 0, made
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    (restored / "certdesk.db").write_bytes((tmp_path / "made" / "certdesk.db").read_bytes())
    ran = run_certdesk(restored, "serve", "--port", str(free_port()))
    assert ran.returncode == 2, ran
    assert f"the master key {restored / 'master.key'} is missing" in ran.stderr, ran.stderr
    assert sorted(p.name for p in restored.iterdir()) == ["certdesk.db"]


@pytest.mark.parametrize(
    "command", [["audit", "verify"], ["rotate-master-key"], ["db", "current"]], ids=" ".join
)
def test_a_command_that_reads_an_instance_makes_none(tmp_path, command):
    """A mistyped CERTDESK_INSTANCE is said, and not made into a new instance (with a master
    key and an empty database that the next start would take for the instance)."""
    ran = run_certdesk(tmp_path / "mistyped", *command)
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    said = " ".join(ran.stderr.split())
    assert f"the database sqlite:///{tmp_path / 'mistyped' / 'certdesk.db'} holds no" in said
    assert "check CERTDESK_INSTANCE and DATABASE_URL" in said
    assert _left(tmp_path) == []


@pytest.mark.parametrize("command", [["db", "heads"], ["db", "history"]], ids=" ".join)
def test_a_command_that_reads_the_migrations_alone_makes_no_instance(tmp_path, command):
    ran = run_certdesk(tmp_path / "instance", *command)
    assert ran.returncode == 0, ran
    assert "(head)" in ran.stdout, ran.stdout
    assert _left(tmp_path) == []
