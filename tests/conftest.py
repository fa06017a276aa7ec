"""Shared fixtures: a migrated database per test (copied from a template), the app, clients
that carry the CSRF token like a browser does, and signed-in users of each role.

The database is SQLite, or PostgreSQL when ``CERTDESK_TEST_DB=postgresql`` (a throwaway cluster
for the session; each test gets a database made from a migrated template). An instance folder
whose database is on PostgreSQL holds its URL in the file ``database_url``; ``make_app`` and the
live-server harness read it from there.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.helpers import PASSWORD
from webapp import create_app
from webapp.extensions import db

ROLES = ("admin", "operator", "auditor")
_TOKEN_RE = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token" value="([^"]+)"')


BACKEND = os.environ.get("CERTDESK_TEST_DB", "sqlite")
DATABASE_URL_FILE = "database_url"


def pytest_collection_modifyitems(config, items):
    """Tests that read the SQLite file itself do not apply to a PostgreSQL run."""
    if BACKEND != "postgresql":
        return
    skip = pytest.mark.skip(reason="reads the SQLite database file (this run is on PostgreSQL)")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


def database_url(instance: Path, db_file: Path | None = None) -> str:
    """The database of an instance folder: its PostgreSQL database, or the SQLite file."""
    marker = Path(instance) / DATABASE_URL_FILE
    if marker.exists():
        return marker.read_text().strip()
    return f"sqlite:///{db_file or Path(instance) / 'certdesk.db'}"


def make_app(instance: Path, db_file: Path, **config):
    settings = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": database_url(instance, db_file),
        "SECRET_KEY": "test-secret",
        "SCHEDULER_ENABLED": False,
        "JOBS_RUN_INLINE": True,
    }
    settings.update(config)
    return create_app(settings)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster for the session: the URL of its database ``certdesk``."""
    from tests import pg

    try:
        with pg.cluster() as url:
            yield url
    except pg.Unavailable:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "PostgreSQL binaries are required under CI=true (apt-get install postgresql)"
            )
        pytest.skip("PostgreSQL binaries not installed")


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory, request):
    """Two migrated databases built once: empty, and with one user of each role."""
    from flask_migrate import upgrade

    from tests import pg
    from webapp import paths
    from webapp.auth import service as auth

    root = tmp_path_factory.mktemp("templates")
    built = {}
    server = request.getfixturevalue("postgres_url") if BACKEND == "postgresql" else None
    for name in ("empty", "users"):
        instance = root / name
        instance.mkdir(mode=0o700)
        if server:
            pg.execute(server, f'CREATE DATABASE "tpl_{name}"')
            (instance / DATABASE_URL_FILE).write_text(pg.with_database(server, f"tpl_{name}"))
        app = make_app(instance, instance / "certdesk.db")
        with app.app_context():
            upgrade(directory=str(paths.MIGRATIONS_DIR))
            from webapp import _init_secretbox

            _init_secretbox(app)
            if name == "users":
                for role in ROLES:
                    auth.create_user(None, role, PASSWORD, role, full_name=role.title())
            db.session.remove()
            db.engine.dispose()
        built[name] = instance
    return built


_MADE: list[str] = []  # PostgreSQL databases made for tests, dropped at the session's end


def _instance_from(template: Path, target: Path) -> Path:
    """A new instance folder with a copy of the template's database and keys."""
    from tests import pg

    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for f in template.iterdir():
        if f.name.startswith("certdesk.db") or f.name in ("master.key", "secret_key"):
            shutil.copy2(f, target / f.name)
    marker = template / DATABASE_URL_FILE
    if marker.exists():
        tpl_url = marker.read_text().strip()
        url = pg.create_database(tpl_url, template=tpl_url.rsplit("/", 1)[1])
        (target / DATABASE_URL_FILE).write_text(url)
        _MADE.append(url)
    return target


@pytest.fixture(autouse=True)
def _drop_test_databases():
    """Each PostgreSQL test database goes when its test ends (they are not small)."""
    yield
    if _MADE:
        from tests import pg

        while _MADE:
            pg.drop_database(_MADE.pop())


@pytest.fixture
def instance(db_templates, tmp_path):
    return _instance_from(db_templates["users"], tmp_path / "instance")


@pytest.fixture
def app(instance):
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def empty_app(db_templates, tmp_path):
    inst = _instance_from(db_templates["empty"], tmp_path / "instance")
    app = make_app(inst, inst / "certdesk.db")
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


class Client(FlaskClient):
    """A test client that sends the page's CSRF token with every POST, as the browser does.

    Each request runs in its own app context (so ``g`` and the database session are per request,
    as in production), not in the context the test itself holds open.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        page = self.get("/login", follow_redirects=True).get_data(as_text=True)
        m = _TOKEN_RE.search(page)
        assert m, "no CSRF token on the page"
        return m.group(1) or m.group(2)

    def post(self, *args, csrf: bool = True, **kwargs):
        if csrf:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().post(*args, **kwargs)

    def login(self, username: str, password: str = PASSWORD):
        return self.post("/login", data={"username": username, "password": password})


@pytest.fixture
def client(app):
    app.test_client_class = Client
    return app.test_client()


def _client_as(app, role):
    app.test_client_class = Client
    c = app.test_client()
    resp = c.login(role)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return c


@pytest.fixture
def admin_client(app):
    return _client_as(app, "admin")


@pytest.fixture
def operator_client(app):
    return _client_as(app, "operator")


@pytest.fixture
def auditor_client(app):
    return _client_as(app, "auditor")


@pytest.fixture
def user(app):
    from webapp.auth import service as auth

    return {role: auth.by_username(role) for role in ROLES}


@pytest.fixture(scope="session")
def sandbox_server():
    """The real ECS sandbox on a free loopback port (plain HTTP), one for the whole session."""
    testing = pytest.importorskip("entrust_sandbox.testing")
    with testing.SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server):
    """The session's sandbox, reset to an empty account with no faults before each test
    (seed it with ``sandbox.seed(certificates=N, seed=S)``)."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.clear_faults()


@pytest.fixture
def live_server(db_templates, tmp_path):
    """CertDesk served for real (tests/live.py), over a migrated database with admin/operator/
    auditor users."""
    from tests.live import start_server, stop_server

    server = start_server(_instance_from(db_templates["users"], tmp_path / "instance"))
    yield server
    stop_server(server)


@pytest.fixture
def fresh_server(db_templates, tmp_path):
    """CertDesk served over an empty database (no users yet: the first-run setup applies)."""
    from tests.live import start_server, stop_server

    server = start_server(_instance_from(db_templates["empty"], tmp_path / "instance"))
    yield server
    stop_server(server)


# --- the orders feature against the sandbox ----------------------------------------------------


@pytest.fixture
def ecs_calls_holding_writes(app, monkeypatch):
    """The ECS calls made while this thread's database transaction held a write it had not
    committed (on SQLite, the lock every other writer waits for): a list of (method, path) that
    should stay empty. It watches the calls and the statements; it changes neither."""
    from sqlalchemy import event

    from webapp.ecs import EcsClient

    def on_statement(conn, _cursor, statement, *_args):
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info["wrote"] = True

    def on_end(conn, *_args):
        conn.info.pop("wrote", None)

    listeners = [
        ("before_cursor_execute", on_statement),
        ("begin", on_end),
        ("commit", on_end),
        ("rollback", on_end),
    ]
    for name, fn in listeners:
        event.listen(db.engine, name, fn)
    held = []
    send = EcsClient._send_once

    def watched(self, method, path, *args, **kwargs):
        session = db.session()
        if session.get_transaction() is not None and session.connection().info.get("wrote"):
            held.append((method, path))
        return send(self, method, path, *args, **kwargs)

    monkeypatch.setattr(EcsClient, "_send_once", watched)
    yield held
    for name, fn in listeners:
        event.remove(db.engine, name, fn)


@pytest.fixture
def fast_clients(monkeypatch):
    """No real waiting between GET retries; a fresh request budget and custom-field cache."""
    from webapp.credentials import clients
    from webapp.ecs import clear_budgets
    from webapp.orders import checks

    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    clear_budgets()
    checks.clear_cache()
    yield
    clear_budgets()
    checks.clear_cache()


def link_sandbox(user, sb, name="Sandbox"):
    """A credential for the sandbox, synced (the catalog job runs inline in tests)."""
    from webapp.credentials import service as credentials

    cred, job = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name=name, api_user=sb.api_user, api_key=sb.api_key, base_url=sb.base_url
        ),
    )
    assert job is not None and job.state == "succeeded", job.error
    return cred


def sandbox_order_form(cred, csr_id: int, **fields):
    """The Order Certificate form for the sandbox's demo account (as ``link_sandbox`` links it),
    for a CSR made in CertDesk; ``fields`` add to it or replace its values."""
    from webapp.orders import checks

    values = {
        "credential_id": cred.id,
        "organization": "1:CertDesk Demo Corp",
        "product": "STANDARD_SSL",
        "csr_source": "certdesk",
        "csr_id": csr_id,
        "requester_name": "Ann Admin",
        "requester_email": "ann@example.com",
        "custom": {"text2": "billing"},
    }
    return checks.OrderForm(**(values | fields))


def successor_form(row, origin: str = "reissue", **fields):
    """The Reissue or Renew form of ``row`` as CertDesk fills it in; ``fields`` replace values."""
    from webapp.orders import checks, successors

    values = successors.prefill(row, origin) | fields
    if fields.get("csr_id") and "csr_source" not in fields:  # a CSR chosen is one made here
        values["csr_source"] = "certdesk"
    return checks.OrderForm(
        csr_source=values["csr_source"],
        csr_id=values["csr_id"],
        csr_text=values["csr_text"],
        key_text=values.get("key_text", ""),
        new_key_type=values.get("new_key_type", ""),
        sans=values["sans"],
        eku=values["eku"],
        signature_algorithm=values["signature_algorithm"],
        expires_on=values["expires_on"],
        requester_name=values["requester_name"],
        requester_email=values["requester_email"],
        requester_phone=values["requester_phone"],
        additional_emails=values["additional_emails"],
        ct_log=values["ct_log"],
    )
