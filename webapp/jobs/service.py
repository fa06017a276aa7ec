"""Background jobs: a service function runs in a worker thread and reports progress on its row.

``start(kind, title, func, **kwargs)`` records the job and runs ``func(ctx, **kwargs)`` in the
process's worker pool, inside an app context. ``ctx.progress(done, total, message)`` commits the
session, so a job should call it between batches of work it is happy to keep. The function's
return value (a dict of counts) becomes the job's result; a ``JobError`` becomes its message;
any other exception is logged and shown as an unexpected failure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Job

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=10)


class JobError(Exception):
    """A failure with a message a person can act on; it becomes the job's error text."""


class JobContext:
    def __init__(self, job_id: int):
        self.job_id = job_id

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        values = {"progress": done, "heartbeat_at": utcnow()}
        if total is not None:
            values["total"] = total
        if message is not None:
            values["message"] = message
        db.session.execute(update(Job).where(Job.id == self.job_id).values(**values))
        db.session.commit()


def _executor(app) -> ThreadPoolExecutor:
    ex = app.extensions.get("certdesk_jobs")
    if ex is None:
        ex = ThreadPoolExecutor(app.config["JOBS_MAX_WORKERS"], thread_name_prefix="job")
        app.extensions["certdesk_jobs"] = ex
    return ex


def start(kind: str, title: str, func: Callable, *, actor=None, **kwargs) -> Job:
    """Record a queued job (committed) and hand it to the worker pool; returns the job row."""
    job = Job(kind=kind, title=title, state=QUEUED, started_by_id=actor.id if actor else None)
    db.session.add(job)
    db.session.commit()
    app = current_app._get_current_object()
    if app.config["JOBS_RUN_INLINE"]:
        run(job.id, func, kwargs)
        db.session.refresh(job)
    else:
        _executor(app).submit(_run_in_app, app, job.id, func, kwargs)
    return job


def _run_in_app(app, job_id, func, kwargs):
    with app.app_context():  # its teardown closes the thread's database session
        run(job_id, func, kwargs)


def run(job_id: int, func: Callable, kwargs: dict) -> None:
    now = utcnow()
    db.session.execute(
        update(Job).where(Job.id == job_id).values(state=RUNNING, started_at=now, heartbeat_at=now)
    )
    db.session.commit()
    try:
        result = func(JobContext(job_id), **kwargs) or {}
    except JobError as exc:
        db.session.rollback()
        _finish(job_id, FAILED, error=str(exc))
    except Exception:
        db.session.rollback()
        log.exception("job %s failed", job_id)
        _finish(job_id, FAILED, error="Unexpected error; the server log has the details.")
    else:
        message = result.pop("message", None) if isinstance(result, dict) else None
        _finish(job_id, SUCCEEDED, result=result, message=message)


def _finish(job_id, state, *, error="", result=None, message=None):
    values = {"state": state, "finished_at": utcnow(), "error": error}
    if result is not None:
        values["result"] = json.dumps(result)
    if message is not None:
        values["message"] = message
    db.session.execute(update(Job).where(Job.id == job_id).values(**values))
    db.session.commit()


def get(job_id: int) -> Job | None:
    return db.session.get(Job, job_id)


def result_of(job: Job) -> dict:
    return json.loads(job.result) if job.result else {}


def recent(limit: int = 10) -> list[Job]:
    return list(db.session.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars())


def running_of_kind(kind: str) -> Job | None:
    stmt = select(Job).where(Job.kind == kind, Job.state.in_((QUEUED, RUNNING)))
    return db.session.execute(stmt.order_by(Job.id.desc()).limit(1)).scalar()


def fail_stale(now=None) -> int:
    """Jobs whose worker died (no heartbeat for a while) are marked failed, not left spinning."""
    now = now or utcnow()
    res = db.session.execute(
        update(Job)
        .where(Job.state.in_((QUEUED, RUNNING)), Job.created_at < now - STALE_AFTER)
        .where((Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < now - STALE_AFTER))
        .values(
            state=FAILED, finished_at=now, error="Interrupted: the server stopped during the job."
        )
    )
    db.session.commit()
    return res.rowcount
