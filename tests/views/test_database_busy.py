"""A request that cannot have the database's lock in time answers 503 "busy, try again", rolls
back and logs one line; other database errors stay a logged 500."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.helpers import HTMX
from webapp import errors, extensions
from webapp.audit.models import AuditEvent
from webapp.extensions import db


def _actions():
    return [e.action for e in db.session.execute(db.select(AuditEvent)).scalars()]


@pytest.mark.sqlite_only
def test_a_sign_in_behind_another_writer_answers_busy_and_changes_nothing(
    app, client, monkeypatch, caplog
):
    monkeypatch.setattr(extensions, "BUSY_TIMEOUT_MS", 100)
    db.session.remove()
    db.engine.dispose()  # connections opened from now on wait 100 ms for a lock
    before = _actions()
    with closing(sqlite3.connect(db.engine.url.database, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        resp = client.login("operator")
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == str(errors.BUSY_RETRY_SECONDS)
        page = resp.get_data(as_text=True)
        assert "busy with other work" in page and "Try again in a moment" in page
        holder.execute("ROLLBACK")
    db.session.remove()
    assert _actions() == before  # nothing was recorded
    assert client.get("/").status_code == 302  # and nobody is signed in
    assert "gave up waiting for a lock" in caplog.text
    assert "Traceback" not in caplog.text
    assert client.login("operator").status_code == 302  # once the lock is free, it works
    assert client.get("/").status_code == 200


@pytest.mark.sqlite_only
def test_an_htmx_request_behind_another_writer_gets_the_busy_banner(app, admin_client, monkeypatch):
    monkeypatch.setattr(extensions, "BUSY_TIMEOUT_MS", 100)
    db.session.remove()
    db.engine.dispose()
    with closing(sqlite3.connect(db.engine.url.database, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        resp = admin_client.post("/logout", headers=HTMX)
        holder.execute("ROLLBACK")
    assert resp.status_code == 503
    assert resp.headers["HX-Retarget"] == "#banner"
    assert "busy with other work" in resp.get_data(as_text=True)
    assert admin_client.get("/").status_code == 200  # the sign-out did not happen


def _error_of(conn, statement: str) -> OperationalError:
    with pytest.raises(OperationalError) as caught:
        conn.execute(text(statement))
    return caught.value


def test_busy_is_told_from_other_database_errors(app):
    """Real errors of the database under test: a lock not had is "busy"; a bad statement or a
    connection the server ended is not."""
    url = db.engine.url
    first, second = create_engine(url), create_engine(url)
    try:
        with first.connect() as holder, second.connect() as waiter:
            if url.get_backend_name() == "sqlite":
                holder.exec_driver_sql("BEGIN IMMEDIATE")
                waiter.exec_driver_sql("PRAGMA busy_timeout = 50")
                busy = _error_of(waiter, "DELETE FROM login_attempt")
            else:
                holder.execute(text("LOCK TABLE login_attempt IN ACCESS EXCLUSIVE MODE"))
                waiter.execute(text("SET lock_timeout = '50ms'"))
                busy = _error_of(waiter, "SELECT count(*) FROM login_attempt")
            holder.rollback()
            waiter.rollback()
            assert errors.database_busy(busy)
            if url.get_backend_name() == "sqlite":
                other = _error_of(waiter, "SELECT * FROM no_such_table")
            else:  # the server ends the connection: not a lock, and trying again would not help
                other = _error_of(waiter, "SELECT pg_terminate_backend(pg_backend_pid())")
            assert not errors.database_busy(other)
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.sqlite_only
def test_each_sqlite_connection_waits_for_locks_and_reads_through_a_memory_map(app):
    """The settings every pooled connection opens with: a wait instead of "database is locked",
    and pages read through a memory map (not a system call and a copy per page read)."""
    if db.engine.url.database in (None, "", ":memory:"):
        pytest.skip("a database in memory has no file to map")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == extensions.BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == extensions.MMAP_BYTES


def test_a_name_another_request_saved_meanwhile_is_a_conflict_not_a_500(app, admin_client, caplog):
    """Two administrators create a user under one name at once. The other request's row is not
    yet committed when this one looks the name up, and is by the time this one inserts: this
    one is rolled back and says so (it used to be a 500)."""
    import threading

    from sqlalchemy import insert

    from webapp.auth.models import User

    before = _actions()
    other = create_engine(db.engine.url).connect()
    tx = other.begin()
    other.execute(insert(User).values(username="carol", password_hash="x", role="operator"))
    committed = threading.Timer(1.0, tx.commit)  # while this request waits for the name
    committed.start()
    resp = admin_client.post(
        "/admin/users/new",
        data={"username": "carol", "role": "auditor", "password": "carol's password"},
    )
    committed.join()
    other.close()
    assert resp.status_code == 409
    assert "Someone else saved the same thing at the same moment" in resp.get_data(as_text=True)
    assert db.session.execute(db.select(User.role).where(User.username == "carol")).all() == [
        ("operator",)
    ]
    assert _actions() == before  # the refused request recorded nothing
    assert "lost to a write made meanwhile" in caplog.text and "Traceback" not in caplog.text


def test_a_broken_constraint_that_is_no_race_stays_a_logged_500(app, caplog):
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from webapp.auth.models import User

    with pytest.raises(IntegrityError) as caught:
        db.session.execute(insert(User).values(username=None, password_hash="x", role="admin"))
    with app.test_request_context("/admin/users/new", method="POST"):
        _body, status, _headers = errors.handle_conflict(caught.value)
    assert status == 500 and "unhandled error: POST /admin/users/new" in caplog.text
