"""CA orders (SSL > Entrust) and their history.

An order row exists from the moment CertDesk decides to place an order (the intent, committed
before the CA is called, with the request id the CA will keep) or imports one the CA already holds.
``placement`` says where that intent stands; ``status`` is the CA's own word and ``phase`` its
neutral meaning (``webapp.cas.base.Phase``). Certificates link to their order
(``certificate.order_id``); the history is ``OrderEvent``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.dbtypes import SansShown, UTCDateTime, code_point_text, utcnow
from webapp.extensions import db
from webapp.paging import Values

# The CA the order form places with (the only connector so far).
DEFAULT_CA = "entrust"

# Where an order CertDesk places stands (imported orders are "placed" from the start).
INTENT = "intent"  # committed before the call; the call is being made (or the process died)
UNKNOWN = "unknown"  # the answer was lost: CertDesk searches the CA for the request id
PLACED = "placed"  # the CA holds the order
NOT_PLACED = "not_placed"  # searched for after the call's deadline and not found


def unsettled(*placements):
    """The condition for orders in ``placements`` (none of them PLACED), written so that the
    partial indexes of unsettled orders serve it: their condition as a literal, which a planner
    matches with the index's whatever the parameters. No placements: every order not placed
    yet."""
    settled = Order.placement != literal_column(f"'{PLACED}'")
    return Order.placement.in_(placements) & settled if placements else settled


# How the order came to be.
SUCCESSORS = ("reissue", "renew")  # origins of orders that replace another (``parent_id``)
ORIGINS = {
    "placed": "Ordered in CertDesk",
    "imported": "Imported from Entrust",
    "reissue": "Reissue",
    "renew": "Renewal",
}


class OrderShown(SansShown):
    """What pages show of an order that its columns make: of a model object, or of a row of the
    list (``ListedOrder``)."""

    @property
    def display_status(self) -> str:
        """The CA's status, or CertDesk's word while the order is not (known to be) placed."""
        if self.placement in (INTENT, UNKNOWN):
            return "UNKNOWN_OUTCOME"
        if self.placement == NOT_PLACED:
            return "NOT_PLACED"
        return self.status or "UNKNOWN"

    @property
    def display_name(self) -> str:
        """The order as pages and outcomes name it: its tracking ID, else CertDesk's number."""
        return self.ca_order_id if self.ca_order_id and not self.third_party else f"#{self.id}"


class ListedOrder(OrderShown, Values):
    """An order as the SSL > Entrust list reads it: the list's columns as plain values
    (``orders.queries.LISTED``), with its credential's name."""


class Order(OrderShown, db.Model):
    """One order at a CA, for one credential (account). The CA's own id (Entrust's trackingId, or
    the SHA-1 thumbprint of a certificate the CA found but did not issue) is unique per
    credential; ``request_id`` is CertDesk's id for an order it placed, sent to the CA with it."""

    __tablename__ = "ca_order"
    __table_args__ = (
        Index("uq_ca_order_credential_ca_id", "credential_id", "ca_order_id", unique=True),
        # The list: each filter leads an index that ends in the default sort (expiry), and each
        # sort has one; every ORDER BY ends in id, the key the pager pages by.
        Index("ix_ca_order_expiry", "expires_at", "id"),
        Index("ix_ca_order_status_expiry", "status", "expires_at", "id"),
        Index("ix_ca_order_credential_expiry", "credential_id", "expires_at", "id"),
        Index("ix_ca_order_product_expiry", "product", "expires_at", "id"),
        Index("ix_ca_order_number", "ca_order_number", "id"),
        Index("ix_ca_order_common_name", "common_name", "id"),
        Index("ix_ca_order_organization", "organization", "id"),
        Index("ix_ca_order_requester", "requester_name", "id"),
        Index("ix_ca_order_checked", "last_checked_at", "id"),
        # "Expiring within N days" (issued orders only): the page and its count read the index
        # alone; (expires_at, id) would have them look up every order in the window for its phase.
        Index("ix_ca_order_phase_expiry", "phase", "expires_at", "id"),
        # The certificates an import fetches: one phase of one credential, in id order.
        Index("ix_ca_order_credential_phase", "credential_id", "phase", "id"),
        # The poller's work list.
        Index("ix_ca_order_phase_due", "phase", "next_check_at"),
        # The dashboard's newest orders waiting for the CA, and the newest unsettled ones.
        Index("ix_ca_order_phase_newest", "phase", "id"),
        Index(
            "ix_ca_order_unsettled_newest",
            "id",
            sqlite_where=text("placement != 'placed'"),
            postgresql_where=text("placement != 'placed'"),
        ),
        # The few orders whose placement is not settled (the list's filter, the reconciler): a
        # partial index, so no planner mistakes a filter on them for one on every order.
        Index(
            "ix_ca_order_unsettled",
            "placement",
            "expires_at",
            "id",
            sqlite_where=text("placement != 'placed'"),
            postgresql_where=text("placement != 'placed'"),
        ),
        # The same few orders in the list's default order ("Checking with Entrust", "Not
        # placed").
        Index(
            "ix_ca_order_unsettled_expiry",
            "expires_at",
            "id",
            sqlite_where=text("placement != 'placed'"),
            postgresql_where=text("placement != 'placed'"),
        ),
        Index("ix_ca_order_placed_by", "placed_by_id", "phase"),
        # The reissues and renewals of an order (most orders have none).
        Index(
            "ix_ca_order_parent",
            "parent_id",
            "id",
            sqlite_where=text("parent_id IS NOT NULL"),
            postgresql_where=text("parent_id IS NOT NULL"),
        ),
        # The few "not placed" orders placed again (and the order's delete, which clears it).
        Index(
            "ix_ca_order_again",
            "again_id",
            sqlite_where=text("again_id IS NOT NULL"),
            postgresql_where=text("again_id IS NOT NULL"),
        ),
        # The few orders placed with a CSR or key held here: found through these when the CSR
        # or key is deleted (whether the key is in use, and the references cleared), which would
        # otherwise read every order, once for each of the two.
        Index(
            "ix_ca_order_csr",
            "csr_id",
            sqlite_where=text("csr_id IS NOT NULL"),
            postgresql_where=text("csr_id IS NOT NULL"),
        ),
        Index(
            "ix_ca_order_private_key",
            "private_key_id",
            sqlite_where=text("private_key_id IS NOT NULL"),
            postgresql_where=text("private_key_id IS NOT NULL"),
        ),
        # Ids are never handed out again after a delete (SQLite: AUTOINCREMENT; see 0011).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ca: Mapped[str] = mapped_column(String(16), default=DEFAULT_CA)
    credential_id: Mapped[int] = mapped_column(ForeignKey("ecs_credential.id"))
    ca_order_id: Mapped[str | None] = mapped_column(String(64))
    ca_order_number: Mapped[int | None] = mapped_column(BigInteger)  # ca_order_id, for sorting
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    placement: Mapped[str] = mapped_column(String(16), default=PLACED)
    origin: Mapped[str] = mapped_column(String(16), default="placed")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ca_order.id", ondelete="SET NULL"))
    # A "not placed" order placed again: the new order's id (one at most). Kept if that order is
    # deleted (it may be at Entrust); cleared if Entrust refused it. Not a reference: see 0014.
    again_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="")
    phase: Mapped[str] = mapped_column(String(16), default="")
    third_party: Mapped[bool] = mapped_column(Boolean, default=False)
    common_name: Mapped[str] = mapped_column(String(255), default="")
    sans: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    product: Mapped[str] = mapped_column(String(60), default="")
    organization: Mapped[str] = mapped_column(String(300), default="")
    requester_name: Mapped[str] = mapped_column(String(255), default="")
    requester_email: Mapped[str] = mapped_column(String(254), default="")
    serial: Mapped[str] = mapped_column(String(80), default="")
    friendly_name: Mapped[str] = mapped_column(String(255), default="")
    # The texts the search finds the order by, lower-case, one a line (as in ``OrderName``).
    search_text: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_interval_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # When the create call was sent (placed orders), and what went wrong last, in words.
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text, default="")
    # A status action (approve, decline, suspend, resume, revoke) whose call is under way, and
    # until when it counts as such (past that, its process is taken to have stopped): written
    # and committed before the call, so that a second action at the same moment is refused.
    acting: Mapped[str | None] = mapped_column(String(16))
    acting_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A status action sent from CertDesk whose outcome could not be read back (the order could
    # not be read after it): which one, who did it, and when it was sent. The next reading of the
    # order settles it: a status the action leads to, read since, is told as that action's.
    unread_action: Mapped[str | None] = mapped_column(String(16))
    unread_action_by: Mapped[str | None] = mapped_column(String(120))
    unread_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON: every field the CA holds
    request: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the request as sent
    csr_id: Mapped[int | None] = mapped_column(ForeignKey("csr.id", ondelete="SET NULL"))
    # A key given with a pasted CSR, kept until the order's CSR row exists.
    private_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("private_key.id", ondelete="SET NULL")
    )
    placed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    credential = relationship("EcsCredential", lazy="joined")
    placed_by = relationship("User", lazy="select")
    # What the list's search finds the order by (see records.index_search).
    names = relationship(
        "OrderName", lazy="select", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def settled(self) -> bool:
        return self.placement in (PLACED, NOT_PLACED)


class OrderName(db.Model):
    """A text the list's search finds an order by: its tracking ID, common name, each SAN, the
    requester's name and email, the serial number, the friendly name; lower-case, and reversed.

    "Starts with" is a range over ``value``, "ends with" ("example.com" finds www.example.com) a
    range over ``reversed``: index look-ups on SQLite and PostgreSQL alike. ``Order.search_text``
    holds the same texts, one a line, for a page that tests each row it walks.
    """

    __tablename__ = "ca_order_name"
    __table_args__ = (
        Index("ix_ca_order_name_value", "value", "order_id"),
        Index("ix_ca_order_name_reversed", "reversed", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ca_order.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(code_point_text(255))
    reversed: Mapped[str] = mapped_column(code_point_text(255))


class OrderEvent(db.Model):
    """One line of an order's history: placed, imported, a status change (old -> new), settled
    by the reconciler, reissued or renewed into another order. Status changes of an order someone
    placed carry ``notify_user_id`` until that user has seen them."""

    __tablename__ = "ca_order_event"
    __table_args__ = (
        Index("ix_ca_order_event_order", "order_id", "id"),
        Index("ix_ca_order_event_notify", "notify_user_id", "seen_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("ca_order.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    old_status: Mapped[str] = mapped_column(String(32), default="")
    new_status: Mapped[str] = mapped_column(String(32), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    actor_name: Mapped[str] = mapped_column(String(120), default="")
    related_order_id: Mapped[int | None] = mapped_column(Integer)
    notify_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order = relationship("Order", lazy="select")
