from datetime import timedelta

from tests.helpers import HTMX, PASSWORD
from webapp.audit.models import AuditEvent
from webapp.auth import service as auth
from webapp.dbtypes import utcnow
from webapp.extensions import db


def _actions():
    return [
        e.action
        for e in db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]


def test_login_page_and_sign_in(client):
    assert client.get("/login").status_code == 200
    assert client.get("/").status_code == 302  # signed out: sent to sign in
    resp = client.login("operator")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert _actions()[-1] == "auth.login"


def test_wrong_password_is_refused_in_words_and_audited(client):
    resp = client.login("operator", "wrong password!")
    assert resp.status_code == 401
    assert "Wrong user name or password." in resp.get_data(as_text=True)
    assert _actions()[-1] == "auth.login_failed"
    assert client.get("/").status_code == 302


def test_unknown_user_gets_the_same_message(client):
    resp = client.login("nobody", "whatever password")
    assert resp.status_code == 401 and "Wrong user name or password." in resp.get_data(as_text=True)


def test_repeated_failures_lock_the_account_for_a_while(client, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        assert client.login("operator", "bad password!").status_code == 401
    resp = client.login("operator")  # right password, but throttled
    assert resp.status_code == 401
    assert "Too many failed sign-in attempts" in resp.get_data(as_text=True)
    # Other accounts are unaffected (a browser of their own, with its own CSRF token).
    other = app.test_client()
    assert other.login("admin").status_code == 302


def test_throttle_expires(client, app):
    from webapp.auth.models import LoginAttempt

    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        client.login("operator", "bad password!")
    old = utcnow() - timedelta(minutes=app.config["LOGIN_LOCKOUT_MINUTES"] + 1)
    db.session.execute(db.update(LoginAttempt).values(at=old))
    db.session.commit()
    assert client.login("operator").status_code == 302


def test_logout_is_a_post_and_ends_the_session(admin_client):
    assert admin_client.get("/logout").status_code == 405
    resp = admin_client.post("/logout")
    assert resp.status_code == 302
    assert admin_client.get("/").status_code == 302
    assert _actions()[-1] == "auth.logout"


def test_session_cookie_flags(client):
    resp = client.login("admin")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    other = client.application.test_client()  # another browser, signing in over HTTPS
    https = other.post(
        "/login",
        base_url="https://localhost",
        data={"username": "admin", "password": PASSWORD},
        headers={"Referer": "https://localhost/login"},  # CSRF over HTTPS checks the referrer
    )
    assert https.status_code == 302 and "Secure" in https.headers.get("Set-Cookie", "")


def test_the_cookie_is_sent_again_only_when_the_session_changes(client):
    """The idle timeout notes the time of the latest request once a minute, not at every one:
    most responses carry no new cookie."""
    client.login("admin")
    client.get("/")  # the first page also makes the session's CSRF token
    assert "Set-Cookie" not in client.get("/").headers
    with client.session_transaction() as s:
        s["seen"] -= 61
    assert "certdesk_session=" in client.get("/").headers.get("Set-Cookie", "")


def test_session_is_renewed_at_login(client):
    client.get("/login")
    before = client.get_cookie("certdesk_session").value
    client.login("admin")
    assert client.get_cookie("certdesk_session").value != before


def test_idle_session_is_signed_out(admin_client):
    with admin_client.session_transaction() as s:
        s["seen"] = (utcnow() - timedelta(hours=2)).timestamp()
    resp = admin_client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert admin_client.get("/").status_code == 302


def test_expired_session_on_htmx_request_redirects_via_header(client):
    resp = client.get("/jobs/", headers=HTMX)
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")


def test_password_reset_ends_the_users_sessions(app, admin_client, operator_client, user):
    assert operator_client.get("/").status_code == 200
    auth.reset_password(user["admin"], user["operator"], "a brand new password")
    assert operator_client.get("/").status_code == 302


def test_safe_next_only(client):
    resp = client.post(
        "/login?next=https://evil.example/", data={"username": "admin", "password": PASSWORD}
    )
    assert resp.headers["Location"] == "/"
    resp2 = client.post("/logout")
    assert resp2.status_code == 302
    resp3 = client.post(
        "/login?next=/admin/users/", data={"username": "admin", "password": PASSWORD}
    )
    assert resp3.headers["Location"] == "/admin/users/"


# -- first-run setup --------------------------------------------------------------------------


def test_setup_needs_the_console_token_and_works_once(empty_app):
    from tests.conftest import Client

    empty_app.test_client_class = Client
    c = empty_app.test_client()
    assert "No administrator exists yet" in c.get("/login").get_data(as_text=True)
    token = auth.issue_setup_token()
    assert c.get("/setup").status_code == 403
    assert c.get("/setup?token=wrong").status_code == 403
    assert c.get(f"/setup?token={token}").status_code == 200
    bad = c.post(
        "/setup",
        data={"token": token, "username": "root", "password": "short", "password2": "short"},
    )
    assert bad.status_code == 422 and "at least 10" in bad.get_data(as_text=True)
    assert not auth.any_users()
    ok = c.post(
        "/setup",
        data={
            "token": token,
            "username": "Root",
            "password": "long enough pw",
            "password2": "long enough pw",
        },
    )
    assert ok.status_code == 302
    root = auth.by_username("root")
    assert root.role == "admin"
    assert c.get("/").status_code == 200  # signed in
    assert c.get(f"/setup?token={token}").status_code == 302  # one time only
    assert auth.issue_setup_token() is None


def test_create_admin_command(empty_app, monkeypatch):
    monkeypatch.setenv("CERTDESK_ADMIN_PASSWORD", "from the environment")
    result = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"])
    assert result.exit_code == 0, result.output
    assert auth.by_username("ops-lead").check_password("from the environment")
    again = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"])
    assert again.exit_code != 0 and "taken" in again.output


def test_many_failures_from_one_address_are_refused(client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for name in ("alpha", "beta", "gamma"):
        assert client.login(name, "guessing password").status_code == 401
    resp = client.login("admin")  # another account, same address
    assert resp.status_code == 401 and "Too many failed sign-in attempts" in resp.get_data(True)
    elsewhere = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert elsewhere.status_code == 302
