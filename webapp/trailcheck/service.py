"""The audit trail's own check: verify the keyed chain daily (and once after a start), keep the
outcome where every page can read it cheaply, and make a broken trail loud.

A check runs as a background job (``audit.verify``, about 3 s at 200,000 events) started by the
scheduler or by an administrator's Verify now. It only reads while it walks the chain (see
:func:`webapp.audit.service.verify`), then in one short transaction stores its outcome in the
setting ``audit.chain_check`` and appends to the trail itself ``audit.verify_passed`` (how many
rows verified) or, for a break not reported before (a new first bad row), ``audit.verify_failed``.
Every failed check is logged at ERROR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from webapp.audit import service as audit
from webapp.dbtypes import utcnow
from webapp.extensions import db, take_turn
from webapp.jobs import service as jobs
from webapp.security import rbac
from webapp.settings import service as settings

log = logging.getLogger(__name__)

STATE_KEY = "audit.chain_check"  # the last check's outcome (JSON), read by Admin › Audit
CHECK_EVERY = timedelta(days=1)
RECORD_TURN = int.from_bytes(b"CDAUDCHK")  # one check's outcome stored at a time
_CHECKED_HERE = "audit_chain_checked"  # app.extensions: this process has run its start check


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of the last check: when it started, whether the trail verified, how many
    events it checked, and where and how it broke."""

    at: datetime
    ok: bool
    checked: int
    seq: int | None = None
    problem: str = ""


def last() -> ChainCheck | None:
    """The last check's outcome; None while no check has run (one primary-key read)."""
    state = settings.get(STATE_KEY)
    if not state:
        return None
    return ChainCheck(
        at=datetime.fromisoformat(state["at"]),
        ok=bool(state["ok"]),
        checked=int(state["checked"]),
        seq=state.get("seq"),
        problem=state.get("problem") or "",
    )


def run(actor, progress=None) -> audit.VerifyResult:
    """Verify the chain now and store the outcome (committed). ``actor``: the user who asked,
    or "scheduler". A break is recorded in the trail once: again only when the first bad row
    is another one, or after a check that verified."""
    db.session.commit()  # the walk reads outside any transaction that writes (no lock held)
    started = utcnow()
    result = audit.verify(progress)
    if not result.ok:
        log.error(
            "The audit trail does not verify: %s (%d events checked). Run `certdesk audit "
            "verify` and compare the database with its backups.",
            result.problem,
            result.checked,
        )
    take_turn(RECORD_TURN)
    db.session.expire_all()  # the stored outcome as the last check left it, not as read before
    stored = settings.get(STATE_KEY) or {}
    if stored and datetime.fromisoformat(stored["at"]) > started:
        db.session.rollback()  # a check that started later has stored a newer outcome
        return result
    reported = stored.get("reported_seq")
    if result.ok:
        reported = None
        # The proof that the check ran and passed, and how far: appended after the rows it
        # checked, it is itself checked by the next one.
        record_passed(actor, result)
    elif reported != result.seq and audit.head_present():
        # (Without its head the trail takes no event: the outcome stored below says so.)
        audit.record(
            "audit.verify_failed",
            actor=actor,
            object_type="audit",
            object_id=result.seq,
            outcome="failure",
            detail={"seq": result.seq, "problem": result.problem, "checked": result.checked},
        )
        reported = result.seq
    settings.put(
        STATE_KEY,
        {
            "at": started.isoformat(),
            "ok": result.ok,
            "checked": result.checked,
            "seq": result.seq,
            "problem": result.problem,
            "reported_seq": reported,
        },
    )
    db.session.commit()
    return result


def record_passed(actor, result: audit.VerifyResult) -> None:
    """Append ``audit.verify_passed`` (in the caller's transaction): who checked the chain, and
    how many rows verified (rows 1 to ``checked``)."""
    audit.record(
        "audit.verify_passed",
        actor=actor,
        object_type="audit",
        detail={"checked": result.checked},
    )


def try_record_passed(actor, result: audit.VerifyResult) -> str:
    """Record a check that passed (:func:`record_passed`) in a transaction of its own, committed;
    a record the database refuses (one this user may only read, a read-only replica) is rolled
    back and does not change the check's outcome; so is one the trail cannot take, its head row
    removed since the check. Returns "" once recorded, else why not, in a line."""
    try:
        record_passed(actor, result)
        db.session.commit()
    except (SQLAlchemyError, audit.HeadRemoved) as exc:
        db.session.rollback()
        why = str(getattr(exc, "orig", None) or exc).strip()
        return why.splitlines()[0] if why else type(exc).__name__
    return ""


def _run_job(ctx):
    """The job body. Its message says where the outcome is, not what it is: everyone who may
    see the jobs sees it, and only administrators and auditors read the trail's state."""
    run(ctx.actor, progress=lambda done, total: ctx.progress(done, total, "Verifying…"))
    return {"message": "Checked the audit trail: the outcome is shown on Admin › Audit."}


JOB_KIND = jobs.register("audit.verify", _run_job, permission=rbac.AUDIT_VERIFY)


class CheckRunning(Exception):
    """A check is already under way (``job``)."""

    def __init__(self, job):
        super().__init__(f"A check of the audit trail is already running (job {job.id}).")
        self.job = job


def start(actor, reason: str = ""):
    """Start a check as a background job; returns the job. ``actor``: the administrator who
    asked (recorded as ``audit.verify_requested``), or None for the scheduler. Raises
    CheckRunning while one is queued or running."""
    if actor is not None:
        rbac.check(actor, rbac.AUDIT_VERIFY)
    jobs.hold_starts()
    running = jobs.unfinished_of_kind(JOB_KIND)
    if running:
        db.session.rollback()
        raise CheckRunning(running[0])
    title = "Verify the audit trail" + (f" ({reason})" if reason else "")
    job = jobs.queue(JOB_KIND, title, actor=actor)
    if actor is not None:
        audit.record("audit.verify_requested", actor=actor, object_type="audit", detail={})
    db.session.commit()
    return jobs.submit(job)


def scheduled_check() -> None:
    """The periodic task: start a check (skipped while one runs)."""
    current_app.extensions[_CHECKED_HERE] = True
    try:
        start(None, reason="scheduled")
    except CheckRunning:
        log.info("scheduled audit trail check skipped: a check is already running")


def check_interval() -> timedelta:
    """Daily; and due at once at the first tick this process leads (a database restored or
    edited while CertDesk was stopped is checked as soon as it starts)."""
    return CHECK_EVERY if current_app.extensions.get(_CHECKED_HERE) else timedelta(0)


def register_periodic(scheduler, app) -> None:
    scheduler.register("audit.verify", scheduled_check, check_interval)
