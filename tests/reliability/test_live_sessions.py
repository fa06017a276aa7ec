"""Sessions end on the server, tried against a real `certdesk serve`: a copy of the cookie taken
before sign-out opens nothing afterwards, an idle session is refused however fresh its cookie,
and an administrator's reset ends the user's open sessions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import requests

from tests.live import signed_in


def _copy(http: requests.Session) -> requests.Session:
    """Another client holding the same cookie (as someone who copied it would)."""
    thief = requests.Session()
    thief.cookies.update(http.cookies)
    return thief


def _status(http: requests.Session, url: str) -> int:
    return http.get(url, allow_redirects=False, timeout=30).status_code


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(live_server):
    admin = signed_in(live_server, "admin")
    users = live_server.url + "/admin/users/"
    thief = _copy(admin)
    assert _status(thief, users) == 200  # the copy works while the session is open
    assert (
        admin.post(live_server.url + "/logout", allow_redirects=False, timeout=30).status_code
        == 302
    )
    assert _status(thief, users) == 302
    assert _status(admin, users) == 302


def test_an_idle_session_is_refused_by_the_server(live_server):
    operator = signed_in(live_server, "operator")
    assert _status(operator, live_server.url + "/certificates/") == 200
    long_ago = (datetime.now(UTC) - timedelta(minutes=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(live_server.database) as conn:
        conn.execute("UPDATE user_session SET last_seen_at = ?", (long_ago,))
    resp = operator.get(live_server.url + "/certificates/", allow_redirects=False, timeout=30)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    page = operator.get(live_server.url + resp.headers["Location"], timeout=30).text
    assert "signed out after a period of inactivity" in page
    with sqlite3.connect(live_server.database) as conn:
        assert conn.execute("SELECT end_reason FROM user_session").fetchall() == [("idle",)]


def test_a_password_reset_ends_the_users_open_sessions(live_server):
    operator = signed_in(live_server, "operator")
    admin = signed_in(live_server, "admin")
    with sqlite3.connect(live_server.database) as conn:
        (operator_id,) = conn.execute("SELECT id FROM user WHERE username='operator'").fetchone()
    resp = admin.post(
        f"{live_server.url}/admin/users/{operator_id}/password",
        data={"password": "a brand new password", "password2": "a brand new password"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303
    assert _status(operator, live_server.url + "/") == 302
    assert _status(admin, live_server.url + "/") == 200
