"""Which connector serves which CA: the orders feature opens connectors only through here."""

from __future__ import annotations

from webapp.cas import entrust
from webapp.cas.base import CaConnector, Capabilities, Unavailable
from webapp.credentials import service as credentials

LABELS = {"entrust": "Entrust"}


def capabilities(kind: str) -> Capabilities:
    """What the CA ``kind`` supports, without opening a connection."""
    if kind == "entrust":
        return entrust.capabilities()
    raise KeyError(f"unknown CA {kind!r}")


def open_connector(kind: str, account_id: int) -> CaConnector:
    """The connector for one account of CA ``kind`` (for Entrust, an ECS credential's id).

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
    return entrust.EntrustConnector.open(cred)
