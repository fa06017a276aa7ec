"""Small periodic upkeep: failed-login rows and jobs whose worker died."""

from datetime import timedelta

from webapp.auth import service as auth
from webapp.jobs import service as jobs


def run() -> None:
    auth.prune_login_attempts()
    jobs.fail_stale()


def register_periodic(scheduler, app) -> None:
    scheduler.register("housekeeping", run, lambda: timedelta(hours=1))
