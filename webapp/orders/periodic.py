"""The scheduled work of the orders feature: the status poller, the reconciler and the
scheduled Import Existing Orders (off unless turned on in Admin > Settings)."""

from datetime import timedelta

from webapp.orders import importing, polling


def register_periodic(scheduler, app) -> None:
    scheduler.register("orders.poll", polling.scheduled_poll, polling.poll_interval)
    # Every minute, and at once after a start: answers lost while CertDesk was down settle then.
    scheduler.register(
        "orders.reconcile",
        polling.scheduled_reconcile,
        lambda: timedelta(minutes=1),
        at_start=True,
    )
    scheduler.register("orders.import", importing.scheduled_import, importing.import_interval)
