"""Order rows from what the CA says: the values, what changed, the history, and the certificate
brought into the repository. Nothing here commits: the use case that calls it owns the
transaction and writes its audit event in it."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import Action, CaOrder, Phase
from webapp.certificates import service as certificates
from webapp.dbtypes import join_names, split_names
from webapp.extensions import db
from webapp.orders import service
from webapp.orders.models import INTENT, UNKNOWN, Order, OrderEvent, OrderName, unsettled
from webapp.pki import PkiError

log = logging.getLogger(__name__)

MAX_CHECK_INTERVAL_MINUTES = 24 * 60
# An issued order whose certificate has expired, read while the CA still called it issued (its
# status may follow a little later), is read once more this long after.
EXPIRED_READ_AGAIN = timedelta(days=1)
# The phases in which the CA holds a certificate worth having in the repository (and, where the
# CA's renewal leaves the original's certificate valid, a renewed order's until it expires: see
# ``holds_certificate``).
WITH_CERTIFICATE = (Phase.ISSUED.value, Phase.SUSPENDED.value)
# The status actions done from CertDesk, as the order's history names them.
PAST = {
    Action.APPROVE: "approved",
    Action.DECLINE: "declined",
    Action.SUSPEND: "suspended",
    Action.RESUME: "resumed",
    Action.REVOKE: "revoked",
}
# The phase an order reaches when a status action took effect.
REACHES = {
    Action.APPROVE: (Phase.ISSUED, Phase.PENDING),
    Action.DECLINE: (Phase.DECLINED,),
    Action.SUSPEND: (Phase.SUSPENDED,),
    Action.RESUME: (Phase.ISSUED,),
    Action.REVOKE: (Phase.REVOKED,),
}


def order_key(ca: CaOrder) -> str | None:
    """The CA's id of an order, as the orders table keys it (a thumbprint for third-party ones)."""
    if ca.third_party:
        return (ca.thumbprint or "").upper() or None
    return ca.order_id or None


def number(ca_order_id: str | None) -> int | None:
    """The CA's id as a number, for sorting (None when it is not one)."""
    if ca_order_id and ca_order_id.isascii() and ca_order_id.isdigit() and len(ca_order_id) <= 18:
        return int(ca_order_id)
    return None


def kept(text: str | None, length: int) -> str:
    """``text`` as a column of ``length`` characters keeps it: whole when it fits, else its
    start with a trailing "…" that shows it was cut (the CA's detail keeps it whole)."""
    text = text or ""
    return text if len(text) <= length else text[: length - 1] + "\u2026"


def values_of(ca: CaOrder) -> dict:
    """The columns an order row takes from the CA's view of it. Empty text means the CA did not
    say (a list item or a placing answer carries less than the full detail)."""
    return {
        "status": ca.status or "",
        "phase": ca.phase.value if ca.phase else "",
        "third_party": bool(ca.third_party),
        "common_name": kept(ca.common_name, 255),
        "sans": join_names(ca.sans),
        "product": (ca.product or "")[:60],
        "organization": kept(ca.organization, 300),
        "requester_name": (ca.requester.name or "")[:255],
        "requester_email": (ca.requester.email or "")[:254],
        "serial": (ca.serial or "")[:80],
        "issued_at": ca.issued_at,
        "expires_at": ca.expires_at,
    }


def search_terms(row: Order | dict) -> list[str]:
    """The texts the list's search finds ``row`` by (see ``OrderName``): lower-case, spaces
    collapsed, each at most 255 characters, no repeats."""
    get = row.get if isinstance(row, dict) else lambda k, d="": getattr(row, k, d)
    parts = (
        get("ca_order_id", ""),
        get("common_name", ""),
        *split_names(get("sans", "")),
        get("requester_name", ""),
        get("requester_email", ""),
        get("serial", ""),
        get("friendly_name", ""),
    )
    terms: list[str] = []
    for part in parts:
        term = " ".join((part or "").split()).lower()[:255]
        if term and term not in terms:
            terms.append(term)
    return terms


def search_text(row: Order | dict) -> str:
    return "\n".join(search_terms(row))


def name_rows(order_id: int, text: str) -> list[dict]:
    """The ``OrderName`` rows of an order whose ``search_text`` is ``text`` (for a bulk insert)."""
    return [{"order_id": order_id, "value": t, "reversed": t[::-1]} for t in text.split("\n") if t]


def index_search(row: Order) -> None:
    """Bring ``row``'s search text and its names up to date with its fields."""
    text = search_text(row)
    if text != row.search_text:
        row.search_text = text
        row.names = [OrderName(value=t, reversed=t[::-1]) for t in text.split("\n") if t]


def details_json(old: str, new: dict) -> str:
    """Every field the CA holds: the stored ones, updated by what the CA said now (a list item
    carries fewer fields than the full detail; it never erases what the detail gave)."""
    if not new:
        return old
    merged = json.loads(old or "{}")
    merged.update(new)
    return json.dumps(merged, sort_keys=True, default=str)


def apply(row: Order, ca: CaOrder, now: datetime) -> tuple[bool, str | None]:
    """Update ``row`` from the CA's view; return (anything changed, the previous status when the
    status changed). Values the CA did not give are kept. A view asked for before the row's
    status last changed (an import's page or a status check read before an action, written after
    it) is older than the row and changes nothing."""
    if ca.read_at is not None and row.status_changed_at and row.status_changed_at > ca.read_at:
        return False, None
    changed = False
    old_status = row.status
    for attr, value in values_of(ca).items():
        # The phase follows the status; without a status the CA said nothing about either.
        if attr in ("status", "phase") and not ca.status:
            continue
        if attr not in ("status", "phase", "third_party") and value in ("", None):
            continue
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed = True
    details = details_json(row.details, ca.details)
    if details != row.details:
        row.details = details
        changed = True
    index_search(row)
    if changed:
        row.updated_at = now
    status_changed = bool(ca.status) and ca.status != old_status
    if status_changed:
        row.status_changed_at = min(now, ca.read_at) if ca.read_at else now
    if row.unread_action and ca.status and (status_changed or _read_since_action(row, ca)):
        # What the action did is read now (``by_action`` told the caller beforehand).
        row.unread_action = row.unread_action_by = row.unread_action_at = None
    return changed, (old_status if status_changed else None)


def _read_since_action(row: Order, ca: CaOrder) -> bool:
    """Whether ``ca`` was read after ``row``'s unread action was sent."""
    sent = row.unread_action_at
    return ca.read_at is None or sent is None or ca.read_at >= sent


def unread_action(row: Order, action: Action, actor, sent: datetime) -> None:
    """``action``, sent to the CA at ``sent`` by ``actor``, answered or not, but the order could
    not be read after it: its next reading tells whether it took effect (``by_action``)."""
    name = actor_name(actor)
    row.unread_action, row.unread_action_by, row.unread_action_at = action.value, name, sent


def by_action(row: Order, ca: CaOrder) -> tuple[Action, str] | None:
    """(action, who did it) when ``ca``, a reading of ``row`` not applied yet, shows the status
    that its unread action leads to (read since it was sent); else None: a change it shows is
    the CA's own."""
    try:
        action = Action(row.unread_action or "")
    except ValueError:
        return None
    if action not in REACHES or not ca.status or ca.status == row.status:
        return None
    if ca.phase not in REACHES[action] or not _read_since_action(row, ca):
        return None
    return action, row.unread_action_by or ""


def read(row: Order, ca: CaOrder, now: datetime, *, actor, read_by: str) -> tuple[bool, str | None]:
    """``apply`` what ``read_by`` (a status check, an import) read of ``row``, and tell a change
    of its status (``status_read``). Returns what ``apply`` does."""
    done = by_action(row, ca)
    changed, old_status = apply(row, ca, now)
    if old_status is not None:
        status_read(row, old_status, actor=actor, now=now, read_by=read_by, done=done)
    return changed, old_status


def actor_name(actor) -> str:
    """Who a history line names: CertDesk's own work by its name ("scheduler"), a user by theirs,
    at most 120 characters."""
    name = actor if isinstance(actor, str) else getattr(actor, "username", "") or ""
    return name[:120]


def event(
    row: Order,
    kind: str,
    *,
    actor,
    old: str = "",
    new: str = "",
    message: str = "",
    related: int | None = None,
    now: datetime | None = None,
    notify: bool = False,
) -> OrderEvent:
    """Add a line to the order's history (``notify``: the user who placed it sees it until they
    dismiss it)."""
    name = actor_name(actor)
    ev = OrderEvent(
        order_id=row.id,
        kind=kind,
        old_status=old or "",
        new_status=new or "",
        message=message[:2000],
        actor_name=name,
        related_order_id=related,
        notify_user_id=row.placed_by_id if notify else None,
    )
    if now is not None:
        ev.at = now
    db.session.add(ev)
    return ev


CERTIFICATE_ADDED = "Certificate added to SSL › Certificates."


def certificate_added(row: Order, *, actor, now: datetime) -> None:
    """The history line of a certificate brought into the repository for ``row``."""
    event(row, "certificate", actor=actor, now=now, message=CERTIFICATE_ADDED)


def changed_at_ca(row: Order, read_by: str) -> dict:
    """The audit detail of a change that CertDesk only read from the CA (made in its portal, by
    its staff or by another of its API clients): where it was made, and what read it."""
    return {"changed_at": registry.LABELS.get(row.ca, row.ca), "read_by": read_by}


def changed_through(action: Action, by: str, read_by: str) -> dict:
    """The audit detail of a change a status action made from CertDesk, which only a later
    reading found (the order could not be read after the action): which action, who did it, and
    what read it."""
    return {"changed_through": "CertDesk", "action": action.value, "by": by, "read_by": read_by}


def status_read(
    row: Order,
    old: str,
    *,
    actor,
    now: datetime,
    read_by: str,
    done: tuple[Action, str] | None = None,
) -> OrderEvent:
    """The CA's status of ``row`` changed from ``old``, as ``read_by`` (a status check, an import)
    read it. The change is the CA's, or with ``done`` (see ``by_action``) that of a status action
    done from CertDesk whose outcome could not be read then: the history line is by the CA (or
    by the user who did the action) and names who read it (shown to whoever placed the order),
    the audit event says where it was made, and the order's certificates follow (see
    ``certificates_follow``). ``actor`` is who asked for the reading, a user or "scheduler"; the
    caller commits."""
    name = actor_name(actor)
    label = registry.LABELS.get(row.ca, row.ca)
    if done is not None:
        action, by = done
        by_name, where = by, changed_through(action, by, read_by)
        done_words = f"{PAST[action].capitalize()} by {by} through CertDesk"
        message = f"{done_words}; read by {name}'s {read_by}."
    else:
        by_name, where = label, changed_at_ca(row, read_by)
        message = f"Changed at {label}; read by {name}'s {read_by}."
    ev = event(
        row,
        "status",
        actor=by_name,
        old=old,
        new=row.status,
        now=now,
        notify=True,
        message=message,
    )
    audit.record(
        "order.status",
        actor=actor,
        object_type="order",
        object_id=row.id,
        detail={"ca_order_id": row.ca_order_id, "from": old, "to": row.status} | where,
    )
    certificates_follow(row, actor=actor, detail=where)
    return ev


def renewed_valid_status(ca: str) -> str:
    """The CA's status of an order renewed into another whose certificate stays valid until its
    own expiry ("": the CA has none)."""
    return registry.capabilities(ca).renewed_status


def holds_certificate(row: Order, now: datetime) -> bool:
    """Whether the CA holds a certificate of ``row`` worth having in the repository: issued or
    suspended, or renewed into another order (the renewal leaves it valid, and it is usually still
    deployed) and not expired yet."""
    if row.phase in WITH_CERTIFICATE:
        return True
    if row.phase != Phase.REPLACED.value or row.expires_at is None or row.expires_at <= now:
        return False
    renewed = renewed_valid_status(row.ca)
    return bool(renewed) and row.status == renewed


def revokes_certificate(row: Order) -> bool:
    """Whether the CA's status of ``row`` means its certificate is revoked: revoked, or (where a
    reissue revokes the original) reissued into another order."""
    if row.phase == Phase.REVOKED.value:
        return True
    caps = registry.capabilities(row.ca)
    return bool(
        row.phase == Phase.REPLACED.value
        and caps.reissue_revokes_original
        and caps.reissued_status
        and row.status == caps.reissued_status
    )


def certificates_revoked(row: Order, *, actor, detail: dict | None = None) -> None:
    """An order the CA now calls revoked, or reissued where a reissue revokes the original
    (done outside CertDesk, in Entrust's portal, say, or read by a status check after CertDesk
    stopped before reading it back): its certificates in SSL › Certificates are marked revoked
    too (audited; those marked already keep their time)."""
    if revokes_certificate(row):
        for cert in certificates.for_order(row.id):
            certificates.mark_revoked(cert, actor=actor, commit=False, detail=detail)


def certificates_suspended(row: Order, *, actor, detail: dict | None = None) -> None:
    """The certificates of ``row`` in SSL › Certificates follow its suspension: marked suspended
    while the CA holds the order suspended (not valid until resumed), cleared once it leaves
    that phase (resumed, or expired). A revoked one stays as it was: revoked is all it is now.
    Audited; those already so are left alone."""
    if revokes_certificate(row):
        return
    suspended = row.phase == Phase.SUSPENDED.value
    for cert in certificates.for_order(row.id):
        if suspended:
            certificates.mark_suspended(cert, actor=actor, detail=detail)
        else:
            certificates.mark_resumed(cert, actor=actor, detail=detail)


def certificates_follow(row: Order, *, actor, detail: dict | None = None) -> None:
    """After the CA's status of ``row`` changed: its certificates are marked revoked, or
    suspended, or resumed, as that status says (see the two functions above); ``detail`` adds
    to their audit events."""
    certificates_revoked(row, actor=actor, detail=detail)
    certificates_suspended(row, actor=actor, detail=detail)


def schedule(row: Order, now: datetime, *, changed: bool) -> None:
    """When to check the order again: the poll interval after a change, twice the last wait
    while nothing changes (up to a day); never once its phase is final (but once more a day
    later for an issued order read for the first time since its certificate expired)."""
    read_before, row.last_checked_at = row.last_checked_at, now
    if row.phase and Phase(row.phase).final:
        row.next_check_at = _after_expiry(row, read_before, now)
        return
    base = service.poll_minutes()
    if changed or not row.check_interval_minutes:
        interval = base
    else:
        interval = min(max(base, row.check_interval_minutes * 2), MAX_CHECK_INTERVAL_MINUTES)
    row.check_interval_minutes = interval
    row.next_check_at = now + timedelta(minutes=interval)


def expired_unread(row: Order, now: datetime, read_before: datetime | None = None) -> bool:
    """Whether ``row`` is an issued (or suspended) order whose certificate has expired since
    CertDesk last read it (``read_before``, else its last check): the CA calls it expired by
    now, which no one's action will tell CertDesk."""
    if read_before is None:
        read_before = row.last_checked_at
    return (
        row.phase in WITH_CERTIFICATE
        and row.expires_at is not None
        and row.expires_at <= now
        and (read_before is None or read_before < row.expires_at)
    )


def _after_expiry(row: Order, read_before: datetime | None, now: datetime) -> datetime | None:
    """The next check of an order in a final phase: none, but for an issued one read for the
    first time since its certificate expired (the CA may turn it EXPIRED a little later)."""
    return now + EXPIRED_READ_AGAIN if expired_unread(row, now, read_before) else None


def retry_later(row: Order, now: datetime) -> None:
    """The CA could not be asked about the order: ask again after twice the last wait (up to a
    day), without counting it as checked."""
    if row.next_check_at is None and not expired_unread(row, now):
        return
    base = service.poll_minutes()
    interval = min(max(base, (row.check_interval_minutes or 0) * 2), MAX_CHECK_INTERVAL_MINUTES)
    row.check_interval_minutes = interval
    row.next_check_at = now + timedelta(minutes=interval)


def lock(ids) -> None:
    """Hold the orders ``ids`` until the transaction ends, as ``lock_rows`` does, without reading
    them: a write that changes nothing (PostgreSQL's row locks, SQLite's writer)."""
    db.session.execute(
        update(Order)
        .where(Order.id.in_(list(ids)))
        .values(updated_at=Order.updated_at)
        .execution_options(synchronize_session=False)
    )


def lock_rows(ids) -> list[Order]:
    """The orders ``ids`` as they are now, held until the transaction ends: a status check or an
    action in another request or job that writes one of them waits for this one to commit, then
    reads what it wrote (so two checks of one order store its certificate and its new status
    once). Orders deleted meanwhile are left out."""
    ids = list(ids)
    if not ids:
        return []
    lock(ids)
    return list(
        db.session.execute(
            select(Order).where(Order.id.in_(ids)).execution_options(populate_existing=True)
        ).scalars()
    )


def unsettled_successor(order_id: int) -> int | None:
    """The id of a reissue or renewal of ``order_id`` whose placing is not settled yet (its call
    may be under way), or None."""
    return db.session.execute(
        select(Order.id).where(unsettled(INTENT, UNKNOWN), Order.parent_id == order_id).limit(1)
    ).scalar()


def certificates_added(n: int) -> str:
    """How a job's summary says what it brought into the repository."""
    return f"{n:,} certificate{'s' if n != 1 else ''} added to SSL › Certificates"


def store_certificate(row: Order, ca: CaOrder, *, actor, source: str) -> tuple[bool, str]:
    """Put the certificate of ``ca`` (with its chain) in the repository, linked to ``row`` (and to
    the key and CSR CertDesk holds for it). Returns (added now, a problem in words or "")."""
    if not ca.certificate_pem:
        return False, "Entrust gave no certificate for this order."
    try:
        cert, created = certificates.add_certificate(
            ca.certificate_pem,
            ca.chain_pems,
            source=source,
            order_id=row.id,
            actor=actor,
            commit=False,
        )
    except PkiError as exc:
        log.warning("certificate of order %s could not be read: %s", row.id, exc)
        return False, f"The certificate Entrust gave could not be read: {exc}"
    if row.phase == Phase.SUSPENDED.value and cert.order_id == row.id:
        certificates.mark_suspended(cert, actor=actor)
    return created, ""


def store_certificates(
    fetched: list[tuple[int, CaOrder]],
    *,
    actor,
    source: str,
    now: datetime,
    batch_event: dict | None = None,
) -> list[tuple[bool, str]]:
    """``store_certificate`` for a batch of (order id, the CA's view of it), in a few queries and
    one flush (see ``certificates.add_for_orders``; ``batch_event``: one audit event for the
    batch), with a history line for each certificate added. Returns (added now, a problem in
    words or "") for each, in the same order."""
    out: list[tuple[bool, str]] = [(False, "")] * len(fetched)
    items, where, suspended = [], [], []
    for i, (order_id, ca) in enumerate(fetched):
        if not ca.certificate_pem:
            out[i] = (False, "Entrust gave no certificate for this order.")
            continue
        items.append((order_id, ca.certificate_pem, ca.chain_pems))
        where.append(i)
    for i, added in zip(
        where,
        certificates.add_for_orders(items, source=source, actor=actor, batch_event=batch_event),
        strict=True,
    ):
        if added.problem:
            order_id = fetched[i][0]
            log.warning("certificate of order %s could not be read: %s", order_id, added.problem)
            out[i] = (False, f"The certificate Entrust gave could not be read: {added.problem}")
        else:
            out[i] = (added.created, "")
            order_id, ca = fetched[i]
            cert = added.certificate
            if ca.phase is Phase.SUSPENDED and cert.order_id == order_id:
                suspended.append(cert)
    certificates.mark_suspended_many(suspended, actor=actor)
    name = actor_name(actor)
    lines = [
        {
            "order_id": order_id,
            "at": now,
            "kind": "certificate",
            "old_status": "",
            "new_status": "",
            "message": CERTIFICATE_ADDED,
            "actor_name": name,
        }
        for (order_id, _ca), (added, _problem) in zip(fetched, out, strict=True)
        if added
    ]
    if lines:
        db.session.execute(insert(OrderEvent), lines)
    return out
