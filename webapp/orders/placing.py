"""Order Certificate: the form's choices and checks, placing an order exactly once, and settling
an order whose answer was lost.

Never twice: before the create call, an intent row with a fresh request id is committed; the id
travels with the order (Entrust keeps it in ``tracking.trackingInfo``). The call is sent once. A
definite refusal removes the intent (nothing was ordered); an answer that was lost (timeout, reset,
5xx, a crash between the call and the commit) leaves the order "unknown" until the reconciler has
searched the CA for the request id: found, it is linked; still not found once the call's deadline
has passed, it is "not placed", and only then may the user place it again, with a new request id.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, or_, select, update

from webapp import pki
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import (
    CaError,
    CaOrder,
    CustomField,
    NotAllowed,
    OrderRequest,
    Phase,
    Refused,
    Requester,
    Unavailable,
)
from webapp.catalog import service as catalog
from webapp.credentials import service as credentials
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.orders import records
from webapp.orders.models import INTENT, NOT_PLACED, PLACED, UNKNOWN, Order, unsettled
from webapp.security import rbac
from webapp.validation import InputError

log = logging.getLogger(__name__)

CA = "entrust"
REQUEST_PREFIX = "certdesk:"
CSR_SOURCES = ("certdesk", "paste", "upload")
MAX_ADDITIONAL_EMAILS = 20
_EMAIL = re.compile(r"^[^@\s,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_PHONE = re.compile(r"^[0-9+()./ x-]{3,40}$")
CUSTOM_TTL_SECONDS = 300.0


class OrderInputError(InputError):
    """Input CertDesk refuses before asking the CA; nothing is stored."""


class OrderRefused(InputError):
    """The CA refused the order, or could not be reached and nothing was ordered. ``errors``
    maps the order form's fields to the CA's messages ("form" for the whole order)."""

    def __init__(self, message: str, errors: dict[str, str]):
        super().__init__(message, next(iter(errors), "form"))
        self.errors = dict(errors)

    def as_errors(self) -> dict[str, str]:
        return dict(self.errors)


@dataclass
class OrderForm:
    """What the Order Certificate form sends (secrets only in memory, never stored)."""

    credential_id: int | None = None
    organization: str = ""  # "<client id>:<organization name>"
    product: str = ""
    domain: str = ""
    eku: str = ""
    csr_source: str = "certdesk"
    csr_id: int | None = None
    csr_text: str = ""
    csr_file: bytes | None = None
    key_text: str = ""
    key_file: bytes | None = None
    key_password: str = ""
    sans: str = ""
    signature_algorithm: str = ""
    expires_on: str = ""
    friendly_name: str = ""
    requester_name: str = ""
    requester_email: str = ""
    requester_phone: str = ""
    additional_emails: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    queue_for_approval: bool = False
    ct_log: bool = True


@dataclass
class Prepared:
    """An order that passed CertDesk's checks, ready to send."""

    credential_id: int
    request: OrderRequest  # request_id is set when the intent is made
    names: list[str]
    friendly_name: str
    csr_info: pki.CsrInfo
    csr_id: int | None  # a CSR made in (or imported into) CertDesk
    key: object | None  # a private key given with a pasted or uploaded CSR


@dataclass
class Validation:
    ok: bool
    message: str
    names: list[str]
    errors: dict[str, str] = field(default_factory=dict)  # the CA's, by form field


# --- the form's choices -------------------------------------------------------------------------


@dataclass
class Choices:
    credentials: list
    credential: object | None
    organizations: list[tuple[str, str]]  # (value, label)
    products: list[tuple[str, int]]  # (product, longest validity in days)
    domains: list[str]
    ekus: tuple
    signature_algorithms: tuple
    custom_fields: list[CustomField]
    custom_error: str
    csrs: list
    problems: list[str]


def _org_value(client_id: int, name: str) -> str:
    return f"{client_id}:{name}"


_custom_cache: dict[tuple, tuple[float, list[CustomField]]] = {}
_cache_lock = threading.Lock()


def custom_fields(cred) -> tuple[list[CustomField], str]:
    """The account's custom fields (read from the CA, kept a few minutes), and a problem in
    words when they could not be read."""
    key = (cred.id, cred.created_at, cred.updated_at)
    with _cache_lock:
        hit = _custom_cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], ""
    try:
        with registry.open_connector(CA, cred.id) as conn:
            fields = conn.custom_fields()
    except CaError as exc:
        return [], f"The account's custom fields could not be read: {exc}"
    with _cache_lock:
        _custom_cache[key] = (time.monotonic() + CUSTOM_TTL_SECONDS, fields)
    return fields, ""


def clear_cache() -> None:
    with _cache_lock:
        _custom_cache.clear()


def choices(credential_id: int | None, *, with_custom: bool = True) -> Choices:
    """What the order form offers for a credential: its approved organizations, the products
    with inventory left that CertDesk can order, its usable domains, the account's custom
    fields, and the CSRs made in CertDesk."""
    usable = credentials.usable_credentials()
    cred = next((c for c in usable if c.id == credential_id), None)
    if cred is None and len(usable) == 1:
        cred = usable[0]
    caps = registry.capabilities(CA)
    problems: list[str] = []
    orgs, products, domains, fields, custom_error = [], [], [], [], ""
    if cred is not None:
        orgs = [
            (_org_value(o.client_id, o.name), f"{o.name} ({o.client_name or o.client_id})")
            for o in catalog.approved_organizations(cred.id)
        ]
        available = set(catalog.orderable_products(cred.id))
        products = [(p, days) for p, days in caps.products.items() if p in available]
        domains = [d.name for d in catalog.usable_domains(cred.id)]
        if not orgs:
            problems.append(f"{cred.name} has no approved organization in CertDesk.")
        if not products:
            problems.append(f"{cred.name} has no SSL product with inventory left in CertDesk.")
        if not domains:
            problems.append(f"{cred.name} has no usable (approved) domain in CertDesk.")
        if problems:
            problems.append("Sync the credential in SSL › Entrust › Manage if Entrust has them.")
        if with_custom:
            fields, custom_error = custom_fields(cred)
    return Choices(
        credentials=usable,
        credential=cred,
        organizations=orgs,
        products=products,
        domains=sorted(set(domains)),
        ekus=caps.ekus,
        signature_algorithms=caps.signature_algorithms,
        custom_fields=fields,
        custom_error=custom_error,
        csrs=csrs.recent(100),
        problems=problems,
    )


# --- CertDesk's checks --------------------------------------------------------------------------


def _covering(name: str, domains: list[str]) -> str | None:
    bare = name[2:] if name.startswith("*.") else name
    best = None
    for d in domains:
        if (bare == d or bare.endswith("." + d)) and (best is None or len(d) > len(best)):
            best = d
    return best


def _csr(form: OrderForm) -> tuple[pki.CsrInfo, int | None, object | None]:
    """The CSR (and the key given with it): (info, CertDesk's CSR id, private key)."""
    if form.csr_source not in CSR_SOURCES:
        raise OrderInputError("Choose where the CSR comes from.", "csr_source")
    if form.csr_source == "certdesk":
        row = csrs.get_csr(form.csr_id) if form.csr_id else None
        if row is None:
            raise OrderInputError("Choose one of the CSRs made in CertDesk.", "csr_id")
        return pki.parse_csr(row.pem, "csr_id"), row.id, None
    if form.csr_source == "paste":
        if not form.csr_text.strip():
            raise OrderInputError("Paste the CSR (PEM).", "csr")
        info = pki.parse_csr(form.csr_text, "csr")
        key_data = form.key_text if form.key_text.strip() else None
    else:
        if not form.csr_file:
            raise OrderInputError("Choose the CSR file to upload.", "csr_file")
        info = pki.parse_csr(form.csr_file, "csr_file")
        key_data = form.key_file
    key = None
    if key_data:
        key = pki.load_private_key(key_data, form.key_password or None, "key")
        if not pki.key_matches(key, info.csr.public_key()):
            raise OrderInputError(
                "This private key does not belong to the CSR: their public keys differ.", "key"
            )
    elif form.key_password:
        raise OrderInputError("A password was given without a private key.", "key_password")
    return info, None, key


def _names(form: OrderForm, info: pki.CsrInfo) -> list[str]:
    """The certificate's DNS names: the SANs typed (or the CSR's), with the CSR's CN first."""
    if form.sans.strip():
        sans, problems = pki.parse_san_text(form.sans)
        if problems:
            raise OrderInputError(" ".join(problems), "sans")
        if sans.ip or sans.email:
            raise OrderInputError(
                "Entrust SSL certificates carry DNS names only; remove "
                + ", ".join(sans.ip + sans.email)
                + ".",
                "sans",
            )
        names = list(sans.dns)
    else:
        names = list(info.sans.dns)
    cn = info.common_name.strip().lower()
    if cn:
        try:
            cn = pki.check_dns_name(cn)
        except pki.PkiError as exc:
            raise OrderInputError(
                f"The CSR's common name is not a host name: {exc}", "csr_source"
            ) from None
        names = [cn] + [n for n in names if n != cn]
    if not names:
        raise OrderInputError("The CSR names no host; enter the SANs.", "sans")
    if len(names) > 250:
        raise OrderInputError("At most 250 names in one certificate.", "sans")
    return names


def _expiry(form: OrderForm, max_days: int, today: date) -> date | None:
    text = form.expires_on.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise OrderInputError("Enter the expiration date as YYYY-MM-DD.", "expires_on") from None
    latest = today + timedelta(days=max_days)
    if day <= today:
        raise OrderInputError("The expiration date must be after today.", "expires_on")
    if day > latest:
        raise OrderInputError(
            f"{form.product} certificates may last at most {max_days} days: choose "
            f"{latest.isoformat()} or earlier.",
            "expires_on",
        )
    return day


def _requester(form: OrderForm) -> Requester:
    name = form.requester_name.strip()
    email = form.requester_email.strip()
    phone = form.requester_phone.strip()
    if len(name) > 255:
        raise OrderInputError("At most 255 characters.", "requester_name")
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        raise OrderInputError("Enter an e-mail address such as ann@example.com.", "requester_email")
    if phone and not _PHONE.match(phone):
        raise OrderInputError(
            "Enter a phone number (digits, spaces, + - ( ) . x; at most 40).", "requester_phone"
        )
    extra = [e for e in re.split(r"[\s,;]+", form.additional_emails or "") if e]
    if len(extra) > MAX_ADDITIONAL_EMAILS:
        raise OrderInputError(
            f"At most {MAX_ADDITIONAL_EMAILS} additional e-mail addresses.", "additional_emails"
        )
    bad = [e for e in extra if len(e) > 254 or not _EMAIL.match(e)]
    if bad:
        raise OrderInputError(
            "Not an e-mail address: " + ", ".join(bad[:3]) + ".", "additional_emails"
        )
    return Requester(name, email, phone, list(dict.fromkeys(extra)))


def _custom(form: OrderForm, fields: list[CustomField]) -> dict[str, str]:
    out = {}
    for f in fields:
        value = (form.custom.get(f.key) or "").strip()
        name = f"custom_{f.key}"
        if len(value) > 500:
            raise OrderInputError("At most 500 characters.", name)
        if not value:
            if f.required:
                raise OrderInputError(f"{f.label} is required by the account.", name)
            continue
        if f.kind == "dropdown" and f.options and value not in f.options:
            raise OrderInputError(f"Choose one of the offered values for {f.label}.", name)
        if f.kind == "number":
            try:
                float(value)
            except ValueError:
                raise OrderInputError(f"{f.label} must be a number.", name) from None
        if f.kind == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                raise OrderInputError(f"{f.label}: enter a date as YYYY-MM-DD.", name) from None
        if f.kind == "email" and not _EMAIL.match(value):
            raise OrderInputError(f"{f.label} must be an e-mail address.", name)
        out[f.key] = value
    return out


def prepare(actor, form: OrderForm, today: date | None = None) -> Prepared:
    """CertDesk's checks of an order, before anything is sent: the credential, an approved
    organization, a product with inventory, a readable CSR (and a key that belongs to it), names
    that all fall under the credential's usable domains, an expiration date the product allows,
    the requester, and the account's required custom fields. Raises OrderInputError (with the
    form field); nothing is stored."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    cred = credentials.get(form.credential_id) if form.credential_id else None
    if cred is None:
        raise OrderInputError("Choose the credential to order with.", "credential_id")
    if not cred.enabled:
        raise OrderInputError(f"{cred.name} is disabled; enable it first.", "credential_id")
    caps = registry.capabilities(CA)
    orgs = {_org_value(o.client_id, o.name): o for o in catalog.approved_organizations(cred.id)}
    org = orgs.get(form.organization)
    if org is None:
        raise OrderInputError(
            "Choose one of the credential's approved organizations."
            if orgs
            else f"{cred.name} has no approved organization in CertDesk; sync it first.",
            "organization",
        )
    max_days = caps.max_validity_days(form.product)
    if max_days is None:
        raise OrderInputError("Choose one of the offered products.", "product")
    if form.product not in catalog.orderable_products(cred.id):
        raise OrderInputError(
            f"{cred.name} has no {form.product} inventory left (as last synced).", "product"
        )
    ekus = [code for code, _ in caps.ekus]
    if form.eku and form.eku not in ekus:
        raise OrderInputError("Choose one of the offered extended key usages.", "eku")
    algs = [code for code, _ in caps.signature_algorithms]
    if form.signature_algorithm and form.signature_algorithm not in algs:
        raise OrderInputError(
            "Choose one of the offered signature algorithms.", "signature_algorithm"
        )
    if len(form.friendly_name) > 255:
        raise OrderInputError("At most 255 characters.", "friendly_name")

    info, csr_id, key = _csr(form)
    names = _names(form, info)
    domains = [d.name for d in catalog.usable_domains(cred.id, org.client_id)]
    if form.domain:
        if form.domain not in domains:
            raise OrderInputError("Choose one of the credential's usable domains.", "domain")
        outside = [n for n in names if _covering(n, [form.domain]) is None]
        if outside:
            raise OrderInputError(
                f"Not under {form.domain}: {', '.join(outside[:5])}. Choose another domain, or "
                "any usable domain.",
                "sans",
            )
    uncovered = [n for n in names if _covering(n, domains) is None]
    if uncovered:
        raise OrderInputError(
            f"Not under a domain {org.client_name or 'this client'} may use: "
            f"{', '.join(uncovered[:5])}. Entrust issues only for approved domains (see "
            "SSL › Entrust › Manage › Domains).",
            "sans",
        )
    expires_on = _expiry(form, max_days, today or utcnow().date())
    requester = _requester(form)
    fields, _problem = custom_fields(cred)
    custom = _custom(form, fields)
    request = OrderRequest(
        request_id="",
        product=form.product,
        csr_pem=info.pem,
        sans=names,
        organization=org.name,
        client_id=org.client_id,
        eku=form.eku or None,
        signature_algorithm=form.signature_algorithm or None,
        expires_on=expires_on,
        ct_log=bool(form.ct_log),
        requester=requester,
        custom_fields=custom,
        queue_for_approval=bool(form.queue_for_approval),
    )
    return Prepared(
        credential_id=cred.id,
        request=request,
        names=names,
        friendly_name=form.friendly_name.strip(),
        csr_info=info,
        csr_id=csr_id,
        key=key,
    )


def _refusal(exc: CaError) -> OrderRefused:
    if isinstance(exc, Refused) and exc.fields:
        return OrderRefused(str(exc), exc.fields)
    return OrderRefused(str(exc), {"form": str(exc)})


# --- Validate -----------------------------------------------------------------------------------


def validate(actor, form: OrderForm) -> Validation:
    """Validate: CertDesk's checks, then the CA checks the order without placing it (nothing is
    spent). Audited. Raises OrderInputError; a refusal by the CA is returned, not raised."""
    prepared = prepare(actor, form)
    req = prepared.request
    req.request_id = REQUEST_PREFIX + "validate-" + uuid.uuid4().hex
    req.validate_only = True
    try:
        with registry.open_connector(CA, prepared.credential_id) as conn:
            conn.place(req)
    except CaError as exc:
        outcome, message = "failure", str(exc)
        result = Validation(False, message, prepared.names, _refusal(exc).errors)
    else:
        outcome = "success"
        message = (
            f"Entrust would accept this order for {', '.join(prepared.names[:5])}"
            f"{' and more' if len(prepared.names) > 5 else ''}. Nothing was ordered."
        )
        result = Validation(True, message, prepared.names)
    audit.record(
        "order.validate",
        actor=actor,
        object_type="credential",
        object_id=prepared.credential_id,
        outcome=outcome,
        detail={"product": req.product, "names": prepared.names[:20], "result": message[:500]},
    )
    db.session.commit()
    return result


# --- placing ------------------------------------------------------------------------------------


def _request_json(req: OrderRequest) -> str:
    """The request as sent, for the order page and for placing it again (no secret in it)."""
    data = asdict(req)
    data["expires_on"] = req.expires_on.isoformat() if req.expires_on else None
    data.pop("validate_only", None)
    return json.dumps(data, sort_keys=True)


def _request_from(text: str, request_id: str) -> OrderRequest:
    data = json.loads(text)
    data["request_id"] = request_id
    data["requester"] = Requester(**data.get("requester") or {})
    if data.get("expires_on"):
        data["expires_on"] = date.fromisoformat(data["expires_on"])
    return OrderRequest(**data)


def _new_request_id() -> str:
    return REQUEST_PREFIX + str(uuid.uuid4())


def place(actor, form: OrderForm) -> Order:
    """Order Certificate. CertDesk's checks (OrderInputError, nothing stored), then the order is
    placed exactly once (see the module docstring). Returns the order: issued (its certificate is
    in the repository, linked to the order, CSR and key), pending (queued for approval), or
    unknown (the answer was lost: being settled). Raises OrderRefused when the CA said no or could
    not be reached and nothing was ordered; then nothing but the audit event is kept."""
    prepared = prepare(actor, form)
    key_row, key_created = None, False
    if prepared.key is not None:
        existing = keys.by_public_id(prepared.csr_info.public_key_id)
        key_row = keys.store(prepared.key, actor, "imported")
        key_created = existing is None
    return _submit(
        actor,
        prepared.credential_id,
        prepared.request,
        csr_id=prepared.csr_id,
        key_row=key_row,
        key_created=key_created,
        friendly_name=prepared.friendly_name,
    )


def _submit(
    actor,
    credential_id: int,
    req: OrderRequest,
    *,
    csr_id: int | None,
    key_row=None,
    key_created: bool = False,
    private_key_id: int | None = None,
    friendly_name: str = "",
    again_of: int | None = None,
) -> Order:
    now = utcnow()
    try:
        conn = registry.open_connector(CA, credential_id)
    except Unavailable as exc:
        db.session.rollback()
        raise OrderRefused(str(exc), {"credential_id": str(exc)}) from None
    with conn:
        req.request_id = _new_request_id()
        deadline = registry.answer_deadline(CA)
        row = Order(
            ca=CA,
            credential_id=credential_id,
            placement=INTENT,
            origin="placed",
            request_id=req.request_id,
            common_name=req.sans[0] if req.sans else "",
            sans=",".join(req.sans),
            product=req.product,
            organization=req.organization or "",
            requester_name=req.requester.name[:255],
            requester_email=req.requester.email[:254],
            friendly_name=friendly_name[:255],
            request=_request_json(req),
            csr_id=csr_id,
            private_key_id=key_row.id if key_row is not None else private_key_id,
            placed_by_id=getattr(actor, "id", None),
            attempted_at=now,
            next_check_at=now + deadline,
            created_at=now,
            updated_at=now,
        )
        row.search_text = records.search_text(row)
        db.session.add(row)
        db.session.flush()
        records.event(row, "requested", actor=actor, now=now, message="Sent to Entrust.")
        audit.record(
            "order.request",
            actor=actor,
            object_type="order",
            object_id=row.id,
            detail={
                "request_id": req.request_id,
                "credential_id": credential_id,
                "product": req.product,
                "names": req.sans[:20],
                "queue_for_approval": req.queue_for_approval,
                "placed_again_from": again_of,
            },
        )
        db.session.commit()  # the intent exists before the call
        order_id = row.id
        try:
            placed = conn.place(req)
        except Unavailable as exc:
            if not exc.outcome_unknown:
                _withdraw(order_id, actor, exc, key_row if key_created else None)
                raise _refusal(exc) from None
            _mark_unknown(order_id, actor, str(exc), again_of)
            return _settle_now(order_id, actor, conn)
        except (Refused, NotAllowed) as exc:
            _withdraw(order_id, actor, exc, key_row if key_created else None)
            raise _refusal(exc) from None
        return _placed(order_id, actor, placed.outcome, placed.order, again_of)


def _claim(order_id: int, values: dict, from_=(INTENT, UNKNOWN)) -> bool:
    """Move an order out of INTENT/UNKNOWN, unless someone else settled it meanwhile."""
    done = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.placement.in_(from_))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(done)


def _note_again(again_of: int | None, row: Order, actor, now: datetime) -> None:
    """On the "not placed" order placed again, a history line pointing at the new one."""
    old = db.session.get(Order, again_of) if again_of else None
    if old is not None:
        records.event(
            old,
            "placed_again",
            actor=actor,
            now=now,
            related=row.id,
            message=f"Placed again as order #{row.id}.",
        )


def _mark_unknown(order_id: int, actor, message: str, again_of: int | None = None) -> None:
    db.session.rollback()
    now = utcnow()
    _claim(order_id, {"placement": UNKNOWN, "message": message[:2000], "updated_at": now})
    row = db.session.get(Order, order_id)
    db.session.refresh(row)
    records.event(row, "unknown", actor=actor, now=now, message=message)
    _note_again(again_of, row, actor, now)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=order_id,
        outcome="unknown",
        detail={"request_id": row.request_id, "error": message[:500]},
    )
    db.session.commit()


def _withdraw(order_id: int, actor, exc: CaError, new_key) -> None:
    """The CA said no (or was not reached): nothing was ordered, so the intent goes, and a key
    stored only for it goes too. The audit trail keeps the attempt."""
    db.session.rollback()
    row = db.session.get(Order, order_id)
    detail = {"request_id": row.request_id, "product": row.product, "error": str(exc)[:500]}
    if isinstance(exc, Refused) and exc.fields:
        detail["fields"] = dict(list(exc.fields.items())[:10])
    db.session.execute(delete(Order).where(Order.id == order_id, Order.placement == INTENT))
    db.session.flush()
    if new_key is not None:
        keys.delete_if_unused(new_key)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=order_id,
        outcome="failure",
        detail=detail,
    )
    db.session.commit()


def _ensure_csr(row: Order, actor) -> None:
    """A pasted or uploaded CSR becomes a CSR row (with its key) once the order exists."""
    if row.csr_id is not None:
        return
    req = json.loads(row.request or "{}")
    if not req.get("csr_pem"):
        return
    info = pki.parse_csr(req["csr_pem"])
    key_row = keys.by_public_id(info.public_key_id)
    row.csr_id = csrs.record_for_order(actor, info, key_row).id


def _link(row: Order, ca: CaOrder, actor, now: datetime, *, source: str) -> str:
    """Fill a just-placed (or just-found) order from the CA's answer; bring its certificate into
    the repository. Returns a problem in words, or ""."""
    row.ca_order_id = records.order_key(ca)
    row.ca_order_number = records.number(row.ca_order_id)
    records.apply(row, ca, now)
    if not row.status_changed_at:
        row.status_changed_at = now
    row.message = ""
    _ensure_csr(row, actor)
    db.session.flush()
    problem = ""
    if ca.phase is Phase.ISSUED and ca.certificate_pem:
        _created, problem = records.store_certificate(row, ca, actor=actor, source=source)
    row.search_text = records.search_text(row)
    records.schedule(row, now, changed=True)
    return problem


def _placed(
    order_id: int, actor, outcome: str, ca: CaOrder | None, again_of: int | None = None
) -> Order:
    now = utcnow()
    if ca is None or not ca.order_id:
        # An answer without the CA's id cannot be linked; let the reconciler find it.
        _mark_unknown(order_id, actor, "Entrust's answer did not name the order.", again_of)
        return db.session.get(Order, order_id)
    if not _claim(order_id, {"placement": PLACED}):
        db.session.rollback()
        return db.session.get(Order, order_id)
    row = db.session.get(Order, order_id)
    db.session.refresh(row)
    if ca.phase is Phase.ISSUED:
        row.issued_at = row.issued_at or now
    problem = _link(row, ca, actor, now, source="entrust")
    words = {
        "issued": "Placed; Entrust issued the certificate.",
        "pending": "Placed; it waits for an Entrust administrator's approval.",
    }.get(outcome, "Placed.")
    row.message = problem
    records.event(row, "placed", actor=actor, new=row.status, now=now, message=words)
    _note_again(again_of, row, actor, now)
    audit.record(
        "order.place",
        actor=actor,
        object_type="order",
        object_id=row.id,
        detail={
            "request_id": row.request_id,
            "ca_order_id": row.ca_order_id,
            "outcome": outcome,
            "status": row.status,
        },
    )
    db.session.commit()
    return row


# --- settling lost answers ------------------------------------------------------------------------


def _settle_now(order_id: int, actor, conn) -> Order:
    """Right after a lost answer: search once (the order is found if it was placed and the CA
    lists it already); otherwise it stays unknown until the deadline has passed."""
    row = db.session.get(Order, order_id)
    try:
        return reconcile(row, actor, conn=conn)
    except Exception:  # the reconciler tries again on schedule
        log.exception("could not settle order %s right away", order_id)
        db.session.rollback()
        return db.session.get(Order, order_id)


def reconcile(row: Order, actor, *, now: datetime | None = None, conn=None) -> Order:
    """Settle an order whose answer was lost (or whose process died during the call): search the
    CA for its request id. Found: linked (its certificate into the repository when issued). Not
    found, and the call's deadline has passed: "not placed". Otherwise it stays unknown. An
    unreachable CA leaves it unknown, to be tried again. Audited when settled."""
    now = now or utcnow()
    if row.placement not in (INTENT, UNKNOWN):
        return row
    deadline = registry.answer_deadline(row.ca)
    due = (row.attempted_at or row.created_at) + deadline
    if row.placement == INTENT and now < due:
        return row  # the call may still be under way
    own = conn is None
    try:
        if own:
            conn = registry.open_connector(row.ca, row.credential_id)
        found = conn.find_by_request_id(row.request_id)
        full = None
        if found:
            ca = found[0]
            if ca.phase in (Phase.ISSUED, Phase.SUSPENDED) and not ca.third_party:
                full = conn.fetch(ca.order_id)
    except CaError as exc:
        db.session.rollback()
        row = db.session.get(Order, row.id)
        if row.placement == INTENT:
            row.placement = UNKNOWN
        row.message = f"Could not check with Entrust yet: {exc}"[:2000]
        # Again in a minute, then less and less often (up to hourly) while Entrust cannot be asked.
        wait = min(max(1, (row.check_interval_minutes or 0) * 2), 60)
        row.check_interval_minutes = wait
        row.next_check_at = max(due, now + timedelta(minutes=wait))
        row.updated_at = now
        db.session.commit()
        return row
    finally:
        if own and conn is not None:
            conn.close()
    if found:
        return _settle_found(row, full or found[0], len(found), actor, now)
    if now < due:
        row.placement = UNKNOWN
        row.next_check_at = due
        row.updated_at = now
        db.session.commit()
        return row
    if not _claim(
        row.id,
        {"placement": NOT_PLACED, "next_check_at": None, "updated_at": now, "message": ""},
    ):
        db.session.rollback()
        return db.session.get(Order, row.id)
    db.session.refresh(row)
    records.event(
        row,
        "not_placed",
        actor=actor,
        now=now,
        notify=True,
        message="Entrust holds no order with this request id: it was not placed.",
    )
    audit.record(
        "order.reconcile",
        actor=actor,
        object_type="order",
        object_id=row.id,
        outcome="not_placed",
        detail={"request_id": row.request_id},
    )
    db.session.commit()
    return row


def _settle_found(
    row: Order, ca: CaOrder, n_found: int, actor, now: datetime, from_=(INTENT, UNKNOWN)
) -> Order:
    """The CA holds the order after all: link it."""
    if not _claim(row.id, {"placement": PLACED}, from_):
        db.session.rollback()
        return db.session.get(Order, row.id)
    db.session.refresh(row)
    problem = _link(row, ca, actor, now, source="entrust")
    extra = f" Entrust holds {n_found} orders with this request id." if n_found > 1 else ""
    row.message = (problem + extra).strip()
    records.event(
        row,
        "reconciled",
        actor=actor,
        new=row.status,
        now=now,
        notify=True,
        message=f"Found at Entrust as order {row.ca_order_id}: it was placed.{extra}",
    )
    audit.record(
        "order.reconcile",
        actor=actor,
        object_type="order",
        object_id=row.id,
        detail={"request_id": row.request_id, "found": row.ca_order_id, "status": row.status},
    )
    db.session.commit()
    return row


def due_for_reconciling(now: datetime | None = None, limit: int = 500) -> list[Order]:
    """Orders whose answer was lost and whose next check is due, and intents that outlived
    their call (its deadline under today's timeouts has passed: the process died during it)."""
    now = now or utcnow()
    settled_by = now - registry.answer_deadline(CA)
    stmt = (
        select(Order)
        .where(
            unsettled(INTENT, UNKNOWN),
            or_(
                Order.next_check_at <= now,
                (Order.placement == INTENT) & (Order.attempted_at <= settled_by),
            ),
        )
        .order_by(Order.next_check_at, Order.id)
        .limit(limit)
    )
    return list(db.session.execute(stmt).scalars())


def reconcile_due(actor, now: datetime | None = None) -> dict:
    """Settle every order that is due (the reconciler's run). Returns counts."""
    counts = {"found": 0, "not_placed": 0, "unsettled": 0}
    for row in due_for_reconciling(now):
        settled = reconcile(row, actor, now=now)
        if settled.placement == PLACED:
            counts["found"] += 1
        elif settled.placement == NOT_PLACED:
            counts["not_placed"] += 1
        else:
            counts["unsettled"] += 1
    return counts


def check_now(actor, row: Order) -> Order:
    """ "Check with Entrust now" on an order whose answer was lost (audited: settled by
    ``reconcile``, or here when it could not be settled yet)."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    row = reconcile(row, actor)
    if row.placement in (INTENT, UNKNOWN):
        audit.record(
            "order.reconcile",
            actor=actor,
            object_type="order",
            object_id=row.id,
            outcome="unsettled",
            detail={"request_id": row.request_id, "message": row.message[:500]},
        )
        db.session.commit()
    return row


def place_again(actor, row: Order) -> Order:
    """Place a "not placed" order again, as a new order with a new request id. One more search
    for the old request id comes first: if the CA holds it after all, it is linked instead."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    if row.placement != NOT_PLACED:
        raise OrderInputError("Only an order that was not placed can be placed again.", "form")
    try:
        with registry.open_connector(row.ca, row.credential_id) as conn:
            found = conn.find_by_request_id(row.request_id)
            full = None
            if found and found[0].phase in (Phase.ISSUED, Phase.SUSPENDED):
                full = conn.fetch(found[0].order_id)
    except CaError as exc:
        db.session.rollback()
        audit.record(
            "order.place_again",
            actor=actor,
            object_type="order",
            object_id=row.id,
            outcome="failure",
            detail={"request_id": row.request_id, "error": str(exc)[:500]},
        )
        db.session.commit()
        raise OrderRefused(str(exc), {"form": str(exc)}) from None
    if found:
        return _settle_found(row, full or found[0], len(found), actor, utcnow(), (NOT_PLACED,))
    req = _request_from(row.request, "")
    return _submit(
        actor,
        row.credential_id,
        req,
        csr_id=row.csr_id,
        private_key_id=row.private_key_id,
        friendly_name=row.friendly_name,
        again_of=row.id,
    )
