"""API users: HTTP Basic on every request, optional mTLS per user, and roles."""

from __future__ import annotations

import hmac
import secrets

from .ca import der_fingerprint, pem_fingerprint, subject_dn
from .errors import ApiError

ROLES = ("administrator", "requester")
PEER_CERT = "sandbox.peer_cert"  # the environ key holding the client's TLS certificate (DER)


def credentials(request):
    """The request's Authorization header as werkzeug parses it, or None when there is none or
    it cannot be read (Basic credentials that are not ASCII base64): such a caller is refused
    like one who sent none."""
    try:
        return request.authorization
    except ValueError:
        return None


def authenticate(sandbox, authorization, peer_cert_der: bytes | None) -> dict:
    """Return the API user for these credentials, or raise a 401 ApiError.

    The user's ``creator_name`` is what ECS shows as an order's creatorName: "the authenticated
    DN if created via API", the subject of the client certificate for a user who signs in with
    one, the username for a user who signs in with Basic alone."""
    if authorization is None or authorization.type != "basic":
        raise ApiError(401, "Authentication required", headers=_challenge())
    user = sandbox.store.get_user(authorization.username or "")
    given = (authorization.password or "").encode()
    if user is None or not hmac.compare_digest(given, user["api_key"].encode()):
        raise ApiError(401, "Invalid API username or key", headers=_challenge())
    needs_cert = (
        user["require_client_cert"] or sandbox.settings.fidelity.client_cert_required_for_all
    )
    if needs_cert:
        if not peer_cert_der:
            raise ApiError(401, "A client certificate is required for this API user")
        expected = user["cert_fingerprint"]
        if expected and der_fingerprint(peer_cert_der) != expected:
            raise ApiError(401, "The client certificate does not belong to this API user")
        return {**dict(user), "creator_name": subject_dn(peer_cert_der)}
    return {**dict(user), "creator_name": user["username"]}


def _challenge() -> dict:
    return {"WWW-Authenticate": 'Basic realm="Entrust Certificate Services"'}


def create_user(sandbox, username, api_key=None, role="administrator", require_cert=False) -> dict:
    """Create or replace an API user; mTLS users get a client certificate from the sandbox CA."""
    if not username or not isinstance(username, str):
        raise ValueError("username is required")
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError("apiKey must be text (or absent, for a generated one)")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    api_key = api_key or secrets.token_urlsafe(24)
    user = {
        "username": username,
        "apiKey": api_key,
        "role": role,
        "requireClientCert": bool(require_cert),
    }
    fingerprint = None
    if require_cert:
        cert, key = sandbox.store.ca.issue_client(username, sandbox.store.clock.now())
        fingerprint = pem_fingerprint(cert)
        user["clientCert"] = cert
        user["clientKey"] = key
    sandbox.store.put_user(username, api_key, role, bool(require_cert), fingerprint)
    return user
