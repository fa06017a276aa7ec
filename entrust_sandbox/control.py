"""The control API under /_sandbox/: seed, reset, request log, faults, clock, hooks, users.

The hooks change the account as Entrust's portal or its staff would: a domain's or a
certificate's status, a domain added or taken away, an organization added to a client or taken
away, a client renamed, a product taken away, a custom field set up, changed or turned off.

It is for tests, benchmarks and the demo, so it has no authentication; the sandbox listens on
loopback, and a sandbox told to listen further still answers this API only from loopback
addresses. So that no web page the person running it opens can use it either, it answers only
requests addressed to an IP address or localhost (a name another site's DNS points at the
loopback, as DNS rebinding does, is refused) and no request a browser sent from another origin.
JSON in and out; errors use the same envelope as the API.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request

from . import orders, seed
from .auth import create_user
from .clock import fmt
from .errors import ApiError, bad_request, not_found, parse_json
from .listing import CUSTOM_FIELD_NAMES
from .orders import CERT_TYPES, MANDATORY_FOR_API
from .settings import Settings

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

MAX_ADVANCE_DAYS = 36500  # a hundred years
MAX_SEED_CERTIFICATES = 10_000_000
DOMAIN_STATUSES = (
    "APPROVED",
    "DECLINED",
    "CANCELLED",
    "INITIAL_VERIFICATION",
    "RE_VERIFICATION",
    "EXPIRED",
    "EXPIRING",
)
DOMAIN_SETTINGS = frozenset(
    ("clientId", "domainName", "verificationStatus", "verificationMethod", "evEligible")
)
# An organization's vetting (VerificationStatus in the spec).
ORG_STATUSES = (
    "APPROVED",
    "DECLINED",
    "PENDING",
    "PENDING_FINAL_APPROVAL",
    "DEACTIVATED",
    "EXPIRED",
)
NAME_LIMIT = 1000  # longer than any column CertDesk keeps a name in
CERT_STATUSES = (
    "ACTIVE",
    "APPROVED",
    "DECLINED",
    "EXPIRED",
    "NA",
    "PENDING",
    "PENDING_QUORUM",
    "READY",
    "REISSUED",
    "REISSUING",
    "RENEWED",
    "RENEWING",
    "REVOKED",
    "SUSPENDED",
    "DEACTIVATED",
)


def _sandbox():
    return current_app.extensions["sandbox"]


def _direct_host(host: str) -> bool:
    """An IP address or localhost: no name someone else's DNS answers for."""
    name = (urlsplit("//" + host).hostname or "").rstrip(".")
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _from_this_machine(address: str | None) -> bool:
    """Whether the peer is a loopback address (an IPv4 one mapped into IPv6 included)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@bp.before_request
def _only_direct_callers():
    if not _from_this_machine(request.remote_addr):
        # A sandbox listening beyond loopback (--host 0.0.0.0, for a peer's client) serves its
        # API there, but not this: it hands out API keys and resets the account.
        raise ApiError(403, "The control API answers requests from this machine only")
    host = request.host
    if not _direct_host(host):
        raise ApiError(403, "The control API answers requests to an IP address or localhost only")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != host:
        raise ApiError(403, "The control API answers no request sent from another origin")


def _body() -> dict:
    raw = request.get_data()
    try:
        data = parse_json(raw) if raw.strip() else None
    except ValueError:
        raise bad_request("Body is not valid JSON") from None
    if data is not None and not isinstance(data, dict):
        raise bad_request("Body must be a JSON object")
    return data or {}


@bp.post("/reset")
def reset():
    """Empty account, no faults, empty log, real time, initial settings; users kept."""
    _sandbox().reset()
    return jsonify({"reset": True})


@bp.post("/seed")
def seed_account():
    """Replace the account with deterministic data: {"certificates": N, "seed": S,
    "apiMandatory": [custom field names every API order must fill in]}."""
    body = _body()
    try:
        count = int(body.get("certificates", 100))
        value = body.get("seed", 1)
    except (TypeError, ValueError) as exc:
        raise bad_request("certificates must be an integer", "certificates") from exc
    if not 0 <= count <= MAX_SEED_CERTIFICATES:
        raise bad_request(
            f"certificates must be between 0 and {MAX_SEED_CERTIFICATES}", "certificates"
        )
    mandatory = body.get("apiMandatory") or []
    if not isinstance(mandatory, list) or not all(n in CUSTOM_FIELD_NAMES for n in mandatory):
        raise bad_request("apiMandatory must list custom field names", "apiMandatory")
    started = time.perf_counter()
    summary = seed.seed_account(_sandbox().store, count, value, mandatory)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return jsonify(summary)


@bp.get("/requests")
def list_requests():
    """Every API request seen since the last clear, oldest first."""
    return jsonify({"requests": _sandbox().log.list()})


@bp.delete("/requests")
def clear_requests():
    """Forget the request log."""
    _sandbox().log.clear()
    return "", 204


@bp.get("/faults")
def list_faults():
    """The active fault rules with their hit counts."""
    return jsonify({"rules": _sandbox().faults.list()})


@bp.post("/faults")
def set_faults():
    """Replace the fault rules: {"rules": [{"method", "path", "kind", "rate", "count", ...}]}."""
    rules = _body().get("rules")
    if not isinstance(rules, list):
        raise bad_request("rules must be a list", "rules")
    try:
        return jsonify({"rules": _sandbox().faults.set(rules)})
    except ValueError as exc:
        raise bad_request(str(exc), "rules") from exc


@bp.delete("/faults")
def clear_faults():
    """Remove every fault rule."""
    _sandbox().faults.clear()
    return "", 204


@bp.get("/clock")
def get_clock():
    """The sandbox's time and its offset from real time."""
    store = _sandbox().store
    return jsonify({"now": fmt(store.clock.now()), "offsetDays": store.clock.offset_days})


@bp.post("/clock")
def advance_clock():
    """Move time forward: {"advance_days": D}; certificates past expiry become EXPIRED."""
    body = _body()
    try:
        days = float(body.get("advance_days", body.get("advanceDays")))
    except (TypeError, ValueError) as exc:
        raise bad_request("advance_days must be a number", "advance_days") from exc
    # Far enough for any certificate's life; beyond it dates leave the calendar (year 9999).
    if not math.isfinite(days) or abs(days) > MAX_ADVANCE_DAYS:
        raise bad_request(
            f"advance_days must be a number of days within {MAX_ADVANCE_DAYS}", "advance_days"
        )
    store = _sandbox().store
    # Where the steps lead is bounded as each step is: repeated, they would leave it too.
    moved = store.clock.offset_days + days
    if abs(moved) > MAX_ADVANCE_DAYS:
        raise bad_request(
            f"advance_days must keep the clock within {MAX_ADVANCE_DAYS} days of real time "
            f"(it is {store.clock.offset_days:g} days from it now)",
            "advance_days",
        )
    store.advance_clock(days)
    store.expire_due()
    return jsonify({"now": fmt(store.clock.now()), "offsetDays": store.clock.offset_days})


@bp.post("/domains/<name>")
def set_domain_status(name: str):
    """Set a domain's verificationStatus (all clients, or `clientId` only), as Entrust vetting."""
    body = _body()
    status = str(body.get("verificationStatus", "")).upper()
    if status not in DOMAIN_STATUSES:
        raise bad_request("verificationStatus must be one of " + ", ".join(DOMAIN_STATUSES))
    client_id = body.get("clientId")
    if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, int)):
        raise bad_request("clientId must be an integer", "clientId")
    changed = orders.set_domain_status(_sandbox().store, name, status, client_id)
    if not changed:
        raise not_found("Unknown domain")
    return jsonify({"domainName": name.lower(), "verificationStatus": status, "updated": changed})


def _client_id(body: dict) -> int:
    """``clientId`` of ``body``: an integer naming one of the account's clients."""
    client_id = body.get("clientId")
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise bad_request("clientId must be an integer", "clientId")
    if orders.client_row(_sandbox().store, client_id) is None:
        raise not_found("Unknown clientId")
    return client_id


def _domain_name(name) -> str:
    """A domain name as Entrust keeps it (lower case, no trailing dot), or a 400."""
    if not isinstance(name, str):
        raise bad_request("domainName must be a domain name", "domainName")
    name = name.strip().lower().rstrip(".")
    if not orders.is_host_name(name) or name.startswith("*."):
        raise bad_request("domainName must be a domain name", "domainName")
    return name


def _choice(body: dict, key: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(key, default)
    if value not in choices:
        raise bad_request(f"{key} must be one of " + ", ".join(choices), key)
    return value


@bp.post("/domains")
def add_domain():
    """Add a domain to a client with its validation done (or in any state), as Entrust's staff
    would: {"clientId": N, "domainName": "...", "verificationStatus": "APPROVED" (the default),
    "verificationMethod": "DNS" (the default), "evEligible": false (the default)}."""
    body = _body()
    unknown = sorted(set(body) - DOMAIN_SETTINGS)
    if unknown:
        raise bad_request(f"A domain has no setting {unknown[0]}", unknown[0])
    name = _domain_name(body.get("domainName"))
    status = _choice(body, "verificationStatus", DOMAIN_STATUSES, "APPROVED")
    method = _choice(body, "verificationMethod", orders.VERIFICATION_METHODS, "DNS")
    ev = body.get("evEligible", False)
    if not isinstance(ev, bool):
        raise bad_request("evEligible must be true or false", "evEligible")
    client_id = _client_id(body)
    store = _sandbox().store
    with store.tx() as conn:
        orders.refuse_existing_domain(conn, client_id, name)
        orders.insert_domain(conn, client_id, name, method, status, ev, now=store.clock.now())
    return jsonify({"clientId": client_id, "domainName": name, "verificationStatus": status}), 201


@bp.delete("/domains/<name>")
def remove_domain(name: str):
    """Take a domain away (from every client that has it, or `clientId` only), as Entrust does
    when it is deleted from the account."""
    body = _body()
    client_id = body.get("clientId")
    if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, int)):
        raise bad_request("clientId must be an integer", "clientId")
    sql, params = "DELETE FROM domains WHERE domain_name = ?", [orders.path_domain(name)]
    if client_id is not None:
        sql += " AND client_id = ?"
        params.append(client_id)
    with _sandbox().store.tx() as conn:
        removed = conn.execute(sql, params).rowcount
    if not removed:
        raise not_found("Unknown domain")
    return "", 204


@bp.post("/certificates/<int:tracking_id>")
def set_certificate_status(tracking_id: int):
    """Set a certificate's status as an Entrust administrator would (PENDING to ACTIVE issues)."""
    status = str(_body().get("status", "")).upper()
    if status not in CERT_STATUSES:
        raise bad_request("status must be one of " + ", ".join(CERT_STATUSES), "status")
    sandbox = _sandbox()
    result = orders.admin_set_status(sandbox, tracking_id, status)
    return jsonify(result)


def _name(body: dict, key: str, what: str) -> str:
    """``body[key]``: a name as Entrust's portal takes it (kept as given, blanks included), or
    a 400."""
    name = body.get(key)
    if not isinstance(name, str) or not name.strip():
        raise bad_request(f"{key} must be the {what}", key)
    if len(name) > NAME_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise bad_request(
            f"{key} must be at most {NAME_LIMIT} characters, without control characters", key
        )
    return name


@bp.post("/organizations")
def add_organization():
    """Add an organization to a client, as Entrust's vetting does: {"clientId": N, "name": "...",
    "verificationStatus": "APPROVED" (the default)}; a name the client has already is a 400."""
    body = _body()
    unknown = sorted(set(body) - {"clientId", "name", "verificationStatus"})
    if unknown:
        raise bad_request(f"An organization has no setting {unknown[0]}", unknown[0])
    name = _name(body, "name", "organization's name")
    status = _choice(body, "verificationStatus", ORG_STATUSES, "APPROVED")
    client_id = _client_id(body)
    with _sandbox().store.tx() as conn:
        exists = conn.execute(
            "SELECT 1 FROM organizations WHERE client_id = ? AND name = ?", (client_id, name)
        ).fetchone()
        if exists:
            raise bad_request("The client has this organization already", "name")
        conn.execute(
            "INSERT INTO organizations (client_id, name, verification_status) VALUES (?, ?, ?)",
            (client_id, name, status),
        )
    return jsonify({"clientId": client_id, "name": name, "verificationStatus": status}), 201


CLIENT_SETTINGS = ("clientName", "friendlyClientName", "verificationStatus", "evVerificationStatus")


@bp.post("/clients/<int:client_id>")
def update_client(client_id: int):
    """Rename a client, as Entrust does when its registered name changes, or set its vetting, as
    Entrust's vetting team does: {"clientName": "...", "friendlyClientName": "...",
    "verificationStatus": "APPROVED", "evVerificationStatus": "APPROVED"} (any of them; the
    statuses are those of an organization). Its own organization, named as the client, follows:
    renamed with it and vetted with it (an approval dated as a seeded client's), since an order
    without `org` is for it; its other organizations stay as they are."""
    body = _body()
    unknown = sorted(set(body) - set(CLIENT_SETTINGS))
    if unknown:
        raise bad_request(f"A client has no setting {unknown[0]}", unknown[0])
    if not body:
        given = ", ".join(CLIENT_SETTINGS[:-1]) + " or " + CLIENT_SETTINGS[-1]
        raise bad_request("Give " + given, "clientName")
    changes = {
        key: _choice(body, key, ORG_STATUSES, "")
        if key in ("verificationStatus", "evVerificationStatus")
        else _name(body, key, "client's name")
        for key in body
    }
    store = _sandbox().store
    with store.tx() as conn:
        row = conn.execute("SELECT body FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            raise not_found("Unknown clientId")
        client = json.loads(row[0])
        if "clientName" in changes:
            orders.rename_own_organization(
                conn, client_id, client["clientName"], changes["clientName"]
            )
        client |= changes
        if "verificationStatus" in changes:
            orders.vet_own_organization(
                conn, client_id, client["clientName"], changes["verificationStatus"]
            )
        orders.date_vetting(client, changes, store.clock.now())
        conn.execute(
            "UPDATE clients SET body = ? WHERE client_id = ?", (json.dumps(client), client_id)
        )
    return jsonify({"clientId": client_id, **{k: client.get(k) for k in changes}})


@bp.delete("/organizations")
def remove_organization():
    """Take an organization away from a client, as Entrust does when its vetting lapses or it is
    deleted: {"clientId": N, "name": "..."} (the name exactly as listed)."""
    body = _body()
    client_id, name = body.get("clientId"), body.get("name")
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise bad_request("clientId must be an integer", "clientId")
    if not isinstance(name, str) or not name:
        raise bad_request("name must be the organization's name", "name")
    with _sandbox().store.tx() as conn:
        removed = conn.execute(
            "DELETE FROM organizations WHERE client_id = ? AND name = ?", (client_id, name)
        ).rowcount
    if not removed:
        raise not_found("Unknown organization")
    return "", 204


PRODUCT_TYPES = (*CERT_TYPES, "FLEX", "CMS_1_ADMIN")
CONSUMPTION_TYPES = ("UNLIMITED",)
MAX_INVENTORY = 10_000_000


@bp.post("/products/<product_type>")
def set_product(product_type: str):
    """Give the account a product, or set how many of it remain, as a purchase does:
    {"remainingCount": N} (0 to 10,000,000), and "consumptionType": "UNLIMITED" or null (the
    default: counted). Its used count is kept; its total is used plus remaining."""
    kind = product_type.upper()
    if kind not in PRODUCT_TYPES:
        raise bad_request("productType must be one of " + ", ".join(PRODUCT_TYPES), "productType")
    body = _body()
    unknown = sorted(set(body) - {"remainingCount", "consumptionType"})
    if unknown:
        raise bad_request(f"A product has no setting {unknown[0]}", unknown[0])
    remaining, consumption = body.get("remainingCount"), body.get("consumptionType")
    if isinstance(remaining, bool) or not isinstance(remaining, int):
        raise bad_request("remainingCount must be an integer", "remainingCount")
    if not 0 <= remaining <= MAX_INVENTORY:
        raise bad_request(f"remainingCount must be 0 to {MAX_INVENTORY:,}", "remainingCount")
    if consumption is not None and consumption not in CONSUMPTION_TYPES:
        raise bad_request("consumptionType must be UNLIMITED or null", "consumptionType")
    with _sandbox().store.tx() as conn:
        row = conn.execute(
            "SELECT used_count FROM inventories WHERE product_type = ?", (kind,)
        ).fetchone()
        used = row[0] if row else 0
        conn.execute(
            "INSERT OR REPLACE INTO inventories VALUES (?, ?, ?, ?, ?)",
            (kind, used + remaining, remaining, used, consumption),
        )
    created = row is None
    item = {"productType": kind, "totalCount": used + remaining, "remainingCount": remaining}
    item |= {"usedCount": used, "consumptionType": consumption}
    return jsonify(item), 201 if created else 200


@bp.delete("/products/<product_type>")
def remove_product(product_type: str):
    """Take a product (its inventory) away from the account, as when its contract ends."""
    with _sandbox().store.tx() as conn:
        removed = conn.execute(
            "DELETE FROM inventories WHERE product_type = ?", (product_type.upper(),)
        ).rowcount
    if not removed:
        raise not_found("Unknown product")
    return "", 204


CUSTOM_FIELD_MANDATORY = ("NOT_MANDATORY", "EFORM", *MANDATORY_FOR_API)
CUSTOM_FIELD_LABEL_LIMIT = 50
CUSTOM_FIELD_OPTIONS_LIMIT = 2000
# A field the account has not set up, as GET /customFields lists it.
CUSTOM_FIELD_OFF = {"enabled": False, "eformVisible": False, "mandatory": "NOT_MANDATORY"}


def _custom_field_name(name: str) -> str:
    if name not in CUSTOM_FIELD_NAMES:
        raise not_found("Unknown custom field: text1-15, number1-5, date1-5, email1-5, dropdown1-5")
    return name


def _custom_field(name: str, body: dict) -> dict:
    """The settings of ``body`` for field ``name``, as BaseCustomField (and TextCustomField's
    multiline, DropdownCustomField's options) has them; anything else is a 400."""
    kinds = {"enabled": bool, "eformVisible": bool, "label": str, "mandatory": str, "order": int}
    if name.startswith("text"):
        kinds["multiline"] = bool
    if name.startswith("dropdown"):
        kinds["options"] = str
    unknown = sorted(set(body) - set(kinds))
    if unknown:
        raise bad_request(f"{name} has no setting {unknown[0]}", unknown[0])
    for key, kind in kinds.items():
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad_request(f"{key} must be of type {kind.__name__}", key)
    if body.get("mandatory") is not None and body["mandatory"] not in CUSTOM_FIELD_MANDATORY:
        raise bad_request(
            "mandatory must be one of " + ", ".join(CUSTOM_FIELD_MANDATORY), "mandatory"
        )
    if len(body.get("label") or "") > CUSTOM_FIELD_LABEL_LIMIT:
        raise bad_request(f"label must be at most {CUSTOM_FIELD_LABEL_LIMIT} characters", "label")
    if len(body.get("options") or "") > CUSTOM_FIELD_OPTIONS_LIMIT:
        raise bad_request(
            f"options must be at most {CUSTOM_FIELD_OPTIONS_LIMIT} characters", "options"
        )
    return {**CUSTOM_FIELD_OFF, **{k: v for k, v in body.items() if v is not None}}


def _set_custom_field(name: str, field: dict) -> None:
    with _sandbox().store.tx() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO custom_fields (name, body) VALUES (?, ?)",
            (name, json.dumps(field)),
        )


@bp.post("/custom-fields/<name>")
def set_custom_field(name: str):
    """Set up or change one of the account's custom fields, as in Entrust's portal: its whole
    settings, e.g. {"enabled": true, "label": "Owner team", "mandatory": "BOTH", "order": 5}
    (a setting left out takes its default: off, not on the eForm, not mandatory)."""
    field = _custom_field(_custom_field_name(name), _body())
    _set_custom_field(name, field)
    return jsonify({name: field})


@bp.delete("/custom-fields/<name>")
def remove_custom_field(name: str):
    """Turn one of the account's custom fields off (the account keeps every field's name)."""
    _set_custom_field(_custom_field_name(name), dict(CUSTOM_FIELD_OFF))
    return "", 204


@bp.get("/users")
def list_users():
    """The API users (keys included: this is a test double)."""
    rows = _sandbox().store.query("SELECT * FROM users ORDER BY username")
    return jsonify(
        {
            "users": [
                {
                    "username": r["username"],
                    "apiKey": r["api_key"],
                    "role": r["role"],
                    "requireClientCert": bool(r["require_client_cert"]),
                }
                for r in rows
            ]
        }
    )


@bp.post("/users")
def add_user():
    """Create or replace an API user; an mTLS user's answer has clientCert and clientKey PEM."""
    body = _body()
    require = orders.to_bool(body.get("requireClientCert", False), True, "requireClientCert")
    try:
        user = create_user(
            _sandbox(),
            body.get("username"),
            body.get("apiKey"),
            body.get("role", "administrator"),
            require,
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    return jsonify(user), 201


@bp.post("/rate-limit")
def set_rate_limit():
    """Turn the per-user limit on ({"limit": N} requests per 30 s) or off ({"limit": null})."""
    limit = _body().get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise bad_request("limit must be a positive integer or null", "limit")
    sandbox = _sandbox()
    try:
        sandbox.update_settings({"rate_limit": limit})
    except ValueError as exc:
        raise bad_request(str(exc), "limit") from exc
    sandbox.rate_limiter.clear()
    return jsonify({"limit": limit, "windowSeconds": 30})


@bp.get("/settings")
def get_settings():
    """The current settings, including the live-versus-spec switches under `fidelity`."""
    return jsonify(_sandbox().settings.to_json())


@bp.post("/settings")
def update_settings():
    """Change settings, e.g. {"fidelity": {"inventory_key": "inventory"}}."""
    try:
        settings: Settings = _sandbox().update_settings(_body())
    except (TypeError, ValueError) as exc:
        raise bad_request(str(exc)) from exc
    return jsonify(settings.to_json())


@bp.get("/ca")
def get_ca():
    """The sandbox root and intermediate certificates (PEM)."""
    ca = _sandbox().store.ca
    return jsonify({"root": ca.root_pem, "intermediate": ca.intermediate_pem})
