"""Which connector serves which CA: the orders feature opens connectors only through here."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from webapp.cas import entrust
from webapp.cas.base import CaConnector, Capabilities, Unavailable
from webapp.credentials import clients
from webapp.credentials import service as credentials
from webapp.settings import service as settings

# Added to the timeouts: a CA may still carry out a request shortly after its caller gave up
# (the ORDERS_SETTLE_MARGIN_SECONDS configuration value changes it).
SETTLE_MARGIN_SECONDS = 60

LABELS = {"entrust": "Entrust"}

ENTRUST_ALL_REVOCATION_REASONS = settings.register(
    "entrust.all_revocation_reasons",
    False,
    "Entrust accepts all revocation reasons",
    "Entrust accepts only the revocation reasons Key compromise and Unspecified today. Turn this "
    "on only if your Entrust account also accepts Superseded, Affiliation changed and Cessation "
    "of operation: Revoke Certificate then offers them too.",
)


def _entrust_options() -> dict:
    return {"other_revocation_reasons": bool(settings.get(ENTRUST_ALL_REVOCATION_REASONS))}


def capabilities(kind: str, *, configured: bool = True) -> Capabilities:
    """What the CA ``kind`` supports, without opening a connection. ``configured=False`` leaves
    out what the settings add (more revocation reasons, say), for a page that only lists orders
    and so need not read them."""
    if kind == "entrust":
        return entrust.capabilities(**(_entrust_options() if configured else {}))
    raise KeyError(f"unknown CA {kind!r}")


def answer_deadline(kind: str) -> timedelta:
    """How long after a call was asked for (an order's ``attempted_at``) it can no longer take
    effect: the longest it may wait in the credential's request budget before it is sent (the
    budget is each process's own, so another process's search cannot see it waiting), the
    connect and read timeouts in force, and a margin. An order whose answer was lost is searched
    for after this, and only then called "not placed" when it is not found."""
    if kind != "entrust":
        raise KeyError(f"unknown CA {kind!r}")
    connect = float(settings.get(clients.CONNECT_TIMEOUT))
    read = float(settings.get(clients.READ_TIMEOUT))
    margin = float(current_app.config.get("ORDERS_SETTLE_MARGIN_SECONDS", SETTLE_MARGIN_SECONDS))
    return timedelta(seconds=clients.rate_wait_max() + connect + read + margin)


def open_connector(kind: str, account_id: int, *, interactive: bool = False) -> CaConnector:
    """The connector for one account of CA ``kind`` (for Entrust, an ECS credential's id).
    ``interactive``: for reads a page waits for before it is shown (shorter deadlines, fewer
    tries); never for a call that creates or changes something.

    Raises Unavailable when the account is gone, disabled or cannot be used."""
    if kind != "entrust":
        raise KeyError(f"unknown CA {kind!r}")
    cred = credentials.get(account_id, include_deleted=True)
    if cred is None:
        raise Unavailable("The Entrust credential of this order no longer exists.")
    if cred.deleted_at is not None:
        raise Unavailable(f"The Entrust credential {cred.name!r} was deleted.")
    if not cred.enabled:
        raise Unavailable(f"The Entrust credential {cred.name!r} is disabled; enable it first.")
    return entrust.EntrustConnector.open(cred, interactive=interactive, **_entrust_options())
