"""A credential whose API key stopped working at Entrust (changed in Entrust's portal): every
call through it is answered 401. The Credentials page and the failed jobs say so; another
credential of the account carries on as before."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.integration.helpers import second_credential
from webapp.audit.models import AuditEvent
from webapp.catalog import service as catalog
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import importing, polling
from webapp.orders.models import Order

pytestmark = pytest.mark.usefixtures("fast_clients")

NEW_KEY = "a-key-changed-at-entrust-0123456789"
REFUSED = "Wrong user name or API key: Entrust refused them (HTTP 401"


def _status_cell(client, cred) -> str:
    page = client.get("/entrust/manage/").get_data(as_text=True)
    cell = page.split(f'id="cred-{cred.id}-status"')[1].split(">", 1)[1].split("</td>")[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", cell))).strip()


def _refusals(cred) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "credential.login_refused", AuditEvent.object_id == str(cred.id)
        )
    ).scalar_one()


@pytest.fixture
def key_changed_at_entrust(sandbox):
    """Call it to change the sandbox administrator's API key, as Entrust's portal would; the
    key is put back after the test (the sandbox keeps its users across resets)."""
    yield lambda key=NEW_KEY: sandbox.add_user(sandbox.api_user, api_key=key)
    sandbox.add_user(sandbox.api_user, api_key=sandbox.api_key)


def test_a_key_changed_at_entrust_shows_on_the_credential_and_in_the_failed_jobs(
    app, user, sandbox, admin_client, key_changed_at_entrust
):
    sandbox.seed(certificates=20, seed=8)
    cred = link_sandbox(user, sandbox)
    assert importing.start_import(user["operator"], cred.id, []).state == "succeeded"
    other = second_credential(user, sandbox)
    assert _status_cell(admin_client, cred).startswith("Synced")

    key_changed_at_entrust()
    for row in db.session.execute(select(Order)).scalars():
        row.next_check_at = utcnow()
    db.session.commit()
    polling.scheduled_poll()
    job = db.session.execute(select(Job).where(Job.kind == "orders.poll")).scalar_one()
    assert job.state == "failed" and f"Credential Sandbox: {REFUSED}" in job.error
    cell = _status_cell(admin_client, cred)
    assert cell.startswith("Login failed")
    assert f"Entrust refused this login during the scheduled status check: {REFUSED}" in cell
    assert "Noted " in cell and "Tested " not in cell  # no Test Login said this
    assert _status_cell(admin_client, other).startswith("Synced")  # the other one is fine
    assert _refusals(cred) == 1

    # The import through it fails, saying why; the refusal is not audited once per call.
    failed = importing.start_import(user["operator"], cred.id, [])
    assert failed.state == "failed" and REFUSED in failed.error
    assert _refusals(cred) == 1
    assert _status_cell(admin_client, cred).startswith("Login failed")
    # The other credential's import runs as before (the orders stay with the first).
    counts = importing.start_import(user["operator"], other.id, [])
    assert counts.state == "succeeded", counts.error
    assert _refusals(other) == 0

    # The key is put back at Entrust: the next sync through it clears the note.
    key_changed_at_entrust(sandbox.api_key)
    job = catalog.start_sync(user["admin"], [cred.id], catalog.KINDS)
    assert job.state == "succeeded", job.error
    assert _status_cell(admin_client, cred).startswith("Synced")


def test_a_sync_refused_at_entrust_is_shown_over_an_older_test(
    app, user, sandbox, admin_client, key_changed_at_entrust
):
    """A Test Login that passed before the key changed at Entrust does not keep saying Login
    OK beside a sync Entrust refused."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=0)
    cred = link_sandbox(user, sandbox)
    assert credentials.test_login(user["admin"], cred).ok
    key_changed_at_entrust()
    job = catalog.start_sync(user["admin"], [cred.id], catalog.KINDS)
    assert job.state == "failed" and REFUSED in job.error
    cell = _status_cell(admin_client, cred)
    assert cell.startswith("Sync failed") and "Login OK" not in cell
    assert "Last sync: Sync of Sandbox failed; nothing was changed. " + REFUSED in cell


def _accepted(cred) -> list:
    return list(
        db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "credential.login_accepted",
                AuditEvent.object_id == str(cred.id),
            )
        ).scalars()
    )


def _due_now() -> None:
    for row in db.session.execute(select(Order)).scalars():
        row.next_check_at = utcnow()
    db.session.commit()


def test_a_key_put_back_at_entrust_clears_login_failed_at_the_next_status_check(
    app, user, sandbox, admin_client, key_changed_at_entrust
):
    """The key is put back at Entrust (the one CertDesk holds works again): the next status
    check Entrust answers clears Login failed, audited once, without a call of its own."""
    sandbox.seed(certificates=20, seed=8)
    cred = link_sandbox(user, sandbox)
    assert importing.start_import(user["operator"], cred.id, []).state == "succeeded"
    key_changed_at_entrust()
    _due_now()
    polling.scheduled_poll()
    assert _status_cell(admin_client, cred).startswith("Login failed")

    key_changed_at_entrust(sandbox.api_key)
    _due_now()
    sandbox.clear_requests()
    polling.scheduled_poll()
    assert _status_cell(admin_client, cred).startswith("Synced")
    [event] = _accepted(cred)
    assert event.actor_name == "scheduler" and event.outcome == "success"
    detail = json.loads(event.detail)
    assert detail["during"] == "the scheduled status check"
    assert detail["cleared"].startswith("Entrust refused this login during")
    # No call was added for it: the check's own calls list the certificates, nothing else.
    paths = {r["path"] for r in sandbox.requests()}
    assert paths == {"/enterprise/v2/certificates"}, paths

    # Checked again, nothing more to clear, nothing more audited.
    _due_now()
    polling.scheduled_poll()
    assert len(_accepted(cred)) == 1


def test_a_key_put_back_at_entrust_clears_login_failed_at_the_next_import(
    app, user, sandbox, admin_client, key_changed_at_entrust
):
    sandbox.seed(certificates=20, seed=8)
    cred = link_sandbox(user, sandbox)
    key_changed_at_entrust()
    failed = importing.start_import(user["operator"], cred.id, [])
    assert failed.state == "failed" and REFUSED in failed.error
    assert _status_cell(admin_client, cred).startswith("Login failed")

    key_changed_at_entrust(sandbox.api_key)
    job = importing.start_import(user["operator"], cred.id, [])
    assert job.state == "succeeded", job.error
    assert _status_cell(admin_client, cred).startswith("Synced")
    [event] = _accepted(cred)
    assert event.actor_name == "operator" and json.loads(event.detail)["during"] == "an import"
    assert _refusals(cred) == 1


def test_an_answer_to_a_call_made_before_the_refusal_does_not_clear_it(app, user, sandbox):
    """A check's call answered, but made before another check's call was refused (the key was
    changed at Entrust in between): the refusal stands. One made after it clears it, once."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=0)
    cred = link_sandbox(user, sandbox)
    before = utcnow()
    credentials.login_refused(cred.id, REFUSED, "a status check", "operator")
    db.session.commit()
    credentials.login_accepted(cred.id, "a status check", before, "operator")
    db.session.commit()
    db.session.refresh(cred)
    assert cred.last_test_ok is False and _accepted(cred) == []
    for _ in range(2):
        credentials.login_accepted(cred.id, "a status check", utcnow(), "operator")
        db.session.commit()
    db.session.refresh(cred)
    assert cred.last_test_ok is None and cred.last_test_message == ""
    assert len(_accepted(cred)) == 1


def test_an_answer_to_a_call_made_before_a_repeated_refusal_does_not_clear_it(app, user, sandbox):
    """Refused, then a call made (an import's), then refused again with the same words (a
    check's, noted once): the answer to the call made between them does not clear the newer
    refusal, and the refusal is audited once."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=0)
    cred = link_sandbox(user, sandbox)
    credentials.login_refused(cred.id, REFUSED, "a status check", "scheduler")
    db.session.commit()
    between = utcnow()
    credentials.login_refused(cred.id, REFUSED, "a status check", "scheduler")
    db.session.commit()
    credentials.login_accepted(cred.id, "an import", between, "operator")
    db.session.commit()
    db.session.refresh(cred)
    assert cred.last_test_ok is False and _accepted(cred) == []
    assert _refusals(cred) == 1


def test_a_key_changed_at_entrust_while_certificates_are_imported_stops_the_import(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch
):
    """The order list read, the key is changed at Entrust before the certificates are fetched:
    the import stops there, saying to check the credential, the credential shows Login failed
    (audited once), and no order is marked as one whose certificate could not be fetched."""
    sandbox.seed(certificates=20, seed=8)
    cred = link_sandbox(user, sandbox)
    real = importing.upsert_page

    def then_the_key_changes(*args, **kwargs):
        counts = real(*args, **kwargs)
        key_changed_at_entrust()  # the one page read: step 2 (the certificates) is refused
        return counts

    monkeypatch.setattr(importing, "upsert_page", then_the_key_changes)
    job = importing.start_import(user["operator"], cred.id, [])
    assert job.state == "failed", job.message
    assert "stopped while fetching certificates" in job.error and REFUSED in job.error
    assert "Check the credential (Test Login" in job.error
    cell = _status_cell(admin_client, cred)
    assert cell.startswith("Login failed")
    assert f"Entrust refused this login during an import: {REFUSED}" in cell
    assert _refusals(cred) == 1
    marked = db.session.execute(
        select(func.count()).select_from(Order).where(Order.message.like("%could not be fetched%"))
    ).scalar_one()
    assert marked == 0


def test_a_sync_answered_before_a_refusal_leaves_login_failed_standing(
    app, user, sandbox, admin_client, monkeypatch
):
    """A sync's calls answered, then (before the sync stored what it read) a status check's
    call refused: the refusal, newer than the sync's calls, stands. A sync whose calls are made
    after it clears it, audited once."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=0)
    cred = link_sandbox(user, sandbox)
    real = catalog._fetch

    def then_a_check_is_refused(*args, **kwargs):
        fetched = real(*args, **kwargs)
        credentials.login_refused(cred.id, REFUSED, "the scheduled status check", "scheduler")
        db.session.commit()
        return fetched

    monkeypatch.setattr(catalog, "_fetch", then_a_check_is_refused)
    job = catalog.start_sync(user["admin"], [cred.id], catalog.KINDS)
    assert job.state == "succeeded", job.error
    assert _status_cell(admin_client, cred).startswith("Login failed")
    assert _accepted(cred) == []

    monkeypatch.setattr(catalog, "_fetch", real)
    job = catalog.start_sync(user["admin"], [cred.id], catalog.KINDS)
    assert job.state == "succeeded", job.error
    assert _status_cell(admin_client, cred).startswith("Synced")
    [event] = _accepted(cred)
    assert event.actor_name == "admin" and json.loads(event.detail)["during"] == "a sync"


def test_a_refusal_of_the_login_held_before_an_edit_is_not_noted_on_the_new_one(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch
):
    """A status check under way when the key is changed at Entrust and then in CertDesk: its
    next call, made with the key it started with, is refused. That says nothing of the key the
    credential holds now: the credential does not show Login failed for it."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=150, seed=8)
    cred = link_sandbox(user, sandbox)
    assert importing.start_import(user["operator"], cred.id, []).state == "succeeded"
    _due_now()
    real = polling._check_chunk
    calls = []

    def then_the_key_changes(*args, **kwargs):
        answered = real(*args, **kwargs)
        calls.append(answered)
        if len(calls) == 1:  # between the check's first call and its second
            key_changed_at_entrust()
            credentials.update(
                user["admin"],
                db.session.get(type(cred), cred.id),
                credentials.CredentialInput(
                    name="Sandbox",
                    api_user=sandbox.api_user,
                    api_key=NEW_KEY,
                    base_url=sandbox.base_url,
                ),
            )
        return answered

    monkeypatch.setattr(polling, "_check_chunk", then_the_key_changes)
    polling.scheduled_poll()
    assert calls[:2] == [True, False]  # the second call was refused (the key it held)
    assert not _status_cell(admin_client, cred).startswith("Login failed")
    assert _refusals(cred) == 0


def test_a_key_put_back_at_entrust_during_a_status_check_clears_its_own_refusal(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch
):
    """A status check whose first call is refused (the key changed at Entrust) and whose second
    is answered (the key put back there meanwhile): the login works again, and the credential
    no longer shows Login failed once the check ends, audited once each way."""
    sandbox.seed(certificates=150, seed=8)
    cred = link_sandbox(user, sandbox)
    assert importing.start_import(user["operator"], cred.id, []).state == "succeeded"
    _due_now()
    real = polling._check_chunk
    calls = []

    def refused_then_put_back(*args, **kwargs):
        if not calls:
            key_changed_at_entrust()
        answered = real(*args, **kwargs)
        calls.append(answered)
        if len(calls) == 1:  # between the check's first call and its second
            key_changed_at_entrust(sandbox.api_key)
        return answered

    monkeypatch.setattr(polling, "_check_chunk", refused_then_put_back)
    polling.scheduled_poll()
    assert calls[:2] == [False, True]
    assert _refusals(cred) == 1
    assert _status_cell(admin_client, cred).startswith("Synced")
    [event] = _accepted(cred)
    assert event.actor_name == "scheduler"
    detail = json.loads(event.detail)
    assert detail["during"] == "the scheduled status check"
    assert detail["cleared"].startswith("Entrust refused this login during")


def test_an_answer_with_the_login_held_before_an_edit_leaves_the_new_ones_failure(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch
):
    """A status check under way while the key is edited in CertDesk to one that Entrust
    refuses (its Test Login fails): the check's next call, made with the key it started with
    and answered, says nothing of the key held now, whose Login failed stands."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=150, seed=8)
    cred = link_sandbox(user, sandbox)
    assert importing.start_import(user["operator"], cred.id, []).state == "succeeded"
    _due_now()
    real = polling._check_chunk
    calls = []

    def then_the_key_is_edited(*args, **kwargs):
        if not calls:
            key_changed_at_entrust()  # the first call is refused
        answered = real(*args, **kwargs)
        calls.append(answered)
        if len(calls) == 1:
            key_changed_at_entrust(sandbox.api_key)  # the old key works again at Entrust
            credentials.update(
                user["admin"],
                db.session.get(type(cred), cred.id),
                credentials.CredentialInput(
                    name="Sandbox",
                    api_user=sandbox.api_user,
                    api_key=NEW_KEY,
                    base_url=sandbox.base_url,
                ),
            )
            test = credentials.test_login(user["admin"], db.session.get(type(cred), cred.id))
            assert not test.ok
        return answered

    monkeypatch.setattr(polling, "_check_chunk", then_the_key_is_edited)
    polling.scheduled_poll()
    assert calls[:2] == [False, True]
    assert _status_cell(admin_client, cred).startswith("Login failed")
    assert _accepted(cred) == []


def test_an_import_refused_with_the_login_held_before_an_edit_notes_nothing_on_the_new_one(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch
):
    """As for a status check: an import whose order list is refused with the key it started
    with, changed meanwhile at Entrust and in CertDesk, stops, but the credential does not show
    Login failed for the key it holds now."""
    from webapp.credentials import service as credentials

    sandbox.seed(certificates=20, seed=8)
    cred = link_sandbox(user, sandbox)
    monkeypatch.setattr(importing, "PAGE_SIZE", 2)
    real = importing.upsert_page
    pages = []

    def then_the_key_changes(*args, **kwargs):
        counts = real(*args, **kwargs)
        pages.append(1)
        if len(pages) == 1:
            key_changed_at_entrust()
            credentials.update(
                user["admin"],
                db.session.get(type(cred), cred.id),
                credentials.CredentialInput(
                    name="Sandbox",
                    api_user=sandbox.api_user,
                    api_key=NEW_KEY,
                    base_url=sandbox.base_url,
                ),
            )
        return counts

    monkeypatch.setattr(importing, "upsert_page", then_the_key_changes)
    job = importing.start_import(user["operator"], cred.id, [])
    assert job.state == "failed" and REFUSED in job.error
    assert not _status_cell(admin_client, cred).startswith("Login failed")
    assert _refusals(cred) == 0


def _fetches(sandbox) -> list[dict]:
    """The certificate fetches in the sandbox's request log (GET /certificates/{id})."""
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "GET" and r["path"].startswith("/enterprise/v2/certificates/")
    ]


@pytest.mark.parametrize("at_once", [1, 3])
def test_a_key_changed_at_entrust_while_certificates_are_fetched_stops_the_import(
    app, user, sandbox, admin_client, key_changed_at_entrust, monkeypatch, at_once
):
    """The key is changed at Entrust after the order list was read, while the certificates are
    fetched: the import stops at the first refused fetch (no fetch after it), notes Login failed
    on the credential (audited once), keeps what it stored, and says so. Started again once the
    key works, it carries on where it stopped and fetches only what it had not stored."""
    from webapp.certificates.models import Certificate
    from webapp.jobs import service as jobs
    from webapp.orders import records, service
    from webapp.settings import service as settings

    sandbox.seed(certificates=60, seed=8)
    cred = link_sandbox(user, sandbox)
    settings.put(service.IMPORT_CONCURRENCY, at_once)
    db.session.commit()
    monkeypatch.setattr(importing, "CERT_BATCH", 10)
    real = records.store_certificates
    stored = []

    def then_the_key_changes(*args, **kwargs):
        out = real(*args, **kwargs)
        stored.append(len(out))
        if len(stored) == 1:
            key_changed_at_entrust()
        return out

    monkeypatch.setattr(records, "store_certificates", then_the_key_changes)
    sandbox.clear_requests()
    first = importing.start_import(user["operator"], cred.id, [])
    db.session.refresh(first)
    assert first.state == "failed"
    assert first.error.startswith("Import of Sandbox stopped while fetching certificates: ")
    assert REFUSED in first.error
    assert re.search(r" So far: [\d,]+ new; ", first.error), first.error
    assert first.error.endswith(
        "Check the credential (Test Login under SSL › Entrust › Manage); once its login works, "
        "start the import again to carry on from there."
    ), first.error
    # No fetch after the refusal: only those already on their way when it came were refused.
    fetches = _fetches(sandbox)
    refused = [r for r in fetches if r["status"] == 401]
    assert 1 <= len(refused) <= at_once and fetches[-1]["status"] == 401
    cell = _status_cell(admin_client, cred)
    assert cell.startswith("Login failed")
    assert f"Entrust refused this login during an import: {REFUSED}" in cell
    assert _refusals(cred) == 1
    # What was stored before the refusal stays, and no order says its certificate failed.
    kept = db.session.execute(select(func.count()).select_from(Certificate)).scalar_one()
    assert kept > 0 and f"{kept} certificates added" in first.error
    assert " failed" not in first.error
    assert not db.session.execute(select(Order).where(Order.message != "")).scalars().all()
    checkpoint = jobs.checkpoint_of(first)
    assert checkpoint["phase"] == "certificates" and checkpoint["after_id"] > 0

    # The key is put back at Entrust: the import carries on from the first order not stored.
    monkeypatch.setattr(records, "store_certificates", real)
    key_changed_at_entrust(sandbox.api_key)
    sandbox.clear_requests()
    second = importing.start_import(user["operator"], cred.id, [])
    db.session.refresh(second)
    assert second.state == "succeeded", second.error
    assert "carrying on" in second.title
    assert not any(r["path"].rstrip("/").endswith("/certificates") for r in sandbox.requests())
    counts = jobs.result_of(second)  # over both runs
    assert counts["failed"] == 0
    total = db.session.execute(select(func.count()).select_from(Certificate)).scalar_one()
    assert total == counts["certificates"] == importing._with_certificate_count(cred.id)
    assert len(_fetches(sandbox)) == total - kept  # none fetched twice
    assert _status_cell(admin_client, cred).startswith("Synced")
    assert _refusals(cred) == 1 and len(_accepted(cred)) == 1
