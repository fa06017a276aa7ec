"""Rules that hold for every route: CSRF, read-only auditors, security headers, error pages."""

import json
import logging
import time

import pytest
from sqlalchemy import func, select

from tests.helpers import HTMX
from webapp.audit.models import AuditEvent
from webapp.extensions import db

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Routes any signed-in person (or nobody) may POST to: they change only the caller's own session
# or sign-in (signing in and out, the first set-up, one's own password).
SESSION_ROUTES = {"auth.login", "auth.logout", "auth.setup", "auth.change_password"}


def _sample_url(rule) -> str:
    from werkzeug.routing.converters import NumberConverter

    values = {}
    for name, conv in rule._converters.items():
        values[name] = 1 if isinstance(conv, NumberConverter) else "x"
    return rule.build(values, append_unknown=False)[1]


def _rules(app, methods):
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static" and r.methods & methods]


def test_every_changing_route_requires_a_csrf_token(app, admin_client):
    rules = _rules(app, CHANGING)
    assert len(rules) >= 5
    for rule in rules:
        for method in sorted(rule.methods & CHANGING):
            resp = admin_client.open(_sample_url(rule), method=method)
            assert resp.status_code == 400, (rule.rule, method, resp.status_code)
            assert "expired or was not sent from CertDesk" in resp.get_data(as_text=True)


def test_an_auditor_cannot_change_anything(app, auditor_client):
    before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    last = db.session.execute(select(func.max(AuditEvent.seq))).scalar()
    checked = 0
    for rule in _rules(app, CHANGING):
        if rule.endpoint in SESSION_ROUTES:
            continue
        for method in sorted(rule.methods & CHANGING):
            resp = auditor_client.open(
                _sample_url(rule),
                method=method,
                headers={"X-CSRFToken": auditor_client.csrf_token()},
                data={"role": "admin", "active": "0"},
            )
            assert resp.status_code == 403, (rule.rule, method, resp.status_code)
            checked += 1
    assert checked >= 3
    db.session.expire_all()
    # Each refusal is recorded (CD-7 #12), and nothing else was written.
    events = db.session.execute(select(AuditEvent).where(AuditEvent.seq > last)).scalars().all()
    assert len(events) == checked
    assert {(e.action, e.actor_name, e.outcome) for e in events} == {
        ("access.denied", "auditor", "refused")
    }
    # The trail gives each reason as the auditor read it, not in a web server's stock words.
    reasons = {json.loads(e.detail)["reason"] for e in events}
    assert all(r.startswith("Your role does not allow") for r in reasons), reasons
    after = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    assert after == before + checked


def test_every_page_carries_the_security_headers(app, admin_client):
    pages = [_sample_url(r) for r in _rules(app, {"GET"}) if not r.arguments]
    pages += ["/no-such-page", "/login"]
    for url in pages:
        resp = admin_client.get(url)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, url
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", url
        assert resp.headers.get("Referrer-Policy"), url
        assert "HX-Request" in resp.headers.get("Vary", ""), url
        assert resp.headers.get("X-Frame-Options") == "DENY", url
        assert resp.headers.get("Cross-Origin-Opener-Policy") == "same-origin", url
        assert resp.headers.get("Cache-Control") == "no-store", url
        assert "Strict-Transport-Security" not in resp.headers, url  # served over plain HTTP
        for name in ("Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
            assert len(resp.headers.getlist(name)) == 1, (url, name)
    static = admin_client.get("/static/css/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")
    secure = admin_client.get("/login", base_url="https://localhost")
    assert secure.headers.get("Strict-Transport-Security") == "max-age=31536000"


def test_pages_have_no_inline_scripts_or_styles(admin_client):
    for url in ["/", "/login", "/admin/users/", "/admin/audit/", "/jobs/"]:
        html = admin_client.get(url).get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and "<style" not in html, url
        assert " onclick=" not in html and " hx-on" not in html, url


def test_404_is_a_page_and_an_htmx_banner(admin_client):
    page = admin_client.get("/nowhere")
    assert page.status_code == 404 and "<html" in page.get_data(as_text=True)
    frag = admin_client.get("/nowhere", headers=HTMX)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 404 and "<html" not in body and "Not found" in body
    assert frag.headers["HX-Retarget"] == "#banner"


def test_the_403_and_404_pages_speak_of_certdesk_not_of_a_web_server(admin_client, operator_client):
    page = operator_client.get("/admin/users/").get_data(as_text=True)
    assert "Your role does not allow this page. An administrator can change your role" in page
    assert "read-protected" not in page
    for url in ("/nowhere", "/certificates/424242"):
        page = admin_client.get(url).get_data(as_text=True)
        assert "There is no such page: the address is wrong, or what it showed has been" in page
        assert "spelling" not in page
    # The banner an htmx request gets says the same.
    resp = operator_client.get("/nowhere", headers=HTMX)
    assert "There is no such page" in resp.get_data(as_text=True)
    # An address a button sends to (Check Order Status), opened as a page.
    resp = admin_client.get("/entrust/check")
    assert resp.status_code == 405
    page = resp.get_data(as_text=True)
    assert "This address is where a button or a form sends its work; it is not a page" in page
    assert "requested URL" not in page


def test_500_rolls_back_and_shows_a_page(app, admin_client, monkeypatch, caplog):
    from webapp.audit import service as audit
    from webapp.jobs import service as jobs

    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(limit=10):
        audit.record("test.half_done", actor="test")
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "recent", broken)
    before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar()
    with caplog.at_level(logging.ERROR):
        resp = admin_client.get("/")
    assert resp.status_code == 500
    # Logged once, with its traceback and the request it broke.
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and logged[0].getMessage() == "Exception on / [GET]", caplog.text
    assert "RuntimeError: boom" in caplog.text
    assert "Something went wrong" in resp.get_data(as_text=True)
    assert "boom" not in resp.get_data(as_text=True)
    frag = admin_client.get("/", headers=HTMX)
    assert frag.status_code == 500 and "<html" not in frag.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar() == before


def test_oversize_upload_is_refused_in_words(app, admin_client):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    resp = admin_client.post("/admin/users/new", data={"username": "x" * (2 * 1024 * 1024)})
    assert resp.status_code == 413 and "1 MiB limit" in resp.get_data(as_text=True)


def test_healthz_states_database_and_scheduler_without_login(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["database"] == "ok" and body["status"] == "ok"
    assert body["scheduler"]["enabled"] is False and body["scheduler"]["running"] is False
    text = resp.get_data(as_text=True).lower()
    assert "key" not in text and "password" not in text


def test_healthz_says_degraded_while_the_scheduler_cannot_write(app, client):
    """A database that answers reads but takes no writes: the scheduler's tick (it renews its
    lease) fails, and /healthz says so until a tick succeeds again."""
    from sqlalchemy import text

    sched = app.extensions["certdesk_scheduler"]
    sched.tick()
    assert sched.last_tick_ok is True and client.get("/healthz").status_code == 200
    db.session.execute(text("ALTER TABLE scheduler_lease RENAME TO scheduler_lease_away"))
    db.session.commit()
    sched.tick()
    resp = client.get("/healthz")
    assert resp.status_code == 503 and resp.get_json()["status"] == "degraded"
    assert (
        resp.get_json()["database"] == "ok"
        and resp.get_json()["scheduler"]["last_tick_ok"] is False
    )
    db.session.execute(text("ALTER TABLE scheduler_lease_away RENAME TO scheduler_lease"))
    db.session.commit()
    sched.tick()
    assert client.get("/healthz").get_json()["status"] == "ok"


@pytest.mark.parametrize("role,allowed", [("admin", True), ("operator", False), ("auditor", True)])
def test_audit_page_roles(app, role, allowed):
    from tests.conftest import Client

    app.test_client_class = Client
    c = app.test_client()
    c.login(role)
    assert (c.get("/admin/audit/").status_code == 200) is allowed


def test_a_session_keeps_one_csrf_token_and_only_its_own(app, admin_client, operator_client):
    # The token is signed once a session: a page a second later carries the same one (signed
    # afresh, its timestamp would differ), and it is accepted.
    first = admin_client.csrf_token()
    time.sleep(1.1)
    assert admin_client.csrf_token() == first
    other = operator_client.csrf_token()
    assert other != first
    # Another session's token is refused, and so is a token of an ended session.
    refused = admin_client.post("/logout", headers={"X-CSRFToken": other})
    assert refused.status_code == 400
    assert admin_client.post("/logout", headers={"X-CSRFToken": first}).status_code == 302
    admin_client.login("admin")
    renewed = admin_client.csrf_token()
    assert renewed != first
    assert admin_client.post("/logout", headers={"X-CSRFToken": first}).status_code == 400
    assert admin_client.post("/logout", headers={"X-CSRFToken": renewed}).status_code == 302


def test_with_a_time_limit_each_page_gets_a_fresh_csrf_token(app, admin_client):
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    first = admin_client.csrf_token()
    time.sleep(1.1)
    second = admin_client.csrf_token()
    assert second != first  # signed anew, so it never outlives the limit
    assert admin_client.post("/logout", headers={"X-CSRFToken": second}).status_code == 302


def test_a_response_keeps_the_headers_it_set_itself(app):
    from flask import Response

    from webapp.security import headers

    with app.test_request_context("/certificates/"):
        resp = headers.apply(
            Response("x", headers={"cache-control": "private, max-age=60", "X-Frame-Options": "X"})
        )
    assert resp.headers.getlist("Cache-Control") == ["private, max-age=60"]
    assert resp.headers.getlist("X-Frame-Options") == ["X"]
    assert resp.headers["Content-Security-Policy"] == headers.CSP


def test_trusted_hosts_refuse_a_name_the_server_is_not_reached_by(app, client):
    """CERTDESK_TRUSTED_HOSTS (README): a page of another site whose name its DNS points at
    CertDesk (DNS rebinding) gets a 400 page, not the sign-in form and its CSRF token."""
    app.config["TRUSTED_HOSTS"] = ["certdesk.example.com", "localhost"]
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as served: an error is a page, not a raise
    refused = client.get("/login", headers={"Host": "rebind.attacker.example"})
    assert refused.status_code == 400
    assert "not reached by this name" in refused.get_data(as_text=True)
    assert 'name="csrf_token"' not in refused.get_data(as_text=True)
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert client.get("/login", headers={"Host": "certdesk.example.com"}).status_code == 200
    assert client.get("/login").status_code == 200
