"""Hardening: server-side sessions; the audit chain keyed with a key derived from the master key

Revision ID: 0005_hardening
Revises: 0004_job_params
Create Date: 2026-12-02 10:00:00

The audit chain was a plain SHA-256 chain, which anyone who can write to the database can
recompute. From here each row's hash is an HMAC-SHA256 under a key derived (HKDF) from the master
key, and the head carries a MAC too. The existing chain is re-keyed here, once, inside
`certdesk serve` or `certdesk db upgrade` (which hold the master key): the old chain is checked
first and an `audit.chain_keyed` event records whether it verified, and where it broke if not.
The chain's form is written out below as it is at this revision, so that this migration keeps
doing what it did whatever the application does later.
"""
import hashlib
import hmac
import json
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import webapp.dbtypes


revision = '0005_hardening'
down_revision = '0004_job_params'
branch_labels = None
depends_on = None


GENESIS = "0" * 64
CHAIN_PURPOSE = "certdesk audit chain v1"

_events = sa.table(
    "audit_event",
    sa.column("id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("at", webapp.dbtypes.UTCDateTime(timezone=True)),
    sa.column("actor_id", sa.Integer),
    sa.column("actor_name", sa.String),
    sa.column("action", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("outcome", sa.String),
    sa.column("detail", sa.Text),
    sa.column("address", sa.String),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
_head = sa.table(
    "audit_head",
    sa.column("id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("last_hash", sa.String),
    sa.column("key_id", sa.String),
    sa.column("mac", sa.String),
)


def _canonical(row, prev_hash: str) -> bytes:
    return json.dumps(
        [
            row["seq"],
            row["at"].isoformat(timespec="microseconds"),
            row["actor_id"],
            row["actor_name"],
            row["action"],
            row["object_type"],
            row["object_id"],
            row["outcome"],
            row["detail"],
            row["address"],
            prev_hash,
        ],
        separators=(",", ":"),
    ).encode()


def _plain(row, prev_hash: str) -> str:
    return hashlib.sha256(_canonical(row, prev_hash)).hexdigest()


def _keyed(key: bytes, row, prev_hash: str) -> str:
    return hmac.new(key, _canonical(row, prev_hash), hashlib.sha256).hexdigest()


def _chain_key() -> tuple[str, bytes] | None:
    from flask import current_app

    box = current_app.extensions.get("secretbox")
    if box is None:
        return None
    key = HKDF(hashes.SHA256(), 32, None, CHAIN_PURPOSE.encode()).derive(box.key)
    return hashlib.sha256(key).hexdigest()[:16], key


def _rows(conn) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.select(_events).order_by(_events.c.seq))]


def _old_chain_problem(conn, rows) -> str:
    prev = GENESIS
    for expected, row in enumerate(rows, 1):
        if row["seq"] != expected:
            return f"row {expected} was missing"
        if row["prev_hash"] != prev:
            return f"row {row['seq']} did not follow row {row['seq'] - 1}"
        if _plain(row, prev) != row["hash"]:
            return f"row {row['seq']} was altered"
        prev = row["hash"]
    head = conn.execute(sa.select(_head.c.seq, _head.c.last_hash)).one()
    if head.seq != len(rows) or head.last_hash != prev:
        return f"the rows after row {len(rows)} were removed"
    return ""


def _key_the_chain():
    conn = op.get_bind()
    rows = _rows(conn)
    if not rows:
        return  # the first event keys the chain
    found = _chain_key()
    if found is None:
        raise RuntimeError(
            "the audit trail is keyed with the master key: upgrade with `certdesk db upgrade` "
            "or `certdesk serve`"
        )
    key_id, key = found
    problem = _old_chain_problem(conn, rows)
    prev = GENESIS
    for row in rows:
        new = _keyed(key, row, prev)
        conn.execute(
            sa.update(_events).where(_events.c.id == row["id"]).values(prev_hash=prev, hash=new)
        )
        prev = new
    event = {
        "seq": rows[-1]["seq"] + 1,
        "at": datetime.now(UTC),
        "actor_id": None,
        "actor_name": "upgrade",
        "action": "audit.chain_keyed",
        "object_type": "audit",
        "object_id": "",
        "outcome": "failure" if problem else "success",
        "detail": json.dumps(
            {"events": len(rows), "verified_before": not problem, "problem": problem},
            sort_keys=True,
        ),
        "address": "",
        "prev_hash": prev,
    }
    event["hash"] = _keyed(key, event, prev)
    conn.execute(sa.insert(_events).values(**event))
    head_mac = hmac.new(
        key, json.dumps(["head", event["seq"], event["hash"]]).encode(), hashlib.sha256
    ).hexdigest()
    conn.execute(
        sa.update(_head)
        .where(_head.c.id == 1)
        .values(seq=event["seq"], last_hash=event["hash"], key_id=key_id, mac=head_mac)
    )


def _unkey_the_chain():
    conn = op.get_bind()
    prev = GENESIS
    for row in _rows(conn):
        new = _plain(row, prev)
        conn.execute(
            sa.update(_events).where(_events.c.id == row["id"]).values(prev_hash=prev, hash=new)
        )
        prev = new
    conn.execute(sa.update(_head).where(_head.c.id == 1).values(last_hash=prev))


def upgrade():
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))
    _key_the_chain()

    # Sessions live on the server: the cookie carries a token whose SHA-256 is stored here.
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', webapp.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_user_session_ended_at'))

    op.drop_table('user_session')

    _unkey_the_chain()  # back to the plain chain 0004 verifies
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('key_id')
