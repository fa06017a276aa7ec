import html
import re

import pytest

from tests.helpers import HTMX, PASSWORD
from webapp.auth import service as auth
from webapp.auth.models import User
from webapp.extensions import db


def test_only_admins_reach_user_management(admin_client, operator_client, auditor_client):
    assert admin_client.get("/admin/users/").status_code == 200
    assert operator_client.get("/admin/users/").status_code == 403
    assert auditor_client.get("/admin/users/").status_code == 403
    assert operator_client.post("/admin/users/new", data={"username": "x"}).status_code == 403


def test_admin_creates_a_user_who_can_sign_in(admin_client, app):
    resp = admin_client.post(
        "/admin/users/new",
        data={
            "username": "Dana",
            "full_name": "Dana S",
            "email": "dana@example.com",
            "role": "operator",
            "password": "dana's password",
        },
    )
    assert resp.status_code == 303
    assert auth.by_username("dana").role == "operator"
    listing = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "dana" in listing and "Dana S" in listing
    assert app.test_client().get("/login").status_code == 200


def test_bad_input_changes_nothing(admin_client):
    count = db.session.query(User).count()
    for data, message in [
        ({"username": "", "role": "operator", "password": "long enough pw"}, "Use 1-64"),
        # "?" starts the names the trail gives a sign-in as no user: none of a user's.
        ({"username": "?x", "role": "operator", "password": "long enough pw"}, "Use 1-64"),
        ({"username": "ok", "role": "operator", "password": "short"}, "at least 10"),
        ({"username": "ok", "role": "root", "password": "long enough pw"}, "Choose a role"),
        ({"username": "admin", "role": "operator", "password": "long enough pw"}, "taken"),
        # The names the audit trail gives CertDesk's own work.
        ({"username": "Scheduler", "role": "admin", "password": "long enough pw"}, "own work"),
        ({"username": "cli", "role": "admin", "password": "long enough pw"}, "own work"),
        ({"username": "anonymous", "role": "admin", "password": "long enough pw"}, "own work"),
        # Long enough, but among the first guesses: common, the user name, one key held down.
        ({"username": "ok", "role": "operator", "password": "Password12"}, "first any guesser"),
        ({"username": "ok", "role": "operator", "password": "1234567890"}, "first any guesser"),
        ({"username": "ok", "role": "operator", "password": "aaaaaaaaaa"}, "first any guesser"),
        ({"username": "ok", "role": "operator", "password": "ababababab"}, "first any guesser"),
        ({"username": "longusername", "role": "operator", "password": "LongUserName"}, "guesser"),
    ]:
        resp = admin_client.post("/admin/users/new", data=data)
        assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert db.session.query(User).count() == count
    # Several mistakes at once: each is named, the cursor in the first field in error.
    several = admin_client.post(
        "/admin/users/new",
        data={"username": "ok", "email": "a@b", "role": "root", "password": "short"},
    ).get_data(as_text=True)
    for words in ("Enter an e-mail address such as", "Choose a role.", "Use at least 10"):
        assert words in several, words
    for field in ("email", "role", "password"):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', several), field
    assert re.search(r'<input id="email" [^>]*autofocus', several)
    assert several.count("autofocus") == 1
    assert db.session.query(User).count() == count


def test_role_change_disable_enable_and_reset(admin_client, user, app):
    op = user["operator"]
    assert (
        admin_client.post(f"/admin/users/{op.id}/role", data={"role": "auditor"}).status_code == 303
    )
    db.session.refresh(op)
    assert op.role == "auditor"
    assert (
        admin_client.post(f"/admin/users/{op.id}/active", data={"active": "0"}).status_code == 303
    )
    db.session.refresh(op)
    assert not op.active
    from tests.conftest import Client

    app.test_client_class = Client
    assert app.test_client().login("operator").status_code == 401
    admin_client.post(f"/admin/users/{op.id}/active", data={"active": "1"})
    resp = admin_client.post(
        f"/admin/users/{op.id}/password",
        data={"password": "reset password!", "password2": "reset password!"},
    )
    assert resp.status_code == 303
    assert app.test_client().login("operator", "reset password!").status_code == 302


def test_the_last_active_admin_cannot_be_removed(admin_client, user):
    admin = user["admin"]
    for url, data in [
        (f"/admin/users/{admin.id}/role", {"role": "operator"}),
        (f"/admin/users/{admin.id}/active", {"active": "0"}),
    ]:
        resp = admin_client.post(url, data=data)
        assert resp.status_code == 422
        assert "last active administrator" in resp.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == "admin" and admin.active
    # With a second admin, the first may step down.
    auth.create_user(admin, "admin2", "second admin pw", "admin")
    assert (
        admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "operator"}).status_code
        == 303
    )


def test_htmx_form_post_gets_hx_redirect(admin_client, user):
    op = user["operator"]
    resp = admin_client.post(f"/admin/users/{op.id}/role", data={"role": "auditor"}, headers=HTMX)
    assert resp.status_code == 204 and resp.headers["HX-Redirect"] == f"/admin/users/{op.id}"


def test_unknown_user_is_404(admin_client):
    assert admin_client.get("/admin/users/9999").status_code == 404
    assert admin_client.post("/admin/users/9999/role", data={"role": "admin"}).status_code == 404


def test_the_user_list_is_paged(admin_client):
    db.session.add_all(
        User(username=f"user{i:03d}", password_hash="!", role="auditor") for i in range(60)
    )
    db.session.commit()
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "1–50 of 63" in page and "user046" in page and "user047" not in page
    nxt = html.unescape(re.search(r'href="([^"]*after=[^"]*)"', page).group(1))
    second = admin_client.get(nxt, headers=HTMX).get_data(as_text=True)
    assert "<html" not in second and 'id="users-table"' in second
    assert "51–63 of 63" in second and "user047" in second and "user059" in second
    assert "admin" not in re.findall(r">(\w+)</a></td>", second)


def test_a_user_changes_their_own_password(app, operator_client, user):
    from sqlalchemy import select

    from tests.conftest import PASSWORD, _client_as
    from webapp.audit.models import AuditEvent

    elsewhere = _client_as(app, "operator")  # the same user in another browser
    menu = operator_client.get("/").get_data(as_text=True)
    assert 'href="/account/password">Change password</a>' in menu
    new = "a new and long passphrase"
    for data, field, words in (
        (
            {"current_password": "wrong", "password": new, "password2": new},
            "current_password",
            "The current password is wrong.",
        ),
        (
            {"current_password": PASSWORD, "password": new, "password2": "other"},
            "password",
            "The passwords differ: type the new password in both boxes again.",
        ),
        (
            {"current_password": PASSWORD, "password": "short", "password2": "short"},
            "password",
            "at least 10 characters",
        ),
        (
            {"current_password": PASSWORD, "password": PASSWORD, "password2": PASSWORD},
            "password",
            "other than the current one",
        ),
    ):
        resp = operator_client.post("/account/password", data=data)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422 and words in page and 'aria-invalid="true"' in page, field
        assert f'id="{field}"' in page.split("autofocus")[0].rsplit("<input", 1)[1], field
    db.session.expire_all()
    assert User.verify_password(auth.by_username("operator").password_hash, PASSWORD)

    resp = operator_client.post(
        "/account/password", data={"current_password": PASSWORD, "password": new, "password2": new}
    )
    assert resp.status_code == 302
    page = operator_client.get("/").get_data(as_text=True)
    assert "Your password is changed" in page  # still signed in, on a new session
    assert elsewhere.get("/").status_code == 302  # the other browser is signed out
    db.session.expire_all()
    assert User.verify_password(auth.by_username("operator").password_hash, new)
    fresh = app.test_client()
    assert (
        fresh.post("/login", data={"username": "operator", "password": PASSWORD}).status_code == 401
    )
    assert fresh.post("/login", data={"username": "operator", "password": new}).status_code == 302
    outcomes = db.session.execute(
        select(AuditEvent.outcome).where(AuditEvent.action == "user.password_change")
    ).scalars()
    assert sorted(outcomes) == ["failure"] * 4 + ["success"]  # each refusal above, then this
    assert app.test_client().get("/account/password").status_code == 302  # signed out: sign in


# What the refusals below type: none of it, nor any part of it, may reach the trail.
TYPED_NEW = "Qv7#kZ2!wXp9@mJ4"
TYPED_WRONG = "Hb8$tY3%nLq6&rF1"


@pytest.mark.parametrize(
    "data, field, words",
    [
        (
            {"current_password": TYPED_WRONG, "password": TYPED_NEW, "password2": TYPED_NEW},
            "current_password",
            "The current password is wrong.",
        ),
        (
            {"current_password": PASSWORD, "password": TYPED_NEW, "password2": TYPED_WRONG},
            "password2",
            "The passwords differ: type the new password in both boxes again.",
        ),
        (
            {"current_password": PASSWORD, "password": "Qv7#kZ2", "password2": "Qv7#kZ2"},
            "password",
            "Use at least 10 characters.",
        ),
        (
            {"current_password": PASSWORD, "password": TYPED_NEW * 70, "password2": TYPED_NEW * 70},
            "password",
            "Use at most 1,024 characters.",
        ),
        (
            {"current_password": PASSWORD, "password": "qqqqqqqqqqqq", "password2": "qqqqqqqqqqqq"},
            "password",
            "That password is among the first any guesser tries (a common one, the user name, "
            "or few different characters). Choose another.",
        ),
        (
            {"current_password": PASSWORD, "password": PASSWORD, "password2": PASSWORD},
            "password",
            "Choose a password other than the current one.",
        ),
    ],
    ids=["wrong current", "differ", "short", "long", "guessable", "same"],
)
def test_each_refused_change_of_ones_own_password_is_audited(
    operator_client, user, data, field, words
):
    """A change of one's own password that the page refuses changes nothing and leaves one
    event: user.password_change, outcome failure, with the reason shown and its field, and no
    password, nor any part of one."""
    before = _last_seq()
    resp = operator_client.post("/account/password", data=data)
    assert resp.status_code == 422
    assert html.escape(words, quote=False) in resp.get_data(as_text=True)
    _assert_one_refusal_audited(before, user["operator"], words, field, data.values())


def test_a_throttled_change_of_ones_own_password_is_audited(operator_client, user):
    """Too many wrong current passwords from an address: the next try waits, and its refusal is
    audited as the others are."""
    from webapp.auth.models import LoginAttempt

    for _ in range(10):
        db.session.add(LoginAttempt(username="operator", address="127.0.0.1", success=False))
    db.session.commit()
    before = _last_seq()
    data = {"current_password": PASSWORD, "password": TYPED_NEW, "password2": TYPED_NEW}
    resp = operator_client.post("/account/password", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    words = re.search(r"Too many wrong passwords\. Wait \d+ seconds and try again\.", page)[0]
    _assert_one_refusal_audited(before, user["operator"], words, "current_password", data.values())


def _last_seq() -> int:
    from webapp.audit.models import AuditEvent

    db.session.expire_all()
    return db.session.execute(db.select(db.func.max(AuditEvent.seq))).scalar() or 0


def _assert_one_refusal_audited(before, operator, words, field, typed) -> None:
    import json

    from webapp.audit.models import AuditEvent

    db.session.expire_all()
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.seq > before)).scalars()
    shown = [(e.action, e.actor_name, e.object_type, e.object_id, e.outcome) for e in events]
    assert shown == [("user.password_change", "operator", "user", str(operator.id), "failure")]
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.seq > before)).scalar_one()
    assert json.loads(event.detail) == {"reason": words, "field": field}
    for value in typed:
        for start in range(len(value) - 3):
            assert value[start : start + 4] not in event.detail, value
    assert User.verify_password(auth.by_username("operator").password_hash, PASSWORD)


def test_two_administrators_demoting_each_other_at_once_leave_one(app, user):
    """Each counted two administrators before the other's change was committed, and both went:
    no administrator was left. The second now counts after the first. (Five rounds: the old
    code lost both in most rounds.)"""
    import threading

    first = user["admin"]
    second = auth.create_user(first, "admin2", "second admin pw", "admin")
    ids = (first.id, second.id)

    def demote(actor_id, target_id, start, refused):
        with app.app_context():
            actor, target = db.session.get(User, actor_id), db.session.get(User, target_id)
            start.wait()
            try:
                auth.change_role(actor, target, "operator")
            except auth.UserError as exc:
                refused.append(str(exc))
            finally:
                db.session.remove()

    for _ in range(5):
        db.session.execute(db.update(User).where(User.id.in_(ids)).values(role="admin"))
        db.session.commit()
        start, refused = threading.Barrier(2), []
        both = [
            threading.Thread(target=demote, args=(a, b, start, refused))
            for a, b in (ids, ids[::-1])
        ]
        for t in both:
            t.start()
        for t in both:
            t.join(30)
        admins = db.session.execute(
            db.select(db.func.count()).select_from(User).where(User.role == "admin")
        ).scalar()
        assert admins == 1 and len(refused) == 1 and "last active administrator" in refused[0]


def test_the_user_page_labels_its_fields_and_asks_before_it_locks_out(admin_client, user):
    op = user["operator"]
    page = admin_client.get(f"/admin/users/{op.id}").get_data(as_text=True)
    for field, label in (("role", "Role of operator"), ("password", "New password")):
        assert f'<label for="{field}">{label}</label>' in page
    assert '<label for="password2">Repeat new password</label>' in page
    assert "Their open sessions end and they can no longer sign in" in page
    assert 'data-confirm="Reset the password of operator? Their open sessions end."' in page

    # A refused reset points at the field that is wrong.
    resp = admin_client.post(
        f"/admin/users/{op.id}/password",
        data={"password": "reset password!", "password2": "something else"},
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert '<small class="field-error" id="password2-error">' in page
    assert 'aria-invalid="true" aria-describedby="password2-error"' in page
    # Both boxes come back empty: the cursor is in the first, not under the message.
    assert re.search(r'<input id="password" [^>]*autofocus', page)
    assert page.count("autofocus") == 1


def test_an_administrator_on_their_own_page_is_guarded_against_locking_themselves_out(
    admin_client, user
):
    """Another administrator exists, so the last-administrator rule does not hold anything back:
    one's own page still asks before a self-demotion, offers no Disable and no reset (which
    would skip the current password), and the server refuses both."""
    admin = user["admin"]
    auth.create_user(admin, "admin2", "second admin pw", "admin")
    page = admin_client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    assert (
        'data-confirm="Change your own role? You lose administrator rights at once and are '
        'signed out.">Change role</button>' in page
    )
    assert "you cannot disable your own account; another administrator can." in page
    assert "Disable user</button>" not in page
    assert 'name="password"' not in page and 'href="/account/password">Change password</a>' in page
    assert "this one included? You will have to sign in again." in page
    assert "End the open session</button>" in page  # not "End all 1 open session"
    assert page.count("this browser</small>") == 1  # which of the sessions is this one

    resp = admin_client.post(f"/admin/users/{admin.id}/active", data={"active": "0"})
    assert resp.status_code == 422
    assert "You cannot disable your own account" in resp.get_data(as_text=True)
    new = "a brand new password"
    resp = admin_client.post(
        f"/admin/users/{admin.id}/password", data={"password": new, "password2": new}
    )
    assert resp.status_code == 422
    assert "To change your own password, use Change password" in resp.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.active and not admin.check_password(new)
    assert admin_client.get("/").status_code == 200  # still signed in

    # Stepping down: after signing in again the new operator lands on the dashboard, not on the
    # page of users their role no longer opens.
    resp = admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "operator"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    db.session.refresh(admin)
    assert admin.role == "operator"
    assert admin_client.get("/").status_code == 302  # signed out
    db.session.execute(db.update(User).where(User.id == admin.id).values(role="admin"))
    db.session.commit()
    admin_client.login("admin")

    # Another user's page is as before.
    page = admin_client.get(f"/admin/users/{user['operator'].id}").get_data(as_text=True)
    assert "Disable user</button>" in page and 'name="password"' in page
    assert "Change your own role?" not in page and "this browser</small>" not in page


def test_an_admin_sets_a_users_name_and_email(admin_client, operator_client, user):
    target = user["operator"]
    page = admin_client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert '<label for="full_name">Full name</label>' in page
    resp = admin_client.post(
        f"/admin/users/{target.id}/profile",
        data={"full_name": "Olga Operator", "email": "olga@example.com"},
    )
    assert resp.status_code == 303
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Saved the name and e-mail of operator." in page
    assert 'value="Olga Operator"' in page and 'value="olga@example.com"' in page
    db.session.expire_all()
    assert (target.full_name, target.email) == ("Olga Operator", "olga@example.com")
    # Bad input: a clear error, nothing changed.
    for data, field in [
        ({"full_name": "x" * 121, "email": ""}, "full_name"),
        ({"full_name": "Olga", "email": "not an address"}, "email"),
    ]:
        resp = admin_client.post(f"/admin/users/{target.id}/profile", data=data)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422 and f'id="{field}-error"' in page
    db.session.expire_all()
    assert (target.full_name, target.email) == ("Olga Operator", "olga@example.com")
    # Only administrators.
    resp = operator_client.post(
        f"/admin/users/{target.id}/profile", data={"full_name": "Me", "email": ""}
    )
    assert resp.status_code == 403


def test_a_session_idle_past_the_timeout_is_not_listed_as_open(admin_client, operator_client, user):
    """A session with no request for longer than the idle timeout has ended (its next request
    is refused) though nothing has marked it yet: the user's page does not call it open, nor
    count it among the sessions to end."""
    from datetime import timedelta

    from webapp.auth.models import UserSession
    from webapp.dbtypes import utcnow

    operator = user["operator"]
    operator_client.get("/")
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert '<span class="badge ok">Open</span>' in page
    assert "End the open session</button>" in page

    row = db.session.execute(
        db.select(UserSession).where(UserSession.user_id == operator.id)
    ).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert '<span class="badge ok">Open</span>' not in page
    assert "Ended: idle for longer than the timeout" in page
    assert "open session" not in page.split('id="sessions"')[1].split("</article>")[0].lower()
    # As its next request finds: it has ended.
    assert operator_client.get("/").status_code == 302


def test_a_session_past_its_time_limit_is_not_listed_as_open(admin_client, operator_client, user):
    """A session signed in longer ago than SESSION_MAX_HOURS has ended, however recent its last
    request: the user's page says so before its next request marks it."""
    from datetime import timedelta

    from webapp.auth.models import UserSession
    from webapp.dbtypes import utcnow

    operator = user["operator"]
    operator_client.get("/")
    row = db.session.execute(
        db.select(UserSession).where(UserSession.user_id == operator.id)
    ).scalar_one()
    row.created_at = utcnow() - timedelta(hours=13)
    db.session.commit()
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert '<span class="badge ok">Open</span>' not in page
    assert "Ended: open for longer than a session may be" in page
    assert operator_client.get("/").status_code == 302


def _opened_profile(client, user_id: int) -> dict:
    page = client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    fields = dict(re.findall(r'name="(opened_(?:full_name|email))" value="([^"]*)"', page))
    assert set(fields) == {"opened_full_name", "opened_email"}
    opened = {k: html.unescape(v) for k, v in fields.items()}
    return {**opened, "full_name": opened["opened_full_name"], "email": opened["opened_email"]}


def test_two_administrators_editing_one_users_name_and_email_keep_both_changes(app, user):
    """Two administrators (or two tabs) have one user's page open: the second save keeps the
    first's change to the other field; a change of the same field is refused and says so."""
    from tests.conftest import _client_as

    target = user["operator"]
    url = f"/admin/users/{target.id}/profile"
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    mine, theirs = _opened_profile(first, target.id), _opened_profile(second, target.id)
    assert first.post(url, data={**mine, "email": "olga@example.com"}).status_code == 303
    assert second.post(url, data={**theirs, "full_name": "Olga Operator"}).status_code == 303
    db.session.expire_all()
    assert (target.full_name, target.email) == ("Olga Operator", "olga@example.com")

    mine, theirs = _opened_profile(first, target.id), _opened_profile(second, target.id)
    assert first.post(url, data={**mine, "email": "o@example.com"}).status_code == 303
    refused = second.post(url, data={**theirs, "email": "olga@example.org"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and 'id="email-error"' in page
    assert "changed to o@example.com after this page was opened" in page
    db.session.expire_all()
    assert (target.full_name, target.email) == ("Olga Operator", "o@example.com")
    # The page shown again is opened anew: the change sent from it is saved.
    again = _opened_profile(second, target.id)
    assert second.post(url, data={**again, "email": "olga@example.org"}).status_code == 303
    db.session.expire_all()
    assert target.email == "olga@example.org"


def test_two_administrators_changing_one_users_role_the_second_is_told(app, user):
    """Both open the operator's page; the first makes them an auditor. The second, from the page
    opened before, chooses Administrator: refused (409) and said, nothing saved, no session
    ended; the page shown again is opened anew, and the change sent from it is saved."""
    from tests.conftest import _client_as
    from webapp.audit.models import AuditEvent

    target = user["operator"]
    url = f"/admin/users/{target.id}/role"

    def opened(client) -> str:
        page = client.get(f"/admin/users/{target.id}").get_data(as_text=True)
        return re.search(r'name="opened_role" value="(\w+)"', page).group(1)

    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    mine, theirs = opened(first), opened(second)
    assert mine == theirs == "operator"
    assert first.post(url, data={"opened_role": mine, "role": "auditor"}).status_code == 303
    db.session.expire_all()
    versions = target.session_version
    refused = second.post(url, data={"opened_role": theirs, "role": "admin"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and 'id="role-error"' in page
    assert "The role was changed to Auditor after this page was opened" in page
    db.session.expire_all()
    assert target.role == "auditor" and target.session_version == versions
    refusals = db.session.execute(
        db.select(AuditEvent).where(
            AuditEvent.action == "user.role_change", AuditEvent.outcome == "refused"
        )
    ).scalars()
    assert len(list(refusals)) == 1
    # Choosing what it was changed to meanwhile is no conflict; from the page shown again, the
    # change is saved.
    assert second.post(url, data={"opened_role": theirs, "role": "auditor"}).status_code == 303
    again = opened(second)
    assert again == "auditor"
    assert second.post(url, data={"opened_role": again, "role": "admin"}).status_code == 303
    db.session.expire_all()
    assert target.role == "admin"


def test_a_user_name_is_one_name_however_it_is_typed(app, admin_client, user):
    """Full-width letters, a ligature or a Kelvin sign name the user their plain letters name
    (Unicode NFKC): no look-alike of another user, or of CertDesk's own work, can be made, and
    the user signs in typing either."""
    from tests.conftest import PASSWORD

    count = db.session.query(User).count()
    for typed, message in [
        ("ａｄｍｉｎ", "taken"),  # full-width: the administrator's name
        ("\u3000ADMIN\u3000", "taken"),  # ideographic spaces around it
        ("ｓｃｈｅｄｕｌｅｒ", "own work"),
        ("\u212aelvin", None),  # KELVIN SIGN K
        ("ﬁle", None),  # the ligature fi
    ]:
        resp = admin_client.post(
            "/admin/users/new",
            data={"username": typed, "role": "operator", "password": "a fine long pass 1"},
        )
        if message:
            assert resp.status_code == 422 and message in resp.get_data(as_text=True), typed
        else:
            assert resp.status_code == 303, typed
    names = {u.username for u in db.session.query(User)}
    assert db.session.query(User).count() == count + 2 and {"kelvin", "file"} <= names
    # Signing in: the plain and the full-width name are one user, with one throttle.
    for typed in ("ｏｐｅｒａｔｏｒ", "Operator"):
        resp = app.test_client().post("/login", data={"username": typed, "password": PASSWORD})
        assert resp.status_code == 302, typed


def test_a_name_stored_before_names_took_their_nfkc_form_still_signs_in(client, user):
    from tests.conftest import PASSWORD

    db.session.add(
        User(username="ｂｏｂ", password_hash=User.hash_password(PASSWORD), role="auditor")
    )
    db.session.commit()
    resp = client.post("/login", data={"username": "ｂｏｂ", "password": PASSWORD})
    assert resp.status_code == 302
    assert auth.by_username("ＢＯＢ").username == "ｂｏｂ"


def test_a_users_email_is_one_the_order_form_takes(admin_client, user):
    """The e-mail address starts the requester of the user's orders: one the order form would
    refuse (on a field the user did not type) is refused here, and nothing changes."""
    target = user["operator"]
    for email in ["@", "a@b", "x@@example.com", "a@b.com,c@d.com", "ann@example"]:
        resp = admin_client.post(
            f"/admin/users/{target.id}/profile", data={"full_name": "", "email": email}
        )
        assert resp.status_code == 422 and 'id="email-error"' in resp.get_data(as_text=True)
        resp = admin_client.post(
            "/admin/users/new",
            data={
                "username": "erin",
                "role": "operator",
                "password": "erin's long pw",
                "email": email,
            },
        )
        assert resp.status_code == 422 and "name@example.com" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert target.email == "" and auth.by_username("erin") is None
    resp = admin_client.post(
        f"/admin/users/{target.id}/profile", data={"full_name": "", "email": "olga@example.com"}
    )
    assert resp.status_code == 303


def test_an_administrator_signed_out_by_their_own_change_is_told_it_was_theirs(admin_client, user):
    """Stepping down, or ending one's own sessions, signs one out: the sign-in page says it was
    one's own doing, not that of "an administrator"."""
    admin = user["admin"]
    auth.create_user(admin, "admin2", "second admin pw", "admin")
    resp = admin_client.post(f"/admin/users/{admin.id}/sessions/end")
    assert resp.status_code == 303
    page = admin_client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "You ended your open sessions, this one included." in page
    assert "An administrator" not in page
    admin_client.login("admin")
    page = admin_client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    assert "ended by the user" in page

    resp = admin_client.post(f"/admin/users/{admin.id}/role", data={"role": "auditor"})
    assert resp.status_code == 303
    page = admin_client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "You changed your own role, which signed you out." in page
    assert "An administrator" not in page


def test_refused_user_changes_are_audited_without_what_was_typed(admin_client, user):
    """A refused change of Admin › Users is in the audit trail as a refused sign-in is: the
    change's action, outcome refused, who tried it, on which user, and why (in the words shown);
    nothing typed is kept (no password, and no new user's name as typed), and nothing changes."""
    import json

    from sqlalchemy import select

    from webapp.audit import service as audit
    from webapp.audit.models import AuditEvent

    admin, op = user["admin"], user["operator"]
    start = db.session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).scalar()
    secret = "Zq7!unusual secret pw"
    sent = [
        (f"/admin/users/{admin.id}/role", {"role": "operator"}, 422),
        (f"/admin/users/{admin.id}/active", {"active": "0"}, 422),
        (f"/admin/users/{op.id}/profile", {"full_name": "Op", "email": "not an address"}, 422),
        (f"/admin/users/{op.id}/password", {"password": secret, "password2": secret + "x"}, 422),
        (f"/admin/users/{op.id}/password", {"password": "short", "password2": "short"}, 422),
        ("/admin/users/new", {"username": "Admin", "role": "auditor", "password": secret}, 422),
        ("/admin/users/new", {"username": "newbie", "role": "auditor", "password": "short"}, 422),
    ]
    for url, data, status in sent:
        assert admin_client.post(url, data=data).status_code == status, url
    db.session.expire_all()
    events = db.session.execute(
        select(AuditEvent).where(AuditEvent.seq > start).order_by(AuditEvent.seq)
    ).scalars()
    got = [
        (e.action, e.actor_name, e.object_type, e.object_id, e.outcome, json.loads(e.detail))
        for e in events
    ]
    last_admin = "This is the last active administrator; make another one first."
    assert got[:6] == [
        (
            "user.role_change",
            "admin",
            "user",
            str(admin.id),
            "refused",
            {"username": "admin", "reason": last_admin},
        ),
        (
            "user.disable",
            "admin",
            "user",
            str(admin.id),
            "refused",
            {"username": "admin", "reason": last_admin},
        ),
        (
            "user.profile_change",
            "admin",
            "user",
            str(op.id),
            "refused",
            {
                "username": "operator",
                "reason": "Enter an e-mail address such as name@example.com, or leave it empty.",
                "field": "email",
            },
        ),
        (
            "user.password_reset",
            "admin",
            "user",
            str(op.id),
            "refused",
            {
                "username": "operator",
                "reason": "The passwords differ: type the new password in both boxes again.",
                "field": "password2",
            },
        ),
        (
            "user.password_reset",
            "admin",
            "user",
            str(op.id),
            "refused",
            {"username": "operator", "reason": "Use at least 10 characters.", "field": "password"},
        ),
        (
            "user.create",
            "admin",
            "user",
            str(admin.id),  # the name is taken: by that user
            "refused",
            {
                "username": "admin",
                "role": "auditor",
                "reason": "That user name is taken.",
                "field": "username",
            },
        ),
    ]
    # A name that is no user's is kept as sign-ins keep one: a fingerprint, not as typed.
    [(action, actor, _, name, outcome, detail)] = got[6:]
    assert (action, actor, outcome) == ("user.create", "admin", "refused")
    assert name.startswith(auth.UNKNOWN_NAME_PREFIX) and "newbie" not in name
    assert detail == {
        "username": "",
        "role": "auditor",
        "reason": "Use at least 10 characters.",
        "field": "password",
    }
    trail = " ".join(str(g) for g in got)
    assert secret not in trail and "newbie" not in trail and "not an address" not in trail
    db.session.refresh(admin)
    db.session.refresh(op)
    assert admin.role == "admin" and admin.active and op.email != "not an address"
    assert auth.by_username("newbie") is None
    assert audit.verify().ok
