"""The scheduled work of the orders feature: the status poller and the reconciler."""

from webapp.orders import polling


def register_periodic(scheduler, app) -> None:
    scheduler.register("orders.poll", polling.scheduled_poll, polling.poll_interval)
    scheduler.register("orders.reconcile", polling.scheduled_reconcile, polling.reconcile_interval)
