"""Paged lists: the filter grammar `field=[op:]value`, `sort`, `fields`, and JSON shapes.

Each filterable field maps to a SQL expression, the operators ECS allows for it, and a value
kind. Only `?`-placeholders carry user input into SQL; expressions come from the tables below.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass

from .clock import fmt, fmt_millis, parse_datetime, written_date
from .errors import bad_request, in_range, parse_int

MAX_LIMIT = 1000
DEFAULT_LIMIT = 25
API = "/enterprise/v2"


@dataclass(frozen=True)
class Field:
    """How one query parameter filters: SQL expression, operators, kind of value."""

    sql: str
    ops: tuple[str, ...]
    # text | int | number | date | datetime | bool | serial | multi | san | upper | lower
    kind: str = "text"


_EQ_IN = ("eq", "in")
_TEXT = ("eq", "con", "in")
_RANGE = ("eq", "gt", "ge", "lt", "le")

CERT_FILTERS = {
    "trackingId": Field("tracking_id", _EQ_IN, "int"),
    "status": Field("status", _EQ_IN, "upper"),
    "dn": Field("dn", _TEXT),
    "serialNumber": Field("serial", _TEXT, "serial"),
    "subjectAltName": Field("san", _TEXT, "san"),
    "issueDateTime": Field("issue_dt", _RANGE, "datetime"),
    "expiresAfter": Field("expires_after", _RANGE, "datetime"),
    "signingAlg": Field("signing_alg", _TEXT),
    "eku": Field("eku", _EQ_IN, "upper"),
    "keySize": Field("key_size", _RANGE, "int"),
    "keyType": Field("key_type", _EQ_IN, "upper"),
    "org": Field("org", _TEXT),
    "ou": Field("ou_key", _TEXT, "multi"),
    "certType": Field("cert_type", _EQ_IN, "upper"),
    "tracking.trackingInfo": Field("tracking_info", _TEXT),
    "tracking.requesterName": Field("requester_name", _TEXT),
    "tracking.requesterEmail": Field("requester_email", _TEXT),
    "tracking.requesterPhone": Field("requester_phone", _TEXT),
    "tracking.additionalEmails": Field("emails_key", _TEXT, "multi"),
    "domainUsed": Field("domain_used", _TEXT),
    "isThirdParty": Field("is_third_party", ("eq",), "bool"),
}
CUSTOM_FIELD_NAMES = [f"text{i}" for i in range(1, 16)] + [
    f"{kind}{i}" for kind in ("number", "date", "email", "dropdown") for i in range(1, 6)
]
for _name in CUSTOM_FIELD_NAMES:
    # The spec gives numberN and dateN eq, gt, ge, lt and le; the notes give every custom
    # field eq, con and in. Both are taken.
    _kind = next((k for k in ("number", "date") if _name.startswith(k)), "text")
    CERT_FILTERS[f"tracking.customFields.{_name}"] = Field(
        f"json_extract(tracking_json, '$.customFields.{_name}')",
        _TEXT if _kind == "text" else _TEXT + _RANGE[1:],
        _kind,
    )

CERT_SORT = {
    "trackingId": "tracking_id",
    "status": "status",
    "dn": "dn",
    "serialNumber": "serial",
    "issueDateTime": "issue_dt",
    "expiresAfter": "expires_after",
    "signingAlg": "signing_alg",
    "eku": "eku",
    "keySize": "key_size",
    "keyType": "key_type",
    "org": "org",
    "certType": "cert_type",
    "domainUsed": "domain_used",
    "isThirdParty": "is_third_party",
    "tracking.trackingInfo": "tracking_info",
    "tracking.requesterName": "requester_name",
    "tracking.requesterEmail": "requester_email",
    "tracking.requesterPhone": "requester_phone",
    "tracking.additionalEmails": "emails_key",
    "subjectAltName": "san_text",
    "ou": "ou_key",
}
for _name in CUSTOM_FIELD_NAMES:  # a number field's value is a JSON number, so sorts as one
    CERT_SORT[f"tracking.customFields.{_name}"] = CERT_FILTERS[f"tracking.customFields.{_name}"].sql

DOMAIN_FILTERS = {
    "domainName": Field("domain_name", ("eq", "con"), "lower"),
    "verificationMethod": Field("verification_method", _EQ_IN, "upper"),
    "verificationStatus": Field("verification_status", _EQ_IN, "upper"),
    "ovEligible": Field("ov_eligible", ("eq",), "bool"),
    "evEligible": Field("ev_eligible", ("eq",), "bool"),
    "ovExpiry": Field("ov_expiry", _RANGE, "datetime"),
    "evExpiry": Field("ev_expiry", _RANGE, "datetime"),
    "clientId": Field("client_id", _EQ_IN, "int"),
}
DOMAIN_SORT = {
    "domainName": "domain_name",
    "verificationMethod": "verification_method",
    "verificationStatus": "verification_status",
    "ovEligible": "ov_eligible",
    "evEligible": "ev_eligible",
    "ovExpiry": "ov_expiry",
    "evExpiry": "ev_expiry",
    "clientId": "client_id",
}

AUDIT_FILTERS = {
    "activityDate": Field("activity_date", _RANGE, "datetime"),
    "activity": Field("activity", _TEXT),
    "userName": Field("user_name", _TEXT),
    "userRole": Field("user_role", _TEXT),
    "comments": Field("comments", _TEXT),
}
AUDIT_SORT = {
    "activityDate": "activity_date",
    "activity": "activity",
    "userName": "user_name",
    "userRole": "user_role",
    "comments": "comments",
}
AUDIT_FIELDS = tuple(AUDIT_SORT)  # every field, and the default `fields`

CERT_DEFAULT_FIELDS = ("trackingId", "dn", "serialNumber", "expiresAfter", "signingAlg", "eku")
CERT_DEFAULT_FIELDS += ("status",)
CERT_ALL_FIELDS = (
    "trackingId",
    "status",
    "dn",
    "serialNumber",
    "subjectAltName",
    "issueDateTime",
    "expiresAfter",
    "signingAlg",
    "eku",
    "keySize",
    "keyType",
    "org",
    "ou",
    "certType",
    "tracking",
    "domainUsed",
    "isThirdParty",
)
_OPS = ("eq", "in", "con", "gt", "ge", "lt", "le")
_SQL_OP = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def normalize_serial(value: str) -> str:
    """Upper-case hex without leading zeros (an all-zero serial stays "0")."""
    value = value.strip().upper()
    if value.startswith("0X"):
        value = value[2:]
    return value.lstrip("0") or "0"


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def custom_number(text: str) -> float | None:
    """A custom number field's value (a finite float), or None when ``text`` is not one: ASCII
    digits, a point and an exponent (Python's ``float()`` also reads ``1_000``, digits of
    other scripts and ``nan``)."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _convert(name: str, field: Field, value: str):
    value = value.strip()
    if field.kind == "int":
        try:
            return in_range(parse_int(value), name)
        except ValueError as exc:
            raise bad_request(f"Invalid value for {name}: {value}", name) from exc
    if field.kind == "number":
        number = custom_number(value)
        if number is None:
            raise bad_request(f"Invalid number for {name}: {value}", name)
        return number
    if field.kind == "date":  # a custom dateN field, held as YYYY-MM-DD
        try:
            return written_date(value).isoformat()
        except ValueError as exc:
            raise bad_request(f"Invalid date for {name}: {value}", name) from exc
    if field.kind == "datetime":
        try:
            return parse_datetime(value)
        except ValueError as exc:
            raise bad_request(f"Invalid date-time for {name}: {value}", name) from exc
    if field.kind == "bool":
        if value.lower() not in ("true", "false"):
            raise bad_request(f"Invalid boolean for {name}: {value}", name)
        return 1 if value.lower() == "true" else 0
    if field.kind == "serial":
        return normalize_serial(value)
    if field.kind == "upper":
        return value.upper()
    if field.kind == "lower":
        return value.lower()
    return value


def _clause(name: str, field: Field, op: str, raw: str) -> tuple[str, list]:
    values = [v for v in raw.split(",")] if op == "in" else [raw]
    if op == "con" and field.kind in ("number", "date", "serial"):
        # "contains" looks for the characters as given: a part of a serial keeps its zeros,
        # which only a whole serial drops.
        values = [raw.strip()]
    else:
        values = [_convert(name, field, v) for v in values]
    if field.kind == "san":
        if op == "eq":
            # "=" matches a singleton SAN list, or the whole list joined with ", ".
            return "san_text = ?", values
        if op == "con":
            return "san_text LIKE ? ESCAPE '\\'", [_like(values[0])]
        return "(" + " OR ".join(["san_key LIKE ? ESCAPE '\\'"] * len(values)) + ")", [
            _like(f"|{v}|") for v in values
        ]
    if field.kind == "multi":
        if op == "con":
            return f"{field.sql} LIKE ? ESCAPE '\\'", [_like(values[0])]
        return "(" + " OR ".join([f"{field.sql} LIKE ? ESCAPE '\\'"] * len(values)) + ")", [
            _like(f"|{v}|") for v in values
        ]
    if field.kind == "datetime":
        return _time_clause(field, op, values[0])
    if op == "in":
        return f"{field.sql} IN ({','.join('?' * len(values))})", values
    if op == "con":
        return f"{field.sql} LIKE ? ESCAPE '\\'", [_like(str(values[0]))]
    return f"{field.sql} {_SQL_OP[op]} ?", values


def _time_clause(field: Field, op: str, moment) -> tuple[str, list]:
    """Compare a time column, held in whole seconds, with a moment that may have a fraction.

    A moment between two whole seconds equals no stored time, and a stored time is at or after
    it (``ge``) only when after the second it falls in, or before it (``lt``) when at or before
    that second: ``2027-01-18T10:00:50.5Z`` is after a certificate expiring at 10:00:50."""
    second = fmt(moment)
    if moment.microsecond:
        if op == "eq":
            return "0", []
        op = {"ge": "gt", "lt": "le"}.get(op, op)
    return f"{field.sql} {_SQL_OP[op]} ?", [second]


def build_filters(args, fields: dict[str, Field]) -> tuple[list[str], list]:
    """Turn query parameters into SQL conditions; unknown parameters are ignored (leniency)."""
    where: list[str] = []
    params: list = []
    for name in args:
        field = fields.get(name)
        if field is None:
            continue
        for raw in args.getlist(name):
            op, value = "eq", raw
            head, sep, rest = raw.partition(":")
            if sep and head in _OPS and not (field.kind == "datetime" and head.isdigit()):
                op, value = head, rest
            if op not in field.ops:
                raise bad_request(f"Operator '{op}' is not supported for {name}", name)
            sql, values = _clause(name, field, op, value)
            where.append(sql)
            params.extend(values)
    return where, params


def parse_paging(args) -> tuple[int, int]:
    """Return (offset, limit) with ECS's defaults and bounds; 400 outside them."""
    try:
        offset = parse_int(args.get("offset", "0"))
    except ValueError as exc:
        raise bad_request("offset must be an integer", "offset") from exc
    try:
        limit = parse_int(args.get("limit", str(DEFAULT_LIMIT)))
    except ValueError as exc:
        raise bad_request("limit must be an integer", "limit") from exc
    if offset < 0:
        raise bad_request("offset must be 0 or more", "offset")
    in_range(offset, "offset")
    if limit < 1 or limit > MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}", "limit")
    return offset, limit


def parse_sort(
    raw: str | None, sortable: dict[str, str], default: str, ties_follow: bool = False
) -> tuple[str, str]:
    """Return (ORDER BY SQL, sort string for summary) from `field:asc|desc[,field:dir]`. Ties go
    by id, ascending, or in the first field's direction with ``ties_follow`` (a log sorted by
    time, newest first, lists what happened within one second newest first too)."""
    text = raw or default
    parts = []
    for item in text.split(","):
        name, _, direction = item.strip().partition(":")
        direction = (direction or "asc").lower()
        if name == "uri":
            raise bad_request("The uri field is not sortable", "sort")
        if name not in sortable or direction not in ("asc", "desc"):
            raise bad_request(f"Invalid sort: {item}", "sort")
        parts.append(f"{sortable[name]} {direction.upper()}")
    ties = parts[0].rpartition(" ")[2] if ties_follow else "ASC"
    return ", ".join(parts) + f", id {ties}", text


def summary(started: float, now, offset: int, limit: int, total: int, sort: str) -> dict:
    """The `summary` object of a paged list."""
    return {
        "timestamp": fmt_millis(now),
        "elapsed": int((time.perf_counter() - started) * 1000),
        "offset": offset,
        "limit": limit,
        "total": total,
        "sort": sort,
    }


def cert_uri(row) -> str:
    """`uri` of a certificate: by trackingId, or by thumbprint for third-party ones."""
    if row["is_third_party"]:
        return f"{API}/certificates/thumbprints/{row['thumbprint']}"
    return f"{API}/certificates/{row['tracking_id']}"


def tracking_json(row) -> dict:
    """TrackingData: the stored user data plus deactivated (and deactivatedOn when true)."""
    tracking = json.loads(row["tracking_json"] or "{}")
    tracking["deactivated"] = bool(row["deactivated"])
    if row["deactivated"] and row["deactivated_on"]:
        tracking["deactivatedOn"] = row["deactivated_on"]
    return tracking


def cert_base(row) -> dict:
    """All CertificateBase fields of a row, in spec order; absent values are left out."""
    values = {
        "trackingId": row["tracking_id"],
        "status": row["status"],
        "dn": row["dn"],
        "serialNumber": row["serial"],
        "subjectAltName": json.loads(row["san_json"]),
        "issueDateTime": row["issue_dt"],
        "expiresAfter": row["expires_after"],
        "signingAlg": row["signing_alg"],
        "eku": row["eku"],
        "keySize": row["key_size"],
        "keyType": row["key_type"],
        "org": row["org"],
        "ou": [] if row["ou_json"] == "[]" else json.loads(row["ou_json"]),
        "certType": row["cert_type"],
        "tracking": tracking_json(row),
        "domainUsed": row["domain_used"],
        "isThirdParty": bool(row["is_third_party"]),
    }
    return {k: v for k, v in values.items() if v is not None and v != ""}


def select_fields(
    raw: str | None, default=CERT_DEFAULT_FIELDS, every=CERT_ALL_FIELDS
) -> tuple[str, ...]:
    """The fields to show for a `fields` parameter (certificates unless told; unknown names are
    ignored; `*` is every field)."""
    if not raw:
        return default
    names = [n.strip() for n in raw.split(",")]
    if "*" in names:
        return every
    return tuple(n for n in every if n in names)


def audit_log_item(row, wanted: tuple[str, ...]) -> dict:
    """One AuditLog entry with the wanted fields."""
    return {name: row[AUDIT_SORT[name]] for name in wanted}


def cert_list_item(row, wanted: tuple[str, ...]) -> dict:
    """One list item: the wanted fields plus `uri`, which is always present."""
    base = cert_base(row)
    item = {k: base[k] for k in wanted if k in base}
    item["uri"] = cert_uri(row)
    return item


def domain_json(row, status_key: str, now_text: str, extended: bool = False) -> dict:
    """Domain (or DomainEx with the validation challenge once it is ready)."""
    item = {
        "domainName": row["domain_name"],
        "verificationMethod": row["verification_method"],
        status_key: row["verification_status"],
        "ovEligible": bool(row["ov_eligible"]),
        "evEligible": bool(row["ev_eligible"]),
        "clientId": row["client_id"],
    }
    if row["ov_expiry"]:
        item["ovExpiry"] = row["ov_expiry"]
    if row["ev_expiry"]:
        item["evExpiry"] = row["ev_expiry"]
    if not extended or not row["dcv_value"]:
        return item
    if row["dcv_ready_at"] and row["dcv_ready_at"] > now_text:
        return item
    method, value, name = row["verification_method"], row["dcv_value"], row["domain_name"]
    if method == "DNS":
        item["dnsMethod"] = {
            "recordDomain": f"_pki-validation.{name}",
            "recordType": "TXT",
            "recordValue": value,
        }
    elif method == "WEB_SERVER":
        item["webServerMethod"] = {
            "fileLocation": f"http://{name}/.well-known/pki-validation/{value[:12].lower()}.txt",
            "fileContents": value,
        }
    elif method == "EMAIL":
        item["emailMethod"] = json.loads(row["emails"] or "[]")
    return item
