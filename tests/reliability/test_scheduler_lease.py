"""Two app instances on one database: only one runs the periodic tasks; the other takes over."""

import threading
import time
from datetime import timedelta

from tests.conftest import make_app
from webapp.dbtypes import utcnow
from webapp.scheduler import Scheduler


def _two_apps(instance):
    apps = [
        make_app(
            instance,
            instance / "certdesk.db",
            SCHEDULER_TICK_SECONDS=0.2,
            SCHEDULER_LEASE_SECONDS=1,
        )
        for _ in range(2)
    ]
    schedulers = []
    for app in apps:
        s = Scheduler()  # one scheduler per process in real life; two here
        s.init_app(app)
        schedulers.append(s)
    return apps, schedulers


def test_only_one_leader_and_takeover_on_expiry(instance):
    apps, (a, b) = _two_apps(instance)
    now = utcnow()
    a.tick(now)
    b.tick(now)
    assert a.is_leader and not b.is_leader
    a.tick(now + timedelta(seconds=0.5))  # renews
    b.tick(now + timedelta(seconds=1.2))
    assert not b.is_leader
    # a stops renewing (process died): after the lease runs out b takes over
    b.tick(now + timedelta(seconds=3))
    assert b.is_leader
    a.tick(now + timedelta(seconds=3.1))
    assert not a.is_leader


def test_released_lease_is_taken_at_once(instance):
    apps, (a, b) = _two_apps(instance)
    a.tick()
    assert a.is_leader
    with apps[0].app_context():
        a.release()
    b.tick()
    assert b.is_leader


def test_two_running_schedulers_run_a_task_once_per_interval(instance):
    apps, schedulers = _two_apps(instance)
    runs = []
    lock = threading.Lock()
    for i, s in enumerate(schedulers):

        def task(i=i):
            with lock:
                runs.append(i)

        s.register("count", task, lambda: timedelta(seconds=1))
    for s in schedulers:
        s.start()
    try:
        time.sleep(2.6)
    finally:
        for s in schedulers:
            s.shutdown()
    assert len(set(runs)) == 1, runs  # one process did all the runs
    assert 2 <= len(runs) <= 4, runs  # about once per second, never doubled


def test_a_task_due_at_start_runs_at_a_new_processs_first_tick_then_by_its_interval(instance):
    """A restart within the interval: the new process runs an ``at_start`` task at once (what
    the last process left carries on), the others wait for their interval."""
    apps, (old, new) = _two_apps(instance)
    runs = []
    for s in (old, new):
        s.register("hourly", lambda: runs.append("hourly"), lambda: timedelta(hours=1))
        s.register(
            "at_start", lambda: runs.append("at_start"), lambda: timedelta(hours=1), at_start=True
        )
    now = utcnow()
    old.tick(now)
    assert sorted(runs) == ["at_start", "hourly"]
    with apps[0].app_context():
        old.release()  # an orderly stop
    runs.clear()
    new.tick(now + timedelta(seconds=5))
    assert runs == ["at_start"]
    new.tick(now + timedelta(seconds=10))
    new.tick(now + timedelta(minutes=30))
    assert runs == ["at_start"]  # then once an hour, like any task
    new.tick(now + timedelta(hours=1, seconds=6))
    assert sorted(runs) == ["at_start", "at_start", "hourly"]
