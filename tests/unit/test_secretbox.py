import base64
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest
from sqlalchemy import Integer, String, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.conftest import make_app
from webapp import rotation
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.security import secretbox as sb
from webapp.settings import service as settings
from webapp.settings.models import Setting


def test_seal_and_open_round_trip():
    box = sb.SecretBox(sb.new_key())
    token = box.seal("s3cr3t-api-key", "credential.api_key")
    assert token.startswith("v1:")
    assert "s3cr3t" not in token
    assert box.open_text(token, "credential.api_key") == "s3cr3t-api-key"
    assert box.seal("x", "c") != box.seal("x", "c")  # fresh nonce each time


def test_value_moved_to_another_column_does_not_open():
    box = sb.SecretBox(sb.new_key())
    token = box.seal("value", "credential.api_key")
    with pytest.raises(sb.SecretError):
        box.open(token, "credential.client_key")


def test_other_key_and_corruption_are_refused():
    token = sb.SecretBox(sb.new_key()).seal("value", "c")
    with pytest.raises(sb.SecretError, match="does not hold"):
        sb.SecretBox(sb.new_key()).open(token, "c")
    box = sb.SecretBox(sb.new_key())
    good = box.seal("value", "c")
    raw = bytearray(base64.b64decode(good[3:]))
    raw[-1] ^= 1
    with pytest.raises(sb.SecretError):
        box.open("v1:" + base64.b64encode(bytes(raw)).decode(), "c")
    with pytest.raises(sb.SecretError):
        box.open("plain text", "c")


def test_key_file_created_private(tmp_path):
    box = sb.load_box(tmp_path, None, may_create=True)
    mode = os.stat(tmp_path / "master.key").st_mode & 0o777
    assert mode == 0o600
    assert sb.load_box(tmp_path, None, may_create=False).key == box.key


def test_put_new_keeps_the_value_stored_first(app):
    assert settings.put_new("test.first", "a") is True
    db.session.commit()
    assert settings.put_new("test.first", "b") is False
    db.session.commit()
    assert settings.get("test.first") == "a"


def _until_waiting_on_a_lock(engine, seconds=10.0):
    """PostgreSQL shows a backend waiting on a lock; SQLite's busy wait cannot be seen, so give
    the starting app time to reach it."""
    if engine.dialect.name != "postgresql":
        time.sleep(1.5)
        return
    deadline = time.monotonic() + seconds
    query = text("select count(*) from pg_stat_activity where wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the starting app never waited for the other worker's key check")


def test_workers_starting_together_agree_on_the_key_check(app, instance):
    """A new database: another worker stores its key check while this app starts. The app
    waits for it, finds it and verifies it instead of failing on the duplicate."""
    settings.delete(sb.KEY_CHECK_SETTING)
    db.session.commit()
    other = db.engine.connect()
    tx = other.begin()
    other.execute(
        insert(Setting).values(
            key=sb.KEY_CHECK_SETTING,
            value=json.dumps(sb.key_check(sb.current_box())),
            updated_at=utcnow(),
        )
    )
    outcome = {}

    def start():
        try:
            outcome["app"] = make_app(instance, instance / "certdesk.db")
        except Exception as exc:  # reported below
            outcome["error"] = exc

    worker = threading.Thread(target=start)
    worker.start()
    _until_waiting_on_a_lock(db.engine)
    tx.commit()
    other.close()
    worker.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert "secretbox" in outcome["app"].extensions


def test_key_file_readable_by_others_is_refused(tmp_path):
    sb.load_box(tmp_path, None, may_create=True)
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(sb.MasterKeyError, match="readable by other users"):
        sb.load_box(tmp_path, None, may_create=False)


def test_app_refuses_to_start_without_its_key(instance):
    (instance / "master.key").unlink()
    with pytest.raises(sb.MasterKeyError, match="missing"):
        make_app(instance, instance / "certdesk.db")


def test_app_refuses_to_start_with_a_wrong_key(instance):
    sb.write_key_file(instance / "master.key", sb.new_key())
    with pytest.raises(sb.MasterKeyError, match="does not match"):
        make_app(instance, instance / "certdesk.db")


def test_app_refuses_an_unsafe_key_file(instance):
    os.chmod(instance / "master.key", 0o640)
    with pytest.raises(sb.MasterKeyError, match="chmod 600"):
        make_app(instance, instance / "certdesk.db")


def test_the_chmod_an_unsafe_key_file_names_works_in_a_folder_with_a_space(tmp_path):
    instance = tmp_path / "my certdesk" / "instance"
    instance.mkdir(parents=True)
    sb.load_box(instance, None, may_create=True)
    os.chmod(instance / "master.key", 0o644)
    with pytest.raises(sb.MasterKeyError) as refused:
        sb.load_box(instance, None, may_create=False)
    message = str(refused.value)
    command = message[message.index("chmod 600 ") :]  # the end of the message, pasted
    subprocess.run(command, shell=True, check=True, cwd=tmp_path)  # noqa: S602 (as pasted)
    sb.load_box(instance, None, may_create=False)  # the start that follows works


def test_env_key_must_be_32_bytes(tmp_path):
    with pytest.raises(sb.MasterKeyError):
        sb.load_box(tmp_path, base64.b64encode(b"short").decode(), may_create=True)


class _VaultBase(DeclarativeBase):
    pass


class Vault(_VaultBase):
    __tablename__ = "test_vault"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret: Mapped[str] = mapped_column(String(500))


@pytest.fixture
def vault(app, monkeypatch):
    _VaultBase.metadata.create_all(db.engine)
    monkeypatch.setattr(sb, "SEALED", [(Vault, "secret")])
    monkeypatch.setattr(rotation, "BATCH", 3)
    box = sb.current_box()
    ctx = sb.context_for(Vault, "secret")
    for i in range(10):
        db.session.add(Vault(id=i + 1, secret=box.seal(f"secret-{i}", ctx)))
    db.session.commit()
    return ctx


def _plaintexts(box, ctx):
    rows = db.session.execute(select(Vault).order_by(Vault.id)).scalars()
    return [box.open_text(r.secret, ctx) for r in rows]


def test_rotation_reseals_everything_and_app_starts_with_new_key(app, instance, vault):
    old_key = sb.current_box().key
    count = rotation.rotate(instance)
    assert count == 10
    assert not (instance / sb.NEXT_KEY_FILE).exists()
    new_box = sb.load_box(instance, None, may_create=False)
    assert new_box.key != old_key
    assert _plaintexts(new_box, vault) == [f"secret-{i}" for i in range(10)]
    db.session.remove()
    make_app(instance, instance / "certdesk.db")  # the key check opens under the new key


def test_interrupted_rotation_resumes(app, instance, vault):
    """Half the rows resealed under master.key.next, then a crash: a re-run finishes the job."""
    old = sb.current_box()
    nxt = sb.new_key()
    sb.write_key_file(instance / sb.NEXT_KEY_FILE, nxt)
    partial = sb.SecretBox(nxt, old.key)
    for row in db.session.execute(select(Vault).where(Vault.id <= 5)).scalars():
        row.secret = partial.seal(partial.open(row.secret, vault), vault)
    db.session.commit()
    db.session.remove()
    # While interrupted, the app still starts and opens both halves.
    mid = make_app(instance, instance / "certdesk.db")
    with mid.app_context():
        assert _plaintexts(sb.current_box(), vault) == [f"secret-{i}" for i in range(10)]
    assert rotation.rotate(instance) == 5
    final = sb.load_box(instance, None, may_create=False)
    assert final.key == nxt
    assert _plaintexts(final, vault) == [f"secret-{i}" for i in range(10)]


@pytest.mark.sqlite_only
def test_database_file_never_holds_a_secret_in_plaintext(app, instance, vault):
    """Encrypt a canary, then search the SQLite file and its WAL for it."""
    canary = "CANARY-7f3a9c-plaintext-must-not-appear"
    db.session.add(Vault(id=99, secret=sb.current_box().seal(canary, vault)))
    db.session.commit()
    data = b""
    for suffix in ("", "-wal"):
        path = instance / f"certdesk.db{suffix}"
        if path.exists():
            data += path.read_bytes()
    assert b"secret-3" not in data and canary.encode() not in data
    assert sqlite3.connect(instance / "certdesk.db").execute(
        "select count(*) from test_vault"
    ).fetchone() == (11,)
