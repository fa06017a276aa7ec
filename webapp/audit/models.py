from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.extensions import db

# Everything but sign-ins: the dashboard's "recent activity". A partial index holds exactly these
# rows, so the latest of them are found whatever the number of sign-in rows; the query must say
# it in the same words for SQLite and PostgreSQL to use the index.
ACTIVITY = "action NOT LIKE 'auth.%'"


class AuditEvent(db.Model):
    """One recorded change. Append-only: each row's hash covers its content and the last hash."""

    __tablename__ = "audit_event"
    # The trail is read newest first (by seq); each filter leads an index that ends with seq.
    __table_args__ = (
        Index("ix_audit_event_actor_seq", "actor_name", "seq"),
        Index("ix_audit_event_action_seq", "action", "seq"),
        Index("ix_audit_event_object_seq", "object_type", "seq"),
        Index("ix_audit_event_object_id_seq", "object_type", "object_id", "seq"),
        Index(
            "ix_audit_event_activity",
            "seq",
            sqlite_where=text(ACTIVITY),
            postgresql_where=text(ACTIVITY),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    detail: Mapped[str] = mapped_column(Text, default="")  # canonical JSON, never a secret
    address: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(db.Model):
    """The single row that serialises appends and remembers the end of the chain: its last row,
    which master key keys the chain (``key_id``), and a MAC over both (a head moved back over
    removed rows does not verify)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    key_id: Mapped[str] = mapped_column(String(16), default="")
    mac: Mapped[str] = mapped_column(String(64), default="")


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("audit events are append-only")
