"""A real `certdesk serve` with Scheduled Import Existing Orders turned on imports the account's
orders by itself: the scheduler's tick starts the import as a background job in the server's
worker pool, which brings in the orders and their certificates, audited as the scheduler's."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import link_sandbox, make_app
from tests.live import start_server, stop_server, wait_until
from webapp.audit.models import AuditEvent
from webapp.certificates.models import Certificate
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import importing
from webapp.orders.models import Order
from webapp.settings import service as settings

FAST = {"CERTDESK_SCHEDULER_TICK_SECONDS": "1", "CERTDESK_SCHEDULER_LEASE_SECONDS": "2"}


def _imports(app) -> list[tuple[str, str | None, int | None]]:
    """(state, error, user id) of every import job."""
    with app.app_context():
        rows = db.session.execute(
            select(Job.state, Job.error, Job.started_by_id).where(Job.kind == importing.JOB_KIND)
        ).all()
        db.session.remove()
        return [tuple(r) for r in rows]


def test_a_server_with_the_schedule_on_imports_the_orders_by_itself(
    instance, sandbox, fast_clients
):
    sandbox.seed(certificates=12, seed=4)
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        link_sandbox(user, sandbox)
        settings.put(importing.IMPORT_INTERVAL_HOURS, 24)
        db.session.commit()
        assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 0
        db.session.remove()

    server = start_server(instance, FAST)
    try:
        wait_until(
            "the scheduled import to end",
            lambda: any(state in ("succeeded", "failed") for state, _e, _u in _imports(app)),
            seconds=90,
        )
    finally:
        stop_server(server)
    [(state, error, user_id)] = _imports(app)
    assert state == "succeeded", error
    assert user_id is None  # started by the scheduler, not by a user
    with app.app_context():
        orders = db.session.execute(select(func.count()).select_from(Order)).scalar_one()
        certs = db.session.execute(select(func.count()).select_from(Certificate)).scalar_one()
        assert orders > 0 and certs > 0
        events = db.session.execute(
            select(AuditEvent.action, AuditEvent.actor_name).where(
                AuditEvent.action.in_(("order.import.start", "order.import"))
            )
        ).all()
        assert {action for action, _who in events} == {"order.import.start", "order.import"}
        assert {who for _action, who in events} == {"scheduler"}
        db.session.remove()
