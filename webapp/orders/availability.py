"""Which lifecycle actions an order allows, and why not, in words: the CA connector's
capabilities (what the CA supports, in which of its statuses), where CertDesk's placing of the
order stands, its credential, and for a renewal the certificate's age. The pages show an action
disabled with this reason, and the services refuse with it before any call is made."""

from __future__ import annotations

from datetime import datetime, timedelta

from webapp.cas import registry
from webapp.cas.base import Action, Capabilities, Phase
from webapp.certificates import service as certificates
from webapp.dbtypes import utcnow
from webapp.orders.models import INTENT, NOT_PLACED, UNKNOWN, Order

LABELS = {
    Action.APPROVE: "Approve",
    Action.DECLINE: "Decline",
    Action.SUSPEND: "Suspend",
    Action.RESUME: "Resume",
    Action.REISSUE: "Reissue",
    Action.RENEW: "Renew",
    Action.REVOKE: "Revoke",
}


def ca_label(row: Order) -> str:
    return registry.LABELS.get(row.ca, row.ca)


def _order_problem(row: Order) -> str:
    """What keeps every action off this order, or ""."""
    label = ca_label(row)
    if row.placement in (INTENT, UNKNOWN):
        return f"CertDesk is still checking with {label} whether this order was placed."
    if row.placement == NOT_PLACED:
        return f"This order was not placed at {label}."
    if row.third_party:
        return (
            f"{label} found this certificate but did not issue it (third-party): there is no "
            "order to act on."
        )
    if not row.ca_order_id:
        return f"{label}'s id of this order is not known."
    return credential_problem(row) or under_way(row)


def credential_off(row: Order) -> str:
    """The state of ``row``'s credential that stops every call for it ("deleted", "disabled"),
    or "". Nothing is sent for such an order: no action, no Check Order Status, no scheduled
    check."""
    cred = row.credential
    if cred is None or cred.deleted_at is not None:
        return "deleted"
    return "" if cred.enabled else "disabled"


def credential_problem(row: Order) -> str:
    """Why no call can be made for ``row`` through its credential (see credential_off), or ""."""
    off = credential_off(row)
    if off == "deleted":
        return "Its credential was deleted: the order is kept read-only."
    if off == "disabled":
        return f"Its credential {row.credential.name!r} is disabled; enable it first."
    return ""


# The actions that place a new order for the same product: CertDesk asks for them with the
# Order Certificate form's fields (a CSR for DNS names, the SSL products' extended key usage).
REPLACING = (Action.REISSUE, Action.RENEW)


def not_replaceable(row: Order, caps: Capabilities) -> str:
    """Why CertDesk cannot reissue or renew ``row`` (a product it does not order, such as code
    signing, S/MIME or document signing, imported from the account), or ""."""
    if not caps.products or not row.product or row.product in caps.products:
        return ""
    return (
        f"CertDesk reissues and renews only the SSL products it orders; reissue or renew this "
        f"{row.product} certificate in the {ca_label(row)} portal (Revoke works here)."
    )


def under_way(row: Order, now: datetime | None = None) -> str:
    """Why nothing else can be done on ``row`` while another status action's call to the CA is
    under way (another user, browser or job), or ""."""
    return acting_words(getattr(row, "acting", None), getattr(row, "acting_until", None), now)


def acting_words(acting: str | None, until: datetime | None, now: datetime | None = None) -> str:
    """``under_way`` for an order's ``acting`` and ``acting_until`` values."""
    if not acting or until is None or until <= (now or utcnow()):
        return ""
    try:
        label = LABELS[Action(acting)]
    except (ValueError, KeyError):
        label = acting.capitalize()
    return (
        f"{'An' if label[:1] in 'AEIOU' else 'A'} {label} of this order is under way (started "
        "by another user or job): wait until it "
        "ends, then Check Order Status shows what it changed. Should it never end (CertDesk "
        f"stopped during it), the order is free again at {until:%Y-%m-%d %H:%M} UTC."
    )


def renewable_from(row: Order, caps: Capabilities | None = None) -> datetime | None:
    """When the CA will renew the order's certificate (None: at any age, or unknown). The
    certificate's age counts from the earliest issue time CertDesk knows: the CA's, or the
    certificate's own start of validity."""
    caps = caps or registry.capabilities(row.ca)
    if not caps.renew_min_age_days:
        return None
    known = [row.issued_at] + [c.not_before for c in certificates.for_order(row.id)]
    known = [d for d in known if d is not None]
    if not known:
        return None
    return min(known) + timedelta(days=caps.renew_min_age_days)


def too_young(row: Order, caps: Capabilities, now: datetime) -> str:
    """Why the CA will refuse to renew the order's certificate now, or ""."""
    ready = renewable_from(row, caps)
    if ready is None or ready <= now:
        return ""
    issued = ready - timedelta(days=caps.renew_min_age_days)
    return (
        f"{ca_label(row)} renews a certificate only once it is at least "
        f"{caps.renew_min_age_days} days old. This one was issued on {issued:%Y-%m-%d}: it can "
        f"be renewed from {ready:%Y-%m-%d %H:%M} UTC."
    )


def why_not(
    row: Order, action: Action, caps: Capabilities | None = None, now: datetime | None = None
) -> str:
    """ "" when ``action`` can be tried on ``row``; otherwise the reason, in words."""
    caps = caps or registry.capabilities(row.ca)
    if not caps.supports(action):
        return f"{ca_label(row)} does not support this."
    problem = _order_problem(row)
    if problem:
        return problem
    now = now or utcnow()
    status = status_now(row, caps, now)
    if not caps.allows(action, status):
        return _status_words([action], caps, status, _expired_on(row, status))
    if action in REPLACING and (words := not_replaceable(row, caps)):
        return words
    if action is Action.RENEW:
        return too_young(row, caps, now)
    return ""


def status_now(row: Order, caps: Capabilities, now: datetime) -> str:
    """The CA's status of the order as it is by now: the one last read, but for an issued (or
    suspended) certificate past its expiry, which the CA calls expired by itself (CertDesk
    reads that at its next status check)."""
    if (
        caps.expired_status
        and row.phase in (Phase.ISSUED.value, Phase.SUSPENDED.value)
        and row.expires_at is not None
        and row.expires_at <= now
    ):
        return caps.expired_status
    return row.status


def _expired_on(row: Order, status: str) -> str:
    """ "", or how the order came to be in ``status`` when CertDesk has not read it yet."""
    if status == row.status or row.expires_at is None:
        return ""
    return f"its certificate expired on {row.expires_at:%Y-%m-%d %H:%M} UTC"


def one_of(words) -> str:
    """ "A, B or C"."""
    words = sorted(words)
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _status_words(actions: list[Action], caps: Capabilities, status: str, why: str = "") -> str:
    labels = " and ".join(LABELS[a] for a in actions)
    allowed = one_of(caps.allowed_statuses.get(actions[0], ()))
    verb = "apply" if len(actions) > 1 else "applies"
    now = status or "of a status not read yet"
    if why:
        now += f" ({why})"
    return f"{labels} {verb} to {allowed} orders; this one is {now}."


def reasons(
    row: Order, actions, caps: Capabilities | None = None, now: datetime | None = None
) -> dict[Action, str]:
    """``why_not`` for several actions at once ({action: reason}, "" when allowed)."""
    caps = caps or registry.capabilities(row.ca)
    return {a: why_not(row, a, caps, now) for a in actions}


def grouped(row: Order, actions, caps: Capabilities | None = None) -> list[str]:
    """The reasons the actions in ``actions`` are not possible on ``row``, one line per reason:
    actions refused in the order's status for the same statuses share a line ("Approve and
    Decline apply to PENDING orders; this one is ACTIVE.")."""
    caps = caps or registry.capabilities(row.ca)
    now = utcnow()
    status = status_now(row, caps, now)
    by_status: dict[frozenset, list[Action]] = {}
    lines: list[str] = []
    for action in actions:
        reason = why_not(row, action, caps, now)
        if not reason:
            continue
        in_status = caps.supports(action) and not _order_problem(row)
        if in_status and not caps.allows(action, status):
            by_status.setdefault(caps.allowed_statuses.get(action, frozenset()), []).append(action)
        elif reason not in lines:
            lines.append(reason)
    for group in by_status.values():
        lines.append(_status_words(group, caps, status, _expired_on(row, status)))
    return lines
