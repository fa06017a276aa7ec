from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.extensions import db
from webapp.security.secretbox import sealed_columns


@sealed_columns("sealed_pem")
class PrivateKey(db.Model):
    """A private key, sealed by the secret box (PKCS#8 PEM inside); never stored in plaintext."""

    __tablename__ = "private_key"
    # Ids are never handed out again after a delete (SQLite: AUTOINCREMENT; see 0011).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    key_type: Mapped[str] = mapped_column(String(16))  # RSA, EC
    key_size: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(32), default="")  # "RSA 2048", "ECDSA P-256"
    public_key_id: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the SPKI
    sealed_pem: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="generated")  # generated, imported
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by = relationship("User", lazy="joined")
