"""Security headers on every response, and the Secure cookie flag when served over HTTPS."""

from flask import g, request
from flask.sessions import SecureCookieSessionInterface

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


EVERY_RESPONSE = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def apply(response):
    """The headers above, each unless the response set its own."""
    h = response.headers
    present = {name.lower() for name, _value in h}  # one pass, not one per header added
    wanted = [*EVERY_RESPONSE]
    if over_https():
        wanted.append(("Strict-Transport-Security", "max-age=31536000"))
    if not request.path.startswith("/static/"):
        wanted.append(("Cache-Control", "no-store"))
    for name, value in wanted:
        if name.lower() not in present:
            h.add(name, value)
    return response


def over_https() -> bool:
    """The browser reached CertDesk over HTTPS: directly, or through a trusted reverse proxy that
    says so in X-Forwarded-Proto (webapp.auth.views)."""
    return request.is_secure or g.get("https_at_proxy", False)


class SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the browser came over HTTPS (or config says so)."""

    def __init__(self):
        self._serializers = {}

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or over_https()

    def get_signing_serializer(self, app):
        # Flask builds the cookie's serializer (which holds only its settings) at every request;
        # here once per secret key.
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer
