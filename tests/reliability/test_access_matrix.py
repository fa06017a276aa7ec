"""Every route, for every role and for an anonymous visitor: the expected allow or deny, generated
from the routes themselves, so a route added without an access rule fails here. And every route
that changes something refuses a request without the CSRF token."""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter, Rule

from tests.conftest import ROLES
from webapp.security import rbac

MISSING_ID = 987654321  # no row has it: an allowed request ends in 404 or a form, never acts


def _routes(app) -> list[tuple[Rule, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    # Signing out ends the session the rest of the run uses: keep it last.
    return sorted(out, key=lambda rm: (rm[0].endpoint == "auth.logout", rm[0].rule, rm[1]))


def _url(rule: Rule) -> str:
    values = {}
    for name in rule.arguments:
        number = isinstance(rule._converters[name], IntegerConverter)
        values[name] = MISSING_ID if number else "pem"
    return rule.build(values, append_unknown=False)[1]


def _access(app, rule: Rule):
    return getattr(app.view_functions[rule.endpoint], "access", None)


def test_every_route_declares_who_may_call_it(app):
    missing = sorted({r.endpoint for r, _ in _routes(app) if _access(app, r) is None})
    assert missing == [], f"routes without an access rule (rbac.require/public): {missing}"


def _call(client, method: str, url: str, csrf: bool = True):
    if method == "GET":
        return client.get(url)
    return client.open(
        url, method=method, headers={"X-CSRFToken": client.csrf_token()} if csrf else {}, data={}
    )


def _refused_sign_in(resp) -> bool:
    return resp.status_code in (302, 303, 401) and "/login" in (
        resp.headers.get("Location", "") + resp.headers.get("HX-Redirect", "")
    )


@pytest.mark.parametrize("role", [*ROLES, None])
def test_each_role_gets_exactly_what_its_permissions_allow(app, role):
    from tests.conftest import Client

    app.test_client_class = Client
    client = app.test_client()
    if role:
        assert client.login(role).status_code == 302
    wrong = []
    for rule, method in _routes(app):
        access = _access(app, rule)
        resp = _call(client, method, _url(rule))
        if resp.status_code >= 500:
            wrong.append((method, rule.rule, resp.status_code, "server error"))
        elif access == rbac.PUBLIC:
            if resp.status_code == 403:
                wrong.append((method, rule.rule, 403, "public route refused"))
        elif role is None:
            if not _refused_sign_in(resp):
                wrong.append((method, rule.rule, resp.status_code, "anonymous let in"))
        else:
            allowed = (
                access == rbac.SIGNED_IN
                or rbac.PERMISSIONS[role] is None
                or (access in rbac.PERMISSIONS[role])
            )
            # Signing out answers with the sign-in page: that is its success.
            refused = resp.status_code == 403 or (
                _refused_sign_in(resp) and rule.endpoint != "auth.logout"
            )
            if allowed and refused:
                wrong.append((method, rule.rule, resp.status_code, f"{role} refused {access}"))
            if not allowed and resp.status_code != 403:
                wrong.append((method, rule.rule, resp.status_code, f"{role} let in to {access}"))
    assert wrong == []


def test_every_change_needs_the_csrf_token(app):
    from tests.conftest import Client

    app.test_client_class = Client
    client = app.test_client()
    assert client.login("admin").status_code == 302
    unprotected = []
    for rule, method in _routes(app):
        if method == "GET":
            continue
        resp = _call(client, method, _url(rule), csrf=False)
        if resp.status_code != 400 or "expired or was not sent from CertDesk" not in resp.get_data(
            as_text=True
        ):
            unprotected.append((method, rule.rule, resp.status_code))
    assert unprotected == []
    assert client.get("/").status_code == 200  # still signed in: nothing was carried out


def test_no_change_is_open_to_readers(app):
    """A route that changes something never needs only the read permission (auditors hold it)."""
    public_posts = {"auth.login", "auth.setup"}
    loose = sorted(
        {
            (rule.endpoint, _access(app, rule))
            for rule, method in _routes(app)
            if method != "GET"
            and (
                _access(app, rule) in (rbac.READ, rbac.JOBS_VIEW, rbac.AUDIT_READ)
                or (_access(app, rule) == rbac.PUBLIC and rule.endpoint not in public_posts)
            )
        }
    )
    assert loose == []
