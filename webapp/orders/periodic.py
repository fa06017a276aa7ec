"""The scheduled work of the orders feature: the status poller and the reconciler."""

from datetime import timedelta

from webapp.orders import polling


def register_periodic(scheduler, app) -> None:
    scheduler.register("orders.poll", polling.scheduled_poll, polling.poll_interval)
    # Every minute, and at once after a start: answers lost while CertDesk was down settle then.
    scheduler.register(
        "orders.reconcile",
        polling.scheduled_reconcile,
        lambda: timedelta(minutes=1),
        at_start=True,
    )
