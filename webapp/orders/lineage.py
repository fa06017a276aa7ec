"""Reissues and renewals, once the CA holds the new order: the original and its successor are read
back from the CA, each gets a line in its history pointing at the other, and the original's
certificate is marked revoked in the repository when the CA revoked it (Entrust revokes a
reissued certificate; a renewed one stays valid until it expires).

Done when a reissue or renewal is linked: right after its create call, or later by the reconciler
when the answer had been lost (or CertDesk stopped before recording it). Both orders are read
(``read_back``) before anything is written, and the link is recorded (``successor_linked``) in the
same transaction that records the new order as placed: should CertDesk stop in between, the order
is still waiting to be settled, and the reconciler that settles it records the link, once. Nothing
here calls the CA but to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import Action, CaError, CaOrder, Phase
from webapp.certificates import service as certificates
from webapp.extensions import db
from webapp.orders import availability, records
from webapp.orders.models import SUCCESSORS, Order

ACTIONS = {"reissue": Action.REISSUE, "renew": Action.RENEW}
# History words: on the original, and on the order that replaces it.
INTO = {"reissue": "reissued_into", "renew": "renewed_into"}
OF = {"reissue": "reissue_of", "renew": "renewal_of"}


def cannot_replace(parent: Order | None, origin: str) -> str:
    """Why a reissue or renewal (``origin``) of ``parent`` cannot be placed now, or ""."""
    if parent is None:
        return (
            "The original order was deleted from CertDesk, so this cannot be placed again from "
            "here; reissue or renew the certificate in the Entrust portal."
        )
    return availability.why_not(parent, ACTIONS[origin])


@dataclass
class ReadBack:
    """What the CA said of a new order and of the original it replaces (None: not read)."""

    child: CaOrder | None
    parent: CaOrder | None
    problem: str  # why they could not be read, or ""


def read_back(row: Order, ca_order_id: str | None, conn=None) -> ReadBack | None:
    """Read ``row`` (a reissue or renewal the CA holds as ``ca_order_id``) and the original it
    replaces from the CA, before anything is written (``conn``: a connector open already).
    None when ``row`` replaces no order CertDesk still holds. Writes nothing."""
    if row.origin not in SUCCESSORS or row.parent_id is None:
        return None
    parent = db.session.get(Order, row.parent_id)
    if parent is None:
        return None
    back = ReadBack(None, None, "")
    try:
        if conn is None:
            with registry.open_connector(row.ca, row.credential_id) as own:
                _read(own, back, ca_order_id, parent.ca_order_id)
        else:
            _read(conn, back, ca_order_id, parent.ca_order_id)
    except CaError as exc:
        back.problem = str(exc)
    return back


def _read(conn, back: ReadBack, child_id: str | None, parent_id: str | None) -> None:
    if child_id:
        back.child = conn.fetch(child_id)
    if parent_id:
        back.parent = conn.fetch(parent_id)


def _revoked(origin: str, parent_ca: CaOrder | None, revokes_on_reissue: bool) -> bool:
    if parent_ca is None:
        return False
    if parent_ca.phase is Phase.REVOKED:
        return True
    return origin == "reissue" and parent_ca.phase is Phase.REPLACED and revokes_on_reissue


def successor_linked(row: Order, back: ReadBack | None, actor, *, now: datetime) -> None:
    """``row`` (a reissue or renewal) is being recorded as linked to the CA's new order: from what
    ``read_back`` read, update both orders, record the link in both histories, mark the original's
    certificate revoked in the repository if the CA revoked it. Audited; in the caller's
    transaction (the one that records ``row`` as placed), which commits it."""
    if back is None or row.origin not in SUCCESSORS or row.parent_id is None:
        return
    parent = db.session.get(Order, row.parent_id)
    if parent is None:
        return
    caps = registry.capabilities(row.ca)
    child_ca, parent_ca, problem = back.child, back.parent, back.problem
    if child_ca is not None:
        records.apply(row, child_ca, now)
        have = certificates.orders_with_certificate([row.id])
        if child_ca.phase is Phase.ISSUED and child_ca.certificate_pem and row.id not in have:
            _added, row.message = records.store_certificate(
                row, child_ca, actor=actor, source="entrust"
            )
    old_status = parent.status
    changed_from = None
    if parent_ca is not None:
        _changed, changed_from = records.apply(parent, parent_ca, now)
        records.schedule(parent, now, changed=changed_from is not None)
        if changed_from is not None:
            records.certificates_suspended(parent, actor=actor)
        parent.message = ""
    else:
        parent.message = (
            f"Replaced by order #{row.id}; its own new status could not be read from "
            f"{availability.ca_label(parent)} ({problem or 'no id'}): Check Order Status reads it."
        )[:2000]
    revoked = _revoked(row.origin, parent_ca, caps.reissue_revokes_original)
    if revoked:
        for cert in certificates.for_order(parent.id):
            certificates.mark_revoked(cert, actor=actor, commit=False)
    records.event(
        parent,
        INTO[row.origin],
        actor=actor,
        old=old_status if changed_from is not None else "",
        new=parent.status if changed_from is not None else "",
        related=row.id,
        now=now,
    )
    records.event(row, OF[row.origin], actor=actor, related=parent.id, now=now)
    audit.record(
        "order.replaced",
        actor=actor,
        object_type="order",
        object_id=parent.id,
        outcome="success" if parent_ca is not None else "unknown",
        detail={
            "by": row.id,
            "how": row.origin,
            "ca_order_id": parent.ca_order_id,
            "new_ca_order_id": row.ca_order_id,
            "status": parent.status,
            "certificate_revoked": revoked,
            **({"error": problem[:500]} if problem else {}),
        },
    )
