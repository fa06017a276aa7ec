"""Settling where an order stands: claiming the move out of "intent" or "unknown" (so that two
settlers never both do it), linking a placed or found order to what the CA says (its certificate
into the repository), and the reconciler, which settles an order whose answer was lost by
searching the CA for its request id: found, it is linked; not found once the call's deadline has
passed, it is "not placed"."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from webapp import pki
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import CaError, CaOrder, Phase
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.orders import lineage, records
from webapp.orders.models import (
    DEFAULT_CA,
    INTENT,
    NOT_PLACED,
    PLACED,
    UNKNOWN,
    Order,
    unsettled,
)
from webapp.security import rbac

log = logging.getLogger(__name__)


# How an order's message starts when the search for it could not be made (Entrust unreachable).
COULD_NOT_CHECK = "Could not check with Entrust yet: "


def claim(order_id: int, values: dict, from_=(INTENT, UNKNOWN)) -> bool:
    """Move an order out of INTENT/UNKNOWN, unless someone else settled it meanwhile."""
    done = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.placement.in_(from_))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(done)


def _ensure_csr(row: Order, actor) -> None:
    """A pasted or uploaded CSR becomes a CSR row (with its key) once the order exists."""
    if row.csr_id is not None:
        return
    req = json.loads(row.request or "{}")
    if not req.get("csr_pem"):
        return
    info = pki.parse_csr(req["csr_pem"], stored=True)
    key_row = keys.by_public_id(info.public_key_id)
    row.csr_id = csrs.record_for_order(actor, info, key_row).id


def link(row: Order, ca: CaOrder, actor, now: datetime, *, source: str) -> str:
    """Fill a just-placed (or just-found) order from the CA's answer; bring its certificate into
    the repository. Returns a problem in words, or ""."""
    row.ca_order_id = records.order_key(ca)
    row.ca_order_number = records.number(row.ca_order_id)
    records.apply(row, ca, now)
    if not row.status_changed_at:
        row.status_changed_at = now
    row.message = ""
    _ensure_csr(row, actor)
    db.session.flush()
    problem = ""
    if ca.certificate_pem and records.holds_certificate(row, now):
        # Issued, or suspended (an Entrust administrator may have done so before the order was
        # found): stored either way, marked suspended in the second case.
        _created, problem = records.store_certificate(row, ca, actor=actor, source=source)
    records.index_search(row)
    records.schedule(row, now, changed=True)
    return problem


def reconcile(row: Order, actor, *, now: datetime | None = None, conn=None) -> Order:
    """Settle an order whose answer was lost (or whose process died during the call): search the
    CA for its request id. Found: linked (its certificate into the repository when issued or
    suspended). Not found, and the call's deadline has passed: "not placed". Otherwise it stays
    unknown. An unreachable CA leaves it unknown, to be tried again. Audited when settled."""
    now = now or utcnow()
    if row.placement not in (INTENT, UNKNOWN):
        return row
    deadline = registry.answer_deadline(row.ca)
    due = (row.attempted_at or row.created_at) + deadline
    if row.placement == INTENT and now < due:
        return row  # the call may still be under way
    own = conn is None
    try:
        if own:
            conn = registry.open_connector(row.ca, row.credential_id)
        found = conn.find_by_request_id(row.request_id)
        full = None
        if found:
            ca = found[0]
            if ca.phase in (Phase.ISSUED, Phase.SUSPENDED) and not ca.third_party:
                full = conn.fetch(ca.order_id)
    except CaError as exc:
        db.session.rollback()
        row = db.session.get(Order, row.id)
        if row.placement == INTENT:
            row.placement = UNKNOWN
        row.message = f"{COULD_NOT_CHECK}{exc}"[:2000]
        # Again in a minute, then less and less often (up to hourly) while Entrust cannot be asked.
        wait = min(max(1, (row.check_interval_minutes or 0) * 2), 60)
        row.check_interval_minutes = wait
        row.next_check_at = max(due, now + timedelta(minutes=wait))
        row.updated_at = now
        db.session.commit()
        return row
    finally:
        if own and conn is not None:
            conn.close()
    if found:
        given = None if own else conn  # a connector of the caller's is still open
        return settle_found(row, full or found[0], len(found), actor, now, conn=given)
    if now < due:
        row.placement = UNKNOWN
        # Said now, so that an older "could not check" no longer stands after a search that worked.
        row.message = (
            "Entrust does not list this order yet. CertDesk searches again after "
            f"{due:%Y-%m-%d %H:%M} UTC, when the request can no longer take effect; only then is "
            "it called not placed."
        )
        row.next_check_at = due
        row.updated_at = now
        db.session.commit()
        return row
    if not claim(
        row.id,
        {"placement": NOT_PLACED, "next_check_at": None, "updated_at": now, "message": ""},
    ):
        db.session.rollback()
        return db.session.get(Order, row.id)
    db.session.refresh(row)
    records.event(
        row,
        "not_placed",
        actor=actor,
        now=now,
        notify=True,
        message="Entrust holds no order with this request id: it was not placed.",
    )
    audit.record(
        "order.reconcile",
        actor=actor,
        object_type="order",
        object_id=row.id,
        outcome="not_placed",
        detail={"request_id": row.request_id},
    )
    db.session.commit()
    return row


def settle_found(
    row: Order,
    ca: CaOrder,
    n_found: int,
    actor,
    now: datetime,
    from_=(INTENT, UNKNOWN),
    *,
    conn=None,
) -> Order:
    """The CA holds the order after all: link it (a reissue or renewal to its original too, read
    back first), in one transaction. ``conn``: a connector open already, for the read-back."""
    back = lineage.read_back(row, records.order_key(ca), conn)
    if not claim(row.id, {"placement": PLACED}, from_):
        db.session.rollback()
        return db.session.get(Order, row.id)
    db.session.refresh(row)
    problem = link(row, ca, actor, now, source="entrust")
    extra = f" Entrust holds {n_found} orders with this request id." if n_found > 1 else ""
    row.message = (problem + extra).strip()
    records.event(
        row,
        "reconciled",
        actor=actor,
        new=row.status,
        now=now,
        notify=True,
        message=f"Found at Entrust as order {row.ca_order_id}: it was placed.{extra}",
    )
    audit.record(
        "order.reconcile",
        actor=actor,
        object_type="order",
        object_id=row.id,
        detail={"request_id": row.request_id, "found": row.ca_order_id, "status": row.status},
    )
    lineage.successor_linked(row, back, actor, now=now)
    db.session.commit()
    db.session.refresh(row)  # as committed, for a caller that reads it after its session ends
    return row


def due_for_reconciling(now: datetime | None = None, limit: int = 500) -> list[Order]:
    """Orders whose answer was lost and whose next check is due, and intents that outlived
    their call (its deadline under today's timeouts has passed: the process died during it)."""
    now = now or utcnow()
    settled_by = now - registry.answer_deadline(DEFAULT_CA)
    stmt = (
        select(Order)
        .where(
            unsettled(INTENT, UNKNOWN),
            or_(
                Order.next_check_at <= now,
                (Order.placement == INTENT) & (Order.attempted_at <= settled_by),
            ),
        )
        .order_by(Order.next_check_at, Order.id)
        .limit(limit)
    )
    return list(db.session.execute(stmt).scalars())


def reconcile_due(actor, now: datetime | None = None) -> dict:
    """Settle every order that is due (the reconciler's run). Returns counts."""
    counts = {"found": 0, "not_placed": 0, "unsettled": 0}
    for row in due_for_reconciling(now):
        settled = reconcile(row, actor, now=now)
        if settled.placement == PLACED:
            counts["found"] += 1
        elif settled.placement == NOT_PLACED:
            counts["not_placed"] += 1
        else:
            counts["unsettled"] += 1
    return counts


def check_now(actor, row: Order) -> Order:
    """ "Check with Entrust now" on an order whose answer was lost (audited: settled by
    ``reconcile``, or here when it could not be settled yet)."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    row = reconcile(row, actor)
    if row.placement in (INTENT, UNKNOWN):
        audit.record(
            "order.reconcile",
            actor=actor,
            object_type="order",
            object_id=row.id,
            outcome="unsettled",
            detail={"request_id": row.request_id, "message": row.message[:500]},
        )
        db.session.commit()
    return row
