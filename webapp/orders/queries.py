"""Reading orders: the SSL > Entrust list (search, filters, sorts, paging that stay fast at
100,000 orders), one order with its history, the dashboard's pending orders, and the status
changes a user has not seen yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.orm import defer

from webapp import validation
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import Phase
from webapp.catalog import service as catalog
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.credentials.models import EcsCredential
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.orders import availability, records
from webapp.orders.models import (
    INTENT,
    NOT_PLACED,
    SUCCESSORS,
    UNKNOWN,
    ListedOrder,
    Order,
    OrderEvent,
    OrderName,
    unsettled,
)
from webapp.paging import Listed, Page, distinct_values, paginate
from webapp.search import ESCAPE, escape_like, name_forms, narrowed, prefixed, unindexed

# CertDesk's own states in the status filter (the CA's statuses come from its connector).
OWN_STATES = {"@unknown": "Checking with Entrust", "@not_placed": "Not placed"}


@dataclass
class OrderFilter:
    q: str = ""
    status: str = ""
    credential_id: int | None = None
    product: str = ""
    expiring: str = ""  # a number of days
    sort: str = "expires"
    direction: str = "asc"


# Each sort is an index's column order (see Order.__table_args__); every ORDER BY ends in id.
SORTS = {
    "expires": (Order.expires_at,),
    "tracking": (Order.ca_order_number,),
    "cn": (Order.common_name,),
    "status": (Order.status, Order.expires_at),
    "product": (Order.product, Order.expires_at),
    "organization": (Order.organization,),
    "requester": (Order.requester_name,),
    "credential": (Order.credential_id, Order.expires_at),
    "checked": (Order.last_checked_at,),
}


def _search(stmt, q: str):
    """Orders with a text (tracking ID, common name, a SAN, the requester's name or email, the
    serial, the friendly name) that starts with ``q`` or ends with it ("example.com" finds
    www.example.com): index ranges over ``OrderName``, whatever the number of orders."""
    q = " ".join(q.split()).lower()[:255]
    texts = name_forms(q)  # bücher.example finds xn--bcher-kva.example
    # A serial number as openssl prints it (00:d8:81:...): the serial Entrust gives (d881...).
    serial = q.replace(":", "").replace(" ", "")
    if ":" in q and serial and all(c in "0123456789abcdef" for c in serial):
        texts.append(serial.lstrip("0") or "0")
    candidates, tests = [], []
    # The same test on the row itself: search_text holds those texts, one a line.
    lines = literal("\n") + Order.search_text + literal("\n")
    for q in texts:
        candidates += [
            prefixed(OrderName.order_id, OrderName.value, q),
            prefixed(OrderName.order_id, OrderName.reversed, q[::-1]),
        ]
        text = escape_like(q)
        tests += [
            lines.like("%\n" + text + "%", escape=ESCAPE),
            lines.like("%" + text + "\n%", escape=ESCAPE),
        ]
    return narrowed(stmt, candidates, Order.id, or_(*tests))


def _conditions(f: OrderFilter, now: datetime, searched: bool = False) -> list:
    """The filters. With a search, they are tested on the rows the search finds (its few keys,
    or the rows its walk along the sort reads) rather than used to pick an index."""

    def col(column):
        return unindexed(column) if searched else column

    conds = []
    # CertDesk's own states: the few orders not placed yet, walked in expiry order (a partial
    # index), each tested for its placement.
    if f.status == "@unknown":
        conds += [unsettled(), unindexed(Order.placement).in_((INTENT, UNKNOWN))]
    elif f.status == "@not_placed":
        conds += [unsettled(), unindexed(Order.placement) == NOT_PLACED]
    elif f.status:
        conds.append(col(Order.status) == f.status)
    if f.credential_id:
        conds.append(col(Order.credential_id) == f.credential_id)
    if f.product:
        conds.append(col(Order.product) == f.product)
    if f.expiring.isascii() and f.expiring.isdigit():
        days = min(int(f.expiring), 36500)
        conds += [
            col(Order.expires_at) >= now,
            col(Order.expires_at) < now + timedelta(days=days),
            Order.phase == Phase.ISSUED.value,
        ]
    return conds


def _order_by(f: OrderFilter) -> list:
    cols = SORTS.get(f.sort, SORTS["expires"])
    desc = f.direction == "desc"
    return [c.desc() if desc else c.asc() for c in (*cols, Order.id)]


def query(f: OrderFilter, now: datetime | None = None):
    """The filtered, sorted select of the list (without the large JSON columns)."""
    now = now or utcnow()
    stmt = select(Order).options(defer(Order.details), defer(Order.request))
    searched = bool(f.q.strip())
    stmt = stmt.where(*_conditions(f, now, searched))
    if searched:
        stmt = _search(stmt, f.q)
    return stmt.order_by(*_order_by(f))


# What the list shows and sorts by, read as plain values (``ListedOrder``). The rest of a row (the
# search text, the CA's details and the request, six of its eight times) stays in the database,
# and so do the credential's secrets and certificates: the list names it only.
LISTED = (
    Order.id,
    Order.ca_order_id,
    Order.ca_order_number,
    Order.placement,
    Order.status,
    Order.third_party,
    Order.common_name,
    Order.sans,
    Order.friendly_name,
    Order.product,
    Order.organization,
    Order.requester_name,
    Order.credential_id,
    Order.expires_at,
    Order.last_checked_at,
    select(EcsCredential.name)
    .where(EcsCredential.id == Order.credential_id)
    .scalar_subquery()
    .label("credential_name"),
)
LISTED_ROWS = Listed(LISTED, ListedOrder)


def page_of(
    f: OrderFilter, page: int, per_page: int, now: datetime | None = None, *, cursor=None
) -> Page:
    """One page of the list (``webapp.paging``: a capped count, keyset Next and Previous; the
    cursor is read from the request unless given), of ``ListedOrder`` items."""
    stmt = query(f, now).execution_options(listed=LISTED_ROWS)
    return paginate(stmt, page, per_page, cursor=cursor)


@dataclass
class FilterChoices:
    statuses: list[tuple[str, str]]
    credentials: list
    products: list[str]


def filter_choices() -> FilterChoices:
    """The drop-downs of the list: every status the connector knows, and the products the linked
    accounts sell or some order is of (one index seek per product, never a DISTINCT over the
    orders)."""
    caps = registry.capabilities("entrust", configured=False)  # its statuses
    statuses = [(s, s) for s in caps.statuses] + list(OWN_STATES.items())
    products = sorted(set(distinct_values(Order.product)) | set(catalog.product_types()))
    return FilterChoices(statuses, credentials.summaries(include_deleted=True), products)


# --- one order --------------------------------------------------------------------------------


def get(order_id: int) -> Order | None:
    return db.session.get(Order, order_id)


@dataclass
class OrderView:
    order: Order
    details: dict
    request: dict
    history: list
    certificates: list
    children: list
    parent: Order | None
    # The lifecycle actions: {action: why not ("" when it can be tried now)}, and the reasons
    # in one line each (actions refused for the same statuses share a line).
    actions: dict
    blocked: list
    renewable_from: datetime | None
    # For a reissue or renewal: the names the certificate it replaces covered (deploy it there).
    replaced_names: list
    # How the history names the orders it links to: their tracking ID where they have one.
    related: dict
    # A "not placed" order placed again: the new order.
    again: Order | None = None
    # Entrust holds a certificate of the order worth having (issued, suspended, or renewed and
    # not expired): the page says how to fetch it when the repository lacks it.
    holds_certificate: bool = False
    # Its credential "deleted" or "disabled" (nothing is asked of the CA for it), or "", and why
    # Check Order Status cannot ask the CA then.
    credential_off: str = ""
    check_blocked: str = ""


def view(order: Order) -> OrderView:
    """Everything the order page shows."""
    history = list(
        db.session.execute(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        ).scalars()
    )
    children = list(
        db.session.execute(
            select(Order).where(Order.parent_id == order.id).order_by(Order.id)
        ).scalars()
    )
    parent = db.session.get(Order, order.parent_id) if order.parent_id else None
    again = db.session.get(Order, order.again_id) if order.again_id else None
    replaced = []
    if parent is not None and order.origin in SUCCESSORS:
        old = certificates.for_order(parent.id)
        replaced = (old[0].san_list if old else []) or parent.san_list
    caps = registry.capabilities(order.ca)
    actions = {
        a.value: why for a, why in availability.reasons(order, availability.LABELS, caps).items()
    }
    return OrderView(
        order=order,
        details=json.loads(order.details or "{}"),
        request=json.loads(order.request or "{}"),
        history=history,
        certificates=certificates.for_order(order.id),
        children=children,
        parent=parent,
        actions=actions,
        blocked=availability.grouped(order, availability.LABELS, caps),
        renewable_from=availability.renewable_from(order, caps),
        replaced_names=replaced,
        related={o.id: o.display_name for o in [*children, *filter(None, (parent, again))]},
        again=again,
        holds_certificate=records.holds_certificate(order, utcnow()),
        credential_off=availability.credential_off(order),
        check_blocked=availability.credential_problem(order),
    )


# --- what needs attention -----------------------------------------------------------------------


def pending(limit: int = 10) -> list[Order]:
    """Orders waiting for the CA, or whose placement is not settled, newest first: the newest of
    each kind read back from its own index, then the two merged (never every pending order)."""
    newest = []
    for condition in (
        Order.phase == Phase.PENDING.value,
        unsettled(INTENT, UNKNOWN, NOT_PLACED),
    ):
        stmt = (
            select(Order)
            .options(defer(Order.details), defer(Order.request))
            .where(condition)
            .order_by(Order.id.desc())
            .limit(limit)
        )
        newest.extend(db.session.execute(stmt).scalars())
    return sorted({o.id: o for o in newest}.values(), key=lambda o: o.id, reverse=True)[:limit]


def updates_for(user, limit: int = 5) -> list[OrderEvent]:
    """Changes to orders ``user`` placed that they have not dismissed yet, newest first."""
    if user is None or not getattr(user, "id", None):
        return []
    stmt = (
        select(OrderEvent)
        .where(OrderEvent.notify_user_id == user.id, OrderEvent.seen_at.is_(None))
        .order_by(OrderEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(stmt).scalars())


# How far the notices beyond those shown are counted ("and 1,000+ more").
NOTICES_COUNTED = 1000


def more_updates(user, shown: int) -> int:
    """How many of ``user``'s notices wait beyond the ``shown`` newest, counted up to
    NOTICES_COUNTED (an index range, never the whole table)."""
    if user is None or not getattr(user, "id", None) or not shown:
        return 0
    ids = (
        select(OrderEvent.id)
        .where(OrderEvent.notify_user_id == user.id, OrderEvent.seen_at.is_(None))
        .limit(NOTICES_COUNTED + 1)
        .subquery()
    )
    waiting = db.session.execute(select(func.count()).select_from(ids)).scalar_one()
    return max(0, waiting - shown)


def mark_seen(user, event_ids) -> int:
    """Dismiss ``user``'s notices (only their own), audited. Returns how many."""
    ids = validation.ids(event_ids, 100)
    if not ids:
        return 0
    done = sorted(
        db.session.execute(
            update(OrderEvent)
            .where(
                OrderEvent.id.in_(ids),
                OrderEvent.notify_user_id == user.id,
                OrderEvent.seen_at.is_(None),
            )
            .values(seen_at=utcnow())
            .returning(OrderEvent.id)
        ).scalars()
    )
    if done:
        audit.record(
            "order.notices_dismissed",
            actor=user,
            object_type="user",
            object_id=user.id,
            detail=audit.some_ids("events", done),
        )
    db.session.commit()
    return len(done)
