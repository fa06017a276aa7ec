"""Rows mirrored from ECS. A row that disappeared upstream is marked ``gone_at``, never deleted,
so that orders referring to it keep their history.

Every list index leads with ``gone`` (whether ``gone_at`` is set), so one index per sort serves
the three views: the rows in Entrust now (``gone`` false), those gone, and all of them (ordered
by ``gone`` first: current rows, then those gone). Filters lead their own index, then ``gone``,
then the default sort; every index ends with the id that ends every order. Search keys are
lower case (organizations), reversed (domains, for "ends with").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.dbtypes import UTCDateTime, code_point_text, utcnow
from webapp.extensions import db

CLIENT, ORGANIZATION = "client", "organization"


class _Mirrored:
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gone: Mapped[bool] = mapped_column(Boolean, default=False)  # gone_at is set


class CatalogOrganization(_Mirrored, db.Model):
    """A client of the account (kind "client", with its OV/EV vetting) or one of a client's
    organizations (kind "organization"). ``client_name`` is copied for search and sort."""

    __tablename__ = "catalog_organization"
    __table_args__ = (
        UniqueConstraint("credential_id", "kind", "client_id", "name", name="uq_catalog_org_key"),
        Index("ix_catalog_org_name", "gone", "name_key", "id"),
        Index("ix_catalog_org_client", "gone", "client_key", "name_key", "id"),
        Index("ix_catalog_org_by_status", "gone", "verification_status", "name_key", "id"),
        Index("ix_catalog_org_ov_expiry", "gone", "ov_expiry", "id"),
        Index("ix_catalog_org_ev_expiry", "gone", "ev_expiry", "id"),
        Index("ix_catalog_org_status", "verification_status", "gone", "name_key", "id"),
        Index("ix_catalog_org_kind", "kind", "gone", "name_key", "id"),
        Index("ix_catalog_org_credential", "credential_id", "gone", "name_key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("ecs_credential.id", ondelete="CASCADE")
    )  # indexed by ix_catalog_org_credential
    kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int] = mapped_column(Integer)
    client_name: Mapped[str] = mapped_column(String(300), default="")
    name: Mapped[str] = mapped_column(String(300))
    verification_status: Mapped[str] = mapped_column(String(40), default="")
    ov_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ev_status: Mapped[str] = mapped_column(String(40), default="")
    ev_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name_key: Mapped[str] = mapped_column(code_point_text(300), default="")  # name, lower case
    # client_name, lower case
    client_key: Mapped[str] = mapped_column(code_point_text(300), default="")

    credential = relationship("EcsCredential", lazy="select")


class CatalogDomain(_Mirrored, db.Model):
    __tablename__ = "catalog_domain"
    __table_args__ = (
        UniqueConstraint("credential_id", "client_id", "name", name="uq_catalog_domain_key"),
        Index("ix_catalog_domain_name", "gone", "name", "id"),
        Index("ix_catalog_domain_client", "gone", "client_name", "name", "id"),
        Index("ix_catalog_domain_by_status", "gone", "verification_status", "name", "id"),
        Index("ix_catalog_domain_method", "gone", "verification_method", "name", "id"),
        Index("ix_catalog_domain_ov_expiry", "gone", "ov_expiry", "id"),
        Index("ix_catalog_domain_ev_expiry", "gone", "ev_expiry", "id"),
        Index("ix_catalog_domain_status", "verification_status", "gone", "name", "id"),
        Index("ix_catalog_domain_credential", "credential_id", "gone", "name", "id"),
        Index("ix_catalog_domain_reversed", "name_reversed", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("ecs_credential.id", ondelete="CASCADE")
    )  # indexed by ix_catalog_domain_credential
    client_id: Mapped[int] = mapped_column(Integer)
    client_name: Mapped[str] = mapped_column(String(300), default="")
    name: Mapped[str] = mapped_column(code_point_text(300))  # lower case
    verification_status: Mapped[str] = mapped_column(String(40), default="")
    verification_method: Mapped[str] = mapped_column(String(20), default="")
    ov_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    ev_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    ov_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ev_expiry: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name_reversed: Mapped[str] = mapped_column(code_point_text(300), default="")  # for "ends with"

    credential = relationship("EcsCredential", lazy="select")


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

    credential = relationship("EcsCredential", lazy="select")


# The derived columns follow the ones they come from on every insert and update through the ORM
# (the sync); a bulk UPDATE sets them itself (see catalog.service._mark_gone).


@event.listens_for(CatalogOrganization, "before_insert")
@event.listens_for(CatalogOrganization, "before_update")
@event.listens_for(CatalogDomain, "before_insert")
@event.listens_for(CatalogDomain, "before_update")
@event.listens_for(CatalogProduct, "before_insert")
@event.listens_for(CatalogProduct, "before_update")
def _derive(_mapper, _connection, row) -> None:
    row.gone = row.gone_at is not None
    if isinstance(row, CatalogOrganization):
        row.name_key = (row.name or "").lower()
        row.client_key = (row.client_name or "").lower()
    elif isinstance(row, CatalogDomain):
        row.name_reversed = (row.name or "")[::-1]
