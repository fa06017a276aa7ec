"""CSRs made in (or imported into) CertDesk; their keys live in webapp.keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from webapp.dbtypes import SansShown, UTCDateTime, code_point_text, utcnow
from webapp.extensions import db
from webapp.paging import Values


class ListedCsr(SansShown, Values):
    """A CSR as the SSL > CSRs list reads it: the list's columns as plain values, with its
    creator's username (``csrs.service.LISTED_ROWS``)."""


class Csr(SansShown, db.Model):
    """A PKCS#10 request, with its key when CertDesk made it or was given it."""

    __tablename__ = "csr"

    id: Mapped[int] = mapped_column(primary_key=True)
    common_name: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    sans: Mapped[str] = mapped_column(Text, default="")  # comma-separated, for list and search
    key_label: Mapped[str] = mapped_column(String(32), default="")
    signature_algorithm: Mapped[str] = mapped_column(String(64), default="")
    public_key_id: Mapped[str] = mapped_column(String(64), index=True)
    pem: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="generated")  # generated, imported
    private_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("private_key.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The list's two orders, each ending with the id (PostgreSQL needs it in the index).
    __table_args__ = (
        Index("ix_csr_created", "created_at", "id"),
        Index("ix_csr_cn", "common_name", "id"),
        # Ids are never handed out again after a delete (SQLite: AUTOINCREMENT; see 0011).
        {"sqlite_autoincrement": True},
    )

    private_key = relationship("PrivateKey", lazy="select")
    created_by = relationship("User", lazy="select")
    # The creator's username, read by the list beside each row (csrs.service.list_query): one
    # look-up in the database instead of loading the related users in a second query.
    creator_name: Mapped[str | None] = query_expression()
    names = relationship(
        "CsrName", cascade="all, delete-orphan", passive_deletes=True, lazy="select"
    )


class CsrName(db.Model):
    """Each name a CSR asks for (CN and SANs), lower-case, and reversed for domain suffixes: the
    CSR search is an index range on ``value`` (starts with) or ``reversed`` (ends with)."""

    __tablename__ = "csr_name"

    id: Mapped[int] = mapped_column(primary_key=True)
    csr_id: Mapped[int] = mapped_column(ForeignKey("csr.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(code_point_text(255))
    reversed: Mapped[str] = mapped_column(code_point_text(255))

    __table_args__ = (
        Index("ix_csr_name_value", "value", "csr_id"),
        Index("ix_csr_name_reversed", "reversed", "csr_id"),
    )
