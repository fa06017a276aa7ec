"""Run-time settings stored in the database, so every process sees a change without a restart.

Features declare their tunables with ``register(key, default, label, ...)``; Admin > Settings lists
what is registered. Values are JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from webapp.extensions import db
from webapp.settings.models import Setting


@dataclass(frozen=True)
class Tunable:
    key: str
    default: object
    label: str
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None


REGISTRY: dict[str, Tunable] = {}


def register(key: str, default, label: str, help: str = "", minimum=None, maximum=None) -> None:
    REGISTRY[key] = Tunable(key, default, label, help, minimum, maximum)


def get(key: str, default=None):
    row = db.session.get(Setting, key)
    if row is not None:
        return json.loads(row.value)
    if key in REGISTRY:
        return REGISTRY[key].default
    return default


def put(key: str, value) -> None:
    """Store a value in the current transaction (the caller commits, with its audit event)."""
    row = db.session.get(Setting, key)
    text = json.dumps(value)
    if row is None:
        db.session.add(Setting(key=key, value=text))
    else:
        row.value = text


def delete(key: str) -> None:
    row = db.session.get(Setting, key)
    if row is not None:
        db.session.delete(row)
