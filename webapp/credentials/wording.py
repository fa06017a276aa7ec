"""ECS errors in words a person can act on.

:func:`describe` covers every class in :mod:`webapp.ecs.errors`: refused logins and client
certificates, missing rights, unknown objects, field-level validation errors, refusals in the
object's current state, rate limits, server errors, timeouts, connection failures and answers that
are not the ECS API's. Field errors are also available one by one (:func:`field_messages`) so a
form can show each next to its input. No wording here ever contains a secret: it is built from the
error's request line, status and the server's own messages.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from webapp.ecs import errors
from webapp.ecs.errors import ConnectionProblem
from webapp.ecs.transport import scrub

UNKNOWN_OUTCOME = (
    " The request may have taken effect at Entrust; CertDesk checks before anything is sent again."
)
_CERT_PATH = re.compile(r"^/certificates/(\d+)")
_THUMBPRINT_PATH = re.compile(r"^/certificates/thumbprints/([^/?]+)")


def _said(exc: errors.EcsError) -> str:
    return "; ".join(scrub(m, 300) for m in exc.messages)


def refuses_client_certificate(exc: errors.EcsError) -> bool:
    """Whether Entrust's refusal of a login is about its client certificate (missing, or not the
    API user's): a fault of the credential, whatever the status, not a missing right."""
    if not isinstance(exc, errors.AuthenticationError):
        return False
    return "client certificate" in _said(exc).lower()


def field_messages(exc: errors.EcsError) -> dict[str, str]:
    """``{ECS field name: message}`` for the field-level errors of a refused request."""
    return {f: " ".join(scrub(m, 300) for m in msgs) for f, msgs in exc.field_errors.items()}


def describe(exc: errors.EcsError, base_url: str = "", has_cert: bool = False) -> str:
    """An ECS error in words a person can act on (see the module docstring)."""
    text = _describe(exc, urlsplit(base_url).netloc or "the server", has_cert)
    if exc.outcome_unknown:
        text += UNKNOWN_OUTCOME
    return text


def _describe(exc: errors.EcsError, host: str, has_cert: bool) -> str:
    said = _said(exc)
    if isinstance(exc, errors.AuthenticationError):
        return _authentication(exc, said)
    if isinstance(exc, errors.EcsConnectionError):
        return _connection(exc, host, has_cert)
    if isinstance(exc, errors.EcsTimeout):
        if exc.phase == "connect":
            return (
                f"Timeout: no connection to {host} in time ({exc.detail}). A firewall may drop "
                "the traffic, or a proxy may be needed."
            )
        return (
            f"Timeout: {host} did not answer in time ({exc.detail}). Try again later, or raise "
            "the read timeout in Admin › Settings."
        )
    if isinstance(exc, errors.RateLimitedError):
        wait = f" Try again in {exc.retry_after:g} s." if exc.retry_after else " Try again later."
        return f"Rate limit: Entrust refused more requests for now (HTTP 429).{wait}"
    if isinstance(exc, errors.ServerError):
        return (
            f"Entrust server error (HTTP {exc.status}){': ' + said if said else ''}. "
            "Try again later."
        )
    if isinstance(exc, errors.NotFoundError):
        return _not_found(exc, said)
    if isinstance(exc, errors.ConflictError):
        return (
            f"Entrust refused this in the order's current state: {said or 'no reason given'}. "
            "Check the order's status (Check Order Status) and try what it allows."
        )
    if isinstance(exc, errors.ValidationError):
        fields = field_messages(exc)
        if fields:
            listed = "; ".join(f"{name}: {message}" for name, message in fields.items())
            others = [m for m in exc.messages if not any(m in v for v in fields.values())]
            extra = f" ({'; '.join(scrub(m, 300) for m in others)})" if others else ""
            return f"Entrust refused the request: {listed}{extra}. Correct it and try again."
        return f"Entrust refused the request: {said or 'no reason given'}."
    if isinstance(exc, errors.PagingError):
        return (
            f"Entrust's list broke off part-way ({exc.detail}); nothing was changed. "
            "Try again later."
        )
    if isinstance(exc, errors.MalformedResponseError):
        return (
            f"{host} answered, but not as the ECS API does ({exc.detail}). Check the base URL "
            "and the proxy."
        )
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"Entrust answered with an error{status}{': ' + said if said else ''}."


def _authentication(exc: errors.AuthenticationError, said: str) -> str:
    low = said.lower()
    if refuses_client_certificate(exc) and "required" in low:
        return (
            "Client certificate required: Entrust requires a client certificate for this API "
            "user. Upload the certificate and key (PEM files or PKCS#12)."
        )
    if refuses_client_certificate(exc):
        return (
            "Client certificate rejected: Entrust says it does not belong to this API user "
            f"({said}). Upload the certificate issued for this API user."
        )
    if exc.status == 403:
        return (
            "Access refused (HTTP 403): Entrust accepted the login but this API user may not "
            f"do this{': ' + said if said else ''}. An Entrust administrator can do it, or give "
            "this API user the rights."
        )
    return (
        "Wrong user name or API key: Entrust refused them (HTTP "
        f"{exc.status or 401}{': ' + said if said else ''}). Check the User Name and API Key."
    )


def _not_found(exc: errors.NotFoundError, said: str) -> str:
    path = exc.path or ""
    if m := _CERT_PATH.match(path):
        return (
            f"Entrust does not know the order with tracking ID {m.group(1)}"
            f"{' (' + said + ')' if said else ''}: it may belong to another Entrust account."
        )
    if m := _THUMBPRINT_PATH.match(path):
        return (
            f"Entrust gave no certificate for the thumbprint {scrub(m.group(1), 64)}"
            f"{' (' + said + ')' if said else ''}: this Entrust account may not offer the look-up "
            "of third-party certificates by thumbprint, or no longer holds this one. The order "
            "is kept without its certificate."
        )
    if path.startswith("/customFields"):
        return "Custom fields are not enabled for this Entrust account."
    if path.startswith("/clients/"):
        return f"Entrust does not know this client or domain{': ' + said if said else ''}."
    return (
        f"Not found (HTTP 404 for {path}): check that the base URL ends in "
        f"/enterprise/v2/{': ' + said if said else ''}."
    )


def _connection(exc: errors.EcsConnectionError, host: str, has_cert: bool) -> str:
    detail = scrub(exc.detail or "", 200)
    if exc.problem == ConnectionProblem.TLS:
        low = detail.lower()
        if has_cert and any(w in low for w in ("alert", "certificate required", "bad cert")):
            return (
                f"TLS error: {host} rejected the client certificate during the handshake "
                f"({detail})."
            )
        return (
            f"TLS error: the secure connection to {host} failed ({detail}). Check that the "
            "base URL is right; if Entrust is reached through a gateway with a private CA, "
            "add its CA bundle."
        )
    if exc.problem == ConnectionProblem.PROXY:
        return (
            f"Proxy refused: the HTTPS proxy refused the connection or could not be reached "
            f"({detail}). Check the proxy URL here or in Admin › Settings."
        )
    if exc.problem == ConnectionProblem.DNS:
        return f"Host unreachable: the host name in {host} was not found. Check the base URL."
    if exc.problem == ConnectionProblem.REFUSED:
        return (
            f"Host unreachable: {host} refused the connection. Check the base URL and that "
            "the service is running."
        )
    if exc.problem == ConnectionProblem.UNREACHABLE:
        return f"Host unreachable: there is no route to {host}. Check the network or proxy."
    if exc.problem == ConnectionProblem.RESET:
        return f"The connection to {host} was cut off ({detail}). Try again."
    return f"Could not connect to {host} ({detail})."
