"""The certificate repository: one row per certificate, plus its names for fast search."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, event, inspect, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from webapp.dbtypes import SansShown, UTCDateTime, code_point_text, utcnow
from webapp.extensions import conflict_insert, db
from webapp.paging import Values

SOURCES = {
    "imported": "Imported file",
    "entrust": "Entrust order",
    "entrust_import": "Entrust import",
}


class CertificateShown(SansShown):
    """What pages show of a certificate that its columns make: of a model object, or of a row of
    the list (``ListedCertificate``)."""

    @property
    def has_key(self) -> bool:
        return self.private_key_id is not None


class ListedCertificate(CertificateShown, Values):
    """A certificate as the SSL > Certificates list reads it: the list's columns as plain values
    (``certificates.service.LISTED``)."""


class Certificate(CertificateShown, db.Model):
    """One X.509 certificate (SHA-256 fingerprint unique), linked to its key, CSR and order."""

    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique and always given, it tells apart the rows an INSERT of many hands back: without it
    # SQLite's ORM flush inserts an import's certificates one statement a row.
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True, insert_sentinel=True)
    fingerprint_sha1: Mapped[str] = mapped_column(String(40), default="")
    serial_hex: Mapped[str] = mapped_column(String(80))
    common_name: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    sans: Mapped[str] = mapped_column(Text, default="")  # comma-separated, for display
    issuer: Mapped[str] = mapped_column(Text, default="")
    issuer_cn: Mapped[str] = mapped_column(String(200), default="")
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    # active_history: the value before a change is loaded, for the per-day expiry counters.
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, active_history=True)
    key_type: Mapped[str] = mapped_column(String(16), default="")
    key_size: Mapped[int | None] = mapped_column(Integer)
    key_label: Mapped[str] = mapped_column(String(32), default="")
    signature_algorithm: Mapped[str] = mapped_column(String(64), default="")
    public_key_id: Mapped[str] = mapped_column(String(64), index=True)
    is_ca: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="imported")
    pem: Mapped[str] = mapped_column(Text)
    chain_pem: Mapped[str] = mapped_column(Text, default="")  # issuer first, root last
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, active_history=True)
    # Set while the CA holds the certificate suspended (its order's phase is suspended: on hold,
    # not valid until resumed); cleared when the order leaves that phase.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, active_history=True)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Expiry order is (not_after, revoked_at, private_key_id, id) everywhere, and each filter
    # leads an index in that order: a filtered page sorted by expiry is an index walk, its count
    # (expiry, revoked and has-key filters included) is covered by the index, and no page needs a
    # sort of the whole result. Every index ends with the id that ends every order: SQLite would
    # find it in the rowid, PostgreSQL only in the index.
    __table_args__ = (
        Index("ix_certificate_expiry", "not_after", "revoked_at", "private_key_id", "id"),
        Index(
            "ix_certificate_source_expiry",
            "source",
            "not_after",
            "revoked_at",
            "private_key_id",
            "id",
        ),
        Index(
            "ix_certificate_issuer_expiry",
            "issuer_cn",
            "not_after",
            "revoked_at",
            "private_key_id",
            "id",
        ),
        Index("ix_certificate_key_expiry", "private_key_id", "not_after", "revoked_at", "id"),
        # The rare states, in expiry order: only their rows are in these indexes.
        Index(
            "ix_certificate_revoked",
            "not_after",
            "revoked_at",
            "private_key_id",
            "id",
            sqlite_where=text("revoked_at IS NOT NULL"),
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
        Index(
            "ix_certificate_with_key",
            "not_after",
            "revoked_at",
            "private_key_id",
            "id",
            sqlite_where=text("private_key_id IS NOT NULL"),
            postgresql_where=text("private_key_id IS NOT NULL"),
        ),
        Index(
            "ix_certificate_suspended",
            "not_after",
            "revoked_at",
            "private_key_id",
            "id",
            sqlite_where=text("suspended_at IS NOT NULL"),
            postgresql_where=text("suspended_at IS NOT NULL"),
        ),
        # The certificates whose validity has not begun: the few at the end of this index.
        Index("ix_certificate_not_before", "not_before", "id"),
        Index("ix_certificate_cn", "common_name", "id"),
        Index("ix_certificate_serial", "serial_hex", "id"),
        Index("ix_certificate_created", "created_at", "id"),
        # Ids are never handed out again after a delete (SQLite: AUTOINCREMENT; see 0011).
        {"sqlite_autoincrement": True},
    )

    private_key = relationship("PrivateKey", lazy="select")
    csr = relationship("Csr", lazy="select")
    names = relationship(
        "CertificateName", cascade="all, delete-orphan", passive_deletes=True, lazy="select"
    )


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
    value: Mapped[str] = mapped_column(code_point_text(255))
    reversed: Mapped[str] = mapped_column(code_point_text(255))

    __table_args__ = (
        Index("ix_certificate_name_value", "value", "certificate_id"),
        Index("ix_certificate_name_reversed", "reversed", "certificate_id"),
    )


class CertificateExpiryDay(db.Model):
    """How many certificates expire on each day (UTC): live, suspended (not revoked, but held by
    the CA: ``suspended_at``) and revoked.

    Kept in the same transaction as every certificate added, revoked or deleted (see
    ``webapp.certificates.counts``), so that the dashboard adds up a few hundred day rows instead
    of reading the whole repository.
    """

    __tablename__ = "certificate_expiry_day"

    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # since 1970
    live: Mapped[int] = mapped_column(Integer, default=0)
    revoked: Mapped[int] = mapped_column(Integer, default=0)
    suspended: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


_EPOCH = date(1970, 1, 1).toordinal()


def expiry_day(when: datetime) -> int:
    """The UTC day of ``when``, counted from 1970-01-01 (the key of CertificateExpiryDay)."""
    return when.astimezone(UTC).date().toordinal() - _EPOCH


def _before(obj, attr: str):
    """``obj.attr`` as the database has it now (before the changes this flush writes)."""
    history = inspect(obj).attrs[attr].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(obj, attr)


# The counter a certificate is in (a column of CertificateExpiryDay).
LIVE, SUSPENDED, REVOKED = "live", "suspended", "revoked"


def counter_of(revoked_at, suspended_at) -> str:
    if revoked_at is not None:
        return REVOKED
    return SUSPENDED if suspended_at is not None else LIVE


def _counter_before(obj) -> tuple[int, str]:
    return expiry_day(_before(obj, "not_after")), counter_of(
        _before(obj, "revoked_at"), _before(obj, "suspended_at")
    )


def _counter_now(obj) -> tuple[int, str]:
    return expiry_day(obj.not_after), counter_of(obj.revoked_at, obj.suspended_at)


@event.listens_for(Session, "before_flush")
def _expiry_day_deltas(session, _context, _instances) -> None:
    """Note how this flush moves certificates between (day, live/suspended/revoked) counters:
    added, deleted, revoked, suspended or resumed, or given another expiry. Read here, while
    deleted rows can still be loaded; written by ``_apply_expiry_day_deltas`` once the rows are
    flushed."""
    deltas: Counter = session.info.setdefault("certificate_expiry_deltas", Counter())
    for obj in session.new:
        if isinstance(obj, Certificate) and obj.not_after is not None:
            deltas[_counter_now(obj)] += 1
    for obj in session.deleted:
        if isinstance(obj, Certificate):
            deltas[_counter_before(obj)] -= 1
    for obj in session.dirty:
        if not isinstance(obj, Certificate) or not session.is_modified(obj):
            continue
        state = inspect(obj)
        if not (
            state.attrs.not_after.history.has_changes()
            or state.attrs.revoked_at.history.has_changes()
            or state.attrs.suspended_at.history.has_changes()
        ):
            continue
        old, new = _counter_before(obj), _counter_now(obj)
        if old != new:
            deltas[old] -= 1
            deltas[new] += 1


@event.listens_for(Session, "after_soft_rollback")
def _forget_expiry_day_deltas(session, _previous_transaction) -> None:
    session.info.pop("certificate_expiry_deltas", None)


@event.listens_for(Session, "after_flush")
def _apply_expiry_day_deltas(session, _context) -> None:
    deltas = session.info.pop("certificate_expiry_deltas", None)
    if not deltas:
        return
    per_day: dict[int, Counter] = {}
    for (day, counter), n in deltas.items():
        per_day.setdefault(day, Counter())[counter] += n
    conn = session.connection()
    table = CertificateExpiryDay.__table__
    # Days in order, so that two transactions touching the same days lock them in the same order;
    # one statement for all of them (a batch of certificates touches hundreds of days).
    rows = [
        {"day": day, **{c: per_day[day][c] for c in (LIVE, SUSPENDED, REVOKED)}}
        for day in sorted(per_day)
        if any(per_day[day].values())
    ]
    if not rows:
        return
    stmt = conflict_insert(conn, table)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.day],
            set_={
                "live": table.c.live + stmt.excluded.live,
                "revoked": table.c.revoked + stmt.excluded.revoked,
                "suspended": table.c.suspended + stmt.excluded.suspended,
            },
        ),
        rows,
    )
