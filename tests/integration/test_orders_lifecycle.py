"""Update Certificate Status (approve, decline, suspend, resume), Revoke Certificate and Delete
against the real sandbox: each action from each state, allowed and refused (nothing is sent when
CertDesk already knows Entrust would refuse), the administrator-rights path, lost answers, many
orders as a background job, and Delete, which touches CertDesk only."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import link_sandbox, successor_form
from tests.integration.helpers import second_credential
from webapp.audit.models import AuditEvent
from webapp.auth import service as auth
from webapp.cas import registry
from webapp.cas.base import Action, CaOrder, Phase
from webapp.certificates.models import Certificate
from webapp.credentials import service as credentials
from webapp.credentials.models import EcsCredential
from webapp.csrs import service as csrs
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.orders import checks, importing, lifecycle, placing, polling, records, successors
from webapp.orders.models import Order, OrderEvent
from webapp.security.rbac import PermissionDenied
from webapp.settings import service as settings
from webapp.validation import InputError

pytestmark = pytest.mark.usefixtures("fast_clients")

PATCH_PATH = "/enterprise/v2/certificates/"


@pytest.fixture
def env(app, user, sandbox):
    sandbox.seed(certificates=0, seed=3)
    cred = link_sandbox(user, sandbox)
    sandbox.clear_requests()
    return cred


def _order(user, cred, cn="www.example.com", *, queue=False) -> Order:
    csr = csrs.create_csr(user["operator"], "p256", {"CN": cn}, "")
    form = checks.OrderForm(
        credential_id=cred.id,
        organization="1:CertDesk Demo Corp",
        product="STANDARD_SSL",
        csr_source="certdesk",
        csr_id=csr.id,
        requester_name="Ann Admin",
        requester_email="ann@example.com",
        custom={"text2": "billing"},
        queue_for_approval=queue,
    )
    return placing.place(user["operator"], form)


def _in_status(user, cred, sandbox, status: str, cn="www.example.com") -> Order:
    """An order that Entrust holds in ``status``, and CertDesk knows it (Check Order Status)."""
    row = _order(user, cred, cn, queue=status == "PENDING")
    if status not in ("PENDING", "ACTIVE"):
        sandbox.set_certificate_status(int(row.ca_order_id), status)
        polling.check([row], "scheduler")
    db.session.refresh(row)
    assert row.status == status
    return row


def _changes(sandbox, ca_order_id=None) -> list[dict]:
    """The calls that change something (PATCH, revocations) in the sandbox's request log."""
    out = []
    for r in sandbox.requests():
        changing = r["method"] == "PATCH" or r["path"].endswith("/revocations")
        if changing and (ca_order_id is None or f"/{ca_order_id}" in r["path"]):
            out.append(r)
    return out


def _audits(action: str) -> list[AuditEvent]:
    return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def _detail(event: AuditEvent) -> dict:
    return json.loads(event.detail or "{}")


STATES = ["PENDING", "ACTIVE", "SUSPENDED", "REVOKED", "EXPIRED"]
ALLOWED = {
    "approve": {"PENDING": "ACTIVE"},
    "decline": {"PENDING": "DECLINED"},
    "suspend": {"ACTIVE": "SUSPENDED"},
    "resume": {"SUSPENDED": "ACTIVE"},
    "revoke": {"ACTIVE": "REVOKED", "SUSPENDED": "REVOKED"},
}


WORDS = {
    "approve": "Approve applies to PENDING orders",
    "decline": "Decline applies to PENDING orders",
    "suspend": "Suspend applies to ACTIVE or READY orders",
    "resume": "Resume applies to SUSPENDED orders",
    "revoke": "Revoke applies to ACTIVE, READY or SUSPENDED orders",
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(ALLOWED))
def test_each_action_from_each_state(env, user, sandbox, action, state):
    row = _in_status(user, env, sandbox, state)
    sandbox.clear_requests()
    choices = lifecycle.Choices(
        reason={"decline": "Not ours", "revoke": "keyCompromise"}.get(action, ""),
        comment="lost laptop" if action == "revoke" else "",
    )
    result = lifecycle.run(user["admin"], lifecycle.ACTIONS[action], [row.id], choices)
    [outcome] = result.outcomes
    db.session.refresh(row)
    expected = ALLOWED[action].get(state)
    if expected is None:
        # Refused by CertDesk, in words, before anything is sent.
        assert outcome.result == "refused"
        assert outcome.message == f"{WORDS[action]}; this one is {state}."
        assert _changes(sandbox) == []
        assert row.status == state
        [audit] = _audits(f"order.{action}")
        assert audit.outcome == "refused"
        return
    assert outcome.result == "done", outcome.message
    assert len(_changes(sandbox, row.ca_order_id)) == 1  # sent once
    assert row.status == expected == sandbox.status(row.ca_order_id)  # read back
    [audit] = _audits(f"order.{action}")
    assert audit.outcome == "success" and _detail(audit)["to"] == expected
    ev = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind.like(f"{action}%"))
    ).scalar_one()
    assert ev.old_status == state and ev.new_status == expected
    certs = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalars()
    certs = list(certs)
    if action == "approve":
        assert len(certs) == 1 and certs[0].revoked_at is None  # issued into the repository
    if action == "revoke":
        assert certs and all(c.revoked_at is not None for c in certs)
        body = _changes(sandbox, row.ca_order_id)[0]["body"]
        assert body == {"crlReason": "keyCompromise", "revocationComment": "lost laptop"}
    if action == "decline":
        assert _changes(sandbox)[0]["body"] == {"operation": "DECLINE", "declineReason": "Not ours"}


def test_decline_needs_a_reason_and_revoke_an_accepted_one(env, user, sandbox):
    pending = _in_status(user, env, sandbox, "PENDING")
    active = _in_status(user, env, sandbox, "ACTIVE", "shop.example.com")
    sandbox.clear_requests()
    with pytest.raises(InputError) as err:
        lifecycle.run(user["admin"], Action.DECLINE, [pending.id], lifecycle.Choices(reason=" "))
    assert err.value.field == "reason"
    with pytest.raises(lifecycle.ActionInputError) as err:
        lifecycle.run(
            user["admin"], Action.REVOKE, [active.id], lifecycle.Choices(reason="superseded")
        )
    assert err.value.field == "reason"
    with pytest.raises(lifecycle.ActionInputError) as err:
        lifecycle.run(user["admin"], Action.SUSPEND, [], lifecycle.Choices())
    assert err.value.field == "order"
    assert _changes(sandbox) == []


def test_other_revocation_reasons_only_when_the_account_accepts_them(env, user, sandbox):
    assert [c for c, _ in registry.capabilities("entrust").revocation_reasons] == [
        "unspecified",
        "keyCompromise",
    ]
    settings.put(registry.ENTRUST_ALL_REVOCATION_REASONS, True)
    db.session.commit()
    sandbox.update_settings(fidelity={"accept_spec_only_crl_reasons": True})
    row = _in_status(user, env, sandbox, "ACTIVE")
    result = lifecycle.run(
        user["admin"], Action.REVOKE, [row.id], lifecycle.Choices(reason="superseded")
    )
    assert result.outcomes[0].result == "done", result.outcomes[0].message
    assert sandbox.status(row.ca_order_id) == "REVOKED"


def test_roles(env, user, sandbox):
    row = _in_status(user, env, sandbox, "ACTIVE")
    for action in (Action.SUSPEND, Action.REVOKE):
        with pytest.raises(PermissionDenied):
            lifecycle.run(
                user["operator"], action, [row.id], lifecycle.Choices(reason="unspecified")
            )
    with pytest.raises(PermissionDenied):
        lifecycle.delete_selected(
            user["operator"], [row.id], confirmed=True, unsettled_confirmed=True
        )
    # Admin > Settings may let operators update the status (not revoke or delete).
    from webapp.orders import service

    settings.put(service.OPERATORS_UPDATE_STATUS, True)
    db.session.commit()
    result = lifecycle.run(user["operator"], Action.SUSPEND, [row.id], lifecycle.Choices())
    assert result.outcomes[0].result == "done"
    with pytest.raises(PermissionDenied):
        lifecycle.run(
            user["operator"], Action.REVOKE, [row.id], lifecycle.Choices(reason="unspecified")
        )


# --- administrator rights ----------------------------------------------------------------------


def _requester_credential(user, sandbox, *, is_admin: bool) -> EcsCredential:
    sandbox.add_user("requester-api", "requester-key-0123456789", role="requester")
    cred, _job = credentials.create(
        user["admin"],
        credentials.CredentialInput(
            name="Requester",
            api_user="requester-api",
            api_key="requester-key-0123456789",
            base_url=sandbox.base_url,
            is_admin=is_admin,
        ),
    )
    return cred


def test_an_order_with_a_cn_longer_than_its_column_is_changed_through_the_admin_credential(
    env, user, sandbox
):
    """The administrator credential chosen for an order reads it first to be sure it is the same
    order: a CN that CertDesk keeps cut to its column still matches the whole one Entrust has."""
    req = _requester_credential(user, sandbox, is_admin=False)
    row = _in_status(user, req, sandbox, "ACTIVE")
    cn = "c" * 290 + ".example.com"
    with sandbox.sandbox.store.tx() as conn:
        conn.execute(
            "UPDATE certificates SET dn = ? WHERE tracking_id = ?",
            (f"CN={cn},O=CertDesk Demo Corp", int(row.ca_order_id)),
        )
    polling.check([row], "scheduler")
    db.session.refresh(row)
    assert row.common_name == cn[:254] + "…"
    result = lifecycle.run(
        user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices(credential_id=env.id)
    )
    assert result.outcomes[0].result == "done", result.outcomes[0].message
    assert sandbox.status(row.ca_order_id) == "SUSPENDED"


def _key_changed_at_entrust(user, cred, sandbox) -> None:
    """``cred`` now holds an API key Entrust refuses (HTTP 401), as after a change at Entrust."""
    credentials.update(
        user["admin"],
        cred,
        credentials.CredentialInput(
            name=cred.name, api_user=sandbox.api_user, api_key="not-the-key", base_url=cred.base_url
        ),
    )


def test_an_administrator_credential_whose_login_is_refused_is_asked_once(env, user, sandbox):
    """The administrator credential chosen to act reads each order first: once Entrust refuses
    its login, it is noted and not asked again for the other orders."""
    req = _requester_credential(user, sandbox, is_admin=False)
    rows = [_in_status(user, req, sandbox, "ACTIVE", f"adm{i}.example.com") for i in range(3)]
    _key_changed_at_entrust(user, env, sandbox)
    sandbox.clear_requests()
    choices = lifecycle.Choices(credential_id=env.id)
    result = lifecycle.run(user["admin"], Action.SUSPEND, [r.id for r in rows], choices)
    assert [o.result for o in result.outcomes] == ["failed"] * 3
    assert all(
        "Entrust refused the login of the credential 'Sandbox'" in o.message
        for o in result.outcomes
    )
    assert len(sandbox.requests()) == 1 and _changes(sandbox) == []
    db.session.expire_all()
    assert db.session.get(EcsCredential, env.id).last_test_refused


def test_a_requester_credential_gets_the_explained_refusal_and_loses_its_admin_flag(
    env, user, sandbox
):
    req = _requester_credential(user, sandbox, is_admin=True)  # ticked, wrongly
    row = _in_status(user, req, sandbox, "ACTIVE")
    sandbox.clear_requests()
    result = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices())
    [outcome] = result.outcomes
    assert outcome.result == "refused"
    assert "does not have Entrust administrator rights" in outcome.message
    assert "done by an Entrust administrator in the Entrust portal" in outcome.message
    assert "403" in outcome.message
    patches = _changes(sandbox)
    assert len(patches) == 1 and patches[0]["status"] == 403
    db.session.refresh(req)
    assert req.is_admin is False and "refused an administrator operation" in req.admin_note
    assert _audits("credential.admin_rights_cleared")
    assert sandbox.status(row.ca_order_id) == "ACTIVE"

    # Now CertDesk knows: without another credential nothing is sent, and it says why.
    sandbox.clear_requests()
    result = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices())
    assert result.outcomes[0].result == "refused"
    assert "needs Entrust administrator rights" in result.outcomes[0].message
    assert "done by an Entrust administrator in the Entrust portal" in result.outcomes[0].message
    assert _changes(sandbox) == []

    # The page offers the administrator credential of the same account ...
    rights = lifecycle.admin_rights([row])
    assert [c.id for c in rights.lacking] == [req.id]
    assert [c.id for c in rights.candidates] == [env.id]
    # ... and choosing it succeeds: the order is read through it first, then changed by it.
    sandbox.clear_requests()
    result = lifecycle.run(
        user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices(credential_id=env.id)
    )
    assert result.outcomes[0].result == "done", result.outcomes[0].message
    log = sandbox.requests()
    assert [(r["method"], r["user"]) for r in log][:2] == [
        ("GET", sandbox.api_user),
        ("PATCH", sandbox.api_user),
    ]
    assert sandbox.status(row.ca_order_id) == "SUSPENDED"
    [audit] = [a for a in _audits("order.suspend") if a.outcome == "success"]
    assert _detail(audit)["credential"] == "Sandbox"


def test_an_administrator_credential_of_another_account_is_not_used(
    env, user, sandbox, http_server
):
    """A second sandbox is another Entrust account: its administrator cannot act for ours."""
    req = _requester_credential(user, sandbox, is_admin=False)
    row = _in_status(user, req, sandbox, "ACTIVE")
    http_server.reset()
    http_server.seed(certificates=0, seed=3)
    other = link_sandbox(user, http_server, name="Other account")
    assert lifecycle.admin_rights([row]).candidates == [env]  # not "Other account"
    sandbox.clear_requests()
    http_server.clear_requests()
    result = lifecycle.run(
        user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices(credential_id=other.id)
    )
    assert result.outcomes[0].result == "refused"
    assert "not of the same Entrust account" in result.outcomes[0].message
    assert _changes(sandbox) == [] and _changes(http_server) == []


def test_the_same_order_is_recognised_by_what_both_sides_know():
    row = Order(ca_order_id="5000001", serial="0ABC", common_name="www.example.com")
    same = CaOrder("5000001", "ACTIVE", Phase.ISSUED, serial="0abc", common_name="WWW.example.com")
    assert lifecycle._same_order(row, same)
    assert not lifecycle._same_order(row, CaOrder("5000002", "ACTIVE", Phase.ISSUED, serial="0ABC"))
    other = CaOrder("5000001", "ACTIVE", Phase.ISSUED, serial="0DEF", common_name="www.example.com")
    assert not lifecycle._same_order(row, other)
    assert not lifecycle._same_order(row, CaOrder("5000001", "ACTIVE", Phase.ISSUED))


# --- lost answers, many orders ---------------------------------------------------------------


@pytest.mark.parametrize(("fault", "took_effect"), [("commit_then_500", True), ("http_502", False)])
def test_a_lost_answer_is_read_back_never_sent_again(env, user, sandbox, fault, took_effect):
    row = _in_status(user, env, sandbox, "ACTIVE")
    sandbox.clear_requests()
    sandbox.faults([{"kind": fault, "method": "PATCH"}])
    result = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices())
    sandbox.clear_faults()
    [outcome] = result.outcomes
    assert len(_changes(sandbox)) == 1  # never sent twice
    db.session.refresh(row)
    if took_effect:
        assert outcome.result == "done" and row.status == "SUSPENDED"
    else:
        assert outcome.result == "failed" and "answer was lost" in outcome.message
        assert "it is ACTIVE at Entrust now" in outcome.message and row.status == "ACTIVE"


@pytest.mark.parametrize(("fault", "result"), [(None, "done"), ("commit_then_500", "failed")])
def test_an_order_that_could_not_be_read_back_is_read_by_the_scheduled_check(
    env, user, sandbox, fault, result
):
    """Suspended at Entrust, but the order could not be read back afterwards (and, with a lost
    answer, CertDesk cannot tell whether it took effect): the next scheduled status check reads
    it, although CertDesk still holds it as ACTIVE, a status it does not follow otherwise."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    rules = [{"kind": "http_503", "method": "GET", "path": f"{PATCH_PATH}{row.ca_order_id}"}]
    if fault:
        rules.append({"kind": fault, "method": "PATCH"})
    sandbox.faults(rules)
    [outcome] = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices()).outcomes
    sandbox.clear_faults()
    db.session.refresh(row)
    assert outcome.result == result and row.status == "ACTIVE", outcome.message
    assert sandbox.status(row.ca_order_id) == "SUSPENDED"
    assert polling.poll("scheduler").counts["changed"] == 1
    db.session.refresh(row)
    assert row.status == "SUSPENDED" and row.next_check_at is None  # read once, then left
    assert polling.due() == []


def _status_line(order_id: int) -> OrderEvent:
    """The order's newest history line of a status read by a check."""
    return db.session.execute(
        select(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.kind == "status")
        .order_by(OrderEvent.id.desc())
        .limit(1)
    ).scalar_one()


def _last(action: str, object_id) -> dict:
    """The detail of the newest audit event ``action`` of ``object_id``."""
    event = db.session.execute(
        select(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one()
    return _detail(event)


@pytest.mark.parametrize(
    ("action", "fault", "status", "follows"),
    [
        (Action.SUSPEND, None, "SUSPENDED", "certificate.suspended"),
        (Action.SUSPEND, "commit_then_500", "SUSPENDED", "certificate.suspended"),
        (Action.REVOKE, None, "REVOKED", None),
    ],
)
def test_a_change_made_through_certdesk_and_read_later_is_told_as_the_users(
    env, user, sandbox, action, fault, status, follows
):
    """Suspended (or revoked) through CertDesk, but the order could not be read back afterwards
    (the answer lost too, in the second case): the check that reads the new status tells it, in
    the order's history and in the audit trail, as the change the user made through CertDesk,
    not as one made at Entrust. Once read, a later change at Entrust is Entrust's again."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    cert = db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalar()
    rules = [{"kind": "http_503", "method": "GET", "path": f"{PATCH_PATH}{row.ca_order_id}"}]
    if fault:
        rules.append({"kind": fault, "method": "PATCH"})
    sandbox.faults(rules)
    choices = lifecycle.Choices(reason="unspecified" if action is Action.REVOKE else "")
    [outcome] = lifecycle.run(user["admin"], action, [row.id], choices).outcomes
    sandbox.clear_faults()
    db.session.refresh(row)
    assert row.status == "ACTIVE" and sandbox.status(row.ca_order_id) == status, outcome.message
    assert polling.poll("scheduler").counts["changed"] == 1
    db.session.expire_all()
    line = _status_line(row.id)
    assert (line.old_status, line.new_status, line.actor_name) == ("ACTIVE", status, "admin")
    assert line.message == (
        f"{status.capitalize()} by admin through CertDesk; read by scheduler's status check."
    )
    detail = _last("order.status", row.id)
    assert "changed_at" not in detail, detail
    assert detail == {
        "ca_order_id": row.ca_order_id,
        "from": "ACTIVE",
        "to": status,
        "changed_through": "CertDesk",
        "action": action.value,
        "by": "admin",
        "read_by": "status check",
    }
    if follows:
        assert _last(follows, cert.id)["changed_through"] == "CertDesk"

    # Changed at Entrust afterwards: read as Entrust's change.
    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE" if follows else "EXPIRED")
    assert polling.check_selected(user["operator"], [row.id]).counts["changed"] == 1
    db.session.expire_all()
    line = _status_line(row.id)
    assert line.actor_name == "Entrust" and line.message.startswith("Changed at Entrust")
    assert _last("order.status", row.id)["changed_at"] == "Entrust"


def test_a_change_made_at_entrust_after_an_unread_action_is_entrusts(env, user, sandbox):
    """Suspended through CertDesk without reading it back; before any check, an Entrust
    administrator revokes the order in Entrust's portal: the check reads REVOKED, which is
    not what the suspension leads to, so it is told as Entrust's change."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    get = {"kind": "http_503", "method": "GET", "path": f"{PATCH_PATH}{row.ca_order_id}"}
    sandbox.faults([get])
    [outcome] = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices()).outcomes
    sandbox.clear_faults()
    assert outcome.result == "done" and sandbox.status(row.ca_order_id) == "SUSPENDED"
    sandbox.set_certificate_status(int(row.ca_order_id), "REVOKED")
    assert polling.poll("scheduler").counts["changed"] == 1
    db.session.expire_all()
    line = _status_line(row.id)
    assert (line.old_status, line.new_status, line.actor_name) == ("ACTIVE", "REVOKED", "Entrust")
    detail = _last("order.status", row.id)
    assert detail["changed_at"] == "Entrust" and "changed_through" not in detail


def test_an_unread_action_that_did_not_take_effect_leaves_later_changes_to_entrust(
    env, user, sandbox
):
    """A suspension whose answer was lost and that did not take effect, the order not read back:
    the next check reads it ACTIVE still. Suspended later in Entrust's portal, the check after
    that tells the suspension as Entrust's, not as the user's that never took effect."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    get = {"kind": "http_503", "method": "GET", "path": f"{PATCH_PATH}{row.ca_order_id}"}
    sandbox.faults([get, {"kind": "http_502", "method": "PATCH"}])
    [outcome] = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices()).outcomes
    sandbox.clear_faults()
    assert outcome.result == "failed" and sandbox.status(row.ca_order_id) == "ACTIVE"
    assert polling.poll("scheduler").counts["changed"] == 0
    sandbox.set_certificate_status(int(row.ca_order_id), "SUSPENDED")
    assert polling.check_selected(user["operator"], [row.id]).counts["changed"] == 1
    db.session.expire_all()
    line = _status_line(row.id)
    assert (line.new_status, line.actor_name) == ("SUSPENDED", "Entrust")
    assert _last("order.status", row.id)["changed_at"] == "Entrust"


def test_many_orders_run_as_a_job_with_each_outcome_audited(env, user, sandbox, monkeypatch):
    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    rows = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com") for i in range(3)]
    pending = _in_status(user, env, sandbox, "PENDING", "queue.example.com")
    ids = [r.id for r in rows] + [pending.id]
    result = lifecycle.run(user["admin"], Action.SUSPEND, ids, lifecycle.Choices())
    assert result.outcomes == [] and result.job is not None
    job = jobs.get(result.job.id)
    assert job.state == "succeeded", job.error
    assert jobs.result_of(job) == {"done": 3, "refused": 1, "failed": 0}
    assert "3 done, 1 refused" in job.message
    outcomes = {a.object_id: a.outcome for a in _audits("order.suspend") if a.object_id}
    assert outcomes == {str(r.id): "success" for r in rows} | {str(pending.id): "refused"}
    assert {sandbox.status(r.ca_order_id) for r in rows} == {"SUSPENDED"}
    # The request's own event names the job that did it and the orders it was asked for.
    (asked,) = [a for a in _audits("order.suspend") if not a.object_id]
    assert (asked.actor_name, asked.actor_id) == ("admin", user["admin"].id)
    assert json.loads(asked.detail) == {"orders": 4, "job": job.id, "order_ids": ids}


def test_a_job_in_which_entrust_failed_some_orders_says_failed_and_why(
    env, user, sandbox, monkeypatch, admin_client
):
    """Suspend on more orders than are done at once while Entrust answers one change with 503:
    the job's card says Failed, what was done, and Entrust's reason, which no order's page
    holds, rather than Succeeded."""
    import html

    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    ids = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com").id for i in range(3)]
    sandbox.faults([{"kind": "http_503", "method": "PATCH", "count": 1}])
    resp = admin_client.post("/entrust/status?action=suspend", data={"order": ids})
    sandbox.clear_faults()
    assert resp.status_code == 303 and "job=" in resp.headers["Location"]
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    card = html.unescape(page.split('id="job-')[1].split("</article>")[0])
    assert "Failed" in card and "Succeeded" not in card
    assert "Suspend: 2 done, 1 could not be done." in card
    assert "Entrust server error (HTTP 503)" in card
    assert len(_changes(sandbox)) == 3  # each sent once, none again


@pytest.mark.parametrize("inline", [True, False], ids=["at once", "as a job"])
def test_once_entrust_refuses_the_login_nothing_more_is_sent_through_it(
    env, user, sandbox, monkeypatch, inline
):
    """Its API key changed at Entrust: the first change call is refused (HTTP 401), the
    credential is noted as refused, and the other orders are not sent (each would be refused
    again, and failed logins can lock the API user); the job says Failed, and why."""
    rows = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com") for i in range(4)]
    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 10 if inline else 2)
    _key_changed_at_entrust(user, env, sandbox)
    sandbox.clear_requests()
    result = lifecycle.run(user["admin"], Action.SUSPEND, [r.id for r in rows], lifecycle.Choices())
    assert len(_changes(sandbox)) == 1  # one refused call, none after it
    if inline:
        assert [o.result for o in result.outcomes] == ["failed"] * 4
        said = {o.message for o in result.outcomes}
    else:
        job = jobs.get(result.job.id)
        assert job.state == "failed" and "4 could not be done" in job.error
        said = {job.error.split("could not be done. ", 1)[1]}
    (message,) = said
    assert "Entrust refused the login of the credential 'Sandbox'" in message
    assert "nothing more was sent through it" in message and "Test Login" in message
    db.session.expire_all()
    cred = db.session.get(EcsCredential, env.id)
    assert cred.last_test_ok is False and cred.last_test_refused
    assert {sandbox.status(r.ca_order_id) for r in rows} == {"ACTIVE"}


def test_a_job_stops_between_two_orders_when_certdesk_stops_and_reports_each_order(
    env, user, sandbox, monkeypatch
):
    """A bulk action cannot resume: when the process stops in order it ends after the order
    under way (with several workers the server would kill it before the job's end, perhaps in a
    call), saying how far it got. Its progress is reported as it goes, not every 100 orders."""
    rows = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com") for i in range(4)]
    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    monkeypatch.setattr(lifecycle, "PROGRESS_EVERY", 0)
    reported = []
    progress = jobs.JobContext.progress

    def record(ctx, done, total=None, message=None):
        reported.append(done)
        progress(ctx, done, total, message)

    monkeypatch.setattr(jobs.JobContext, "progress", record)
    monkeypatch.setattr(jobs, "process_stopping", lambda: len(_changes(sandbox)) >= 2)
    sandbox.clear_requests()
    result = lifecycle.run(user["admin"], Action.SUSPEND, [r.id for r in rows], lifecycle.Choices())
    job = jobs.get(result.job.id)
    assert job.state == "failed" and job.error.startswith("Stopped: CertDesk was stopping.")
    assert "2 of 4 orders were dealt with before (2 done)" in job.error
    assert len(_changes(sandbox)) == 2 and reported[:2] == [1, 2]
    assert [sandbox.status(r.ca_order_id) for r in rows] == ["SUSPENDED"] * 2 + ["ACTIVE"] * 2


def test_the_same_job_asked_for_twice_at_once_runs_once(app, env, user, sandbox, monkeypatch):
    """A double click on Update Certificate Status for more orders than are done at once: the
    second request finds the first one's job, and no change is sent twice."""
    from tests.helpers import together
    from webapp.auth.models import User

    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    ids = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com").id for i in range(3)]
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "method": "PATCH", "ms": 300}])

    def click():
        actor = db.session.get(User, user["admin"].id)
        return lifecycle.run(actor, Action.SUSPEND, ids, lifecycle.Choices()).job.id

    first, second = together(app, click, click)
    sandbox.clear_faults()
    assert first == second, (first, second)
    assert len(_changes(sandbox)) == 3  # each order's change sent once
    overlapping = ids[1:] + [_in_status(user, env, sandbox, "ACTIVE", "www9.example.com").id]
    running = jobs.get(first)
    running.state = "running"  # as while it runs
    db.session.commit()
    with pytest.raises(lifecycle.ActionInputError, match=f"job {first}"):
        lifecycle.run(user["admin"], Action.SUSPEND, overlapping, lifecycle.Choices())


def _demote(user_id: int, change: str) -> None:
    """What an administrator does meanwhile, in a request of their own: disable the user, or give
    them a role without the right."""
    from sqlalchemy import update

    from webapp.auth.models import User

    values = {"active": False} if change == "disabled" else {"role": "auditor"}
    db.session.execute(update(User).where(User.id == user_id).values(**values))
    db.session.commit()


@pytest.mark.parametrize("change", ["disabled", "auditor"])
def test_a_waiting_job_does_nothing_once_its_user_may_no_longer_act(
    env, user, sandbox, monkeypatch, change
):
    """A job of many orders waits for a worker; meanwhile an administrator disables or demotes
    the user who asked for it. The job sends nothing to Entrust and says why."""
    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    rows = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com") for i in range(3)]
    waiting = []
    monkeypatch.setattr(jobs, "submit", lambda job: waiting.append(job.id) or job)
    result = lifecycle.run(user["admin"], Action.SUSPEND, [r.id for r in rows], lifecycle.Choices())
    assert waiting == [result.job.id]
    _demote(user["admin"].id, change)
    sandbox.clear_requests()
    jobs.run(result.job.id, "worker")
    job = jobs.get(result.job.id)
    assert job.state == "failed"
    assert "admin may no longer suspend orders" in job.error and "0 of 3" in job.error
    assert _changes(sandbox) == []
    assert {sandbox.status(r.ca_order_id) for r in rows} == {"ACTIVE"}
    stop = [a for a in _audits("order.suspend") if a.outcome == "refused"]
    assert len(stop) == 1 and _detail(stop[0])["left"] == 3


def test_a_running_job_stops_at_its_next_step_once_its_user_is_disabled(
    env, user, sandbox, monkeypatch
):
    monkeypatch.setattr(lifecycle, "INLINE_LIMIT", 2)
    monkeypatch.setattr(lifecycle, "JOB_STEP", 1)
    rows = [_in_status(user, env, sandbox, "ACTIVE", f"www{i}.example.com") for i in range(3)]
    sandbox.clear_requests()
    progress = jobs.JobContext.progress

    def disabled_after_the_first(ctx, done, total=None, message=None):
        progress(ctx, done, total, message)
        if done == 1:
            _demote(user["admin"].id, "disabled")

    monkeypatch.setattr(jobs.JobContext, "progress", disabled_after_the_first)
    result = lifecycle.run(user["admin"], Action.SUSPEND, [r.id for r in rows], lifecycle.Choices())
    job = jobs.get(result.job.id)
    assert job.state == "failed" and "1 of 3 orders were dealt with" in job.error
    assert len(_changes(sandbox)) == 1
    assert [sandbox.status(r.ca_order_id) for r in rows] == ["SUSPENDED", "ACTIVE", "ACTIVE"]


# --- Delete ---------------------------------------------------------------------------------------


def test_delete_removes_orders_from_certdesk_only(env, user, sandbox):
    row = _in_status(user, env, sandbox, "ACTIVE")
    other = _in_status(user, env, sandbox, "ACTIVE", "shop.example.com")
    cert_id = db.session.execute(
        select(Certificate.id).where(Certificate.order_id == row.id)
    ).scalar_one()
    lost = Order(credential_id=env.id, placement="unknown", request_id="certdesk:lost-one")
    db.session.add(lost)
    db.session.commit()
    sandbox.clear_requests()
    with pytest.raises(lifecycle.ActionInputError) as err:
        lifecycle.delete_selected(
            user["admin"], [row.id], confirmed=False, unsettled_confirmed=False
        )
    assert err.value.field == "confirm"
    with pytest.raises(lifecycle.ActionInputError) as err:
        lifecycle.delete_selected(
            user["admin"], [row.id, lost.id], confirmed=True, unsettled_confirmed=False
        )
    assert err.value.field == "confirm_unsettled"
    assert db.session.get(Order, row.id) is not None  # nothing deleted yet

    row_id, lost_id, other_id, ca_id = row.id, lost.id, other.id, row.ca_order_id
    events = select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == row_id)
    assert db.session.execute(events).scalar_one() > 0
    n, _kept = lifecycle.delete_selected(
        user["admin"], [row_id, lost_id], confirmed=True, unsettled_confirmed=True
    )
    assert n == 2
    assert db.session.get(Order, row_id) is None and db.session.get(Order, other_id) is not None
    assert db.session.execute(events).scalar_one() == 0  # its history went with it
    cert = db.session.get(Certificate, cert_id)
    assert cert is not None and cert.order_id is None  # the certificate stays
    assert sandbox.requests() == []  # Entrust is not asked
    assert sandbox.status(ca_id) == "ACTIVE"
    deleted = {a.object_id: _detail(a) for a in _audits("order.delete")}
    assert set(deleted) == {str(row_id), str(lost_id)}
    assert deleted[str(row_id)]["certificate_kept"] is True


def test_delete_of_hundreds_of_orders_deletes_and_audits_exactly_those(
    env, user, sandbox, admin_client
):
    """Hundreds of imported orders of two credentials, some with a certificate, all with history
    and search names, one a renewal's original and one not settled: Delete removes exactly the
    selected ones with their history and names, keeps every certificate, unlinks the renewal,
    and audits each deleted order with its own detail, in one valid chain."""
    from webapp.audit import service as audit
    from webapp.orders.models import OrderName

    sandbox.seed(certificates=260, seed=11)
    job = importing.start_import(user["operator"], env.id, [])
    assert job.state == "succeeded", job.error
    other = second_credential(user, sandbox)
    ids = list(db.session.execute(select(Order.id).order_by(Order.id)).scalars())
    assert len(ids) >= 250
    # A third of them held through the second credential; one order not settled yet.
    db.session.execute(
        Order.__table__.update().where(Order.id.in_(ids[::3])).values(credential_id=other.id)
    )
    lost = Order(credential_id=env.id, placement="unknown", request_id="certdesk:lost-bulk")
    db.session.add(lost)
    db.session.commit()
    chosen = [i for n, i in enumerate(ids) if n % 5] + [lost.id]  # four in five, and the lost
    kept_ids = sorted(set(ids) - set(chosen))
    renewal = kept_ids[0]
    db.session.execute(
        Order.__table__.update().where(Order.id == renewal).values(parent_id=chosen[0])
    )
    db.session.commit()

    with_cert = set(
        db.session.execute(select(Certificate.order_id).where(Certificate.order_id.in_(chosen)))
        .scalars()
        .all()
    )
    assert 0 < len(with_cert) < len(chosen)
    expected = {
        str(r.id): {
            "ca_order_id": r.ca_order_id,
            "credential": r.credential.name,
            "common_name": r.common_name,
            "status": r.status,
            "placement": r.placement,
            "request_id": r.request_id,
            "certificate_kept": r.id in with_cert,
        }
        for r in db.session.execute(select(Order).where(Order.id.in_(chosen))).scalars()
    }
    assert {d["credential"] for d in expected.values()} == {"Sandbox", "Second user"}
    certs = {c: o for c, o in db.session.execute(select(Certificate.id, Certificate.order_id))}

    def count(model, column, among) -> int:
        stmt = select(func.count()).select_from(model).where(column.in_(among))
        return db.session.execute(stmt).scalar_one()

    history_kept, names_kept = (
        count(OrderEvent, OrderEvent.order_id, kept_ids),
        count(OrderName, OrderName.order_id, kept_ids),
    )
    assert count(OrderEvent, OrderEvent.order_id, chosen) >= len(ids) * 4 // 5
    assert count(OrderName, OrderName.order_id, chosen) >= len(ids) * 4 // 5
    db.session.remove()

    resp = admin_client.post(
        "/entrust/delete",
        data={"order": chosen, "step": "delete", "confirm": "1", "confirm_unsettled": "1"},
    )
    assert resp.status_code == 303
    said = admin_client.get("/entrust/").get_data(as_text=True)
    assert (
        f"{len(chosen)} orders deleted from CertDesk; nothing changed at Entrust. The "
        f"certificates of {len(with_cert)} of them stay in SSL › Certificates." in said
    )

    left = set(db.session.execute(select(Order.id)).scalars())
    assert left == set(kept_ids)
    assert count(OrderEvent, OrderEvent.order_id, chosen) == 0
    assert count(OrderName, OrderName.order_id, chosen) == 0
    assert count(OrderEvent, OrderEvent.order_id, kept_ids) == history_kept
    assert count(OrderName, OrderName.order_id, kept_ids) == names_kept
    assert db.session.get(Order, renewal).parent_id is None
    after = {c: o for c, o in db.session.execute(select(Certificate.id, Certificate.order_id))}
    assert set(after) == set(certs)  # every certificate stays
    assert after == {c: (None if o in set(chosen) else o) for c, o in certs.items()}

    events = _audits("order.delete")
    assert len(events) == len(chosen)
    assert {e.object_id: _detail(e) for e in events} == expected
    assert {(e.actor_name, e.object_type, e.outcome) for e in events} == {
        ("admin", "order", "success")
    }
    assert [e.seq for e in sorted(events, key=lambda e: e.seq)] == list(
        range(min(e.seq for e in events), min(e.seq for e in events) + len(events))
    )
    assert audit.verify().ok


def test_a_refusal_by_entrust_reads_the_order_back(env, user, sandbox):
    """CertDesk thinks the order is ACTIVE; an Entrust administrator suspended it meanwhile."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    sandbox.set_certificate_status(int(row.ca_order_id), "SUSPENDED")
    sandbox.clear_requests()
    result = lifecycle.run(user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices())
    [outcome] = result.outcomes
    assert outcome.result == "refused" and "SUSPENDED" in outcome.message  # Entrust's words
    assert len(_changes(sandbox)) == 1
    db.session.refresh(row)
    assert row.status == "SUSPENDED"  # read back


def test_an_approval_made_at_entrust_found_by_a_refused_approve_brings_the_certificate(
    env, user, sandbox
):
    """An Entrust administrator approved the queued order first: CertDesk's Approve is refused,
    and the read-back brings the certificate in, with its history line, as a status check
    would."""
    row = _in_status(user, env, sandbox, "PENDING")
    sandbox.set_certificate_status(int(row.ca_order_id), "ACTIVE")
    [outcome] = lifecycle.run(user["admin"], Action.APPROVE, [row.id], lifecycle.Choices()).outcomes
    assert outcome.result == "refused", outcome.message
    db.session.refresh(row)
    assert row.status == "ACTIVE"
    [cert] = certificates_of(row)
    [line] = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "certificate")
    ).scalars()
    assert line.message == "Certificate added to SSL › Certificates."
    assert line.actor_name == "admin"


def test_a_status_changed_at_entrust_found_by_a_refusal_is_told(env, user, sandbox):
    """The operator resumes a suspended order that an Entrust administrator revoked meanwhile:
    Entrust refuses, and the status CertDesk reads back has its history line, its audit event
    and its certificate marked revoked, as a status check would tell it. A refusal that finds
    the status unchanged adds nothing more."""
    row = _in_status(user, env, sandbox, "SUSPENDED")
    [cert] = certificates_of(row)
    assert cert.suspended_at is not None and cert.revoked_at is None
    sandbox.set_certificate_status(int(row.ca_order_id), "REVOKED")
    sandbox.clear_requests()
    [outcome] = lifecycle.run(user["admin"], Action.RESUME, [row.id], lifecycle.Choices()).outcomes
    assert outcome.result == "refused" and outcome.status == "REVOKED", outcome.message
    db.session.refresh(row)
    assert row.status == "REVOKED"
    lines = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "status")
    ).scalars()
    [line] = [e for e in lines if e.new_status == "REVOKED"]
    assert line.old_status == "SUSPENDED" and line.actor_name == "Entrust"
    assert line.message == (
        "Changed at Entrust; read by admin's read-back after a refused action."
    ), line.message
    assert line.notify_user_id == row.placed_by_id
    [status] = [a for a in _audits("order.status") if _detail(a).get("to") == "REVOKED"]
    assert status.object_id == str(row.id) and status.actor_name == "admin"
    assert _detail(status) == {
        "ca_order_id": row.ca_order_id,
        "from": "SUSPENDED",
        "to": "REVOKED",
        "changed_at": "Entrust",
        "read_by": "read-back after a refused action",
    }
    db.session.refresh(cert)
    assert cert.revoked_at is not None  # the certificate follows
    [refused] = [a for a in _audits("order.resume") if a.outcome == "refused"]
    assert refused.object_id == str(row.id)


def test_a_refusal_that_finds_the_status_unchanged_adds_nothing_to_tell(env, user, sandbox):
    row = _in_status(user, env, sandbox, "ACTIVE")
    lines = select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == row.id)
    before, statuses = db.session.execute(lines).scalar_one(), len(_audits("order.status"))
    path = f"{PATCH_PATH}{row.ca_order_id}*"
    sandbox.faults([{"kind": "html_error_page", "status": 409, "method": "PATCH", "path": path}])
    try:
        [outcome] = lifecycle.run(
            user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices()
        ).outcomes
    finally:
        sandbox.clear_faults()
    assert outcome.result == "refused" and outcome.status == "ACTIVE", outcome.message
    assert sandbox.status(row.ca_order_id) == "ACTIVE"
    assert db.session.execute(lines).scalar_one() == before
    assert len(_audits("order.status")) == statuses


def test_a_status_changed_at_entrust_found_after_a_lost_answer_is_told(env, user, sandbox):
    """The operator suspends an order an Entrust administrator revoked meanwhile, and the answer
    is lost (the call never carried out): the status read back is Entrust's doing, and told as
    a status check tells it."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    sandbox.set_certificate_status(int(row.ca_order_id), "REVOKED")
    sandbox.faults([{"kind": "http_502", "method": "PATCH"}])
    try:
        [outcome] = lifecycle.run(
            user["admin"], Action.SUSPEND, [row.id], lifecycle.Choices()
        ).outcomes
    finally:
        sandbox.clear_faults()
    assert outcome.result == "failed" and "it is REVOKED at Entrust now" in outcome.message
    db.session.refresh(row)
    assert row.status == "REVOKED"
    lines = db.session.execute(
        select(OrderEvent).where(OrderEvent.order_id == row.id, OrderEvent.kind == "status")
    ).scalars()
    [line] = [e for e in lines if e.new_status == "REVOKED"]
    assert line.old_status == "ACTIVE" and line.actor_name == "Entrust"
    assert line.message == "Changed at Entrust; read by admin's read-back after a lost answer."
    [status] = [a for a in _audits("order.status") if _detail(a).get("to") == "REVOKED"]
    assert _detail(status)["changed_at"] == "Entrust"
    assert _detail(status)["read_by"] == "read-back after a lost answer"


def certificates_of(row: Order) -> list[Certificate]:
    return list(
        db.session.execute(select(Certificate).where(Certificate.order_id == row.id)).scalars()
    )


def test_a_status_read_before_an_action_does_not_undo_it(env, user, sandbox):
    """An import or a status check that read the orders before an action was done (the import
    reads its pages ahead; a check of 100 orders takes a while) and writes them after it: the
    order stays as the action left it, with no history line going back."""
    row = _order(user, env, "stale.example.com")
    with registry.open_connector("entrust", env.id) as conn:
        page = next(conn.list_orders(0, 1000))
        checked = conn.statuses([row.ca_order_id])[row.ca_order_id]
    assert checked.status == "ACTIVE" and row.ca_order_id in [o.order_id for o in page.orders]
    choices = lifecycle.Choices(reason="keyCompromise")
    [outcome] = lifecycle.run(user["admin"], Action.REVOKE, [row.id], choices).outcomes
    assert outcome.result == "done", outcome.message
    importing.upsert_page(env.id, page.orders, set(), "scheduler", utcnow())
    db.session.commit()
    [held] = records.lock_rows([row.id])  # as the status check applies what it read
    assert records.apply(held, checked, utcnow()) == (False, None)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == "REVOKED" == sandbox.status(row.ca_order_id)
    kinds = db.session.execute(
        select(OrderEvent.kind, OrderEvent.new_status).where(OrderEvent.order_id == row.id)
    ).all()
    assert ("status", "ACTIVE") not in kinds, kinds


@pytest.mark.parametrize(
    ("state", "first", "second"),
    [
        ("PENDING", ("approve", ""), ("decline", "Not ours")),
        ("ACTIVE", ("revoke", "keyCompromise"), ("revoke", "keyCompromise")),
        ("ACTIVE", ("suspend", ""), ("revoke", "unspecified")),
    ],
)
def test_two_actions_on_one_order_at_the_same_moment_send_one_call(
    app, env, user, sandbox, state, first, second
):
    """Two browsers act on the same order at the same moment while Entrust answers slowly: one
    call reaches Entrust, the other action is refused in words and sends nothing."""
    row = _in_status(user, env, sandbox, state)
    row_id, ca_id = row.id, row.ca_order_id
    db.session.remove()
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "ms": 1500, "path": "/enterprise/v2/certificates/*"}])
    barrier = threading.Barrier(2)
    results: list = []

    def act(name, reason):
        with app.app_context():
            try:
                actor = auth.by_username("admin")
                choices = lifecycle.Choices(reason=reason)
                barrier.wait(timeout=30)
                [outcome] = lifecycle.run(
                    actor, lifecycle.ACTIONS[name], [row_id], choices
                ).outcomes
                results.append((name, outcome.result, outcome.message))
            except Exception as exc:  # the assertion below shows it
                results.append((name, "error", repr(exc)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=act, args=a) for a in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    sandbox.clear_faults()
    assert len(_changes(sandbox, ca_id)) == 1, results
    assert sorted(r[1] for r in results) == ["done", "refused"], results
    [refused] = [r for r in results if r[1] == "refused"]
    assert "under way" in refused[2] or "this one is" in refused[2], refused
    row = db.session.get(Order, row_id)
    assert row.status == sandbox.status(ca_id) != state
    assert row.acting is None and row.acting_until is None  # nothing left held
    names = {f"order.{first[0]}", f"order.{second[0]}"}
    outcomes = sorted(e.outcome for n in names for e in _audits(n))
    assert outcomes == ["refused", "success"]


def test_an_action_under_way_is_shown_and_a_stale_claim_runs_out(env, user, sandbox):
    """While another status action's call is under way on an order, the pages say so and nothing
    is sent; a claim left by a process that stopped mid-call runs out."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    row.acting, row.acting_until = "suspend", utcnow() + timedelta(minutes=5)
    db.session.commit()
    sandbox.clear_requests()
    page = lifecycle.selection([row.id], lifecycle.STATUS_ACTIONS, user["admin"])
    assert "A Suspend of this order is under way" in page.disabled["suspend"]
    assert f"free again at {row.acting_until:%Y-%m-%d %H:%M} UTC" in page.disabled["suspend"]
    from webapp.orders import availability

    until = row.acting_until
    assert availability.acting_words("approve", until).startswith("An Approve of this order")
    assert availability.acting_words("resume", until).startswith("A Resume of this order")
    choices = lifecycle.Choices(reason="keyCompromise")
    [outcome] = lifecycle.run(user["admin"], Action.REVOKE, [row.id], choices).outcomes
    assert outcome.result == "refused" and "under way" in outcome.message
    assert _changes(sandbox) == []
    db.session.refresh(row)
    assert row.acting == "suspend"  # another run's claim is not undone by a refusal

    row.acting_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    [outcome] = lifecycle.run(user["admin"], Action.REVOKE, [row.id], choices).outcomes
    assert outcome.result == "done", outcome.message
    db.session.refresh(row)
    assert row.status == "REVOKED" == sandbox.status(row.ca_order_id)
    assert row.acting is None


def test_delete_waits_for_an_action_under_way_on_the_order(app, env, user, sandbox):
    """An administrator deletes an order while another's Revoke of it waits on Entrust: the
    delete is refused, so the revocation is recorded (the order, its certificate, the audit
    trail); once it has ended, the order can be deleted."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    row_id, ca_id = row.id, row.ca_order_id
    db.session.remove()
    sandbox.faults([{"kind": "latency", "ms": 1500, "path": "/enterprise/v2/certificates/*"}])
    results: dict = {}
    claimed = threading.Event()

    def revoke():
        with app.app_context():
            try:
                choices = lifecycle.Choices(reason="unspecified")
                result = lifecycle.run(auth.by_username("admin"), Action.REVOKE, [row_id], choices)
                results["revoke"] = result.outcomes[0].result
            except Exception as exc:  # the assertion below shows it
                results["revoke"] = repr(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=revoke)
    thread.start()
    for _ in range(100):  # until the revoke's claim is committed (its call is then under way)
        db.session.expire_all()
        if db.session.get(Order, row_id).acting:
            claimed.set()
            break
        claimed.wait(0.05)
    assert claimed.is_set()
    admin = auth.by_username("admin")
    with pytest.raises(InputError) as refused:
        lifecycle.delete_selected(admin, [row_id], confirmed=True, unsettled_confirmed=False)
    assert "Nothing was deleted" in str(refused.value) and "(Revoke)" in str(refused.value)
    thread.join(timeout=60)
    sandbox.clear_faults()
    assert results["revoke"] == "done"
    db.session.expire_all()
    row = db.session.get(Order, row_id)
    assert row.status == "REVOKED" == sandbox.status(ca_id)
    certs = db.session.execute(select(Certificate).where(Certificate.order_id == row_id)).scalars()
    assert [c.revoked_at is not None for c in certs] == [True]
    assert [a.outcome for a in _audits("order.revoke")] == ["success"]
    assert _audits("order.delete") == []
    assert (
        lifecycle.delete_selected(
            auth.by_username("admin"), [row_id], confirmed=True, unsettled_confirmed=False
        )[0]
        == 1
    )


@pytest.mark.parametrize("first", ["reissue", "revoke"])
def test_a_reissue_and_a_revoke_of_one_order_at_the_same_moment_send_one_call(
    app, env, user, sandbox, first
):
    """One user reissues an order while another revokes it, Entrust answering slowly: whichever
    is under way first is sent, the other is refused in words with nothing sent."""
    row = _in_status(user, env, sandbox, "ACTIVE")
    row_id, ca_id = row.id, row.ca_order_id
    csr_id = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "").id
    db.session.remove()
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "ms": 1500, "method": "POST", "path": "/enterprise/v2/*"}])
    results: dict = {}

    def reissue():
        with app.app_context():
            try:
                original = db.session.get(Order, row_id)
                form = successor_form(original, csr_source="certdesk", csr_id=csr_id)
                results["reissue"] = successors.reissue(
                    auth.by_username("operator"), original, form
                ).status
            except InputError as exc:
                results["reissue"] = str(exc)
            finally:
                db.session.remove()

    def revoke():
        with app.app_context():
            try:
                choices = lifecycle.Choices(reason="unspecified")
                result = lifecycle.run(auth.by_username("admin"), Action.REVOKE, [row_id], choices)
                results["revoke"] = result.outcomes[0].message
            finally:
                db.session.remove()

    def under_way() -> bool:
        db.session.expire_all()
        if first == "revoke":
            return db.session.get(Order, row_id).acting == "revoke"
        return records.unsettled_successor(row_id) is not None

    runs = {"reissue": reissue, "revoke": revoke}
    thread = threading.Thread(target=runs[first])
    thread.start()
    for _ in range(200):  # until the first one's call is under way
        if under_way():
            break
        threading.Event().wait(0.02)
    db.session.remove()
    second = "revoke" if first == "reissue" else "reissue"
    runs[second]()
    thread.join(timeout=60)
    sandbox.clear_faults()
    changing = [
        r["path"]
        for r in sandbox.requests()
        if r["method"] == "POST" and r["path"].endswith(("/reissues", "/revocations"))
    ]
    assert len(changing) == 1, (changing, results)
    assert changing[0].endswith({"reissue": "/reissues", "revoke": "/revocations"}[first])
    assert "under way" in results[second], results
    status = sandbox.status(ca_id)
    assert status == {"reissue": "REISSUED", "revoke": "REVOKED"}[first]
    assert db.session.get(Order, row_id).status == status


@pytest.mark.parametrize("change", ["demoted", "disabled"])
def test_a_user_demoted_or_disabled_meanwhile_sends_nothing_more(env, user, sandbox, change):
    """Suspend of three orders, each call slow: an administrator changes the user's role (or
    disables them) while the first call is under way. That one is done; the other two are
    refused unsent, as a background job's would be, and the audit trail says so."""
    from webapp.auth.models import User

    rows = [_in_status(user, env, sandbox, "ACTIVE", cn=f"h{i}.example.com") for i in range(3)]
    actor = user["admin"]
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "ms": 1500, "method": "PATCH", "path": PATCH_PATH + "*"}])
    values = {"role": "auditor"} if change == "demoted" else {"active": False}
    engine, first, actor_id = db.engine, rows[0].id, actor.id

    def administrator():
        deadline = time.monotonic() + 20
        with engine.connect() as conn:
            while time.monotonic() < deadline:  # the first order's call is under way
                acting = conn.execute(select(Order.acting).where(Order.id == first))
                if acting.scalar() is not None:
                    break
                conn.rollback()
                time.sleep(0.02)
            conn.execute(update(User).where(User.id == actor_id).values(**values))
            conn.commit()

    other = threading.Thread(target=administrator)
    other.start()
    result = lifecycle.run(actor, Action.SUSPEND, [r.id for r in rows], lifecycle.Choices())
    other.join()
    assert [o.result for o in result.outcomes] == ["done", "refused", "refused"]
    said = "your account or role was changed meanwhile, and you may no longer suspend orders"
    assert all(said in o.message for o in result.outcomes[1:])
    assert len(_changes(sandbox)) == 1  # only the first order's call went out
    refused = [a for a in _audits("order.suspend") if a.outcome == "refused"]
    assert {a.object_id for a in refused} == {str(rows[1].id), str(rows[2].id)}
    for row in rows[1:]:
        db.session.refresh(row)
        assert row.status == "ACTIVE" and row.acting is None
