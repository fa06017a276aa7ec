"""Run-time settings stored in the database, so every process sees a change without a restart.

Each feature declares its own tunables with ``register(key, default, label, ...)`` in its service
module (a whole number with bounds, a yes/no, or text with a validator); Admin > Settings lists
what is registered, parses and checks the form here, and saves the changes with one audit event.
Values are JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete as sa_delete

from webapp.audit import service as audit
from webapp.dbtypes import utcnow
from webapp.extensions import conflict_insert, db
from webapp.security import rbac
from webapp.settings.models import Setting
from webapp.validation import InputError, password_hidden


@dataclass(frozen=True)
class Tunable:
    key: str
    default: object
    label: str
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    # For text: raises ValueError with the message to show; returns the value to store.
    validate: Callable[[str], str] | None = None
    # How the value is written into the audit trail (e.g. without a URL's user name).
    shown: Callable[[object], object] | None = None

    def parse(self, raw: str | None):
        """The value for the form text ``raw``; raises ValueError with a message to show."""
        raw = (raw or "").strip()
        if isinstance(self.default, bool):
            return raw in ("1", "on", "true", "yes")
        if isinstance(self.default, int):
            # ASCII digits (and a sign) only: int() also reads "1_5" and other scripts' digits.
            if not re.fullmatch(r"[+-]?[0-9]{1,18}", raw):
                raise ValueError("Enter a whole number.")
            value = int(raw)
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"At least {self.minimum}.")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"At most {self.maximum}.")
            return value
        if len(raw) > 500:
            raise ValueError("At most 500 characters.")
        return self.validate(raw) if self.validate and raw else raw


REGISTRY: dict[str, Tunable] = {}


def register(key: str, default, label: str, help: str = "", **options) -> str:
    """Declare a tunable (once per key); returns the key, for the feature's constant."""
    REGISTRY[key] = Tunable(key, default, label, help, **options)
    return key


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


def put_new(key: str, value) -> bool:
    """Store a value unless ``key`` has one, in the current transaction; True when this
    transaction stored it. Of concurrent callers exactly one stores its value; the others store
    nothing and raise nothing (they wait for its transaction, then find the row)."""
    conn = db.session.connection()
    stmt = conflict_insert(conn, Setting).values(
        key=key, value=json.dumps(value), updated_at=utcnow()
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["key"]).returning(Setting.key)
    return conn.execute(stmt).first() is not None


def claim(key: str, value) -> bool:
    """Remove ``key`` if it holds ``value``, in the current transaction; True when this
    transaction removed it. For one-time values: of concurrent claims exactly one gets True (the
    others wait for the row lock, then find nothing to remove)."""
    claimed = db.session.execute(
        sa_delete(Setting).where(Setting.key == key, Setting.value == json.dumps(value))
    ).rowcount
    return claimed == 1


def delete(key: str) -> None:
    row = db.session.get(Setting, key)
    if row is not None:
        db.session.delete(row)


def current() -> dict:
    """Every registered tunable's value."""
    return {key: get(key) for key in REGISTRY}


class SettingsError(InputError):
    """Some values were refused; ``errors`` maps each setting's key to its message, and
    ``meanwhile`` holds the keys refused for a change saved elsewhere since the form was opened."""

    def __init__(self, errors: dict[str, str], meanwhile: frozenset[str] = frozenset()):
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.meanwhile = meanwhile


# The form carries, next to each setting, the value it was opened with ("opened:" + its key, as
# JSON): a setting left as it was shown is not stored, so a change someone saved meanwhile stays.
OPENED = "opened:"


def opened_with(form) -> dict:
    """The values the form was opened with, by key; a key without a readable one is left out."""
    opened = {}
    for key in REGISTRY:
        raw = form.get(OPENED + key)
        if raw is None:
            continue
        try:
            opened[key] = json.loads(raw)
        except ValueError:
            continue
    return opened


def _in_words(key: str, value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    shown = REGISTRY[key].shown or (lambda v: v)
    return str(shown(value)) if value != "" else "empty"


def _parsed(form) -> tuple[dict, dict[str, str]]:
    errors, values = {}, {}
    for key, tunable in REGISTRY.items():
        if key not in form:
            continue
        try:
            values[key] = tunable.parse(form.get(key))
        except ValueError as exc:
            errors[key] = str(exc)
    return values, errors


def shown_again(form, refused: SettingsError) -> tuple[dict, dict]:
    """(values, opened-with) for the form shown again after ``refused``: a setting the form
    changed shows what was typed; one it left as opened shows the stored value (it may have
    changed meanwhile). A setting refused for a change made meanwhile is opened anew with the
    stored value, so sending it again replaces that change knowingly."""
    stored, opened = current(), opened_with(form)
    typed, _ = _parsed(form)
    values, again = {}, {}
    for key in REGISTRY:
        left_as_opened = key in opened and key in typed and typed[key] == opened[key]
        if key not in form or left_as_opened:
            values[key], again[key] = stored[key], stored[key]
        else:
            values[key] = password_hidden(form.get(key, ""))  # a proxy's password is not sent back
            again[key] = stored[key] if key in refused.meanwhile else opened.get(key, stored[key])
    return values, {k: json.dumps(v) for k, v in again.items()}


def save(actor, form) -> dict:
    """Validate every registered setting present in ``form`` and store the changed ones, with one
    audit event listing what changed. Raises SettingsError (nothing stored) on any bad value.

    A setting the form left as it was opened with (its ``opened:`` field) is not stored, so a
    change saved meanwhile elsewhere stays; one the form changed while someone else changed it
    too is refused (SettingsError, nothing stored), naming the value saved meanwhile."""
    rbac.check(actor, rbac.SETTINGS_MANAGE)
    values, errors = _parsed(form)
    if errors:
        raise SettingsError(errors)
    opened = opened_with(form)
    changes, meanwhile = {}, {}
    for key, value in values.items():
        old = get(key)
        if key in opened and value == opened[key]:
            continue  # left as shown
        if key in opened and old != opened[key] and value != old:
            meanwhile[key] = (
                f"Changed to {_in_words(key, old)} after this form was opened (by someone else, "
                "or in another tab); nothing was saved. Save again to replace it with this value."
            )
        elif old != value:
            put(key, value)
            shown = REGISTRY[key].shown or (lambda v: v)
            changes[key] = {"from": shown(old), "to": shown(value)}
    if meanwhile:
        db.session.rollback()
        raise SettingsError(meanwhile, frozenset(meanwhile))
    if changes:
        audit.record("settings.update", actor=actor, object_type="settings", detail=changes)
    db.session.commit()
    return changes
