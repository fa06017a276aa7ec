"""A new version started while an older CertDesk still serves the same database, on another port
(or another host), is refused before it migrates: the older one holds the scheduler's lease, and
goes on with the schema it knows. Once that hold has ended (the old one stopped, or was killed and
its lease ran out), the new version migrates; with nothing to migrate, a second serve on the same
database shares it through the lease as ever."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.live import ROOT, free_port, run_certdesk, start_server, stop_server

HOLDER = "old-host:4242:0123abcd"


def _revisions() -> tuple[str, str]:
    """(this version's head, the migration before it)."""
    from alembic.script import ScriptDirectory

    from webapp import paths

    scripts = ScriptDirectory(str(paths.MIGRATIONS_DIR))
    head = scripts.get_current_head()
    return head, scripts.get_revision(head).down_revision


def _instance_at(instance, revision: str):
    made = run_certdesk(instance, "db", "upgrade", revision, timeout=120)
    assert made.returncode == 0, made
    return instance / "certdesk.db"


def _held(database, minutes: float) -> None:
    """The scheduler's lease, held by another CertDesk for ``minutes`` more (past, if negative)."""
    ends = datetime.now(UTC) + timedelta(minutes=minutes)
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO scheduler_lease (name, holder, expires_at) VALUES ('scheduler', ?, ?)",
            (HOLDER, ends.strftime("%Y-%m-%d %H:%M:%S.%f")),
        )
    conn.close()


def _revision(database) -> list:
    with sqlite3.connect(database) as conn:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    conn.close()
    return found


def _run_to_refusal(instance, *command: str) -> subprocess.CompletedProcess:
    """`certdesk COMMAND` as run_certdesk runs it, in a process group of its own: a serve that
    was not refused (it serves until stopped, its workers with it) is stopped, all of it."""
    environ = dict(os.environ, CERTDESK_INSTANCE=str(instance))
    environ.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp", *command],
        env=environ,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"certdesk {' '.join(command)} was not refused; it ran on: {out}{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    "command",
    [["serve"], ["serve", "--workers", "2"], ["db", "upgrade"]],
    ids=" ".join,
)
def test_a_new_version_does_not_migrate_under_a_running_one(tmp_path, command):
    _, older = _revisions()
    database = _instance_at(tmp_path / "instance", older)
    _held(database, minutes=10)
    if command[0] == "serve":
        command = [*command, "--port", str(free_port())]
    ran = _run_to_refusal(tmp_path / "instance", *command)
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    said = " ".join(ran.stderr.split())
    assert (
        f"Error: CertDesk is running on this database (its scheduler is held by {HOLDER}) and "
        "this version has migrations to apply: stop the running CertDesk first"
    ) in said, said
    assert "Running upgrade" not in ran.stderr, ran.stderr
    assert "serving on" not in ran.stdout.lower(), ran.stdout
    assert _revision(database) == [(older,)]


def test_once_the_running_ones_hold_has_ended_the_upgrade_runs(tmp_path):
    """A CertDesk killed keeps its hold until the lease runs out; then the upgrade goes on."""
    head, older = _revisions()
    database = _instance_at(tmp_path / "instance", older)
    _held(database, minutes=-1)
    ran = run_certdesk(tmp_path / "instance", "db", "upgrade", timeout=120)
    assert ran.returncode == 0, ran
    assert _revision(database) == [(head,)]


def test_serve_migrates_once_the_hold_has_ended(tmp_path):
    head, older = _revisions()
    database = _instance_at(tmp_path / "instance", older)
    _held(database, minutes=-1)
    server = start_server(tmp_path / "instance")
    try:
        assert _revision(database) == [(head,)]
    finally:
        stop_server(server)


def test_a_second_serve_with_nothing_to_migrate_shares_the_database(tmp_path):
    head, _ = _revisions()
    database = _instance_at(tmp_path / "instance", head)
    _held(database, minutes=10)
    server = start_server(tmp_path / "instance")
    stop_server(server)
    ran = run_certdesk(tmp_path / "instance", "db", "upgrade", timeout=120)
    assert ran.returncode == 0, ran
    assert _revision(database) == [(head,)]
