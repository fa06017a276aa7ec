"""The run-time settings of the Entrust integration (Admin > Settings), and saving them.

Values are read at each use (client construction, scheduler tick), so a change applies without a
restart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from webapp.audit import service as audit
from webapp.extensions import db
from webapp.security import rbac
from webapp.settings import service as settings

SYNC_INTERVAL_HOURS = "catalog.sync_interval_hours"
ORDER_POLL_MINUTES = "orders.poll_interval_minutes"
REQUESTS_PER_MINUTE = "ecs.requests_per_minute"
CONNECT_TIMEOUT = "ecs.connect_timeout_seconds"
READ_TIMEOUT = "ecs.read_timeout_seconds"
DEFAULT_PROXY = "ecs.default_proxy"

settings.register(
    SYNC_INTERVAL_HOURS,
    24,
    "Sync interval (hours)",
    "How often every enabled credential's organizations, domains and products are synced.",
    minimum=1,
    maximum=720,
)
settings.register(
    ORDER_POLL_MINUTES,
    15,
    "Order-status poll interval (minutes)",
    "How often pending Entrust orders are checked for a change of status.",
    minimum=1,
    maximum=1440,
)
settings.register(
    REQUESTS_PER_MINUTE,
    120,
    "ECS request budget per credential (requests per minute)",
    "Shared by sync, import and status polling of one credential in this process.",
    minimum=1,
    maximum=6000,
)
settings.register(
    CONNECT_TIMEOUT,
    10,
    "Connect timeout (seconds)",
    "How long to wait for a connection to Entrust (or the proxy).",
    minimum=1,
    maximum=120,
)
settings.register(
    READ_TIMEOUT,
    60,
    "Read timeout (seconds)",
    "How long to wait for each part of Entrust's answer.",
    minimum=1,
    maximum=600,
)
settings.register(
    DEFAULT_PROXY,
    "",
    "Default HTTPS proxy",
    "Used by credentials without their own proxy, e.g. http://proxy.example.com:3128. Empty: none.",
)


class SettingsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def current() -> dict:
    return {key: settings.get(key) for key in settings.REGISTRY}


def _parse(tunable, raw: str):
    raw = (raw or "").strip()
    if isinstance(tunable.default, bool):
        return raw in ("1", "on", "true", "yes")
    if isinstance(tunable.default, int):
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("Enter a whole number.") from None
        if tunable.minimum is not None and value < tunable.minimum:
            raise ValueError(f"At least {tunable.minimum}.")
        if tunable.maximum is not None and value > tunable.maximum:
            raise ValueError(f"At most {tunable.maximum}.")
        return value
    if tunable.key == DEFAULT_PROXY and raw and not raw.startswith(("http://", "https://")):
        raise ValueError("A proxy URL starts with http:// or https://.")
    if tunable.key == DEFAULT_PROXY and raw and urlsplit(raw).password:
        raise ValueError("The proxy URL must not contain a password: settings are stored in clear.")
    return raw


def save(actor, form) -> dict:
    """Validate every registered setting in ``form`` and store the changed ones, with one audit
    event listing what changed. Raises SettingsError (nothing stored) on any invalid value."""
    rbac.check(actor, rbac.SETTINGS_MANAGE)
    errors, values = {}, {}
    for key, tunable in settings.REGISTRY.items():
        if key not in form:
            continue
        try:
            values[key] = _parse(tunable, form.get(key))
        except ValueError as exc:
            errors[key] = str(exc)
    if errors:
        raise SettingsError(errors)
    changes = {}
    for key, value in values.items():
        old = settings.get(key)
        if old != value:
            settings.put(key, value)
            changes[key] = {"from": _shown(key, old), "to": _shown(key, value)}
    if changes:
        audit.record("settings.update", object_type="settings", detail=changes, actor=actor)
    db.session.commit()
    return changes


def _shown(key: str, value):
    if key == DEFAULT_PROXY and value:
        from webapp.ecs.transport import scrub

        return scrub(str(value))
    return value
