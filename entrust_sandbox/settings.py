"""Runtime settings of the sandbox, including every spec-versus-live switch in one place.

`Fidelity` holds the deliberate departures from Entrust's spec 2.1.0: where the live API, as its
clients see it, answers otherwise than the spec says. Each switch defaults to what the live API
does; flipping it gives the behaviour the spec describes, so a client can be tested against both
readings.
`Settings` adds the behaviour knobs that are not spec departures (guards, delays, limits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

LIVE_CRL_REASONS = ("unspecified", "keyCompromise")
SPEC_ONLY_CRL_REASONS = ("affiliationChanged", "superseded", "cessationOfOperation")


@dataclass(frozen=True)
class Fidelity:
    """Section-9 switches: the default of each is the live behaviour, the other value the spec's."""

    # 9.1: domains carry `verificationStatus` (live) rather than `status` (spec).
    domain_status_key: str = "verificationStatus"
    # 9.2: GET /inventories answers under `inventories` (live) rather than `inventory` (spec).
    inventory_key: str = "inventories"
    # 9.3: the client certificate is optional per API user (live) or required for all (spec).
    client_cert_required_for_all: bool = False
    # 9.4: besides unspecified/keyCompromise, accept the spec's other crlReason values.
    accept_spec_only_crl_reasons: bool = False
    # 9.5: `validateOnly` on a renewal: "reject" (live, 400), "ignore", or "honour" (spec).
    renew_validate_only: str = "reject"
    # 9.6: GET /certificates/thumbprints/{thumbprint} exists (live) or is a 404 (spec).
    thumbprint_endpoint: bool = True
    # 9.7: GET /organizationalUnits answers under `organizationalunits` (live/example) or
    # `organizations` (spec schema).
    all_ous_key: str = "organizationalunits"
    # 9.8: certExpiryDate accepts date-times (live) or only YYYY-MM-DD (spec).
    accept_datetime_expiry: bool = True
    # 9.9: booleans may be the strings "true"/"false" (live) or must be JSON booleans (spec).
    accept_string_booleans: bool = True
    # 9.10: an empty certificate search is 200 with no items (live) or 404 (as KF copes with).
    empty_search_404: bool = False
    # 9.11: client verificationStatus upper case (live enum) or "Pending" as in the spec example.
    mixed_case_pending_client: bool = False
    # 12: the list call leaves out APPROVED and DECLINED certificates (live) or shows them.
    list_hides_approved_declined: bool = True


@dataclass(frozen=True)
class Settings:
    """All settings of a running sandbox; change them at run time with POST /_sandbox/settings."""

    fidelity: Fidelity = field(default_factory=Fidelity)
    # The live CA refuses the same DN "in a short time frame"; 0 turns the guard off.
    duplicate_dn_window_seconds: int = 5
    # The domain validation values show up a few seconds after add/reverify.
    dcv_delay_seconds: int = 5
    # Requests per 30 s per API user; None means no limit (ECS does not publish its number).
    rate_limit: int | None = None
    # The version string of GET /application/version.
    app_version: str = "12.5.0.138"

    def to_json(self) -> dict:
        """Return the settings as a JSON-ready dict (fidelity nested under `fidelity`)."""
        return asdict(self)

    def updated(self, changes: dict) -> Settings:
        """Return a copy with `changes` applied; an unknown name or a value the sandbox could
        not run with (a wrong type, a number out of range, a switch's unknown choice) raises
        ValueError and changes nothing."""
        changes = dict(changes)
        fid_changes = changes.pop("fidelity", None) or {}
        if not isinstance(fid_changes, dict):
            raise ValueError("fidelity must be an object of switches")
        known = {f.name for f in fields(self)} - {"fidelity"}
        fid_known = {f.name for f in fields(Fidelity)}
        unknown = (set(changes) - known) | (set(fid_changes) - fid_known)
        if unknown:
            raise ValueError("unknown setting(s): " + ", ".join(sorted(unknown)))
        for name, value in changes.items():
            _check(name, value, getattr(self, name))
        for name, value in fid_changes.items():
            _check(name, value, getattr(self.fidelity, name))
        return replace(self, fidelity=replace(self.fidelity, **fid_changes), **changes)

    def accepted_crl_reasons(self) -> tuple[str, ...]:
        """The crlReason values a revocation may carry under the current switches."""
        if self.fidelity.accept_spec_only_crl_reasons:
            return LIVE_CRL_REASONS + SPEC_ONLY_CRL_REASONS
        return LIVE_CRL_REASONS


# The choices of the switches that are not on/off: the live value first, then the spec's.
CHOICES = {
    "domain_status_key": ("verificationStatus", "status"),
    "inventory_key": ("inventories", "inventory"),
    "renew_validate_only": ("reject", "ignore", "honour"),
    "all_ous_key": ("organizationalunits", "organizations"),
}
# Seconds and counts: beyond these a setting stops making sense (and time arithmetic fails).
MAX_SECONDS = 86400
MAX_RATE_LIMIT = 1_000_000


def _check(name: str, value, current) -> None:
    """Raise ValueError unless ``value`` can stand where ``current`` (the same setting) does."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(CHOICES[name])}")
    elif name == "rate_limit":
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= MAX_RATE_LIMIT
        ):
            raise ValueError("rate_limit must be a positive integer or null")
    elif isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
    elif isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
            raise ValueError(f"{name} must be a whole number from 0 to {MAX_SECONDS}")
    elif isinstance(current, str) and not (isinstance(value, str) and value):
        raise ValueError(f"{name} must be text")
