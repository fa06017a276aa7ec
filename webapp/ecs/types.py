"""Typed results and request bodies of the ECS API, parsed leniently.

Parsing rules (ECS adds values over time, and the spec and the live service disagree in places):

- an unknown enum value (certificate status, cert type, domain status, ...) is kept as its string;
  known values become the ``StrEnum`` member, which still compares equal to the string;
- date-times are accepted with or without fractions, with ``Z`` or an offset, or as a bare date,
  and are returned as aware UTC datetimes; an unparseable date becomes None (``raw`` keeps it);
- ``chainCerts`` becomes a list of PEM strings, each ending in one newline;
- serial numbers are upper-case hex without leading zeros;
- every object keeps the JSON it came from in ``raw``.

A body of the wrong shape (not an object, a list that is not a list, a missing ``trackingId``)
raises ``ValueError``/``TypeError``; the client turns that into ``MalformedResponseError``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "CertificateStatus",
    "CertType",
    "Certificate",
    "Client",
    "CustomField",
    "CustomFields",
    "DnsMethod",
    "Domain",
    "DomainStatus",
    "DomainValidationStarted",
    "GeneralName",
    "NewCertificateRequest",
    "OrderOutcome",
    "OrderResult",
    "Organization",
    "OrganizationalUnit",
    "Product",
    "ReissueRequest",
    "RenewRequest",
    "RevocationReason",
    "Tracking",
    "VerificationMethod",
    "VerificationStatus",
    "WebServerMethod",
    "filter_value",
    "normalize_serial",
    "parse_datetime",
    "split_pem",
]


# --- enums -------------------------------------------------------------------------------------


class CertificateStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    EXPIRED = "EXPIRED"
    NA = "NA"
    PENDING = "PENDING"
    PENDING_QUORUM = "PENDING_QUORUM"
    READY = "READY"
    REISSUED = "REISSUED"
    REISSUING = "REISSUING"
    RENEWED = "RENEWED"
    RENEWING = "RENEWING"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    DEACTIVATED = "DEACTIVATED"
    UNKNOWN = "UNKNOWN"  # third-party certificates looked up by thumbprint


class CertType(enum.StrEnum):
    STANDARD_SSL = "STANDARD_SSL"
    ADVANTAGE_SSL = "ADVANTAGE_SSL"
    UC_SSL = "UC_SSL"
    EV_SSL = "EV_SSL"
    QWAC_SSL = "QWAC_SSL"
    PSD2_SSL = "PSD2_SSL"
    WILDCARD_SSL = "WILDCARD_SSL"
    PRIVATE_SSL = "PRIVATE_SSL"
    PD_SSL = "PD_SSL"
    CODE_SIGNING = "CODE_SIGNING"
    EV_CODE_SIGNING = "EV_CODE_SIGNING"
    CDS_INDIVIDUAL = "CDS_INDIVIDUAL"
    CDS_GROUP = "CDS_GROUP"
    CDS_ENT_LITE = "CDS_ENT_LITE"
    CDS_ENT_PRO = "CDS_ENT_PRO"
    SMIME_ENT = "SMIME_ENT"


class DomainStatus(enum.StrEnum):
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"
    INITIAL_VERIFICATION = "INITIAL_VERIFICATION"
    RE_VERIFICATION = "RE_VERIFICATION"
    EXPIRED = "EXPIRED"
    EXPIRING = "EXPIRING"


class VerificationStatus(enum.StrEnum):
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    PENDING = "PENDING"
    PENDING_FINAL_APPROVAL = "PENDING_FINAL_APPROVAL"
    DEACTIVATED = "DEACTIVATED"
    EXPIRED = "EXPIRED"


class VerificationMethod(enum.StrEnum):
    DNS = "DNS"
    EMAIL = "EMAIL"
    MANUAL = "MANUAL"
    WEB_SERVER = "WEB_SERVER"


class RevocationReason(enum.StrEnum):
    """``crlReason`` values; the live API accepts ``unspecified`` and ``keyCompromise``."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"


class OrderOutcome(enum.StrEnum):
    ISSUED = "issued"  # 201: the certificate exists
    PENDING = "pending"  # 202: queued for approval
    VALIDATED = "validated"  # 200 on validateOnly: nothing was created
    ACCEPTED = "accepted"  # 200 on APPROVE without a body: approved, fetch it to see the result


# --- leaf parsers ------------------------------------------------------------------------------


def _enum(cls: type[enum.StrEnum], value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    try:
        return cls(value)
    except ValueError:
        try:
            return cls(value.upper())  # "Pending" in a spec example
        except ValueError:
            return value


_FRACTION = re.compile(r"(\.\d+)")


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ECS date or date-time into an aware UTC datetime; None if absent or unparseable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        # Python 3.11 accepts up to 6 fraction digits; .NET sends 7.
        text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def normalize_serial(value: Any) -> str | None:
    """Upper-case hex without leading zeros, as ECS writes and searches serial numbers."""
    if value is None:
        return None
    if isinstance(value, int):
        return f"{value:X}"
    text = str(value).strip().replace(":", "").replace(" ", "").upper()
    if text.startswith("0X"):
        text = text[2:]
    return text.lstrip("0") or ("0" if text else text)


_PEM_LABEL = re.compile(r"[A-Z0-9 ]+")


def _pem_blocks(text: str) -> list[str]:
    """The BEGIN ... END blocks of ``text``, in one pass over its lines (linear in its length,
    however many unmatched BEGIN lines a reply holds)."""
    blocks, label, start = [], None, 0
    pos = 0
    for line in text.split("\n"):
        bare = line.rstrip("\r")
        at = bare.rfind("-----BEGIN ")
        if at >= 0 and bare.endswith("-----") and _PEM_LABEL.fullmatch(bare[at + 11 : -5]):
            label, start = bare[at + 11 : -5], pos + at
        elif label is not None and bare.startswith(f"-----END {label}-----"):
            blocks.append(text[start : pos + len(label) + 14])
            label = None
        pos += len(line) + 1
    return blocks


def split_pem(value: Any) -> list[str]:
    """A chain as a list of PEM strings, from a list of PEMs or one string holding several."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError("chain entries must be strings")
        blocks = _pem_blocks(item)
        if blocks:
            out.extend(b.strip() + "\n" for b in blocks)
        elif item.strip():
            out.append(item.strip() + "\n")
    return out


def _pem(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("PEM fields must be strings")
    return value.strip() + "\n"


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(value)  # "05559124" -> 5559124; junk raises ValueError


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise TypeError("expected a list of strings")
    return [str(v) for v in value]


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _list(data: Any, what: str) -> list[Any]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError(f"{what}: expected a JSON array, got {type(data).__name__}")
    return data


# --- result types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneralName:
    type: str
    value: str


@dataclass
class Tracking:
    """Tracking data: sent on orders (``to_json``) and returned on certificates."""

    tracking_info: str | None = None
    requester_name: str | None = None
    requester_email: str | None = None
    requester_phone: str | None = None
    additional_emails: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    deactivated: bool | None = None
    deactivated_on: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> Tracking:
        data = _obj(data, "tracking")
        custom = data.get("customFields") or {}
        return cls(
            tracking_info=_str(data.get("trackingInfo")),
            requester_name=_str(data.get("requesterName")),
            requester_email=_str(data.get("requesterEmail")),
            requester_phone=_str(data.get("requesterPhone")),
            additional_emails=_strings(data.get("additionalEmails")),
            custom_fields=dict(_obj(custom, "tracking.customFields")),
            deactivated=_bool(data.get("deactivated")),
            deactivated_on=parse_datetime(data.get("deactivatedOn")),
        )

    def to_json(self) -> dict[str, Any]:
        """The user-specifiable part, as ECS expects it (read-only flags are never sent)."""
        out: dict[str, Any] = {}
        for key, value in (
            ("trackingInfo", self.tracking_info),
            ("requesterName", self.requester_name),
            ("requesterEmail", self.requester_email),
            ("requesterPhone", self.requester_phone),
        ):
            if value is not None:
                out[key] = value
        if self.additional_emails:
            out["additionalEmails"] = list(self.additional_emails)
        if self.custom_fields:
            out["customFields"] = dict(self.custom_fields)
        return out


@dataclass
class Certificate:
    """A certificate or order: a list item (only the requested ``fields``) or the full detail."""

    tracking_id: int
    status: CertificateStatus | str | None = None
    dn: str | None = None
    serial_number: str | None = None
    subject_alt_names: list[GeneralName] = field(default_factory=list)
    issue_date_time: datetime | None = None
    expires_after: datetime | None = None
    signing_alg: str | None = None
    eku: str | None = None
    key_size: int | None = None
    key_type: str | None = None
    org: str | None = None
    ou: list[str] = field(default_factory=list)
    cert_type: CertType | str | None = None
    tracking: Tracking | None = None
    domain_used: str | None = None
    is_third_party: bool | None = None
    uri: str | None = None
    # detail only
    end_entity_cert: str | None = None
    chain_certs: list[str] = field(default_factory=list)
    csr: str | None = None
    creator_name: str | None = None
    decline_reason: str | None = None
    pickup_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dns_names(self) -> list[str]:
        return [g.value for g in self.subject_alt_names if g.type.lower() == "dnsname"]

    @property
    def thumbprint(self) -> str | None:
        """The SHA-1 thumbprint from a third-party certificate's ``uri``, if there is one."""
        if self.uri and "/thumbprints/" in self.uri:
            return self.uri.rsplit("/thumbprints/", 1)[1].strip("/") or None
        return None

    @classmethod
    def from_json(cls, data: Any) -> Certificate:
        data = _obj(data, "certificate")
        if "trackingId" not in data:
            raise ValueError("certificate without trackingId")
        sans = []
        for item in _list(data.get("subjectAltName"), "subjectAltName"):
            if isinstance(item, Mapping):
                sans.append(GeneralName(str(item.get("type") or ""), str(item.get("value") or "")))
            elif isinstance(item, str):  # the request form, tolerated
                sans.append(GeneralName("dNSName", item))
        tracking = data.get("tracking")
        return cls(
            tracking_id=_int(data["trackingId"]),
            status=_enum(CertificateStatus, data.get("status")),
            dn=_str(data.get("dn")),
            serial_number=normalize_serial(data.get("serialNumber")),
            subject_alt_names=sans,
            issue_date_time=parse_datetime(data.get("issueDateTime")),
            expires_after=parse_datetime(data.get("expiresAfter")),
            signing_alg=_str(data.get("signingAlg")),
            eku=_str(data.get("eku")),
            key_size=_int(data.get("keySize")),
            key_type=_str(data.get("keyType")),
            org=_str(data.get("org")),
            ou=_strings(data.get("ou")),
            cert_type=_enum(CertType, data.get("certType")),
            tracking=Tracking.from_json(tracking) if tracking is not None else None,
            domain_used=_str(data.get("domainUsed")),
            is_third_party=_bool(data.get("isThirdParty")),
            uri=_str(data.get("uri")),
            end_entity_cert=_pem(data.get("endEntityCert")),
            chain_certs=split_pem(data.get("chainCerts")),
            csr=_pem(data.get("csr")),
            creator_name=_str(data.get("creatorName")),
            decline_reason=_str(data.get("declineReason")),
            pickup_url=_str(data.get("pickupUrl")),
            raw=dict(data),
        )


@dataclass
class OrderResult:
    """What a new order, reissue, renewal or approval returned.

    ``outcome`` tells the cases apart: ISSUED (201, with the certificate), PENDING (202, queued
    for approval, only ``tracking_id``), VALIDATED (200 on ``validateOnly``: nothing was created,
    ``tracking_id`` is None), ACCEPTED (200 without a body on APPROVE).
    """

    outcome: OrderOutcome
    status_code: int
    tracking_id: int | None = None
    end_entity_cert: str | None = None
    chain_certs: list[str] = field(default_factory=list)
    serial_number: str | None = None
    expires_after: datetime | None = None
    pickup_url: str | None = None
    pkcs12: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def issued(self) -> bool:
        return self.outcome is OrderOutcome.ISSUED

    @property
    def pending(self) -> bool:
        return self.outcome is OrderOutcome.PENDING

    @property
    def validated_only(self) -> bool:
        return self.outcome is OrderOutcome.VALIDATED

    @classmethod
    def from_response(
        cls, status_code: int, data: Any, *, outcome: OrderOutcome | None = None
    ) -> OrderResult:
        if outcome is None:
            outcome = {201: OrderOutcome.ISSUED, 202: OrderOutcome.PENDING}.get(
                status_code, OrderOutcome.VALIDATED
            )
        if data is None:
            data = {}
        data = _obj(data, "order response")
        if outcome in (OrderOutcome.ISSUED, OrderOutcome.PENDING) and "trackingId" not in data:
            raise ValueError(f"HTTP {status_code} order response without trackingId")
        return cls(
            outcome=outcome,
            status_code=status_code,
            tracking_id=_int(data.get("trackingId")),
            end_entity_cert=_pem(data.get("endEntityCert")),
            chain_certs=split_pem(data.get("chainCerts")),
            serial_number=normalize_serial(data.get("serialNumber")),
            expires_after=parse_datetime(data.get("expiresAfter")),
            pickup_url=_str(data.get("pickupUrl")),
            pkcs12=_str(data.get("pkcs12")),
            raw=dict(data),
        )


@dataclass
class Organization:
    name: str
    verification_status: VerificationStatus | str | None = None
    client_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Organization:
        data = _obj(data, "organization")
        return cls(
            name=str(data["name"]),
            verification_status=_enum(VerificationStatus, data.get("verificationStatus")),
            client_id=_int(data.get("clientId")),
            raw=dict(data),
        )


@dataclass
class OrganizationalUnit(Organization):
    @classmethod
    def from_json(cls, data: Any) -> OrganizationalUnit:
        org = Organization.from_json(data)
        return cls(**{f.name: getattr(org, f.name) for f in dataclasses.fields(org)})


@dataclass
class Client:
    client_id: int
    client_name: str | None = None
    friendly_client_name: str | None = None
    verification_status: VerificationStatus | str | None = None
    ov_expiry_date: datetime | None = None
    ev_verification_status: VerificationStatus | str | None = None
    ev_expiry_date: datetime | None = None
    qv_verification_status: VerificationStatus | str | None = None
    qv_expiry_date: datetime | None = None
    uri: str | None = None
    # detail only
    address: dict[str, Any] = field(default_factory=dict)
    auth_contact: dict[str, Any] = field(default_factory=dict)
    organizations: list[Organization] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Client:
        data = _obj(data, "client")
        return cls(
            client_id=_int(data["clientId"]),
            client_name=_str(data.get("clientName")),
            friendly_client_name=_str(data.get("friendlyClientName")),
            verification_status=_enum(VerificationStatus, data.get("verificationStatus")),
            ov_expiry_date=parse_datetime(data.get("ovExpiryDate")),
            ev_verification_status=_enum(VerificationStatus, data.get("evVerificationStatus")),
            ev_expiry_date=parse_datetime(data.get("evExpiryDate")),
            qv_verification_status=_enum(VerificationStatus, data.get("qvVerificationStatus")),
            qv_expiry_date=parse_datetime(data.get("qvExpiryDate")),
            uri=_str(data.get("uri")),
            address=dict(_obj(data.get("address") or {}, "client.address")),
            auth_contact=dict(_obj(data.get("authContact") or {}, "client.authContact")),
            organizations=[
                Organization.from_json(o)
                for o in _list(data.get("organizations"), "client.organizations")
            ],
            raw=dict(data),
        )


@dataclass
class DnsMethod:
    record_domain: str | None = None
    record_type: str | None = None
    record_value: str | None = None


@dataclass
class WebServerMethod:
    file_location: str | None = None
    file_contents: str | None = None


@dataclass
class Domain:
    domain_name: str
    verification_method: VerificationMethod | str | None = None
    verification_status: DomainStatus | str | None = None
    ov_eligible: bool | None = None
    ev_eligible: bool | None = None
    ov_expiry: datetime | None = None
    ev_expiry: datetime | None = None
    client_id: int | None = None
    # detail only: the domain-control-validation challenge
    dns_method: DnsMethod | None = None
    email_method: list[str] = field(default_factory=list)
    web_server_method: WebServerMethod | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def usable(self) -> bool:
        """Whether certificates can be ordered for this domain now."""
        return self.verification_status in (
            DomainStatus.APPROVED,
            DomainStatus.RE_VERIFICATION,
            DomainStatus.EXPIRING,
        )

    @classmethod
    def from_json(cls, data: Any) -> Domain:
        data = _obj(data, "domain")
        method = data.get("verificationMethod")
        dns = data.get("dnsMethod")
        web = data.get("webServerMethod")
        email = data.get("emailMethod")
        if isinstance(email, Mapping):  # the request form, tolerated
            email = [email["email"]] if email.get("email") else []
        dns = _obj(dns, "dnsMethod") if dns is not None else None
        web = _obj(web, "webServerMethod") if web is not None else None
        return cls(
            domain_name=str(data["domainName"]),
            verification_method=_enum(VerificationMethod, method.upper() if method else None),
            # the spec calls it "status"; the live API and every client use "verificationStatus"
            verification_status=_enum(
                DomainStatus, data.get("verificationStatus", data.get("status"))
            ),
            ov_eligible=_bool(data.get("ovEligible")),
            ev_eligible=_bool(data.get("evEligible")),
            ov_expiry=parse_datetime(data.get("ovExpiry")),
            ev_expiry=parse_datetime(data.get("evExpiry")),
            client_id=_int(data.get("clientId")),
            dns_method=DnsMethod(
                _str(dns.get("recordDomain")),
                _str(dns.get("recordType")),
                _str(dns.get("recordValue")),
            )
            if dns is not None
            else None,
            email_method=_strings(email),
            web_server_method=WebServerMethod(
                _str(web.get("fileLocation")), _str(web.get("fileContents"))
            )
            if web is not None
            else None,
            raw=dict(data),
        )


@dataclass
class DomainValidationStarted:
    """What add/reverify returned (202, no body): where to look, and not before when."""

    client_id: int
    domain_name: str
    location: str | None = None
    check_after: datetime | None = None


@dataclass
class Product:
    """An inventory line: the product types the account can order, and how many are left."""

    product_type: CertType | str
    total_count: int | None = None
    remaining_count: int | None = None
    used_count: int | None = None
    consumption_type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def unlimited(self) -> bool:
        return self.consumption_type == "UNLIMITED"

    @classmethod
    def from_json(cls, data: Any) -> Product:
        data = _obj(data, "inventory item")
        return cls(
            product_type=_enum(CertType, data["productType"]),
            total_count=_int(data.get("totalCount")),
            remaining_count=_int(data.get("remainingCount")),
            used_count=_int(data.get("usedCount")),
            consumption_type=_str(data.get("consumptionType")),
            raw=dict(data),
        )


@dataclass
class CustomField:
    key: str  # text1..15, number1..5, date1..5, email1..5, dropdown1..5
    enabled: bool = False
    label: str | None = None
    mandatory: str | None = None  # EFORM | ADMIN_API | BOTH | NOT_MANDATORY
    order: int | None = None
    eform_visible: bool | None = None
    multiline: bool | None = None
    options: list[str] = field(default_factory=list)  # dropdowns

    @property
    def kind(self) -> str:
        return self.key.rstrip("0123456789")

    @property
    def required_by_api(self) -> bool:
        return self.mandatory in ("ADMIN_API", "BOTH")


@dataclass
class CustomFields:
    """The account's custom tracking fields; ``available`` is False when ECS says "Not enabled"."""

    fields: dict[str, CustomField] = field(default_factory=dict)
    available: bool = True
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def enabled_fields(self) -> list[CustomField]:
        return sorted(
            (f for f in self.fields.values() if f.enabled),
            key=lambda f: (f.order if f.order is not None else 1 << 30, f.key),
        )

    @classmethod
    def from_json(cls, data: Any) -> CustomFields:
        data = _obj(data, "customFields")
        out: dict[str, CustomField] = {}
        for key, value in data.items():
            if not isinstance(value, Mapping):
                continue
            options = value.get("options")
            if isinstance(options, str):
                options = [o.strip() for o in options.split(",") if o.strip()]
            out[key] = CustomField(
                key=key,
                enabled=bool(_bool(value.get("enabled"))),
                label=_str(value.get("label")),
                mandatory=_str(value.get("mandatory")),
                order=_int(value.get("order")),
                eform_visible=_bool(value.get("eformVisible")),
                multiline=_bool(value.get("multiline")),
                options=_strings(options),
            )
        return cls(fields=out, available=True, raw=dict(data))


# --- request bodies ----------------------------------------------------------------------------


def _date_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass
class ReissueRequest:
    """Body of a reissue. Without ``csr`` ECS reuses the original key."""

    csr: str | None = None
    subject_alt_names: list[str] | None = None
    signing_alg: str | None = None
    eku: str | None = None
    ct_log: bool | None = None
    cn: str | None = None
    cert_email: str | None = None
    upn: str | None = None
    client_id: int | None = None
    org: str | None = None
    ou: list[str] | None = None
    password: str | None = None
    tracking: Tracking | dict[str, Any] | None = None
    end_user_key_storage_agreement: bool | None = None

    _json_names = {"subject_alt_names": "subjectAltName"}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            name = self._json_names.get(f.name) or _camel(f.name)
            if isinstance(value, Tracking):
                value = value.to_json()
            elif f.name == "cert_expiry_date":
                value = _date_value(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[name] = value
        return out


@dataclass
class RenewRequest(ReissueRequest):
    """Body of a renewal (no ``validateOnly``: the live API refuses it on renewals)."""

    cert_expiry_date: date | datetime | str | None = None
    cert_lifetime: str | None = None  # P1Y | P2Y | P3Y


@dataclass
class NewCertificateRequest(RenewRequest):
    """Body of a new order. ``cert_type`` is required; put CertDesk's request id in tracking."""

    cert_type: CertType | str | None = None
    validate_only: bool | None = None
    queue_for_approval: bool | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.cert_type:
            raise ValueError("cert_type is required for a new certificate order")
        return super().to_json()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def filter_value(value: Any) -> str:
    """One query filter value in the ECS grammar.

    A string is sent as written (so ``"in:A,B"`` or ``"ge:2026-01-01T00:00:00Z"`` work); a list,
    tuple or set becomes ``in:a,b``; booleans become ``true``/``false``; datetimes RFC 3339 UTC.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return _date_value(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return "in:" + ",".join(filter_value(v) for v in items)
    return str(value)
