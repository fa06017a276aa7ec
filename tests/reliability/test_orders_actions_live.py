"""Many orders at once through a real `certdesk serve`: Update Certificate Status and Revoke
Certificate on more orders than are done inline run as a background job in the server's worker
pool; the list polls its progress; every order ends as Entrust says, each outcome audited, and no
change is sent twice."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

from sqlalchemy import select

from tests.conftest import link_sandbox, make_app
from tests.live import signed_in, start_server, stop_server, wait_until
from webapp.audit.models import AuditEvent
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import checks, lifecycle, placing
from webapp.orders.models import Order

ORDERS = lifecycle.INLINE_LIMIT + 5


def _prepare(instance, sandbox) -> list[int]:
    """ORDERS issued orders and one pending, placed before the server starts."""
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        cred = link_sandbox(user, sandbox)
        ids = []
        for i in range(ORDERS + 1):
            csr = csrs.create_csr(user["operator"], "p256", {"CN": f"bulk{i}.example.com"}, "")
            row = placing.place(
                user["operator"],
                checks.OrderForm(
                    credential_id=cred.id,
                    organization="1:CertDesk Demo Corp",
                    product="PRIVATE_SSL",
                    csr_source="certdesk",
                    csr_id=csr.id,
                    custom={"text2": "bulk"},
                    queue_for_approval=i == ORDERS,
                ),
            )
            ids.append(row.id)
        db.session.remove()
        db.engine.dispose()
    return ids


def _wait_for_job(app, job_id: int, timeout: float = 180) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            job = db.session.get(Job, job_id)
            state = job.state if job else None
            if state in ("succeeded", "failed"):
                db.session.expunge(job)
                db.session.remove()
                return job
            db.session.remove()
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _slowed_suspend(server, client, sandbox, orders: list[int], ms: int) -> int:
    """Suspend ``orders`` as one background job, each of Entrust's PATCH answers slowed by ``ms``
    (the sandbox's requests cleared first): the job's id."""
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "method": "PATCH", "ms": ms}])
    resp = client.post(
        server.url + "/entrust/status?action=suspend",
        data={"order": orders},
        allow_redirects=False,
        timeout=60,
    )
    assert resp.status_code == 303, resp.text
    return int(resp.headers["Location"].rsplit("=", 1)[1])


def _patches(sandbox) -> int:
    """How many PATCH requests (status changes) the sandbox has had."""
    return sum(r["method"] == "PATCH" for r in sandbox.requests())


def _statuses(app) -> dict[int, str]:
    with app.app_context():
        rows = {r.id: r.status for r in db.session.execute(select(Order)).scalars()}
        db.session.remove()
        return rows


def _audited(app, action: str) -> Counter:
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.object_id != "")
        ).scalars()
        out = Counter(e.outcome for e in events)
        db.session.remove()
        return out


def test_many_orders_are_suspended_then_revoked_in_the_background(instance, sandbox, fast_clients):
    sandbox.seed(certificates=0, seed=8)
    ids = _prepare(instance, sandbox)
    issued, pending = ids[:-1], ids[-1]
    app = make_app(instance, instance / "certdesk.db")
    server = start_server(instance)
    try:
        http = signed_in(server, "admin")
        sandbox.clear_requests()
        resp = http.post(
            server.url + "/entrust/status?action=suspend",
            # Sent from the list as filtered: the job's card shows on that list.
            data={"order": ids, "next": "/entrust/?sort=cn&page=2"},
            allow_redirects=False,
            timeout=60,
        )
        assert resp.status_code == 303, resp.text
        m = re.search(r"/entrust/\?sort=cn&job=(\d+)$", resp.headers["Location"])
        assert m, resp.headers["Location"]
        page = http.get(server.url + resp.headers["Location"], timeout=60).text
        assert 'id="order-job"' in page and "Suspend" in page  # the list shows the job
        job = _wait_for_job(app, int(m.group(1)))
        assert job.state == "succeeded", job.error
        assert json.loads(job.result) == {"done": ORDERS, "refused": 1, "failed": 0}
        statuses = _statuses(app)
        assert {statuses[i] for i in issued} == {"SUSPENDED"} and statuses[pending] == "PENDING"
        assert _audited(app, "order.suspend") == {"success": ORDERS, "refused": 1}
        patches = Counter(r["path"] for r in sandbox.requests() if r["method"] == "PATCH")
        assert len(patches) == ORDERS and set(patches.values()) == {1}  # each sent once

        sandbox.clear_requests()
        resp = http.post(
            server.url + "/entrust/revoke",
            data={"order": issued, "step": "revoke", "reason": "unspecified", "comment": "bulk"},
            allow_redirects=False,
            timeout=60,
        )
        assert resp.status_code == 303, resp.text
        job = _wait_for_job(app, int(resp.headers["Location"].rsplit("=", 1)[1]))
        assert json.loads(job.result) == {"done": ORDERS, "refused": 0, "failed": 0}
        assert {_statuses(app)[i] for i in issued} == {"REVOKED"}
        revocations = [r for r in sandbox.requests() if r["path"].endswith("/revocations")]
        assert len(revocations) == ORDERS
        for row_id in issued[:3]:
            page = http.get(server.url + f"/entrust/{row_id}", timeout=60).text
            assert "REVOKED" in page and "Reason: Unspecified. bulk" in page
        with app.app_context():
            from webapp.certificates.models import Certificate

            certs = list(db.session.execute(select(Certificate)).scalars())
            assert len(certs) == ORDERS and all(c.revoked_at is not None for c in certs)
            db.session.remove()
        # Nothing left to do: the selection page says so for every order.
        page = http.post(server.url + "/entrust/revoke", data={"order": issued[:2]}, timeout=60)
        assert "None of the selected orders allows it" in page.text
    finally:
        stop_server(server)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_job_stops_at_the_next_order_once_its_user_loses_the_right(
    instance, sandbox, fast_clients
):
    """An operator (allowed by Admin › Settings) suspends many orders; while the job runs in the
    server's worker pool, an administrator makes them an auditor on the Users page. The job
    stops before its next order and says why; the orders after it stay as they are."""
    from webapp.orders import service as orders
    from webapp.settings import service as settings

    sandbox.seed(certificates=0, seed=9)
    issued = _prepare(instance, sandbox)[:-1]
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        settings.put(orders.OPERATORS_UPDATE_STATUS, True)
        db.session.commit()
        operator_id = auth.by_username("operator").id
        db.session.remove()
    server = start_server(instance)
    try:
        operator, admin = signed_in(server, "operator"), signed_in(server, "admin")
        job_id = _slowed_suspend(server, operator, sandbox, issued, ms=250)
        wait_until("the job's first call", lambda: _patches(sandbox) >= 1, 60, every=0.05)
        resp = admin.post(
            f"{server.url}/admin/users/{operator_id}/role",
            data={"role": "auditor"},
            allow_redirects=False,
            timeout=60,
        )
        assert resp.status_code == 303, resp.text
        job = _wait_for_job(app, job_id)
        sandbox.clear_faults()
        assert job.state == "failed", job.result
        assert "operator may no longer suspend orders" in job.error
        sent = [r for r in sandbox.requests() if r["method"] == "PATCH"]
        assert 1 <= len(sent) < ORDERS
        statuses = _statuses(app)
        suspended = [i for i in issued if statuses[i] == "SUSPENDED"]
        assert len(suspended) == len(sent) and suspended == issued[: len(sent)]
        assert f"{len(sent)} of {ORDERS} orders were dealt with" in job.error
        assert _audited(app, "order.suspend") == {"success": len(sent)}
    finally:
        stop_server(server)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_job_cut_short_by_a_crash_says_where_things_stand_and_how_to_go_on(
    instance, sandbox, fast_clients
):
    """`certdesk serve` killed while it suspends many orders: the next start fails the job (its
    calls change orders; none is sent again), and its card says that some orders may have been
    changed, how to find out which, and what to do then, not only that the server stopped."""
    fast = {
        "CERTDESK_SCHEDULER_TICK_SECONDS": "1",
        "CERTDESK_SCHEDULER_LEASE_SECONDS": "2",
        "CERTDESK_JOBS_STALE_SECONDS": "2",
    }
    sandbox.seed(certificates=0, seed=10)
    issued = _prepare(instance, sandbox)[:-1]
    app = make_app(instance, instance / "certdesk.db")
    first = start_server(instance, fast)
    try:
        job_id = _slowed_suspend(first, signed_in(first, "admin"), sandbox, issued, ms=400)
        wait_until("the job's third call", lambda: _patches(sandbox) >= 3, 60, every=0.05)
    finally:
        first.process.kill()
        first.process.wait(10)
    sandbox.clear_faults()
    sent = len([r for r in sandbox.requests() if r["method"] == "PATCH"])
    assert sent < ORDERS

    second = start_server(instance, fast)
    try:
        job = _wait_for_job(app, job_id, 60)
        assert job.state == "failed" and job.error.startswith("Interrupted"), job.error
        card = signed_in(second, "admin").get(f"{second.url}/jobs/{job_id}", timeout=30).text
        said = re.search(r'class="field-error job-error">([^<]*)<', card)
        assert said, card
        words = said.group(1)
        assert "may have been changed at Entrust" in words
        assert "Check Order Status" in words and "act again" in words
        assert len([r for r in sandbox.requests() if r["method"] == "PATCH"]) == sent
    finally:
        stop_server(second)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
