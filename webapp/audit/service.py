"""The audit trail: append events in the caller's transaction, verify the hash chain, search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import false, select, update

from webapp import csvexport
from webapp.audit.models import AuditEvent, AuditHead
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.paging import distinct_values

GENESIS = "0" * 64
SECRET_WORDS = ("password", "api_key", "apikey", "private_key", "secret", "token", "pkcs12")


def _canonical(e: AuditEvent) -> str:
    return json.dumps(
        [
            e.seq,
            e.at.isoformat(timespec="microseconds"),
            e.actor_id,
            e.actor_name,
            e.action,
            e.object_type,
            e.object_id,
            e.outcome,
            e.detail,
            e.address,
            e.prev_hash,
        ],
        separators=(",", ":"),
    )


def _digest(e: AuditEvent) -> str:
    return hashlib.sha256(_canonical(e).encode()).hexdigest()


def _scrub(detail: dict) -> dict:
    """Refuse to write anything that looks like a secret: the key is kept, the value is not."""
    clean = {}
    for k, v in detail.items():
        if any(word in k.lower() for word in SECRET_WORDS):
            clean[k] = "(set)" if v else "(empty)"
        elif isinstance(v, dict):
            clean[k] = _scrub(v)
        else:
            clean[k] = v
    return clean


def record(
    action: str,
    *,
    actor,
    object_type: str = "",
    object_id: object = "",
    outcome: str = "success",
    detail: dict | None = None,
) -> AuditEvent:
    """Append one event to the session's transaction; it commits or rolls back with the change.

    ``actor`` is always given by the caller: the signed-in user who asked for the change, or,
    for work nobody asked for in person, a name such as "scheduler", "cli" or, for a failed
    sign-in, the name that was tried. A service never guesses it from the request.

    The head row is updated first, which takes the write lock (SQLite) or the row lock
    (PostgreSQL) so that concurrent appends form one chain.
    """
    if actor is None:
        raise ValueError("an audit event needs an actor: a user, or a name such as 'scheduler'")
    is_user = not isinstance(actor, str)
    db.session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = db.session.get(AuditHead, 1, populate_existing=True)
    event = AuditEvent(
        seq=head.seq,
        at=utcnow(),
        actor_id=actor.id if is_user else None,
        actor_name=(actor.username if is_user else actor)[:64],
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        outcome=outcome,
        detail=json.dumps(_scrub(detail or {}), sort_keys=True, default=str),
        address=(request.remote_addr or "") if has_request_context() else "",
        prev_hash=head.last_hash,
    )
    event.hash = _digest(event)
    head.last_hash = event.hash
    db.session.add(event)
    return event


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def verify() -> VerifyResult:
    """Walk the chain in order; report the first row that was altered, removed or inserted."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    rows = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    ).scalars()
    for e in rows:
        if e.seq != expected_seq:
            return VerifyResult(False, checked, f"row {expected_seq} is missing", expected_seq)
        if e.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, f"row {e.seq} does not follow row {e.seq - 1}", e.seq
            )
        if _digest(e) != e.hash:
            return VerifyResult(False, checked, f"row {e.seq} was altered", e.seq)
        expected_prev, expected_seq, checked = e.hash, e.seq + 1, checked + 1
    head = db.session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.last_hash != expected_prev):
        return VerifyResult(
            False, checked, f"the last rows after {expected_seq - 1} were removed", expected_seq
        )
    return VerifyResult(True, checked)


@dataclass
class AuditFilter:
    user: str = ""
    action: str = ""
    object: str = ""
    since: datetime | None = None
    until: datetime | None = None


def _first_seq_at(when: datetime) -> int | None:
    """The sequence number of the first event recorded at or after ``when`` (an index seek)."""
    return db.session.execute(
        select(AuditEvent.seq).where(AuditEvent.at >= when).order_by(AuditEvent.at).limit(1)
    ).scalar()


def query(f: AuditFilter):
    """The filtered trail, newest first. Each filter is an equality that leads an index ending
    with ``seq``; a date range becomes the range of sequence numbers recorded in it (events are
    appended in time order), so every filter pages through an index."""
    stmt = select(AuditEvent)
    if f.user:
        stmt = stmt.where(AuditEvent.actor_name == f.user.strip().lower())
    if f.action:
        stmt = stmt.where(AuditEvent.action == f.action.strip())
    if f.object:
        kind, _, ident = f.object.strip().partition(":")
        stmt = stmt.where(AuditEvent.object_type == kind)
        if ident:
            stmt = stmt.where(AuditEvent.object_id == ident)
    if f.since:
        first = _first_seq_at(f.since)
        stmt = stmt.where(AuditEvent.seq >= first) if first is not None else stmt.where(false())
    if f.until:
        end = _first_seq_at(f.until)
        if end is not None:
            stmt = stmt.where(AuditEvent.seq < end)
    return stmt.order_by(AuditEvent.seq.desc())


def actions() -> list[str]:
    """The actions to filter by: one index seek per action."""
    return distinct_values(AuditEvent.action)


CSV_COLUMNS = [
    "seq",
    "at",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "detail",
    "address",
    "hash",
]


def export_csv(f: AuditFilter) -> Iterator[str]:
    """Stream the filtered rows as CSV, in the page's order."""
    rows = db.session.execute(query(f).execution_options(yield_per=2000)).scalars()
    return csvexport.stream(CSV_COLUMNS, ([getattr(e, c) for c in CSV_COLUMNS] for e in rows))
