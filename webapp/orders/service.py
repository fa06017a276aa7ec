"""CA orders: placed, imported and followed through the CA connector interface (webapp.cas).

The feature is split by job: ``records`` (order rows from the CA's data, history, certificates
into the repository), ``queries`` (the list, the detail, what changed for a user), ``checks``
(Order Certificate's choices and CertDesk's checks), ``placing`` (Validate, placing exactly
once), ``settling`` (settling lost answers), ``importing`` (Import Existing Orders) and
``polling`` (Check Order Status, by hand and on a schedule). This module holds the
feature's settings and its reactions to other features (``webapp.hooks``).
"""

from __future__ import annotations

from sqlalchemy import func, select

from webapp import hooks
from webapp.extensions import db
from webapp.orders.models import PLACED, Order
from webapp.security import rbac
from webapp.settings import service as settings

POLL_MINUTES = settings.register(
    "orders.poll_interval_minutes",
    15,
    "Order-status poll interval (minutes)",
    "How often pending Entrust orders are checked for a change of status (and issued ones, once "
    "their certificate has expired). An order that stays unchanged is checked less and less "
    "often, down to once a day.",
    minimum=1,
    maximum=1440,
)
IMPORT_CONCURRENCY = settings.register(
    "orders.import_concurrency",
    8,
    "Certificate downloads at once (Import Existing Orders)",
    "How many issued certificates an import fetches from Entrust in parallel; all of them draw "
    "on the credential's ECS request budget.",
    minimum=1,
    maximum=32,
)

OPERATORS_UPDATE_STATUS = settings.register(
    "orders.operators_update_status",
    False,
    "Operators may approve, decline, suspend and resume",
    "SSL › Entrust › Update Certificate Status is for administrators; turn this on to let "
    "operators use it too (an operator never approves an order they placed themselves). Revoke "
    "Certificate and Delete stay with administrators.",
)
rbac.grant_when(
    "operator", rbac.ORDERS_APPROVE, lambda: bool(settings.get(OPERATORS_UPDATE_STATUS))
)


def poll_minutes() -> int:
    return int(settings.get(POLL_MINUTES))


# --- reactions to other features ---------------------------------------------------------------


def _count_for(credential_id: int) -> int:
    stmt = select(func.count()).select_from(Order).where(Order.credential_id == credential_id)
    return db.session.execute(stmt).scalar_one()


@hooks.on("credential.references")
def _references(credential):
    return (_count_for(credential.id), "orders")


@hooks.on("credential.deleted")
def _credential_deleted(actor, credential) -> dict:
    """A deleted credential's orders stay, read-only (their connector can no longer be opened)."""
    return {"orders_kept": _count_for(credential.id)}


@hooks.on("key.in_use")
def _key_in_use(key_id: int) -> bool:
    stmt = select(Order.id).where(Order.private_key_id == key_id).limit(1)
    return db.session.execute(stmt).first() is not None


@hooks.on("certificate.order")
def _certificate_order(order_id: int) -> str | None:
    order = db.session.get(Order, order_id)
    if order is None:
        return None
    if order.placement == PLACED and order.ca_order_id:
        what = "third-party certificate" if order.third_party else "order"
        return f"Entrust {what} {order.ca_order_id} ({order.status or 'status not read yet'})"
    return f"Order #{order.id}"
