"""The audit chain is keyed with a secret kept apart from the database (CD-7 #12).

Someone who can write to the database can read the chain's algorithm in the code; without the
master key they still cannot edit a row and recompute the hashes after it, nor remove the last
rows and move the head back. `certdesk audit verify` catches both. Existing chains are keyed at
the upgrade (recorded), `certdesk rotate-master-key` keeps the chain verifiable, and refusals and
exports are in the trail.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from tests.conftest import make_app
from webapp import paths, rotation
from webapp.audit import service as audit
from webapp.audit.models import AuditEvent, AuditHead
from webapp.extensions import db
from webapp.security import secretbox as sb


def _add(n):
    for i in range(n):
        audit.record("test.event", actor="test", object_type="thing", object_id=i, detail={"i": i})
    db.session.commit()


def _rows():
    db.session.expire_all()
    return [
        dict(r._mapping) for r in db.session.execute(text("SELECT * FROM audit_event ORDER BY seq"))
    ]


def _plain_hash(row, prev):
    """The chain's algorithm as anyone can read it in the code, without a key."""
    canonical = json.dumps(
        [
            row["seq"],
            db.session.get(AuditEvent, row["id"]).at.isoformat(timespec="microseconds"),
            row["actor_id"],
            row["actor_name"],
            row["action"],
            row["object_type"],
            row["object_id"],
            row["outcome"],
            row["detail"],
            row["address"],
            prev,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _forge_from(seq: int) -> None:
    """Recompute every hash from row ``seq`` on, and the head, as a forger without the key."""
    rows = _rows()
    prev = rows[seq - 2]["hash"] if seq > 1 else audit.GENESIS
    for row in rows[seq - 1 :]:
        new = _plain_hash(row, prev)
        db.session.execute(
            text("UPDATE audit_event SET prev_hash=:p, hash=:h WHERE id=:i"),
            {"p": prev, "h": new, "i": row["id"]},
        )
        prev = new
    db.session.execute(text("UPDATE audit_head SET last_hash=:h"), {"h": prev})
    db.session.commit()


def _cli_verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def test_an_edit_with_every_later_hash_recomputed_is_caught(app):
    _add(5)
    assert _cli_verify(app).exit_code == 0
    db.session.execute(text("UPDATE audit_event SET detail='{\"i\": 99}' WHERE seq = 5"))
    _forge_from(5)
    result = _cli_verify(app)
    assert result.exit_code == 1 and "row 5 was altered" in result.output


def test_removing_the_last_rows_and_moving_the_head_is_caught(app):
    _add(5)
    last = db.session.execute(text("SELECT max(seq) FROM audit_event")).scalar()
    db.session.execute(text("DELETE FROM audit_event WHERE seq > :s"), {"s": last - 2})
    keep = _rows()[-1]
    # The head moved back to the last row kept: its seq and hash are right, its MAC cannot be.
    db.session.execute(
        text("UPDATE audit_head SET seq=:s, last_hash=:h, mac=:m"),
        {"s": keep["seq"], "h": keep["hash"], "m": hashlib.sha256(b"forged").hexdigest()},
    )
    db.session.commit()
    result = _cli_verify(app)
    assert result.exit_code == 1 and "head of the trail was moved" in result.output


def test_a_chain_keyed_under_another_master_key_does_not_verify(app):
    _add(2)
    other = sb.SecretBox(sb.new_key())
    app.extensions["secretbox"] = other
    result = audit.verify()
    assert not result.ok and "does not hold" in result.problem


def test_the_upgrade_keys_an_existing_chain_and_says_so(app):
    _add(3)
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0004_job_params")
    rows = _rows()
    prev = audit.GENESIS
    for row in rows:  # 0004's plain chain, intact
        assert row["prev_hash"] == prev and _plain_hash(row, prev) == row["hash"]
        prev = row["hash"]
    db.session.remove()  # a transaction left open would hold up the upgrade's DDL on PostgreSQL
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    db.session.remove()
    assert audit.verify().ok
    keyed = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
    assert keyed.action == "audit.chain_keyed" and keyed.actor_name == "upgrade"
    assert json.loads(keyed.detail) == {
        "events": len(rows),
        "verified_before": True,
        "problem": "",
    }


def test_the_upgrade_records_where_an_old_chain_was_broken(app):
    _add(3)
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0004_job_params")
    db.session.execute(text("UPDATE audit_event SET actor_name='mallory' WHERE seq = 2"))
    db.session.commit()
    db.session.remove()
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    db.session.remove()
    keyed = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
    assert keyed.action == "audit.chain_keyed" and keyed.outcome == "failure"
    assert json.loads(keyed.detail)["problem"] == "row 2 was altered"


def test_rotating_the_master_key_keeps_the_chain_verifiable(app, instance):
    _add(3)
    old_key = sb.current_box().key
    result = app.test_cli_runner().invoke(args=["rotate-master-key"])
    assert result.exit_code == 0, result.output
    assert sb.load_box(instance, None, may_create=False).key != old_key
    db.session.remove()
    assert audit.verify().ok
    last_two = (
        db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2))
        .scalars()
        .all()
    )
    assert [e.action for e in last_two] == ["security.master_key_rotated", "audit.rekeyed"]
    assert json.loads(last_two[1].detail)["verified_before"] is True
    head = db.session.get(AuditHead, 1)
    assert head.key_id == audit.chain_key(sb.current_box().key)[0]
    # A restarted portal (new key from the file) appends and verifies.
    db.session.remove()
    restarted = make_app(instance, instance / "certdesk.db")
    with restarted.app_context():
        audit.record("after.restart", actor="test")
        db.session.commit()
        assert audit.verify().ok
        db.session.remove()


def test_a_rotation_interrupted_after_rekeying_the_chain_keeps_it_verifiable(
    app, instance, monkeypatch
):
    _add(2)

    def crash(*_args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        rotation.rotate(instance)
    monkeypatch.undo()
    db.session.remove()
    assert (instance / sb.NEXT_KEY_FILE).exists()
    middle = make_app(instance, instance / "certdesk.db")  # holds both keys
    with middle.app_context():
        audit.record("while.interrupted", actor="test")
        db.session.commit()
        assert audit.verify().ok
        assert rotation.rotate(instance) == 0
        assert audit.verify().ok
        db.session.remove()


def test_a_rotation_over_a_broken_trail_records_that_it_was_broken(app, instance):
    _add(3)
    db.session.execute(text("UPDATE audit_event SET actor_name='mallory' WHERE seq = 2"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["rotate-master-key"])
    assert result.exit_code == 0 and "did not verify" in result.output
    db.session.remove()
    rekeyed = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "audit.rekeyed")
    ).scalar_one()
    assert rekeyed.outcome == "failure" and "row 2 was altered" in rekeyed.detail


def test_refusals_and_exports_are_in_the_trail(operator_client, auditor_client):
    assert operator_client.get("/admin/users/").status_code == 403
    assert auditor_client.post("/admin/users/new", data={"username": "x"}).status_code == 403
    assert auditor_client.get("/certificates/export.csv?q=shop").status_code == 200
    assert auditor_client.get("/admin/audit/export.csv?action=user.").status_code == 200
    events = (
        db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(4))
        .scalars()
        .all()
    )
    got = [(e.action, e.actor_name, e.object_id) for e in reversed(events)]
    assert got == [
        ("access.denied", "operator", "users.index"),
        ("access.denied", "auditor", "users.new"),
        ("certificate.export", "auditor", ""),
        ("audit.export", "auditor", ""),
    ]
    assert json.loads(events[1].detail) == {"q": "shop"}
    assert audit.verify().ok


def test_the_master_key_is_not_rotated_under_a_running_portal(app, instance):
    """A running portal's workers keep the key they started with: a secret one of them sealed
    after the rotation would be under a key that is gone. The rotation refuses while the
    scheduler's lease is held, and goes ahead once it has run out."""
    from datetime import timedelta

    from webapp.dbtypes import utcnow
    from webapp.scheduler import SchedulerLease

    old_key = sb.current_box().key
    lease = SchedulerLease(name="scheduler", holder="host:4242", expires_at=utcnow() + timedelta(1))
    db.session.add(lease)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["rotate-master-key"])
    assert result.exit_code == 1 and "CertDesk is running" in result.output
    assert "host:4242" in result.output
    # A CertDesk that was killed keeps its hold a while: when it ends is said.
    assert f"its hold ends at {lease.expires_at:%H:%M:%S} UTC: run this again then" in " ".join(
        result.output.split()
    )
    assert sb.load_box(instance, None, may_create=False).key == old_key
    lease.expires_at = utcnow() - timedelta(minutes=1)  # it stopped without releasing it
    db.session.commit()
    assert app.test_cli_runner().invoke(args=["rotate-master-key"]).exit_code == 0
    assert sb.load_box(instance, None, may_create=False).key != old_key


def test_a_start_after_an_interrupted_rotation_says_to_finish_it(app, instance, caplog):
    """Until the rotation is run again some secrets open only with master.key.next: a start in
    that state says so in the log (deleting that file as a leftover would lose them)."""
    key = sb.current_box().key
    sb.write_key_file(instance / sb.NEXT_KEY_FILE, sb.new_key())
    db.session.remove()
    with caplog.at_level(logging.WARNING, logger="webapp.security.secretbox"):
        middle = make_app(instance, instance / "certdesk.db")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "a master key rotation was interrupted" in said
    assert "run `certdesk rotate-master-key` again to finish it" in said
    assert str(instance / sb.NEXT_KEY_FILE) in said
    with middle.app_context():
        assert sb.current_box().key == key  # still sealing under the key in master.key
        db.session.remove()


@pytest.mark.parametrize("seq", [0, -7])
def test_a_row_inserted_before_the_first_is_caught(app, seq):
    """A row numbered before row 1 is listed and exported as any other event; the walk, which
    starts at row 1, must not pass over it."""
    _add(3)
    db.session.execute(
        text(
            "INSERT INTO audit_event (seq, at, actor_id, actor_name, action, object_type, "
            "object_id, outcome, detail, address, prev_hash, hash) SELECT :s, at, NULL, "
            "'operator', 'certificate.delete', 'certificate', '9', outcome, '{}', address, "
            "prev_hash, hash FROM audit_event WHERE seq = 1"
        ),
        {"s": seq},
    )
    db.session.commit()
    result = _cli_verify(app)
    assert result.exit_code == 1
    assert f"row {seq} was inserted: the chain starts at row 1" in result.output
    assert not audit.verify().ok


def test_a_rotation_over_a_trail_without_its_head_is_refused_in_words_and_changes_nothing(
    app, instance
):
    """Without its head row the trail takes no event, so a rotation could record neither the
    re-keying nor itself; rebuilding the head would pass over rows removed at the end. The
    command says what is wrong before it changes anything: no new key file, no secret resealed,
    the key in use kept."""
    _add(3)
    sealed = sb.current_box().seal(b"a secret", "test")
    old_key = sb.current_box().key
    db.session.execute(text("DELETE FROM audit_head"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["rotate-master-key"])
    assert result.exit_code == 1 and result.exception is not None
    assert isinstance(result.exception, SystemExit), result.exception
    said = " ".join(result.output.split())
    assert audit.HEAD_REMOVED in said and "nothing was changed" in said
    assert "certdesk audit verify" in said
    assert not (instance / sb.NEXT_KEY_FILE).exists()
    assert sb.load_box(instance, None, may_create=False).key == old_key
    assert sb.current_box().key == old_key and sb.current_box().open(sealed, "test") == b"a secret"
    assert db.session.get(AuditHead, 1) is None
