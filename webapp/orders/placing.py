"""Order Certificate: Validate, and placing an order exactly once (the form's checks are in
``checks``; settling an order whose answer was lost is ``settling``).

Never twice: before the create call, an intent row with a fresh request id is committed; the id
travels with the order (Entrust keeps it in ``tracking.trackingInfo``). The call is sent once. A
definite refusal removes the intent (nothing was ordered); an answer that was lost (timeout, reset,
5xx, a crash between the call and the commit) leaves the order "unknown" until the reconciler has
searched the CA for the request id: found, it is linked; still not found once the call's deadline
has passed, it is "not placed", and only then may the user place it again, with a new request id.
The Order Certificate, Reissue and Renew forms are shown with the request id their order will have,
so the same form sent twice (a double click, Back and send again) places one order: the second is
``SentAlready``.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import (
    CaError,
    CaOrder,
    NotAllowed,
    OrderRequest,
    Phase,
    Placed,
    Refused,
    Requester,
    Unavailable,
)
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.dbtypes import join_names, utcnow
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.orders import availability, checks, lifecycle, lineage, records, service, settling
from webapp.orders.checks import CA, OrderForm, OrderInputError, prepare
from webapp.orders.models import INTENT, NOT_PLACED, PLACED, SUCCESSORS, UNKNOWN, Order
from webapp.security import rbac
from webapp.validation import InputError

log = logging.getLogger(__name__)

REQUEST_PREFIX = "certdesk:"


class OrderRefused(InputError):
    """The CA refused the order, or could not be reached and nothing was ordered. ``errors``
    maps the order form's fields to the CA's messages ("form" for the whole order)."""

    def __init__(self, message: str, errors: dict[str, str]):
        super().__init__(message, next(iter(errors), "form"))
        self.errors = dict(errors)

    def as_errors(self) -> dict[str, str]:
        return dict(self.errors)


@dataclass
class Validation:
    ok: bool
    message: str
    names: list[str]
    errors: dict[str, str] = field(default_factory=dict)  # the CA's, by form field


def _refusal(exc: CaError, credential_id: int) -> OrderRefused:
    if isinstance(exc, Refused) and exc.fields:
        if any(f.startswith("custom_") for f in exc.fields):
            # The form shown again offers the account's custom fields as they are now.
            checks.forget_custom_fields(credential_id)
        return OrderRefused(str(exc), exc.fields)
    return OrderRefused(str(exc), {"form": str(exc)})


# --- Validate -----------------------------------------------------------------------------------


def validate(actor, form: OrderForm) -> Validation:
    """Validate: CertDesk's checks, then the CA checks the order without placing it (nothing is
    spent). Audited. Raises OrderInputError; a refusal by the CA is returned, not raised."""
    prepared = prepare(actor, form)
    req = prepared.request
    req.request_id = REQUEST_PREFIX + "validate-" + uuid.uuid4().hex
    req.validate_only = True
    try:
        with registry.open_connector(CA, prepared.credential_id) as conn:
            conn.place(req)
    except CaError as exc:
        outcome, message = "failure", str(exc)
        result = Validation(
            False, message, prepared.names, _refusal(exc, prepared.credential_id).errors
        )
    else:
        outcome = "success"
        message = (
            f"Entrust would accept this order for {', '.join(prepared.names[:5])}"
            f"{' and more' if len(prepared.names) > 5 else ''}. Nothing was ordered."
        )
        result = Validation(True, message, prepared.names)
    audit.record(
        "order.validate",
        actor=actor,
        object_type="credential",
        object_id=prepared.credential_id,
        outcome=outcome,
        detail={"product": req.product, "names": prepared.names[:20], "result": message[:500]},
    )
    db.session.commit()
    return result


# --- placing ------------------------------------------------------------------------------------


def _request_json(req: OrderRequest, custom_labels: dict[str, str] | None = None) -> str:
    """The request as sent, for the order page and for placing it again (no secret in it), with
    the labels the account gave its custom fields (the request names them by their keys)."""
    data = asdict(req)
    data["expires_on"] = req.expires_on.isoformat() if req.expires_on else None
    data.pop("validate_only", None)
    labels = {k: v for k, v in (custom_labels or {}).items() if k in req.custom_fields and v}
    if labels:
        data["custom_labels"] = labels
    return json.dumps(data, sort_keys=True)


def custom_labels(row: Order) -> dict[str, str]:
    """The labels of the custom fields an order was placed with, as they were then."""
    labels = json.loads(row.request or "{}").get("custom_labels")
    return labels if isinstance(labels, dict) else {}


def _request_from(text: str, request_id: str) -> OrderRequest:
    data = json.loads(text)
    data.pop("custom_labels", None)
    data["request_id"] = request_id
    data["requester"] = Requester(**data.get("requester") or {})
    if data.get("expires_on"):
        data["expires_on"] = date.fromisoformat(data["expires_on"])
    return OrderRequest(**data)


def new_request_id() -> str:
    """A fresh request id: an intent's, or the one the Order Certificate form is shown with."""
    return REQUEST_PREFIX + str(uuid.uuid4())


def form_request_id(value: str) -> str:
    """The request id an Order Certificate form was shown with, when it is one CertDesk makes
    (else "": the order gets a fresh one)."""
    prefix, _, rest = (value or "").strip().partition(":")
    try:
        made = prefix + ":" == REQUEST_PREFIX and str(uuid.UUID(rest, version=4)) == rest
    except ValueError:
        made = False
    return REQUEST_PREFIX + rest if made else ""


class SentAlready(OrderInputError):
    """The form was sent already (a double click, or Back and send again): its request id names
    an order. Nothing is sent again; ``order_id`` is that order."""

    def __init__(self, order: Order):
        super().__init__(
            f"This form was sent already: it is order {order.display_name}. It was not sent "
            "again; to send another, open the form anew.",
            "form",
        )
        self.order_id = order.id


def _refuse_sent(request_id: str) -> None:
    """Raise SentAlready when an order holds ``request_id``."""
    if not request_id:
        return
    sent = db.session.execute(select(Order).where(Order.request_id == request_id)).scalar()
    if sent is not None:
        raise SentAlready(sent)


def unsent_request_id(form: OrderForm) -> str:
    """The request id the form was shown with ("" when it carries none of CertDesk's), unless an
    order holds it already: then SentAlready."""
    request_id = form_request_id(form.request_id)
    _refuse_sent(request_id)
    return request_id


def place(actor, form: OrderForm) -> Order:
    """Order Certificate. CertDesk's checks (OrderInputError, nothing stored), then the order is
    placed exactly once (see the module docstring). Returns the order: issued (its certificate is
    in the repository, linked to the order, CSR and key), pending (queued for approval), or
    unknown (the answer was lost: being settled). Raises OrderRefused when the CA said no or could
    not be reached and nothing was ordered; then nothing but the audit event is kept. A form sent
    again with the request id it was shown with (``form.request_id``) raises SentAlready while
    the order it placed is kept."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    request_id = unsent_request_id(form)
    prepared = prepare(actor, form)
    prepared.request.request_id = request_id
    key_row, key_created = keep_key(actor, prepared, form)
    return submit(
        actor,
        prepared.credential_id,
        prepared.request,
        csr_id=prepared.csr_id,
        key_row=key_row,
        key_created=key_created,
        friendly_name=prepared.friendly_name,
        custom_labels=prepared.custom_labels,
    )


def keep_key(actor, prepared, form: OrderForm) -> tuple:
    """The private key given with the CSR (or made for it), stored encrypted before the order
    is sent: (its row, whether it is new), or (None, False) without one."""
    if prepared.key is None:
        return None, False
    existing = keys.by_public_id(prepared.csr_info.public_key_id)
    origin = "generated" if form.csr_source == "new" else "imported"
    return keys.store(prepared.key, actor, origin), existing is None


def _send(conn, req: OrderRequest, origin: str, parent_ca_id: str | None) -> Placed:
    """The one create call: a new order, or a reissue or renewal of the CA's order
    ``parent_ca_id`` (a new order at the CA too)."""
    if origin == "reissue":
        return conn.reissue(parent_ca_id, req)
    if origin == "renew":
        return conn.renew(parent_ca_id, req)
    return conn.place(req)


def _claim_parent(parent_id: int, now: datetime, origin: str) -> None:
    """Before a reissue or renewal's intent: lock the original's row (so that two requests for
    the same order take turns) and refuse while another one of it is not settled, while a
    status action's call on it (a revocation, say) is under way, or when the original as it is
    now can no longer be replaced (another request's reissue settled between this request's
    checks and this lock, and Entrust holds the original as reissued). The original
    is due for a status check after the call can no longer take effect (the scheduled check takes
    what is due within half a poll interval): should CertDesk not read back what the call made
    of the original (Entrust did not answer that read, neither right after the call nor when the
    reconciler settled it), that check reads it."""
    later = registry.answer_deadline(CA) + timedelta(minutes=service.poll_minutes())
    db.session.execute(
        update(Order)
        .where(Order.id == parent_id)
        .values(updated_at=now, next_check_at=now + later)
        .execution_options(synchronize_session=False)
    )
    acting = db.session.execute(
        select(Order.acting, Order.acting_until).where(Order.id == parent_id)
    ).first()
    if acting is not None and (why := availability.acting_words(acting[0], acting[1], now)):
        db.session.rollback()
        raise OrderInputError(why, "form")
    busy = records.unsettled_successor(parent_id)
    if busy is not None:
        db.session.rollback()
        raise OrderInputError(
            f"Another reissue or renewal of this order (order #{busy}) is under way: CertDesk is "
            "still checking with Entrust whether it was placed. Wait until it is settled.",
            "form",
        )
    parent = db.session.get(Order, parent_id, populate_existing=True)
    if problem := lineage.cannot_replace(parent, origin):
        db.session.rollback()
        raise OrderInputError(problem, "form")


def _claim_again(old_id: int, new_id: int) -> None:
    """With the intent of a "not placed" order placed again: name the new order on the old one,
    where none is named yet. Of two requests to place it again, the second waits for the first's
    row lock, then finds it named and is refused (nothing is sent)."""
    claimed = db.session.execute(
        update(Order)
        .where(Order.id == old_id, Order.placement == NOT_PLACED, Order.again_id.is_(None))
        .values(again_id=new_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        again_id = db.session.execute(select(Order.again_id).where(Order.id == old_id)).scalar()
        if again_id is None:  # settled meanwhile: Entrust holds it after all
            raise OrderInputError(NOT_PLACED_ONLY, "form")
        raise OrderInputError(_placed_again_already(again_id), "form")


NOT_PLACED_ONLY = "Only an order that was not placed can be placed again."


def _placed_again_already(again_id: int) -> str:
    again = db.session.get(Order, again_id)
    name = again.display_name if again is not None else f"#{again_id}"
    return f"This order has been placed again already, as order {name}."


def submit(
    actor,
    credential_id: int,
    req: OrderRequest,
    *,
    csr_id: int | None,
    key_row=None,
    key_created: bool = False,
    private_key_id: int | None = None,
    friendly_name: str = "",
    again_of: int | None = None,
    origin: str = "placed",
    parent: Order | None = None,
    custom_labels: dict[str, str] | None = None,
) -> Order:
    """Place ``req`` exactly once: a new order, or (``origin`` "reissue" or "renew") a new order
    that replaces ``parent`` at the CA. The intent row is committed before the call."""
    now = utcnow()
    if key_row is None and private_key_id is None and csr_id is not None:
        # The order keeps the key of the CSR it was placed with: the certificate Entrust issues
        # later is linked to that key, which must outlive the CSR being deleted meanwhile.
        csr = csrs.get_csr(csr_id)
        private_key_id = csr.private_key_id if csr is not None else None
    parent_id = parent.id if parent is not None else None
    parent_ca_id = parent.ca_order_id if parent is not None else None
    try:
        conn = registry.open_connector(CA, credential_id)
    except Unavailable as exc:
        db.session.rollback()
        raise OrderRefused(str(exc), {"credential_id": str(exc)}) from None
    with conn:
        if parent_id is not None:
            _claim_parent(parent_id, now, origin)
        req.request_id = req.request_id or new_request_id()
        deadline = registry.answer_deadline(CA)
        row = Order(
            ca=CA,
            credential_id=credential_id,
            placement=INTENT,
            origin=origin,
            parent_id=parent_id,
            request_id=req.request_id,
            common_name=req.sans[0] if req.sans else "",
            sans=join_names(req.sans),
            product=req.product,
            organization=req.organization or "",
            requester_name=req.requester.name[:255],
            requester_email=req.requester.email[:254],
            friendly_name=friendly_name[:255],
            request=_request_json(req, custom_labels),
            csr_id=csr_id,
            private_key_id=key_row.id if key_row is not None else private_key_id,
            placed_by_id=getattr(actor, "id", None),
            attempted_at=now,
            next_check_at=now + deadline,
            created_at=now,
            updated_at=now,
        )
        records.index_search(row)
        db.session.add(row)
        try:
            db.session.flush()
        except IntegrityError:  # the same form, sent twice at once: the other one placed it
            db.session.rollback()
            _refuse_sent(req.request_id)
            raise
        if again_of is not None:
            _claim_again(again_of, row.id)
        records.event(row, "requested", actor=actor, now=now, message="Sent to Entrust.")
        audit.record(
            "order.request",
            actor=actor,
            object_type="order",
            object_id=row.id,
            detail={
                "request_id": req.request_id,
                "credential_id": credential_id,
                "product": req.product,
                "names": req.sans[:20],
                "queue_for_approval": req.queue_for_approval,
                "placed_again_from": again_of,
                **({"origin": origin, "replaces": parent_id} if parent_id is not None else {}),
            },
        )
        db.session.commit()  # the intent exists before the call
        order_id = row.id
        try:
            placed = _send(conn, req, origin, parent_ca_id)
        except Unavailable as exc:
            if not exc.outcome_unknown:
                _withdraw(order_id, actor, exc, key_row if key_created else None)
                raise _refusal(exc, credential_id) from None
            _mark_unknown(order_id, actor, str(exc), again_of)
            return _settle_now(order_id, actor, conn)
        except (Refused, NotAllowed) as exc:
            _withdraw(order_id, actor, exc, key_row if key_created else None)
            # Refused in the original's state (revoked in Entrust's portal meanwhile, say), not
            # for a field of the form the user can correct: CertDesk's view of it may be old.
            if parent_id is not None and isinstance(exc, Refused) and exc.state:
                _read_original(conn, parent_id, actor)
            raise _refusal(exc, credential_id) from None
        try:
            return _placed(order_id, actor, placed.outcome, placed.order, again_of, conn)
        except Exception:
            return _not_recorded(order_id, actor, placed.order, again_of)


def _read_original(conn, parent_id: int, actor) -> None:
    """The CA refused to replace the original in its state: the original is read back once (the
    reissue or renewal is never sent again), and what the CA holds is applied as after a refused
    status action. Best effort: the refusal is what the user is told, and the scheduled status
    check reads the original should this fail."""
    try:
        parent = db.session.get(Order, parent_id)
        if parent is not None and parent.ca_order_id:
            lifecycle.read_back_refused(conn, parent, actor)
            db.session.commit()
    except Exception:
        log.exception("could not read back order %s after its refusal", parent_id)
        db.session.rollback()


NOT_RECORDED = "Entrust accepted the order"


def _not_recorded(order_id: int, actor, ca: CaOrder | None, again_of: int | None) -> Order:
    """Entrust took the order, and recording its answer failed (the database refused a write,
    say). The order must not look unplaced, nor be placed again: it waits, its outcome unknown,
    for the reconciler, which finds it at Entrust by its request id and links it."""
    log.exception("order %s was placed at Entrust but its answer could not be recorded", order_id)
    number = f" as tracking ID {ca.order_id}" if ca is not None and ca.order_id else ""
    _mark_unknown(  # a no-op when the order was recorded as placed before the failure
        order_id,
        actor,
        f"{NOT_RECORDED}{number}, but CertDesk could not record its answer (the server log says "
        "why). CertDesk links it at its next check; do not order it again.",
        again_of,
        due=True,
    )
    return db.session.get(Order, order_id)


def _note_again(again_of: int | None, row: Order, actor, now: datetime) -> None:
    """On the "not placed" order placed again, a history line pointing at the new one."""
    old = db.session.get(Order, again_of) if again_of else None
    if old is not None:
        records.event(
            old,
            "placed_again",
            actor=actor,
            now=now,
            related=row.id,
            message=f"Placed again as order #{row.id}.",
        )


def _mark_unknown(
    order_id: int, actor, message: str, again_of: int | None = None, *, due: bool = False
) -> None:
    """The order's outcome is unknown, unless it was settled already (then nothing is written);
    ``due``: the reconciler looks for it at its next run (otherwise once the call's deadline has
    passed)."""
    db.session.rollback()
    now = utcnow()
    values = {"placement": UNKNOWN, "message": message[:2000], "updated_at": now}
    if due:
        values["next_check_at"] = now
    if not settling.claim(order_id, values):
        db.session.rollback()
        return
    row = db.session.get(Order, order_id)
    db.session.refresh(row)
    records.event(row, "unknown", actor=actor, now=now, message=message)
    _note_again(again_of, row, actor, now)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=order_id,
        outcome="unknown",
        detail={"request_id": row.request_id, "error": message[:500]},
    )
    db.session.commit()


def _withdraw(order_id: int, actor, exc: CaError, new_key) -> None:
    """The CA said no (or was not reached): nothing was ordered, so the intent goes, and a key
    stored only for it goes too. The audit trail keeps the attempt."""
    db.session.rollback()
    row = db.session.get(Order, order_id)
    detail = {"request_id": row.request_id, "product": row.product, "error": str(exc)[:500]}
    if isinstance(exc, Refused) and exc.fields:
        detail["fields"] = dict(list(exc.fields.items())[:10])
    if row.parent_id is not None:
        detail.update(origin=row.origin, replaces=row.parent_id)
    db.session.execute(delete(Order).where(Order.id == order_id, Order.placement == INTENT))
    # A "not placed" order this was to place again may be placed again once more.
    db.session.execute(
        update(Order)
        .where(Order.again_id == order_id)
        .values(again_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    if new_key is not None:
        keys.delete_if_unused(new_key)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=order_id,
        outcome="failure",
        detail=detail,
    )
    db.session.commit()


def _placed(
    order_id: int,
    actor,
    outcome: str,
    ca: CaOrder | None,
    again_of: int | None = None,
    conn=None,
) -> Order:
    """Record the CA's answer: the order placed, linked to the CA's order (and, for a reissue or
    renewal, to the original, read back first), all in one transaction."""
    now = utcnow()
    if ca is None or not ca.order_id:
        # An answer without the CA's id cannot be linked; let the reconciler find it.
        _mark_unknown(order_id, actor, "Entrust's answer did not name the order.", again_of)
        return db.session.get(Order, order_id)
    row = db.session.get(Order, order_id)
    back = lineage.read_back(row, records.order_key(ca), conn) if row is not None else None
    # The answer may come after CertDesk called the order not placed (its call was held up for
    # longer than the deadline allowed for): Entrust placed it, so it is linked all the same,
    # never dropped, whatever was done since.
    late = False
    if not settling.claim(order_id, {"placement": PLACED}):
        late = settling.claim(order_id, {"placement": PLACED}, from_=(NOT_PLACED,))
        if not late:
            db.session.rollback()
            return db.session.get(Order, order_id)
    row = db.session.get(Order, order_id)
    db.session.refresh(row)
    if ca.phase is Phase.ISSUED:
        row.issued_at = row.issued_at or now
    problem = settling.link(row, ca, actor, now, source="entrust")
    words = {
        "issued": "Placed; Entrust issued the certificate.",
        "pending": "Placed; it waits for an Entrust administrator's approval.",
    }.get(outcome, "Placed.")
    if row.origin in SUCCESSORS:
        words = {
            "issued": "Placed; Entrust issued the new certificate.",
            "pending": "Placed; Entrust is processing it.",
        }.get(outcome, "Placed.")
    row.message = problem
    if late:
        words = _late_words(row)
        row.message = (words + " " + problem).strip()
    records.event(row, "placed", actor=actor, new=row.status, now=now, message=words, notify=late)
    _note_again(again_of, row, actor, now)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=row.id,
        detail={
            "request_id": row.request_id,
            "ca_order_id": row.ca_order_id,
            "outcome": outcome,
            "status": row.status,
            **({"after_not_placed": True, "placed_again_as": row.again_id} if late else {}),
        },
    )
    lineage.successor_linked(row, back, actor, now=now)
    db.session.commit()
    db.session.refresh(row)  # as committed, for a caller that reads it after its session ends
    return row


def _late_words(row: Order) -> str:
    """What a placed order says when Entrust's answer came after it was called not placed."""
    words = (
        f"Entrust's answer came after CertDesk had called this order not placed: Entrust placed "
        f"it after all, as order {row.ca_order_id}."
    )
    if row.again_id is not None:
        again = db.session.get(Order, row.again_id)
        name = again.display_name if again is not None else f"#{row.again_id}"
        words += (
            f" It was placed again meanwhile, as order {name}: Entrust holds both. Keep one, and "
            "revoke the other (or have an Entrust administrator decline it while it waits)."
        )
    return words


# --- a lost answer, and placing again ---------------------------------------------------------


def _settle_now(order_id: int, actor, conn) -> Order:
    """Right after a lost answer: search once (the order is found if it was placed and the CA
    lists it already); otherwise it stays unknown until the deadline has passed."""
    row = db.session.get(Order, order_id)
    try:
        return settling.reconcile(row, actor, conn=conn)
    except Exception:  # the reconciler tries again on schedule
        log.exception("could not settle order %s right away", order_id)
        db.session.rollback()
        return db.session.get(Order, order_id)


def may_be_unlisted(row: Order) -> bool:
    """Whether a "not placed" order could be one Entrust's list does not show, so that no search
    finds it: one that waited for approval (queued, or placed through an API user without
    administrator rights) and was declined before CertDesk could ask."""
    if json.loads(row.request or "{}").get("queue_for_approval"):
        return True
    cred = db.session.get(EcsCredential, row.credential_id)
    return cred is not None and not cred.is_admin


UNLISTED_UNCHECKED = (
    "Entrust's list does not show declined orders, so CertDesk cannot tell whether an Entrust "
    "administrator declined this one. Look in Entrust's portal for an order whose tracking "
    "information is this order's request ID, then tick that you did, to place it again."
)


def place_again(actor, row: Order, *, looked_in_portal: bool = False) -> Order:
    """Place a "not placed" order again, as a new order with a new request id. One more search
    for the old request id comes first: if the CA holds it after all, it is linked instead.
    An order that may be one the search cannot find (``may_be_unlisted``) is placed again only
    once the user says they looked for it in Entrust's portal (``looked_in_portal``)."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    if row.placement != NOT_PLACED:
        raise OrderInputError(NOT_PLACED_ONLY, "form")
    if row.again_id is not None:
        raise OrderInputError(_placed_again_already(row.again_id), "form")
    if not looked_in_portal and may_be_unlisted(row):
        raise OrderInputError(UNLISTED_UNCHECKED, "looked_in_portal")
    parent = None
    if row.origin in SUCCESSORS:
        parent = db.session.get(Order, row.parent_id) if row.parent_id else None
        problem = lineage.cannot_replace(parent, row.origin)
        if problem:
            raise OrderInputError(problem, "form")
    try:
        with registry.open_connector(row.ca, row.credential_id) as conn:
            found = conn.find_by_request_id(row.request_id)
            full = None
            if found and found[0].phase in (Phase.ISSUED, Phase.SUSPENDED):
                full = conn.fetch(found[0].order_id)
    except CaError as exc:
        db.session.rollback()
        audit.record(
            "order.place_again",
            actor=actor,
            object_type="order",
            object_id=row.id,
            outcome="failure",
            detail={"request_id": row.request_id, "error": str(exc)[:500]},
        )
        db.session.commit()
        raise OrderRefused(str(exc), {"form": str(exc)}) from None
    if found:
        return settling.settle_found(
            row, full or found[0], len(found), actor, utcnow(), (NOT_PLACED,)
        )
    req = _request_from(row.request, "")
    return submit(
        actor,
        row.credential_id,
        req,
        csr_id=row.csr_id,
        private_key_id=row.private_key_id,
        friendly_name=row.friendly_name,
        again_of=row.id,
        origin=row.origin if parent is not None else "placed",
        parent=parent,
        custom_labels=custom_labels(row),
    )
