"""Bad input on every route, every form field and every query parameter, on SQLite and on
PostgreSQL: no answer is a 500, every refusal says why, and a refused request stores nothing.

Nothing is listed by hand: the routes come from the app's URL map and the forms (with their
fields and defaults) from the pages those routes render (tests/reliability/sweep.py), so routes
and forms added later are swept too. PostgreSQL refuses what SQLite lets through (over-long
values, NUL characters), which is why both run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, text

from tests.conftest import BACKEND, Client, _instance_from, make_app
from tests.helpers import HTMX, PASSWORD
from tests.reliability import sweep
from webapp.extensions import db

# Tables a refused request may still write: the audit trail (refusals are audited), sign-in
# attempts and sessions, and markers the app keeps for itself.
MAY_CHANGE = {
    "audit_event",
    "audit_head",
    "login_attempt",
    "user_session",
    "setting",
    "alembic_version",
    "scheduler_lease",
    "periodic_run",
}
# Fields that would reach the network or take seconds with their defaults: kept fast and local.
FAST = {"key_type": "p256", "base_url": "http://127.0.0.1:9/enterprise/v2/"}
# Forms whose valid submission ends the sweep's own session.
SESSION_ENDING = {"/logout"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    backend: str
    app: object
    admin: Client
    headers: dict
    anonymous: Client
    ids: dict
    forms: list
    pages: list


def _populate(app):
    """One row of each kind the pages show, so their forms appear; returns the ids by argument."""
    from tests.unit.certs.factory import MiniPki, p12
    from webapp.auth import service as auth
    from webapp.certificates import service as certificates
    from webapp.credentials import service as credentials
    from webapp.csrs import service as csrs
    from webapp.jobs import service as jobs

    admin, operator = auth.by_username("admin"), auth.by_username("operator")
    t = MiniPki()
    key, cert = t.leaf("sweep.example.com")
    certificates.import_files(admin, [("s.p12", p12(key, cert, t.chain, "pw-123456"))], "pw-123456")
    csr = csrs.create_csr(admin, "p256", {"CN": "sweep.example.com"}, "")
    cred, _ = credentials.create(
        admin,
        credentials.CredentialInput(
            name="Sweep", api_user="u", api_key="k", base_url=FAST["base_url"]
        ),
        start_sync=False,
    )
    jobs.register("sweep.noop", lambda ctx: {"done": 1})
    job = jobs.start("sweep.noop", "Sweep", actor=admin)
    cert_id = db.session.execute(text("select max(id) from certificate")).scalar()
    from webapp.orders.models import Order

    order = Order(
        credential_id=cred.id,
        ca_order_id="4242",
        ca_order_number=4242,
        status="ACTIVE",
        phase="issued",
        common_name="sweep.example.com",
        sans="sweep.example.com",
        product="STANDARD_SSL",
    )
    db.session.add(order)
    db.session.commit()
    return {
        "order_id": order.id,
        "cert_id": cert_id,
        "csr_id": csr.id,
        "credential_id": cred.id,
        "job_id": job.id,
        "user_id": operator.id,
    }


# Both databases by default. Under CERTDESK_TEST_DB=postgresql the test instances are PostgreSQL
# copies of one template, so a "sqlite" case would be a second PostgreSQL run sharing its cluster.
@pytest.fixture(
    scope="module", params=["sqlite", "postgresql"] if BACKEND == "sqlite" else ["postgresql"]
)
def world(request, tmp_path_factory, db_templates):
    root = tmp_path_factory.mktemp(f"sweep-{request.param}")
    config = {}
    if request.param == "sqlite":
        instance = _instance_from(db_templates["users"], root / "instance")
        database = instance / "certdesk.db"
    else:
        import psycopg

        base = request.getfixturevalue("postgres_url")
        with psycopg.connect(
            base.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres",
            autocommit=True,
        ) as conn:
            conn.execute("DROP DATABASE IF EXISTS certdesk_sweep")
            conn.execute("CREATE DATABASE certdesk_sweep")
        instance = root / "instance"
        instance.mkdir(mode=0o700)
        database = instance / "unused.db"
        config["SQLALCHEMY_DATABASE_URI"] = base.rsplit("/", 1)[0] + "/certdesk_sweep"
    app = make_app(instance, database, **config)
    ctx = app.app_context()
    ctx.push()
    if request.param == "postgresql":
        from flask_migrate import upgrade

        from webapp import _init_secretbox, paths
        from webapp.auth import service as auth

        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        for role in ("admin", "operator", "auditor"):
            auth.create_user(None, role, PASSWORD, role)
        assert db.engine.dialect.name == "postgresql"
    ids = _populate(app)
    app.test_client_class = Client
    admin = app.test_client()
    assert admin.login("admin").status_code == 302
    headers = {"X-CSRFToken": admin.csrf_token()}
    forms, pages = sweep.discover(app, admin, ids, {})
    anonymous = app.test_client()
    login_forms = sweep.forms_on("/login", anonymous.get("/login").get_data(as_text=True))
    yield World(request.param, app, admin, headers, anonymous, ids, forms + login_forms, pages)
    db.session.remove()
    db.engine.dispose()
    ctx.pop()


def _counts() -> tuple:
    """Row counts of every table a refused request must leave alone, in one query."""
    db.session.rollback()
    names = [t for t in inspect(db.engine).get_table_names() if t not in MAY_CHANGE]
    counts = [select(func.count()).select_from(text(f'"{t}"')).scalar_subquery() for t in names]
    return tuple(zip(names, db.session.execute(select(*counts)).one(), strict=True))


def _check(resp, what: str) -> None:
    resp.get_data()  # a streamed body (the CSV exports) runs now, inside its request's context
    resp.close()
    assert resp.status_code < 500, f"{what}: answered {resp.status_code}"
    if resp.status_code in (400, 401, 403, 404, 413, 422) and resp.mimetype == "text/html":
        body = resp.get_data(as_text=True)
        assert 'role="alert"' in body or "field-error" in body or "error-page" in body, (
            f"{what}: {resp.status_code} without a message"
        )


def _client_for(world: World, form: sweep.Form):
    if form.page == "/login":
        return world.anonymous, {"X-CSRFToken": _token(world.anonymous)}
    return world.admin, world.headers


def _token(client) -> str:
    return _TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)


def _submit(world: World, form: sweep.Form, values: dict, htmx: bool = False):
    client, headers = _client_for(world, form)
    data = {**form.fields, **{k: v for k, v in FAST.items() if k in form.fields}, **values}
    headers = {**headers, **(HTMX if htmx else {})}
    if form.method == "GET":
        return client.get(form.action, query_string=data, headers=headers)
    return client.post(form.action, data=data, headers=headers, csrf=False)


def _ordered(forms):
    """Forms that delete their page's row, or end a session, go last."""
    usable = [f for f in forms if f.action not in SESSION_ENDING]
    return sorted(usable, key=lambda f: ("delete" in f.action, f.action))


def test_discovery_finds_the_routes_and_forms(world):
    actions = {f.action for f in world.forms}
    assert len(world.pages) >= 15 and len(world.forms) >= 15
    for expected in ("/login", "/admin/users/new", "/certificates/import", "/csrs/new"):
        assert expected in actions, expected
    order = world.ids["order_id"]
    for expected in (
        *(f"/entrust/status?action={a}" for a in ("approve", "decline", "suspend", "resume")),
        "/entrust/revoke",
        "/entrust/delete",
        f"/entrust/{order}/reissue",
        f"/entrust/{order}/renew",
    ):
        assert expected in actions, expected  # the actions on orders, and their forms
    assert any(a.startswith("/entrust/manage/credentials/") for a in actions)


def test_every_form_field_with_every_bad_value(world):
    for form in _ordered(world.forms):
        for name in form.fields:
            if name == "csrf_token":
                continue
            for value in sweep.FORM_NASTY:
                before = _counts()
                resp = _submit(world, form, {name: value})
                what = f"{world.backend} {form.method} {form.action} {name}={value[:30]!r}"
                _check(resp, what)
                if resp.status_code >= 400:
                    assert _counts() == before, f"{what}: refused, yet rows changed"


def test_a_private_key_in_any_field_but_a_key_field_is_refused_and_never_shown(world):
    """A key pasted where no key belongs (a name, a comment, a search of a form) would be stored
    in clear, sent to Entrust or audited: every such field of every form refuses it, in words,
    storing nothing and sending none of it back. The key fields take it apart themselves."""
    from tests.unit.certs.factory import pasted_private_keys
    from webapp.validation import KEY_FIELDS

    shapes = pasted_private_keys()
    tried = 0
    for form in _ordered(world.forms):
        if form.method != "POST":
            continue
        for name in form.fields:
            if name == "csrf_token" or name in KEY_FIELDS:
                continue
            for shape in ("OpenSSH", "base64 PKCS#8"):
                secret, material = shapes[shape]
                before = _counts()
                resp = _submit(world, form, {name: secret})
                what = f"{world.backend} POST {form.action} {name}: {shape}"
                body = resp.get_data(as_text=True)
                assert resp.status_code == 400 and "holds a private key" in body, what
                assert not [m for m in material if m in body], f"{what}: sent back"
                assert _counts() == before, f"{what}: refused, yet rows changed"
                tried += 1
    assert tried >= 50  # every POST form's fields, not a few


def test_every_query_parameter_of_every_page_with_every_bad_value(world):
    names_by_path: dict[str, set] = {}
    for form in world.forms:
        if form.method == "GET":
            names_by_path.setdefault(form.action, set()).update(form.fields)
    for rule in sweep.rules(world.app, "GET"):
        url = sweep.build(rule, world.ids)
        names = names_by_path.get(url, set()) | set(sweep.GENERIC_QUERY) | set(sweep.RESERVED_QUERY)
        for i, value in enumerate(sweep.NASTY):
            query = {n: value for n in names}
            for headers in ({}, HTMX) if i % 4 == 0 else ({},):
                resp = world.admin.get(url, query_string=query, headers=headers)
                _check(resp, f"{world.backend} GET {url} all={value[:30]!r}")


def test_every_int_argument_beyond_64_bits(world):
    for method in ("GET", "POST"):
        for rule in sweep.rules(world.app, method):
            if not any(n in rule.arguments for n in world.ids) and "_id" not in rule.rule:
                continue
            for number in sweep.PATH_INTS:
                url = sweep.build(rule, world.ids, int_value=number)
                resp = world.admin.open(url, method=method, headers=world.headers)
                _check(resp, f"{world.backend} {method} {url}")
                assert resp.status_code == 404, (url, resp.status_code)


def test_post_routes_without_a_form_on_any_page(world):
    covered = {f.action for f in world.forms}
    for rule in sweep.rules(world.app, "POST"):
        url = sweep.build(rule, world.ids)
        if url in covered or url in SESSION_ENDING:
            continue
        for value in sweep.NASTY:
            resp = world.admin.post(url, data={"x": value}, headers=world.headers, csrf=False)
            _check(resp, f"{world.backend} POST {url} x={value[:30]!r}")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_values_in_many_fields_at_once(world, data):
    form = data.draw(st.sampled_from(_ordered(world.forms)), label="form")
    names = [n for n in form.fields if n != "csrf_token"]
    if not names:
        return
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True), label="fields")
    values = {
        name: data.draw(
            st.one_of(
                st.sampled_from(sweep.NASTY),
                st.text(max_size=300),
                st.integers().map(str),
            ),
            label=name,
        )
        for name in chosen
    }
    before = _counts()
    resp = _submit(world, form, values, htmx=data.draw(st.booleans(), label="htmx"))
    _check(resp, f"{world.backend} {form.method} {form.action} {values!r:.200}")
    if resp.status_code >= 400:
        assert _counts() == before
