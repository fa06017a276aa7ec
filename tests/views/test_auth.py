import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import HTMX, PASSWORD, together
from webapp.audit.models import AuditEvent
from webapp.auth import service as auth
from webapp.auth.models import LoginAttempt
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.settings import service as settings


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
    # The user name is kept and the cursor waits in the password field, which names the error.
    page = resp.get_data(as_text=True)
    assert re.search(r'name="username" [^>]*value="operator"', page)
    assert re.search(r'name="password" [^>]*autofocus[^>]*aria-describedby="login-error"', page)
    assert page.count("autofocus") == 1
    assert re.search(r'name="username" [^>]*autofocus', client.get("/login").get_data(True))


def test_unknown_user_gets_the_same_message(client):
    resp = client.login("nobody", "whatever password")
    assert resp.status_code == 401 and "Wrong user name or password." in resp.get_data(as_text=True)


ATTACKER = {"REMOTE_ADDR": "198.51.100.66"}
VICTIM = {"REMOTE_ADDR": "192.0.2.10"}


def _try(app, name, password, environ, headers=None):
    """A sign-in from a browser of its own (own cookie, own CSRF token) at ``environ``'s address."""
    from tests.conftest import Client

    app.test_client_class = Client
    browser = app.test_client()
    token = browser.csrf_token()
    return browser.post(
        "/login",
        data={"username": name, "password": password},
        environ_base=environ,
        headers={"X-CSRFToken": token, **(headers or {})},
        csrf=False,
    )


def _age_failures(by: timedelta) -> None:
    from webapp.auth.models import LoginAttempt

    for attempt in db.session.execute(db.select(LoginAttempt)).scalars():
        attempt.at -= by
    db.session.commit()


def test_a_password_typed_as_the_user_name_is_kept_nowhere(app, admin_client, auditor_client):
    """Typed in the wrong box, a password is no user's name: the audit trail (which auditors
    read, beside the sign-in that follows from the same address), the sign-in attempts and
    Admin > Users keep a fingerprint of it, never the text."""
    from webapp.auth.models import LoginAttempt

    typed = "Correct-Horse-42!"
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        assert _try(app, typed, "operator", ATTACKER).status_code == 401
    # The same text is still the same name to the throttles: it waits now.
    assert "Too many failed" in _try(app, typed, "operator", ATTACKER).get_data(True)
    assert _try(app, "operator", PASSWORD, VICTIM).status_code == 302
    events = db.session.execute(db.select(AuditEvent)).scalars().all()
    recorded = [v for e in events for v in (e.actor_name, e.object_id, e.detail)]
    recorded += [a.username for a in db.session.execute(db.select(LoginAttempt)).scalars()]
    assert not [v for v in recorded if "correct-horse" in str(v).lower()], recorded
    failed = {e.actor_name for e in events if e.action == "auth.login_failed"}
    assert len(failed) == 1 and failed.pop().startswith(auth.UNKNOWN_NAME_PREFIX)
    trail = auditor_client.get("/admin/audit/").get_data(as_text=True)
    assert "auth.login_failed" in trail and "correct-horse" not in trail.lower()
    export = auditor_client.get("/admin/audit/export.csv").get_data(as_text=True)
    assert "correct-horse" not in export.lower()
    users = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "No user's name" in users and "correct-horse" not in users.lower()


def test_an_attacker_slows_themselves_not_the_victim(app):
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        assert _try(app, "admin", "guess guess guess", ATTACKER).status_code == 401
    throttled = _try(app, "admin", PASSWORD, ATTACKER)  # even the right password must wait
    assert throttled.status_code == 429
    assert "Wait 1 second and try again" in throttled.get_data(as_text=True)
    # The administrator, from their own address, signs in at once, as often as they like.
    for _ in range(3):
        assert _try(app, "admin", PASSWORD, VICTIM).status_code == 302


def test_refused_sign_ins_are_noted_in_the_audit_trail_once_a_minute_per_address(app, monkeypatch):
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        _try(app, "operator", "guess guess guess", ATTACKER)
    for _ in range(4):  # refused by the throttle, the right password among them
        assert "Too many failed" in _try(app, "operator", PASSWORD, ATTACKER).get_data(True)
    events = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.action == "auth.login_throttled")
    ).scalars()
    noted = [(e.object_id, e.address, e.outcome) for e in events]
    operator = auth.by_username("operator")
    assert noted == [(str(operator.id), ATTACKER["REMOTE_ADDR"], "refused")]
    assert _actions().count("auth.login_failed") == free
    # Once the minute is over, the next refused try is noted again.
    monkeypatch.setattr(auth, "THROTTLED_NOTE_EVERY", timedelta(0))
    _try(app, "operator", PASSWORD, ATTACKER)
    assert _actions().count("auth.login_throttled") == 2


def test_a_users_failed_sign_ins_are_found_with_the_rest_of_their_events(
    app, admin_client, auditor_client
):
    """Every event about a user names them by id (user:<id>), their refused sign-ins and the
    clearing of their throttle too: filtered by that object, the trail and its export hold them
    all, with the address each refused try came from. A name no user has stays apart."""
    import csv
    import io

    operator = auth.by_username("operator")
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        assert _try(app, "operator", "guess guess guess", ATTACKER).status_code == 401
    assert "Too many failed" in _try(app, "operator", PASSWORD, ATTACKER).get_data(True)
    assert _try(app, "nobody-here", "guess guess guess", ATTACKER).status_code == 401
    resp = admin_client.post(
        "/admin/users/throttle/clear",
        data={"username": "operator", "address": ATTACKER["REMOTE_ADDR"]},
    )
    assert resp.status_code in (200, 302, 303)
    export = auditor_client.get(f"/admin/audit/export.csv?object=user:{operator.id}")
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    seen = [(r["action"], r["actor_name"], r["address"]) for r in rows]
    attacker = ATTACKER["REMOTE_ADDR"]
    assert seen.count(("auth.login_failed", "operator", attacker)) == free, seen
    assert ("auth.login_throttled", "operator", attacker) in seen
    assert [r["action"] for r in rows][0] == "auth.throttle_cleared"
    assert '"username": "operator"' in rows[0]["detail"]
    assert {r["object_id"] for r in rows} == {str(operator.id)}
    page = auditor_client.get(f"/admin/audit/?object=user:{operator.id}").get_data(as_text=True)
    assert page.count("auth.login_failed") >= free and "auth.login_throttled" in page
    stranger = db.session.execute(
        db.select(AuditEvent).where(
            AuditEvent.action == "auth.login_failed", AuditEvent.actor_name != "operator"
        )
    ).scalar_one()
    assert stranger.object_id == stranger.actor_name
    assert stranger.object_id.startswith(auth.UNKNOWN_NAME_PREFIX)


def test_each_failure_past_the_free_ones_doubles_the_wait(app):
    free = app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        _try(app, "operator", "guess guess guess", ATTACKER)
    waits = []
    for _ in range(4):
        _age_failures(timedelta(minutes=30))  # the wait has passed: one more guess goes through
        assert "Wrong user name" in _try(app, "operator", "guess", ATTACKER).get_data(True)
        waits.append(_try(app, "operator", "guess", ATTACKER).get_data(as_text=True))
    assert [w.split("Wait ")[1].split(" and")[0] for w in waits] == [
        "2 seconds",
        "4 seconds",
        "8 seconds",
        "16 seconds",
    ]


def test_the_wait_is_capped_and_ends(app):
    from webapp.auth.models import LoginAttempt

    for _ in range(40):
        db.session.add(
            LoginAttempt(username="operator", address=ATTACKER["REMOTE_ADDR"], success=False)
        )
    db.session.commit()
    page = _try(app, "operator", PASSWORD, ATTACKER).get_data(as_text=True)
    assert f"Wait {app.config['LOGIN_MAX_WAIT_MINUTES']} minutes" in page
    _age_failures(timedelta(minutes=app.config["LOGIN_MAX_WAIT_MINUTES"] + 1))
    assert _try(app, "operator", PASSWORD, ATTACKER).status_code == 302


def test_a_success_clears_the_users_own_failures(app):
    for _ in range(app.config["LOGIN_FREE_FAILURES"] - 1):
        _try(app, "operator", "typo typo typo", VICTIM)
    assert _try(app, "operator", PASSWORD, VICTIM).status_code == 302
    for _ in range(app.config["LOGIN_FREE_FAILURES"] - 1):
        assert _try(app, "operator", "typo typo typo", VICTIM).status_code == 401
    assert _try(app, "operator", PASSWORD, VICTIM).status_code == 302


def test_many_names_from_one_address_slow_that_address(app):
    app.config["LOGIN_FREE_FAILURES_PER_ADDRESS"] = 3
    for name in ("alpha", "beta", "gamma"):
        assert _try(app, name, "guessing password", ATTACKER).status_code == 401
    resp = _try(app, "admin", PASSWORD, ATTACKER)
    assert resp.status_code == 429 and "Too many failed sign-in attempts" in resp.get_data(True)
    wait = int(re.search(r"Wait (\d+) seconds?", resp.get_data(True))[1])
    assert 0 < int(resp.headers["Retry-After"]) == wait
    assert _try(app, "admin", PASSWORD, VICTIM).status_code == 302


def test_behind_a_trusted_proxy_each_client_is_throttled_on_its_own(app, user):
    from webapp.audit.models import AuditEvent
    from webapp.settings import service as settings

    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    settings.save(user["admin"], {"security.trusted_proxies": "10.0.0.0/24"})
    via = lambda client: {"X-Forwarded-For": f"{client}, 10.0.0.7"}  # noqa: E731
    for _ in range(app.config["LOGIN_FREE_FAILURES"]):
        _try(app, "admin", "guess guess guess", proxy, via("198.51.100.66"))
    assert _try(app, "admin", PASSWORD, proxy, via("198.51.100.66")).status_code == 429
    assert _try(app, "admin", PASSWORD, proxy, via("192.0.2.10")).status_code == 302
    last = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert last.action == "auth.login" and last.address == "192.0.2.10"


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(app, user):
    from webapp.audit.models import AuditEvent

    # No trusted proxy: a client cannot choose its address (nor dodge its own throttle).
    for n in range(app.config["LOGIN_FREE_FAILURES"]):
        _try(app, "admin", "guess guess guess", ATTACKER, {"X-Forwarded-For": f"203.0.113.{n}"})
    resp = _try(app, "admin", PASSWORD, ATTACKER, {"X-Forwarded-For": "203.0.113.99"})
    assert resp.status_code == 429
    last = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert last.address == ATTACKER["REMOTE_ADDR"]


def test_the_trusted_proxies_setting_is_checked(admin_client):
    resp = admin_client.post(
        "/admin/settings/", data={"security.trusted_proxies": "10.0.0.5, proxy.example.com"}
    )
    assert resp.status_code == 422 and "is not an IP address or network" in resp.get_data(True)


@pytest.mark.parametrize(
    "everyone", ["0.0.0.0/0", "10.0.0.5, 0.0.0.0/1", "::/0", "2000::/3", "::ffff:0:0/96"]
)
def test_trusted_proxies_that_take_in_nearly_every_address_are_refused(
    app, admin_client, user, everyone
):
    settings.save(user["admin"], {"security.trusted_proxies": "10.0.0.0/24"})
    resp = admin_client.post("/admin/settings/", data={"security.trusted_proxies": everyone})
    assert resp.status_code == 422 and "nearly every address" in resp.get_data(True)
    assert settings.get(auth.TRUSTED_PROXIES) == "10.0.0.0/24"
    resp = admin_client.post(
        "/admin/settings/", data={"security.trusted_proxies": "10.0.0.0/8, fd00::/32"}
    )
    assert resp.status_code in (200, 303)
    assert settings.get(auth.TRUSTED_PROXIES) == "10.0.0.0/8, fd00::/32"


def test_a_dual_stack_server_sees_ipv4_peers_and_proxies_as_ipv4(app, user):
    """An IPv6 socket that takes IPv4 too gives each IPv4 peer as ::ffff:a.b.c.d: a proxy named
    by its IPv4 address is still trusted (X-Forwarded-Proto too), the client recorded is the one
    it names, and a network that holds every IPv4 address written as IPv6 trusts no one."""
    from webapp.audit.models import AuditEvent

    mapped_proxy = {"REMOTE_ADDR": "::ffff:127.0.0.2"}
    settings.save(user["admin"], {"security.trusted_proxies": "127.0.0.2, ::ffff:10.0.0.0/120"})
    assert settings.get(auth.TRUSTED_PROXIES) == "127.0.0.2/32, 10.0.0.0/24"
    forwarded = {"X-Forwarded-For": "::ffff:198.51.100.9", "X-Forwarded-Proto": "https"}
    resp = _try(app, "admin", PASSWORD, mapped_proxy, forwarded)
    assert resp.status_code == 302 and "Secure" in resp.headers["Set-Cookie"]
    last = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert last.address == "198.51.100.9"
    # A wide IPv6 network that happens to hold the mapped addresses (::/64) is no IPv4 proxy.
    settings.save(user["admin"], {"security.trusted_proxies": "::/64"})
    _try(app, "admin", PASSWORD, {"REMOTE_ADDR": "::ffff:203.0.113.5"}, forwarded)
    last = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert last.address == "203.0.113.5"


@pytest.mark.parametrize(
    ("sent", "recorded"),
    [
        ("fe80::1%zz evil", "10.0.0.5"),  # a scope id: no address, nothing beyond it trusted
        ("[2001:DB8:0::1]", "2001:db8::1"),  # one address, one spelling
        ("::ffff:6.6.6.5", "6.6.6.5"),
        ("not-an-address", "10.0.0.5"),
    ],
)
def test_forwarded_addresses_are_recorded_one_way_or_not_at_all(app, user, sent, recorded):
    from webapp.audit.models import AuditEvent

    settings.save(user["admin"], {"security.trusted_proxies": "10.0.0.5"})
    _try(app, "admin", PASSWORD, {"REMOTE_ADDR": "10.0.0.5"}, {"X-Forwarded-For": sent})
    last = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.seq.desc())).scalar()
    assert last.action == "auth.login" and last.address == recorded


def test_an_administrator_sees_and_clears_slowed_sign_ins(app, admin_client):
    for _ in range(app.config["LOGIN_FREE_FAILURES"]):
        _try(app, "operator", "guess guess guess", ATTACKER)
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    assert 'id="throttled-table"' in page and ATTACKER["REMOTE_ADDR"] in page
    # Each header has a name, and each row's button says which sign-ins it lets through.
    table = page.split('id="throttled-table"')[1].split("</table>")[0]
    assert "<th></th>" not in table
    assert (
        'Let it sign in now<span class="visually-hidden">: operator from '
        f"{ATTACKER['REMOTE_ADDR']}</span></button>"
    ) in table
    resp = admin_client.post(
        "/admin/users/throttle/clear",
        data={"username": "operator", "address": ATTACKER["REMOTE_ADDR"]},
    )
    assert resp.status_code == 303
    assert _try(app, "operator", PASSWORD, ATTACKER).status_code == 302
    assert "auth.throttle_cleared" in _actions()


def test_guesses_spread_over_many_addresses_slow_the_name_but_not_its_owners_addresses(
    app, admin_client
):
    assert _try(app, "operator", PASSWORD, VICTIM).status_code == 302  # the owner's address
    # An address the owner last signed in from longer ago than LOGIN_KNOWN_ADDRESS_DAYS is not
    # theirs any more (an address changes hands).
    days = app.config["LOGIN_KNOWN_ADDRESS_DAYS"]
    long_ago = utcnow() - timedelta(days=days + 1)
    old = {"REMOTE_ADDR": "192.0.2.77"}
    db.session.add(
        LoginAttempt(at=long_ago, username="operator", address="192.0.2.77", success=True)
    )
    db.session.commit()
    spread = app.config["LOGIN_FREE_FAILURES_PER_NAME"]
    for n in range(spread):  # one guess each from as many addresses: no address is slowed
        resp = _try(app, "operator", "guess guess guess", {"REMOTE_ADDR": f"203.0.113.{n}"})
        assert "Wrong user name or password." in resp.get_data(as_text=True)
    # From an address it has not signed in from, even the right password must wait now...
    new = {"REMOTE_ADDR": "198.51.100.200"}
    refused = _try(app, "operator", PASSWORD, new)
    assert refused.status_code == 429 and "Too many failed" in refused.get_data(as_text=True)
    assert _try(app, "operator", PASSWORD, old).status_code == 429
    # ...while the owner signs in from their own, and other users anywhere.
    assert _try(app, "operator", PASSWORD, VICTIM).status_code == 302
    assert _try(app, "admin", PASSWORD, new).status_code == 302
    # An administrator sees it and lets the name sign in from anywhere again.
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    table = page.split('id="throttled-table"')[1].split("</table>")[0]
    assert "Any address the user has not signed in from lately" in table
    resp = admin_client.post("/admin/users/throttle/clear", data={"username": "operator"})
    assert resp.status_code == 303
    assert _try(app, "operator", PASSWORD, new).status_code == 302
    cleared = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.action == "auth.throttle_cleared")
    ).scalar_one()
    assert cleared.object_id == str(auth.by_username("operator").id)
    assert json.loads(cleared.detail)["failures"] == spread


def test_slowed_sign_ins_are_looked_for_among_the_newest_failures_only(
    app, admin_client, monkeypatch
):
    """A sign-in attack from many addresses fills the failure window: Admin > Users groups only
    the newest failures (grouping every one took the page about a second at 100,000), says so,
    and still counts each pair it lists in full."""
    from webapp.auth.models import LoginAttempt

    monkeypatch.setattr(auth, "SLOWED_LOOKED_AT", 40, raising=False)
    now = utcnow()

    def failed(name, address, minutes_ago):
        return LoginAttempt(
            username=name, address=address, success=False, at=now - timedelta(minutes=minutes_ago)
        )

    free = app.config["LOGIN_FREE_FAILURES"]
    # Slowed two hours ago, then 40 newer failures, one from each of as many addresses...
    db.session.add_all(failed("operator", "192.0.2.99", 120 + i) for i in range(free))
    db.session.add_all(failed(f"guess{i}", f"203.0.113.{i}", 60) for i in range(40))
    # ...and a pair slowed just now, with older failures beyond those looked at.
    db.session.add_all(failed("admin", "198.51.100.5", m) for m in (1, 2, 3, 4, 5, 200, 201))
    db.session.commit()
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    table = page.split('id="throttled-table"')[1].split("</table>")[0]
    assert "198.51.100.5" in table and "192.0.2.99" not in table
    assert re.search(r"<td>198\.51\.100\.5</td>\s*<td>7</td>", table)  # counted in full
    assert 'id="slowed-looked-at"' in page and "newest 40 failed sign-ins" in page
    # Once the window holds no more than are looked at, every slowed pair is listed.
    monkeypatch.setattr(auth, "SLOWED_LOOKED_AT", 100)
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "192.0.2.99" in page and 'id="slowed-looked-at"' not in page


def test_an_address_stays_known_while_its_success_is_kept(app):
    from webapp.auth.models import LoginAttempt

    now = utcnow()
    for age, ok in ((1, False), (3, False), (3, True), (29, True), (31, True)):
        db.session.add(
            LoginAttempt(
                username="operator",
                address=f"192.0.2.{age}",
                success=ok,
                at=now - timedelta(days=age),
            )
        )
    db.session.commit()
    auth.prune_login_attempts()
    db.session.commit()
    kept = db.session.execute(db.select(LoginAttempt.address, LoginAttempt.success)).all()
    assert sorted(kept) == [("192.0.2.1", False), ("192.0.2.29", True), ("192.0.2.3", True)]


def test_sign_in_does_the_same_password_work_for_every_name(app, user, monkeypatch):
    from webapp.auth.models import User

    checked = []
    real = User.verify_password

    def spy(password_hash, password):
        checked.append(password_hash.split("$")[0])  # the method and its cost parameters
        return real(password_hash, password)

    monkeypatch.setattr(User, "verify_password", staticmethod(spy))
    auth.set_active(user["admin"], user["auditor"], False)
    for name in ("operator", "nobody-by-this-name", "x" * 80, "auditor"):
        checked.clear()
        assert _try(app, name, "wrong password!", VICTIM).status_code == 401
        assert checked == [user["operator"].password_hash.split("$")[0]], name


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


def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(app, user):
    """A TLS-terminating proxy named in Trusted reverse proxies says the browser came over HTTPS
    (X-Forwarded-Proto): the session cookie is Secure and HSTS is sent. From anyone else, or
    saying http, the header changes nothing."""
    from webapp.settings import service as settings

    settings.save(user["admin"], {"security.trusted_proxies": "10.0.0.0/24"})

    def sign_in(remote, proto):
        return _try(app, "admin", PASSWORD, {"REMOTE_ADDR": remote}, {"X-Forwarded-Proto": proto})

    via_proxy = sign_in("10.0.0.5", "https")
    assert via_proxy.status_code == 302
    assert "Secure" in via_proxy.headers["Set-Cookie"]
    assert via_proxy.headers["Strict-Transport-Security"] == "max-age=31536000"
    others = (("10.0.0.5", "http"), ("10.0.0.5", "http, https"), ("192.0.2.7", "https"))
    for remote, proto in others:
        plain = sign_in(remote, proto)
        assert plain.status_code == 302, (remote, proto)
        assert "Secure" not in plain.headers["Set-Cookie"], (remote, proto)
        assert "Strict-Transport-Security" not in plain.headers, (remote, proto)


def test_the_cookie_is_signed_with_the_current_secret_key(app, admin_client):
    assert admin_client.get("/").status_code == 200
    old = app.secret_key
    app.secret_key = "another secret key"  # rotated, the old key kept as a fallback: it opens
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert admin_client.get("/").status_code == 200
    app.secret_key = "a third secret key"  # and without it, it does not
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert admin_client.get("/").status_code == 302


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


def test_the_cookie_outlives_the_idle_timeout_so_the_server_can_say_why_it_ended(app):
    """The server ends an idle session; the browser keeps its cookie for the session's longest
    life (12 hours), not just the idle timeout, so that the next request is told "signed out
    after a period of inactivity" rather than a bare "signed out"."""
    from email.utils import parsedate_to_datetime

    from tests.conftest import Client

    app.test_client_class = Client
    browser = app.test_client()
    token = browser.csrf_token()
    resp = browser.post(
        "/login",
        data={"username": "admin", "password": PASSWORD},
        headers={"X-CSRFToken": token},
        csrf=False,
    )
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    lasts = expires - utcnow().replace(tzinfo=expires.tzinfo)
    assert timedelta(hours=11, minutes=59) < lasts <= timedelta(hours=12)


def test_idle_session_is_signed_out_on_the_server(admin_client):
    from webapp.auth.models import UserSession

    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    resp = admin_client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "signed out after a period of inactivity" in page
    assert admin_client.get("/").status_code == 302
    db.session.expire_all()
    assert row.ended_at is not None and row.end_reason == "idle"


def test_a_session_ends_at_its_time_limit_however_active(admin_client):
    """A copied cookie replayed every few minutes keeps a session from going idle; it still
    ends SESSION_MAX_HOURS (12) after its sign-in."""
    from webapp.auth.models import UserSession

    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.created_at = utcnow() - timedelta(hours=11, minutes=58)
    db.session.commit()
    assert admin_client.get("/").status_code == 200
    row.created_at = utcnow() - timedelta(hours=12, minutes=1)
    row.last_seen_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    resp = admin_client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Your session reached its time limit" in page
    db.session.expire_all()
    assert row.ended_at is not None and row.end_reason == "expired"
    assert admin_client.get("/").status_code == 302


def test_a_session_seen_recently_stays_open(admin_client):
    from webapp.auth.models import UserSession

    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    db.session.commit()
    assert admin_client.get("/").status_code == 200
    db.session.expire_all()
    assert row.ended_at is None and row.last_seen_at > utcnow() - timedelta(minutes=1)


def test_a_cookie_without_a_server_session_is_signed_out(app, admin_client):
    with admin_client.session_transaction() as s:
        s["sid"] = "made-up"
    resp = admin_client.get("/admin/users/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_expired_session_on_htmx_request_redirects_via_header(client):
    resp = client.get("/jobs/", headers=HTMX)
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")


def _next(location: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    assert urlsplit(location).path == "/login", location
    return parse_qs(urlsplit(location).query).get("next", [None])[0]


def test_signed_out_a_part_of_a_page_brings_back_the_page_it_is_on(client):
    """A progress bar polled or a list's part asked for once signed out: the browser comes back
    to the page it showed after signing in, not to the part alone."""
    shown = {**HTMX, "HX-Current-URL": "http://localhost/entrust/?status=ISSUED"}
    resp = client.get("/jobs/7", headers=shown)
    assert (
        resp.status_code == 401 and _next(resp.headers["HX-Redirect"]) == "/entrust/?status=ISSUED"
    )
    assert "Sign in to continue." in client.get("/login").get_data(as_text=True)
    # The page itself sorted or filtered: the list comes back as asked.
    resp = client.get("/entrust/?sort=-created", headers=shown)
    assert _next(resp.headers["HX-Redirect"]) == "/entrust/?sort=-created"
    # A page that is not CertDesk's is not come back to.
    for foreign in ("http://evil.example/entrust/", "javascript:alert(1)", "", "/entrust/"):
        resp = client.get("/jobs/7", headers={**HTMX, "HX-Current-URL": foreign})
        assert resp.status_code == 401 and _next(resp.headers["HX-Redirect"]) is None, foreign


def test_signed_out_elsewhere_a_button_of_a_page_leads_to_sign_in(admin_client):
    """Signed out in another tab, the page's CSRF token went with the session: a button then
    leads to the sign-in page and back to the page, rather than to "the form had expired"."""
    token = admin_client.csrf_token()
    admin_client.post("/logout")
    shown = {**HTMX, "HX-Current-URL": "http://localhost/admin/audit/", "X-CSRFToken": token}
    resp = admin_client.post("/admin/audit/verify", headers=shown, csrf=False)
    assert resp.status_code == 401 and _next(resp.headers["HX-Redirect"]) == "/admin/audit/"
    assert "Sign in to continue." in admin_client.get("/login").get_data(as_text=True)
    assert "audit.verify" not in _actions()


def test_signed_out_while_idle_a_form_sent_comes_back_to_its_page(admin_client):
    """A form's POST address is no page to come back to (a GET of it is refused): the page the
    form was on is."""
    from webapp.auth.models import UserSession

    token = admin_client.csrf_token()
    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    resp = admin_client.post(
        "/admin/audit/verify",
        headers={"X-CSRFToken": token, "Referer": "http://localhost/admin/audit/?action=x"},
        csrf=False,
    )
    assert resp.status_code == 302 and _next(resp.headers["Location"]) == "/admin/audit/?action=x"
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "signed out after a period of inactivity" in page


def test_password_reset_ends_the_users_sessions(app, admin_client, operator_client, user):
    assert operator_client.get("/").status_code == 200
    auth.reset_password(user["admin"], user["operator"], "a brand new password")
    resp = operator_client.get("/")
    assert resp.status_code == 302
    # The user is told who changed it, and that the new password comes from them.
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "An administrator reset your password" in page and "they give you" in page
    page = admin_client.get(f"/admin/users/{user['operator'].id}").get_data(as_text=True)
    assert "password reset by an administrator" in page


def _open_sessions(user) -> int:
    from webapp.auth.models import UserSession

    db.session.expire_all()
    return db.session.execute(
        db.select(db.func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    ).scalar_one()


def test_role_change_and_disable_end_the_users_sessions(app, admin_client, user):
    from tests.conftest import Client

    app.test_client_class = Client
    for change in (
        lambda: auth.change_role(user["admin"], user["operator"], "auditor"),
        lambda: auth.set_active(user["admin"], user["operator"], False),
    ):
        browser = app.test_client()
        assert browser.login("operator").status_code == 302
        assert _open_sessions(user["operator"]) == 1
        change()
        assert _open_sessions(user["operator"]) == 0
        assert browser.get("/jobs/").status_code == 302
        auth.set_active(user["admin"], user["operator"], True)


def test_an_administrator_sees_and_ends_a_users_sessions(admin_client, operator_client, user):
    operator = user["operator"]
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert 'id="sessions-table"' in page and "End the open session" in page
    resp = admin_client.post(f"/admin/users/{operator.id}/sessions/end")
    assert resp.status_code == 303
    assert "1 open session of operator ended" in admin_client.get(
        resp.headers["Location"]
    ).get_data(as_text=True)
    assert operator_client.get("/").status_code == 302
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert "ended by an administrator" in page and "End all" not in page
    assert _actions()[-1] == "user.sessions_ended"


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
    client.post("/logout")
    resp4 = client.post(
        "/login?next=/%09/evil.example/", data={"username": "admin", "password": PASSWORD}
    )
    assert resp4.headers["Location"] == "/"  # browsers drop the tab: //evil.example/


# -- first-run setup --------------------------------------------------------------------------


def test_before_setup_the_start_page_points_to_setup_not_to_signing_in(empty_app):
    """A newcomer's first page: with no user yet there is nobody to sign in as, so the page
    says how to make the first administrator and does not ask them to sign in."""
    from tests.conftest import Client

    empty_app.test_client_class = Client
    c = empty_app.test_client()
    page = c.get("/", follow_redirects=True).get_data(as_text=True)
    assert "No administrator exists yet" in page
    assert "Sign in to continue." not in page


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
    differ = c.post(
        "/setup",
        data={"token": token, "username": "root", "password": "long enough pw", "password2": "x"},
    ).get_data(as_text=True)
    assert "The passwords differ: type the new password in both boxes again." in differ
    # Both password boxes come back empty: the cursor is in the first of them.
    assert 'value="long enough pw"' not in differ
    assert re.search(r'<input id="password" [^>]*autofocus', differ)
    assert differ.count("autofocus") == 1
    assert not auth.any_users()
    full = {
        "token": token,
        "username": "Root",
        "email": "root@example",
        "password": "long enough pw",
        "password2": "long enough pw",
    }
    bad_email = c.post("/setup", data=full).get_data(as_text=True)
    assert "Enter an e-mail address such as name@example.com, or leave it empty." in bad_email
    assert re.search(r'<input id="email" [^>]*autofocus', bad_email)
    assert 'value="root@example"' in bad_email and 'value="Root"' in bad_email
    assert not auth.any_users()
    # Several mistakes at once: each is named, the cursor in the first field in error.
    several = c.post(
        "/setup",
        data=full | {"username": "no spaces please", "password": "short", "password2": "short2"},
    ).get_data(as_text=True)
    for words in (
        "Use 1-64 letters, digits, dots, dashes, underscores or @.",
        "Enter an e-mail address such as name@example.com, or leave it empty.",
        "Use at least 10 characters.",
        "The passwords differ: type the new password in both boxes again.",
    ):
        assert words in several, words
    for field in ("username", "email", "password", "password2"):
        assert re.search(rf'<input id="{field}" [^>]*aria-invalid="true"', several), field
    assert re.search(r'<input id="username" [^>]*autofocus', several)
    assert several.count("autofocus") == 1
    assert not auth.any_users()
    ok = c.post("/setup", data=full | {"email": "root@example.com"})
    assert ok.status_code == 302
    root = auth.by_username("root")
    assert root.role == "admin"
    assert root.email == "root@example.com"
    assert c.get("/").status_code == 200  # signed in
    # Admin › Users shows that sign-in, not "last sign-in never" beside an open session.
    assert root.last_login_at is not None
    assert "last sign-in never" not in c.get(f"/admin/users/{root.id}").get_data(as_text=True)
    assert c.get(f"/setup?token={token}").status_code == 302  # one time only
    assert auth.issue_setup_token() is None


def test_a_refused_first_run_setup_is_audited_without_what_was_typed(empty_app):
    """Attempts to make the first administrator that are refused leave a trace: a wrong or
    missing token sent (access.denied, by "anonymous"), and bad input with the right one
    (user.create, failure, with the name asked for and why); no password or token is kept.
    Only opening the page with a wrong token records nothing."""
    from tests.conftest import Client

    empty_app.test_client_class = Client
    c = empty_app.test_client()
    token = auth.issue_setup_token()

    def events():
        db.session.expire_all()
        rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
        return [(e.action, e.actor_name, e.outcome, json.loads(e.detail)) for e in rows]

    assert c.get("/setup?token=wrong").status_code == 403
    assert events() == []
    secret = "a long enough password"
    form = {"username": "root", "password": secret, "password2": secret}
    assert c.post("/setup", data=form | {"token": "wrong"}).status_code == 403
    assert (
        c.post("/setup", data=form | {"token": token, "password2": "x" + secret}).status_code == 422
    )
    assert c.post("/setup", data=form | {"token": token, "username": "ro/ot"}).status_code == 422
    refused = "This setup link is missing its token or is no longer valid."
    via = {"via": "first-run setup"}
    assert events() == [
        (
            "access.denied",
            "anonymous",
            "refused",
            {"method": "POST", "path": "/setup", "reason": refused},
        ),
        (
            "user.create",
            "anonymous",
            "failure",
            via
            | {
                "username": "root",
                "reason": "The passwords differ: type the new password in both boxes again.",
                "field": "password2",
            },
        ),
        (
            "user.create",
            "anonymous",
            "failure",
            via
            | {
                "username": "ro/ot",
                "reason": "Use 1-64 letters, digits, dots, dashes, underscores or @.",
                "field": "username",
            },
        ),
    ]
    trail = " ".join(e.detail for e in db.session.execute(select(AuditEvent)).scalars())
    assert secret not in trail and token not in trail and "wrong" not in trail
    assert not auth.any_users()
    assert c.post("/setup", data=form | {"token": token}).status_code == 302
    assert [e[:3] for e in events()][-1] == ("user.create", "root", "success")


def test_create_admin_command(empty_app, monkeypatch):
    monkeypatch.setenv("CERTDESK_ADMIN_PASSWORD", "from the environment")
    result = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"])
    assert result.exit_code == 0, result.output
    assert auth.by_username("ops-lead").check_password("from the environment")
    again = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"])
    assert again.exit_code != 0 and "taken" in again.output
    system = empty_app.test_cli_runner().invoke(args=["create-admin", "scheduler"])
    assert system.exit_code != 0 and "choose another user name" in system.output
    assert auth.by_username("scheduler") is None


def test_create_admin_takes_a_full_name_and_an_e_mail_address(empty_app, monkeypatch):
    monkeypatch.setenv("CERTDESK_ADMIN_PASSWORD", "from the environment")
    cli = empty_app.test_cli_runner()
    bad = cli.invoke(args=["create-admin", "ops-lead", "--email", "ops@lead"])
    assert bad.exit_code != 0
    assert "--email 'ops@lead': Enter an e-mail address such as name@example.com" in bad.output
    assert auth.by_username("ops-lead") is None
    args = ["create-admin", "ops-lead", "--full-name", "Ops Lead", "--email", "ops@example.com"]
    assert cli.invoke(args=args).exit_code == 0
    made = auth.by_username("ops-lead")
    assert (made.full_name, made.email, made.role) == ("Ops Lead", "ops@example.com", "admin")


def test_create_admin_says_which_of_name_and_password_it_refused(empty_app, monkeypatch):
    monkeypatch.setenv("CERTDESK_ADMIN_PASSWORD", "short")
    result = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"])
    assert result.exit_code == 1
    assert "Error: the password of CERTDESK_ADMIN_PASSWORD: Use at least 10 characters." in (
        result.output
    )
    monkeypatch.delenv("CERTDESK_ADMIN_PASSWORD")
    typed = empty_app.test_cli_runner().invoke(
        args=["create-admin", "ops-lead"], input="aaaaaaaaaaaa\naaaaaaaaaaaa\n"
    )
    assert typed.exit_code == 1
    assert "Error: the password: That password is among the first" in typed.output
    named = empty_app.test_cli_runner().invoke(args=["create-admin", "ops/lead"])
    assert named.exit_code == 1
    assert "Error: the user name 'ops/lead': Use 1-64 letters, digits" in named.output
    assert "Password" not in named.output  # refused before a password is asked for
    assert auth.by_username("ops-lead") is None
    auth.create_user(None, "ops-lead", "a long enough password", "admin")
    taken = empty_app.test_cli_runner().invoke(args=["create-admin", "OPS-lead"])
    assert taken.exit_code == 1
    assert "Error: the user name 'OPS-lead' is taken: choose another" in taken.output
    assert "Password" not in taken.output


def test_create_admin_without_a_terminal_or_a_password_says_what_to_do(empty_app, monkeypatch):
    monkeypatch.delenv("CERTDESK_ADMIN_PASSWORD", raising=False)
    result = empty_app.test_cli_runner().invoke(args=["create-admin", "ops-lead"], input="")
    assert result.exit_code == 1
    assert "set CERTDESK_ADMIN_PASSWORD, or run the command at a terminal" in result.output
    assert auth.by_username("ops-lead") is None
    typed = empty_app.test_cli_runner().invoke(
        args=["create-admin", "ops-lead"], input="piped in at last\npiped in at last\n"
    )
    assert typed.exit_code == 0, typed.output  # a password on the input still does
    assert auth.by_username("ops-lead").check_password("piped in at last")


def test_guesses_sent_together_each_count_the_ones_before_them(app):
    """Eight wrong passwords at once, one short of the wait: one is checked, seven must wait.
    (Each guess used to pass the throttle before any of them was recorded.)"""
    from webapp.auth.models import LoginAttempt

    address = ATTACKER["REMOTE_ADDR"]
    for _ in range(app.config["LOGIN_FREE_FAILURES"] - 1):
        db.session.add(LoginAttempt(username="operator", address=address, success=False))
    db.session.commit()

    def guess():
        try:
            auth.authenticate("operator", "guess guess guess", address)
        except auth.LoginRefused as exc:
            return str(exc).split(".")[0]

    answers = together(app, *[guess] * 8)
    assert sorted(answers) == ["Too many failed sign-in attempts from your address"] * 7 + [
        "Wrong user name or password"
    ]
    failures = db.session.execute(
        db.select(db.func.count()).select_from(LoginAttempt).where(LoginAttempt.success.is_(False))
    ).scalar()
    assert failures == app.config["LOGIN_FREE_FAILURES"]


def test_one_user_signing_in_from_several_browsers_at_once_is_not_slowed(app):
    """Eight right passwords at once from one address: each is answered, none made to wait
    behind the others' tries."""

    def sign_in():
        return auth.authenticate("operator", PASSWORD, ATTACKER["REMOTE_ADDR"])[0].username

    assert together(app, *[sign_in] * 8) == ["operator"] * 8


def test_failures_are_kept_as_long_as_the_failure_window_counts_them(app):
    from webapp.auth.models import LoginAttempt

    app.config["LOGIN_FAILURE_WINDOW_HOURS"] = 24 * 7
    now = utcnow()
    for age in (1, 3, 6, 8):
        db.session.add(
            LoginAttempt(
                username="operator",
                address=f"192.0.2.{age}",
                success=False,
                at=now - timedelta(days=age),
            )
        )
    db.session.commit()
    auth.prune_login_attempts()
    kept = db.session.execute(db.select(LoginAttempt.address)).scalars().all()
    assert sorted(kept) == ["192.0.2.1", "192.0.2.3", "192.0.2.6"]
    # A week's failures still slow the name from an address it never signed in from.
    name = auth.throttles("operator", "198.51.100.7", now)[-1]
    assert name.failures == 3


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda admin, op: auth.change_role(admin, op, "auditor"),
            "An administrator changed your role",
        ),
        (
            lambda admin, op: auth.set_active(admin, op, False),
            "An administrator disabled your account",
        ),
    ],
)
def test_a_form_sent_after_the_users_role_was_lowered_is_refused_and_says_why(
    app, admin_client, operator_client, user, sandbox, change, said
):
    """An operator has a credential's row open; an administrator lowers their role (or disables
    them) meanwhile. The operator's next click is refused, nothing is sent to Entrust, and the
    sign-in page says why they were signed out."""
    from webapp.credentials import service as credentials

    cred, _ = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name="Row",
            api_user=sandbox.api_user,
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
        ),
        start_sync=False,
    )
    token = operator_client.csrf_token()  # the page the operator has open
    change(user["admin"], user["operator"])
    sandbox.clear_requests()
    resp = operator_client.post(
        f"/entrust/manage/credentials/{cred.id}/test",
        headers={"X-CSRFToken": token, "Referer": "http://localhost/entrust/manage/"},
        csrf=False,
    )
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert sandbox.requests() == []
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert said in page and "What you sent was not saved or done." in page
    db.session.expire_all()
    assert credentials.get(cred.id).last_test_at is None


def test_a_page_opened_after_signing_out_in_another_tab_says_so(app, user):
    from tests.conftest import Client
    from webapp.auth.models import UserSession

    app.test_client_class = Client
    browser = app.test_client()
    assert browser.login("operator").status_code == 302
    token = browser.csrf_token()
    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.ended_at, row.end_reason = utcnow(), "signed out"
    db.session.commit()
    resp = browser.get("/jobs/")
    assert resp.status_code == 302
    page = browser.get(resp.headers["Location"]).get_data(as_text=True)
    assert "You signed out (in another tab or window)" in page
    assert "not saved" not in page and token


def test_a_page_asks_how_long_its_session_has_left_without_that_counting_as_activity(
    admin_client, client
):
    from webapp.auth.models import UserSession

    row = db.session.execute(db.select(UserSession)).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=28)
    db.session.commit()
    seen = row.last_seen_at

    peek = admin_client.get("/session", headers={"X-Session-Peek": "1"})
    state = peek.get_json()
    assert peek.status_code == 200 and state["signed_in"] and state["how"] == "idle"
    assert 100 <= state["ends_in"] <= 120 and state["csrf"]
    db.session.expire_all()
    assert row.last_seen_at == seen

    # Asked plainly (the user typed in the page), it is activity: the idle timeout starts again.
    state = admin_client.get("/session").get_json()
    assert 1790 <= state["ends_in"] <= 1800
    db.session.expire_all()
    assert row.last_seen_at > seen

    # Near the time limit, which nothing moves, that is what it says.
    row.created_at = utcnow() - timedelta(hours=11, minutes=59)
    db.session.commit()
    state = admin_client.get("/session").get_json()
    assert state["how"] == "expired" and 50 <= state["ends_in"] <= 60

    # Once ended, it says why (and leaves no message for the next page: the page said it).
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    row.created_at = utcnow()
    db.session.commit()
    ended = admin_client.get("/session", headers={"X-Session-Peek": "1"})
    assert ended.status_code == 401
    assert ended.get_json() == {
        "signed_in": False,
        "said": "You were signed out after a period of inactivity.",
    }
    assert "inactivity" not in admin_client.get("/login").get_data(as_text=True)
    # Never signed in: the same, and no session is made up.
    assert client.get("/session").status_code == 401
