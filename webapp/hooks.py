"""Reactions across features, named and declared in one place.

A feature that owns an event announces it with ``emit(name, **kwargs)``; features that care
register a handler with ``@on(name)`` in their service module. ``emit`` calls the handlers in
registration order, in the caller's transaction, and returns their results (a list), so an event
can also be a question ("is this key in use?"). Handlers run when their module has been imported;
``create_app`` imports every feature, so in a running portal all of them are registered.

This is the only way one feature reacts to another's change: a feature never imports a package
that imports it back, and never writes another feature's rows except through that feature's
service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

# Every event, with what the publisher passes and what a handler returns.
EVENTS = {
    "credential.created": "(actor, credential): a background Job it started, or None",
    "credential.deleted": "(actor, credential): {label: number of rows kept read-only}",
    "credential.references": "(credential): (count, label) of rows that refer to it",
    "credential.jobs": "(credential): the number of its background jobs not finished yet",
    "credential.syncing": "(): the ids of the credentials a sync not finished yet is reading",
    "credential.counts": (
        "(credential_ids, up_to): {credential_id: {label: count, at most up_to}} for the "
        "Credentials tab"
    ),
    "key.in_use": "(key_id): True when a row still needs the private key",
    "certificate.order": "(order_id): words for the CA order a certificate was issued for, or None",
    "certificate.issued_by": "(certificate_id): the id of the order that issued it, or None",
}

_handlers: dict[str, list[Callable]] = defaultdict(list)


def on(name: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as a handler of ``name``."""
    if name not in EVENTS:
        raise KeyError(f"unknown event {name!r}; declare it in webapp.hooks.EVENTS")

    def register(func: Callable) -> Callable:
        if func not in _handlers[name]:
            _handlers[name].append(func)
        return func

    return register


def emit(name: str, **kwargs) -> list:
    """Call every handler of ``name`` with ``kwargs``; return their results in order."""
    if name not in EVENTS:
        raise KeyError(f"unknown event {name!r}; declare it in webapp.hooks.EVENTS")
    return [handler(**kwargs) for handler in list(_handlers[name])]


def handlers(name: str) -> list[Callable]:
    """The handlers registered for ``name`` (for tests and diagnostics)."""
    return list(_handlers[name])
