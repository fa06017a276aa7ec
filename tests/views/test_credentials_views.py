"""SSL > Entrust > Manage > Credentials: pages and fragments, roles, Test Login, delete, and
that a credential's secrets never appear in a response, a log line or the database file."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import _client_as, link_sandbox
from tests.helpers import HTMX, planned_rows
from tests.unit.test_credentials import make_cert, pem
from webapp import housekeeping
from webapp.audit.models import AuditEvent
from webapp.catalog.models import CatalogDomain
from webapp.credentials import clients, service
from webapp.credentials.models import EcsCredential
from webapp.ecs import clear_budgets
from webapp.extensions import db

SECRET_KEY = "Xy-very-secret-api-key-4711"


@pytest.fixture(autouse=True)
def fast_client(monkeypatch):
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    clear_budgets()


def form(sb, **kw):
    values = {
        "name": "Sandbox",
        "api_user": sb.api_user,
        "api_key": sb.api_key,
        "base_url": sb.base_url,
        "proxy": "",
        "is_admin": "1",
    }
    values.update(kw)
    return values


def test_empty_tab_tells_what_to_enter(admin_client):
    page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert "Link your Entrust account" in page and "Add Credential" in page
    assert "User Name" in page and "API Key" in page and "Test Login" in page
    assert "Add the sandbox credential" not in page
    for tab in ("Credentials", "Organizations", "Domains", "Products"):
        assert f">{tab}</a>" in page


def test_demo_offers_one_click_sandbox(app, admin_client, sandbox):
    sandbox.seed(certificates=5, seed=2)
    app.config.update(
        DEMO_SANDBOX_URL=sandbox.base_url,
        DEMO_SANDBOX_USER=sandbox.api_user,
        DEMO_SANDBOX_KEY=sandbox.api_key,
    )
    page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert "Add the sandbox credential" in page and sandbox.base_url in page
    # Entered by hand, the credential needs its administrator rights box ticked, as the one-click
    # credential has it.
    assert "leave <strong>Has Entrust administrator rights</strong> ticked" in page
    form = admin_client.get("/entrust/manage/credentials/new").get_data(as_text=True)
    assert 'name="is_admin" value="1" checked' in form  # as the instructions say
    resp = admin_client.post("/entrust/manage/credentials/sandbox")
    assert resp.status_code == 303 and "job=" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Entrust sandbox" in page and "Succeeded" in page
    assert "Link your Entrust account" not in page


@pytest.mark.parametrize("bulk", [True, False])
def test_a_large_sync_gathers_the_planner_statistics(admin_client, sandbox, monkeypatch, bulk):
    """A sync that adds many domains has SQLite plan the Domains tab by its new size at once;
    a small one leaves the statistics alone."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps its own statistics")
    sandbox.seed(certificates=5, seed=2)
    monkeypatch.setattr(housekeeping, "BULK_ROWS", 5 if bulk else 10_000)
    before = planned_rows("catalog_domain")
    resp = admin_client.post("/entrust/manage/credentials/new", data=form(sandbox))
    assert "Succeeded" in admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    db.session.rollback()
    domains = len(db.session.execute(select(CatalogDomain.id)).all())
    assert domains >= 5
    assert planned_rows("catalog_domain") == (domains if bulk else before)


def test_add_credential_starts_a_sync_and_shows_its_progress(admin_client, sandbox):
    sandbox.seed(certificates=5, seed=2)
    resp = admin_client.post("/entrust/manage/credentials/new", data=form(sandbox))
    assert resp.status_code == 303
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="job-' in page and "Full sync of Sandbox" in page and "added" in page
    assert "Sandbox" in page
    cred = db.session.execute(select(EcsCredential)).scalar_one()
    assert cred.domains_synced_at is not None
    # Never tested by hand, but Entrust took it for the sync: the status says so.
    status = page.split(f'id="cred-{cred.id}-status"')[1].split("</td>")[0]
    assert "Synced" in status and "Not tested" not in status
    assert "accepted it at the last sync" in status and "Test Login" not in status
    # htmx: the same form answers with HX-Redirect
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=form(sandbox, name="Second"), headers=HTMX
    )
    assert resp.status_code == 204 and "job=" in resp.headers["HX-Redirect"]


def test_a_credential_being_synced_says_so_rather_than_untested(admin_client, user, sandbox):
    """While a sync of a credential never tested by hand is queued or running, its status
    says the sync is under way (it said "Not tested" until the list reloaded at the end)."""
    from webapp.catalog import service as catalog
    from webapp.jobs import service as jobs
    from webapp.jobs.models import RUNNING, SUCCEEDED

    def add(name):
        data = service.CredentialInput(
            name=name, api_user=sandbox.api_user, api_key=sandbox.api_key, base_url=sandbox.base_url
        )
        return service.create(user["admin"], data, start_sync=False)[0]

    cred, other = add("Sandbox"), add("Other")
    job = jobs.queue(catalog.JOB_KIND, "Full sync", credential_ids=[cred.id], kinds=["domains"])
    db.session.commit()

    def status_of(credential):
        page = admin_client.get("/entrust/manage/").get_data(as_text=True)
        return page.split(f'id="cred-{credential.id}-status"')[1].split("</td>")[0]

    for state in ("queued", RUNNING):
        job.state = state
        db.session.commit()
        assert '<span class="badge muted">Syncing</span>' in status_of(cred)
        assert "Not tested" not in status_of(cred)
        assert "Not tested" in status_of(other) and "Syncing" not in status_of(other)
    job.state = SUCCEEDED
    db.session.commit()
    assert "Syncing" not in status_of(cred) and "Not tested" in status_of(cred)


def test_a_credential_whose_first_sync_failed_says_so_not_untested(admin_client, sandbox):
    """A wrong API key saved: its sync fails at once, and the row's status says that Entrust
    refused it rather than that it was never tried."""
    sandbox.seed(certificates=0, seed=2)
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=form(sandbox, api_key="not-the-key")
    )
    assert resp.status_code == 303
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    cred = db.session.execute(select(EcsCredential)).scalar_one()
    assert cred.last_sync_error and cred.last_test_at is None
    status = page.split(f'id="cred-{cred.id}-status"')[1].split("</td>")[0]
    assert '<span class="badge bad">Sync failed</span>' in status
    assert "Not tested" not in status and "Wrong user name or API key" in status


def _flash(page: str) -> str:
    found = re.search(r'<article class="flash[^"]*"[^>]*>(.*?)</article>', page, re.S)
    assert found, page[:2000]
    return found.group(1)


@pytest.mark.parametrize("how", ["form", "demo"])
def test_the_saved_message_stays_true_when_the_first_sync_fails(app, admin_client, sandbox, how):
    """Saved with a key Entrust refuses, the credential's first sync fails at once: the message
    above the job card says a sync was started and where to follow it, never that the catalog
    is syncing while the card below says Failed."""
    sandbox.seed(certificates=0, seed=2)
    if how == "form":
        resp = admin_client.post(
            "/entrust/manage/credentials/new", data=form(sandbox, api_key="not-the-key")
        )
    else:
        app.config.update(
            DEMO_SANDBOX_URL=sandbox.base_url,
            DEMO_SANDBOX_USER=sandbox.api_user,
            DEMO_SANDBOX_KEY="not-the-key",
        )
        resp = admin_client.post("/entrust/manage/credentials/sandbox")
    assert resp.status_code == 303 and "job=" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    card = page.split('id="job-')[1].split("</article>")[0]
    assert "Failed" in card and "Wrong user name or API key" in card
    said = _flash(page)
    assert "syncing" not in said, said
    assert "a first sync of its organizations, domains and products was started" in said
    assert "shown below" in said


def test_invalid_form_shows_errors_next_to_fields(admin_client, sandbox):
    resp = admin_client.post("/entrust/manage/credentials/new", data=form(sandbox, name=""))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="name-error"' in body and 'aria-invalid="true"' in body
    assert sandbox.api_key not in body  # the key typed is not sent back
    # The first field starts with the focus; after a refusal, the first wrong one has it.
    blank = admin_client.get("/entrust/manage/credentials/new").get_data(as_text=True)
    assert re.search(r'<input id="name" [^>]*autofocus>', blank)
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=form(sandbox, base_url="ftp://x")
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and re.search(r'<input id="base_url" [^>]*autofocus>', body)
    assert body.count("autofocus") == 1
    resp = admin_client.post(
        "/entrust/manage/credentials/new",
        data={**form(sandbox), "client_key": (io.BytesIO(b"junk"), "k.pem")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422 and "together" in resp.get_data(as_text=True)
    assert db.session.execute(select(EcsCredential)).first() is None


def test_a_refused_form_asks_again_for_the_key_and_files_it_does_not_send_back(
    admin_client, sandbox, tmp_path
):
    """The API key typed and the client certificate's files chosen do not come back with a
    refused form: it says to give them again, rather than refusing the next Save for them."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    cert, key = make_cert("api-client")
    bundle = pkcs12.serialize_key_and_certificates(
        b"client", key, cert, None, BestAvailableEncryption(b"right-password")
    )
    resp = admin_client.post(
        "/entrust/manage/credentials/new",
        data={
            **form(sandbox),
            "pkcs12": (io.BytesIO(bundle), "client.p12"),
            "pkcs12_password": "wrong-password",
        },
        content_type="multipart/form-data",
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'id="pkcs12-error"' in body
    assert sandbox.api_key not in body and "right-password" not in body
    help_ = re.search(r'<small id="api_key-help"[^>]*>([^<]*)</small>', body).group(1)
    assert help_ == "Type the API Key again: CertDesk never sends a key back to the browser."
    assert 'id="files-again"' in body
    # Nothing typed, nothing chosen: nothing to ask for again.
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=form(sandbox, name="", api_key="")
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Type the API Key again" not in body
    assert 'id="files-again"' not in body
    assert db.session.execute(select(EcsCredential)).first() is None


def test_a_private_key_typed_in_any_field_is_refused_and_never_shown(admin_client, sandbox):
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (secret, material) in pasted_private_keys().items():
        for field in ("name", "api_user", "api_key", "base_url", "proxy"):
            data = form(sandbox, **{field: secret})
            resp = admin_client.post("/entrust/manage/credentials/new", data=data)
            body = resp.get_data(as_text=True)
            assert not [m for m in material if m in body], (shape, field)
            assert resp.status_code == 400, (shape, field)
            assert f"The form field “{field}” holds a private key" in body, (shape, field)
    assert db.session.execute(select(EcsCredential)).first() is None


@pytest.mark.parametrize("field", ["base_url", "proxy"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://[::1", "https://x.example:0/"])
def test_a_url_with_no_usable_port_is_refused_next_to_its_field(admin_client, sandbox, field, url):
    """An address Python cannot take apart (a port past 65535, a bracket left open) gets the
    field's message, on saving and on Test Login alike, and nothing is saved."""
    for path in ("/entrust/manage/credentials/new", "/entrust/manage/credentials/test"):
        resp = admin_client.post(path, data=form(sandbox, **{field: url}))
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422, (path, body[-800:])
        said = re.search(rf'id="{field}-help" class="field-error">([^<]*)<', body)
        assert said and "from 1 to 65535" in said.group(1), body[-800:]
    assert db.session.execute(select(EcsCredential)).first() is None


def test_form_test_login_in_words(admin_client, sandbox):
    ok = admin_client.post("/entrust/manage/credentials/test", data=form(sandbox), headers=HTMX)
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "Test Login succeeded" in body and "<html" not in body
    assert "Entrust answered: ECS API version" in body and body.count("succeeded") == 1
    bad = admin_client.post(
        "/entrust/manage/credentials/test", data=form(sandbox, api_key="wrong"), headers=HTMX
    )
    assert "Wrong user name or API key" in bad.get_data(as_text=True)
    # without htmx: the whole form with the result
    page = admin_client.post(
        "/entrust/manage/credentials/test", data=form(sandbox, api_key="wrong")
    )
    text = page.get_data(as_text=True)
    assert "<html" in text and "Wrong user name or API key" in text
    down = admin_client.post(
        "/entrust/manage/credentials/test",
        data=form(sandbox, base_url="http://127.0.0.1:9/enterprise/v2/"),
        headers=HTMX,
    )
    assert "Host unreachable" in down.get_data(as_text=True)
    assert db.session.execute(select(EcsCredential)).first() is None


def test_form_test_login_waits_after_ten_failures(admin_client, sandbox):
    """Test Login on the form sends the key typed: after ten failures in ten minutes the user
    waits (each a failed login at Entrust, which may lock the API user; the form is no key
    oracle). The refusal sends nothing to Entrust and is in the trail."""
    url = "/entrust/manage/credentials/test"
    for i in range(10):
        bad = admin_client.post(url, data=form(sandbox, api_key=f"guess{i}"), headers=HTMX)
        assert "Wrong user name or API key" in bad.get_data(as_text=True)
    sandbox.clear_requests()
    held = admin_client.post(url, data=form(sandbox), headers=HTMX).get_data(as_text=True)
    assert "Test Login failed 10 times in the last 10 minutes: try again in 10 minutes" in held
    assert sandbox.requests() == []
    page = admin_client.post(url, data=form(sandbox))
    assert page.status_code == 422 and "try again in 10 minutes" in page.get_data(as_text=True)
    refused = (
        db.session.execute(
            select(AuditEvent).where(
                AuditEvent.outcome == "refused", AuditEvent.action == "credential.test"
            )
        )
        .scalars()
        .all()
    )
    assert len(refused) == 2 and all(e.actor_name == "admin" for e in refused)
    # The oldest failure leaves the window: one more try. (The trail refuses changes through
    # the ORM; the test moves the time back below it.)
    table = AuditEvent.__table__
    seq, at = db.session.execute(
        select(table.c.seq, table.c.at)
        .where(table.c.action == "credential.test", table.c.outcome == "failure")
        .order_by(table.c.seq)
        .limit(1)
    ).one()
    db.session.execute(
        table.update().where(table.c.seq == seq).values(at=at - timedelta(minutes=11))
    )
    db.session.commit()
    ok = admin_client.post(url, data=form(sandbox), headers=HTMX).get_data(as_text=True)
    assert "Test Login succeeded" in ok


def test_row_test_login_as_operator(app, admin_client, operator_client, sandbox, user):
    cred, _ = service.create(
        user["admin"],
        service.CredentialInput(
            **{k: v for k, v in form(sandbox).items() if k not in ("is_admin",)}
        ),
        start_sync=False,
    )
    frag = operator_client.post(f"/entrust/manage/credentials/{cred.id}/test", headers=HTMX)
    body = frag.get_data(as_text=True)
    assert frag.status_code == 200 and body.lstrip().startswith("<td") and "Login OK" in body
    resp = operator_client.post(f"/entrust/manage/credentials/{cred.id}/test")
    assert resp.status_code == 303
    assert operator_client.get(f"/entrust/manage/credentials/{cred.id}").status_code == 403
    assert operator_client.post(f"/entrust/manage/credentials/{cred.id}/delete").status_code == 403
    assert (
        operator_client.post("/entrust/manage/credentials/new", data=form(sandbox)).status_code
        == 403
    )


@pytest.mark.parametrize("role", ["admin", "operator", "auditor"])
def test_everyone_reads_the_tab(app, role, user, sandbox):
    from tests.conftest import Client

    service.create(
        user["admin"],
        service.CredentialInput(
            name="Read me", api_user="u", api_key="k", base_url=sandbox.base_url
        ),
        start_sync=False,
    )
    app.test_client_class = Client
    c = app.test_client()
    c.login(role)
    page = c.get("/entrust/manage/").get_data(as_text=True)
    assert "Read me" in page
    assert ("Add Credential" in page) is (role == "admin")
    assert ("Test Login" in page) is (role != "auditor")


def test_edit_delete_and_disable(admin_client, sandbox, user):
    sandbox.seed(certificates=3, seed=1)
    cred, _ = service.create(
        user["admin"],
        service.CredentialInput(
            name="Old",
            api_user=sandbox.api_user,
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
        ),
    )
    page = admin_client.get(f"/entrust/manage/credentials/{cred.id}").get_data(as_text=True)
    assert "leave empty to keep" in page and sandbox.api_key not in page
    resp = admin_client.post(
        f"/entrust/manage/credentials/{cred.id}", data=form(sandbox, name="New", api_key="")
    )
    assert resp.status_code == 303
    db.session.expire_all()
    assert service.get(cred.id).name == "New"
    # The trail says from what to what: the name it had, the one it has.
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.update")
    ).scalar_one()
    detail = json.loads(event.detail)
    assert detail["changed"] == ["name"] and detail["name"] == "New"
    assert detail["from"] == {"name": "Old"}
    assert (event.actor_name, event.object_id) == ("admin", str(cred.id))

    # Disabling from the list asks first and says what it stops.
    listing = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert 'data-confirm="Disable the credential New? CertDesk stops syncing' in listing
    assert (
        admin_client.post(
            f"/entrust/manage/credentials/{cred.id}/enabled", data={"enabled": "0"}
        ).status_code
        == 303
    )
    db.session.expire_all()
    assert not service.get(cred.id).enabled
    admin_client.post(f"/entrust/manage/credentials/{cred.id}/enabled", data={"enabled": "1"})

    confirm = admin_client.get(f"/entrust/manage/credentials/{cred.id}/delete")
    text = confirm.get_data(as_text=True)
    assert "Disable instead" in text and "marked gone" in text
    assert 'data-confirm="Delete the credential New? Its stored API key is erased' in text
    refused = admin_client.post(f"/entrust/manage/credentials/{cred.id}/delete")
    assert refused.status_code == 422 and "Tick the box" in refused.get_data(as_text=True)
    done = admin_client.post(f"/entrust/manage/credentials/{cred.id}/delete", data={"confirm": "1"})
    assert done.status_code == 303
    db.session.expire_all()
    assert service.get(cred.id) is None
    domains = list(db.session.execute(select(CatalogDomain)).scalars())
    assert domains and all(d.gone_at is not None for d in domains)
    assert admin_client.get(f"/entrust/manage/credentials/{cred.id}").status_code == 404


def test_the_tab_counts_a_credentials_domains_only_up_to_a_bound(
    admin_client, sandbox, user, monkeypatch
):
    """The Credentials tab and the delete page count each credential's current rows along its
    index up to COUNTED_UP_TO, then say "more than": counted whole at every view, 100,000 domains
    and organizations took the tab 70 ms, growing with them."""
    from tests import plans
    from webapp.dbtypes import utcnow

    cred = link_sandbox(user, sandbox, "Big")
    db.session.execute(db.delete(CatalogDomain))  # whatever the sync brought: only these
    now = utcnow()
    for i in range(9):
        gone = i >= 7
        name = f"host{i}.example.com"
        db.session.add(
            CatalogDomain(
                credential_id=cred.id,
                client_id=1,
                name=name,
                name_reversed=name[::-1],
                verification_status="APPROVED",
                first_seen_at=now,
                updated_at=now,
                gone_at=now if gone else None,
                gone=gone,
            )
        )
    db.session.commit()

    def domains_shown():
        page = admin_client.get("/entrust/manage/").get_data(as_text=True)
        cell = page.split('data-label="Domains">')[1].split("</td>")[0]
        return re.sub(r"<[^>]+>", "", cell)

    monkeypatch.setattr(service, "COUNTED_UP_TO", 5, raising=False)
    with plans.captured() as seen:
        assert domains_shown() == "more than 5"
    read = [sql for sql, _ in seen if "catalog_domain" in sql]
    assert read and all(" LIMIT " in sql.upper() for sql in read), read
    delete = admin_client.get(f"/entrust/manage/credentials/{cred.id}/delete")
    assert "more than 5 domains" in delete.get_data(as_text=True)
    monkeypatch.setattr(service, "COUNTED_UP_TO", 7, raising=False)
    assert domains_shown() == "7"  # the 2 gone are not counted


def test_pages_have_no_inline_scripts_or_styles(admin_client, sandbox, user):
    service.create(
        user["admin"],
        service.CredentialInput(name="X", api_user="u", api_key="k", base_url=sandbox.base_url),
        start_sync=False,
    )
    urls = [
        "/entrust/manage/",
        "/entrust/manage/credentials/new",
        "/entrust/manage/credentials/1",
        "/entrust/manage/credentials/1/delete",
        "/entrust/manage/organizations",
        "/entrust/manage/domains",
        "/entrust/manage/products",
        "/admin/settings/",
    ]
    for url in urls:
        resp = admin_client.get(url)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200, url
        assert "<script>" not in html and " style=" not in html and "<style" not in html, url
        assert " onclick=" not in html and " hx-on" not in html, url


def test_secrets_never_leave_the_box(app, admin_client, operator_client, sandbox, caplog):
    """The API key and the client key appear in no page, fragment, log line, audit row or in
    the database file."""
    caplog.set_level(logging.DEBUG)
    sandbox.seed(certificates=3, seed=4)
    sandbox.add_user("secret-user", api_key=SECRET_KEY)
    cert, key = make_cert("secret-client")
    cert_pem, key_pem = pem(cert, key)
    key_line = key_pem.decode().splitlines()[2]
    data = {
        **form(sandbox, api_user="secret-user", api_key=SECRET_KEY),
        "client_cert": (io.BytesIO(cert_pem), "c.pem"),
        "client_key": (io.BytesIO(key_pem), "k.pem"),
    }
    bodies = []
    resp = admin_client.post(
        "/entrust/manage/credentials/test",
        data=dict(
            data,
            client_cert=(io.BytesIO(cert_pem), "c.pem"),
            client_key=(io.BytesIO(key_pem), "k.pem"),
        ),
        content_type="multipart/form-data",
        headers=HTMX,
    )
    bodies.append(resp.get_data(as_text=True))
    assert "Test Login succeeded" in bodies[-1]
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=data, content_type="multipart/form-data"
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    cred = db.session.execute(select(EcsCredential)).scalar_one()
    bodies.append(admin_client.get(resp.headers["Location"]).get_data(as_text=True))
    assert "Succeeded" in bodies[-1]
    for url in [
        "/entrust/manage/",
        f"/entrust/manage/credentials/{cred.id}",
        f"/entrust/manage/credentials/{cred.id}/delete",
        "/entrust/manage/organizations",
        "/entrust/manage/domains",
        "/entrust/manage/products",
        "/jobs/",
        "/jobs/1",
        "/admin/audit/",
        "/admin/audit/export.csv",
    ]:
        bodies.append(admin_client.get(url).get_data(as_text=True))
        bodies.append(admin_client.get(url, headers=HTMX).get_data(as_text=True))
    bodies.append(
        operator_client.post(f"/entrust/manage/credentials/{cred.id}/test", headers=HTMX).get_data(
            as_text=True
        )
    )
    bodies.append(
        admin_client.post(
            f"/entrust/manage/credentials/{cred.id}", data=form(sandbox, api_key="")
        ).get_data(as_text=True)
    )
    bodies.append(
        admin_client.post(
            "/entrust/manage/credentials/test",
            data=form(sandbox, api_key="bad-" + SECRET_KEY),
            headers=HTMX,
        ).get_data(as_text=True)
    )
    for body in bodies:
        assert SECRET_KEY not in body and key_line not in body
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "ECS GET" in logs  # the client did log its requests
    assert SECRET_KEY not in logs and key_line not in logs
    db.session.remove()
    db.engine.dispose()
    instance = Path(app.instance_path)
    for f in instance.glob("certdesk.db*"):
        raw = f.read_bytes()
        assert SECRET_KEY.encode() not in raw and key_line.encode() not in raw, f


def test_no_page_shows_the_demo_sandbox_key(app, admin_client, operator_client, auditor_client):
    app.config.update(
        DEMO_SANDBOX_URL="http://127.0.0.1:8443/enterprise/v2/",
        DEMO_SANDBOX_USER="certdesk-demo",
        DEMO_SANDBOX_KEY=SECRET_KEY,
    )
    admin_page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert SECRET_KEY not in admin_page and "Add the sandbox credential" in admin_page
    # Entered by hand, the key is read from the file make run keeps it in.
    assert "certdesk-demo" in admin_page and "<code>instance/sandbox/api-key</code>" in admin_page
    # make run names the file where it is, for an instance anywhere.
    app.config["DEMO_SANDBOX_KEY_FILE"] = "/srv/certdesk data/sandbox/api-key"
    admin_page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert "<code>/srv/certdesk data/sandbox/api-key</code>" in admin_page
    for client in (operator_client, auditor_client):
        page = client.get("/entrust/manage/").get_data(as_text=True)
        assert SECRET_KEY not in page and "certdesk-demo" not in page
        assert "Entrust sandbox" in page and "Only an administrator can add credentials" in page
        frag = client.get("/entrust/manage/", headers=HTMX).get_data(as_text=True)
        assert SECRET_KEY not in frag


@pytest.mark.parametrize(
    "field,typed,shown",
    [
        ("proxy", "http://u:secret-pw@proxy:3128", "http://u:***@proxy:3128"),
        ("proxy", "http://u:p@ss@proxy:99999", "http://u:***@proxy:99999"),  # refused for its port
        ("base_url", "https://u:secret-pw@api.example.com/", "https://u:***@api.example.com/"),
    ],
)
def test_a_password_typed_into_an_address_is_not_sent_back(
    admin_client, sandbox, field, typed, shown
):
    """Refused (CertDesk would store it in clear), the address comes back for correction
    without its password, on saving and on Test Login alike."""
    for path in ("/entrust/manage/credentials/new", "/entrust/manage/credentials/test"):
        resp = admin_client.post(path, data=form(sandbox, **{field: typed}))
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422, path
        assert "secret-pw" not in body and "p@ss" not in body, path
        assert f'id="{field}" name="{field}"' in body and f'value="{shown}"' in body, path
    # A refusal of another field gives back an address with an "@" in its path as it was.
    kept = "https://api.example.com:443/enterprise/v2/@x/"
    resp = admin_client.post(
        "/entrust/manage/credentials/new", data=form(sandbox, name="", base_url=kept)
    )
    assert resp.status_code == 422 and f'value="{kept}"' in resp.get_data(as_text=True)
    assert db.session.execute(select(EcsCredential)).first() is None


def test_the_delete_page_names_the_unfinished_jobs_of_the_credential(
    app, admin_client, sandbox, user, fast_clients
):
    """A sync and an import of the credential wait in the queue: its delete page says so, and
    that they will not run; after the deletion both end failed, having run nothing."""
    from tests.helpers import wait_finished, workers_held
    from webapp.catalog import service as catalog
    from webapp.jobs.models import Job
    from webapp.orders import importing

    sandbox.seed(certificates=3, seed=1)
    cred = link_sandbox(user, sandbox)
    other = link_sandbox(user, sandbox, name="Other")
    text = admin_client.get(f"/entrust/manage/credentials/{cred.id}/delete").get_data(as_text=True)
    assert "background job" not in text
    with workers_held(app):
        waiting = [
            importing.start_import(user["operator"], cred.id, list(importing.DEFAULT_EXCLUSIONS)),
            catalog.start_sync(user["admin"], [cred.id], catalog.KINDS),
            importing.start_import(user["operator"], other.id, []),  # another credential's
        ]
        page = admin_client.get(f"/entrust/manage/credentials/{cred.id}/delete")
        text = " ".join(page.get_data(as_text=True).split())
        assert "2 background jobs</strong> of this credential (sync, import) have not finished" in (
            text
        )
        assert "one not started yet does nothing for this credential" in text
        assert "(a sync of several credentials still runs for the others)" in text
        done = admin_client.post(
            f"/entrust/manage/credentials/{cred.id}/delete", data={"confirm": "1"}
        )
        assert done.status_code == 303
        sandbox.clear_requests()
    wait_finished(*(j.id for j in waiting))
    db.session.expire_all()
    assert [db.session.get(Job, j.id).state for j in waiting[:2]] == ["failed", "failed"]


def _status(page: str, cred_id: int) -> str:
    return page.split(f'id="cred-{cred_id}-status"')[1].split("</td>")[0]


def _last_sync(page: str, cred_id: int) -> str:
    row = page.split(f'id="cred-{cred_id}"')[1]
    return row.split('data-label="Last sync">')[1].split("</td>")[0]


def test_a_changed_login_is_not_shown_with_the_old_ones_test_or_sync_verdict(
    admin_client, sandbox, user
):
    """Saved with a wrong key, tested and synced: the row says Login failed. With the API key
    (or the user, or the client certificate) changed, it says it is not tested since the
    change, not the old Login failed or Sync failed; a rename keeps what it said."""
    sandbox.seed(certificates=0, seed=2)
    cred, job = service.create(
        user["admin"],
        service.CredentialInput(**{**form(sandbox, api_key="not-the-key"), "is_admin": True}),
    )
    assert job.state == "failed"
    service.test_login(user["operator"], cred)
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Login failed" in status and "Wrong user name or API key" in status
    assert "Tested " in status and "Noted " not in status  # a Test Login said it

    resp = admin_client.post(f"/entrust/manage/credentials/{cred.id}", data=form(sandbox))
    assert resp.status_code == 303
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Not tested since the change" in status and "Test Login checks them" in status
    for stale in ("Login failed", "Sync failed", "Wrong user name or API key"):
        assert stale not in status, stale

    # Tested now: the row says what this login gave; a new name alone keeps it.
    db.session.expire_all()
    assert service.test_login(user["operator"], service.get(cred.id)).ok
    resp = admin_client.post(
        f"/entrust/manage/credentials/{cred.id}", data=form(sandbox, name="Renamed", api_key="")
    )
    assert resp.status_code == 303
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Login OK" in status and "since the change" not in status
    # The same API key typed again (as the form asks after a move) is no change of login.
    resp = admin_client.post(
        f"/entrust/manage/credentials/{cred.id}", data=form(sandbox, name="Renamed again")
    )
    assert resp.status_code == 303
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Login OK" in status and "since the change" not in status
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "credential.update").order_by(AuditEvent.id)
    ).all()[-1]
    assert "api_key" not in json.dumps(event.detail) and "Renamed again" in json.dumps(event.detail)
    # Moved to another address with the same key: what was tested was the old address.
    moved = sandbox.base_url.replace("127.0.0.1", "localhost")
    resp = admin_client.post(
        f"/entrust/manage/credentials/{cred.id}",
        data=form(sandbox, name="Renamed", base_url=moved),
    )
    assert resp.status_code == 303
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Not tested since the change" in status and "Login OK" not in status
    assert "base URL" in status
    db.session.expire_all()
    assert service.test_login(user["operator"], service.get(cred.id)).ok

    # The API user changed: the Login OK of the other user is gone too.
    resp = admin_client.post(
        f"/entrust/manage/credentials/{cred.id}",
        data=form(sandbox, name="Renamed", api_user="someone-else", api_key="", base_url=moved),
    )
    assert resp.status_code == 303
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Not tested since the change" in status and "Login OK" not in status


def test_a_sync_after_the_change_speaks_for_the_new_login(admin_client, sandbox, user):
    """Changed, then synced with the new key: Entrust accepted it, and the row says so."""
    from webapp.catalog import service as catalog

    sandbox.seed(certificates=0, seed=2)
    cred, job = service.create(
        user["admin"],
        service.CredentialInput(**{**form(sandbox, api_key="not-the-key"), "is_admin": True}),
    )
    assert job.state == "failed"
    admin_client.post(f"/entrust/manage/credentials/{cred.id}", data=form(sandbox))
    assert catalog.start_sync(user["admin"], [cred.id], catalog.KINDS).state == "succeeded"
    status = _status(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Synced" in status and "accepted it at the last sync" in status
    assert "since the change" not in status and "Sync failed" not in status


def test_last_sync_says_when_the_latest_sync_failed_and_why(admin_client, sandbox, user):
    """A sync that failed after one that succeeded: the Last sync column says Failed, when and
    why in short, and when the last one succeeded, instead of the older success alone; the next
    successful sync shows its time alone again."""
    from webapp.catalog import service as catalog

    sandbox.seed(certificates=2, seed=2)
    cred = link_sandbox(user, sandbox)
    page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    cell = _last_sync(page, cred.id)
    assert "Failed" not in cell and "Never" not in cell
    synced = service.get(cred.id)
    succeeded_at = max(synced.organizations_synced_at, synced.domains_synced_at)

    sandbox.faults([{"kind": "http_503", "path": "/enterprise/v2/clients*"}])
    try:
        assert catalog.start_sync(user["admin"], [cred.id], catalog.KINDS).state == "failed"
    finally:
        sandbox.clear_faults()
    db.session.expire_all()
    cell = _last_sync(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Failed" in cell, cell
    failed_at = service.get(cred.id).last_sync_failed_at
    assert failed_at is not None and failed_at >= succeeded_at
    failed, reason, last_ok = cell.split("<small")
    assert '<span class="badge bad">Failed</span>' in failed
    assert failed_at.strftime("%Y-%m-%d %H:%M") in failed
    assert "Entrust server error (HTTP 503)" in reason and "nothing was changed" not in reason
    assert "Last successful: " in last_ok and succeeded_at.strftime("%Y-%m-%d %H:%M") in last_ok

    assert catalog.start_sync(user["admin"], [cred.id], catalog.KINDS).state == "succeeded"
    cell = _last_sync(admin_client.get("/entrust/manage/").get_data(as_text=True), cred.id)
    assert "Failed" not in cell and "HTTP 503" not in cell
    db.session.expire_all()
    assert service.get(cred.id).last_sync_failed_at is None


def test_a_sync_of_other_kinds_leaves_a_failed_kind_said(admin_client, sandbox, user):
    """The domains' sync failed, then the products' succeeded: the row still says the latest
    domains sync failed (the products' success says nothing about them); a successful domains
    sync clears it."""
    from webapp.catalog import service as catalog

    sandbox.seed(certificates=2, seed=2)
    cred = link_sandbox(user, sandbox)
    sandbox.faults([{"kind": "http_503", "path": "/enterprise/v2/domains*"}])
    try:
        assert catalog.start_sync(user["admin"], [cred.id], ["domains"]).state == "failed"
    finally:
        sandbox.clear_faults()
    assert catalog.start_sync(user["admin"], [cred.id], ["products"]).state == "succeeded"
    page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    cell = _last_sync(page, cred.id)
    assert '<span class="badge bad">Failed</span>' in cell and "(domains)" in cell
    assert "HTTP 503" in cell and "Sync failed" in _status(page, cred.id)

    assert catalog.start_sync(user["admin"], [cred.id], ["domains"]).state == "succeeded"
    page = admin_client.get("/entrust/manage/").get_data(as_text=True)
    assert "Failed" not in _last_sync(page, cred.id)
    assert "Sync failed" not in _status(page, cred.id)


def _stamp_of(page: str) -> str:
    m = re.search(r'name="stamp" value="([0-9a-f]+)"', page)
    assert m, "no stamp on the form"
    return m.group(1)


def _sandbox_credential(admin, sb, name="Shared"):
    cred, _ = service.create(
        admin,
        service.CredentialInput(
            name=name, api_user=sb.api_user, api_key=sb.api_key, base_url=sb.base_url
        ),
        start_sync=False,
    )
    return cred


def test_a_form_opened_before_someone_elses_save_does_not_undo_it(app, sandbox, user):
    """Two administrators (or two tabs) edit one credential: the second save, from a form opened
    before the first was saved, is refused and says so, rather than overwriting it unseen."""
    cred = _sandbox_credential(user["admin"], sandbox)
    url = f"/entrust/manage/credentials/{cred.id}"
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    stamp_first = _stamp_of(first.get(url).get_data(as_text=True))
    stamp_second = _stamp_of(second.get(url).get_data(as_text=True))

    saved = first.post(url, data=form(sandbox, name="Renamed", api_key="", stamp=stamp_first))
    assert saved.status_code == 303
    refused = second.post(
        url, data=form(sandbox, name="Mine", api_key="", proxy="http://p:3128", stamp=stamp_second)
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "saved elsewhere" in page and "Nothing was saved" in page
    db.session.expire_all()
    assert (service.get(cred.id).name, service.get(cred.id).proxy) == ("Renamed", "")
    # The form shown again holds the stored values and their stamp: saved again, it goes through.
    assert 'value="Renamed"' in page and 'value="Mine"' not in page
    again = second.post(url, data=form(sandbox, name="Mine", api_key="", stamp=_stamp_of(page)))
    assert again.status_code == 303
    db.session.expire_all()
    assert service.get(cred.id).name == "Mine"
    updates = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.update")
    ).scalars()
    assert len(list(updates)) == 2


def test_a_refused_field_keeps_the_stamp_the_form_was_opened_with(app, sandbox, user):
    """A stale form sent back for a field error still carries its old stamp: correcting the field
    does not slip past the change saved meanwhile."""
    cred = _sandbox_credential(user["admin"], sandbox)
    url = f"/entrust/manage/credentials/{cred.id}"
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    stale = _stamp_of(second.get(url).get_data(as_text=True))
    fresh = _stamp_of(first.get(url).get_data(as_text=True))
    shown = second.post(url, data=form(sandbox, name="", api_key="", stamp=stale))
    assert shown.status_code == 422 and _stamp_of(shown.get_data(as_text=True)) == stale
    assert first.post(url, data=form(sandbox, name="Theirs", api_key="", stamp=fresh)).status_code
    resent = second.post(url, data=form(sandbox, name="Mine", api_key="", stamp=stale))
    assert resent.status_code == 409
    db.session.expire_all()
    assert service.get(cred.id).name == "Theirs"


def test_a_sync_or_test_login_meanwhile_does_not_refuse_the_form(app, admin_client, sandbox, user):
    cred = _sandbox_credential(user["admin"], sandbox)
    url = f"/entrust/manage/credentials/{cred.id}"
    stamp = _stamp_of(admin_client.get(url).get_data(as_text=True))
    assert admin_client.post(f"{url}/test").status_code == 303
    saved = admin_client.post(url, data=form(sandbox, name="After test", api_key="", stamp=stamp))
    assert saved.status_code == 303


def test_what_is_sent_for_a_credential_deleted_meanwhile_is_refused_in_words(app, sandbox, user):
    """One administrator deletes a credential while another has its form, its row or its delete
    page open (or clicks Delete twice): what they send next changes and sends nothing, and says
    the credential was deleted."""
    cred = _sandbox_credential(user["admin"], sandbox)
    url = f"/entrust/manage/credentials/{cred.id}"
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    stamp = _stamp_of(second.get(url).get_data(as_text=True))
    assert first.post(f"{url}/delete", data={"confirm": "1"}).status_code == 303
    sandbox.clear_requests()

    for path, data in (
        (url, form(sandbox, name="Saved late", api_key="", stamp=stamp)),
        (url, form(sandbox, name="Saved late", api_key="")),
        (f"{url}/test", {}),
        (f"{url}/enabled", {"enabled": "1"}),
        (f"{url}/delete", {"confirm": "1"}),  # the second click of a double click
    ):
        resp = second.post(path, data=data)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 409, (path, resp.status_code)
        assert "was deleted after this page was opened" in text and "nothing was done" in text
    assert sandbox.requests() == []
    db.session.expire_all()
    gone = service.get(cred.id, include_deleted=True)
    assert gone.name == "Shared" and not gone.enabled and gone.last_test_at is None
    deletions = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.delete")
    ).scalars()
    assert len(list(deletions)) == 1


def test_a_second_click_on_add_the_sandbox_credential_adds_none(app, sandbox):
    """A double click (or the button of a second tab opened before the first click) adds the
    sandbox once, and starts one first sync."""
    app.config.update(
        DEMO_SANDBOX_URL=sandbox.base_url,
        DEMO_SANDBOX_USER=sandbox.api_user,
        DEMO_SANDBOX_KEY=sandbox.api_key,
    )
    first, second = _client_as(app, "admin"), _client_as(app, "admin")
    assert "Add the sandbox credential" in second.get("/entrust/manage/").get_data(as_text=True)
    assert first.post("/entrust/manage/credentials/sandbox").status_code == 303
    resp = second.post("/entrust/manage/credentials/sandbox")
    assert resp.status_code == 303 and "job=" not in resp.headers["Location"]
    page = second.get(resp.headers["Location"]).get_data(as_text=True)
    assert "The sandbox is linked already, as the credential Entrust sandbox" in page
    assert "nothing was added" in page
    db.session.expire_all()
    assert [c.name for c in service.list_credentials()] == ["Entrust sandbox"]
    created = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.create")
    ).scalars()
    assert len(list(created)) == 1


def test_why_admin_rights_were_cleared_describes_their_box(admin_client, user, sandbox):
    cred = link_sandbox(user, sandbox)
    page = admin_client.get(f"/entrust/manage/credentials/{cred.id}").get_data(as_text=True)
    assert 'id="is_admin-note"' not in page and 'aria-describedby="is_admin-note"' not in page
    cred.admin_note = "Entrust refused an approval: this API user has no administrator rights."
    db.session.commit()
    page = admin_client.get(f"/entrust/manage/credentials/{cred.id}").get_data(as_text=True)
    box = re.search(r'<input id="is_admin"[^>]*>', page).group(0)
    assert 'aria-describedby="is_admin-note"' in box
    assert '<small class="field-error" id="is_admin-note">Entrust refused an approval' in page


def test_one_sending_names_every_field_in_error(admin_client):
    """A form with several mistakes names each of them at once, the cursor in the first, and
    stores nothing."""
    resp = admin_client.post(
        "/entrust/manage/credentials/new",
        data={"name": "", "api_user": "", "api_key": "", "base_url": "ftp://x", "proxy": "p"},
    )
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    for field, words in [
        ("name", "Enter a credential name."),
        ("api_user", "Enter the API user name from Entrust."),
        ("api_key", "Enter the API key."),
        ("base_url", "Enter the base URL as an http:// or https:// URL"),
        ("proxy", "Enter the HTTPS proxy as an http:// or https:// URL"),
    ]:
        assert words in page, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page), field
    assert re.search(r'id="name"[^>]*autofocus', page)
    assert len(re.findall(r"\bautofocus\b", page)) == 1
    assert db.session.scalar(select(func.count()).select_from(EcsCredential)) == 0


@pytest.mark.parametrize("field", ["client_cert", "client_key", "pkcs12", "ca_bundle"])
def test_a_credential_file_over_a_mib_is_refused_on_its_field(admin_client, sandbox, field):
    """Each file of the credential form is read with the upload limit (1 MiB): a bigger one is
    refused next to its field, within the request's own limit, and nothing is stored."""
    big = b"-----BEGIN CERTIFICATE-----\n" + b"A" * (1024 * 1024) + b"\n"
    resp = admin_client.post(
        "/entrust/manage/credentials/new",
        data={**form(sandbox), field: (io.BytesIO(big), "big.pem")},
        content_type="multipart/form-data",
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, page[:500]
    assert "big.pem: the file is larger than 1,024 KiB." in page
    assert db.session.execute(select(func.count()).select_from(EcsCredential)).scalar_one() == 0
