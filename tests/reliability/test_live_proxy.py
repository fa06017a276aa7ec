"""Behind a reverse proxy named in Admin › Settings, through a real `certdesk serve`: the
server hands the proxy's X-Forwarded-For and X-Forwarded-Proto to CertDesk, which takes the
client's address from them (sign-in throttling, the audit trail) and, for HTTPS at the proxy,
marks the session cookie Secure. (waitress drops those headers unless told not to; the Flask
test client never goes through it.)"""

from __future__ import annotations

import requests
from sqlalchemy import select

from tests.conftest import make_app
from tests.helpers import PASSWORD
from tests.live import csrf_token, start_server, stop_server
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.extensions import db
from webapp.settings import service as settings


def _sign_in(server, client: str) -> requests.Response:
    http = requests.Session()
    proxied = {"X-Forwarded-For": client, "X-Forwarded-Proto": "https"}
    token = csrf_token(http, server.url + "/login")
    return http.post(
        server.url + "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token},
        headers=proxied,
        allow_redirects=False,
        timeout=30,
    )


def _last_sign_in(app) -> AuditEvent:
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.login")
            .order_by(AuditEvent.id.desc())
        ).scalar()
        db.session.remove()
        return event


def test_serve_hands_a_trusted_proxys_headers_to_certdesk(instance):
    app = make_app(instance, instance / "certdesk.db")
    server = start_server(instance)
    try:
        # No proxy named: the headers say nothing.
        resp = _sign_in(server, "198.51.100.7")
        assert resp.status_code == 302 and "Secure" not in resp.headers["Set-Cookie"]
        assert _last_sign_in(app).address == "127.0.0.1"

        with app.app_context():
            admin = db.session.execute(select(User).filter_by(username="admin")).scalar_one()
            settings.save(admin, {"security.trusted_proxies": "127.0.0.1"})
            db.session.remove()
        resp = _sign_in(server, "198.51.100.7")
        assert resp.status_code == 302
        assert "Secure" in resp.headers["Set-Cookie"]
        assert "Strict-Transport-Security" in resp.headers
        assert _last_sign_in(app).address == "198.51.100.7"
    finally:
        stop_server(server)
