import json

from click.testing import CliRunner
from sqlalchemy import text

from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.cli import audit_group
from webapp.extensions import db


def _add(n):
    for i in range(n):
        audit.record("test.event", actor="test", object_type="thing", object_id=i, detail={"i": i})
    db.session.commit()


def test_chain_verifies_and_detects_an_edit(app):
    before = audit.verify().checked  # the template's three user creations
    _add(5)
    result = audit.verify()
    assert result.ok and result.checked == before + 5
    db.session.execute(text("UPDATE audit_event SET detail='{\"i\": 99}' WHERE seq = 4"))
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.seq == 4 and "altered" in result.problem


def test_removed_rows_are_detected(app):
    _add(4)
    db.session.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.seq == 3


def test_removing_the_last_rows_is_detected(app):
    _add(4)
    last = db.session.execute(text("SELECT max(seq) FROM audit_event")).scalar()
    db.session.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
    db.session.commit()
    assert not audit.verify().ok


def test_orm_refuses_update(app):
    _add(1)
    event = db.session.execute(db.select(AuditEvent)).scalars().first()
    event.action = "changed"
    try:
        db.session.commit()
    except RuntimeError as exc:
        assert "append-only" in str(exc)
        db.session.rollback()
    else:
        raise AssertionError("an audit row was updated through the ORM")


def test_secrets_are_scrubbed_from_detail(app):
    audit.record("credential.create", actor="test", detail={"api_key": "abc123", "name": "prod"})
    db.session.commit()
    row = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert json.loads(row.detail) == {"api_key": "(set)", "name": "prod"}


def test_secrets_are_scrubbed_inside_lists_and_tuples(app):
    detail = {
        "credentials": [{"name": "prod", "api_key": "abc123"}, {"name": "test", "api_key": ""}],
        "changes": ({"field": "proxy", "password": "hunter22"},),
        "nested": {"rows": [{"token": "t0k3n", "kept": 1}]},
        "names": ["a.example.com", "b.example.com"],
    }
    audit.record("credential.update", actor="test", detail=detail)
    db.session.commit()
    row = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert json.loads(row.detail) == {
        "credentials": [
            {"name": "prod", "api_key": "(set)"},
            {"name": "test", "api_key": "(empty)"},
        ],
        "changes": [{"field": "proxy", "password": "(set)"}],
        "nested": {"rows": [{"token": "(set)", "kept": 1}]},
        "names": ["a.example.com", "b.example.com"],
    }
    for secret in ("abc123", "hunter22", "t0k3n"):
        assert secret not in row.detail


def test_many_events_keep_each_detail_as_one_event_would(app):
    """``record_many`` writes each detail as ``record`` does, flat ones (one per order of a bulk
    action) as much as nested ones: secrets scrubbed, long texts and keys cut, many entries
    shortened; the events chain as one by one."""
    details = [
        {
            "Password": "s3cret-1",
            "x_api_token": "",
            "name": "n" * 600,
            "k" * 80: 1,
            "on": True,
            "none": None,
            "ratio": 0.5,
        },
        {"nested": {"token": "s3cret-2", "rows": [{"secret": "s3cret-3"}]}, "n": 5},
        {f"key{i}": i for i in range(60)},
        {"ids": list(range(70)), "when": "now"},
    ]
    assert audit.record_many(
        "test.bulk", actor="test", object_type="thing", items=list(enumerate(details))
    ) == len(details)
    one = audit.record("test.one", actor="test", object_type="thing", detail=details[0])
    db.session.commit()
    rows = db.session.execute(
        db.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(len(details) + 1)
    ).scalars()
    *bulk, single = list(rows)[::-1]
    assert [r.object_id for r in bulk] == ["0", "1", "2", "3"]
    for row, detail in zip(bulk, details, strict=True):
        kept = json.loads(row.detail)
        assert kept == json.loads(json.dumps(audit._bounded(audit._scrub(detail)), default=str))
    assert single.id == one.id and single.detail == bulk[0].detail
    first = json.loads(bulk[0].detail)
    assert first["Password"] == "(set)" and first["x_api_token"] == "(empty)"
    assert len(first["name"]) == audit.MAX_DETAIL_TEXT and ("k" * 63 + "…") in first
    assert len(json.loads(bulk[2].detail)) == audit.MAX_DETAIL_ITEMS + 1  # and "…": 10 more
    assert not any(s in r.detail for r in bulk for s in ("s3cret-1", "s3cret-2", "s3cret-3"))
    assert audit.verify().ok


def test_cli_verify_exit_codes(app):
    _add(2)
    runner = CliRunner()
    ok = runner.invoke(audit_group, ["verify"], obj=None)
    assert ok.exit_code == 0 and "intact" in ok.output
    db.session.execute(text("UPDATE audit_event SET actor_name='mallory' WHERE seq = 1"))
    db.session.commit()
    bad = runner.invoke(audit_group, ["verify"])
    assert bad.exit_code == 1 and "row 1" in bad.output
