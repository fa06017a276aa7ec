"""`certdesk copy-database`: an install moves from SQLite to PostgreSQL with everything it holds —
users who can still sign in, sealed secrets that still open, an audit chain that still verifies,
links between rows — and new rows get new ids."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests import pg
from tests.conftest import PASSWORD, Client, make_app
from tests.unit.certs.factory import MiniPki, p12
from webapp.audit import service as audit
from webapp.auth import service as auth
from webapp.certificates import service as certificates
from webapp.certificates.models import Certificate
from webapp.credentials import clients
from webapp.credentials import service as credentials
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.keys import service as keys

API_KEY = "copy-canary-api-key-41"


def _fill(admin) -> dict:
    cred, _ = credentials.create(
        admin,
        credentials.CredentialInput(
            name="Prod", api_user="api", api_key=API_KEY, base_url="https://ecs.example/v2/"
        ),
        start_sync=False,
    )
    csr = csrs.create_csr(admin, "p256", {"CN": "copy.example.com"}, "")
    t = MiniPki()
    key, cert = t.leaf("shop.example.com")
    certificates.import_files(admin, [("s.p12", p12(key, cert, t.chain, "pw-123456"))], "pw-123456")
    return {"credential": cred.id, "csr": csr.id}


def _copy(instance, target_url: str, source_url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CERTDESK_INSTANCE=str(instance), DATABASE_URL=target_url)
    return subprocess.run(
        [sys.executable, "-m", "webapp", "copy-database", source_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sqlite_install_moves_to_postgresql_whole(app, instance, user, postgres_url):
    ids = _fill(user["admin"])
    # The newest certificate deleted: its id is given to no other, after the copy too.
    t = MiniPki()
    gone, _ = certificates.add_certificate(t.leaf("gone.example.com")[1], [], actor=user["admin"])
    certificates.delete_certificate(user["admin"], gone)
    gone_id = gone.id
    counts = {
        m.__tablename__: db.session.execute(select(func.count()).select_from(m)).scalar()
        for m in (Certificate,)
    }
    events = audit.verify().checked
    db.session.remove()
    db.engine.dispose()
    target = pg.create_database(postgres_url)
    source = f"sqlite:///{instance / 'certdesk.db'}"

    done = _copy(instance, target, source)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Audit trail: intact." in done.stdout and "Copied" in done.stdout

    moved = make_app(instance, instance / "unused.db", SQLALCHEMY_DATABASE_URI=target)
    with moved.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert audit.verify().ok and audit.verify().checked == events + 1  # + database.copied
        cred = credentials.get(ids["credential"])
        assert clients.open_secrets(cred)[0] == API_KEY
        row = csrs.get_csr(ids["csr"])
        assert keys.open_key(row.private_key) is not None
        assert (
            db.session.execute(select(func.count()).select_from(Certificate)).scalar()
            == (counts["certificate"])
        )
        # New rows get ids after the copied ones (the sequences moved on).
        newcomer = auth.create_user(
            user_admin := auth.by_username("admin"), "newop", PASSWORD, "operator"
        )
        assert newcomer.id > user_admin.id
        again_cert, _ = certificates.add_certificate(
            MiniPki().leaf("new.example.com")[1], [], actor=user_admin
        )
        assert again_cert.id > gone_id
        moved.test_client_class = Client
        client = moved.test_client()
        assert client.login("operator").status_code == 302
        db.session.remove()
        db.engine.dispose()

    again = _copy(instance, target, source)
    assert again.returncode != 0 and "already holds data" in again.stderr
    pg.drop_database(target)


def test_a_copy_between_different_versions_is_refused(app, instance, postgres_url):
    db.session.remove()
    db.engine.dispose()
    target = pg.create_database(postgres_url)
    old = instance / "old.db"
    import sqlite3

    with sqlite3.connect(old) as conn:
        conn.execute("create table alembic_version (version_num varchar(32))")
        conn.execute("insert into alembic_version values ('0001_foundation')")
    refused = _copy(instance, target, f"sqlite:///{old}")
    assert refused.returncode != 0 and "upgrade both to the same version" in refused.stderr
    pg.drop_database(target)


def test_a_source_that_cannot_be_read_is_named_without_a_traceback(tmp_path):
    instance = tmp_path / "instance"
    target = f"sqlite:///{tmp_path / 'new.db'}"
    missing = tmp_path / "typo" / "certdesk.db"
    missing.parent.mkdir()
    for source, said in [
        ("instance/certdesk.db", "'instance/certdesk.db' is not a database URL"),
        (f"sqlite:///{missing}", f"There is no SQLite database at {missing}."),
        ("oracle+nodriver://u:pw-1234@db/x", "oracle+nodriver://u:***@db/x cannot be opened"),
    ]:
        refused = _copy(instance, target, source)
        assert refused.returncode == 1, refused
        assert "Traceback" not in refused.stderr, refused.stderr
        assert f"Error: {said}" in refused.stderr, refused.stderr
        assert "pw-1234" not in refused.stdout + refused.stderr
    assert not missing.exists()  # not made empty by the attempt


def test_a_source_still_in_use_is_refused_until_it_stops(live_server, tmp_path):
    """Copied while CertDesk still runs on it, what it writes afterwards would be lost: the copy
    is refused, naming the running CertDesk, and goes ahead once it has stopped."""
    import sqlite3
    import time

    from tests.live import stop_server

    if (live_server.instance / "database_url").exists():
        pytest.skip("the source of a copy is an SQLite file")
    source = live_server.database
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the first tick takes the scheduler's lease
        with sqlite3.connect(source) as conn:
            if conn.execute("select count(*) from scheduler_lease").fetchone()[0]:
                break
        time.sleep(0.2)
    target = tmp_path / "new.db"
    refused = _copy(live_server.instance, f"sqlite:///{target}", f"sqlite:///{source}")
    assert refused.returncode == 1, refused
    assert "Error: CertDesk is running on the source database" in refused.stderr, refused.stderr
    with sqlite3.connect(target) as conn:
        assert conn.execute("select count(*) from user").fetchone()[0] == 0

    stop_server(live_server)  # stopped in order, it gives its lease up
    done = _copy(live_server.instance, f"sqlite:///{target}", f"sqlite:///{source}")
    assert done.returncode == 0, done.stderr
    assert "Audit trail: intact." in done.stdout
