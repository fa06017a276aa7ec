"""The catalog sync against the real sandbox: what it stores, how a second sync counts changes,
and that every fault kind ends the job in words with the previous data intact."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import event, select

from tests.helpers import HTMX, at_once, wait_finished, workers_held
from tests.integration.helpers import new_request
from webapp.audit.models import AuditEvent
from webapp.catalog import service as catalog
from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
from webapp.credentials import clients
from webapp.credentials import service as credentials
from webapp.ecs import EcsClient, clear_budgets
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import Job
from webapp.settings import service as settings

SEED = 11


@pytest.fixture(autouse=True)
def fast_client(monkeypatch):
    """No real waiting between GET retries, short timeouts; a fresh request budget per test."""
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})
    clear_budgets()
    yield
    clear_budgets()


@pytest.fixture
def seeded(sandbox):
    sandbox.seed(certificates=20, seed=SEED)
    return sandbox


def _upstream(sb) -> dict:
    """What the sandbox holds, read independently of CertDesk's client."""
    auth = (sb.api_user, sb.api_key)

    def get(path):
        r = requests.get(sb.base_url + path, auth=auth, timeout=30)
        r.raise_for_status()
        return r.json()

    clients = get("clients")["clients"]
    orgs = {
        ("client", c["clientId"], c["clientName"], c["verificationStatus"].upper()) for c in clients
    }
    orgs |= {
        ("organization", o.get("clientId", 1), o["name"], o["verificationStatus"].upper())
        for o in get("organizations")["organizations"]
    }
    domains = {
        (
            d["clientId"],
            d["domainName"],
            d.get("verificationStatus", d.get("status")),
            d["verificationMethod"],
            d["ovEligible"],
            d["evEligible"],
        )
        for d in get("domains?limit=1000")["domains"]
    }
    body = get("inventories")
    inventory = body.get("inventories", body.get("inventory"))
    products = {
        (p["productType"], p.get("totalCount"), p.get("usedCount"), p.get("remainingCount"))
        for p in inventory
    }
    return {"organizations": orgs, "domains": domains, "products": products}


def _mirror(cred_id: int, current_only: bool = True) -> dict:
    db.session.expire_all()

    def rows(model):
        stmt = select(model).where(model.credential_id == cred_id)
        if current_only:
            stmt = stmt.where(model.gone_at.is_(None))
        return list(db.session.execute(stmt).scalars())

    return {
        "organizations": {
            (o.kind, o.client_id, o.name, o.verification_status) for o in rows(CatalogOrganization)
        },
        "domains": {
            (
                d.client_id,
                d.name,
                d.verification_status,
                d.verification_method,
                d.ov_eligible,
                d.ev_eligible,
            )
            for d in rows(CatalogDomain)
        },
        "products": {
            (p.product_type, p.total_count, p.used_count, p.remaining_count)
            for p in rows(CatalogProduct)
        },
    }


def _snapshot(cred_id: int) -> list:
    """Every mirrored row with every column, gone ones included."""
    db.session.expire_all()
    out = []
    for model in (CatalogOrganization, CatalogDomain, CatalogProduct):
        for row in db.session.execute(
            select(model).where(model.credential_id == cred_id).order_by(model.id)
        ).scalars():
            out.append({c.name: getattr(row, c.name) for c in model.__table__.columns})
    return out


def _add(user, sb, name="Sandbox", **kwargs):
    data = credentials.CredentialInput(
        name=name, api_user=sb.api_user, api_key=sb.api_key, base_url=sb.base_url, **kwargs
    )
    return credentials.create(user["admin"], data)


def _sync(user, cred, kinds=catalog.KINDS):
    job = catalog.start_sync(user["operator"], [cred.id], kinds)
    db.session.expire_all()
    return jobs.get(job.id)


def test_first_sync_mirrors_exactly_what_the_sandbox_holds(app, user, seeded):
    cred, job = _add(user, seeded)
    assert job.state == "succeeded", job.error
    upstream = _upstream(seeded)
    mirror = _mirror(cred.id)
    assert mirror == upstream
    assert len(upstream["domains"]) >= 10 and len(upstream["products"]) >= 10
    result = jobs.result_of(job)
    assert result == {
        "added": sum(len(v) for v in upstream.values()),
        "updated": 0,
        "gone": 0,
    }
    db.session.refresh(cred)
    assert cred.organizations_synced_at and cred.domains_synced_at and cred.products_synced_at
    # the two example.com domains of different clients are two rows
    assert {(d[0], d[1]) for d in mirror["domains"] if d[1] == "example.com"} == {
        (1, "example.com"),
        (2, "example.com"),
    }
    events = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "catalog.sync")
    ).scalars()
    assert [e.outcome for e in events] == ["success"]


def test_second_sync_updates_marks_gone_and_counts(app, user, seeded):
    cred, job = _add(user, seeded)
    assert job.state == "succeeded"
    before = _upstream(seeded)

    # Entrust vets a pending domain, one domain disappears, an order uses inventory.
    seeded.set_domain_status("pending.example", "APPROVED", client_id=1)
    seeded.remove_domain("declined.example")
    with EcsClient(seeded.base_url, seeded.api_user, seeded.api_key) as ecs:
        ecs.new_certificate(new_request("shop.example.com"))
    after = _upstream(seeded)
    changed_products = len(after["products"] - before["products"])
    assert changed_products >= 1

    job = _sync(user, cred)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job) == {"added": 0, "updated": 1 + changed_products, "gone": 1}
    assert _mirror(cred.id) == after
    rows = {
        d.name: d
        for d in db.session.execute(
            select(CatalogDomain).where(CatalogDomain.client_id == 1)
        ).scalars()
    }
    assert rows["pending.example"].verification_status == "APPROVED"
    assert rows["declined.example"].gone_at is not None  # kept, marked gone
    standard = db.session.execute(
        select(CatalogProduct).where(CatalogProduct.product_type == "STANDARD_SSL")
    ).scalar_one()
    old_used = next(p[2] for p in before["products"] if p[0] == "STANDARD_SSL")
    assert standard.used_count == old_used + 1

    # A third sync with nothing new changes nothing, and writes no row of the catalog: a sync of
    # a large unchanged account must not hold the write lock to rewrite every row.
    writes = []

    def note(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        job = _sync(user, cred)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert jobs.result_of(job) == {"added": 0, "updated": 0, "gone": 0}
    assert not [w for w in writes if "catalog_" in w], writes
    assert any("ecs_credential" in w for w in writes)  # the sync's time is noted


def test_one_kind_only(app, user, seeded):
    cred, _ = _add(user, seeded)
    seeded.set_domain_status("pending.example", "APPROVED", client_id=1)
    job = _sync(user, cred, ["domains"])
    assert job.state == "succeeded"
    assert jobs.result_of(job) == {"added": 0, "updated": 1, "gone": 0}
    assert "Domains" in job.title


FAULTS = [
    ("http_500", {}, "Entrust server error (HTTP 500)"),
    ("http_502", {}, "Entrust server error (HTTP 502)"),
    ("http_503", {}, "Entrust server error (HTTP 503)"),
    ("http_504", {}, "Entrust server error (HTTP 504)"),
    ("rate_limit", {"retry_after": 1}, "Rate limit"),
    ("timeout", {"ms": 2500}, "Timeout"),
    ("reset", {}, "cut off"),
    ("malformed_json", {}, "answered, but not as the ECS API does"),
    ("truncated_body", {}, "answered, but not as the ECS API does"),
    ("html_error_page", {}, "Entrust server error (HTTP 502)"),
    ("commit_then_500", {}, "Entrust server error (HTTP 500)"),
    ("commit_then_timeout", {"ms": 2500}, "Timeout"),
]


def test_every_fault_kind_is_covered():
    from entrust_sandbox.traffic import FAULT_KINDS

    assert {k for k, _, _ in FAULTS} | {"latency"} == set(FAULT_KINDS)


@pytest.mark.parametrize("kind,extra,words", FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_ends_the_sync_in_words_and_keeps_the_previous_data(
    app, user, seeded, kind, extra, words
):
    settings.put(clients.READ_TIMEOUT, 1)
    db.session.commit()
    cred, job = _add(user, seeded)
    assert job.state == "succeeded"
    before = _snapshot(cred.id)
    # Something changed upstream, but the sync cannot read all of it.
    seeded.set_domain_status("pending.example", "APPROVED", client_id=1)
    seeded.faults([{"kind": kind, "path": "/enterprise/v2/inventories", **extra}])

    job = _sync(user, cred)
    assert job.state == "failed"
    assert job.error.startswith("Sync of Sandbox failed; nothing was changed.")
    assert words in job.error, job.error
    assert "sandbox-admin-key" not in job.error
    assert _snapshot(cred.id) == before  # the domain change read before the fault is not applied
    db.session.refresh(cred)
    assert cred.last_sync_error == job.error
    last = (
        db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == "catalog.sync")
            .order_by(AuditEvent.seq.desc())
        )
        .scalars()
        .first()
    )
    assert last.outcome == "failure"

    seeded.clear_faults()
    job = _sync(user, cred)
    assert job.state == "succeeded"
    assert jobs.result_of(job)["updated"] == 1


def test_latency_only_slows_the_sync(app, user, seeded):
    cred, _ = _add(user, seeded)
    seeded.faults([{"kind": "latency", "ms": 300, "path": "/enterprise/v2/domains"}])
    assert _sync(user, cred).state == "succeeded"


def test_wrong_key_fails_in_words(app, user, seeded):
    data = credentials.CredentialInput(
        name="Wrong", api_user=seeded.api_user, api_key="not-the-key", base_url=seeded.base_url
    )
    cred, job = credentials.create(user["admin"], data)
    assert job.state == "failed"
    assert "Wrong user name or API key" in job.error
    assert _snapshot(cred.id) == []


def test_scheduled_sync_runs_every_enabled_credential(app, user, seeded):
    a, _ = _add(user, seeded, name="A")
    b, _ = _add(user, seeded, name="B")
    credentials.set_enabled(user["admin"], b, False)
    seeded.set_domain_status("pending.example", "APPROVED", client_id=1)
    catalog.scheduled_sync()
    job = jobs.recent(1)[0]
    assert job.state == "succeeded" and "scheduled" in job.title
    assert jobs.result_of(job)["updated"] == 1  # only A was synced
    db.session.expire_all()
    pending_b = db.session.execute(
        select(CatalogDomain).where(
            CatalogDomain.credential_id == b.id, CatalogDomain.name == "pending.example"
        )
    ).scalar_one()
    assert pending_b.verification_status == "INITIAL_VERIFICATION"


def test_a_failed_sync_of_one_tab_names_what_it_synced(app, user, seeded):
    cred, job = _add(user, seeded)
    assert job.state == "succeeded", job.error
    seeded.faults([{"kind": "http_503", "path": "/enterprise/v2/domains"}])
    try:
        job = _sync(user, cred, kinds=("domains",))
    finally:
        seeded.clear_faults()
    assert job.state == "failed"
    assert job.error.startswith("Sync of Sandbox's domains failed; nothing was changed."), job.error
    db.session.refresh(cred)
    assert cred.last_sync_error == job.error


def _sync_jobs(cred_id: int) -> list[Job]:
    db.session.expire_all()
    return [
        j
        for j in jobs.recent_of_kind(catalog.JOB_KIND, 50)
        if cred_id in jobs.params_of(j)["credential_ids"]
    ]


def test_two_syncs_of_one_credential_asked_for_at_once_start_one(app, user, seeded):
    """Two requests to sync the same credential at the same moment: one sync runs, the other
    request is told it is running (no second sync writing the same rows beside it)."""
    from webapp.auth import service as auth

    cred, first = _add(user, seeded)
    cred_id = cred.id

    def click_sync():
        try:
            return catalog.start_sync(auth.by_username("operator"), [cred_id], catalog.KINDS).id
        except catalog.SyncRunning as exc:
            return ("running", exc.job.id)

    with workers_held(app):  # the sync started first stays queued: it has not finished
        outcomes = at_once(app, click_sync)
    started = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, tuple)]
    assert len(started) == 1 and refused == [("running", started[0])], outcomes
    wait_finished(*started)
    ran = _sync_jobs(cred_id)
    assert [j.id for j in ran] == [started[0], first.id]
    assert all(j.state == "succeeded" for j in ran), [j.error for j in ran]


def test_sync_asked_for_while_one_runs_shows_that_one(app, user, seeded, operator_client):
    """The first sync of a new credential still running when someone clicks Sync: the click is
    told so in a notice and shown the running sync; none starts beside it, nor is the scheduled
    sync started over it."""
    cred, _ = _add(user, seeded)
    running = Job(
        kind=catalog.JOB_KIND,
        state="running",
        params=f'{{"credential_ids": [{cred.id}], "kinds": ["organizations", "domains"]}}',
    )
    db.session.add(running)
    db.session.commit()
    before = len(_sync_jobs(cred.id))
    resp = operator_client.post(
        "/entrust/manage/sync", data={"credential": cred.id, "kind": "domains", "next": "domains"}
    )
    assert resp.status_code == 303 and resp.location.endswith(f"/domains?job={running.id}")
    page = operator_client.get(resp.location).get_data(as_text=True)
    assert "flash-info" in page and f"already running (job {running.id})" in page
    assert f'id="job-{running.id}"' in page
    frag = operator_client.post(
        "/entrust/manage/sync", data={"credential": cred.id, "kind": "all"}, headers=HTMX
    ).get_data(as_text=True)
    assert "flash-info" in frag and f'id="job-{running.id}"' in frag and "Not done" not in frag
    catalog.scheduled_sync()
    assert len(_sync_jobs(cred.id)) == before
    # Another kind of the same credential is another sync: it starts.
    assert _sync(user, cred, kinds=["products"]).state == "succeeded"


def test_scheduler_interval_follows_the_setting(app):
    from datetime import timedelta

    assert catalog.sync_interval() == timedelta(hours=24)
    settings.put(catalog.SYNC_INTERVAL_HOURS, 2)
    db.session.commit()
    assert catalog.sync_interval() == timedelta(hours=2)
    task = app.extensions["certdesk_scheduler"].tasks["catalog.sync"]
    assert task.interval() == timedelta(hours=2)


def test_test_login_against_the_sandbox(app, user, seeded):
    cred, _ = _add(user, seeded)
    result = credentials.test_login(user["operator"], cred)
    assert result.ok and result.message.startswith("Entrust answered: ECS API version ")
    seeded.faults([{"kind": "http_503", "path": "/enterprise/v2/application/version"}])
    result = credentials.test_login(user["operator"], cred)
    assert not result.ok and "HTTP 503" in result.message
    assert cred.last_test_ok is False


def test_a_credential_deleted_or_disabled_while_its_sync_waits_is_not_synced(
    app, user, seeded, fast_clients
):
    """A sync waiting in the queue when its credentials are deleted and disabled asks nothing of
    Entrust for them and fails saying so; before, the deleted one was passed over and the job
    "succeeded" with "Synced ... of no credential", and the disabled one was synced anyway."""
    from tests.conftest import link_sandbox

    gone = link_sandbox(user, seeded, name="Gone")
    off = link_sandbox(user, seeded, name="Off")
    with workers_held(app):
        job = catalog.start_sync(user["admin"], [gone.id, off.id], catalog.KINDS)
        credentials.delete(user["admin"], gone, confirmed=True)
        credentials.set_enabled(user["admin"], off, False)
        seeded.clear_requests()
    wait_finished(job.id)
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "failed"
    assert "Gone was not synced: it was deleted after the sync was asked." in job.error
    assert "Off was not synced: it was disabled after the sync was asked." in job.error
    assert seeded.requests() == []


def test_a_credential_deleted_while_its_sync_reads_keeps_nothing_the_sync_read(
    app, user, seeded, monkeypatch
):
    """Deleted while its sync waits on Entrust's answers: the sync writes nothing when they come,
    and says why. Before, it wrote every organization, domain and product afterwards as current,
    under the deleted credential, where no sync would ever mark them gone."""
    import time

    from tests.conftest import link_sandbox

    cred = link_sandbox(user, seeded, name="Leaving")
    cred_id = cred.id
    seeded.clear_requests()
    seeded.faults([{"kind": "latency", "ms": 1500, "path": "/enterprise/v2/inventories"}])
    monkeypatch.setitem(app.config, "JOBS_RUN_INLINE", False)  # the sync runs in a worker
    job = catalog.start_sync(user["admin"], [cred_id], catalog.KINDS)
    deadline = time.monotonic() + 20
    while not any(r["path"].endswith("/inventories") for r in seeded.requests()):
        assert time.monotonic() < deadline, "the sync never asked for the products"
        time.sleep(0.05)
    detail = credentials.delete(user["admin"], credentials.get(cred_id), confirmed=True)
    wait_finished(job.id)
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "failed", job.result
    assert "Leaving was deleted while it synced; nothing was kept." in job.error
    assert detail["name"] == "Leaving"
    for model in (CatalogOrganization, CatalogDomain, CatalogProduct):
        rows = db.session.scalars(select(model).where(model.credential_id == cred_id)).all()
        assert rows and all(r.gone_at is not None for r in rows), model.__name__


def test_the_scheduled_sync_skips_a_credential_deleted_or_disabled_while_it_waits(
    app, user, seeded, fast_clients
):
    """The schedule syncs the credentials in use: one deleted and one disabled while its sync
    waits are passed over, and the job says so without failing (nothing went wrong); the
    credential still in use is synced, and nothing is asked of Entrust for the other two."""
    from tests.conftest import link_sandbox

    gone = link_sandbox(user, seeded, name="Gone")
    off = link_sandbox(user, seeded, name="Off")
    kept = link_sandbox(user, seeded, name="Kept")
    with workers_held(app):
        catalog.scheduled_sync()
        job = jobs.recent(1)[0]
        assert "scheduled" in job.title
        credentials.delete(user["admin"], gone, confirmed=True)
        credentials.set_enabled(user["admin"], off, False)
        seeded.clear_requests()
    wait_finished(job.id)
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "succeeded", job.error
    assert job.message.startswith("Synced organizations, domains, products of Kept.")
    assert "Gone was skipped: it was deleted after the sync was queued." in job.message
    assert "Off was skipped: it was disabled after the sync was queued." in job.message
    # One credential's sync (the three share the sandbox's API user): one list of clients.
    assert [r["path"] for r in seeded.requests()].count("/enterprise/v2/clients") == 1
    assert db.session.get(type(kept), kept.id).last_sync_error == ""

    # All of them gone: a sync with nothing to do, said as such.
    with workers_held(app):
        catalog.scheduled_sync()
        job = jobs.recent(1)[0]
        credentials.set_enabled(user["admin"], kept, False)
    wait_finished(job.id)
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "succeeded", job.error
    assert job.message == (
        "No credential was synced. Kept was skipped: it was disabled after the sync was queued."
    )


def test_names_unusual_and_longer_than_their_column_sync_and_show(app, user, seeded, admin_client):
    """Entrust names of every kind are mirrored: right-to-left text, emoji, markup, names that
    differ only in case or a trailing space or dot, each its own row shown escaped; a client or
    organization name longer than its column is kept to the column with a visible "…" (not a
    failed sync: PostgreSQL refuses the longer value), and a second sync finds it unchanged."""
    long_org = "Ö" * 120 + "x" * 400
    long_client = "عميل " + "y" * 400
    odd = ['שלום עולם בע"מ', "Acme 🚀 <b>bold</b>", "Acme", "ACME", "Acme ", "Acme."]
    for name in [long_org, *odd]:
        seeded.add_organization(1, name)
    seeded.rename_client(2, long_client)

    cred, job = _add(user, seeded)
    assert job.state == "succeeded", job.error
    rows = db.session.execute(
        select(CatalogOrganization).where(CatalogOrganization.credential_id == cred.id)
    ).scalars()
    names = {(r.kind, r.client_id, r.name) for r in rows}
    for name in odd:
        assert ("organization", 1, name) in names
    kept_org = long_org[:299] + "…"
    kept_client = long_client[:299] + "…"
    assert ("organization", 1, kept_org) in names
    assert ("client", 2, kept_client) in names
    domain_clients = db.session.execute(
        select(CatalogDomain.client_name).where(CatalogDomain.client_id == 2)
    ).scalars()
    assert set(domain_clients) == {kept_client}

    job = _sync(user, cred)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job) == {"added": 0, "updated": 0, "gone": 0}

    page = admin_client.get("/entrust/manage/organizations?q=acme").get_data(as_text=True)
    assert "Acme 🚀 &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    page = admin_client.get("/entrust/manage/organizations?q=ÖÖÖ").get_data(as_text=True)
    assert kept_org in page
