"""The audit trail: append events in the caller's transaction, verify the chain, search.

Each event's ``hash`` is an HMAC-SHA256 of its content and the previous event's hash, under a key
derived from the master key (which lives outside the database). Someone who can write to the
database but does not hold the master key can neither edit a row and recompute the hashes after
it, nor remove the last rows and move the head back: the head carries a MAC of its own.
``audit_head.key_id`` says which master key keyed the chain; ``certdesk rotate-master-key``
re-keys it (:func:`rekey`), verifying every row under the old key as it goes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from flask import current_app, g, has_request_context, request
from sqlalchemy import Row, false, insert, select, update

from webapp import csvexport, hooks
from webapp.audit.models import AuditEvent, AuditHead
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.paging import Listed, Values, distinct_values
from webapp.security import secretbox

GENESIS = "0" * 64
CHAIN_PURPOSE = "certdesk audit chain v1"  # what the chain key is derived for (HKDF info)
SECRET_WORDS = ("password", "api_key", "apikey", "private_key", "secret", "token", "pkcs12")
_SECRET_KEY = re.compile("|".join(re.escape(word) for word in SECRET_WORDS))  # any of them
# What one event keeps of the values it is given: whatever a request sends, a row stays small.
MAX_DETAIL_TEXT = 500  # characters of each text in the detail
MAX_DETAIL_ITEMS = 50  # entries of each list or mapping in the detail
MAX_DETAIL = 4000  # characters of the detail's JSON
PROGRESS_EVERY = 20_000  # events verified between two progress reports


def _canonical(e: AuditEvent, prev_hash: str | None = None) -> str:
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
            e.prev_hash if prev_hash is None else prev_hash,
        ],
        separators=(",", ":"),
    )


def chain_key(master_key: bytes) -> tuple[str, bytes]:
    """(key id, key) of the chain key derived from ``master_key``."""
    key = secretbox.derive(master_key, CHAIN_PURPOSE)
    return hashlib.sha256(key).hexdigest()[:16], key


def _digest(key: bytes, e: AuditEvent, prev_hash: str | None = None) -> str:
    return hmac.new(key, _canonical(e, prev_hash).encode(), hashlib.sha256).hexdigest()


def _head_mac(key: bytes, seq: int, last_hash: str) -> str:
    return hmac.new(key, json.dumps(["head", seq, last_hash]).encode(), hashlib.sha256).hexdigest()


def _held_keys() -> dict[str, bytes]:
    """Chain keys of every master key the install holds (two during an unfinished rotation)."""
    box = secretbox.current_box()
    cached = current_app.extensions.get("audit_chain_keys")
    if cached is None or cached[0] is not box:
        cached = (box, dict(chain_key(k) for k in box.keys))
        current_app.extensions["audit_chain_keys"] = cached
    return cached[1]


def _key_of(head: AuditHead) -> tuple[str, bytes]:
    """The chain key the head names; a new chain (or one whose key is gone) takes the current."""
    keys = _held_keys()
    if head.key_id in keys:
        return head.key_id, keys[head.key_id]
    return chain_key(secretbox.current_box().key)


def _scrub(detail: dict) -> dict:
    """Refuse to write anything that looks like a secret: the key is kept, the value is not.
    Mappings are looked into wherever they are, in lists and tuples too."""
    clean = {}
    for k, v in detail.items():
        if _SECRET_KEY.search(str(k).lower()):
            clean[k] = "(set)" if v else "(empty)"
        else:
            clean[k] = _scrubbed(v)
    return clean


def _scrubbed(value):
    """``value`` of a detail with every mapping in it scrubbed (a list, tuple or set: a list)."""
    if isinstance(value, dict):
        return _scrub(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(v) for v in value]
    return value


def _address() -> str:
    """The client's address: through trusted reverse proxies (set per request by auth), else
    the peer's."""
    return g.get("client_address") or request.remote_addr or ""


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


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _flat(detail: dict) -> dict | None:
    """``_bounded(_scrub(detail))`` for a detail of named plain values (as one per order of a
    bulk action has), in one pass; None for any other detail."""
    if len(detail) > MAX_DETAIL_ITEMS:
        return None
    out = {}
    for k, v in detail.items():
        if type(k) is not str or type(v) not in _PLAIN:
            return None
        if _SECRET_KEY.search(k.lower()):
            v = "(set)" if v else "(empty)"
        out[_clip(k, 64)] = _clip(v, MAX_DETAIL_TEXT) if type(v) is str else v
    return out


def _detail_json(detail: dict) -> str:
    flat = _flat(detail)
    text = json.dumps(
        _bounded(_scrub(detail)) if flat is None else flat, sort_keys=True, default=str
    )
    if len(text) > MAX_DETAIL:
        text = json.dumps({"detail": _clip(text, MAX_DETAIL - 100)})
    return text


# The names the trail gives work nobody did in person (and a sign-in tried without a name): no
# user may be called so, or their actions would read as CertDesk's own.
SYSTEM_ACTORS = frozenset({"scheduler", "cli", "anonymous", "system", "-"})


# The most ids one event lists: a bulk action on up to 20,000 orders names the first ones and
# how many more (each order's own event follows as it is done), not a cell of 140 KB.
IDS_LISTED = 100


def some_ids(key: str, ids: list) -> dict:
    """``{key: ids}`` for an event's detail, the first ``IDS_LISTED`` of them, with
    ``<key>_more``: how many more there are, when there are."""
    more = len(ids) - IDS_LISTED
    return {key: list(ids[:IDS_LISTED])} | ({f"{key}_more": more} if more > 0 else {})


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
    (values,) = _chained(
        action, actor=actor, object_type=object_type, items=[(object_id, detail)], outcome=outcome
    )
    event = AuditEvent(**values)
    db.session.add(event)
    return event


def record_many(
    action: str,
    *,
    actor,
    object_type: str,
    items: Sequence[tuple[object, dict | None]],
    outcome: str = "success",
) -> int:
    """Append one event per (object id, detail) of ``items``, as :func:`record` does each, with
    one update of the head for them all and one statement for the events (deleting 1,000 orders
    wrote 4,000 statements). Returns how many were appended."""
    rows = _chained(action, actor=actor, object_type=object_type, items=items, outcome=outcome)
    if rows:
        db.session.execute(insert(AuditEvent.__table__), rows)
    return len(rows)


def _chained(
    action: str,
    *,
    actor,
    object_type: str,
    items: Sequence[tuple[object, dict | None]],
    outcome: str,
) -> list[dict]:
    """The column values of one event per item, each chained to the one before, the first to the
    head; the head is moved past them (and holds the lock until the transaction ends). Plain
    values, not objects: building 20,000 events as objects took longer than writing them."""
    if actor is None:
        raise ValueError("an audit event needs an actor: a user, or a name such as 'scheduler'")
    if not items:
        return []
    is_user = not isinstance(actor, str)
    db.session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + len(items))
    )
    head = db.session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        raise HeadRemoved(HEAD_REMOVED)
    key_id, key = _key_of(head)
    at, prev = utcnow(), head.last_hash
    common = {
        "at": at,
        "actor_id": actor.id if is_user else None,
        "actor_name": _clip(actor.username if is_user else str(actor), 64),
        "action": _clip(action, 64),
        "object_type": _clip(object_type, 32),
        "outcome": _clip(outcome, 16),
        "address": _clip(_address() if has_request_context() else "", 64),
    }
    rows = []
    for seq, (object_id, detail) in enumerate(items, start=head.seq - len(items) + 1):
        values = {
            "seq": seq,
            "object_id": _clip(str(object_id) if object_id is not None else "", 64),
            "detail": _detail_json(detail or {}),
            "prev_hash": prev,
            **common,
        }
        values["hash"] = prev = _digest(key, SimpleNamespace(**values))
        rows.append(values)
    head.last_hash, head.key_id = prev, key_id
    head.mac = _head_mac(key, head.seq, head.last_hash)
    return rows


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def _rows_in_order(batch: int = 1000, after: int = 0) -> Iterator[Row]:
    """Every event after seq ``after`` by seq, read in batches (each batch a range of the seq
    index, read on its own: no lock is held between batches). Plain rows with the event's
    attributes, not kept in the session: about twice as fast as loading each as an object."""
    table = AuditEvent.__table__
    last = after
    while True:
        rows = db.session.execute(
            select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].seq


def _stray_row() -> VerifyResult | None:
    """A row numbered before the chain's first (0 or less): the walk, which reads from row 1 on,
    would never meet it, while the list and its export show it as any other event."""
    seq = db.session.execute(
        select(AuditEvent.seq).where(AuditEvent.seq < 1).order_by(AuditEvent.seq).limit(1)
    ).scalar()
    if seq is None:
        return None
    return VerifyResult(False, 0, f"row {seq} was inserted: the chain starts at row 1", seq)


# The head row holds the chain's end, its key and its MAC: without it no event can be appended
# and no removal of the last rows can be told.
HEAD_REMOVED = "the head of the trail was removed: its end cannot be checked, nor events added"


class HeadRemoved(RuntimeError):
    """No event can be appended: the trail's head row is gone (see ``HEAD_REMOVED``)."""


def head_present() -> bool:
    return db.session.get(AuditHead, 1) is not None


class _Walk:
    """Checks rows one by one under ``key``: sequence, link to the previous row, MAC."""

    def __init__(self, key: bytes):
        self.key, self.prev, self.seq, self.checked = key, GENESIS, 1, 0

    def problem(self, e: AuditEvent) -> VerifyResult | None:
        if e.seq != self.seq:
            return VerifyResult(False, self.checked, f"row {self.seq} is missing", self.seq)
        if e.prev_hash != self.prev:
            return VerifyResult(
                False, self.checked, f"row {e.seq} does not follow row {e.seq - 1}", e.seq
            )
        if _digest(self.key, e) != e.hash:
            return VerifyResult(False, self.checked, f"row {e.seq} was altered", e.seq)
        self.prev, self.seq, self.checked = e.hash, e.seq + 1, self.checked + 1
        return None

    def end(self, head: AuditHead | None) -> VerifyResult:
        last = self.seq - 1
        if head is None or head.seq != last or head.last_hash != self.prev:
            return VerifyResult(
                False, self.checked, f"the rows after row {last} were removed", last + 1
            )
        if head.mac != _head_mac(self.key, head.seq, head.last_hash):
            return VerifyResult(
                False,
                self.checked,
                f"the head of the trail was moved (to row {last}): rows after it were removed",
                last + 1,
            )
        return VerifyResult(True, self.checked)


def verify(progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Walk the chain in order; report the first row that was altered, removed or inserted, or
    a head that was moved back over removed rows.

    Only reads, batch by batch, so it holds no lock while it walks and the portal goes on
    appending. Events appended meanwhile are walked too: the head is read again at the end, and
    while it has moved on the walk goes on from where it stopped. ``progress(checked, total)``,
    if given, is called every ``PROGRESS_EVERY`` events."""
    head = db.session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        return VerifyResult(False, 0, HEAD_REMOVED, 1)
    if head.key_id and head.key_id not in _held_keys():
        return VerifyResult(
            False, 0, "the trail is keyed with a master key this install does not hold", 1
        )
    if (stray := _stray_row()) is not None:
        return stray
    walk = _Walk(_key_of(head)[1])
    while True:
        walked = walk.checked
        for e in _rows_in_order(after=walk.seq - 1):
            if (found := walk.problem(e)) is not None:
                return found
            if progress is not None and walk.checked % PROGRESS_EVERY == 0:
                progress(walk.checked, max(head.seq, walk.checked))
        head = db.session.get(AuditHead, 1, populate_existing=True)
        if head is None:
            return VerifyResult(False, walk.checked, HEAD_REMOVED, 1)
        # Appended while this walked (the head moved past the rows read): walk those too. A
        # head past rows that are not there is judged by ``end``.
        if head.seq < walk.seq or walk.checked == walked:
            break
    if head.seq == 0 and walk.checked == 0:
        return VerifyResult(True, 0)
    return walk.end(head)


def rekey(old_master: bytes, new_master: bytes, *, actor) -> VerifyResult:
    """Re-key the whole chain from ``old_master``'s chain key to ``new_master``'s, in one
    transaction (committed here), checking every row under the old key as it goes; then append
    ``audit.rekeyed`` saying whether the trail verified before (re-keying cannot hide a broken
    trail: the event says where it broke). Returns that verification."""
    db.session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    head = db.session.get(AuditHead, 1, populate_existing=True)
    old_id, old_key = chain_key(old_master)
    new_id, new_key = chain_key(new_master)
    if head.key_id == new_id and old_id != new_id:
        db.session.rollback()
        return verify()  # an interrupted rotation re-keyed it already
    walk, found, prev, count = _Walk(old_key), _stray_row(), GENESIS, 0
    table = AuditEvent.__table__
    for e in _rows_in_order():
        if found is None:
            found = walk.problem(e)
        new_hash = _digest(new_key, e, prev_hash=prev)
        db.session.execute(
            update(table).where(table.c.id == e.id).values(prev_hash=prev, hash=new_hash)
        )
        prev = new_hash
        count += 1
    if found is None:
        found = (
            walk.end(head)
            if head.key_id in ("", old_id)
            else VerifyResult(False, count, "the trail was keyed with another master key", 1)
        )
    head.seq, head.last_hash, head.key_id = count, prev, new_id
    head.mac = _head_mac(new_key, head.seq, head.last_hash)
    db.session.flush()
    record(
        "audit.rekeyed",
        actor=actor,
        object_type="audit",
        outcome="success" if found.ok else "failure",
        detail={"events": count, "verified_before": found.ok, "problem": found.problem},
    )
    db.session.commit()
    return found


def record_refusal(actor, endpoint: str | None, method: str, path: str, reason: str) -> None:
    """Record a refused request (403), whatever the request had begun: its own changes are
    rolled back first. ``actor`` is the signed-in user, or "anonymous"."""
    db.session.rollback()
    record(
        "access.denied",
        actor=actor,
        object_type="route",
        object_id=endpoint or path,
        outcome="refused",
        detail={"method": method, "path": path, "reason": reason or ""},
    )
    db.session.commit()


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


# What the trail's page shows, read as plain values (webapp.paging.Listed): the client's address
# too (where an event has one); the chain's hashes stay in the database.
LISTED = Listed(
    (
        AuditEvent.id,
        AuditEvent.seq,
        AuditEvent.at,
        AuditEvent.actor_name,
        AuditEvent.action,
        AuditEvent.object_type,
        AuditEvent.object_id,
        AuditEvent.outcome,
        AuditEvent.detail,
        AuditEvent.address,
    ),
    Values,
)


def _actor_names(typed: str) -> list[str]:
    """The names under which the trail records the user named ``typed``: a user name's one form
    (trimmed, lower case, Unicode's NFKC: full-width "ａｄｍｉｎ" is admin, as at sign-in), and
    the plain lower case a name was stored in before it took that form."""
    plain = typed.strip().lower()
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", typed).strip().lower())
    return sorted({name, plain})


def query(f: AuditFilter):
    """The filtered trail, newest first. Each filter is an equality that leads an index ending
    with ``seq``; a date range becomes the range of sequence numbers recorded in it (events are
    appended in time order), so every filter pages through an index."""
    stmt = select(AuditEvent)
    if f.user:
        names = _actor_names(f.user)
        # One name (nearly always): an equality, which pages through the index in seq order.
        stmt = stmt.where(
            AuditEvent.actor_name == names[0]
            if len(names) == 1
            else AuditEvent.actor_name.in_(names)
        )
    if f.action:
        stmt = stmt.where(AuditEvent.action == f.action.strip())
    if f.object:
        # As typed: "Certificate: 12" is certificate:12 (the types are lower-case words).
        kind, _, ident = f.object.strip().partition(":")
        stmt = stmt.where(AuditEvent.object_type == kind.strip().lower())
        if ident.strip():
            stmt = stmt.where(AuditEvent.object_id == ident.strip())
    if f.since:
        first = _first_seq_at(f.since)
        stmt = stmt.where(AuditEvent.seq >= first) if first is not None else stmt.where(false())
    if f.until:
        end = _first_seq_at(f.until)
        if end is not None:
            stmt = stmt.where(AuditEvent.seq < end)
    return stmt.order_by(AuditEvent.seq.desc())


def issuing_order(f: AuditFilter) -> int | None:
    """For the filter ``certificate:<id>``, the id of the order that issued that certificate
    (None otherwise). The filter stays what it says (the certificate's own events); the page
    points at the order's, under which its approval, suspension and revocation are recorded."""
    kind, _, ident = f.object.strip().partition(":")
    ident = ident.strip()
    if kind.strip().lower() != "certificate" or not ident.isdecimal() or len(ident) > 18:
        return None
    found = hooks.emit("certificate.issued_by", certificate_id=int(ident))
    return next((r for r in found if r is not None), None)


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


def filter_detail(f: AuditFilter) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(f).items() if v}


def export_csv(actor, f: AuditFilter) -> Iterator[str]:
    """Record the export (``audit.export``, committed), then stream the filtered rows as CSV in
    the page's order (read after the view has returned, through a session of the stream's own)."""
    record("audit.export", actor=actor, object_type="audit", detail=filter_detail(f))
    db.session.commit()
    rows = csvexport.query_rows(query(f), db.engine)
    return csvexport.stream(CSV_COLUMNS, ([getattr(e, c) for c in CSV_COLUMNS] for e in rows))
