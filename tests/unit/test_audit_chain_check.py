"""The audit chain is checked without anyone running `certdesk audit verify`: daily and once
after a start, as a background job, its outcome kept for the pages; a break is recorded in the
trail itself, once per break, and logged at ERROR."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import func, select, text

from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import SUCCEEDED, Job
from webapp.trailcheck import service as chaincheck


def _add(n):
    for i in range(n):
        audit.record("test.event", actor="test", object_type="thing", object_id=i, detail={"i": i})
    db.session.commit()


def _head_seq() -> int:
    return db.session.execute(text("SELECT seq FROM audit_head")).scalar()


def _failures() -> list[AuditEvent]:
    db.session.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == "audit.verify_failed")
    return list(db.session.execute(stmt.order_by(AuditEvent.seq)).scalars())


def _task(app):
    return app.extensions["certdesk_scheduler"].tasks["audit.verify"]


def test_the_scheduled_check_finds_a_removed_last_row_and_records_it_once(app, caplog):
    _add(5)
    _task(app).func()
    good = chaincheck.last()
    # (The last row is the check's own record that it passed.)
    assert good.ok and good.checked == _head_seq() - 1 and good.problem == ""
    assert _failures() == []

    # As the operations audit did: remove the last row of the trail, then start CertDesk.
    last = _head_seq()
    db.session.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
    db.session.commit()
    with caplog.at_level(logging.ERROR, logger="webapp.trailcheck.service"):
        _task(app).func()
    bad = chaincheck.last()
    assert not bad.ok and bad.seq == last and bad.at > good.at
    assert bad.problem == f"the rows after row {last - 1} were removed"
    assert any(
        r.levelno == logging.ERROR and "does not verify" in r.getMessage() for r in caplog.records
    )
    [failed] = _failures()
    assert (failed.actor_name, failed.object_type, failed.object_id, failed.outcome) == (
        "scheduler",
        "audit",
        str(last),
        "failure",
    )
    assert f'"seq": {last}' in failed.detail and "were removed" in failed.detail
    stmt = select(Job).where(Job.kind == chaincheck.JOB_KIND).order_by(Job.id)
    job = db.session.execute(stmt).scalars().all()
    # The job says where the outcome is, not what it is: operators see the jobs too.
    assert [j.state for j in job] == [SUCCEEDED, SUCCEEDED]
    assert "Admin › Audit" in job[1].message and "verify" not in job[1].message.split(":")[1]

    # The next day the same break (now read as "row N is missing", as events followed it) is not
    # recorded again; the check still says so and still logs it.
    caplog.clear()
    _add(2)
    with caplog.at_level(logging.ERROR, logger="webapp.trailcheck.service"):
        _task(app).func()
    again = chaincheck.last()
    assert not again.ok and again.seq == last and again.problem == f"row {last} is missing"
    assert len(_failures()) == 1
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_an_altered_row_is_found_and_another_break_is_recorded_again(app):
    _add(6)
    db.session.execute(text("UPDATE audit_event SET detail='{\"i\": 99}' WHERE seq = 5"))
    db.session.commit()
    _task(app).func()
    first = chaincheck.last()
    assert not first.ok and first.seq == 5 and first.problem == "row 5 was altered"
    assert [e.object_id for e in _failures()] == ["5"]
    _task(app).func()
    assert [e.object_id for e in _failures()] == ["5"]
    # An earlier row removed too: a new first break, recorded.
    db.session.execute(text("DELETE FROM audit_event WHERE seq = 2"))
    db.session.commit()
    _task(app).func()
    assert chaincheck.last().problem == "row 2 is missing"
    assert [e.object_id for e in _failures()] == ["5", "2"]


def test_the_check_runs_once_a_process_leads_then_daily(app, monkeypatch):
    sched = app.extensions["certdesk_scheduler"]
    monkeypatch.setattr(sched, "tasks", {"audit.verify": _task(app)})

    def checks() -> int:
        stmt = select(func.count()).where(Job.kind == chaincheck.JOB_KIND)
        return db.session.execute(stmt).scalar_one()

    # The last check ran a minute ago (before a restart): this process checks at once anyway.
    now = utcnow()
    sched._run_due(now - timedelta(minutes=1))
    app.extensions.pop(chaincheck._CHECKED_HERE)
    sched._run_due(now)
    assert checks() == 2
    sched._run_due(now + timedelta(hours=23))
    assert checks() == 2
    sched._run_due(now + timedelta(days=1))
    assert checks() == 3


def test_a_check_while_events_are_appended_verifies_and_holds_up_no_one(app, monkeypatch):
    """The walk reads in batches without holding a lock: a sign-in or a change recorded while it
    walks is not kept waiting, and the events appended meanwhile are checked too, not taken for
    removed rows."""
    _add(30)
    real = audit._rows_in_order
    waited = []

    def append_elsewhere():
        with app.app_context():  # another request: its own session and connection
            _add(3)
            db.session.remove()

    def rows(batch=1000, after=0):
        for i, e in enumerate(real(batch=10, **({"after": after} if after else {}))):
            if i == 15 and not waited:
                started = utcnow()
                t = threading.Thread(target=append_elsewhere)
                t.start()
                t.join(timeout=8)
                waited.append((utcnow() - started).total_seconds())
                assert not t.is_alive(), "the append waited for the check"
            yield e

    monkeypatch.setattr(audit, "_rows_in_order", rows)
    result = chaincheck.run("scheduler")
    assert waited and waited[0] < 2
    assert result.ok, result.problem
    assert result.checked == _head_seq() - 1 and chaincheck.last().ok


def test_a_check_started_while_one_runs_is_not_started_twice(app):
    _add(1)
    job = jobs.queue(chaincheck.JOB_KIND, "Verify the audit trail")
    db.session.commit()
    chaincheck.scheduled_check()
    checks = db.session.execute(select(Job).where(Job.kind == chaincheck.JOB_KIND)).scalars()
    assert [j.id for j in checks] == [job.id]


def test_a_removed_head_is_reported_not_a_crash(app, admin_client):
    """The head row (the chain's end, key and MAC) deleted: `certdesk audit verify` says so in a
    line, and the scheduled check stores the outcome that Admin › Audit shows."""
    _add(3)
    db.session.execute(text("DELETE FROM audit_head"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"Audit trail broken: {audit.HEAD_REMOVED}." in result.output
    _task(app).func()
    bad = chaincheck.last()
    assert bad is not None and not bad.ok and bad.problem == audit.HEAD_REMOVED
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "the head of the trail was removed" in page


def _passed() -> list[tuple]:
    db.session.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action == "audit.verify_passed")
    rows = db.session.execute(stmt.order_by(AuditEvent.seq)).scalars()
    return [(e.seq, e.actor_name, e.object_type, e.outcome, e.detail) for e in rows]


def test_a_passed_check_leaves_its_proof_in_the_trail(app):
    """Who checked the chain, when, and how many rows verified: the scheduled check and
    `certdesk audit verify` both record it when the chain verifies (and that row is itself
    checked by the next check); a check that fails records its break, not a pass."""
    _add(4)
    _task(app).func()
    first = _head_seq()
    assert _passed() == [(first, "scheduler", "audit", "success", f'{{"checked": {first - 1}}}')]
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and f"{first} events verified" in result.output
    assert _passed()[1:] == [(first + 1, "cli", "audit", "success", f'{{"checked": {first}}}')]
    assert audit.verify().ok

    db.session.execute(text("UPDATE audit_event SET detail='{}' WHERE seq = 2"))
    db.session.commit()
    _task(app).func()
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 1
    assert len(_passed()) == 2 and [e.object_id for e in _failures()] == ["2"]


def test_a_head_removed_after_the_check_leaves_its_result_and_a_line(app, monkeypatch):
    """The head row deleted between `certdesk audit verify`'s check and its record of the pass:
    the check's result stands (exit 0, said first), and the record the trail cannot take is said
    in a line, not a traceback; nothing is appended. An append without the head is refused by
    name, not with an error about a missing attribute."""
    _add(3)
    events = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    real = audit.verify

    def then_the_head_goes(*args, **kwargs):
        result = real(*args, **kwargs)
        db.session.execute(text("DELETE FROM audit_head"))
        db.session.commit()
        return result

    monkeypatch.setattr(audit, "verify", then_the_head_goes)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    assert result.output.startswith(f"Audit trail intact: {events} events verified.\n")
    assert f"The check was not recorded in the audit trail: {audit.HEAD_REMOVED}" in result.output
    assert "Traceback" not in result.output
    assert _passed() == []
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar() == events
    try:
        audit.record("test.event", actor="test")
    except audit.HeadRemoved as exc:
        assert str(exc) == audit.HEAD_REMOVED
    else:
        raise AssertionError("an event was appended to a trail without its head")
    db.session.rollback()
