"""Reissues and renewals, once the CA holds the new order: the original and its successor are read
back from the CA, each gets a line in its history pointing at the other, and the original's
certificate is marked revoked in the repository when the CA revoked it (Entrust revokes a
reissued certificate; a renewed one stays valid until it expires).

Called when a reissue or renewal is linked: right after its create call, or later by the
reconciler when the answer had been lost. Nothing here calls the CA but to read."""

from __future__ import annotations

from datetime import datetime

from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import Action, CaError, CaOrder, Phase
from webapp.certificates import service as certificates
from webapp.dbtypes import utcnow
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


def _revoked(origin: str, parent_ca: CaOrder | None, revokes_on_reissue: bool) -> bool:
    if parent_ca is None:
        return False
    if parent_ca.phase is Phase.REVOKED:
        return True
    return origin == "reissue" and parent_ca.phase is Phase.REPLACED and revokes_on_reissue


def successor_linked(row: Order, actor, *, now: datetime | None = None) -> None:
    """``row`` (a reissue or renewal) was just linked to the CA's new order: read both orders
    back, record the link in both histories, mark the original's certificate revoked in the
    repository if the CA revoked it. Audited; commits."""
    if row.origin not in SUCCESSORS or row.parent_id is None:
        return
    parent = db.session.get(Order, row.parent_id)
    if parent is None:
        return
    now = now or utcnow()
    caps = registry.capabilities(row.ca)
    child_ca = parent_ca = None
    problem = ""
    try:
        with registry.open_connector(row.ca, row.credential_id) as conn:
            if row.ca_order_id:
                child_ca = conn.fetch(row.ca_order_id)
            if parent.ca_order_id:
                parent_ca = conn.fetch(parent.ca_order_id)
    except CaError as exc:
        problem = str(exc)
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
    db.session.commit()
