"""Rows mirrored from ECS. A row that disappeared upstream is marked ``gone_at``, never deleted,
so that orders referring to it keep their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.extensions import db

CLIENT, ORGANIZATION = "client", "organization"


class _Mirrored:
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CatalogOrganization(_Mirrored, db.Model):
    """A client of the account (kind "client", with its OV/EV vetting) or one of a client's
    organizations (kind "organization"). ``client_name`` is copied for search and sort."""

    __tablename__ = "catalog_organization"
    __table_args__ = (
        UniqueConstraint("credential_id", "kind", "client_id", "name", name="uq_catalog_org_key"),
        Index("ix_catalog_org_name", "name"),
        Index("ix_catalog_org_status", "verification_status"),
        Index("ix_catalog_org_client", "client_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("ecs_credential.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int] = mapped_column(Integer)
    client_name: Mapped[str] = mapped_column(String(300), default="")
    name: Mapped[str] = mapped_column(String(300))
    verification_status: Mapped[str] = mapped_column(String(40), default="")
    ov_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ev_status: Mapped[str] = mapped_column(String(40), default="")
    ev_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)

    credential = relationship("EcsCredential", lazy="joined")


class CatalogDomain(_Mirrored, db.Model):
    __tablename__ = "catalog_domain"
    __table_args__ = (
        UniqueConstraint("credential_id", "client_id", "name", name="uq_catalog_domain_key"),
        Index("ix_catalog_domain_name", "name"),
        Index("ix_catalog_domain_status", "verification_status", "name"),
        Index("ix_catalog_domain_ov_expiry", "ov_expiry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("ecs_credential.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int] = mapped_column(Integer)
    client_name: Mapped[str] = mapped_column(String(300), default="")
    name: Mapped[str] = mapped_column(String(300))  # lower case
    verification_status: Mapped[str] = mapped_column(String(40), default="")
    verification_method: Mapped[str] = mapped_column(String(20), default="")
    ov_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    ev_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    ov_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ev_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)

    credential = relationship("EcsCredential", lazy="joined")


class CatalogProduct(_Mirrored, db.Model):
    __tablename__ = "catalog_product"
    __table_args__ = (
        UniqueConstraint("credential_id", "product_type", name="uq_catalog_product_key"),
        Index("ix_catalog_product_type", "product_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("ecs_credential.id", ondelete="CASCADE"), index=True
    )
    product_type: Mapped[str] = mapped_column(String(60))
    consumption_type: Mapped[str] = mapped_column(String(30), default="")
    total_count: Mapped[int | None] = mapped_column(Integer)
    used_count: Mapped[int | None] = mapped_column(Integer)
    remaining_count: Mapped[int | None] = mapped_column(Integer)

    credential = relationship("EcsCredential", lazy="joined")
