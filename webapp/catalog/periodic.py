"""The scheduled sync of every enabled credential (interval from Admin > Settings)."""

from webapp.catalog import service


def register_periodic(scheduler, app) -> None:
    scheduler.register("catalog.sync", service.scheduled_sync, service.sync_interval)
