"""The scheduled Import Existing Orders against the real sandbox: off unless turned on in Admin >
Settings; when on, the periodic task imports every enabled credential's orders placed at Entrust
since, with the exclusions of its last import, as "scheduler"; a credential whose login Entrust
refuses is noted and does not stop the others, and is left out while that stands (not one whose
Test Login Entrust did not answer); an import not finished is not started twice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import link_sandbox
from tests.helpers import wait_finished, workers_held
from tests.integration.helpers import SECOND_KEY, new_request, second_credential
from webapp.audit.models import AuditEvent
from webapp.credentials import clients
from webapp.credentials import service as credentials
from webapp.dbtypes import utcnow
from webapp.ecs import EcsClient
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import Job
from webapp.orders import importing
from webapp.orders.models import Order
from webapp.scheduler import Scheduler, scheduler
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=12, seed=5)
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _turn_on(hours: int = 6) -> None:
    settings.put(importing.IMPORT_INTERVAL_HOURS, hours)
    db.session.commit()


def _imports() -> list[Job]:
    stmt = select(Job).where(Job.kind == importing.JOB_KIND).order_by(Job.id)
    return list(db.session.execute(stmt).scalars())


def _place_at_entrust(sandbox, host: str) -> str:
    """An order placed outside CertDesk (as in Entrust's own portal)."""
    with EcsClient(sandbox.base_url, sandbox.api_user, sandbox.api_key) as ecs:
        return str(ecs.new_certificate(new_request(host)).tracking_id)


def _held(ca_order_id: str) -> bool:
    stmt = select(func.count()).select_from(Order).where(Order.ca_order_id == ca_order_id)
    return db.session.execute(stmt).scalar_one() == 1


def test_off_by_default_imports_nothing(env, sandbox):
    assert settings.get(importing.IMPORT_INTERVAL_HOURS) == 0
    placed = _place_at_entrust(sandbox, "off.example.com")
    sandbox.clear_requests()
    importing.scheduled_import()
    db.session.expire_all()
    assert _imports() == [] and not _held(placed)
    assert sandbox.requests() == []  # not one call to Entrust
    # The task is registered with the scheduler, its interval read from the setting.
    task = scheduler.tasks["orders.import"]
    assert task.func is importing.scheduled_import
    assert task.interval() is None  # off
    _turn_on(6)
    assert task.interval() == timedelta(hours=6)


def test_turned_on_the_first_import_is_due_at_the_next_tick_then_by_the_interval(app):
    """However long the scheduled import stayed off, turned on it runs at the scheduler's next
    tick; turned off and on again within its interval, it waits for the interval."""
    runs = []
    ticks = Scheduler()  # the import's interval, with a task that only counts
    ticks.init_app(app)
    ticks.register("orders.import", lambda: runs.append(1), importing.import_interval)
    now = utcnow()
    for minutes in range(0, 600, 7):
        ticks.tick(now + timedelta(minutes=minutes))
    assert runs == []
    _turn_on(6)
    ticks.tick(now + timedelta(minutes=601))
    assert runs == [1]
    ticks.tick(now + timedelta(minutes=602))
    _turn_on(0)
    ticks.tick(now + timedelta(minutes=700))
    _turn_on(6)
    ticks.tick(now + timedelta(minutes=701))
    assert runs == [1]  # it ran 100 minutes before: it waits for its 6 hours
    ticks.tick(now + timedelta(minutes=601 + 6 * 60))
    assert runs == [1, 1]


def test_on_imports_what_was_placed_at_entrust_since(env, user, sandbox):
    remembered = ["expired", "third_party"]  # not the page's defaults
    first = importing.start_import(user["operator"], env.id, remembered)
    assert first.state == "succeeded", first.error
    placed = _place_at_entrust(sandbox, "outside.example.com")
    assert not _held(placed)
    # A second credential whose key Entrust refuses (changed there, say), named to come first.
    bad, _ = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name="A refused",
            api_user=sandbox.api_user,
            api_key="not-the-key",
            base_url=sandbox.base_url,
        ),
        start_sync=False,
    )
    disabled = link_sandbox(user, sandbox, name="Disabled")
    disabled.enabled = False
    db.session.commit()
    _turn_on(6)

    importing.scheduled_import()
    db.session.expire_all()

    assert _held(placed)
    runs = _imports()[1:]
    assert [r.state for r in runs] == ["failed", "succeeded"], [r.error for r in runs]
    assert [jobs.params_of(r)["credential_id"] for r in runs] == [bad.id, env.id]
    assert jobs.params_of(runs[1])["exclusions"] == remembered
    assert jobs.params_of(runs[0])["exclusions"] == sorted(importing.DEFAULT_EXCLUSIONS)
    assert jobs.result_of(runs[1])["new"] == 1
    assert all(r.started_by_id is None for r in runs)
    # Named on Jobs as the scheduled syncs and status checks are; the one by hand is not.
    assert [r.title for r in runs] == [
        "Import existing orders of A refused (scheduled)",
        "Import existing orders of Sandbox (scheduled)",
    ]
    assert first.title == "Import existing orders of Sandbox"
    # Login refused: noted on the credential and audited, as for an import started by hand.
    refused = db.session.get(type(bad), bad.id)
    assert refused.last_test_ok is False and "an import" in refused.last_test_message
    events = db.session.execute(
        select(AuditEvent.action, AuditEvent.object_id, AuditEvent.outcome).where(
            AuditEvent.action.in_(
                ("order.import.start", "order.import", "credential.login_refused")
            ),
            AuditEvent.actor_name == "scheduler",
        )
    ).all()
    assert sorted(events) == sorted(
        [
            ("credential.login_refused", str(bad.id), "failure"),
            ("order.import", str(bad.id), "failure"),
            ("order.import", str(env.id), "success"),
            ("order.import.start", str(bad.id), "success"),
            ("order.import.start", str(env.id), "success"),
        ]
    )
    start = db.session.execute(
        select(AuditEvent.detail).where(
            AuditEvent.action == "order.import.start",
            AuditEvent.actor_name == "scheduler",
            AuditEvent.object_id == str(env.id),
        )
    ).scalar_one()
    assert json.loads(start)["exclusions"] == remembered


def test_an_import_not_finished_is_not_started_twice(app, env, user, sandbox):
    _turn_on(1)
    with workers_held(app):  # the import started by hand stays queued: it has not finished
        manual = importing.start_import(
            user["operator"], env.id, list(importing.DEFAULT_EXCLUSIONS)
        )
        importing.scheduled_import()
        db.session.expire_all()
        assert [j.id for j in _imports()] == [manual.id]
    wait_finished(manual.id)
    # The task returns at once, its import left to the background pool; run again meanwhile,
    # it leaves that import to run.
    with workers_held(app):
        importing.scheduled_import()
        db.session.expire_all()
        scheduled = _imports()[1:]
        assert [j.state for j in scheduled] == ["queued"]
        importing.scheduled_import()
        db.session.expire_all()
        assert _imports()[1:] == scheduled
    wait_finished(scheduled[0].id)
    db.session.expire_all()
    assert scheduled[0].state == "succeeded", scheduled[0].error
    starts = db.session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "order.import.start")
    ).scalar_one()
    assert starts == 2


def test_a_credential_marked_login_failed_is_left_out_until_its_login_works(
    env, user, sandbox, caplog
):
    """A credential whose last login Entrust refused (Login failed) is not imported on schedule
    (its import would only fail again, every interval): said once a run in the log, the other
    credential imported as before; a Test Login that works brings it back."""
    import logging

    second = second_credential(user, sandbox, start_sync=False)
    sandbox.add_user("second-user", api_key="changed-at-entrust-0123456789")
    try:
        assert not credentials.test_login(user["admin"], second).ok
    finally:
        sandbox.add_user("second-user", api_key=SECOND_KEY)
    assert db.session.get(type(second), second.id).last_test_ok is False
    _turn_on(6)
    sandbox.clear_requests()

    with caplog.at_level(logging.INFO, logger="webapp.orders.importing"):
        importing.scheduled_import()
    db.session.expire_all()
    runs = _imports()
    assert [jobs.params_of(r)["credential_id"] for r in runs] == [env.id]
    assert runs[0].state == "succeeded", runs[0].error
    assert not any(r["user"] == "second-user" for r in sandbox.requests())
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.INFO
    assert "Second user" in skipped[0].getMessage()

    # Test Login answered (the key works at Entrust again): imported on the next run.
    assert credentials.test_login(user["admin"], db.session.get(type(second), second.id)).ok
    importing.scheduled_import()
    db.session.expire_all()
    later = _imports()[1:]
    assert sorted(jobs.params_of(r)["credential_id"] for r in later) == sorted([env.id, second.id])
    assert all(r.state == "succeeded" for r in later), [r.error for r in later]


VERSION = "/enterprise/v2/application/version"


@pytest.mark.parametrize(
    "fault",
    [{"kind": "reset"}, {"kind": "timeout", "ms": 2500}],
    ids=["connection-cut", "timeout"],
)
def test_a_test_login_entrust_did_not_answer_does_not_keep_a_credential_out(
    env, user, sandbox, caplog, fault
):
    """A Test Login that failed without Entrust answering (the connection cut, a timeout) says
    nothing of the login: the credential shows Login failed, and the scheduled import imports it
    as usual (which, answered, clears that)."""
    import logging

    second = second_credential(user, sandbox, start_sync=False)
    settings.put(clients.READ_TIMEOUT, 1)
    db.session.commit()
    sandbox.faults([dict(fault, path=VERSION)])
    try:
        result = credentials.test_login(user["admin"], second)
    finally:
        sandbox.clear_faults()
    settings.put(clients.READ_TIMEOUT, 60)
    assert not result.ok and not result.refused, result.message
    row = db.session.get(type(second), second.id)
    assert row.last_test_ok is False and not row.last_test_refused
    _turn_on(6)
    sandbox.clear_requests()

    with caplog.at_level(logging.INFO, logger="webapp.orders.importing"):
        importing.scheduled_import()
    db.session.expire_all()
    runs = _imports()
    assert sorted(jobs.params_of(r)["credential_id"] for r in runs) == sorted([env.id, second.id])
    assert all(r.state == "succeeded" for r in runs), [r.error for r in runs]
    assert any(r["user"] == "second-user" for r in sandbox.requests())
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]
    # Entrust answered the import: the failed Test Login no longer stands.
    assert db.session.get(type(second), second.id).last_test_ok is None


def test_a_refusal_after_an_unanswered_test_login_keeps_it_out_again(env, user, sandbox):
    """A Test Login refused (401) after one that Entrust did not answer: the refusal is what the
    row notes, and the credential is left out of the schedule again."""
    second = second_credential(user, sandbox, start_sync=False)
    sandbox.faults([{"kind": "reset", "path": VERSION}])
    try:
        assert not credentials.test_login(user["admin"], second).refused
    finally:
        sandbox.clear_faults()
    sandbox.add_user("second-user", api_key="changed-at-entrust-0123456789")
    try:
        refused = credentials.test_login(user["admin"], db.session.get(type(second), second.id))
    finally:
        sandbox.add_user("second-user", api_key=SECOND_KEY)
    assert not refused.ok and refused.refused
    row = db.session.get(type(second), second.id)
    assert row.last_test_ok is False and row.last_test_refused
    _turn_on(6)
    importing.scheduled_import()
    db.session.expire_all()
    assert [jobs.params_of(r)["credential_id"] for r in _imports()] == [env.id]
