"""Small periodic upkeep: failed-login rows, and jobs whose process died."""

from datetime import timedelta

from webapp.auth import service as auth
from webapp.jobs import service as jobs


def register_periodic(scheduler, app) -> None:
    scheduler.register("housekeeping", auth.prune_login_attempts, lambda: timedelta(hours=1))
    scheduler.register("jobs.recover", jobs.recover, lambda: timedelta(minutes=1))
