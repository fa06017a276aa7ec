"""Two requests at once on one certificate: only one of them changes it.

Each test holds both requests, once each has read the certificate, until the other has read it
too, so both act on the same status (the window a busy server leaves open by chance). Then one
of them must win and the other get the answer ECS gives when the status is already wrong, with
inventory, certificates and the audit log changed once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import flask
import pytest

from entrust_sandbox import orders

from .conftest import Api, assert_error

TURN = "X-Test-Turn"  # the request's place in an ordered race


@pytest.fixture
def race(sb, monkeypatch):
    """`race(*calls, in_order=False)`: run each `call(api)` on its own thread and connection; the
    responses in call order. Each request, once it has read the certificate by trackingId, waits
    until the others have read it too; `in_order` then holds each request until the one before
    it has been answered, so the writes land in call order. Later reads pass straight through."""
    read = orders.certificate_row

    def run(*calls, in_order=False):
        barrier = threading.Barrier(len(calls), timeout=10)
        answered = [threading.Event() for _ in calls]
        waiting = [len(calls)]
        lock = threading.Lock()

        def certificate_row(store, tracking_id):
            row = read(store, tracking_id)
            with lock:
                wait = waiting[0] > 0
                waiting[0] -= 1
            if wait:
                barrier.wait()
                turn = int(flask.request.headers.get(TURN, 0))
                if turn:
                    assert answered[turn - 1].wait(10), "the request before it was not answered"
            return row

        def send(i, call, api):
            try:
                return call(api)
            finally:
                answered[i].set()

        monkeypatch.setattr(orders, "certificate_row", certificate_row)
        apis = [Api(sb) for _ in calls]
        if in_order:
            for i, api in enumerate(apis):
                api.session.headers[TURN] = str(i)
        try:
            with ThreadPoolExecutor(len(calls)) as pool:
                pairs = enumerate(zip(calls, apis, strict=True))
                futures = [pool.submit(send, i, call, api) for i, (call, api) in pairs]
                return [f.result() for f in futures]
        finally:
            monkeypatch.setattr(orders, "certificate_row", read)
            for api in apis:
                api.session.close()

    return run


def _one_wins(responses, status):
    """Exactly one response is `status`; the other is a 400 error envelope. Return both."""
    winners = [r for r in responses if r.status_code == status]
    losers = [r for r in responses if r.status_code != status]
    assert len(winners) == 1, [(r.status_code, r.text) for r in responses]
    assert_error(losers[0], 400)
    return winners[0], losers[0]


def _inventory(api, product="STANDARD_SSL"):
    items = api.get("inventories").json()["inventories"]
    return next(i for i in items if i["productType"] == product)


def _audit(api, activity):
    logs = api.get("auditLogs", params={"limit": 100}).json()["auditLogs"]
    return [log for log in logs if log["activity"] == activity]


def _total(api):
    return api.get("certificates", params={"limit": 1}).json()["summary"]["total"]


@pytest.fixture
def pending(api):
    return api.order("www.example.com", queueForApproval=True).json()["trackingId"]


@pytest.fixture
def active(api):
    return api.order("www.example.com").json()["trackingId"]


def _patch(tracking_id, operation):
    return lambda api: api.patch(f"certificates/{tracking_id}", {"operation": operation})


def test_double_approve_issues_once(api, pending, race):
    before = _inventory(api)
    approve = _patch(pending, "APPROVE")
    winner, loser = _one_wins(race(approve, approve), 201)
    assert_error(loser, 400, "operation")
    assert "status ACTIVE" in loser.json()["errors"][0]["message"]
    assert _inventory(api)["remainingCount"] == before["remainingCount"] - 1
    detail = api.get(f"certificates/{pending}").json()
    assert detail["status"] == "ACTIVE"
    assert detail["serialNumber"] == winner.json()["serialNumber"]  # the one certificate kept
    assert detail["endEntityCert"] == winner.json()["endEntityCert"]
    assert len(_audit(api, "Certificate approved")) == 1


@pytest.mark.parametrize("first", ["APPROVE", "DECLINE"])
def test_approve_against_decline_one_wins(api, pending, race, first):
    before = _inventory(api)
    second = "DECLINE" if first == "APPROVE" else "APPROVE"
    won, lost = race(_patch(pending, first), _patch(pending, second), in_order=True)
    assert won.status_code == (201 if first == "APPROVE" else 200), won.text
    message = assert_error(lost, 400, "operation")["errors"][0]["message"]
    status = "ACTIVE" if first == "APPROVE" else "DECLINED"
    assert message == f"Operation {second} is not valid for a certificate in status {status}"
    assert api.get(f"certificates/{pending}").json()["status"] == status
    used = before["remainingCount"] - _inventory(api)["remainingCount"]
    assert used == (1 if first == "APPROVE" else 0)


@pytest.mark.parametrize(
    ("path", "status", "done"),
    [("reissues", "REISSUED", "reissued"), ("renewals", "RENEWED", "renewed")],
)
def test_a_double_reissue_or_renewal_makes_one_successor(sb, api, active, race, path, status, done):
    if path == "renewals":
        sb.advance_clock(30)
    before, total = _inventory(api), _total(api)
    replace = lambda api: api.post(f"certificates/{active}/{path}", {})  # noqa: E731
    winner, loser = _one_wins(race(replace, replace), 201)
    assert f"status {status} cannot be {done}" in loser.json()["errors"][0]["message"]
    assert api.get(f"certificates/{active}").json()["status"] == status
    assert _total(api) == total + 1
    assert _inventory(api)["remainingCount"] == before["remainingCount"] - 1
    assert len(_audit(api, f"Certificate {done}")) == 1
    new = winner.json()["trackingId"]
    assert api.get(f"certificates/{new}").json()["status"] == "ACTIVE"


def test_double_deactivate_returns_the_token_once(api, active, race):
    before = _inventory(api)
    deactivate = lambda api: api.post(f"certificates/{active}/deactivations")  # noqa: E731
    _winner, loser = _one_wins(race(deactivate, deactivate), 200)
    assert loser.json()["errors"][0]["message"] == "Certificate cannot be deactivated"
    assert api.get(f"certificates/{active}").json()["status"] == "DEACTIVATED"
    assert _inventory(api)["remainingCount"] == before["remainingCount"] + 1
    assert len(_audit(api, "Certificate deactivated")) == 1


def test_suspend_after_a_revocation_never_unrevokes(api, active, race):
    revoke = lambda api: api.post(f"certificates/{active}/revocations", {})  # noqa: E731
    revoked, suspended = race(revoke, _patch(active, "SUSPEND"), in_order=True)
    assert revoked.status_code == 200, revoked.text
    message = assert_error(suspended, 400, "operation")["errors"][0]["message"]
    assert message == "Operation SUSPEND is not valid for a certificate in status REVOKED"
    assert api.get(f"certificates/{active}").json()["status"] == "REVOKED"


def test_double_revocation_revokes_once(api, active, race):
    revoke = lambda api: api.post(f"certificates/{active}/revocations", {})  # noqa: E731
    _winner, loser = _one_wins(race(revoke, revoke), 200)
    assert loser.json()["errors"][0]["message"] == "Certificate cannot be revoked"
    assert len(_audit(api, "Certificate revoked")) == 1
