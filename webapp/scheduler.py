"""Periodic work and the leader lease.

Every process runs an APScheduler "tick"; only the holder of the lease row runs periodic tasks, so a
deployment with several workers or hosts runs each task once. The lease expires when its holder
stops renewing it, and another process takes over at its next tick. Each task's last run is kept in
the database, so intervals changed in Admin > Settings apply at once and a new leader does not rerun
what the old one just did.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.extensions import db

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


class SchedulerLease(db.Model):
    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def live_lease() -> SchedulerLease | None:
    """The scheduler's lease while a running CertDesk holds it (None: no portal is running, or
    it runs without its scheduler, or the last one stopped without releasing it)."""
    return db.session.execute(
        select(SchedulerLease).where(SchedulerLease.expires_at > utcnow()).limit(1)
    ).scalar()


class PeriodicRun(db.Model):
    __tablename__ = "periodic_run"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass
class PeriodicTask:
    name: str
    func: Callable[[], None]
    # Read at every tick, so a settings change applies at once. None: the task is turned off; it
    # is not run, and its last run stays where it was, so that once turned on it is due as soon
    # as an interval has passed since it last ran (at the next tick, if it never ran).
    interval: Callable[[], timedelta | None]
    at_start: bool = False  # also due at the first tick this process leads, whatever its last run


class Scheduler:
    def __init__(self):
        self.app = None
        self.holder = ""
        self.new_identity()
        self.tasks: dict[str, PeriodicTask] = {}
        self.is_leader = False
        self.last_tick_at: datetime | None = None
        # Whether the last tick renewed the lease and ran what was due (None: none yet). A tick
        # fails when the database takes no writes (read-only, the disk full), which a read of
        # it does not show: /healthz says so.
        self.last_tick_ok: bool | None = None
        self._aps = None

    def new_identity(self) -> None:
        """Name this process as the lease holder and job runner (again in a forked worker)."""
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ran_here: set[str] = set()  # the tasks this process has run as leader

    def init_app(self, app) -> None:
        self.app = app
        app.extensions["certdesk_scheduler"] = self

    def register(
        self,
        name: str,
        func: Callable[[], None],
        interval: Callable[[], timedelta | None],
        *,
        at_start: bool = False,
    ):
        """Run ``func`` every ``interval()`` (read at each tick; None while the task is turned
        off: see PeriodicTask); with ``at_start``, also at the
        first tick at which this process leads, so a start picks up at once what the last
        process left (a restart within the interval would otherwise wait for it)."""
        self.tasks[name] = PeriodicTask(name, func, interval, at_start)

    @property
    def running(self) -> bool:
        return self._aps is not None and self._aps.running

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        if self.running:
            return
        self._aps = BackgroundScheduler(timezone="UTC", daemon=True)
        self._aps.add_job(
            self.tick,
            "interval",
            seconds=self.app.config["SCHEDULER_TICK_SECONDS"],
            next_run_time=utcnow(),
            id="tick",
            max_instances=1,
            coalesce=True,
        )
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=True)
        self._aps = None
        with self.app.app_context():
            self.release()

    def tick(self, now: datetime | None = None) -> None:
        """Renew or take the lease; if this process leads, run the tasks that are due."""
        with self.app.app_context():
            now = now or utcnow()
            self.last_tick_at = now
            try:
                from webapp.jobs import service as jobs

                jobs.heartbeat(self.holder, now)
                self.is_leader = self.acquire(now)
                if self.is_leader:
                    self._run_due(now)
                self.last_tick_ok = True
            except Exception:
                self.last_tick_ok = False
                db.session.rollback()
                log.exception("scheduler tick failed")
            finally:
                db.session.remove()

    def acquire(self, now: datetime) -> bool:
        ttl = timedelta(seconds=self.app.config["SCHEDULER_LEASE_SECONDS"])
        res = db.session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LEASE_NAME)
            .where(or_(SchedulerLease.holder == self.holder, SchedulerLease.expires_at < now))
            .values(holder=self.holder, expires_at=now + ttl)
        )
        if res.rowcount == 1:
            db.session.commit()
            return True
        db.session.rollback()
        if db.session.get(SchedulerLease, LEASE_NAME) is not None:
            return False
        try:
            db.session.add(
                SchedulerLease(name=LEASE_NAME, holder=self.holder, expires_at=now + ttl)
            )
            db.session.commit()
            return True
        except IntegrityError:  # another process created it first
            db.session.rollback()
            return False

    def release(self) -> None:
        """Give the lease up at shutdown so another process takes over without waiting."""
        try:
            db.session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == self.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not release the scheduler lease")
        self.is_leader = False

    def _run_due(self, now: datetime) -> None:
        for task in self.tasks.values():
            interval = task.interval()
            if interval is None:
                continue
            last = db.session.get(PeriodicRun, task.name)
            first_here = task.at_start and task.name not in self.ran_here
            if last is not None and now - last.last_run_at < interval and not first_here:
                continue
            self.ran_here.add(task.name)
            if last is None:
                db.session.add(PeriodicRun(name=task.name, last_run_at=now))
            else:
                last.last_run_at = now
            db.session.commit()
            try:
                task.func()
            except Exception:
                db.session.rollback()
                log.exception("periodic task %s failed", task.name)


scheduler = Scheduler()
