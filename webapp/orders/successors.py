"""Reissue Certificate and Renew Certificate: a new order at the CA that replaces an issued one.

Both are create calls, placed exactly once by ``placing`` (an intent row with a fresh request id,
committed before the call; the id travels with the request; no retry; a lost answer is settled by
the reconciler). The new order links to the original (``parent_id``); ``lineage`` records the link
in both histories once the CA holds it.

A reissue takes a new CSR (a new key pair) and keeps the original's expiry; Entrust revokes the
original certificate. A renewal takes a new expiry date and, optionally, a new CSR; Entrust renews
only a certificate at least ``renew_min_age_days`` old, which CertDesk checks before any call.
The forms are prefilled from the order: its names, signature algorithm, extended key usage, CT
logging and tracking details (requester, and the account's custom fields, kept as they were). The
original's client, organization and OU are sent as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from webapp import pki
from webapp.cas import registry
from webapp.cas.base import Action, Capabilities, OrderRequest
from webapp.catalog import service as catalog
from webapp.certificates import service as certificates
from webapp.dbtypes import utcnow
from webapp.orders import availability, checks, placing
from webapp.orders.checks import OrderForm, OrderInputError
from webapp.orders.models import Order
from webapp.security import rbac

ACTIONS = {"reissue": Action.REISSUE, "renew": Action.RENEW}
KEEP_KEY = "keep"  # a renewal without a new CSR: the CA certifies the current key again


@dataclass
class SuccessorPage:
    """What the Reissue or Renew form shows for an order."""

    origin: str  # "reissue" or "renew"
    order: Order
    problem: str  # why the CA would refuse it now ("" when it can be tried)
    revokes_original: bool
    old_names: list[str]  # what the certificate being replaced covers
    csrs: list
    ekus: tuple
    signature_algorithms: tuple
    max_days: int | None  # the longest validity of a renewal (None: the CA decides)
    dates: tuple[str, str]  # the expiration date input's bounds
    renewable_from: object | None
    expired: bool  # the certificate being replaced is past its expiry


def page(row: Order, origin: str, *, csr: int | None = None, csr_search: str = "") -> SuccessorPage:
    """What a Reissue or Renew form shows for ``row``; its CSR list keeps the ``csr`` chosen,
    beside those its ``csr_search`` finds (see checks.unused_csrs)."""
    caps = registry.capabilities(row.ca)
    action = ACTIONS[origin]
    old = certificates.for_order(row.id)
    old_names = list(old[0].san_list) if old and old[0].san_list else row.san_list
    now = utcnow()
    today = now.date()
    max_days = caps.max_validity_days(row.product)
    longest = max_days or 0
    return SuccessorPage(
        origin=origin,
        order=row,
        problem=availability.why_not(row, action, caps),
        revokes_original=origin == "reissue" and caps.reissue_revokes_original,
        old_names=old_names,
        # Not the key being replaced, nor another certificate's.
        csrs=checks.unused_csrs(chosen=csr, search=csr_search),
        ekus=caps.ekus,
        signature_algorithms=caps.signature_algorithms,
        max_days=max_days,
        dates=(
            (today + timedelta(days=1)).isoformat(),
            (today + timedelta(days=longest)).isoformat() if longest else "",
        ),
        renewable_from=availability.renewable_from(row, caps) if origin == "renew" else None,
        expired=row.expires_at is not None and row.expires_at <= now,
    )


def _tracking(row: Order) -> dict:
    details = json.loads(row.details or "{}")
    tracking = details.get("tracking")
    return tracking if isinstance(tracking, dict) else {}


def prefill(row: Order, origin: str) -> dict:
    """The form's values, taken from the order: what CertDesk sent when it placed it, else what
    the CA holds."""
    details = json.loads(row.details or "{}")
    sent = json.loads(row.request or "{}")
    tracking = _tracking(row)
    requester = sent.get("requester") or {}
    emails = tracking.get("additionalEmails") or requester.get("additional_emails") or []
    ct_log = sent.get("ct_log")
    return {
        # A reissue is for a new key: by default one made now for the names below (a CSR made
        # in CertDesk is one to choose, and the newest unused one has nothing to do with it).
        "csr_source": KEEP_KEY if origin == "renew" else "new",
        "csr_id": None,
        "csr_text": "",
        "sans": "\n".join(row.san_list),
        "eku": sent.get("eku") or details.get("eku") or "",
        "signature_algorithm": sent.get("signature_algorithm") or details.get("signingAlg") or "",
        "ct_log": True if ct_log is None else bool(ct_log),
        "expires_on": "",
        "requester_name": row.requester_name or tracking.get("requesterName") or "",
        "requester_email": row.requester_email or tracking.get("requesterEmail") or "",
        "requester_phone": tracking.get("requesterPhone") or requester.get("phone") or "",
        "additional_emails": "\n".join(str(e) for e in emails if isinstance(e, str)),
    }


def _names_kept(form: OrderForm, row: Order) -> list[str]:
    """The names of a renewal that keeps its key: the SANs typed, the order's common name first."""
    names = checks.dns_names(form.sans.strip() or "\n".join(row.san_list))
    cn = (row.common_name or "").strip().lower()
    if cn in names:
        names = [cn] + [n for n in names if n != cn]
    return checks.counted(names, "Enter the certificate's names.")


def _expiry(form: OrderForm, row: Order, caps: Capabilities, today: date) -> date | None:
    max_days = caps.max_validity_days(row.product)
    if max_days is None:
        if form.expires_on.strip():
            raise OrderInputError(
                f"CertDesk cannot bound the validity of a {row.product or 'this'} certificate; "
                "leave the date empty and Entrust chooses it.",
                "expires_on",
            )
        return None
    bounded = OrderForm(product=row.product, expires_on=form.expires_on)
    return checks._expiry(bounded, max_days, today)


def _new_key_held(row: Order, origin: str, info: pki.CsrInfo | None) -> None:
    """A reissue is for a key no certificate holds: neither the one replaced nor another one."""
    key_id = info.public_key_id if origin == "reissue" and info is not None else None
    if key_id and (holder := certificates.holding_keys([key_id]).get(key_id)) is not None:
        whose = "the certificate being reissued"
        if holder.order_id != row.id:
            cn = holder.common_name or "no CN"
            whose = f"another certificate ({cn}, serial {holder.serial_hex})"
        raise OrderInputError(
            f"This CSR has the key of {whose}. A reissue is for a new key pair: make a new CSR.",
            "csr_source",
        )


def _covered(row: Order, names: list[str]) -> None:
    """Once the account is synced (its domains known), every name falls under one of them."""
    if catalog.usable_domains(row.credential_id, limit=1):
        covering = catalog.covering_domains(row.credential_id, names)
        uncovered = [n for n in names if covering[n] is None]
        if uncovered:
            raise OrderInputError(
                f"Not under a domain the account may use: {', '.join(uncovered[:5])}. Entrust "
                "issues only for approved domains (see SSL › Entrust › Manage › Domains).",
                "sans",
            )


@dataclass
class _Prepared:
    request: OrderRequest
    csr_id: int | None
    csr_info: pki.CsrInfo | None
    key: object | None


def prepare(actor, row: Order, origin: str, form: OrderForm, today: date | None = None):
    """CertDesk's checks of a reissue or renewal before anything is sent: the order allows it
    now (for a renewal: the certificate is old enough), a readable CSR with a key that belongs to
    it (for a reissue: a new key), DNS names under the credential's usable domains, the extended
    key usage and signature algorithm on offer, the expiry the product allows, the requester.
    Raises OrderInputError; nothing is stored."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    if origin not in ACTIONS:
        raise ValueError(f"unknown successor {origin!r}")
    caps = registry.capabilities(row.ca)
    problem = availability.why_not(row, ACTIONS[origin], caps)
    if problem:
        raise OrderInputError(problem, "form")
    problems = checks.Problems()
    info, csr_id, key = None, None, None
    names = expires_on = requester = None
    with problems.gathered():
        if origin == "renew" and form.csr_source == KEEP_KEY:
            names = _names_kept(form, row)
        else:
            if form.csr_source == KEEP_KEY:
                raise OrderInputError(
                    "A reissue is for a new key pair: give a new CSR.", "csr_source"
                )
            info, csr_id, key = checks._csr(form)
            names = checks._names(form, info)
        _new_key_held(row, origin, info)
        _covered(row, names)
    with problems.gathered():
        if form.eku and form.eku not in [code for code, _ in caps.ekus]:
            raise OrderInputError("Choose one of the offered extended key usages.", "eku")
    with problems.gathered():
        if form.signature_algorithm and (
            problem := caps.signature_algorithm_problem(form.signature_algorithm, row.product)
        ):
            raise OrderInputError(problem, "signature_algorithm")
    with problems.gathered():
        if origin == "renew":
            expires_on = _expiry(form, row, caps, today or utcnow().date())
    with problems.gathered():
        requester = checks._requester(form)
    problems.raise_any()
    return _Prepared(_request(row, names, info, form, expires_on, requester), csr_id, info, key)


def _custom_fields(row: Order) -> dict[str, str]:
    """The account's custom fields as the order holds them: as CertDesk sent them, else as the
    CA reports them."""
    sent = json.loads(row.request or "{}").get("custom_fields")
    held = sent if isinstance(sent, dict) and sent else _tracking(row).get("customFields")
    if not isinstance(held, dict):
        return {}
    return {str(k): str(v) for k, v in held.items() if v not in (None, "")}


def _ou(row: Order) -> list[str]:
    """The original certificate's organizational units, as the CA reports them."""
    held = json.loads(row.details or "{}").get("ou")
    if not isinstance(held, list):
        return []
    return [str(v) for v in held if isinstance(v, str) and v.strip()]


def _request(row, names, info, form, expires_on, requester) -> OrderRequest:
    # The original's client, organization and OU: ECS takes client 1 and that client's own name
    # for a reissue or renewal that names neither, and the new CSR's OU (none for a CSR made in
    # CertDesk) for one that names none.
    return OrderRequest(
        request_id="",
        product=row.product,
        csr_pem=info.pem if info is not None else None,
        sans=names,
        organization=row.organization or None,
        ou=_ou(row),
        client_id=catalog.client_of(row.credential_id, row.organization),
        eku=form.eku or None,
        signature_algorithm=form.signature_algorithm or None,
        expires_on=expires_on,
        ct_log=bool(form.ct_log),
        requester=requester,
        custom_fields=_custom_fields(row),
    )


def _place(actor, row: Order, origin: str, form: OrderForm) -> Order:
    rbac.check(actor, rbac.ORDERS_MANAGE)
    request_id = placing.unsent_request_id(form)
    prepared = prepare(actor, row, origin, form)
    prepared.request.request_id = request_id
    key_row, key_created = placing.keep_key(actor, prepared, form)
    return placing.submit(
        actor,
        row.credential_id,
        prepared.request,
        csr_id=prepared.csr_id,
        key_row=key_row,
        key_created=key_created,
        friendly_name=row.friendly_name,
        origin=origin,
        parent=row,
        custom_labels=placing.custom_labels(row),
    )


def reissue(actor, row: Order, form: OrderForm) -> Order:
    """Reissue Certificate: a new certificate for a new key pair, with the original's expiry (the
    CA revokes the original). Returns the new order (issued, pending, or unknown while its lost
    answer is settled). Raises OrderInputError (CertDesk's checks; placing.SentAlready for a form
    sent again with the request id it was shown with) or placing.OrderRefused (the CA said no, or
    could not be reached and nothing was placed; refused in the original's status, the original is
    read back first)."""
    return _place(actor, row, "reissue", form)


def renew(actor, row: Order, form: OrderForm) -> Order:
    """Renew Certificate: a new certificate with a new expiry, for a new key pair or the current
    one. Refused before any call while the certificate is younger than the CA renews. Returns
    the new order; raises as ``reissue``."""
    return _place(actor, row, "renew", form)
