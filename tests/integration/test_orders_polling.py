"""Check Order Status against the real sandbox: many orders per call, per-order backoff, the
certificate fetched only when there is one to fetch, Entrust unreachable, and the scheduled runs."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.helpers import together
from tests.integration.helpers import new_request
from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.certificates.models import Certificate
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import checks, importing, polling, settling
from webapp.orders.models import Order, OrderEvent
from webapp.orders.service import POLL_MINUTES
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")


@pytest.fixture
def env(app, user, sandbox):
    """The sandbox's 120 seeded orders, imported."""
    sandbox.seed(certificates=120, seed=8)
    cred = link_sandbox(user, sandbox)
    job = importing.start_import(user["operator"], cred.id, [])
    assert job.state == "succeeded", job.error
    sandbox.clear_requests()
    return cred


def _calls(sb) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in sb.requests() if r["method"] == "GET"]


def _followed() -> list[Order]:
    return list(
        db.session.execute(
            select(Order).where(Order.phase.in_(("pending", "unknown"))).order_by(Order.id)
        ).scalars()
    )


def test_unchanged_pending_orders_cost_one_call_per_chunk_and_back_off(env, sandbox, monkeypatch):
    monkeypatch.setattr(polling, "CHUNK", 10)  # ten orders per status call, for a small account
    # Make 25 of the imported orders pending at Entrust (and in CertDesk's last reading).
    issued = list(
        db.session.execute(select(Order).where(Order.status == "ACTIVE").limit(25)).scalars()
    )
    for row in issued:
        sandbox.set_certificate_status(int(row.ca_order_id), "PENDING")
        row.status, row.phase = "PENDING", "pending"
    followed = _followed()
    for row in followed:
        row.next_check_at, row.check_interval_minutes = utcnow(), 0
    db.session.commit()
    assert len(followed) > 25
    sandbox.clear_requests()
    now = utcnow()
    result = polling.poll(now=now)
    assert result.counts["checked"] == len(followed) and result.counts["changed"] == 0
    calls = _calls(sandbox)
    assert calls == ["certificates"] * -(-len(followed) // polling.CHUNK)  # no one-by-one reads
    base = settings.get(POLL_MINUTES)
    assert {r.check_interval_minutes for r in _followed()} == {base}
    # Nothing is due until the interval has passed; then each wait doubles, up to a day.
    sandbox.clear_requests()
    assert polling.poll(now=now + timedelta(minutes=1)).counts["checked"] == 0
    assert _calls(sandbox) == []
    later = now
    for expected in (2 * base, 4 * base):
        later = later + timedelta(minutes=expected)
        polling.poll(now=later)
        assert {r.check_interval_minutes for r in _followed()} == {expected}
    # A change resets the wait and brings the certificate, fetched for that order alone.
    one = next(r for r in _followed() if r.status == "PENDING" and r not in issued)
    sandbox.set_certificate_status(int(one.ca_order_id), "ACTIVE")
    sandbox.clear_requests()
    later = later + timedelta(days=1)
    result = polling.poll(now=later)
    assert result.counts["changed"] == 1 and result.counts["certificates"] == 1
    assert _calls(sandbox).count(one.ca_order_id) == 1
    db.session.refresh(one)
    assert one.phase == "issued" and one.next_check_at is None
    assert (
        db.session.execute(
            select(func.count()).select_from(Certificate).where(Certificate.order_id == one.id)
        ).scalar_one()
        == 1
    )
    # A change that leaves the order followed (approved, not issued yet) resets its wait too;
    # the others' wait goes on doubling.
    other = next(r for r in _followed() if r.status == "PENDING")
    sandbox.set_certificate_status(int(other.ca_order_id), "APPROVED")
    waits = {r.id: r.check_interval_minutes for r in _followed()}
    later = later + timedelta(days=1)
    polling.poll(now=later)
    db.session.refresh(other)
    assert other.status == "APPROVED" and other.check_interval_minutes == base
    assert other.next_check_at == later + timedelta(minutes=base)
    rest = [r for r in _followed() if r.id != other.id]
    assert {r.check_interval_minutes for r in rest} == {2 * waits[rest[0].id]}
    # Entrust cannot be asked: each waits twice as long before it is asked again, and it does
    # not count as checked.
    checked = {r.id: r.last_checked_at for r in _followed()}
    waits = {r.id: r.check_interval_minutes for r in _followed()}
    sandbox.faults([{"kind": "http_503", "method": "GET", "path": "/enterprise/v2/certificates"}])
    later = later + timedelta(days=1)
    result = polling.poll(now=later)
    assert result.counts["failed"] == len(waits)
    for r in _followed():
        assert r.check_interval_minutes == min(2 * waits[r.id], 24 * 60), r.id
        assert r.next_check_at == later + timedelta(minutes=r.check_interval_minutes)
        assert r.last_checked_at == checked[r.id]
    sandbox.clear_faults()


def test_check_order_status_by_hand_at_once_or_as_a_job(env, user, sandbox, monkeypatch):
    rows = list(db.session.execute(select(Order).limit(30)).scalars())
    some = rows[:3]
    target = next(r for r in rows if r.status == "ACTIVE" and not r.third_party)
    sandbox.set_certificate_status(int(target.ca_order_id), "SUSPENDED")
    result = polling.check_selected(user["operator"], [str(r.id) for r in [*some, target]])
    assert result.job is None and result.counts["changed"] == 1
    db.session.refresh(target)
    assert target.status == "SUSPENDED"
    event = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == target.id, OrderEvent.kind == "status")
    ).scalar_one()
    assert (event.old_status, event.new_status) == ("ACTIVE", "SUSPENDED")
    # More than a few run as a background job.
    result = polling.check_selected(user["operator"], [r.id for r in rows])
    assert result.job is not None and result.job.state == "succeeded"
    assert "checked" in result.job.message
    with pytest.raises(checks.OrderInputError):
        polling.check_selected(user["operator"], [])


def test_check_order_status_asked_again_while_its_job_waits_shows_that_job(env, user, sandbox):
    """Two requests for the same orders (two tabs, a page sent twice): one job reads them."""
    from webapp.jobs import service as jobs
    from webapp.jobs.models import Job

    ids = sorted(db.session.execute(select(Order.id).limit(30)).scalars())
    waiting = jobs.queue(polling.CHECK_JOB, "Check Order Status", actor=None, order_ids=ids)
    db.session.commit()
    sandbox.clear_requests()
    result = polling.check_selected(user["operator"], [str(i) for i in reversed(ids)])
    assert result.job is not None and result.job.id == waiting.id
    checks_queued = db.session.query(Job).filter(Job.kind == polling.CHECK_JOB).count()
    assert checks_queued == 1 and sandbox.requests() == []
    # Other orders: a job of their own.
    other = polling.check_selected(user["operator"], ids[:-1])
    assert other.job is not None and other.job.id != waiting.id


def _active_order_and_certificate() -> tuple[Order, Certificate]:
    """An imported ACTIVE order of Entrust's and the certificate the repository holds for it."""
    held = db.session.execute(
        select(Order)
        .join(Certificate, Certificate.order_id == Order.id)
        .where(Order.status == "ACTIVE", Order.third_party.is_(False))
        .limit(1)
    ).scalar_one()
    cert = db.session.execute(select(Certificate).where(Certificate.order_id == held.id)).scalar()
    return held, cert


def test_an_order_revoked_at_entrust_has_its_certificate_marked_revoked(env, user, sandbox):
    """Revoked outside CertDesk (in Entrust's portal): the status check says so in SSL ›
    Certificates too, audited."""
    held, cert = _active_order_and_certificate()
    assert cert.revoked_at is None
    sandbox.set_certificate_status(int(held.ca_order_id), "REVOKED")
    result = polling.check_selected(user["operator"], [held.id])
    assert result.counts["changed"] == 1
    db.session.expire_all()
    assert db.session.get(Order, held.id).phase == "revoked"
    assert db.session.get(Certificate, cert.id).revoked_at is not None
    events = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "certificate.revoked", AuditEvent.object_id == str(cert.id)
        )
    ).scalars()
    assert [e.actor_name for e in events] == ["operator"]


def _history_line(order_id: int, kind: str = "status") -> OrderEvent:
    return db.session.execute(
        select(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.kind == kind)
        .order_by(OrderEvent.id.desc())
        .limit(1)
    ).scalar_one()


def _last_audit(action: str, object_id) -> AuditEvent:
    return db.session.execute(
        select(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one()


def test_a_change_made_at_entrust_is_told_as_entrusts_not_the_checking_users(
    env, user, sandbox, operator_client
):
    """Suspended in Entrust's portal, then resumed there: the status check that reads it (by
    hand, then the scheduled one) says in the order's history and in the audit trail that the
    change came from Entrust, and who only read it; not that the user who checked made it."""
    held, cert = _active_order_and_certificate()
    sandbox.set_certificate_status(int(held.ca_order_id), "SUSPENDED")
    assert polling.check_selected(user["operator"], [held.id]).counts["changed"] == 1
    db.session.expire_all()
    line = _history_line(held.id)
    assert (line.old_status, line.new_status, line.actor_name) == ("ACTIVE", "SUSPENDED", "Entrust")
    assert "operator" in line.message and "status check" in line.message
    for action, object_id in (("order.status", held.id), ("certificate.suspended", cert.id)):
        event = _last_audit(action, object_id)
        assert event.actor_name == "operator"  # who asked for the check, as every event says
        detail = json.loads(event.detail)
        assert (detail["changed_at"], detail["read_by"]) == ("Entrust", "status check")
    page = html.unescape(operator_client.get(f"/entrust/{held.id}").get_data(as_text=True))
    history = page.split('id="order-history"')[1].split("</table>")[0]
    assert "ACTIVE → SUSPENDED" in history and "<td>Entrust</td>" in history

    # Resumed at Entrust; the scheduled check finds it.
    sandbox.set_certificate_status(int(held.ca_order_id), "ACTIVE")
    row = db.session.get(Order, held.id)
    row.next_check_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert polling.poll().counts["changed"] == 1
    db.session.expire_all()
    line = _history_line(held.id)
    assert (line.new_status, line.actor_name) == ("ACTIVE", "Entrust")
    assert "scheduler" in line.message
    detail = json.loads(_last_audit("certificate.resumed", cert.id).detail)
    assert detail["changed_at"] == "Entrust"


def test_an_order_reissued_at_entrust_has_its_certificate_marked_revoked(
    env, user, sandbox, operator_client
):
    """Reissued outside CertDesk: Entrust revokes the original certificate, so the status check
    marks it revoked in SSL › Certificates (as a reissue placed from CertDesk does). The order's
    page says where the new certificate is: an order of its own, which an import brings in."""
    held, cert = _active_order_and_certificate()
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        new = str(ecs.reissue(int(held.ca_order_id)).tracking_id)
    result = polling.check_selected(user["operator"], [held.id])
    assert result.counts["changed"] == 1
    db.session.expire_all()
    assert (db.session.get(Order, held.id).status, db.session.get(Order, held.id).phase) == (
        "REISSUED",
        "replaced",
    )
    assert db.session.get(Certificate, cert.id).revoked_at is not None
    page = html.unescape(operator_client.get(f"/entrust/{held.id}").get_data(as_text=True))
    note = page.split('id="replaced-elsewhere"')[1].split("</article>")[0]
    assert "This order was reissued outside CertDesk." in note
    assert "Import Existing Orders brings it into SSL › Entrust" in note
    job = importing.start_import(user["operator"], env.id, [])
    assert job.state == "succeeded", job.error
    successor = db.session.execute(select(Order).where(Order.ca_order_id == new)).scalar_one()
    assert successor.status == "ACTIVE"
    assert (
        db.session.execute(select(Certificate).where(Certificate.order_id == successor.id))
        .scalar_one()
        .revoked_at
        is None
    )


def test_an_unreachable_entrust_changes_nothing_but_says_so(env, user, sandbox):
    rows = list(
        db.session.execute(select(Order).where(Order.status == "ACTIVE").limit(3)).scalars()
    )
    sandbox.faults([{"kind": "http_503", "method": "GET"}])
    result = polling.check_selected(user["operator"], [r.id for r in rows])
    sandbox.clear_faults()
    assert result.counts["failed"] == 3 and result.problems
    for r in rows:
        db.session.refresh(r)
        assert r.status == "ACTIVE" and "Could not check the status" in r.message


def test_a_check_job_that_could_not_reach_entrust_says_failed_and_why(
    env, operator_client, sandbox, monkeypatch
):
    """Check Order Status of more orders than are checked at once, and the scheduled check,
    while Entrust answers 503: their cards say Failed, how many could not be checked and why,
    not Succeeded with the reason left out."""
    ids = [
        r.id
        for r in db.session.execute(
            select(Order).where(Order.status == "ACTIVE", Order.third_party.is_(False)).limit(30)
        ).scalars()
    ]
    assert len(ids) > polling.INLINE_LIMIT
    sandbox.faults([{"kind": "http_503", "method": "GET"}])
    # An event lists so many ids at most (20,000 could be asked for), then how many more.
    monkeypatch.setattr(audit, "IDS_LISTED", 20)
    resp = operator_client.post("/entrust/check", data={"order": ids})
    assert resp.status_code == 303 and "job=" in resp.headers["Location"]
    # The request's event names the job that checks them and the orders it was asked for.
    asked = (
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "order.check").order_by(AuditEvent.seq)
        )
        .scalars()
        .all()[-1]
    )
    job_id = int(resp.headers["Location"].split("job=")[1].split("&")[0])
    assert asked.actor_name == "operator" and asked.object_id == ""
    assert json.loads(asked.detail) == {
        "orders": 30,
        "job": job_id,
        "order_ids": sorted(ids)[:20],
        "order_ids_more": 10,
    }
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    card = html.unescape(page.split('id="job-')[1].split("</article>")[0])
    assert "Failed" in card and "Succeeded" not in card
    assert "Check Order Status: 30 could not be checked." in card
    assert "Entrust server error (HTTP 503)" in card and "Try again later" in card

    assert polling.due()  # the imported pending orders
    polling.scheduled_poll()
    sandbox.clear_faults()
    job = db.session.execute(select(Job).where(Job.kind == polling.POLL_JOB)).scalar_one()
    assert job.state == "failed"
    assert re.match(r"Scheduled status check: \d+ could not be checked\. ", job.error), job.error
    assert "Entrust server error (HTTP 503)" in job.error


def test_checking_a_lost_answer_while_entrust_is_down_says_it_could_not(
    env, operator_client, sandbox
):
    """Check Order Status on an order whose answer was lost, ticked in the list, while Entrust
    answers 503: the message says it could not be checked and why, not a green "0 checked"."""
    row = Order(
        credential_id=env.id,
        placement="unknown",
        request_id="certdesk:lost-while-down",
        request="{}",
        attempted_at=utcnow() - timedelta(hours=1),
        next_check_at=utcnow() + timedelta(minutes=5),
    )
    db.session.add(row)
    db.session.commit()
    sandbox.faults([{"kind": "http_503", "method": "GET"}])
    resp = operator_client.post("/entrust/check", data={"order": [row.id]})
    sandbox.clear_faults()
    page = html.unescape(operator_client.get(resp.headers["Location"]).get_data(as_text=True))
    flashes = re.findall(r'<article class="flash flash-(\w+)"[^>]*>([^<]*)<', page)
    assert (
        "error",
        "Check Order Status: 1 could not be checked.",
    ) in flashes, flashes
    assert any("Entrust server error (HTTP 503)" in text for _, text in flashes), flashes
    db.session.refresh(row)
    assert row.placement == "unknown"


def test_the_scheduled_runs_start_a_job_only_when_something_is_due(env, user, sandbox):
    def jobs_of(kind):
        return db.session.execute(
            select(func.count()).select_from(Job).where(Job.kind == kind)
        ).scalar_one()

    assert _followed()  # imported pending orders are due at once
    polling.scheduled_poll()
    assert jobs_of(polling.POLL_JOB) == 1
    polling.scheduled_poll()  # nothing is due any more
    assert jobs_of(polling.POLL_JOB) == 1
    polling.scheduled_reconcile()
    assert jobs_of(polling.RECONCILE_JOB) == 0
    # An order whose answer was lost long ago is settled by the reconciler's job.
    row = Order(
        credential_id=env.id,
        placement="unknown",
        request_id="certdesk:never-sent",
        request="{}",
        attempted_at=utcnow() - timedelta(hours=1),
        next_check_at=utcnow() - timedelta(minutes=1),
    )
    db.session.add(row)
    db.session.commit()
    polling.scheduled_reconcile()
    assert jobs_of(polling.RECONCILE_JOB) == 1
    db.session.refresh(row)
    assert row.placement == "not_placed"


def test_orders_of_a_disabled_credential_wait_and_lost_answers_back_off(env, user, sandbox):
    from webapp.credentials import service as credentials

    assert polling.due()
    credentials.set_enabled(user["admin"], env, False)
    assert polling.due() == []  # its CA cannot be asked: nothing to start a job for
    row = Order(
        credential_id=env.id,
        placement="unknown",
        request_id="certdesk:while-disabled",
        request="{}",
        attempted_at=utcnow() - timedelta(hours=1),
        next_check_at=utcnow() - timedelta(minutes=1),
    )
    db.session.add(row)
    db.session.commit()
    waits = []
    now = utcnow()
    for _ in range(4):
        settling.reconcile(row, "scheduler", now=now)
        db.session.refresh(row)
        assert row.placement == "unknown" and "disabled" in row.message
        waits.append(row.next_check_at - now)
        assert settling.due_for_reconciling(now) == []  # not again before its next check
        now = row.next_check_at
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    credentials.set_enabled(user["admin"], env, True)
    settled = settling.reconcile(row, "scheduler", now=now)
    assert settled.placement == "not_placed"


def test_an_unread_action_of_a_disabled_credential_does_not_hide_the_others(env, user, sandbox):
    """An issued order whose action CertDesk could not read back waits for a check; when its
    credential is disabled (or deleted) it waits for good. First in line, it made the scheduler's
    "anything due?" (a limit of one) hear "no", and no other credential's order was checked."""
    from tests.conftest import link_sandbox
    from webapp.credentials import service as credentials

    other = link_sandbox(user, sandbox, name="Other")
    now = utcnow()
    for row in _followed():  # nothing else due: pending orders are checked later
        row.next_check_at = now + timedelta(days=1)
    waiting, due_one = (
        Order(
            credential_id=cred.id,
            placement="placed",
            phase="issued",
            status="ACTIVE",
            ca_order_id=ca_id,
            request="{}",
            next_check_at=now - timedelta(hours=hours),
        )
        for cred, ca_id, hours in ((other, "9000001", 2), (env, "9000002", 1))
    )
    db.session.add_all([waiting, due_one])
    db.session.commit()
    credentials.set_enabled(user["admin"], other, False)
    assert [r.id for r in polling.due(limit=1)] == [due_one.id]
    assert due_one.id in {r.id for r in polling.due()} and waiting.id not in {
        r.id for r in polling.due()
    }


def test_certificates_are_fetched_with_no_database_write_held(
    env, sandbox, ecs_calls_holding_writes
):
    """Orders issued since the last check bring their certificates: the statuses are saved
    first, then each certificate is fetched while CertDesk holds no write (on SQLite, the lock
    that every sign-in and order would otherwise wait for), then they are stored together."""
    pending = [r for r in _followed() if r.status == "PENDING"]
    assert len(pending) >= 2
    for row in pending:
        sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")
        row.next_check_at = utcnow()
    db.session.commit()
    sandbox.clear_requests()
    result = polling.poll(now=utcnow() + timedelta(minutes=1))
    assert result.counts["changed"] >= len(pending)
    assert result.counts["certificates"] == len(pending)
    fetched = [c for c in _calls(sandbox) if c != "certificates"]
    assert sorted(fetched) == sorted(r.ca_order_id for r in pending)
    assert ecs_calls_holding_writes == []
    for row in pending:
        db.session.refresh(row)
        assert row.phase == "issued" and row.message == ""
        stored = select(func.count()).select_from(Certificate).where(Certificate.order_id == row.id)
        assert db.session.execute(stored).scalar_one() == 1


def test_two_checks_of_one_order_at_once_store_its_news_once(app, env, user, sandbox):
    """A scheduled check and a user's Check Order Status of the same order, while Entrust is
    slow: its new status is recorded once and its certificate stored once, and neither fails.
    (The second used to fail on the certificate the first had just stored.)"""
    from webapp.auth.models import User

    row = db.session.execute(select(Order).where(Order.status == "ACTIVE").limit(1)).scalar()
    db.session.execute(Certificate.__table__.delete().where(Certificate.order_id == row.id))
    row.status, row.phase = "PENDING", "pending"
    db.session.commit()
    before = db.session.execute(select(func.max(OrderEvent.id))).scalar()  # the import's lines
    sandbox.faults([{"kind": "latency", "method": "GET", "ms": 400}])

    def check():
        actor = db.session.get(User, user["operator"].id)
        return polling.check([db.session.get(Order, row.id)], actor).counts["failed"]

    outcomes = together(app, check, check)
    sandbox.clear_faults()
    assert outcomes == [0, 0]
    kinds = db.session.execute(
        select(OrderEvent.kind)
        .where(OrderEvent.order_id == row.id, OrderEvent.id > before)
        .order_by(OrderEvent.id)
    ).scalars()
    assert [k for k in kinds if k in ("status", "certificate")] == ["status", "certificate"]
    stored = select(func.count()).select_from(Certificate).where(Certificate.order_id == row.id)
    assert db.session.execute(stored).scalar() == 1


def test_the_summaries_count_one_certificate_as_one():
    one = polling.CheckResult()
    one.counts.update(checked=1, changed=1, certificates=1)
    assert one.summary() == "1 checked, 1 changed, 1 certificate added to SSL › Certificates."
    mixed = polling.CheckResult()
    mixed.counts.update(checked=1200, changed=0, settled=1, failed=2)
    assert mixed.summary() == (
        "1,200 checked, no change, 1 lost answer settled, 2 could not be checked."
    )
    assert polling.CheckResult().summary() == "no order to check."
    counts = dict.fromkeys(importing.COUNT_NAMES, 0) | {"new": 2, "certificates": 2}
    assert importing._summary(counts).endswith("; 2 certificates added to SSL › Certificates")
    counts["certificates"] = 1
    assert importing._summary(counts).endswith("; 1 certificate added to SSL › Certificates")


def test_an_issued_order_is_read_again_once_its_certificate_has_expired(env, sandbox):
    """Entrust turns an issued certificate EXPIRED by itself once its time is up, and no one's
    action tells CertDesk: the scheduled check reads it after its expiry (and once more a day
    later while Entrust still calls it ACTIVE), so the order's status, the list's status filter
    and the actions offered follow."""
    row = db.session.execute(
        select(Order)
        .where(Order.status == "ACTIVE", Order.third_party.is_(False), Order.expires_at > utcnow())
        .order_by(Order.expires_at)
        .limit(1)
    ).scalar_one()
    expiry = row.expires_at
    assert row.next_check_at is None  # issued: nothing else would read it again
    assert row not in polling.due(now=expiry - timedelta(minutes=1))
    # Read just after its expiry, while Entrust still calls it ACTIVE.
    after = expiry + timedelta(minutes=1)
    assert row in polling.due(now=after)
    polling.poll(now=after)
    db.session.refresh(row)
    assert row.status == "ACTIVE" and row.last_checked_at == after
    assert row.next_check_at == after + timedelta(days=1)
    assert row not in polling.due(now=after + timedelta(hours=1))
    # A day later Entrust calls it EXPIRED: read again, the history says so, and it is left be.
    sandbox.advance_clock((after - utcnow()).total_seconds() / 86400)
    later = after + timedelta(days=1)
    assert row in polling.due(now=later)
    result = polling.poll(now=later)
    assert result.counts["changed"] >= 1
    db.session.refresh(row)
    assert (row.status, row.phase, row.next_check_at) == ("EXPIRED", "expired", None)
    event = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "status")
    ).scalar_one()
    assert (event.old_status, event.new_status) == ("ACTIVE", "EXPIRED")
    assert row not in polling.due(now=later + timedelta(days=3))


def test_orders_that_expired_while_certdesk_was_stopped_are_read_at_once(env, sandbox):
    """Expired days ago, Entrust calling them EXPIRED already (a suspended certificate too):
    the first scheduled check reads them (once), and an Entrust that cannot be asked is asked
    again later, not at every run."""
    rows = list(
        db.session.execute(
            select(Order)
            .where(
                Order.status == "ACTIVE", Order.third_party.is_(False), Order.expires_at > utcnow()
            )
            .order_by(Order.expires_at)
            .limit(2)
        ).scalars()
    )
    suspended = rows[1]
    sandbox.set_certificate_status(int(suspended.ca_order_id), "SUSPENDED")
    suspended.status, suspended.phase = "SUSPENDED", "suspended"
    db.session.commit()
    now = max(r.expires_at for r in rows) + timedelta(days=5)
    assert now - min(r.expires_at for r in rows) < polling.EXPIRED_LOOKBACK
    sandbox.advance_clock((now - utcnow()).total_seconds() / 86400)
    sandbox.faults([{"kind": "http_503", "method": "GET"}])
    result = polling.poll(now=now)
    sandbox.clear_faults()
    assert result.counts["failed"] >= 2
    for row in rows:
        db.session.refresh(row)
        assert row.status in ("ACTIVE", "SUSPENDED") and row.next_check_at > now
        assert row not in polling.due(now=now + timedelta(minutes=1))
    polling.poll(now=max(r.next_check_at for r in rows))
    for row in rows:
        db.session.refresh(row)
        assert (row.status, row.phase, row.next_check_at) == ("EXPIRED", "expired", None)


def test_an_order_renewed_at_entrust_keeps_its_certificate_or_has_it_fetched(
    env, user, sandbox, operator_client
):
    """A renewal leaves the original's certificate valid until its own expiry. A status check
    that finds an order RENEWED keeps its certificate valid in SSL › Certificates, and fetches
    it when CertDesk has none yet (issued and renewed at Entrust between two checks)."""
    held, cert = _active_order_and_certificate()
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        waiting = ecs.new_certificate(
            new_request("renewed-later.example.com", queue_for_approval=True)
        ).tracking_id
    job = importing.start_import(user["operator"], env.id, [])
    assert job.state == "succeeded", job.error
    row = db.session.execute(select(Order).where(Order.ca_order_id == str(waiting))).scalar_one()
    assert row.status == "PENDING"
    sandbox.set_certificate_status(int(held.ca_order_id), "RENEWED")
    sandbox.set_certificate_status(waiting, "ACTIVE")  # an Entrust administrator approves
    sandbox.set_certificate_status(waiting, "RENEWED")  # and someone renews it
    sandbox.clear_requests()

    result = polling.check_selected(user["operator"], [held.id, row.id])
    assert result.counts["changed"] == 2 and result.counts["certificates"] == 1
    assert result.counts["failed"] == 0
    db.session.expire_all()
    assert db.session.get(Certificate, cert.id).revoked_at is None
    row = db.session.get(Order, row.id)
    assert (row.status, row.phase, row.message) == ("RENEWED", "replaced", "")
    fetched = db.session.execute(
        select(Certificate).where(Certificate.order_id == row.id)
    ).scalar_one()
    assert fetched.revoked_at is None and fetched.not_after > utcnow()
    page = operator_client.get(f"/entrust/{row.id}").get_data(as_text=True)
    assert 'id="order-certificate"' in page and "renewed-later.example.com" in page
    # Checked again, nothing more is fetched.
    sandbox.clear_requests()
    again = polling.check_selected(user["operator"], [held.id, row.id])
    assert (again.counts["changed"], again.counts["certificates"]) == (0, 0)
    assert [c for c in _calls(sandbox) if c.isdigit()] == []
