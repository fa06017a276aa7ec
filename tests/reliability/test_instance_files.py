"""The instance folder holds password hashes and sealed secrets: owner-only, from the first start
of a real `certdesk serve`, and put right (with a warning) when an older install left them open."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import PASSWORD
from tests.live import (
    csrf_token,
    free_port,
    run_certdesk,
    start_server,
    stop_server,
    wait_healthy,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_first_start_makes_everything_owner_only(tmp_path):
    instance = tmp_path / "new-instance"  # does not exist yet: serve makes it
    old_umask = os.umask(0o022)  # what a login shell usually has
    try:
        server = start_server(instance)
    finally:
        os.umask(old_umask)
    try:
        setup = server.wait_for_line("/setup?token=").split("token=")[1].strip()
        assert setup  # the portal ran migrations and writes to its database
    finally:
        stop_server(server)
    assert _mode(instance) == 0o700
    files = {p.name: _mode(p) for p in instance.iterdir() if p.is_file()}
    assert {"certdesk.db", "master.key"} <= set(files)
    assert all(mode == 0o600 for mode in files.values()), files


def test_open_files_left_by_an_older_install_are_closed_at_start(tmp_path, caplog):
    from tests.conftest import make_app

    instance = tmp_path / "instance"
    app = make_app(instance, instance / "certdesk.db", SECRET_KEY=None)
    with app.app_context():
        from flask_migrate import upgrade

        from webapp import _init_secretbox, paths
        from webapp.extensions import db

        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        db.session.remove()
        db.engine.dispose()
    for name in ("certdesk.db", "secret_key"):
        os.chmod(instance / name, 0o644)
    (instance / "certdesk.db-wal").write_bytes(b"")
    os.chmod(instance / "certdesk.db-wal", 0o666)  # noqa: S103 (what an older install left)
    os.chmod(instance, 0o755)  # noqa: S103
    with caplog.at_level(logging.WARNING):
        make_app(instance, instance / "certdesk.db", SECRET_KEY=None)
    assert _mode(instance) == 0o700
    for name in ("certdesk.db", "certdesk.db-wal", "secret_key"):
        assert _mode(instance / name) == 0o600, name
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "certdesk.db" in warned and "readable by other users" in warned


def test_a_worker_that_found_nothing_uses_what_another_worker_made(tmp_path, monkeypatch):
    """Workers started together on a new instance: this one saw no session key, database or
    master key, then another worker made them all before this one got to. It goes on with
    theirs, rather than failing on a file that exists or writing its own over it."""
    from tests.conftest import make_app
    from webapp.extensions import db
    from webapp.security import secretbox

    instance = tmp_path / "instance"
    first = make_app(instance, instance / "certdesk.db", SECRET_KEY=None)
    with first.app_context():
        first_box = secretbox.current_box()
        db.engine.dispose()
    made = {instance / name for name in ("secret_key", "certdesk.db", secretbox.KEY_FILE)}
    exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: self not in made and exists(self))
    second = make_app(instance, instance / "certdesk.db", SECRET_KEY=None)
    monkeypatch.undo()
    with second.app_context():
        assert secretbox.current_box().key == first_box.key
        db.engine.dispose()
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert sorted(p.name for p in instance.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stopped_certdesk_leaves_everything_in_certdesk_db(tmp_path, workers):
    """Backups copy certdesk.db while CertDesk is stopped: its write-ahead log is written back
    into it at an orderly stop, not left beside it."""
    instance = tmp_path / "instance"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", "--port", str(port), "--workers", workers],
        env=dict(os.environ, CERTDESK_INSTANCE=str(instance), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 60)
        token = None
        for line in proc.stdout:
            if "/setup?token=" in line:
                token = line.split("token=")[1].strip()
                break
        http = requests.Session()
        made = http.post(
            url + "/setup",
            data={
                "token": token,
                "csrf_token": csrf_token(http, f"{url}/setup?token={token}"),
                "username": "keeper",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
            timeout=30,
        )
        assert made.ok and "keeper" in made.text, made.text
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not (instance / "certdesk.db-wal").exists()
    copy = tmp_path / "backup.db"
    shutil.copyfile(instance / "certdesk.db", copy)  # the file alone, as the README says
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("select username from user").fetchall() == [("keeper",)]


@pytest.mark.parametrize("held", [b"", b"\n", b"short-key\n", b"\xff\xfe\x00garbled"])
@pytest.mark.parametrize("command", [["serve"], ["audit", "verify"]])
def test_a_session_key_file_emptied_or_cut_short_stops_the_start_in_a_line(tmp_path, held, command):
    """A session key file left empty (a full disk) or cut short (a bad restore) would sign
    sessions and CSRF tokens with next to no secret, or, empty, fail every page with a 500: the
    start stops, saying what to do, and leaves the file and the database as they were."""
    instance = tmp_path / "instance"
    made = run_certdesk(instance, "db", "upgrade")
    assert made.returncode == 0, made
    (instance / "secret_key").write_bytes(held)
    database = (instance / "certdesk.db").read_bytes()
    ran = run_certdesk(instance, *command, timeout=30)
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert (
        f"CertDesk cannot start: the session key {instance / 'secret_key'} "
        in ran.stderr.strip().splitlines()[-1]
    ), ran.stderr
    assert "restore it from a backup, or remove it to have a new one made" in ran.stderr
    assert "serving on" not in ran.stdout.lower(), ran.stdout
    assert (instance / "secret_key").read_bytes() == held
    assert (instance / "certdesk.db").read_bytes() == database
