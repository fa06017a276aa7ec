"""Background jobs: a registered function runs in a worker thread and reports progress on its row.

A feature registers each kind of job once, ``register(kind, func)``, and starts one with
``start(kind, title, actor=..., **params)``: the row (with its JSON ``params``) is committed, then
``func(ctx, **params)`` runs in the process's worker pool inside an app context. ``ctx.actor`` is
the user who started it, or the name "scheduler". ``ctx.progress(done, total, message)`` commits
the session, so a job calls it between batches of work it is happy to keep; ``ctx.checkpoint``
and ``ctx.save_checkpoint(value)`` let a job that runs again after an interruption carry on from
where it stopped. The function's return value (a dict of counts) becomes the job's result; a
``JobError`` becomes its message; any other exception is logged and shown as an unexpected
failure.

A job belongs to the process whose pool holds it (``runner``) from the moment it is queued. Every
process beats the heartbeat of its jobs, queued or running, at each scheduler tick; the leader's
:func:`recover` queues again (up to ``MAX_ATTEMPTS`` runs in all) the jobs whose process died,
or fails those whose kind cannot run again. A job waiting for a free worker in a live process is
not dead, however long it waits.

A process that stops in order (:func:`stop_pool`) does not wait for a long job to end: a job of a
kind that can resume stops at its next ``progress`` (what it committed is kept; a job saves its
checkpoint first) and, like the jobs still waiting for a worker, is handed back, queued and held
by no process, without counting as a run; the next start's :func:`recover` carries it on. Jobs
that cannot resume run to their end first.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from webapp.dbtypes import utcnow
from webapp.extensions import db, take_turn
from webapp.jobs.models import FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job
from webapp.security import rbac
from webapp.settings import service as settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3

WORKERS = settings.register(
    "jobs.workers",
    2,
    "Background workers",
    "Jobs (syncs, imports, status checks) that run at once in each CertDesk process.",
    minimum=1,
    maximum=16,
)


class JobError(Exception):
    """A failure with a message a person can act on; it becomes the job's error text."""


class _Stopping(Exception):
    """Raised in a resumable job at its next ``progress`` once this process is stopping."""


_stopping = threading.Event()  # set once, by stop_pool, when this process stops in order


def process_stopping() -> bool:
    """This process is stopping in order. A job that cannot resume and takes long (a bulk action
    on thousands of orders) stops between two of its steps rather than be cut short in one."""
    return _stopping.is_set()


@dataclass(frozen=True)
class JobKind:
    kind: str
    func: Callable
    resumable: bool
    permission: str | None = None
    interrupted: str = ""


_KINDS: dict[str, JobKind] = {}


def register(
    kind: str,
    func: Callable,
    *,
    resumable: bool = True,
    permission: str | None = None,
    interrupted: str = "",
) -> str:
    """Declare a kind of job. ``resumable``: it may run again after an interruption (it is
    idempotent, or carries on from its checkpoint). ``permission``: what the person who started
    one must still hold while it runs: once they are disabled or lose it, the job does not start,
    or stops at its next ``progress`` (what it did before is kept). ``interrupted``: for a kind
    that cannot resume, what a person does after its process died during it (where things stand
    and how to go on), added to the job's error. Returns ``kind``."""
    _KINDS[kind] = JobKind(kind, func, resumable, permission, interrupted)
    return kind


def still_allowed(actor, permission: str) -> bool:
    """Whether the one who started a job holds ``permission`` now: read afresh from the database,
    as an administrator may have disabled them or changed their role while the job waited or ran.
    CertDesk's own work (an actor named by a string, e.g. "scheduler") always is."""
    if isinstance(actor, str):
        return True
    actor = getattr(actor, "_get_current_object", lambda: actor)()  # Flask-Login's current_user
    db.session.refresh(actor)
    return rbac.has_permission(actor, permission)


class JobContext:
    def __init__(self, job: Job):
        self.job_id = job.id
        self.actor = job.started_by if job.started_by_id else "scheduler"
        self.attempt = job.attempts
        self.checkpoint = json.loads(job.checkpoint) if job.checkpoint else None
        spec = _KINDS.get(job.kind)
        self.resumable = spec is not None and spec.resumable
        self.permission = spec.permission if spec is not None else None

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        values = {"progress": done, "heartbeat_at": utcnow()}
        if total is not None:
            values["total"] = total
        if message is not None:
            values["message"] = message[:2000]
        db.session.execute(update(Job).where(Job.id == self.job_id).values(**values))
        db.session.commit()
        self._stop_if_stopping()
        self.stop_unless_allowed()

    def stop_unless_allowed(self) -> None:
        """Raise JobError when the person who started the job no longer holds its kind's
        permission (see :func:`still_allowed`)."""
        if self.permission is not None and not still_allowed(self.actor, self.permission):
            raise JobError(
                f"Stopped: {self.actor.username} may no longer do this (their account or role "
                "changed). What was done before is kept."
            )

    def save_checkpoint(self, value) -> None:
        """Remember how far the job got (JSON), committed with the session's other work."""
        self.checkpoint = value
        db.session.execute(
            update(Job)
            .where(Job.id == self.job_id)
            .values(checkpoint=json.dumps(value), heartbeat_at=utcnow())
        )
        db.session.commit()

    @property
    def stopping(self) -> bool:
        """This process is stopping and the job will stop at its next ``progress``: a job that
        waits long between them can commit what it has now."""
        return self.resumable and _stopping.is_set()

    def _stop_if_stopping(self) -> None:
        if self.stopping:
            raise _Stopping


def _executor(app) -> ThreadPoolExecutor:
    """The process's worker pool, sized by the "Background workers" setting (a change takes
    effect for the next job: running jobs finish in the old pool)."""
    wanted = int(settings.get(WORKERS))
    current = app.extensions.get("certdesk_jobs")
    if current is None or current[0] != wanted:
        if current is not None:
            current[1].shutdown(wait=False)
        current = (wanted, ThreadPoolExecutor(wanted, thread_name_prefix="job"))
        app.extensions["certdesk_jobs"] = current
    return current[1]


def _runner() -> str:
    return current_app.extensions["certdesk_scheduler"].holder


def start(kind: str, title: str, *, actor=None, **params) -> Job:
    """Record a queued job (committed) and hand it to the worker pool; returns the job row.
    ``params`` must be JSON values; ``actor`` a User, or None for the scheduler."""
    job = queue(kind, title, actor=actor, **params)
    db.session.commit()
    return submit(job)


STARTS_TURN = int.from_bytes(b"CDJOBRUN")  # see hold_starts


def hold_starts() -> None:
    """For a job that must not start while one like it runs: call this first, then read the
    unfinished jobs, then :func:`queue` the new one, commit and :func:`submit` it. From here to
    the commit (or rollback) no other process or thread gets past this call, so of two requests
    at once the second sees the first's job."""
    take_turn(STARTS_TURN)


def queue(kind: str, title: str, *, actor=None, **params) -> Job:
    """Record a queued job in the session's transaction: the caller commits, then submits it."""
    if kind not in _KINDS:
        raise KeyError(f"unknown job kind {kind!r}")
    job = Job(
        kind=kind,
        title=title[:200],
        state=QUEUED,
        params=json.dumps(params),
        started_by_id=getattr(actor, "id", None),
        runner=_runner(),  # this process's pool holds it: its heartbeat keeps the job alive
        heartbeat_at=utcnow(),
    )
    db.session.add(job)
    db.session.flush()
    return job


def submit(job: Job) -> Job:
    """Hand a committed queued job to the worker pool; returns the row as it is now."""
    _submit(job.id)
    db.session.refresh(job)
    return job


def _submit(job_id: int) -> None:
    app = current_app._get_current_object()
    if _stopping.is_set():
        _hand_back(Job.id == job_id)  # queued for the next start
        return
    if app.config["JOBS_RUN_INLINE"]:
        run(job_id, _runner())
    else:
        _executor(app).submit(_run_in_app, app, job_id, _runner())


def _run_in_app(app, job_id, runner):
    with app.app_context():  # its teardown closes the thread's database session
        run(job_id, runner)


def run(job_id: int, runner: str) -> None:
    """Claim a queued job and run it to its end (nothing happens if another process has it)."""
    now = utcnow()
    claimed = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED)
        .values(
            state=RUNNING,
            started_at=now,
            heartbeat_at=now,
            runner=runner,
            attempts=Job.attempts + 1,
        )
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    job = db.session.get(Job, job_id)
    spec = _KINDS.get(job.kind)
    if spec is None:
        _finish(job_id, FAILED, error=f"No job of kind {job.kind!r} is known to this version.")
        return
    try:
        ctx = JobContext(job)
        ctx.stop_unless_allowed()
        result = spec.func(ctx, **json.loads(job.params or "{}")) or {}
    except _Stopping:
        db.session.rollback()
        _hand_back(Job.id == job_id, attempts=Job.attempts - 1)  # a pause is not a failed run
    except JobError as exc:
        db.session.rollback()
        _finish(job_id, FAILED, error=str(exc))
    except Exception:
        db.session.rollback()
        log.exception("job %s (%s) failed", job_id, job.kind)
        _finish(job_id, FAILED, error="Unexpected error; the server log has the details.")
    else:
        message = result.pop("message", None) if isinstance(result, dict) else None
        _finish(job_id, SUCCEEDED, result=result, message=message)


def _finish(job_id, state, *, error="", result=None, message=None):
    values = {"state": state, "finished_at": utcnow(), "error": error[:4000]}
    if result is not None:
        values["result"] = json.dumps(result)
    if message is not None:
        values["message"] = message[:2000]
    db.session.execute(update(Job).where(Job.id == job_id).values(**values))
    db.session.commit()


def _hand_back(*where, **values) -> None:
    """Queue the jobs ``where`` says again, held by no process: the next start resumes them."""
    db.session.execute(
        update(Job)
        .where(*where, Job.state.in_((QUEUED, RUNNING)))
        .values(
            state=QUEUED,
            runner="",
            heartbeat_at=None,
            message="Paused while CertDesk stopped; it carries on when CertDesk starts again.",
            **values,
        )
    )
    db.session.commit()


def stop_pool(app) -> None:
    """At an orderly stop: resumable jobs end at their next progress, the others run to the end,
    and every job this process held is handed back for the next start (see the module text)."""
    _stopping.set()
    current = app.extensions.pop("certdesk_jobs", None)
    if current is not None:
        current[1].shutdown(wait=True, cancel_futures=True)
    with app.app_context():
        _hand_back(Job.state == QUEUED, Job.runner == app.extensions["certdesk_scheduler"].holder)


def get(job_id: int) -> Job | None:
    return db.session.get(Job, job_id)


def result_of(job: Job) -> dict:
    return json.loads(job.result) if job.result else {}


def query():
    """Every job, newest first (the Jobs page, paged)."""
    return select(Job).order_by(Job.id.desc())


# Finished jobs are kept this long, then forgotten (the audit trail keeps who started what).
JOBS_KEPT = timedelta(days=90)


def prune(now=None) -> int:
    """Forget the finished jobs started more than JOBS_KEPT ago (through the index on
    ``created_at``); queued and running ones stay, whatever their age."""
    cutoff = (now or utcnow()) - JOBS_KEPT
    res = db.session.execute(delete(Job).where(Job.created_at < cutoff, Job.state.in_(FINISHED)))
    db.session.commit()
    return res.rowcount


def recent(limit: int = 10) -> list[Job]:
    return list(db.session.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars())


def recent_of_kind(kind: str, limit: int = 20) -> list[Job]:
    """The newest jobs of one kind, newest first."""
    stmt = select(Job).where(Job.kind == kind).order_by(Job.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def params_of(job: Job) -> dict:
    return json.loads(job.params) if job.params else {}


def checkpoint_of(job: Job):
    return json.loads(job.checkpoint) if job.checkpoint else None


def unfinished_of_kind(kind: str) -> list[Job]:
    """The queued and running jobs of one kind, newest first."""
    stmt = select(Job).where(Job.kind == kind, Job.state.in_((QUEUED, RUNNING)))
    return list(db.session.execute(stmt.order_by(Job.id.desc())).scalars())


def running_of_kind(kind: str) -> Job | None:
    stmt = select(Job).where(Job.kind == kind, Job.state.in_((QUEUED, RUNNING)))
    return db.session.execute(stmt.order_by(Job.id.desc()).limit(1)).scalar()


def heartbeat(runner: str, now=None) -> None:
    """Mark the jobs this process holds, running or waiting in its pool for a free worker, as
    alive (every process, at every tick)."""
    db.session.execute(
        update(Job)
        .where(Job.state.in_((QUEUED, RUNNING)), Job.runner == runner)
        .values(heartbeat_at=now or utcnow())
    )
    db.session.commit()


def recover(now=None, *, crashed: bool = True) -> dict:
    """Jobs handed back at an orderly stop (queued, held by no process) are queued again in this
    process at once, whatever their age, those that cannot resume too (they never ran): their
    card says they carry on when CertDesk starts again. With ``crashed``, so are jobs whose
    process died (no heartbeat for ``JOBS_STALE_SECONDS``, several scheduler ticks, whether they
    were running or still queued in its pool) when their kind can resume and they have runs left;
    they fail otherwise. Each change is made only if the job is still as it was judged (a late
    heartbeat, or its end, wins). Returns counts."""
    now = now or utcnow()
    stale_after = timedelta(seconds=current_app.config["JOBS_STALE_SECONDS"])
    handed_back = (Job.state == QUEUED) & (Job.runner == "")
    silent = (
        Job.state.in_((QUEUED, RUNNING))
        & (Job.created_at < now - stale_after)
        & ((Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < now - stale_after))
    )
    which = (handed_back | silent) if crashed else handed_back
    stale = list(db.session.execute(select(Job).where(which)).scalars())
    counts = {"requeued": 0, "failed": 0}
    for job in stale:
        spec = _KINDS.get(job.kind)
        as_judged = (
            Job.id == job.id,
            Job.state == job.state,
            Job.runner == job.runner,
            Job.heartbeat_at == job.heartbeat_at,
        )
        never_ran = job.state == QUEUED and not job.runner and job.attempts == 0
        runs_left = spec is not None and spec.resumable and job.attempts < MAX_ATTEMPTS
        if spec is not None and (runs_left or never_ran):
            moved = db.session.execute(
                update(Job)
                .where(*as_judged)
                .values(state=QUEUED, runner=_runner(), heartbeat_at=now, message="Resuming…")
            ).rowcount
            db.session.commit()
            if moved:
                counts["requeued"] += 1
                _submit(job.id)
            continue
        if job.state == QUEUED and job.attempts == 0:
            reason = "Not started: the server stopped before the job's turn came; start it again."
        elif spec is None or not spec.resumable:
            reason = "Interrupted: the server stopped during the job."
            if spec is not None and spec.interrupted:
                reason += " " + spec.interrupted
        else:
            reason = f"Interrupted {job.attempts} times; start it again."
        failed = db.session.execute(
            update(Job).where(*as_judged).values(state=FAILED, finished_at=now, error=reason)
        ).rowcount
        db.session.commit()
        counts["failed"] += failed
    return counts
