"""The certificate repository: one row per certificate, plus its names for fast search."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.extensions import db

SOURCES = {
    "imported": "Imported file",
    "entrust": "Entrust order",
    "entrust_import": "Entrust import",
}


class Certificate(db.Model):
    """One X.509 certificate (SHA-256 fingerprint unique), linked to its key, CSR and order."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    fingerprint_sha1: Mapped[str] = mapped_column(String(40), default="")
    serial_hex: Mapped[str] = mapped_column(String(80), index=True)
    common_name: Mapped[str] = mapped_column(String(255), default="", index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    sans: Mapped[str] = mapped_column(Text, default="")  # comma-separated, for display
    issuer: Mapped[str] = mapped_column(Text, default="")
    issuer_cn: Mapped[str] = mapped_column(String(200), default="")
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    key_type: Mapped[str] = mapped_column(String(16), default="")
    key_size: Mapped[int | None] = mapped_column(Integer)
    key_label: Mapped[str] = mapped_column(String(32), default="")
    signature_algorithm: Mapped[str] = mapped_column(String(64), default="")
    public_key_id: Mapped[str] = mapped_column(String(64), index=True)
    is_ca: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="imported")
    pem: Mapped[str] = mapped_column(Text)
    chain_pem: Mapped[str] = mapped_column(Text, default="")  # issuer first, root last
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The CA order it was issued for (webapp.orders), when CertDesk knows it.
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("ca_order.id", ondelete="SET NULL"), index=True
    )
    private_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("private_key.id", ondelete="SET NULL")
    )
    csr_id: Mapped[int | None] = mapped_column(
        ForeignKey("csr.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    # Expiry order is (not_after, revoked_at, private_key_id, id) everywhere, and each filter
    # leads an index in that order: a filtered page sorted by expiry is an index walk, its COUNT
    # (expiry, revoked and has-key filters included) is covered by the index, and no page needs a
    # sort of the whole result.
    __table_args__ = (
        Index("ix_certificate_expiry", "not_after", "revoked_at", "private_key_id"),
        Index(
            "ix_certificate_source_expiry", "source", "not_after", "revoked_at", "private_key_id"
        ),
        Index(
            "ix_certificate_issuer_expiry", "issuer_cn", "not_after", "revoked_at", "private_key_id"
        ),
        Index("ix_certificate_key_expiry", "private_key_id", "not_after", "revoked_at"),
    )

    private_key = relationship("PrivateKey", lazy="select")
    csr = relationship("Csr", lazy="select")
    names = relationship(
        "CertificateName", cascade="all, delete-orphan", passive_deletes=True, lazy="select"
    )

    @property
    def has_key(self) -> bool:
        return self.private_key_id is not None

    @property
    def san_list(self) -> list[str]:
        return [s for s in self.sans.split(",") if s]


class CertificateName(db.Model):
    """Each name a certificate answers to (CN and SANs), lower-case, and reversed for suffixes.

    Search by prefix uses ``value``; by domain suffix ("example.com" finds www.example.com) uses
    ``reversed``; both are plain index range scans on SQLite and PostgreSQL alike.
    """

    __tablename__ = "certificate_name"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("certificate.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # CN, DNS, IP, EMAIL
    value: Mapped[str] = mapped_column(String(255))
    reversed: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_certificate_name_value", "value", "certificate_id"),
        Index("ix_certificate_name_reversed", "reversed", "certificate_id"),
    )
