"""Order Certificate's form: what it offers for a credential, and CertDesk's own checks of an
order before anything is sent to the CA (nothing is stored when one fails)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from webapp import pki, validation
from webapp.cas import registry
from webapp.cas.base import CaError, CustomField, OrderRequest, Requester, Unavailable
from webapp.catalog import service as catalog
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.orders.models import DEFAULT_CA
from webapp.security import rbac
from webapp.validation import InputError, is_email

CA = DEFAULT_CA
CSR_SOURCES = ("certdesk", "new", "paste", "upload")
NEW_KEY_TYPE = "rsa2048"  # the new key's default: what every Entrust product takes
MAX_ADDITIONAL_EMAILS = 20
_PHONE = re.compile(r"^[0-9+()./ x-]{3,40}$")
# A number custom field's value: digits, a sign, a decimal point (Entrust takes a float).
_NUMBER = re.compile(r"^[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})$")
CUSTOM_TTL_SECONDS = 300.0
# A read that failed (after its retries, each up to the read timeout) is not tried again for this
# long: the form shown again, or sent, a moment later does not wait all that time once more.
CUSTOM_FAILED_TTL_SECONDS = 60.0


class OrderInputError(InputError):
    """Input CertDesk refuses before asking the CA; nothing is stored."""


class Problems(validation.Problems):
    """A form's problems (``validation.Problems``), raised as an OrderInputError."""

    def raise_any(self, error: type[InputError] = OrderInputError) -> None:
        super().raise_any(error)


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
    new_key_type: str = ""  # csr_source "new": the key pair CertDesk makes for the order
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
    request_id: str = ""  # the id the form was shown with: sent twice, it places one order


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
    custom_labels: dict[str, str] = field(default_factory=dict)  # the custom fields' labels


# --- the form's choices -------------------------------------------------------------------------


# The order form lists a credential's approved organizations and usable domains in full up to
# this many. An account with more (tens of thousands, say) gets a search instead, which lists
# FOUND_CHOICES at most.
LISTED_CHOICES = 500
FOUND_CHOICES = 50
# The order forms offer this many of the newest unused CSRs, or of those a search finds.
LISTED_CSRS = 100
MAX_CSR_SEARCH = 255  # a name's length; a longer search text is cut
CSR_BATCHES = 5  # batches of LISTED_CSRS read at most to find that many unused CSRs


@dataclass
class Choices:
    credentials: list
    credential: object | None
    organizations: list[tuple[str, str]]  # (value, label)
    products: list[tuple[str, int]]  # (product, longest validity in days)
    domains: list[str]
    # More than LISTED_CHOICES: the form lists those found by a search (see ``choices``).
    organizations_searched: bool
    domains_searched: bool
    ekus: tuple
    signature_algorithms: tuple
    custom_fields: list[CustomField]
    custom_error: str
    csrs: list
    problems: list[str]
    listed: int  # LISTED_CHOICES and FOUND_CHOICES, for the form's words
    found: int


def _org_value(client_id: int, name: str) -> str:
    return f"{client_id}:{name}"


def _org_option(org) -> tuple[str, str]:
    """(value, label): the organization's name, and its client's when that is another name."""
    client = org.client_name or f"client {org.client_id}"
    label = org.name if client == org.name else f"{org.name} ({client})"
    return _org_value(org.client_id, org.name), label


def chosen_organization(credential_id: int, value: str):
    """The approved organization a form's ``organization`` value names, or None."""
    client_id, _, name = (value or "").partition(":")
    if not client_id.isdigit() or not name or len(client_id) > 9:
        return None
    return catalog.approved_organization(credential_id, int(client_id), name)


# (expires, fields, problem, passing, read at): the fields read, or the problem in words when the
# read failed, whether that failure may pass (Entrust unreachable or busy, not a refusal), and
# when (time.monotonic()) it was read.
_custom_cache: dict[tuple, tuple[float, list[CustomField], str, bool, float]] = {}
_cache_lock = threading.Lock()


def custom_fields(cred) -> tuple[list[CustomField], str]:
    """The account's custom fields (read from the CA, kept a few minutes), and a problem in
    words when they could not be read (kept a minute)."""
    fields, problem, _passing, _read_at = _custom_read(cred)
    return fields, problem


def _cache_key(cred) -> tuple:
    return (cred.id, cred.created_at, cred.updated_at)


def _custom_read(cred) -> tuple[list[CustomField], str, bool, float]:
    """(fields, problem, passing, read at): see ``_custom_cache``."""
    key = _cache_key(cred)
    with _cache_lock:
        hit = _custom_cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3], hit[4]
    read_at = time.monotonic()
    try:
        with registry.open_connector(CA, cred.id, interactive=True) as conn:
            fields = conn.custom_fields()
    except CaError as exc:
        problem = f"The account's custom fields could not be read: {exc}"
        passing = isinstance(exc, Unavailable)
        with _cache_lock:
            expires = time.monotonic() + CUSTOM_FAILED_TTL_SECONDS
            _custom_cache[key] = (expires, [], problem, passing, read_at)
        return [], problem, passing, read_at
    _keep(key, fields, read_at)
    return fields, "", False, read_at


def _keep(key: tuple, fields: list[CustomField], read_at: float) -> None:
    with _cache_lock:
        expires = time.monotonic() + CUSTOM_TTL_SECONDS
        _custom_cache[key] = (expires, fields, "", False, read_at)


def _custom_read_again(cred, kept: list[CustomField]) -> list[CustomField]:
    """The account's custom fields read afresh (and kept in place of those read before); when
    they cannot be read now, ``kept``, those read before (which stay kept)."""
    read_at = time.monotonic()
    try:
        with registry.open_connector(CA, cred.id, interactive=True) as conn:
            fields = conn.custom_fields()
    except CaError:
        return kept
    _keep(_cache_key(cred), fields, read_at)
    return fields


def clear_cache() -> None:
    with _cache_lock:
        _custom_cache.clear()


def forget_custom_fields(credential_id: int) -> None:
    """Read the credential's custom fields afresh next time: the CA refused an order for one
    of them, so the account's fields changed since they were read (one added, or made
    mandatory, in the CA's portal). A failed read stays kept its minute: reading again at once
    would only wait out every retry once more."""
    with _cache_lock:
        for key in [k for k, hit in _custom_cache.items() if k[0] == credential_id and not hit[2]]:
            del _custom_cache[key]


def choices(
    credential_id: int | None,
    *,
    with_custom: bool = True,
    organization: str = "",
    domain: str = "",
    organization_search: str = "",
    domain_search: str = "",
    csr: int | None = None,
    csr_search: str = "",
) -> Choices:
    """What the order form offers for a credential: its approved organizations, the products
    with inventory left that CertDesk can order, its usable domains, the account's custom
    fields, and the CSRs made in CertDesk.

    Organizations and domains are listed in full up to LISTED_CHOICES. Beyond that the form
    lists the first FOUND_CHOICES of a search (``organization_search``: names starting with it;
    ``domain_search``: names starting or ending with it), and the ``organization`` and
    ``domain`` chosen already, so that a form shown again keeps them; so is the ``csr`` chosen,
    beside those its ``csr_search`` finds (see unused_csrs)."""
    usable, cred = chosen_credential(credential_id)
    caps = registry.capabilities(CA)
    problems: list[str] = []
    orgs, products, domains, fields, custom_error = [], [], [], [], ""
    orgs_searched = domains_searched = False
    if cred is not None:
        orgs, orgs_searched = _organization_choices(cred.id, organization, organization_search)
        available = set(catalog.orderable_products(cred.id))
        products = [(p, days) for p, days in caps.products.items() if p in available]
        domains, domains_searched = _domain_choices(cred.id, domain, domain_search)
        if not orgs and not orgs_searched:
            problems.append(f"{cred.name} has no approved organization in CertDesk.")
        if not products:
            problems.append(f"{cred.name} has no SSL product with inventory left in CertDesk.")
        if not domains and not domains_searched:
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
        domains=domains,
        organizations_searched=orgs_searched,
        domains_searched=domains_searched,
        ekus=caps.ekus,
        signature_algorithms=caps.signature_algorithms,
        custom_fields=fields,
        custom_error=custom_error,
        csrs=unused_csrs(chosen=csr, search=csr_search),
        problems=problems,
        listed=LISTED_CHOICES,
        found=FOUND_CHOICES,
    )


def unused_csrs(limit: int = LISTED_CSRS, chosen: int | None = None, search: str = "") -> list:
    """The newest CSRs made in CertDesk whose key no certificate holds: those an order form
    offers (a new certificate is for a new key pair; a CSR whose key a certificate holds was used,
    by this certificate's order or another). With ``search``, of those with a name (CN or SAN)
    that starts or ends with it, as the CSR list finds them: any CSR, however old, can be found.
    The form's ``chosen`` CSR comes first when it is not among them: its page's Order
    Certificate opens the form for it, however many CSRs were made since, and a form shown again
    keeps it whatever its search holds."""
    search = search.strip()[:MAX_CSR_SEARCH]
    unused: list = []
    seen: set[int] = set()
    # The newest first, a batch at a time, until ``limit`` unused ones: used CSRs among the
    # newest do not hide older unused ones (up to CSR_BATCHES batches read). A CSR made between
    # two batches moves the next one back by a row: what was read already is not offered again.
    for batch in range(CSR_BATCHES):
        offset = batch * limit
        found = csrs.matching(search, limit, offset) if search else csrs.recent(limit, offset)
        in_use = certificates.holding_keys(c.public_key_id for c in found)
        unused += [c for c in found if c.public_key_id not in in_use and c.id not in seen]
        seen.update(c.id for c in found)
        if len(unused) >= limit or len(found) < limit:
            break
    unused = unused[:limit]
    if chosen and all(c.id != chosen for c in unused):
        row = csrs.get_csr(chosen)
        if row is not None and row.public_key_id not in certificates.holding_keys(
            [row.public_key_id]
        ):
            unused = [row, *unused]
    return unused


def usable_credentials() -> list:
    """The credentials one may order or import with (no choices of theirs read)."""
    return credentials.usable_credentials()


def disabled_credentials() -> list[str]:
    """The names of the credentials that are linked but disabled: with no enabled one, the pages
    that need one say to enable these rather than to link the account again."""
    return [c.name for c in credentials.list_credentials() if not c.enabled]


def chosen_credential(credential_id: int | None) -> tuple[list, object | None]:
    """The credentials one may order or import with, and a form's: the one chosen, or the only
    one (None when neither)."""
    usable = credentials.usable_credentials()
    cred = next((c for c in usable if c.id == credential_id), None)
    if cred is None and len(usable) == 1:
        cred = usable[0]
    return usable, cred


def found(credential_id: int | None, field: str, chosen: str, search: str) -> tuple[list, bool]:
    """One list of the form alone (``field``: "organization" or "domain"), for what its search
    holds: its options and whether a search chose them (see ``choices``)."""
    _usable, cred = chosen_credential(credential_id)
    if cred is None:
        return [], False
    if field == "organization":
        return _organization_choices(cred.id, chosen, search)
    return _domain_choices(cred.id, chosen, search)


def _organization_choices(
    credential_id: int, chosen: str, search: str
) -> tuple[list[tuple[str, str]], bool]:
    """The organizations the form lists (as options), and whether a search chose them."""
    found = catalog.approved_organizations(credential_id, limit=LISTED_CHOICES + 1)
    searched = len(found) > LISTED_CHOICES
    if searched:
        found = catalog.approved_organizations(credential_id, starting=search, limit=FOUND_CHOICES)
        kept = chosen_organization(credential_id, chosen)
        if kept is not None and kept not in found:
            found.insert(0, kept)
    return [_org_option(o) for o in found], searched


def _domain_choices(credential_id: int, chosen: str, search: str) -> tuple[list[str], bool]:
    """The domains the form lists, and whether a search chose them."""
    found = catalog.usable_domains(credential_id, limit=LISTED_CHOICES + 1)
    searched = len(found) > LISTED_CHOICES
    if searched:
        found = catalog.usable_domains(credential_id, matching=search, limit=FOUND_CHOICES)
        if chosen and chosen not in found and catalog.is_usable_domain(credential_id, chosen):
            found.insert(0, chosen)
    return found, searched


# --- CertDesk's checks --------------------------------------------------------------------------


def _csr(form: OrderForm) -> tuple[pki.CsrInfo, int | None, object | None]:
    """The CSR (and the key given with it, or made for it): (info, CertDesk's CSR id, private
    key)."""
    if form.csr_source not in CSR_SOURCES:
        raise OrderInputError("Choose where the CSR comes from.", "csr_source")
    if form.csr_source == "new":
        return _new_csr(form)
    if form.csr_source == "certdesk":
        row = csrs.get_csr(form.csr_id) if form.csr_id else None
        if row is None:
            raise OrderInputError("Choose one of the CSRs made in CertDesk.", "csr_id")
        return pki.parse_csr(row.pem, "csr_id", stored=True), row.id, None
    if form.csr_source == "paste":
        if not form.csr_text.strip():
            raise OrderInputError("Paste the CSR (PEM).", "csr")
        info = pki.parse_csr(form.csr_text, "csr")
    else:
        if not form.csr_file:
            raise OrderInputError("Choose the CSR file to upload.", "csr_file")
        info = pki.parse_csr(form.csr_file, "csr_file")
    # The key of a pasted or uploaded CSR, pasted or as a file, whichever way the CSR came.
    key_text = form.key_text if form.key_text.strip() else None
    if key_text and form.key_file:
        raise OrderInputError(
            "Give the private key once: paste it or choose its file, not both.", "key"
        )
    key_data = key_text or form.key_file
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


CN_LENGTH = 64  # X.520's bound for a common name


def _new_csr(form: OrderForm) -> tuple[pki.CsrInfo, None, object]:
    """A key pair made now and a CSR for the names typed (or the chosen domain), the first of
    them a CN can hold its CN. Nothing is stored here: the key is kept, encrypted, as a given key
    is, once the order is being placed, and the CSR once the order exists."""
    key_type = form.new_key_type or NEW_KEY_TYPE
    if key_type not in pki.KEY_TYPES:
        raise OrderInputError("Choose one of the offered key types.", "new_key_type")
    names = dns_names(form.sans) if form.sans.strip() else ([form.domain] if form.domain else [])
    names = counted(names, "Enter the SANs (or choose a domain): the new CSR is made for them.")
    # The CN is the first name a CN can hold (64 characters at most; a SAN takes up to 253).
    cn = next((n for n in names if len(n) <= CN_LENGTH), None)
    if cn is None:
        raise OrderInputError(
            f"Every name is longer than {CN_LENGTH} characters, the most a certificate's common "
            "name holds: add a shorter one (it can be the domain itself).",
            "sans",
        )
    try:
        key, info = pki.new_csr(key_type, {"CN": cn}, pki.SanSet(dns=names))
    except pki.PkiError as exc:
        raise OrderInputError(str(exc), "sans") from None
    return info, None, key


def dns_names(text: str) -> list[str]:
    """The host names typed in the SANs field; any other kind of name is refused."""
    sans, problems = pki.parse_san_text(text)
    if problems:
        raise OrderInputError(" ".join(problems), "sans")
    if sans.ip or sans.email:
        raise OrderInputError(
            "Entrust SSL certificates carry DNS names only; remove "
            + ", ".join(sans.ip + sans.email)
            + ".",
            "sans",
        )
    return list(sans.dns)


def _names(form: OrderForm, info: pki.CsrInfo) -> list[str]:
    """The certificate's DNS names: the SANs typed (or the CSR's), with the CSR's CN first."""
    names = dns_names(form.sans) if form.sans.strip() else list(info.sans.dns)
    cn = info.common_name.strip().lower()
    if cn:
        try:
            cn = pki.check_dns_name(cn)
        except pki.PkiError as exc:
            raise OrderInputError(
                f"The CSR's common name is not a host name: {exc}", "csr_source"
            ) from None
        names = [cn] + [n for n in names if n != cn]
    return counted(names, "The CSR names no host; enter the SANs.")


def counted(names: list[str], when_none: str) -> list[str]:
    """``names``, refused (with ``when_none``) when empty or when one certificate cannot hold
    them all."""
    if not names:
        raise OrderInputError(when_none, "sans")
    if len(names) > csrs.MAX_SANS:
        raise OrderInputError(f"At most {csrs.MAX_SANS} names in one certificate.", "sans")
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
    if email and not is_email(email):
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
    bad = [e for e in extra if not is_email(e)]
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
            raise OrderInputError(
                f"{f.label}: at most 500 characters (this is {len(value):,}).", name
            )
        if not value:
            if f.required:
                raise OrderInputError(f"{f.label} is required by the account.", name)
            continue
        if f.kind == "dropdown" and f.options and value not in f.options:
            raise OrderInputError(f"Choose one of the offered values for {f.label}.", name)
        if f.kind == "number" and not _NUMBER.match(value):
            raise OrderInputError(f"{f.label} must be a number, such as 12 or -3.75.", name)
        if f.kind == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                raise OrderInputError(f"{f.label}: enter a date as YYYY-MM-DD.", name) from None
        if f.kind == "email" and not is_email(value):
            raise OrderInputError(f"{f.label} must be an e-mail address.", name)
        out[f.key] = value
    return out


def _only_required_missing(form: OrderForm, fields: list[CustomField], errors: dict) -> bool:
    """Whether the form's only problem is a required custom field left empty (the first of
    those ``_custom`` names): the other fields' values pass."""
    missing = [f for f in fields if f.required and not (form.custom.get(f.key) or "").strip()]
    if not missing or set(errors) != {f"custom_{missing[0].key}"}:
        return False
    try:
        _custom(form, [f for f in fields if f not in missing])
    except OrderInputError:
        return False
    return True


def _covered(cred, org, domain: str, names: list[str]) -> None:
    """Refuses names outside the chosen domain, or outside every domain the client may use."""
    if domain:
        outside = [n for n in names if domain not in catalog.parent_domains(n)]
        if outside:
            raise OrderInputError(
                f"Not under {domain}: {', '.join(outside[:5])}. Choose another domain, or "
                "any usable domain.",
                "sans",
            )
    covering = catalog.covering_domains(cred.id, names, org.client_id)
    uncovered = [n for n in names if covering[n] is None]
    if uncovered:
        raise OrderInputError(
            f"Not under a domain {org.client_name or 'this client'} may use: "
            f"{', '.join(uncovered[:5])}. Entrust issues only for approved domains (see "
            "SSL › Entrust › Manage › Domains).",
            "sans",
        )


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
    problems = Problems()
    org = max_days = info = names = None
    csr_id = key = None
    expires_on = requester = None
    custom: dict[str, str] = {}
    fields: list[CustomField] = []
    asked_at = read_at = time.monotonic()
    with problems.gathered():
        org = chosen_organization(cred.id, form.organization)
        if org is None:
            raise OrderInputError(
                "Choose one of the credential's approved organizations."
                if catalog.approved_organizations(cred.id, limit=1)
                else f"{cred.name} has no approved organization in CertDesk; sync it first.",
                "organization",
            )
    with problems.gathered():
        max_days = caps.max_validity_days(form.product)
        if max_days is None:
            raise OrderInputError("Choose one of the offered products.", "product")
        if form.product not in catalog.orderable_products(cred.id):
            raise OrderInputError(
                f"{cred.name} has no {form.product} inventory left (as last synced).", "product"
            )
    with problems.gathered():
        client = org.client_name if org is not None else ""
        if (
            max_days is not None
            and client
            and org.name != client
            and not caps.names_organization(org.client_id, form.product)
        ):
            # It would be left out of the request, and the certificate would say otherwise.
            raise OrderInputError(
                f"Entrust names a {form.product} certificate of the client {client} after the "
                f"client itself, not {org.name}. Choose {client}, or a product that can name "
                "another of its organizations.",
                "organization",
            )
    with problems.gathered():
        if (
            form.domain
            and org is not None
            and not catalog.is_usable_domain(cred.id, form.domain, org.client_id)
        ):
            owners = catalog.domain_clients(cred.id, form.domain)
            if not owners:
                raise OrderInputError("Choose one of the credential's usable domains.", "domain")
            # Offered (the list holds every client's), but another client's than the
            # organization's: Entrust checks the names against the organization's client.
            raise OrderInputError(
                f"{form.domain} is a domain of {' and '.join(owners)}, not of {org.client_name} "
                f"(the client of {org.name}). Choose a domain of {org.client_name}, or an "
                f"organization of {owners[0]}.",
                "domain",
            )
    with problems.gathered():
        fields, problem, passing, read_at = _custom_read(cred)
        if passing and any((v or "").strip() for v in form.custom.values()):
            # Sent without them, the values typed into the custom fields would be lost unseen.
            # (A refusal of the credential is not waited out: the order is sent, and Entrust's
            # answer to it says what to do.)
            raise OrderInputError(
                f"{problem} Nothing was ordered, so that the values of the custom fields are not "
                "left out: try again in a moment."
            )
    with problems.gathered():
        custom = _custom(form, fields)
    ekus = [code for code, _ in caps.ekus]
    with problems.gathered():
        if form.eku and form.eku not in ekus:
            raise OrderInputError("Choose one of the offered extended key usages.", "eku")
    with problems.gathered():
        info, csr_id, key = _csr(form)
        names = _names(form, info)
    with problems.gathered():
        if names is not None and org is not None and "domain" not in problems.errors:
            _covered(cred, org, form.domain, names)
    with problems.gathered():
        if form.signature_algorithm and (
            problem := caps.signature_algorithm_problem(form.signature_algorithm, form.product)
        ):
            raise OrderInputError(problem, "signature_algorithm")
    with problems.gathered():
        if max_days is not None:
            expires_on = _expiry(form, max_days, today or utcnow().date())
    with problems.gathered():
        if len(form.friendly_name) > 255:
            raise OrderInputError("At most 255 characters.", "friendly_name")
    with problems.gathered():
        requester = _requester(form)
    if read_at < asked_at and _only_required_missing(form, fields, problems.errors):
        # Refused over nothing but required custom fields left empty, on a list read a while
        # ago: on the account's list as it is now instead (a field Entrust no longer requires
        # is not required here either). Only then: a form that passes asks for nothing more.
        fields = _custom_read_again(cred, fields)
        problems.errors.clear()
        with problems.gathered():
            custom = _custom(form, fields)
    problems.raise_any()
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
        custom_labels={f.key: f.label for f in fields if f.key in custom},
        key=key,
    )
