"""The Entrust connector: the CA connector interface over the ECS client, for one ECS credential.

ECS's vocabulary stays here: certType, trackingId, trackingInfo, the CertificateStatus names and
the PATCH operations. The orders feature sees products, order ids, request ids, phases and the
three neutral errors.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from datetime import datetime

from webapp.cas.base import (
    Action,
    CaConnector,
    CaOrder,
    Capabilities,
    CustomField,
    NotAllowed,
    OrderPage,
    OrderRequest,
    Phase,
    Placed,
    Refused,
    Requester,
    Unavailable,
)
from webapp.credentials import clients, wording
from webapp.credentials.models import EcsCredential
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient, errors, types

PHASES = {
    "ACTIVE": Phase.ISSUED,
    "READY": Phase.ISSUED,
    "PENDING": Phase.PENDING,
    "APPROVED": Phase.PENDING,
    "PENDING_QUORUM": Phase.PENDING,
    "REISSUING": Phase.PENDING,
    "RENEWING": Phase.PENDING,
    "SUSPENDED": Phase.SUSPENDED,
    "REVOKED": Phase.REVOKED,
    "REISSUED": Phase.REPLACED,
    "RENEWED": Phase.REPLACED,
    "EXPIRED": Phase.EXPIRED,
    "DECLINED": Phase.DECLINED,
    "DEACTIVATED": Phase.DEACTIVATED,
    # Entrust's "not applicable": an order that never came to a certificate. Nothing says what
    # it becomes, so it is read again now and then, as any status CertDesk cannot place is.
    "NA": Phase.UNKNOWN,
}
# ECS's certificate list leaves out orders in these statuses: they are read one by one.
HIDDEN_FROM_LISTS = frozenset({"APPROVED", "DECLINED"})

# The longest validity a new order may ask for, in days (kept here and nowhere else): the
# CA/Browser Forum's bound for public TLS certificates today, Entrust's 3-year private SSL.
PUBLIC_SSL_MAX_DAYS = 398
PRIVATE_SSL_MAX_DAYS = 1095
ORDERABLE_PRODUCTS = {
    "STANDARD_SSL": PUBLIC_SSL_MAX_DAYS,
    "ADVANTAGE_SSL": PUBLIC_SSL_MAX_DAYS,
    "UC_SSL": PUBLIC_SSL_MAX_DAYS,
    "WILDCARD_SSL": PUBLIC_SSL_MAX_DAYS,
    "EV_SSL": PUBLIC_SSL_MAX_DAYS,
    "QWAC_SSL": PUBLIC_SSL_MAX_DAYS,
    "PSD2_SSL": PUBLIC_SSL_MAX_DAYS,
    "PD_SSL": PUBLIC_SSL_MAX_DAYS,
    "PRIVATE_SSL": PRIVATE_SSL_MAX_DAYS,
}
EKUS = (
    ("SERVER_AND_CLIENT_AUTH", "Server and client authentication"),
    ("SERVER_AUTH", "Server authentication"),
    ("CLIENT_AUTH", "Client authentication"),
)
SIGNATURE_ALGORITHMS = (("SHA-2", "SHA-2"), ("SHA-1", "SHA-1 (Private SSL only)"))

LIVE_REVOCATION_REASONS = (("unspecified", "Unspecified"), ("keyCompromise", "Key compromise"))
OTHER_REVOCATION_REASONS = (
    ("superseded", "Superseded"),
    ("affiliationChanged", "Affiliation changed"),
    ("cessationOfOperation", "Cessation of operation"),
)


def capabilities(other_revocation_reasons: bool = False) -> Capabilities:
    """What ECS supports. Entrust accepts only two revocation reasons today; the spec's other
    three are offered when the account is known to accept them."""
    reasons = LIVE_REVOCATION_REASONS + (
        OTHER_REVOCATION_REASONS if other_revocation_reasons else ()
    )
    return Capabilities(
        actions=frozenset(Action),
        admin_actions=frozenset({Action.APPROVE, Action.DECLINE, Action.SUSPEND, Action.RESUME}),
        revocation_reasons=reasons,
        validate_only=True,
        renew_min_age_days=30,
        # "Reissue is an operation that will result in the revocation of the certificate that is
        # reissued" (the original then shows REISSUED).
        reissue_revokes_original=True,
        reissued_status="REISSUED",
        # A renewal leaves the original's certificate valid until its own expiry (it is usually
        # still deployed); the original then shows RENEWED.
        renewed_status="RENEWED",
        allowed_statuses={
            Action.APPROVE: frozenset({"PENDING"}),
            Action.DECLINE: frozenset({"PENDING"}),
            Action.SUSPEND: frozenset({"ACTIVE", "READY"}),
            Action.RESUME: frozenset({"SUSPENDED"}),
            Action.REISSUE: frozenset({"ACTIVE", "READY"}),
            Action.RENEW: frozenset({"ACTIVE", "READY", "EXPIRED"}),
            Action.REVOKE: frozenset({"ACTIVE", "READY", "SUSPENDED"}),
        },
        expired_status="EXPIRED",
        # ECS takes an organization name (org) only for the primary client, and for PD_SSL.
        organization_client=1,
        organization_any_client_products=frozenset({"PD_SSL"}),
        products=dict(ORDERABLE_PRODUCTS),
        ekus=EKUS,
        signature_algorithms=SIGNATURE_ALGORITHMS,
        # "any certificates except Private SSL ... will use SHA2, even if the SHA1 algorithm is
        # specified in the request"
        signature_algorithm_products={"SHA-1": frozenset({"PRIVATE_SSL"})},
        statuses=tuple(PHASES),
    )


# ECS request fields, as the order form names them.
FORM_FIELDS = {
    "csr": "csr",
    "subjectAltName": "sans",
    "certType": "product",
    "org": "organization",
    "clientId": "organization",
    "ou": "organization",
    "signingAlg": "signature_algorithm",
    "eku": "eku",
    "certExpiryDate": "expires_on",
    "certLifetime": "expires_on",
    "ctLog": "ct_log",
    "tracking.requesterName": "requester_name",
    "tracking.requesterEmail": "requester_email",
    "tracking.requesterPhone": "requester_phone",
    "tracking.additionalEmails": "additional_emails",
    "declineReason": "reason",
    "crlReason": "reason",
    "revocationComment": "comment",
}
_CN = re.compile(r"(?:^|,)\s*CN=((?:[^,\\]|\\.)*)", re.IGNORECASE)


def form_field(ecs_field: str) -> str:
    """The order form's name for an ECS request field (custom fields: ``custom_<key>``)."""
    if ecs_field.startswith("tracking.customFields."):
        return "custom_" + ecs_field.rsplit(".", 1)[1]
    return FORM_FIELDS.get(ecs_field, ecs_field)


def _phase(status: str) -> Phase:
    return PHASES.get(status, Phase.UNKNOWN)


def _common_name(dn: str | None) -> str:
    m = _CN.search(dn or "")
    return m.group(1).replace("\\", "").strip() if m else ""


def _issuers(leaf: str | None, chain: list[str]) -> list[str]:
    """ECS's chainCerts starts with the end-entity certificate: keep only its issuers."""
    if chain and leaf and chain[0].strip() == leaf.strip():
        return chain[1:]
    return list(chain)


# Fields of a certificate that are not kept among the fields the order's page lists: the PEMs
# (kept as the certificate and its chain, or with the request), and pickupUrl, a link that hands
# the certificate (and an S/MIME certificate's key made by Entrust) to whoever holds it; CertDesk
# fetches certificates through the API and neither stores nor shows that link.
NOT_DETAILS = frozenset(("endEntityCert", "chainCerts", "csr", "pickupUrl", "pkcs12"))


def to_order(cert: types.Certificate, read_at: datetime | None = None) -> CaOrder:
    """A CaOrder from an ECS certificate (a list item or the full detail), asked for at
    ``read_at``."""
    status = str(cert.status or "")
    tracking = cert.tracking or types.Tracking()
    details = {
        k: v for k, v in cert.raw.items() if k not in NOT_DETAILS and v not in (None, "", [], {})
    }
    return CaOrder(
        order_id=str(cert.tracking_id),
        status=status,
        phase=_phase(status),
        request_id=tracking.tracking_info,
        common_name=_common_name(cert.dn),
        sans=cert.dns_names,
        product=str(cert.cert_type or ""),
        organization=cert.org or "",
        serial=cert.serial_number or "",
        issued_at=cert.issue_date_time,
        expires_at=cert.expires_after,
        requester=Requester(
            name=tracking.requester_name or "",
            email=tracking.requester_email or "",
            phone=tracking.requester_phone or "",
            additional_emails=list(tracking.additional_emails),
        ),
        certificate_pem=cert.end_entity_cert,
        chain_pems=_issuers(cert.end_entity_cert, cert.chain_certs),
        csr_pem=cert.csr,
        decline_reason=cert.decline_reason or "",
        third_party=bool(cert.is_third_party) or cert.tracking_id == 0,
        thumbprint=cert.thumbprint,
        details=details,
        read_at=read_at,
    )


def _placed(result: types.OrderResult, status_if_issued: str = "ACTIVE") -> Placed:
    if result.outcome is types.OrderOutcome.VALIDATED:
        return Placed("validated")
    if result.outcome is types.OrderOutcome.ACCEPTED:
        return Placed("accepted", CaOrder(str(result.tracking_id), "", Phase.UNKNOWN))
    if result.issued:
        return Placed(
            "issued",
            CaOrder(
                order_id=str(result.tracking_id),
                status=status_if_issued,
                phase=Phase.ISSUED,
                serial=result.serial_number or "",
                expires_at=result.expires_after,
                certificate_pem=result.end_entity_cert,
                chain_pems=_issuers(result.end_entity_cert, result.chain_certs),
            ),
        )
    return Placed("pending", CaOrder(str(result.tracking_id), "PENDING", Phase.PENDING))


def _tracking(req: OrderRequest) -> types.Tracking:
    r = req.requester
    return types.Tracking(
        tracking_info=req.request_id,
        requester_name=r.name or None,
        requester_email=r.email or None,
        requester_phone=r.phone or None,
        additional_emails=list(r.additional_emails),
        custom_fields={
            k: _number(v) if k.startswith("number") else v
            for k, v in req.custom_fields.items()
            if v not in (None, "")
        },
    )


def _number(value):
    """A number custom field's value as JSON carries a number (ECS's ``number1..5`` are floats):
    an integer when it has no fraction ("12", "12.0"), else a float. What is not a number is
    sent as it was given, for Entrust to refuse in its words."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if not math.isfinite(number):
        return value
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _int_id(order_id: str) -> int:
    try:
        number = int(order_id)
    except (TypeError, ValueError):
        raise Refused(f"{order_id!r} is not an Entrust tracking ID.") from None
    if number < 0:
        raise Refused(f"{order_id!r} is not an Entrust tracking ID.")
    return number


class EntrustConnector(CaConnector):
    """Entrust ECS, for one credential (its API user's rights are the connector's rights)."""

    kind = "entrust"
    label = "Entrust"

    def __init__(
        self,
        credential: EcsCredential,
        client: EcsClient,
        *,
        other_revocation_reasons: bool = False,
    ):
        self.credential = credential
        # What error messages need, read now: a connector may be used by a thread other than
        # the one whose database session loaded the credential.
        self._base_url = credential.base_url
        self._has_client_cert = credential.has_client_cert
        self.client = client
        self.capabilities = capabilities(other_revocation_reasons)

    @classmethod
    def open(
        cls, credential: EcsCredential, *, interactive: bool = False, **options
    ) -> EntrustConnector:
        """The connector for a stored credential (``interactive``: for reads a page waits for,
        see clients.build). Raises Unavailable when it cannot be used."""
        try:
            client = clients.client_for(credential, interactive=interactive)
            return cls(credential, client, **options)
        except clients.ClientUnavailable as exc:
            raise Unavailable(str(exc)) from None

    def close(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def _calling(self):
        """ECS errors as the three neutral kinds, in words."""
        try:
            yield
        except errors.EcsError as exc:
            message = wording.describe(exc, self._base_url, self._has_client_cert)
            if isinstance(exc, errors.AuthenticationError):
                # A 403 is a missing right, unless it is about the client certificate: that,
                # like a 401, is the login refused.
                rights = exc.status == 403 and not wording.refuses_client_certificate(exc)
                raise NotAllowed(message, needs_admin=rights, login_refused=not rights) from None
            if isinstance(exc, errors.ConflictError):
                raise Refused(message, state=True) from None
            if isinstance(exc, errors.ValidationError | errors.NotFoundError):
                fields = {form_field(f): m for f, m in wording.field_messages(exc).items()}
                raise Refused(message, fields=fields) from None
            raise Unavailable(
                message, outcome_unknown=exc.outcome_unknown, retry_after=exc.retry_after
            ) from None

    # -- ordering -------------------------------------------------------------------------------

    def _common(self, req: OrderRequest) -> dict:
        # Another client's certificates carry that client's own name (see capabilities()).
        org_allowed = capabilities().names_organization(req.client_id, req.product)
        return dict(
            csr=req.csr_pem or None,
            subject_alt_names=list(req.sans) or None,
            signing_alg=req.signature_algorithm or None,
            eku=req.eku or None,
            ct_log=req.ct_log,
            client_id=req.client_id,
            org=(req.organization or None) if org_allowed else None,
            ou=list(req.ou) or None,
            tracking=_tracking(req),
        )

    def place(self, request: OrderRequest) -> Placed:
        body = types.NewCertificateRequest(
            cert_type=request.product,
            cert_expiry_date=request.expires_on,
            validate_only=True if request.validate_only else None,
            queue_for_approval=True if request.queue_for_approval else None,
            **self._common(request),
        )
        with self._calling():
            return _placed(self.client.new_certificate(body))

    def find_by_request_id(self, request_id: str) -> list[CaOrder]:
        """Searches ``tracking.trackingInfo``. ECS's lists leave out APPROVED and DECLINED orders,
        so an order in one of those statuses is found only once it moves on (APPROVED is brief:
        the certificate is issued next); callers search again before they place anew."""
        asked = utcnow()
        with self._calling():
            found = self.client.find_certificates_by_tracking_info(request_id)
        return [to_order(c, asked) for c in found]

    # -- reading --------------------------------------------------------------------------------

    def statuses(
        self, order_ids: list[str], known: dict[str, str] | None = None
    ) -> dict[str, CaOrder]:
        """Lists of up to 100 ids (``trackingId=in:``); an id missing from the lists is read on
        its own, unless ``known`` says it was last seen APPROVED or DECLINED: ECS's lists leave
        those out, and such an order shows up in them again when its status changes."""
        ids = [_int_id(i) for i in order_ids]
        asked = utcnow()
        with self._calling():
            found = self.client.get_statuses(ids, fields="*", fetch_missing=False)
            for tid in ids:
                if tid in found:
                    continue
                if known is not None and known.get(str(tid)) in HIDDEN_FROM_LISTS:
                    continue
                try:
                    found[tid] = self.client.get_certificate(tid)
                except errors.NotFoundError:
                    continue
        return {str(tid): to_order(cert, asked) for tid, cert in found.items()}

    def fetch(self, order_id: str) -> CaOrder:
        asked = utcnow()
        with self._calling():
            return to_order(self.client.get_certificate(_int_id(order_id)), asked)

    def fetch_third_party(self, thumbprint: str) -> CaOrder:
        asked = utcnow()
        with self._calling():
            return to_order(self.client.get_certificate_by_thumbprint(thumbprint), asked)

    def list_orders(self, offset: int = 0, page_size: int = 1000) -> Iterator[OrderPage]:
        while True:
            asked = utcnow()
            with self._calling():
                items, total = self.client.certificates_page(
                    offset, page_size, fields="*", sort="trackingId:asc"
                )
            next_offset = offset + len(items)
            done = not items or (total is not None and next_offset >= total)
            yield OrderPage(
                [to_order(c, asked) for c in items], offset, None if done else next_offset, total
            )
            if done:
                return
            offset = next_offset

    def custom_fields(self) -> list[CustomField]:
        with self._calling():
            config = self.client.get_custom_fields()
        return [
            CustomField(
                key=f.key,
                label=f.label or f.key,
                kind=f.kind,
                required=f.required_by_api,
                options=tuple(f.options),
                multiline=bool(f.multiline),
            )
            for f in config.enabled_fields
        ]

    # -- lifecycle ------------------------------------------------------------------------------

    def approve(self, order_id: str) -> Placed:
        with self._calling():
            return _placed(self.client.approve(_int_id(order_id)))

    def decline(self, order_id: str, reason: str) -> None:
        with self._calling():
            self.client.decline(_int_id(order_id), reason)

    def suspend(self, order_id: str) -> None:
        with self._calling():
            self.client.suspend(_int_id(order_id))

    def resume(self, order_id: str) -> None:
        with self._calling():
            self.client.unsuspend(_int_id(order_id))

    def reissue(self, order_id: str, request: OrderRequest) -> Placed:
        body = types.ReissueRequest(**self._common(request))
        with self._calling():
            return _placed(self.client.reissue(_int_id(order_id), body))

    def renew(self, order_id: str, request: OrderRequest) -> Placed:
        body = types.RenewRequest(cert_expiry_date=request.expires_on, **self._common(request))
        with self._calling():
            return _placed(self.client.renew(_int_id(order_id), body))

    def revoke(self, order_id: str, reason: str, comment: str = "") -> None:
        accepted = {code for code, _ in self.capabilities.revocation_reasons}
        if reason not in accepted:
            raise Refused(
                f"Entrust does not accept the revocation reason {reason!r}.", field="reason"
            )
        with self._calling():
            self.client.revoke(_int_id(order_id), reason, comment or None)
