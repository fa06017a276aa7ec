"""The audit trail: append events in the caller's transaction, verify the hash chain, search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import select, update

from webapp import csvexport
from webapp.audit.models import AuditEvent, AuditHead
from webapp.dbtypes import utcnow
from webapp.extensions import db

GENESIS = "0" * 64
SECRET_WORDS = ("password", "api_key", "apikey", "private_key", "secret", "token", "pkcs12")
# What one event keeps of the values it is given: whatever a request sends, a row stays small.
MAX_DETAIL_TEXT = 500  # characters of each text in the detail
MAX_DETAIL_ITEMS = 50  # entries of each list or mapping in the detail
MAX_DETAIL = 4000  # characters of the detail's JSON


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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded(value, depth: int = 0):
    """``value`` (a detail) with long texts cut, long lists and mappings shortened."""
    if isinstance(value, str):
        return _clip(value, MAX_DETAIL_TEXT)
    if isinstance(value, dict):
        items = list(value.items())
        out = {
            _clip(str(k), 64): _bounded(v, depth + 1) if depth < 4 else "…"
            for k, v in items[:MAX_DETAIL_ITEMS]
        }
        if len(items) > MAX_DETAIL_ITEMS:
            out["…"] = f"{len(items) - MAX_DETAIL_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set):
        items = list(value)
        out = [_bounded(v, depth + 1) if depth < 4 else "…" for v in items[:MAX_DETAIL_ITEMS]]
        return out + (
            [f"… {len(items) - MAX_DETAIL_ITEMS} more"] if len(items) > MAX_DETAIL_ITEMS else []
        )
    return value


def _detail_json(detail: dict) -> str:
    text = json.dumps(_bounded(_scrub(detail)), sort_keys=True, default=str)
    if len(text) > MAX_DETAIL:
        text = json.dumps({"detail": _clip(text, MAX_DETAIL - 100)})
    return text


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
        actor_name=_clip(actor.username if is_user else str(actor), 64),
        action=_clip(action, 64),
        object_type=_clip(object_type, 32),
        object_id=_clip(str(object_id) if object_id is not None else "", 64),
        outcome=_clip(outcome, 16),
        detail=_detail_json(detail or {}),
        address=_clip((request.remote_addr or "") if has_request_context() else "", 64),
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


def query(f: AuditFilter):
    stmt = select(AuditEvent)
    if f.user:
        stmt = stmt.where(AuditEvent.actor_name == f.user.strip().lower())
    if f.action:
        stmt = stmt.where(AuditEvent.action.startswith(f.action.strip()))
    if f.object:
        kind, _, ident = f.object.strip().partition(":")
        stmt = stmt.where(AuditEvent.object_type == kind)
        if ident:
            stmt = stmt.where(AuditEvent.object_id == ident)
    if f.since:
        stmt = stmt.where(AuditEvent.at >= f.since)
    if f.until:
        stmt = stmt.where(AuditEvent.at < f.until)
    return stmt.order_by(AuditEvent.seq.desc())


def actions() -> list[str]:
    return list(
        db.session.execute(select(AuditEvent.action).distinct().order_by("action")).scalars()
    )


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
    """Stream the filtered rows as CSV, in the page's order (read after the view has returned,
    through a session of the stream's own)."""
    rows = csvexport.query_rows(query(f), db.engine)
    return csvexport.stream(CSV_COLUMNS, ([getattr(e, c) for c in CSV_COLUMNS] for e in rows))
