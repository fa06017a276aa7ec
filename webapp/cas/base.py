"""The CA connector interface, in the orders feature's terms.

A connector is opened for one account of one CA (for Entrust: one ECS credential) and closed when
done (it is a context manager). It places orders with a request id the CA keeps, so an order
whose outcome is unknown can be found again; reads many orders' statuses at once; fetches an
issued certificate and its chain; lists the account's existing orders page by page; carries out
the lifecycle actions the CA supports; and describes what it supports in ``capabilities``, which
the pages read to offer or disable an action.

Errors are three neutral kinds, each with a message a person can act on:
``Refused`` (the CA said no to this request, in this state or for this field: nothing happened),
``NotAllowed`` (this account may not do it, e.g. it needs administrator rights),
``Unavailable`` (the CA could not be reached or answered badly; ``outcome_unknown`` is set when a
change may have taken effect anyway, and the caller must then reconcile before trying again).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime


class Action(enum.StrEnum):
    """Lifecycle actions on an existing order."""

    APPROVE = "approve"
    DECLINE = "decline"
    SUSPEND = "suspend"
    RESUME = "resume"
    REISSUE = "reissue"
    RENEW = "renew"
    REVOKE = "revoke"


class Phase(enum.StrEnum):
    """Where an order stands, whatever the CA calls it (the CA's own word is ``CaOrder.status``)."""

    PENDING = "pending"  # waiting for approval or processing: will change by itself
    ISSUED = "issued"  # a valid certificate exists
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    REPLACED = "replaced"  # reissued or renewed into another order
    EXPIRED = "expired"
    DECLINED = "declined"
    DEACTIVATED = "deactivated"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """Whether the order can still change without anyone acting on it."""
        return self not in (Phase.PENDING, Phase.UNKNOWN)


@dataclass(frozen=True)
class Capabilities:
    """What a CA (or one account of it) supports; the pages offer only these."""

    actions: frozenset[Action]
    # Of ``actions``, those that need administrator rights at the CA.
    admin_actions: frozenset[Action] = frozenset()
    # Revocation reasons the CA accepts: (code, label), first is the default.
    revocation_reasons: tuple[tuple[str, str], ...] = ()
    # An order can be checked by the CA without being placed.
    validate_only: bool = False
    # A certificate younger than this many days cannot be renewed (0: any age).
    renew_min_age_days: int = 0
    # A reissue revokes the certificate it replaces.
    reissue_revokes_original: bool = False
    # The CA's status of an order reissued into another ("": not told apart from a renewed one):
    # with ``reissue_revokes_original``, an order read in it has its certificate revoked.
    reissued_status: str = ""
    # The CA's status of an order renewed into another whose certificate stays valid until its
    # own expiry ("": none): such an order's certificate is fetched and kept like an issued one's.
    renewed_status: str = ""
    # The CA's statuses in which each action can be tried (in the CA's own words).
    allowed_statuses: dict[Action, frozenset[str]] = field(default_factory=dict)
    # The status the CA gives an issued certificate by itself once it is past its expiry ("":
    # none). CertDesk reads it at its next status check; until then it counts on it.
    expired_status: str = ""
    # The products a new order may ask for, each with the longest validity it allows (days).
    products: dict[str, int] = field(default_factory=dict)
    # Extended key usages and signature algorithms an order may ask for: (code, label), the
    # first is the default.
    ekus: tuple[tuple[str, str], ...] = ()
    signature_algorithms: tuple[tuple[str, str], ...] = ()
    # Signature algorithms only some products may have: {code: those products}. The CA signs
    # the others with its default whatever is asked, so CertDesk refuses such a request.
    signature_algorithm_products: dict[str, frozenset[str]] = field(default_factory=dict)
    # Every status the CA gives orders (its own words), for filters.
    statuses: tuple[str, ...] = ()
    # The client whose orders may name one of its organizations (None: any client's), and the
    # products that may name one for any client; other orders carry their client's own name.
    organization_client: int | None = None
    organization_any_client_products: frozenset[str] = frozenset()

    def supports(self, action: Action) -> bool:
        return action in self.actions

    def names_organization(self, client_id: int | None, product: str) -> bool:
        """Whether an order of ``client_id`` (None: the CA's default client) for ``product`` can
        name the organization its certificate carries."""
        return (
            self.organization_client is None
            or client_id in (None, self.organization_client)
            or product in self.organization_any_client_products
        )

    def allows(self, action: Action, status: str) -> bool:
        """Whether ``action`` can be tried on an order the CA says is in ``status``."""
        return action in self.actions and status in self.allowed_statuses.get(action, ())

    def signature_algorithm_problem(self, code: str, product: str) -> str | None:
        """Why an order for ``product`` cannot ask for signature algorithm ``code`` (None: it
        can)."""
        if code not in [c for c, _ in self.signature_algorithms]:
            return "Choose one of the offered signature algorithms."
        only = self.signature_algorithm_products.get(code)
        if only is not None and product not in only:
            default = self.signature_algorithms[0][0]
            return (
                f"{code} is for {', '.join(sorted(only))} only; a {product} certificate is "
                f"signed with {default}."
            )
        return None

    def max_validity_days(self, product: str) -> int | None:
        """The longest validity a new order for ``product`` may ask for (None: not orderable)."""
        return self.products.get(product)


@dataclass
class Requester:
    name: str = ""
    email: str = ""
    phone: str = ""
    additional_emails: list[str] = field(default_factory=list)


@dataclass
class OrderRequest:
    """A new order, or the fields of a reissue or renewal (``product`` and ``validate_only``
    are ignored for those; ``expires_on`` for a reissue).

    ``request_id`` is CertDesk's id for this intent; the CA keeps it with the order so that
    :meth:`CaConnector.find_by_request_id` finds the order if the answer to placing it was lost.
    """

    request_id: str
    product: str = ""
    csr_pem: str | None = None
    sans: list[str] = field(default_factory=list)
    organization: str | None = None
    ou: list[str] = field(default_factory=list)  # organizational units (none: the CA's default)
    client_id: int | None = None
    eku: str | None = None
    signature_algorithm: str | None = None
    expires_on: date | None = None
    ct_log: bool | None = None
    requester: Requester = field(default_factory=Requester)
    custom_fields: dict[str, str] = field(default_factory=dict)
    queue_for_approval: bool = False
    validate_only: bool = False


@dataclass
class CaOrder:
    """What the CA holds about one order. ``certificate_pem`` and ``chain_pems`` (issuers,
    nearest first) are filled by :meth:`CaConnector.fetch`, and by a list when the CA gives them."""

    order_id: str
    status: str
    phase: Phase
    request_id: str | None = None
    common_name: str = ""
    sans: list[str] = field(default_factory=list)
    product: str = ""
    organization: str = ""
    serial: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    requester: Requester = field(default_factory=Requester)
    certificate_pem: str | None = None
    chain_pems: list[str] = field(default_factory=list)
    csr_pem: str | None = None
    decline_reason: str = ""
    third_party: bool = False
    thumbprint: str | None = None  # SHA-1, for certificates the CA found but did not issue
    details: dict = field(default_factory=dict)  # every field the CA holds, for the detail page
    # When CertDesk asked the CA for this view (None for an answer to a change): a view asked for
    # before CertDesk learned the order's current status is older than it, and does not undo it.
    read_at: datetime | None = None


@dataclass
class Placed:
    """The answer to placing an order (or a reissue, renewal or approval)."""

    # "issued" (the certificate is in ``order``), "pending" (queued or being processed),
    # "accepted" (done; read the order for its new state), or "validated" (validate only:
    # nothing was placed).
    outcome: str
    order: CaOrder | None = None


@dataclass
class OrderPage:
    """One page of the account's orders, and where the next one starts."""

    orders: list[CaOrder]
    offset: int
    next_offset: int | None
    total: int | None


@dataclass(frozen=True)
class CustomField:
    """One of the account's custom fields, as the order form shows it."""

    key: str
    label: str
    kind: str  # text, number, date, email, dropdown
    required: bool = False
    options: tuple[str, ...] = ()
    multiline: bool = False


class CaError(Exception):
    """Base of the three neutral kinds; ``str()`` is the message to show."""


class Refused(CaError):
    """The CA refused this request; nothing happened. ``field`` names the order form field the
    message belongs to when there is one; ``fields`` maps every such field to its message."""

    def __init__(self, message: str, field: str | None = None, fields=None, *, state=False):
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})
        self.field = field or next(iter(self.fields), None)
        self.state = state  # refused because of the order's current state


class NotAllowed(CaError):
    """This account may not do this. Exactly one of the two is set: ``needs_admin``, the login
    was taken but the account lacks the right (an administrator of the CA account has it);
    ``login_refused``, the CA refused the account's login itself (its key was changed, its user
    removed or its client certificate refused at the CA, say), so nothing through it works until
    its credential is fixed."""

    def __init__(self, message: str, *, needs_admin: bool = False, login_refused: bool = False):
        super().__init__(message)
        self.needs_admin = needs_admin
        self.login_refused = login_refused


class Unavailable(CaError):
    """The CA could not be reached, or its answer was lost or unreadable. When
    ``outcome_unknown`` is set, a change may have taken effect: reconcile before trying again."""

    def __init__(self, message: str, *, outcome_unknown=False, retry_after: float | None = None):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class CaConnector(ABC):
    """One account of one CA. Every method raises only the three kinds above."""

    kind: str = ""  # "entrust"
    label: str = ""  # "Entrust"
    capabilities: Capabilities

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional for connectors that hold nothing
        """Release connections."""

    # -- ordering -------------------------------------------------------------------------------

    @abstractmethod
    def place(self, request: OrderRequest) -> Placed:
        """Place a new order (sent once, never retried)."""

    @abstractmethod
    def find_by_request_id(self, request_id: str) -> list[CaOrder]:
        """Orders that carry ``request_id`` (to settle an order whose outcome was unknown)."""

    # -- reading --------------------------------------------------------------------------------

    @abstractmethod
    def statuses(
        self, order_ids: list[str], known: dict[str, str] | None = None
    ) -> dict[str, CaOrder]:
        """The current state of many orders at once. Ids the CA does not know are left out; so,
        when ``known`` (order id -> the CA status last seen) is given, are orders whose absence
        from the CA's answer already shows that their status has not changed."""

    @abstractmethod
    def fetch(self, order_id: str) -> CaOrder:
        """One order in full, with its certificate and chain when issued."""

    @abstractmethod
    def fetch_third_party(self, thumbprint: str) -> CaOrder:
        """A certificate the CA found but did not issue, by its SHA-1 thumbprint."""

    @abstractmethod
    def list_orders(self, offset: int = 0, page_size: int = 1000) -> Iterator[OrderPage]:
        """The account's orders, page by page from ``offset``, in a stable order (oldest first),
        so an interrupted listing can carry on from the last page's ``next_offset``."""

    def custom_fields(self) -> list[CustomField]:
        """The account's custom fields for the order form (none by default)."""
        return []

    # -- lifecycle ------------------------------------------------------------------------------

    def approve(self, order_id: str) -> Placed:
        raise Refused(f"{self.label} does not support approving orders.")

    def decline(self, order_id: str, reason: str) -> None:
        raise Refused(f"{self.label} does not support declining orders.")

    def suspend(self, order_id: str) -> None:
        raise Refused(f"{self.label} does not support suspending certificates.")

    def resume(self, order_id: str) -> None:
        raise Refused(f"{self.label} does not support resuming certificates.")

    def reissue(self, order_id: str, request: OrderRequest) -> Placed:
        raise Refused(f"{self.label} does not support reissuing certificates.")

    def renew(self, order_id: str, request: OrderRequest) -> Placed:
        raise Refused(f"{self.label} does not support renewing certificates.")

    def revoke(self, order_id: str, reason: str, comment: str = "") -> None:
        raise Refused(f"{self.label} does not support revoking certificates.")
