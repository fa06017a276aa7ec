"""Certificate and domain rules: ordering, issuance and the lifecycle of section 8.

Every function takes the `Sandbox` (or its store), checks the request the way ECS does, and
either changes the state in one transaction or raises an `ApiError` having changed nothing.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sqlite3
from datetime import datetime, time, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption
from cryptography.hazmat.primitives.serialization import pkcs12 as p12
from cryptography.x509.oid import NameOID

from . import ca as ca_mod
from .clock import fmt, fmt_millis, parse_datetime, parse_expiry_date, written_date
from .errors import INT_MAX, ApiError, bad_request, in_range, not_found, parse_int
from .listing import API, CUSTOM_FIELD_NAMES, custom_number
from .store import bar_key

SSL_TYPES = (
    "STANDARD_SSL",
    "ADVANTAGE_SSL",
    "UC_SSL",
    "EV_SSL",
    "QWAC_SSL",
    "PSD2_SSL",
    "WILDCARD_SSL",
    "PRIVATE_SSL",
    "PD_SSL",
)
CODE_SIGNING_TYPES = ("CODE_SIGNING", "EV_CODE_SIGNING")
CDS_TYPES = ("CDS_INDIVIDUAL", "CDS_GROUP", "CDS_ENT_LITE", "CDS_ENT_PRO")
CERT_TYPES = SSL_TYPES + CODE_SIGNING_TYPES + CDS_TYPES + ("SMIME_ENT",)
EV_TYPES = ("EV_SSL", "EV_CODE_SIGNING", "QWAC_SSL", "PSD2_SSL")
QUEUEABLE_TYPES = SSL_TYPES + CDS_TYPES  # the types queueForApproval applies to
# The longest validity a public SSL certificate may be ordered with, in days from the day of the
# request to its expiry date: the CA/Browser Forum's bound for publicly trusted TLS certificates
# (Lemur: "ENTRUST only allows 13 months of max certificate duration"). PRIVATE_SSL is not capped.
PUBLIC_SSL_MAX_DAYS = 398
MAX_VALIDITY_DAYS = {t: PUBLIC_SSL_MAX_DAYS for t in SSL_TYPES if t != "PRIVATE_SSL"}
EKUS = ("SERVER_AUTH", "CLIENT_AUTH", "SERVER_AND_CLIENT_AUTH")
LIFETIMES = {"P1Y": 1, "P2Y": 2, "P3Y": 3}
USABLE_DOMAIN = ("APPROVED", "RE_VERIFICATION", "EXPIRING")
EXPIRING_WITHIN = timedelta(days=90)  # an approved domain this close to its OV expiry: EXPIRING
EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # P-256, P-384, P-521
RENEW_MIN_AGE = timedelta(days=30)
EMAIL_LIMIT = 254  # the longest email address ECS takes
# One address (the spec's `format: email`): a local part, one @ and a domain, with no space,
# comma or semicolon, so neither a list written as one string nor a display name.
_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+")
TRACKING_LIMITS = {"trackingInfo": 128, "requesterName": 255, "requesterEmail": EMAIL_LIMIT}
COMMON_NAME_LIMIT = 64  # X.520's upper bound for a CN
# A host name as a certificate or a domain names it: ASCII labels (an internationalised name in
# its xn-- form), a wildcard only as the whole first label.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"(\*\.)?(?:{_LABEL}\.)+{_LABEL}")


# -- input helpers ------------------------------------------------------------------------------


def to_bool(value, lenient: bool, field: str) -> bool:
    """A JSON boolean, or (when lenient, as the live API) the strings "true"/"false"."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if lenient and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_request(f"{field} must be a boolean", field)


def _text(body: dict, key: str) -> str | None:
    """``body[key]`` when it is text (None when absent or empty); a 400 for a number, a list or
    an object, which no text field of ECS takes."""
    value = body.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string", key)
    return value


def is_host_name(name: str) -> bool:
    """A DNS name in ASCII form (lower case), as an SSL certificate or a domain may hold."""
    return len(name) <= 253 and _HOST_NAME.fullmatch(name) is not None


def _int(value, field: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = parse_int(value)
    except ValueError as exc:
        raise bad_request(f"{field} must be an integer", field) from exc
    return in_range(number, field)


def _csr(text, field="csr") -> x509.CertificateSigningRequest:
    if not isinstance(text, str):
        raise bad_request("The CSR is missing or not a string", field)
    try:
        csr = ca_mod.load_csr(text)
    except ValueError as exc:
        raise bad_request("The CSR could not be decoded", field) from exc
    if not csr.is_signature_valid:
        raise bad_request("The CSR signature is not valid", field)
    _check_key(csr.public_key())
    return csr


def _check_key(public_key) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size not in ca_mod.RSA_KEY_SIZES:
            raise bad_request(ca_mod.KEY_SIZE_MESSAGE, "csr")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in EC_CURVES:
            raise bad_request("The EC curve must be P-256, P-384 or P-521.", "csr")
    else:
        raise bad_request("The key type must be RSA or EC.", "csr")


def is_email(text: str) -> bool:
    """Whether ``text`` is one email address of at most EMAIL_LIMIT characters, in ASCII: every
    email field takes what certEmail does (an internationalised address is not taken)."""
    return len(text) <= EMAIL_LIMIT and text.isascii() and _EMAIL.fullmatch(text) is not None


def _string_list(value, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{field} must be an array of strings", field)
    return [v.strip() for v in value if v.strip()]


def account_fields(store) -> dict:
    """The account's custom field settings by name (GET /customFields)."""
    return {r["name"]: json.loads(r["body"]) for r in store.query("SELECT * FROM custom_fields")}


def clean_tracking(value, account: dict) -> dict:
    """Validate UserSpecifiableTrackingData against the account's custom fields (``account``);
    unknown keys are dropped, as ECS ignores them."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("tracking must be an object", "tracking")
    out = {}
    for key in ("trackingInfo", "requesterName", "requesterEmail", "requesterPhone"):
        if value.get(key) is not None:
            text = _scalar_text(value[key])
            if text is None:
                raise bad_request(f"{key} must be a string", f"tracking.{key}")
            limit = TRACKING_LIMITS.get(key)
            if limit and len(text) > limit:
                raise bad_request(f"{key} must be at most {limit} characters", f"tracking.{key}")
            if key == "requesterEmail" and text and not is_email(text):
                raise bad_request(
                    "requesterEmail is not an email address", "tracking.requesterEmail"
                )
            out[key] = text
    emails = _string_list(value.get("additionalEmails"), "tracking.additionalEmails")
    for email in emails or ():
        if not is_email(email):
            raise bad_request(
                f"additionalEmails: {email[:60]} is not an email address",
                "tracking.additionalEmails",
            )
    if emails:
        out["additionalEmails"] = emails
    custom = value.get("customFields")
    if custom is not None:
        if not isinstance(custom, dict):
            raise bad_request("customFields must be an object", "tracking.customFields")
        out["customFields"] = _custom_fields(custom, account)
    return out


def _scalar_text(value) -> str | None:
    """A tracking value as text: a string as sent, a number or a boolean as JSON writes it
    (``true``, not Python's ``True``); None for a list or an object, which no field takes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


CUSTOM_TEXT_LIMIT = 500
DROPDOWN_LIMIT = 50
MANDATORY_FOR_API = ("ADMIN_API", "BOTH")  # EFORM: only on Entrust's own request form


def _custom_fields(custom: dict, account: dict) -> dict:
    """The account's custom fields by their names (text1..15, number1..5, date1..5, email1..5,
    dropdown1..5): other keys are dropped, as ECS ignores what it does not know; a value that
    does not fit its kind, or a dropdown's choice the account does not offer, is a 400.

    A value is kept as its kind, whatever JSON type it came in: a number for numberN, a
    YYYY-MM-DD date for dateN, text for the others. A blank value is no value: a blank text
    is kept as sent, unchecked, and a blank number or date left out, as it is neither."""
    out = {}
    for name, value in custom.items():
        if value is None or name not in CUSTOM_FIELD_NAMES:
            continue
        field = f"tracking.customFields.{name}"
        text = _scalar_text(value)
        if text is None:
            raise bad_request(f"{name} must be a single value, not a list or an object", field)
        if len(text) > CUSTOM_TEXT_LIMIT:
            raise bad_request(f"{name} must be at most {CUSTOM_TEXT_LIMIT} characters", field)
        if not text.strip():
            if not name.startswith(("number", "date")):
                out[name] = text
            continue
        if name.startswith("number"):
            number = custom_number(text)
            if number is None:
                raise bad_request(f"{name} must be a number", field)
            out[name] = number
            continue
        if name.startswith("date"):
            try:
                if not isinstance(value, str):
                    raise ValueError("a date is text")
                out[name] = written_date(text).isoformat()
            except ValueError:
                raise bad_request(f"{name} must be a date (YYYY-MM-DD)", field) from None
            continue
        if name.startswith("email") and not is_email(text):
            raise bad_request(f"{name} is not an email address", field)
        if name.startswith("dropdown"):
            if len(text) > DROPDOWN_LIMIT:
                raise bad_request(f"{name} must be at most {DROPDOWN_LIMIT} characters", field)
            options = (account.get(name) or {}).get("options")
            if options and text not in [o.strip() for o in options.split(",")]:
                raise bad_request(f"{name} must be one of: {options}", field)
        out[name] = text
    return out


def _check_mandatory(account: dict, tracking: dict) -> None:
    """Every enabled custom field the account makes mandatory for the API has a value."""
    given = tracking.get("customFields") or {}
    for name, config in account.items():
        if not config.get("enabled") or config.get("mandatory") not in MANDATORY_FOR_API:
            continue
        if not str(given.get(name) or "").strip():
            label = config.get("label") or name
            raise bad_request(f"{label} ({name}) is required", f"tracking.customFields.{name}")


def _tracking_columns(tracking: dict) -> dict:
    return {
        "tracking_json": json.dumps(tracking),
        "tracking_info": tracking.get("trackingInfo"),
        "requester_name": tracking.get("requesterName"),
        "requester_email": tracking.get("requesterEmail"),
        "requester_phone": tracking.get("requesterPhone"),
        "emails_key": bar_key(tracking.get("additionalEmails", [])),
    }


# -- lookups ------------------------------------------------------------------------------------


def parse_tracking_id(text: str) -> int:
    """A trackingId from a path segment; leading zeros are allowed, as in the spec's example."""
    if not (text.isascii() and text.isdigit()):
        raise bad_request("Invalid trackingId", "trackingId")
    number = int(text)
    if number > INT_MAX:  # well formed, but no certificate has it
        raise not_found("Unknown trackingId")
    return number


def certificate_row(store, tracking_id: int):
    """The certificate with this trackingId, or a 404 ApiError."""
    row = None
    if tracking_id > 0:
        row = store.query_one(
            "SELECT * FROM certificates WHERE tracking_id = ? ORDER BY id DESC LIMIT 1",
            (tracking_id,),
        )
    if row is None:
        raise not_found("Unknown trackingId")
    return row


def client_row(store, client_id: int):
    """A client as a dict (its stored JSON), or None."""
    row = store.query_one("SELECT body FROM clients WHERE client_id = ?", (client_id,))
    return json.loads(row["body"]) if row else None


def age_domains(store) -> None:
    """Validations run out with time, as at Entrust: an approved domain within 90 days of its OV
    expiry is EXPIRING, and one (approved, re-verifying or expiring) past it is EXPIRED, which
    no certificate may name. Run before domains are read or used (two index ranges)."""
    now = store.clock.now()
    with store.tx() as conn:
        conn.execute(
            "UPDATE domains SET verification_status = 'EXPIRED', ov_eligible = 0 "
            "WHERE verification_status IN ('APPROVED', 'RE_VERIFICATION', 'EXPIRING') "
            "AND ov_expiry < ?",
            (fmt(now),),
        )
        conn.execute(
            "UPDATE domains SET verification_status = 'EXPIRING' "
            "WHERE verification_status = 'APPROVED' AND ov_expiry < ?",
            (fmt(now + EXPIRING_WITHIN),),
        )


def _usable_domains(store, client_id: int) -> list:
    """The client's domains that certificates may name now."""
    age_domains(store)
    return store.query(
        "SELECT * FROM domains WHERE client_id = ? AND verification_status IN (?, ?, ?)",
        (client_id, *USABLE_DOMAIN),
    )


def _covering_domain(domains: list, name: str):
    bare = name.lower().rstrip(".")
    if bare.startswith("*."):
        bare = bare[2:]
    best = None
    for row in domains:
        domain = row["domain_name"]
        if (bare == domain or bare.endswith("." + domain)) and (
            best is None or len(domain) > len(best["domain_name"])
        ):
            best = row
    return best


def _check_standard_names(names: list[str]) -> None:
    """A STANDARD_SSL certificate names one host and its www. twin (the spec: CN `d.tld`
    allows only `www.d.tld`, and the reverse)."""
    base = names[0].removeprefix("www.")
    extra = [name for name in names if name not in (base, "www." + base)]
    if extra:
        raise bad_request(
            f"A STANDARD_SSL certificate may name only {base} and www.{base}, not {extra[0]}",
            "subjectAltName",
        )


def _check_upn(store, client_id: int, upn) -> None:
    """An S/MIME UPN's domain must be approved for the client."""
    if not isinstance(upn, str) or not is_email(upn):
        raise bad_request("upn must be an email address", "upn")
    if _covering_domain(_usable_domains(store, client_id), upn.split("@")[1]) is None:
        raise bad_request(f"The domain of {upn} is not approved for client {client_id}", "upn")


# -- the order plan -------------------------------------------------------------------------


class Plan:
    """What a valid order will produce: subject, SANs, key, expiry, inventory pool, columns."""

    def __init__(self, **values):
        self.__dict__.update(values)


def _expiry(body: dict, sandbox, now: datetime, cert_type: str) -> datetime:
    """The expiry a new order or renewal asks for: certExpiryDate (which wins when both are
    sent, as Keyfactor does), else certLifetime, else one year; refused past the type's cap."""
    expiry, field = _asked_expiry(body, sandbox, now)
    max_days = MAX_VALIDITY_DAYS.get(cert_type)
    if max_days is not None and (expiry.date() - now.date()).days > max_days:
        latest = now.date() + timedelta(days=max_days)
        raise bad_request(
            f"A {cert_type} certificate may be valid for at most {max_days} days: "
            f"the expiry date must be {latest.isoformat()} or earlier",
            field,
        )
    return expiry


def _asked_expiry(body: dict, sandbox, now: datetime, default_years: int = 1):
    """The expiry asked for, and the field that asked for it."""
    lenient = sandbox.settings.fidelity.accept_datetime_expiry
    raw_date, lifetime = body.get("certExpiryDate"), body.get("certLifetime")
    if raw_date not in (None, ""):
        try:
            day = parse_expiry_date(raw_date, lenient)
        except ValueError as exc:
            raise bad_request(
                "certExpiryDate must be a date (YYYY-MM-DD)", "certExpiryDate"
            ) from exc
        expiry = datetime.combine(day, time(23, 59, 59), now.tzinfo)
        if expiry <= now:
            raise bad_request("certExpiryDate must be in the future", "certExpiryDate")
        return expiry, "certExpiryDate"
    if lifetime not in (None, ""):
        if not isinstance(lifetime, str) or lifetime not in LIFETIMES:
            raise bad_request("certLifetime must be one of P1Y, P2Y, P3Y", "certLifetime")
        years = LIFETIMES[lifetime]
    else:
        years = default_years
    try:
        end = now.date().replace(year=now.year + years)
    except ValueError:  # 29 February in a year that has none
        end = now.date().replace(year=now.year + years, day=28)
    return datetime.combine(end, time(23, 59, 59), now.tzinfo), "certLifetime"


def _pick_pool(conn, cert_type: str) -> str:
    for pool in (cert_type, "FLEX"):
        if pool == "FLEX" and (cert_type not in SSL_TYPES or cert_type == "PD_SSL"):
            continue
        row = conn.execute("SELECT * FROM inventories WHERE product_type = ?", (pool,)).fetchone()
        if row and (row["consumption_type"] == "UNLIMITED" or row["remaining_count"] > 0):
            return pool
    raise bad_request(f"There is no remaining inventory for {cert_type}", "certType")


# An inventory row keeps total = used + remaining. An UNLIMITED one has nothing remaining to
# take from: a use adds to its total as to its used count.
def _consume(conn, pool: str) -> None:
    conn.execute(
        "UPDATE inventories SET used_count = used_count + 1, "
        "total_count = CASE WHEN consumption_type = 'UNLIMITED' THEN total_count + 1 "
        "ELSE total_count END, "
        "remaining_count = CASE WHEN consumption_type = 'UNLIMITED' THEN remaining_count "
        "ELSE remaining_count - 1 END WHERE product_type = ?",
        (pool,),
    )


def _release(conn, pool: str | None) -> None:
    if pool:
        conn.execute(
            "UPDATE inventories SET "
            "total_count = CASE WHEN consumption_type = 'UNLIMITED' AND used_count > 0 "
            "THEN total_count - 1 ELSE total_count END, "
            "remaining_count = CASE WHEN consumption_type = 'UNLIMITED' THEN remaining_count "
            "ELSE remaining_count + 1 END, used_count = MAX(used_count - 1, 0) "
            "WHERE product_type = ?",
            (pool,),
        )


def _approved_ou(store, client_id: int, name: str) -> bool:
    return (
        store.query_one(
            "SELECT 1 FROM org_units WHERE client_id = ? AND name = ? "
            "AND verification_status = 'APPROVED'",
            (client_id, name),
        )
        is not None
    )


def _ou(store, client_id: int, body: dict, new_csr, original) -> list[str]:
    """The certificate's OU (at most one). An ``ou`` given names it, or "" for none, and an
    unapproved one is refused. Otherwise the default: the OU of the CSR sent with the request
    (none when that CSR has none), else the original's on a reissue or renewal; a default that
    is not approved is left out. ``ou: []``, which some clients send on every request, gives
    nothing, as an absent ``ou`` does."""
    raw = body.get("ou")
    ou = _string_list(raw, "ou")
    if ou is not None and raw != []:
        if len(ou) > 1:
            raise bad_request("At most one OU may be given", "ou")
        if ou and not _approved_ou(store, client_id, ou[0]):
            raise bad_request("Unapproved OU", "ou")
        return ou
    if new_csr is not None:
        found = new_csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        defaults = [str(a.value) for a in found]
    elif original is not None:
        defaults = json.loads(original["ou_json"])
    else:
        defaults = []
    return [name for name in defaults if _approved_ou(store, client_id, name)][:1]


def _organization_refused(store, client_id: int, org: str) -> str:
    """Why ``org`` cannot go on an order of ``client_id``: not approved, or another client's
    (an organization is given only for client 1; another client's order names no ``org`` and
    gets that client's)."""
    other = store.query_one(
        "SELECT client_id FROM organizations WHERE client_id != ? AND name = ? "
        "AND verification_status = 'APPROVED' ORDER BY client_id LIMIT 1",
        (client_id, org),
    )
    if other is None:
        return f"The organization '{org}' is not approved"
    return (
        f"The organization '{org}' is client {other['client_id']}'s, not client {client_id}'s: "
        f"order with clientId {other['client_id']} and no org"
    )


def make_plan(sandbox, body: dict, cert_type: str, *, original=None, renewal=False) -> Plan:
    """Check an order (new, reissue or renewal) against the account; return the plan or raise.

    For reissue and renewal, `original` is the certificate row whose values fill the gaps.
    """
    store = sandbox.store
    lenient = sandbox.settings.fidelity.accept_string_booleans
    now = store.clock.now()
    # "If the clientId is not specified, 1 is used": for a reissue or renewal too (the spec's
    # ReissueCertificateRequest says so; the clients that reissue always send it).
    client_id = _int(body.get("clientId"), "clientId", 1)
    client = client_row(store, client_id)
    if client is None:
        raise bad_request("Unknown clientId", "clientId")
    if client.get("verificationStatus") != "APPROVED":
        raise bad_request("The client is not approved", "clientId")
    if cert_type in EV_TYPES and client.get("evVerificationStatus") != "APPROVED":
        raise bad_request("The client is not approved for EV certificates", "certType")

    # Key: from the CSR, or (reissue/renew without CSR) the original certificate's key.
    csr = None
    csr_given = body.get("csr") not in (None, "")
    if csr_given:
        csr = _csr(body["csr"])
        public_key = csr.public_key()
    elif original is not None:
        pem, csr_text = store.certificate_pem(original)
        public_key = ca_mod.load_cert(pem).public_key()
        csr = ca_mod.load_csr(csr_text) if csr_text else None
    elif cert_type == "SMIME_ENT" and _text(body, "password"):
        public_key = None  # the server makes the key and returns a PKCS#12
    else:
        raise bad_request("A CSR is required", "csr")

    # Organization: `org` only with client 1, except PD_SSL, where the O= of a CSR sent with
    # the request counts. With no `org`, the client's organization, as for a new order; a
    # reissue or renewal for the original's client keeps the original's, which is one of that
    # client's (for PD_SSL too, whose original may have had its `org` from the request).
    org = _text(body, "org")
    if org is not None:
        if client_id != 1 and cert_type != "PD_SSL":
            raise bad_request("org may only be given for the primary client (clientId 1)", "org")
    elif cert_type == "PD_SSL" and csr_given:
        org = ca_mod.csr_attribute(csr, NameOID.ORGANIZATION_NAME)
    elif original is not None and client_id == original["client_id"]:
        org = original["org"]
    if org in (None, ""):
        org = client.get("clientName")
    if cert_type != "PD_SSL":
        approved = store.query_one(
            "SELECT 1 FROM organizations WHERE client_id = ? AND name = ? "
            "AND verification_status = 'APPROVED'",
            (client_id, org),
        )
        if approved is None:
            raise bad_request(_organization_refused(store, client_id, org), "org")

    ou = _ou(store, client_id, body, csr if csr_given else None, original)

    # Names: subjectAltName overrides the CSR's SANs; the CN comes from the CSR. A reissue or
    # renewal without a new CSR keeps the names of the original certificate, which are not
    # those of its CSR when the original order gave subjectAltName.
    sans = _string_list(body.get("subjectAltName"), "subjectAltName")
    if sans is None:
        if csr_given and ca_mod.csr_dns_names(csr):
            sans = ca_mod.csr_dns_names(csr)
        elif original is not None:
            sans = [s["value"] for s in json.loads(original["san_json"])]
        else:
            sans = []
    common_name = ca_mod.csr_common_name(csr) if csr is not None else None
    if not common_name and original is not None:
        common_name = ca_mod.csr_common_name_from_name(
            x509.Name.from_rfc4514_string(original["dn"])
        )
    personal = cert_type in ("SMIME_ENT",) + CDS_TYPES  # named after a person, not a host
    cert_email = _text(body, "certEmail") if personal else None
    if cert_email is not None and not (cert_email.isascii() and _EMAIL.fullmatch(cert_email)):
        raise bad_request("certEmail must be an email address", "certEmail")
    if cert_email is not None and len(cert_email) > EMAIL_LIMIT:
        raise bad_request(f"certEmail must be at most {EMAIL_LIMIT} characters", "certEmail")
    if cert_email is None and personal and original is not None:
        # A reissue or renewal that names no address keeps the original's.
        kept = x509.Name.from_rfc4514_string(original["dn"])
        found = kept.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
        cert_email = str(found[0].value) if found else None
    if not common_name and personal:
        common_name = _text(body, "cn") or cert_email
    if not common_name:
        common_name = sans[0] if sans else None
    if not common_name:
        raise bad_request("The CSR must have a common name", "csr")
    if len(common_name) > COMMON_NAME_LIMIT:
        raise bad_request(
            f"The common name {common_name[:70]}... is longer than {COMMON_NAME_LIMIT} "
            "characters; give a shorter name first",
            "csr",
        )

    domain_used = None
    if cert_type in SSL_TYPES:
        names = list(dict.fromkeys([common_name.lower()] + [s.lower() for s in sans]))
        sans = names
        domains = _usable_domains(store, client_id)
        for name in names:
            if not is_host_name(name):
                raise bad_request(
                    f"{name} is not a DNS name (an internationalised name goes in its xn-- form)",
                    "csr" if csr is not None and name == names[0] else "subjectAltName",
                )
            if cert_type == "EV_SSL" and name.startswith("*."):
                # The CA/Browser Forum's EV guidelines allow no wildcard in an EV certificate.
                raise bad_request(
                    f"An EV_SSL certificate may not name a wildcard ({name})",
                    "csr" if csr is not None and name == names[0] else "subjectAltName",
                )
            match = _covering_domain(domains, name)
            if match is None:
                raise bad_request(
                    f"The domain of {name} is not approved for client {client_id}",
                    "subjectAltName",
                )
            if cert_type in EV_TYPES and not match["ev_eligible"]:
                raise bad_request(f"{match['domain_name']} is not EV eligible", "subjectAltName")
            domain_used = domain_used or match["domain_name"]
        if cert_type == "WILDCARD_SSL" and not common_name.startswith("*."):
            raise bad_request("A WILDCARD_SSL certificate needs a *. common name", "csr")
        if cert_type == "STANDARD_SSL":
            _check_standard_names(names)
    else:
        sans = [s for s in sans if "@" in s] if cert_type == "SMIME_ENT" else []
        if cert_type == "SMIME_ENT" and cert_email is not None and cert_email not in sans:
            sans.insert(0, cert_email)  # an S/MIME certificate names its mailbox in its SANs
        if not all(s.isascii() for s in sans):
            raise bad_request("An email address must be in ASCII", "subjectAltName")
    if cert_type == "SMIME_ENT" and body.get("upn") not in (None, ""):
        _check_upn(store, client_id, body["upn"])

    signing_alg = body.get("signingAlg") or (original["signing_alg"] if original else "SHA-2")
    if signing_alg not in ("SHA-1", "SHA-2"):
        raise bad_request("signingAlg must be SHA-1 or SHA-2", "signingAlg")
    # Every type but PRIVATE_SSL is signed with SHA-2 whatever is asked, and PRIVATE_SSL keeps
    # SHA-1 only where the account lets one choose; this account does not. So SHA-1 is accepted,
    # and signed and answered as SHA-2.
    signing_alg = "SHA-2"

    eku = None
    if cert_type in SSL_TYPES:
        eku = body.get("eku") or (original["eku"] if original else None) or "SERVER_AND_CLIENT_AUTH"
        if eku not in EKUS:
            raise bad_request(
                "eku must be SERVER_AUTH, CLIENT_AUTH or SERVER_AND_CLIENT_AUTH", "eku"
            )

    # The agreement applies to code signing only; on any other type it is ignored, whatever
    # it holds, as the live API ignores the fields that do not apply (cn, upn, certEmail).
    if cert_type in CODE_SIGNING_TYPES and not to_bool(
        body.get("endUserKeyStorageAgreement"), lenient, "endUserKeyStorageAgreement"
    ):
        raise bad_request(
            "endUserKeyStorageAgreement must be true for code signing certificates",
            "endUserKeyStorageAgreement",
        )
    if "ctLog" in body:
        to_bool(body.get("ctLog"), lenient, "ctLog")

    if original is not None and not renewal:
        expiry = parse_datetime(original["expires_after"])  # a reissue keeps the expiry
    else:
        expiry = _expiry(body, sandbox, now, cert_type)

    subject = [(NameOID.COMMON_NAME, common_name)]
    subject += [(NameOID.ORGANIZATIONAL_UNIT_NAME, name) for name in ou]
    address = client.get("address") or {}
    subject += [
        (NameOID.ORGANIZATION_NAME, org),
        (NameOID.LOCALITY_NAME, address.get("city")),
        (NameOID.STATE_OR_PROVINCE_NAME, address.get("stateOrProvince")),
        (NameOID.COUNTRY_NAME, address.get("country")),
    ]
    if cert_email is not None:  # the email attribute of an S/MIME or document signing DN
        subject.append((NameOID.EMAIL_ADDRESS, cert_email))
    subject = [(oid, value) for oid, value in subject if value]
    dn = x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]).rfc4514_string()

    account = account_fields(store)
    tracking = (
        clean_tracking(body["tracking"], account) if body.get("tracking") is not None else None
    )
    if tracking is None:
        tracking = json.loads(original["tracking_json"]) if original is not None else {}
    if original is None:  # a reissue or renewal keeps the original's values
        _check_mandatory(account, tracking)
    # No CSR (an S/MIME order): the key is made when the certificate is signed, a P-256 one.
    key_type, key_size = ca_mod.describe_key(public_key) if public_key else ("EC", 256)
    return Plan(
        cert_type=cert_type,
        client_id=client_id,
        public_key=public_key,
        csr_pem=ca_mod.csr_pem(csr) if csr is not None else None,
        subject=subject,
        dn=dn,
        sans=sans,
        org=org,
        ou=ou,
        eku=eku,
        signing_alg=signing_alg,
        expiry=expiry,
        key_type=key_type,
        key_size=key_size,
        tracking=tracking,
        domain_used=domain_used,
        now=now,
    )


def _check_duplicate_dn(sandbox, plan: Plan) -> None:
    window = sandbox.settings.duplicate_dn_window_seconds
    if not window:
        return
    # Times are whole seconds: a request made `window` seconds after the last one is through
    # (a client that waits out the window, as Ansible's tests wait 5 s, is not refused).
    since = fmt(plan.now - timedelta(seconds=window))
    dup = sandbox.store.query_one(
        "SELECT 1 FROM certificates WHERE dn = ? AND created_at > ? LIMIT 1", (plan.dn, since)
    )
    if dup:
        raise bad_request(
            f"Duplicate request: a certificate with the same DN was requested in the last "
            f"{window} seconds"
        )


def _row_values(plan: Plan, tracking_id: int, status: str, creator: str) -> dict:
    san_values = [{"type": "rfc822Name" if "@" in s else "dNSName", "value": s} for s in plan.sans]
    values = {
        "tracking_id": tracking_id,
        "status": status,
        "dn": plan.dn,
        "serial": "",
        "san_json": json.dumps(san_values),
        "san_text": ", ".join(plan.sans),
        "san_key": bar_key(plan.sans),
        "issue_dt": None,
        "expires_after": fmt(plan.expiry),
        "signing_alg": plan.signing_alg,
        "eku": plan.eku,
        "key_size": plan.key_size,
        "key_type": plan.key_type,
        "org": plan.org,
        "ou_json": json.dumps(plan.ou),
        "ou_key": bar_key(plan.ou),
        "cert_type": plan.cert_type,
        "domain_used": plan.domain_used,
        "client_id": plan.client_id,
        "csr_pem": plan.csr_pem,
        "creator_name": creator,
        "created_at": fmt(plan.now),
        "pickup_token": secrets.token_hex(16).upper(),
    }
    values.update(_tracking_columns(plan.tracking))
    return values


def _insert(conn, values: dict) -> int:
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    cur = conn.execute(
        f"INSERT INTO certificates ({names}) VALUES ({marks})",  # noqa: S608 - our column names
        list(values.values()),
    )
    return cur.lastrowid


def _sign(sandbox, conn, row_id: int, plan: Plan) -> dict:
    """Sign the certificate for a planned row, store it, and return the CertificateResponse."""
    pkcs12 = None
    public_key = plan.public_key
    if public_key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
    issued = sandbox.store.ca.sign(
        public_key,
        subject=plan.subject,
        sans=plan.sans,
        not_before=plan.now,
        not_after=plan.expiry,
        serial=x509.random_serial_number() >> 32,  # 16 bytes at most, as Entrust's serials
        eku=plan.eku,
        cert_type=plan.cert_type,
    )
    if plan.public_key is None:
        pkcs12 = p12.serialize_key_and_certificates(
            b"smime",
            key,
            ca_mod.load_cert(issued.pem),
            [sandbox.store.ca.intermediate],
            BestAvailableEncryption(plan.password.encode()),
        )
    conn.execute(
        "UPDATE certificates SET status = 'ACTIVE', serial = ?, cert_pem = ?, issue_dt = ?, "
        "expires_after = ? WHERE id = ?",
        (issued.serial, issued.pem, fmt(plan.now), fmt(plan.expiry), row_id),
    )
    row = conn.execute("SELECT * FROM certificates WHERE id = ?", (row_id,)).fetchone()
    response = certificate_response(sandbox.store, row, issued.pem)
    if pkcs12 is not None:
        response["pkcs12"] = base64.b64encode(pkcs12).decode()
    return response


def certificate_response(store, row, pem: str | None = None) -> dict:
    """CertificateResponse: trackingId, endEntityCert, chainCerts (leaf, intermediate), ..."""
    pem = pem or store.certificate_pem(row)[0]
    return {
        "trackingId": row["tracking_id"],
        "endEntityCert": pem,
        "chainCerts": [pem, store.ca.intermediate_pem],
        "serialNumber": row["serial"],
        "expiresAfter": row["expires_after"],
        "pickupUrl": pickup_url(row),
    }


def pickup_url(row) -> str:
    """The pickup URL shape Entrust uses."""
    return (
        f"https://www.entrust.net/ssl/certpickup.cfm?id={row['tracking_id']}-{row['pickup_token']}"
    )


# -- operations -----------------------------------------------------------------------------


def new_order(sandbox, body: dict, user) -> tuple[int, dict | None]:
    """POST /certificates: 201 issued, 202 queued for approval, 200 validate-only."""
    lenient = sandbox.settings.fidelity.accept_string_booleans
    cert_type = body.get("certType")
    if not cert_type:
        raise bad_request("certType is required", "certType")
    if not isinstance(cert_type, str):
        raise bad_request("certType must be a string", "certType")
    if cert_type not in CERT_TYPES:
        raise bad_request(f"Unknown certType {cert_type}", "certType")
    validate_only = to_bool(body.get("validateOnly"), lenient, "validateOnly")
    queue = to_bool(body.get("queueForApproval"), lenient, "queueForApproval")
    # Queueing for an administrator's approval is for the SSL and document signing types; the
    # others (code signing, S/MIME) are issued at once, the flag ignored like any field that
    # does not apply. An S/MIME order whose key the server makes could not be queued anyway:
    # its PKCS#12 is in the answer to the order, which an approval does not repeat.
    queue = queue and cert_type in QUEUEABLE_TYPES
    plan = make_plan(sandbox, body, cert_type)
    # The PKCS#12's password, when the server makes the key (make_plan checked it is text).
    plan.password = body["password"] if plan.public_key is None else ""
    with sandbox.store.tx() as conn:
        _pick_pool(conn, cert_type)
        if validate_only:
            return 200, None
        _check_duplicate_dn(sandbox, plan)
        tracking_id = sandbox.store.next_tracking_id()
        values = _row_values(plan, tracking_id, "PENDING", user["creator_name"])
        if queue:
            _insert(conn, values)
            return 202, {"trackingId": tracking_id}
        values["inventory_pool"] = _pick_pool(conn, cert_type)
        _consume(conn, values["inventory_pool"])
        row_id = _insert(conn, values)
        return 201, _sign(sandbox, conn, row_id, plan)


def _plan_from_row(sandbox, row) -> Plan:
    """Rebuild the plan of a queued order, to issue it on approval."""
    csr = ca_mod.load_csr(row["csr_pem"]) if row["csr_pem"] else None
    # A seeded order gets its CSR before approval (`_approve`); the cached key is a fallback.
    key = (
        csr.public_key()
        if csr
        else ca_mod.cached_key(row["key_type"], row["key_size"]).public_key()
    )
    return Plan(
        cert_type=row["cert_type"],
        public_key=key,
        subject=x509.Name.from_rfc4514_string(row["dn"]),
        sans=[s["value"] for s in json.loads(row["san_json"])],
        eku=row["eku"],
        expiry=parse_datetime(row["expires_after"]),
        now=sandbox.store.clock.now(),
        password="",
    )


def _check_status(row, allowed: tuple[str, ...], refusal) -> sqlite3.Row:
    """``row`` when its status is one of ``allowed``; else raise ``refusal(status)``, the error
    the endpoint answers for a certificate in the wrong status."""
    if row["status"] not in allowed:
        raise refusal(row["status"])
    return row


def _recheck(conn, row, allowed: tuple[str, ...], refusal) -> sqlite3.Row:
    """The certificate as it is now, read again inside the caller's write transaction, with its
    status checked again.

    A status read before the transaction may be stale: two requests at once (two approvals, an
    approval and a decline, two reissues) can both see it allowed. `Store.tx` holds the store's
    lock and a BEGIN IMMEDIATE, so only the first to get here still finds it allowed; the other
    gets the same error as a request that came after it, having changed nothing.
    """
    current = conn.execute("SELECT * FROM certificates WHERE id = ?", (row["id"],)).fetchone()
    return _check_status(current, allowed, refusal)


def _refuse_operation(operation: str):
    return lambda status: bad_request(
        f"Operation {operation} is not valid for a certificate in status {status}", "operation"
    )


PATCH_FROM = {
    "APPROVE": ("PENDING",),
    "DECLINE": ("PENDING",),
    "SUSPEND": ("READY", "ACTIVE"),
    "UNSUSPEND": ("SUSPENDED",),
}
REISSUE_FROM = ("ACTIVE", "READY")
RENEW_FROM = ("ACTIVE", "READY", "EXPIRED")
REVOKE_FROM = ("ACTIVE", "READY", "SUSPENDED")
DEACTIVATE_FROM = ("ACTIVE",)


def _refuse_reissue(status):
    return bad_request(f"A certificate in status {status} cannot be reissued")


def _refuse_renewal(status):
    return bad_request(f"A certificate in status {status} cannot be renewed")


def _refuse_revocation(_status):
    return bad_request("Certificate cannot be revoked")


def _refuse_deactivation(_status):
    return bad_request("Certificate cannot be deactivated")


def _check_domains_still_usable(store, row) -> None:
    """A queued SSL order is issued only for names its client may still use: a domain whose
    validation ran out (or was declined) while the order waited for approval is refused, and so
    is an EV order for a domain no longer EV eligible."""
    if row["cert_type"] not in SSL_TYPES:
        return
    domains = _usable_domains(store, row["client_id"])
    for san in json.loads(row["san_json"]):
        match = _covering_domain(domains, san["value"])
        if match is None:
            raise bad_request(
                f"The domain of {san['value']} is not approved for client {row['client_id']}",
                "subjectAltName",
            )
        if row["cert_type"] in EV_TYPES and not match["ev_eligible"]:
            raise bad_request(f"{match['domain_name']} is not EV eligible", "subjectAltName")


def _approve(sandbox, row, refusal) -> dict:
    """Issue a PENDING order; ``refusal`` answers when it is PENDING no longer."""
    with sandbox.store.tx() as conn:
        row = _recheck(conn, row, ("PENDING",), refusal)
        pool = _pick_pool(conn, row["cert_type"])
        _consume(conn, pool)
        conn.execute("UPDATE certificates SET inventory_pool = ? WHERE id = ?", (pool, row["id"]))
        if not row["csr_pem"]:
            # An order seeded without its CSR gets it now, so that the certificate issued for
            # it shows one, made with the key it is signed with.
            sandbox.store.order_csr(row)
            row = conn.execute("SELECT * FROM certificates WHERE id = ?", (row["id"],)).fetchone()
        plan = _plan_from_row(sandbox, row)
        if plan.expiry <= plan.now:
            plan.expiry = plan.now + timedelta(days=365)
        return _sign(sandbox, conn, row["id"], plan)


def _set_status(store, row, status: str, allowed=None, refusal=None, **extra) -> None:
    """Set the status (and ``extra`` columns); with ``allowed``, only from one of those
    statuses, checked inside the write (else ``refusal``)."""
    sets = ", ".join(["status = ?"] + [f"{k} = ?" for k in extra])
    with store.tx() as conn:
        if allowed is not None:
            _recheck(conn, row, allowed, refusal)
        conn.execute(
            f"UPDATE certificates SET {sets} WHERE id = ?",  # noqa: S608 - our column names
            (status, *extra.values(), row["id"]),
        )


def patch(sandbox, tracking_id: int, body: dict, user) -> tuple[int, dict | None]:
    """PATCH /certificates/{id}: APPROVE (201), DECLINE, SUSPEND, UNSUSPEND (200)."""
    row = certificate_row(sandbox.store, tracking_id)
    operation = str(body.get("operation") or "").upper()
    if operation not in PATCH_FROM:
        raise bad_request("operation must be APPROVE, DECLINE, SUSPEND or UNSUSPEND", "operation")
    if user["role"] != "administrator":
        raise ApiError(403, f"The API user is not allowed to {operation.lower()} certificates")
    allowed, refusal = PATCH_FROM[operation], _refuse_operation(operation)
    _check_status(row, allowed, refusal)
    if operation == "APPROVE":
        _check_domains_still_usable(sandbox.store, row)
        return 201, _approve(sandbox, row, refusal)
    if operation == "DECLINE":
        reason = _text(body, "declineReason")
        if reason is not None and len(reason) > 254:
            raise bad_request("declineReason must be at most 254 characters", "declineReason")
        _set_status(sandbox.store, row, "DECLINED", allowed, refusal, decline_reason=reason)
    elif operation == "SUSPEND":
        _set_status(sandbox.store, row, "SUSPENDED", allowed, refusal)
    else:
        _set_status(sandbox.store, row, "ACTIVE", allowed, refusal)
    return 200, None


def _successor(sandbox, row, body: dict, user, *, renewal: bool) -> dict:
    plan = make_plan(sandbox, body, row["cert_type"], original=row, renewal=renewal)
    plan.password = ""
    with sandbox.store.tx() as conn:
        if renewal:
            _recheck(conn, row, RENEW_FROM, _refuse_renewal)
        else:
            _recheck(conn, row, REISSUE_FROM, _refuse_reissue)
        pool = _pick_pool(conn, row["cert_type"])
        _consume(conn, pool)
        tracking_id = sandbox.store.next_tracking_id()
        values = _row_values(plan, tracking_id, "PENDING", user["creator_name"])
        values["inventory_pool"] = pool
        row_id = _insert(conn, values)
        response = _sign(sandbox, conn, row_id, plan)
        conn.execute(
            "UPDATE certificates SET status = ? WHERE id = ?",
            ("RENEWED" if renewal else "REISSUED", row["id"]),
        )
        return response


def reissue(sandbox, tracking_id: int, body: dict, user) -> dict:
    """POST reissues: new trackingId and serial, same expiry; the original becomes REISSUED."""
    row = certificate_row(sandbox.store, tracking_id)
    _check_status(row, REISSUE_FROM, _refuse_reissue)
    return _successor(sandbox, row, body, user, renewal=False)


def renew(sandbox, tracking_id: int, body: dict, user) -> tuple[int, dict | None]:
    """POST renewals: new trackingId; refused under 30 days old; the original becomes RENEWED."""
    row = certificate_row(sandbox.store, tracking_id)
    mode = sandbox.settings.fidelity.renew_validate_only
    lenient = sandbox.settings.fidelity.accept_string_booleans
    validate_only = False
    if body.get("validateOnly") is not None:  # null is no flag, as for every optional field
        if mode == "reject":
            raise bad_request("validateOnly is not supported on renewals", "validateOnly")
        validate_only = mode == "honour" and to_bool(body["validateOnly"], lenient, "validateOnly")
    _check_status(row, RENEW_FROM, _refuse_renewal)
    issued = parse_datetime(row["issue_dt"])
    if sandbox.store.clock.now() - issued < RENEW_MIN_AGE:
        raise bad_request("A certificate cannot be renewed until it is at least 30 days old")
    if validate_only:
        make_plan(sandbox, body, row["cert_type"], original=row, renewal=True)
        return 200, None
    return 201, _successor(sandbox, row, body, user, renewal=True)


def revoke(sandbox, tracking_id: int, body: dict) -> str:
    """POST revocations: REVOKED from ACTIVE, READY or SUSPENDED; crlReason policy applies.
    Returns the reason taken."""
    row = certificate_row(sandbox.store, tracking_id)
    # null is no reason given, as for every other optional field.
    reason = body.get("crlReason")
    reason = "unspecified" if reason is None else reason
    accepted = sandbox.settings.accepted_crl_reasons()
    if reason not in accepted:
        raise bad_request("crlReason must be one of " + ", ".join(accepted), "crlReason")
    comment = body.get("revocationComment")
    if comment is not None and not isinstance(comment, str):
        raise bad_request("revocationComment must be a string", "revocationComment")
    _check_status(row, REVOKE_FROM, _refuse_revocation)
    _set_status(sandbox.store, row, "REVOKED", REVOKE_FROM, _refuse_revocation)
    return reason


def deactivate(sandbox, tracking_id: int) -> None:
    """POST deactivations: DEACTIVATED from ACTIVE, with the tracking flags; frees a token."""
    row = certificate_row(sandbox.store, tracking_id)
    _check_status(row, DEACTIVATE_FROM, _refuse_deactivation)
    with sandbox.store.tx() as conn:
        row = _recheck(conn, row, DEACTIVATE_FROM, _refuse_deactivation)
        conn.execute(
            "UPDATE certificates SET status = 'DEACTIVATED', deactivated = 1, deactivated_on = ? "
            "WHERE id = ?",
            (fmt(sandbox.store.clock.now()), row["id"]),
        )
        _release(conn, row["inventory_pool"])


def replace_tracking(sandbox, tracking_id: int, body) -> None:
    """PUT tracking: overwrite all tracking data; an empty body erases it."""
    row = certificate_row(sandbox.store, tracking_id)
    tracking = clean_tracking(body or {}, account_fields(sandbox.store))
    columns = _tracking_columns(tracking)
    sets = ", ".join(f"{k} = ?" for k in columns)
    with sandbox.store.tx() as conn:
        conn.execute(
            f"UPDATE certificates SET {sets} WHERE id = ?",  # noqa: S608 - our column names
            (*columns.values(), row["id"]),
        )


def admin_set_status(sandbox, tracking_id: int, status: str) -> dict:
    """Control hook: set a status as Entrust staff would; PENDING to ACTIVE issues the cert."""
    row = certificate_row(sandbox.store, tracking_id)
    if row["status"] == "PENDING" and status == "ACTIVE":
        _approve(sandbox, row, _refuse_operation("APPROVE"))
    else:
        _set_status(sandbox.store, row, status)
    return {"trackingId": tracking_id, "status": status}


# -- domains --------------------------------------------------------------------------------


def domain_eligibility(status: str, now: datetime) -> dict:
    """ov/ev eligibility and expiry that go with a verification status."""
    if status in ("APPROVED", "RE_VERIFICATION"):
        return {"ov_eligible": 1, "ov_expiry": fmt(now + timedelta(days=397))}
    if status == "EXPIRING":
        return {"ov_eligible": 1, "ov_expiry": fmt(now + timedelta(days=60))}
    if status == "EXPIRED":
        return {"ov_eligible": 0, "ov_expiry": fmt(now - timedelta(days=1))}
    return {"ov_eligible": 0, "ov_expiry": None}


def insert_domain(conn, client_id: int, name: str, method: str, status: str, ev: bool, **at):
    """Insert a domain already through its validation (``status``), as seeded or as set up by
    Entrust's staff: the eligibility and expiries its status gives (EV only while OV is
    eligible), the validation value and the addresses it was checked with. ``at``: ``now``, and
    ``dcv_value`` (a random one when not given)."""
    now = at["now"]
    values = domain_eligibility(status, now)
    ev = bool(ev and values["ov_eligible"])
    conn.execute(
        "INSERT INTO domains (client_id, domain_name, verification_method, "
        "verification_status, ov_eligible, ev_eligible, ov_expiry, ev_expiry, dcv_value, "
        "dcv_ready_at, emails) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            client_id,
            name,
            method,
            status,
            values["ov_eligible"],
            int(ev),
            values["ov_expiry"],
            fmt(now + timedelta(days=200)) if ev else None,
            at.get("dcv_value") or secrets.token_hex(16).upper(),
            fmt(now),
            json.dumps([f"admin@{name}", f"hostmaster@{name}"]),
        ),
    )


def set_domain_status(store, name: str, status: str, client_id=None) -> int:
    """Control hook: set a domain's status (every client that has it, or one); return count."""
    values = domain_eligibility(status, store.clock.now())
    sql = (
        "UPDATE domains SET verification_status = ?, ov_eligible = ?, ov_expiry = ?, "
        "ev_eligible = CASE WHEN ? = 1 THEN ev_eligible ELSE 0 END WHERE domain_name = ?"
    )
    params = [
        status,
        values["ov_eligible"],
        values["ov_expiry"],
        values["ov_eligible"],
        name.lower(),
    ]
    if client_id is not None:
        sql += " AND client_id = ?"
        params.append(int(client_id))
    with store.tx() as conn:
        return conn.execute(sql, params).rowcount


VERIFICATION_METHODS = ("DNS", "EMAIL", "MANUAL", "WEB_SERVER")
EMAIL_PREFIXES = ("admin", "administrator", "webmaster", "hostmaster", "postmaster")


def _specified_email_refused(email: str, domain_name: str) -> str | None:
    """Why a specified validation address is refused, or None.

    Entrust takes one of the constructed addresses (admin@, administrator@, webmaster@,
    hostmaster@, postmaster@ the domain or a parent of it) or an address the domain's WHOIS
    record lists. The sandbox has no WHOIS to look in, so any other well-formed address is taken
    as a WHOIS contact (a registrant's mailbox is often on another domain). An address on a
    bare top-level domain (admin@com) is neither.
    """
    if not is_email(email):
        return "The email must be an email address"
    if "." not in email.partition("@")[2].strip("."):
        return (
            f"The email must be one of the constructed addresses of {domain_name} (or of a "
            "parent domain) or a WHOIS contact of it"
        )
    return None


def _domain_request(body: dict, domain_name: str) -> tuple[str, list[str]]:
    method = str(body.get("verificationMethod") or "").upper()
    if method not in VERIFICATION_METHODS:
        raise bad_request(
            "verificationMethod must be one of " + ", ".join(VERIFICATION_METHODS),
            "verificationMethod",
        )
    emails = [f"{prefix}@{domain_name}" for prefix in EMAIL_PREFIXES]
    email_method = body.get("emailMethod")
    if method == "EMAIL" and email_method is not None and not isinstance(email_method, dict):
        # The answer's form (a list of addresses) or a bare address is no request's form: taken
        # silently, the domain would go to addresses the caller never named.
        raise bad_request("emailMethod must be an object (emailSource and email)", "emailMethod")
    if method == "EMAIL" and isinstance(email_method, dict):
        source = email_method.get("emailSource")
        if source is None:  # absent or null: the default
            source = "INCLUDE_WHOIS"
        if source not in ("INCLUDE_WHOIS", "SPECIFIED"):
            raise bad_request("emailSource must be INCLUDE_WHOIS or SPECIFIED", "emailMethod")
        if source == "SPECIFIED":
            email = email_method.get("email")
            if email is not None and not isinstance(email, str):
                # One address, as text: a list written as text would be the "address".
                raise bad_request("email must be a string (one address)", "emailMethod.email")
            email = (email or "").strip().lower()
            refused = _specified_email_refused(email, domain_name)
            if refused:
                raise bad_request(refused, "emailMethod.email")
            emails = [email]
    return method, emails


def refuse_existing_domain(conn, client_id: int, name: str) -> None:
    """A 400 when the client has the domain ``name`` already (inside the adding transaction)."""
    exists = conn.execute(
        "SELECT 1 FROM domains WHERE client_id = ? AND domain_name = ?", (client_id, name)
    ).fetchone()
    if exists:
        raise bad_request("The domain already exists for this client", "domainName")


def add_domain(sandbox, client_id: int, body: dict) -> str:
    """POST /clients/{id}/domains: start validation (INITIAL_VERIFICATION); return Location."""
    store = sandbox.store
    if client_row(store, client_id) is None:
        raise not_found("Unknown clientId")
    name = (_text(body, "domainName") or "").strip().lower().rstrip(".")
    if not is_host_name(name) or name.startswith("*."):
        raise bad_request("domainName must be a domain name", "domainName")
    method, emails = _domain_request(body, name)
    now = store.clock.now()
    ready = fmt(now + timedelta(seconds=sandbox.settings.dcv_delay_seconds))
    with store.tx() as conn:
        refuse_existing_domain(conn, client_id, name)
        conn.execute(
            "INSERT INTO domains (client_id, domain_name, verification_method, "
            "verification_status, ov_eligible, ev_eligible, dcv_value, dcv_ready_at, emails) "
            "VALUES (?, ?, ?, 'INITIAL_VERIFICATION', 0, 0, ?, ?, ?)",
            (client_id, name, method, secrets.token_hex(16).upper(), ready, json.dumps(emails)),
        )
    return f"/clients/{client_id}/domains/{name}"


def path_domain(name: str) -> str:
    """The domain a path names, as stored: lower case, without blanks around it (Entrust's own
    Go client writes a space after the name, which arrives as a trailing %20)."""
    return name.strip().lower()


def reverify_domain(sandbox, client_id: int, name: str, body: dict) -> str:
    """PUT /clients/{id}/domains/{domain}: new challenge; APPROVED becomes RE_VERIFICATION."""
    store = sandbox.store
    row = store.query_one(
        "SELECT * FROM domains WHERE client_id = ? AND domain_name = ?",
        (client_id, path_domain(name)),
    )
    if row is None:
        raise not_found("Unknown clientId or domain")
    method, emails = _domain_request(body, row["domain_name"])
    status = row["verification_status"]
    if status in ("APPROVED", "EXPIRING", "RE_VERIFICATION"):
        status = "RE_VERIFICATION"
    else:
        status = "INITIAL_VERIFICATION"
    now = store.clock.now()
    ready = fmt(now + timedelta(seconds=sandbox.settings.dcv_delay_seconds))
    with store.tx() as conn:
        conn.execute(
            "UPDATE domains SET verification_method = ?, verification_status = ?, dcv_value = ?, "
            "dcv_ready_at = ?, emails = ? WHERE id = ?",
            (method, status, secrets.token_hex(16).upper(), ready, json.dumps(emails), row["id"]),
        )
    return f"/clients/{client_id}/domains/{row['domain_name']}"


ADDRESS_FIELDS = ("street1", "street2", "city", "stateOrProvince", "zipOrPostalCode", "country")
CONTACT_FIELDS = ("name", "position", "phone", "emailAddress")


def _text_fields(body: dict, key: str, names: tuple[str, ...]) -> dict:
    """The object ``body[key]`` with the fields the spec gives it (``names``), each text;
    others are dropped, as ECS ignores what it does not know, so they are never shown back."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be an object", key)
    out = {}
    for name in names:
        try:
            text = _text(value, name)
        except ApiError as exc:
            raise bad_request(f"{key}.{name} must be a string", f"{key}.{name}") from exc
        if text is not None:
            out[name] = text
    return out


def new_client_fields(body: dict) -> dict:
    """The fields of an AddClient request, checked: clientName (required), friendlyClientName
    (the name when not given), address and authContact with their own fields only."""
    name = body.get("clientName")
    if name is not None and not isinstance(name, str):
        raise bad_request("clientName must be a string", "clientName")
    if name is None or not name.strip():
        raise bad_request("clientName is required", "clientName")
    friendly = _text(body, "friendlyClientName")
    contact = _text_fields(body, "authContact", CONTACT_FIELDS)
    email = contact.get("emailAddress")
    if email is not None and not is_email(email):
        raise bad_request(
            "authContact.emailAddress must be an email address", "authContact.emailAddress"
        )
    return {
        "clientName": name.strip(),
        "friendlyClientName": (friendly or "").strip() or name.strip(),
        "address": _text_fields(body, "address", ADDRESS_FIELDS),
        "authContact": contact,
    }


# How long a client's vetting lasts once approved: (the expiry's key, days), by its status key.
VETTING = {
    "verificationStatus": ("ovExpiryDate", 300),
    "evVerificationStatus": ("evExpiryDate", 200),
}


def date_vetting(client: dict, statuses: dict, now: datetime) -> None:
    """Give ``client`` the expiry of each vetting ``statuses`` sets: one approved runs from
    ``now``, as a seeded client's does; any other status has none (BaseClient shows
    ovExpiryDate "only if APPROVED")."""
    for key, (expiry, days) in VETTING.items():
        if key not in statuses:
            continue
        if statuses[key] == "APPROVED":
            client[expiry] = fmt_millis(now + timedelta(days=days))
        else:
            client.pop(expiry, None)


def rename_own_organization(conn, client_id: int, old: str, new: str) -> None:
    """The client's own organization (named as the client) takes the client's new name, as an
    order without `org` is for the organization of the client's name. An organization of the
    client named so already stays as it is and is its own from now on."""
    if old == new:
        return
    taken = conn.execute(
        "SELECT 1 FROM organizations WHERE client_id = ? AND name = ?", (client_id, new)
    ).fetchone()
    if taken:
        conn.execute("DELETE FROM organizations WHERE client_id = ? AND name = ?", (client_id, old))
    else:
        conn.execute(
            "UPDATE organizations SET name = ? WHERE client_id = ? AND name = ?",
            (new, client_id, old),
        )


def vet_own_organization(conn, client_id: int, name: str, status: str) -> None:
    """The client's own organization (named ``name``, as the client) takes the client's vetting
    status; one taken away before is vetted anew."""
    updated = conn.execute(
        "UPDATE organizations SET verification_status = ? WHERE client_id = ? AND name = ?",
        (status, client_id, name),
    ).rowcount
    if not updated:
        conn.execute(
            "INSERT INTO organizations (client_id, name, verification_status) VALUES (?, ?, ?)",
            (client_id, name, status),
        )


def client_uri(client_id: int) -> str:
    """`uri` of a client."""
    return f"{API}/clients/{client_id}"
