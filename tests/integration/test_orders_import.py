"""Import Existing Orders against the real sandbox: what each exclusion leaves out, certificates
of issued orders into the repository, a second import that changes nothing, and imports cut short
by a fault or a dead process that carry on where they stopped."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from tests.conftest import link_sandbox
from tests.helpers import HTMX, at_once, wait_finished, workers_held
from tests.integration.helpers import new_request
from webapp.audit.models import AuditEvent
from webapp.certificates.models import Certificate
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient, types
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import Job
from webapp.orders import importing, queries
from webapp.orders.models import Order, OrderEvent

pytestmark = pytest.mark.usefixtures("fast_clients")
SEEDED = 210  # one third-party certificate per 200


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=SEEDED, seed=21)
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _key(item) -> str:
    if item.get("isThirdParty"):
        return item["uri"].rsplit("/", 1)[1].upper()
    return str(item["trackingId"])


def _count(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _import(user, cred, exclusions=importing.DEFAULT_EXCLUSIONS):
    job = importing.start_import(user["operator"], cred.id, list(exclusions))
    db.session.refresh(job)
    return job


def _outcome(user, cred) -> tuple[dict, str]:
    """An import's counts and the summary its job shows."""
    job = _import(user, cred)
    assert job.state == "succeeded", job.error
    return jobs.result_of(job), job.message


def _calls(sb) -> tuple[int, int]:
    """(list calls, detail calls) in the sandbox's request log."""
    paths = [r["path"].rstrip("/") for r in sb.requests() if r["method"] == "GET"]
    lists = sum(1 for p in paths if p.endswith("/certificates"))
    return lists, len(paths) - lists


def test_the_progress_names_its_step_and_starts_again_for_the_second(env, user):
    written = []  # each job progress the import writes, as the database receives it

    def keep(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE JOB") and "step " in str(params):
            written.append(str(params))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        _import(user, env)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    steps = ["step 1" if "step 1 of 2" in w else "step 2" for w in written]
    first_two = steps.index("step 2")
    assert first_two > 0 and set(steps[:first_two]) == {"step 1"}
    assert set(steps[first_two:]) == {"step 2"}
    assert "the order list" in written[0]
    assert "certificates of issued and renewed orders: starting" in written[first_two]


def test_the_progress_moves_while_a_batch_of_certificates_is_fetched(env, user, sandbox):
    """A batch is up to 200 orders; with a slow Entrust the bar moves within it each second
    rather than waiting at "starting" until the whole batch is stored."""
    from webapp.orders import service
    from webapp.settings import service as settings

    settings.put(service.IMPORT_CONCURRENCY, 1)
    db.session.commit()
    sandbox.faults(
        [{"kind": "latency", "ms": 25, "method": "GET", "path": "/enterprise/v2/certificates/*"}]
    )
    written = []

    def keep(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE JOB") and "step 2 of 2" in str(params):
            written.append(str(params))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        job = _import(user, env)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
        sandbox.clear_faults()
    assert job.state == "succeeded", job.error
    checked = [int(m.replace(",", "")) for w in written for m in re.findall(r"([\d,]+) checked", w)]
    total = jobs.result_of(job)["certificates"]
    assert total > 60  # a single batch of this phase takes over two seconds to fetch
    # Counts part-way through the first batch, rising, up to every order checked.
    assert checked == sorted(checked) and checked[-1] >= total
    assert len([c for c in checked if 0 < c < total]) >= 2, (total, checked)


def test_an_import_stops_when_its_credential_is_deleted_while_it_runs(
    app, env, user, sandbox, monkeypatch
):
    """The credential deleted while its import fetches certificates: the import stores nothing
    more and ends saying why; what it stored before stays. Before, it went on to the end with
    the key the credential no longer held."""
    import time

    from webapp.certificates.models import Certificate
    from webapp.credentials import service as credentials
    from webapp.orders import service
    from webapp.settings import service as settings

    settings.put(service.IMPORT_CONCURRENCY, 1)
    db.session.commit()
    sandbox.faults(
        [{"kind": "latency", "ms": 25, "method": "GET", "path": "/enterprise/v2/certificates/*"}]
    )
    monkeypatch.setitem(app.config, "JOBS_RUN_INLINE", False)  # the import runs in a worker
    job = importing.start_import(user["operator"], env.id, list(importing.DEFAULT_EXCLUSIONS))
    deadline = time.monotonic() + 30
    while _calls(sandbox)[1] < 5:  # step 2 under way: certificates being fetched
        assert time.monotonic() < deadline, "the import never fetched a certificate"
        time.sleep(0.05)
    credentials.delete(user["admin"], credentials.get(env.id), confirmed=True)
    stored_then = _count(Certificate)
    wait_finished(job.id)
    sandbox.clear_faults()
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "failed"
    assert "Import of Sandbox stopped: the credential was deleted while it ran." in job.error
    assert _count(Certificate) == stored_then
    assert _count(Order, Order.credential_id == env.id) > 0  # the step before it is kept


def test_an_import_refused_at_its_first_call_says_to_check_the_credential(env, user, sandbox):
    """A wrong API key stops the import before it read anything: the job says to check the
    credential, not to "carry on from there"."""
    from webapp.credentials import service as credentials

    wrong, _sync = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name="Wrong key",
            api_user=sandbox.api_user,
            api_key="not-the-key-" + "x" * 20,
            base_url=sandbox.base_url,
        ),
    )
    job = _import(user, wrong)
    assert job.state == "failed"
    assert job.error.startswith("Import of Wrong key could not read the order list:")
    assert "Check the credential (Test Login" in job.error and "carry on" not in job.error
    assert _count(Order) == 0


def _valid(item) -> bool:
    """Whether a sandbox list item's certificate has not expired yet."""
    return datetime.fromisoformat(item["expiresAfter"].replace("Z", "+00:00")) > utcnow()


def test_default_import_then_a_second_one_that_changes_nothing(env, user, sandbox):
    upstream = sandbox.orders("*")
    excluded = {"EXPIRED", "REVOKED", "DEACTIVATED"}
    wanted = {
        _key(i) for i in upstream if i["status"] not in excluded and not i.get("isThirdParty")
    }
    # Issued orders, and renewed ones (a renewal leaves the certificate valid) not expired yet.
    issued = {
        _key(i)
        for i in upstream
        if _key(i) in wanted
        and (
            i["status"] in ("ACTIVE", "READY", "SUSPENDED")
            or (i["status"] == "RENEWED" and _valid(i))
        )
    }
    assert any(i["status"] == "RENEWED" for i in upstream if _key(i) in issued)
    sandbox.clear_requests()
    job = _import(user, env)
    assert job.state == "succeeded", job.error
    result = jobs.result_of(job)
    assert result["new"] == len(wanted) and result["skipped"] == len(upstream) - len(wanted)
    assert result["certificates"] == len(issued) and result["failed"] == 0
    assert {o for o in db.session.execute(select(Order.ca_order_id)).scalars()} == wanted
    assert _count(Certificate) == len(issued)
    # Every certificate is linked to its order; each order's history starts with "imported".
    linked = db.session.execute(
        select(Order.ca_order_id).join(Certificate, Certificate.order_id == Order.id)
    ).scalars()
    assert set(linked) == issued
    assert _count(OrderEvent, OrderEvent.kind == "imported") == len(wanted)
    # ... and tells, as a status check does, when its certificate was brought in.
    told = db.session.execute(
        select(Order.ca_order_id)
        .join(OrderEvent, OrderEvent.order_id == Order.id)
        .where(OrderEvent.kind == "certificate")
    ).scalars()
    assert sorted(told) == sorted(issued)
    # Each imported order is found by the list's search: its tracking ID, and the end of its name.
    some = db.session.execute(select(Order).order_by(Order.id)).scalars().first()
    assert {n.value for n in some.names} >= {some.ca_order_id, some.common_name.lower()}
    found = queries.page_of(
        queries.OrderFilter(q=some.common_name[-12:]), 1, 50, cursor=(None, None)
    )
    assert some.id in [o.id for o in found.items]
    assert _calls(sandbox) == (1, len(issued))  # one page of 1000; details only for issued

    sandbox.clear_requests()
    again = _import(user, env)
    counts = jobs.result_of(again)
    assert (counts["new"], counts["updated"], counts["certificates"]) == (0, 0, 0)
    assert counts["unchanged"] == len(wanted)
    assert _calls(sandbox) == (1, 0)  # every certificate is held already

    # One change upstream is one update, with its history line.
    changed = next(iter(sorted(issued)))
    sandbox.set_certificate_status(int(changed), "REVOKED")
    third = jobs.result_of(_import(user, env))
    assert (third["new"], third["updated"]) == (0, 1)
    row = db.session.execute(select(Order).where(Order.ca_order_id == changed)).scalar_one()
    assert row.status == "REVOKED" and row.phase == "revoked"
    event = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "status")
    ).scalar_one()
    assert (event.old_status, event.new_status) != ("", "")
    # The change is Entrust's: the import only read it (history and audit trail say so).
    assert event.actor_name == "Entrust" and "operator's import" in event.message
    # Revoked at Entrust, it is revoked in SSL › Certificates too.
    cert = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalar()
    assert cert.revoked_at is not None
    for action, object_id in (("order.status", row.id), ("certificate.revoked", cert.id)):
        audited = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.object_id == str(object_id)
            )
        ).scalar_one()
        detail = json.loads(audited.detail)
        assert (audited.actor_name, detail["changed_at"], detail["read_by"]) == (
            "operator",
            "Entrust",
            "import",
        )


@pytest.mark.parametrize(
    "exclusion", ["expired", "revoked", "declined", "deactivated", "third_party", None]
)
def test_each_exclusion_leaves_out_what_it_says(env, user, sandbox, exclusion):
    upstream = sandbox.orders("*")
    job = _import(user, env, [exclusion] if exclusion else [])
    assert job.state == "succeeded", job.error
    rows = list(db.session.execute(select(Order)).scalars())
    statuses = {r.status for r in rows}
    has_third_party = any(r.third_party for r in rows)
    if exclusion == "third_party":
        assert not has_third_party
    else:
        assert has_third_party  # read by thumbprint, its certificate too
        tp = next(r for r in rows if r.third_party)
        assert len(tp.ca_order_id) == 40 and tp.ca_order_number is None
        assert _count(Certificate, Certificate.order_id == tp.id) == (
            1 if tp.phase == "issued" else 0
        )
    named = {"expired": "EXPIRED", "revoked": "REVOKED", "deactivated": "DEACTIVATED"}
    if exclusion in named:
        assert named[exclusion] not in statuses
        assert statuses >= {s for s in named.values() if s != named[exclusion]}
    if exclusion is None:
        assert len(rows) == len(upstream)
    # Entrust's list leaves declined orders out, so none is ever imported.
    assert "DECLINED" not in statuses


def test_already_imported_orders_can_be_left_as_they_are(env, user, sandbox):
    first = jobs.result_of(_import(user, env))
    some = db.session.execute(select(Order).where(Order.status == "ACTIVE")).scalars().first()
    sandbox.set_certificate_status(int(some.ca_order_id), "SUSPENDED")
    second = jobs.result_of(_import(user, env, [*importing.DEFAULT_EXCLUSIONS, "existing"]))
    assert second["skipped"] == first["skipped"] + first["new"] and second["updated"] == 0
    db.session.refresh(some)
    assert some.status == "ACTIVE"


def test_an_import_stopped_by_a_fault_carries_on_where_it_stopped(env, user, sandbox, monkeypatch):
    monkeypatch.setattr(importing, "PAGE_SIZE", 50)
    pages = []
    real = importing.upsert_page

    def counting(*args, **kwargs):
        pages.append(len(args[1]))
        if len(pages) == 2:  # Entrust fails from the third page on
            sandbox.faults(
                [{"kind": "http_503", "method": "GET", "path": "/enterprise/v2/certificates"}]
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "upsert_page", counting)
    first = _import(user, env)
    assert first.state == "failed"
    # Pages are read ahead while one is stored, so the fault stops it a page or two later.
    stopped_at = jobs.checkpoint_of(first)["offset"]
    assert stopped_at in (100, 150, 200)
    assert f"stopped while reading orders at {stopped_at}" in first.error
    assert "carry on" in first.error and _count(Order) > 0
    # Said once: "Start the import again later", not "Try again later. Start the import again".
    assert "Try again later" not in first.error, first.error
    assert "Start the import again later to carry on from there." in first.error
    assert re.search(r"So far: [\d,]+ new, ", first.error), first.error
    assert " 0 updated" not in first.error and " 0 failed" not in first.error  # counts of none
    sandbox.clear_faults()
    sandbox.clear_requests()
    second = _import(user, env)
    assert second.state == "succeeded", second.error
    assert "carrying on" in second.title
    lists = [r for r in sandbox.requests() if r["path"].rstrip("/").endswith("/certificates")]
    assert f"offset={stopped_at}" in lists[0]["query"]  # not from the beginning
    total = len(sandbox.orders("*"))
    counts = jobs.result_of(second)
    assert counts["new"] + counts["skipped"] == total  # each order counted once over both runs
    ids = list(db.session.execute(select(Order.ca_order_id)).scalars())
    assert len(ids) == len(set(ids)) == counts["new"]


def test_an_import_whose_process_died_is_resumed_from_its_checkpoint(
    env, user, sandbox, monkeypatch
):
    monkeypatch.setattr(importing, "PAGE_SIZE", 50)
    real = importing.upsert_page
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise SystemExit("the process was killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "upsert_page", dying)
    with pytest.raises(SystemExit):
        importing.start_import(user["operator"], env.id, list(importing.DEFAULT_EXCLUSIONS))
    db.session.rollback()
    job = db.session.execute(select(Job).where(Job.kind == importing.JOB_KIND)).scalar_one()
    assert job.state == "running" and jobs.checkpoint_of(job)["offset"] == 100
    monkeypatch.setattr(importing, "upsert_page", real)
    sandbox.clear_requests()
    counts = jobs.recover(now=utcnow() + timedelta(minutes=10))
    assert counts == {"requeued": 1, "failed": 0}
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    first_list = next(
        r for r in sandbox.requests() if r["path"].rstrip("/").endswith("/certificates")
    )
    assert "offset=100" in first_list["query"]
    ids = list(db.session.execute(select(Order.ca_order_id)).scalars())
    assert len(ids) == len(set(ids)) == jobs.result_of(job)["new"]


def test_an_import_cannot_start_twice_or_for_a_disabled_credential(env, user):
    from webapp.credentials import service as credentials

    with pytest.raises(importing.ImportInputError):
        importing.start_import(user["operator"], env.id, ["moon"])
    credentials.set_enabled(user["admin"], env, False)
    with pytest.raises(importing.ImportInputError, match="disabled"):
        importing.start_import(user["operator"], env.id, [])
    credentials.set_enabled(user["admin"], env, True)
    db.session.add(
        Job(kind=importing.JOB_KIND, state="running", params=f'{{"credential_id": {env.id}}}')
    )
    db.session.commit()
    with pytest.raises(importing.ImportInputError, match="already running"):
        importing.start_import(user["operator"], env.id, [])


def test_an_import_asked_for_twice_at_once_starts_once(app, env, user):
    """A double click on Import: the second request finds the first import (it has not finished)
    and says so; one import runs."""
    from webapp.auth import service as auth

    cred_id = env.id

    def click_import():
        try:
            return importing.start_import(
                auth.by_username("operator"), cred_id, list(importing.DEFAULT_EXCLUSIONS)
            ).id
        except importing.ImportRunning as exc:
            return ("running", exc.job.id)

    with workers_held(app):  # the import started first stays queued: it has not finished
        outcomes = at_once(app, click_import)
    started = [o for o in outcomes if isinstance(o, int)]
    assert len(started) == 1 and ("running", started[0]) in outcomes, outcomes
    wait_finished(*started)
    ran = db.session.execute(select(Job).where(Job.kind == importing.JOB_KIND)).scalars().all()
    assert [j.id for j in ran] == started and ran[0].state == "succeeded", ran[0].error
    starts = _count(AuditEvent, AuditEvent.action == "order.import.start")
    assert starts == 1  # the refused request audited no start


def test_import_asked_for_while_one_runs_shows_that_one(env, operator_client):
    running = Job(kind=importing.JOB_KIND, state="running", params=f'{{"credential_id": {env.id}}}')
    db.session.add(running)
    db.session.commit()
    resp = operator_client.post("/entrust/import", data={"credential_id": env.id})
    assert resp.status_code == 303 and f"job={running.id}" in resp.location
    page = operator_client.get(resp.location).get_data(as_text=True)
    assert "flash-info" in page and f"already running (job {running.id})" in page
    assert f'id="job-{running.id}"' in page
    assert _count(Job, Job.kind == importing.JOB_KIND) == 1


def test_the_import_page_opened_again_while_an_import_runs_shows_its_progress(env, operator_client):
    finished = Job(
        kind=importing.JOB_KIND, state="succeeded", params=f'{{"credential_id": {env.id}}}'
    )
    running = Job(kind=importing.JOB_KIND, state="running", params=f'{{"credential_id": {env.id}}}')
    db.session.add_all([running, finished])
    db.session.commit()
    page = operator_client.get("/entrust/import").get_data(as_text=True)
    assert 'id="import-job"' in page and f'id="job-{running.id}"' in page
    assert f'id="job-{finished.id}"' not in page
    # Once it has finished, the page is the form alone again.
    running.state = "succeeded"
    db.session.commit()
    page = operator_client.get("/entrust/import").get_data(as_text=True)
    assert 'id="import-job"' not in page


def test_an_order_linked_by_a_new_order_while_its_page_is_imported_stays_that_order(
    app, env, user, sandbox
):
    """Someone's new order is linked to an Entrust order while the import's page that lists it is
    being stored: the order stays the one placed in CertDesk (no second row, no "imported" line)
    and the rest of the page is imported."""
    from webapp.auth import service as auth
    from webapp.cas import registry
    from webapp.orders import records, settling

    with registry.open_connector("entrust", env.id) as conn:
        page = next(iter(conn.list_orders(0, 50)))
    ca = next(o for o in page.orders if not o.third_party)
    placed = Order(credential_id=env.id, placement="unknown", request_id="certdesk:linking")
    db.session.add(placed)
    db.session.commit()
    placed_id = placed.id
    linking = threading.Event()

    def link_meanwhile():
        with app.app_context():
            row = db.session.get(Order, placed_id)
            row.placement = "placed"
            settling.link(row, ca, auth.by_username("operator"), utcnow(), source="entrust")
            linking.set()
            time.sleep(1.5)  # the import reads its page's orders and inserts them meanwhile
            db.session.commit()

    linker = threading.Thread(target=link_meanwhile)
    linker.start()
    assert linking.wait(30)
    counts = importing.upsert_page(env.id, page.orders, set(), "operator", utcnow())
    db.session.commit()
    linker.join()
    key = records.order_key(ca)
    rows = db.session.execute(select(Order).where(Order.ca_order_id == key)).scalars().all()
    assert [(r.id, r.origin) for r in rows] == [(placed_id, placed.origin)]
    assert _count(OrderEvent, OrderEvent.order_id == placed_id, OrderEvent.kind == "imported") == 0
    assert counts["skipped"] == 1 and counts["new"] == len(page.orders) - 1 - counts["failed"]
    assert _count(Order) == counts["new"] + 1


def test_an_order_placed_in_certdesk_and_not_linked_yet_is_left_to_its_link(
    app, env, user, sandbox
):
    """Entrust lists an order CertDesk placed before CertDesk has linked its answer (the call
    under way, or its answer lost): the import leaves it to that order, whose link then works,
    instead of importing a second row the link would fail on."""
    from webapp.auth import service as auth
    from webapp.cas import registry
    from webapp.orders import records, settling

    with registry.open_connector("entrust", env.id) as conn:
        first = next(o for o in next(iter(conn.list_orders(0, 50))).orders if not o.third_party)
        conn.client.replace_tracking(int(first.order_id), {"trackingInfo": "certdesk:in-flight"})
        page = next(iter(conn.list_orders(0, 50)))
    ca = next(o for o in page.orders if o.order_id == first.order_id)
    assert ca.request_id == "certdesk:in-flight"
    placed = Order(credential_id=env.id, placement="unknown", request_id="certdesk:in-flight")
    db.session.add(placed)
    db.session.commit()
    placed_id = placed.id

    counts = importing.upsert_page(env.id, page.orders, set(), "operator", utcnow())
    db.session.commit()
    row = db.session.get(Order, placed_id)
    row.placement = "placed"
    settling.link(row, ca, auth.by_username("operator"), utcnow(), source="entrust")
    db.session.commit()

    key = records.order_key(ca)
    rows = db.session.execute(select(Order.id).where(Order.ca_order_id == key)).scalars().all()
    assert rows == [placed_id]
    assert counts["skipped"] == 1 and counts["new"] == len(page.orders) - 1 - counts["failed"]


def test_a_second_credential_of_the_account_imports_no_order_held_already(env, user, sandbox):
    """Two credentials of one Entrust account (two API users of it, or the same one linked
    twice) each import the account's orders. Tracking IDs are unique across Entrust, so the
    second brings in no second row of an order the first holds (the list, the dashboard and the
    status checks would carry it twice) and fetches none of their certificates, on any of its
    imports; its summary says how many it left and why. An order placed at Entrust since is
    imported once, with its certificate."""
    first = jobs.result_of(_import(user, env))
    held, orders = _count(Certificate), _count(Order)
    assert first["certificates"] == held > 0 and first["elsewhere"] == 0
    other = link_sandbox(user, sandbox, name="Second user")
    for _ in range(2):
        sandbox.clear_requests()
        job = _import(user, other)
        assert job.state == "succeeded", job.error
        counts = jobs.result_of(job)
        assert (counts["new"], counts["certificates"], counts["failed"]) == (0, 0, 0)
        assert (counts["elsewhere"], counts["skipped"]) == (first["new"], first["skipped"])
        assert (
            "Not imported again, as CertDesk already holds them through another credential "
            f"(another API user of the same Entrust account): {first['new']:,} under Sandbox."
        ) in job.message
        assert _calls(sandbox) == (1, 0)
        assert (_count(Order), _count(Certificate)) == (orders, held)
    assert _count(Order, Order.credential_id == other.id) == 0

    # A certificate issued at Entrust since: the second credential's import brings it in once,
    # and the first's then leaves it to the second.
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        fresh = str(ecs.new_certificate(new_request("fresh.example.com")).tracking_id)
    sandbox.clear_requests()
    counts = jobs.result_of(_import(user, other))
    assert (counts["new"], counts["certificates"], counts["elsewhere"]) == (1, 1, first["new"])
    assert _calls(sandbox) == (1, 1)
    again, message = _outcome(user, env)
    assert (again["new"], again["elsewhere"]) == (0, 1)
    assert "1 under Second user" in message
    rows = db.session.execute(select(Order.credential_id).where(Order.ca_order_id == fresh))
    assert rows.scalars().all() == [other.id]
    assert (_count(Order), _count(Certificate)) == (orders + 1, held + 1)


def test_orders_of_a_disabled_credential_stay_its_own_and_a_deleted_ones_are_taken_over(
    env, user, sandbox
):
    """The credential holding the orders is disabled: another credential's import leaves them
    to it (it may be enabled again) and says so. Once it is deleted (its orders read-only, never
    checked again), the other's import takes them over, with their history and certificates:
    still one row each, now followed through the credential that can reach them."""
    from webapp.credentials import service as credentials
    from webapp.orders import polling

    first = jobs.result_of(_import(user, env))
    held, orders = _count(Certificate), _count(Order)
    other = link_sandbox(user, sandbox, name="Second user")
    credentials.set_enabled(user["admin"], env, False)
    counts, message = _outcome(user, other)
    assert (counts["new"], counts["elsewhere"], counts["taken_over"]) == (0, first["new"], 0)
    assert f"{first['new']:,} under Sandbox (disabled: enable it" in message
    assert _count(Order, Order.credential_id == other.id) == 0

    credentials.delete(user["admin"], env, confirmed=True)
    some = db.session.execute(
        select(Order).join(Certificate, Certificate.order_id == Order.id).limit(1)
    ).scalar_one()
    some_id, cert_id = (
        some.id,
        db.session.execute(
            select(Certificate.id).where(Certificate.order_id == some.id)
        ).scalar_one(),
    )
    sandbox.set_certificate_status(int(some.ca_order_id), "SUSPENDED")
    sandbox.clear_requests()
    counts, message = _outcome(user, other)
    assert (counts["new"], counts["elsewhere"], counts["certificates"]) == (0, 0, 0)
    assert counts["taken_over"] == first["new"] and counts["updated"] == 1
    assert f"{first['new']:,} taken over from a deleted credential" in message
    assert _calls(sandbox) == (1, 0)  # the certificates are theirs already
    assert (_count(Order), _count(Certificate)) == (orders, held)
    assert _count(Order, Order.credential_id == other.id) == orders
    db.session.expire_all()
    row = db.session.get(Order, some_id)
    assert (row.credential_id, row.status) == (other.id, "SUSPENDED")
    assert db.session.get(Certificate, cert_id).order_id == some_id
    lines = db.session.execute(
        select(OrderEvent.kind, OrderEvent.message)
        .where(OrderEvent.order_id == some_id)
        .order_by(OrderEvent.id)
    ).all()
    assert lines[0][0] == "imported"
    assert (
        "credential",
        "Now followed through credential Second user: Sandbox, the credential it was imported "
        "through, was deleted.",
    ) in lines
    # Its status is checked through the credential that took it over.
    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")
    assert polling.check_selected(user["operator"], [some_id]).counts["changed"] == 1
    db.session.refresh(row)
    assert row.status == "ACTIVE"
    # A third import changes nothing more.
    counts = jobs.result_of(_import(user, other))
    assert (counts["new"], counts["taken_over"], counts["elsewhere"]) == (0, 0, 0)


def test_an_order_placed_in_certdesk_is_not_imported_again_through_another_credential(
    env, user, sandbox
):
    """An order placed from CertDesk through one credential, then listed to another credential
    of the same account by its import: it stays the order placed (one row, its history, its
    certificate), and the import's summary says why it was left."""
    from tests.conftest import sandbox_order_form
    from webapp.csrs import service as csrs
    from webapp.orders import placing

    csr = csrs.create_csr(user["operator"], "p256", {"CN": "placed.example.com"}, "")
    placed = placing.place(
        user["operator"], sandbox_order_form(env, csr.id, sans="placed.example.com")
    )
    assert placed.placement == "placed" and placed.ca_order_id
    other = link_sandbox(user, sandbox, name="Second user")
    counts, message = _outcome(user, other)
    assert counts["elsewhere"] == 1 and counts["new"] == _count(Order) - 1
    rows = db.session.execute(
        select(Order.id, Order.credential_id, Order.origin).where(
            Order.ca_order_id == placed.ca_order_id
        )
    ).all()
    assert [tuple(r) for r in rows] == [(placed.id, env.id, "placed")]
    assert _count(Certificate, Certificate.order_id == placed.id) == 1
    assert "1 under Sandbox" in message


def test_an_order_reissued_at_entrust_has_its_certificate_marked_revoked(env, user, sandbox):
    """An imported order reissued outside CertDesk (in Entrust's portal): the next import
    brings in the new order with its certificate, and marks the original's certificate revoked,
    as Entrust revokes it (and as a reissue placed from CertDesk does). A renewed order's
    certificate stays valid."""
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        original = ecs.new_certificate(new_request("reissued.example.com")).tracking_id
        renewed = ecs.new_certificate(new_request("renewed.example.com")).tracking_id
    jobs.result_of(_import(user, env))
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        successor = ecs.reissue(original).tracking_id
    sandbox.set_certificate_status(renewed, "RENEWED")

    counts = jobs.result_of(_import(user, env))
    assert (counts["new"], counts["updated"], counts["certificates"]) == (1, 2, 1)

    def cert_of(tracking_id):
        row = db.session.execute(
            select(Order).where(Order.ca_order_id == str(tracking_id))
        ).scalar_one()
        return row, db.session.execute(
            select(Certificate).where(Certificate.order_id == row.id)
        ).scalar_one()

    db.session.expire_all()
    row, cert = cert_of(original)
    assert (row.status, row.phase) == ("REISSUED", "replaced")
    assert cert.revoked_at is not None
    assert _count(
        AuditEvent,
        AuditEvent.action == "certificate.revoked",
        AuditEvent.object_id == str(cert.id),
    )
    row, cert = cert_of(renewed)
    assert (row.status, cert.revoked_at) == ("RENEWED", None)
    row, cert = cert_of(successor)
    assert (row.status, cert.revoked_at) == ("ACTIVE", None)


def test_the_certificate_of_an_order_renewed_before_its_import_is_imported(
    env, user, sandbox, operator_client
):
    """A renewal leaves the original's certificate valid until its own expiry (Entrust does
    not revoke it; it is usually still deployed), so an order imported already RENEWED has its
    certificate fetched and added to SSL › Certificates, valid, like an issued one's (counted,
    in the progress too). One renewed whose certificate has expired is imported without it."""
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        renewed = ecs.new_certificate(new_request("renewed.example.com")).tracking_id
        sandbox.advance_clock(-500)  # issued 500 days ago for a year: expired
        try:
            old = ecs.new_certificate(new_request("renewed-old.example.com")).tracking_id
        finally:
            sandbox.advance_clock(500)
    sandbox.set_certificate_status(renewed, "RENEWED")
    sandbox.set_certificate_status(old, "RENEWED")
    upstream = sandbox.orders("*")
    valid = {_key(i) for i in upstream if i["status"] == "RENEWED" and _valid(i)}
    assert str(renewed) in valid and str(old) not in valid
    sandbox.clear_requests()

    job = _import(user, env)
    assert job.state == "succeeded", job.error
    counts = jobs.result_of(job)
    assert counts["failed"] == 0
    fetched = {
        r["path"].rstrip("/").rsplit("/", 1)[1]
        for r in sandbox.requests()
        if r["method"] == "GET" and not r["path"].rstrip("/").endswith("/certificates")
    }
    assert valid <= fetched and str(old) not in fetched
    checkpoint = jobs.checkpoint_of(job)
    assert checkpoint["cert_total"] == checkpoint["cert_done"] == counts["certificates"]

    rows = {
        r.ca_order_id: r
        for r in db.session.execute(select(Order).where(Order.status == "RENEWED")).scalars()
    }
    assert set(rows) >= valid | {str(old)}
    for key in valid:
        cert = db.session.execute(
            select(Certificate).where(Certificate.order_id == rows[key].id)
        ).scalar_one()
        assert cert.revoked_at is None and cert.not_after > utcnow()
        assert cert.serial_hex.lower().lstrip("0") == rows[key].serial.lower().lstrip("0")
    assert _count(Certificate, Certificate.order_id == rows[str(old)].id) == 0

    # The orders' pages: the certificate, or why there is none.
    page = operator_client.get(f"/entrust/{rows[str(renewed)].id}").get_data(as_text=True)
    assert 'id="order-certificate"' in page and "renewed.example.com" in page
    page = operator_client.get(f"/entrust/{rows[str(old)].id}").get_data(as_text=True)
    assert (
        "No certificate in SSL › Certificates." in page
        and "yet" not in page.split('id="order-no-certificate"')[1].split("</p>")[0]
    )

    # A second import has nothing more to fetch.
    sandbox.clear_requests()
    again = jobs.result_of(_import(user, env))
    assert (again["new"], again["updated"], again["certificates"]) == (0, 0, 0)
    assert _calls(sandbox) == (1, 0)


def test_an_import_that_died_among_renewed_orders_carries_on_with_them(
    env, user, sandbox, monkeypatch
):
    """The renewed orders' certificates are a step of the resumable certificate phase: an
    import whose process died while storing them carries on from its checkpoint, without
    fetching the issued orders' certificates again."""
    from webapp.orders import records

    real = records.store_certificates

    def dying(fetched, **kwargs):
        ids = [order_id for order_id, _ in fetched]
        statuses = set(db.session.execute(select(Order.status).where(Order.id.in_(ids))).scalars())
        if "RENEWED" in statuses:
            raise SystemExit("the process was killed")
        return real(fetched, **kwargs)

    monkeypatch.setattr(records, "store_certificates", dying)
    with pytest.raises(SystemExit):
        importing.start_import(user["operator"], env.id, list(importing.DEFAULT_EXCLUSIONS))
    db.session.rollback()
    job = db.session.execute(select(Job).where(Job.kind == importing.JOB_KIND)).scalar_one()
    checkpoint = jobs.checkpoint_of(job)
    assert job.state == "running" and checkpoint["phase"] == "certificates"
    assert checkpoint["cert_phase"] < len(importing._certificate_steps())
    issued = checkpoint["counts"]["certificates"]
    renewed = {
        r.id: r.ca_order_id
        for r in db.session.execute(select(Order).where(Order.status == "RENEWED")).scalars()
    }
    assert renewed and _count(Certificate) == issued

    monkeypatch.setattr(records, "store_certificates", real)
    sandbox.clear_requests()
    assert jobs.recover(now=utcnow() + timedelta(minutes=10)) == {"requeued": 1, "failed": 0}
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job)["certificates"] == issued + len(renewed)
    fetched = sorted(
        r["path"].rstrip("/").rsplit("/", 1)[1]
        for r in sandbox.requests()
        if r["method"] == "GET" and not r["path"].rstrip("/").endswith("/certificates")
    )
    assert fetched == sorted(renewed.values())  # only the renewed orders' certificates
    held = set(
        db.session.execute(
            select(Certificate.order_id).where(Certificate.order_id.in_(list(renewed)))
        ).scalars()
    )
    assert held == set(renewed)


HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def test_what_entrust_holds_is_shown_as_text_never_as_markup(
    env, user, sandbox, auditor_client, operator_client
):
    """Free text an order carries at Entrust (its tracking details, whoever typed them in the
    Entrust portal or another API client) is written into the pages as text: the orders list, the
    order's page (with every field Entrust holds), its htmx fragment and the certificate's page."""
    request = new_request(
        "shop.example.com",
        tracking=types.Tracking(
            tracking_info=HOSTILE,
            requester_name=HOSTILE,
            requester_email="ann@example.com",
            requester_phone=HOSTILE,
            custom_fields={"text2": HOSTILE},
        ),
    )
    placed = EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key).new_certificate(request)
    assert _outcome(user, env)[0]["failed"] == 0
    row = db.session.execute(
        select(Order).where(Order.ca_order_id == str(placed.tracking_id))
    ).scalar_one()
    assert HOSTILE in row.details  # kept as Entrust gave it
    cert = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalar()
    pages = {
        "list": "/entrust/?q=shop.example.com",
        "order": f"/entrust/{row.id}",
        "certificate": f"/certificates/{cert.id}",
    }
    for client in (auditor_client, operator_client):
        for name, url in pages.items():
            for headers in ({}, HTMX):
                html = client.get(url, headers=headers).get_data(as_text=True)
                assert "<img" not in html and "<script>alert" not in html, (name, headers)
        shown = client.get(pages["order"]).get_data(as_text=True)
        assert "&lt;img src=x onerror=alert(1)&gt;" in shown  # shown, as text


def test_a_common_name_or_organization_longer_than_its_column_is_shown_cut_with_a_mark(
    app, user, sandbox, admin_client
):
    """An order whose CN or organization is longer than CertDesk's column keeps it cut with a
    trailing "…" (not cut where nothing says so), its page shows the whole value Entrust holds,
    and a second import finds the order unchanged."""
    sandbox.seed(certificates=0, seed=3)
    cred = link_sandbox(user, sandbox)
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        tracking_id = ecs.new_certificate(new_request("long.example.com")).tracking_id
    cn = "c" * 290 + ".example.com"
    org = "Ö" * 100 + "z" * 300
    with sandbox.sandbox.store.tx() as conn:
        conn.execute(
            "UPDATE certificates SET dn = ?, org = ? WHERE tracking_id = ?",
            (f"CN={cn},O=Acme", org, tracking_id),
        )
    job = _import(user, cred, [])
    assert job.state == "succeeded", job.error
    row = db.session.execute(select(Order)).scalar_one()
    assert row.common_name == cn[:254] + "…"
    assert row.organization == org[:299] + "…"
    page = admin_client.get("/entrust/").get_data(as_text=True)
    assert cn[:254] + "…" in page
    page = admin_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    assert org in page

    again = _import(user, cred, [])
    assert again.state == "succeeded", again.error
    assert jobs.result_of(again)["updated"] == 0


def _fetches(sandbox) -> list[dict]:
    """The certificate fetches in the sandbox's request log (GET /certificates/{id})."""
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "GET" and r["path"].startswith("/enterprise/v2/certificates/")
    ]


@pytest.mark.parametrize("at_once", [1, 3])
def test_an_api_user_refused_the_right_to_read_certificates_stops_the_import(
    env, user, sandbox, monkeypatch, at_once
):
    """Entrust refuses the API user the right to read certificates (HTTP 403) while they are
    fetched: the import stops at the first refused fetch (no fetch after it, no order marked as
    one whose certificate could not be fetched), keeps what it stored, names the credential and
    says what to do, audited as a failure; the credential's login is not marked failed (it
    works). Started again once the rights are back, it carries on and fetches nothing twice."""
    from webapp.credentials.models import EcsCredential
    from webapp.orders import records, service
    from webapp.settings import service as settings

    settings.put(service.IMPORT_CONCURRENCY, at_once)
    db.session.commit()
    monkeypatch.setattr(importing, "CERT_BATCH", 10)
    real = records.store_certificates
    stored = []

    def then_the_rights_go(*args, **kwargs):
        out = real(*args, **kwargs)
        stored.append(len(out))
        if len(stored) == 1:  # Entrust's administrator takes the right away
            sandbox.faults(
                [
                    {
                        "kind": "html_error_page",
                        "status": 403,
                        "method": "GET",
                        "path": "/enterprise/v2/certificates/*",
                    }
                ]
            )
        return out

    monkeypatch.setattr(records, "store_certificates", then_the_rights_go)
    first = _import(user, env)
    assert first.state == "failed"
    assert first.error.startswith(
        "Import of Sandbox stopped while fetching certificates: Entrust accepted the login of "
        f"credential Sandbox but refused its API user ({sandbox.api_user}) the right to read the "
        "certificates (HTTP 403). So far: "
    ), first.error
    assert first.error.endswith(
        "Ask an Entrust administrator to give that API user the right to read certificates, "
        "then start the import again to carry on from there."
    ), first.error
    # No fetch after the refusal: only those already on their way when it came were refused.
    fetches = _fetches(sandbox)
    refused = [r for r in fetches if r["status"] == 403]
    assert 1 <= len(refused) <= at_once and fetches[-1]["status"] == 403
    # The login works: not marked Login failed, no refusal of it audited.
    cred = db.session.get(EcsCredential, env.id)
    assert cred.last_test_ok is not False
    assert _count(AuditEvent, AuditEvent.action == "credential.login_refused") == 0
    failure = db.session.execute(
        select(AuditEvent.detail).where(
            AuditEvent.action == "order.import", AuditEvent.outcome == "failure"
        )
    ).scalar_one()
    assert "HTTP 403" in json.loads(failure)["error"]
    # What was stored before the refusal stays, and no order says its certificate failed.
    kept = _count(Certificate)
    assert kept > 0 and f"{kept} certificates added" in first.error
    assert " failed" not in first.error
    assert _count(Order, Order.message != "") == 0
    checkpoint = jobs.checkpoint_of(first)
    assert checkpoint["phase"] == "certificates" and checkpoint["after_id"] > 0

    # The rights are given back: the import carries on from the first order not stored.
    monkeypatch.setattr(records, "store_certificates", real)
    sandbox.clear_faults()
    sandbox.clear_requests()
    second = _import(user, env)
    assert second.state == "succeeded", second.error
    assert "carrying on" in second.title
    assert not any(r["path"].rstrip("/").endswith("/certificates") for r in sandbox.requests())
    counts = jobs.result_of(second)  # over both runs
    assert counts["failed"] == 0
    total = _count(Certificate)
    assert total == counts["certificates"] == importing._with_certificate_count(env.id)
    assert len(_fetches(sandbox)) == total - kept  # none fetched twice


def test_a_small_imports_added_count_moves_along_with_checked(env, user, monkeypatch):
    """The certificates are stored a batch at a time, and "added" counts those stored: with
    batches of 200, an import of a few hundred orders showed "125 checked; 0 added" until it
    ended. A small import stores them in about 20 batches (20 at least), so "added" moves along;
    a large one keeps batches of 200."""
    from webapp.jobs import service as jobs_service

    seen = []
    real = jobs_service.JobContext.progress

    def noted(self, done, total=None, message=None):
        if message and "step 2 of 2" in message and " added" in message:
            seen.append(message)
        return real(self, done, total, message)

    monkeypatch.setattr(jobs_service.JobContext, "progress", noted)
    job = _import(user, env)
    assert job.state == "succeeded", job.error
    added = [int(re.search(r"([\d,]+) added", m).group(1).replace(",", "")) for m in seen]
    assert added[-1] == _count(Certificate) > 40, seen
    assert len(set(added)) >= 3, seen  # it moved along, not only at the end
    assert importing.batch_size(150) == 20 and importing.batch_size(50_000) == 200
    assert importing.batch_size(2_000) == 100
