"""CertDesk killed (SIGKILL) at random moments, again and again: during an import of existing
orders and while orders are being placed. After every kill the SQLite file passes its integrity
check; after the last, a restarted CertDesk resumes the import from its checkpoint, settles every
order whose answer was lost, and ends with exactly the sandbox's orders, each order placed once."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time

import requests
from sqlalchemy import select

from tests.conftest import link_sandbox, make_app
from tests.live import signed_in, start_server, wait_until
from webapp.credentials import clients
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import service as orders_settings
from webapp.orders.models import Order
from webapp.settings import service as settings

CREATE = "/enterprise/v2/certificates"
KILLS_PER_PART = 10
FAST = {
    "CERTDESK_SCHEDULER_TICK_SECONDS": "1",
    "CERTDESK_SCHEDULER_LEASE_SECONDS": "2",
    "CERTDESK_JOBS_STALE_SECONDS": "2",
    "CERTDESK_ORDERS_SETTLE_MARGIN_SECONDS": "0",
    "CERTDESK_ECS_RATE_WAIT_MAX_SECONDS": "2",
}


def _integrity_ok(instance) -> None:
    with contextlib.closing(sqlite3.connect(instance / "certdesk.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _kill(server) -> None:
    server.process.kill()
    server.process.wait(10)


def _rows(app, model, *where):
    with app.app_context():
        rows = list(db.session.execute(select(model).where(*where)).scalars())
        db.session.expunge_all()
        db.session.remove()
        return rows


def test_kills_during_import_and_ordering_leave_everything_consistent(
    instance, sandbox, fast_clients
):
    rng = random.Random(20261201)
    sandbox.seed(certificates=1500, seed=9)
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        cred_id = link_sandbox(user, sandbox).id
        csr_ids = [
            csrs.create_csr(user["operator"], "p256", {"CN": f"crash{i}.example.com"}, "").id
            for i in range(60)
        ]
        settings.put(clients.REQUESTS_PER_MINUTE, 6000)
        settings.put(clients.READ_TIMEOUT, 2)
        settings.put(clients.CONNECT_TIMEOUT, 2)
        settings.put(orders_settings.IMPORT_CONCURRENCY, 4)
        db.session.commit()
        db.session.remove()

    # --- part 1: an import of every existing order, killed over and over ---------------------
    sandbox.faults(
        [{"kind": "latency", "method": "GET", "path": "/enterprise/v2/certificates*", "ms": 15}]
    )
    server = start_server(instance, FAST)
    started = signed_in(server, "operator").post(
        server.url + "/entrust/import", data={"credential_id": cred_id}, timeout=30
    )
    assert started.status_code == 200, started.text
    for _ in range(KILLS_PER_PART):
        time.sleep(rng.uniform(0.5, 3.0))
        _kill(server)
        _integrity_ok(instance)
        server = start_server(instance, FAST)
    jobs_of = _rows(app, Job, Job.kind == "orders.import")
    assert len(jobs_of) == 1  # resumed each time, never started over as a new job
    wait_until(
        "the import to finish",
        lambda: _rows(app, Job, Job.kind == "orders.import")[0].finished,
        seconds=300,
        every=0.5,
    )
    job = _rows(app, Job, Job.kind == "orders.import")[0]
    assert job.state == "succeeded", job.error
    assert job.attempts > 1  # it was interrupted and resumed
    _kill(server)
    sandbox.clear_faults()

    listed = sandbox.orders(timeout=60)
    ours = _rows(app, Order, Order.credential_id == cred_id)
    numbered = {str(c["trackingId"]) for c in listed if c["trackingId"]}
    assert {o.ca_order_id for o in ours if not o.third_party} == numbered
    assert sum(o.third_party for o in ours) == sum(1 for c in listed if not c["trackingId"])

    # --- part 2: orders being placed, killed over and over ------------------------------------
    # Entrust takes a while to answer a create call, so kills land before, during and after it.
    sandbox.faults([{"kind": "latency", "method": "POST", "path": CREATE, "ms": 400}])
    queue = list(csr_ids)
    for _ in range(KILLS_PER_PART):
        server = start_server(instance, FAST)
        session = signed_in(server, "operator")
        stop = threading.Event()

        def place(session=session, server=server, stop=stop):
            while queue and not stop.is_set():
                form = {
                    "credential_id": cred_id,
                    "organization": "1:CertDesk Demo Corp",
                    "product": "STANDARD_SSL",
                    "csr_source": "certdesk",
                    "csr_id": queue.pop(),
                    "custom_text2": "crash test",
                    "ct_log": "1",
                    "action": "order",
                }
                with contextlib.suppress(requests.RequestException):
                    session.post(server.url + "/entrust/new", data=form, timeout=30)

        threading.Thread(target=place, daemon=True).start()
        time.sleep(rng.uniform(0.3, 2.5))
        _kill(server)
        stop.set()
        _integrity_ok(instance)
    sandbox.clear_faults()

    # A last start settles every order whose answer was lost (their deadline has passed).
    server = start_server(instance, FAST)
    try:
        assert _rows(app, Order, Order.origin == "placed"), "no order was ever attempted"
        wait_until(
            "every lost answer to be settled",
            lambda: all(
                o.placement in ("placed", "not_placed")
                for o in _rows(app, Order, Order.origin == "placed")
            ),
            seconds=120,
            every=0.5,
        )
    finally:
        _kill(server)
    _integrity_ok(instance)
    ours = _rows(app, Order, Order.origin == "placed")
    by_request = {  # CertDesk's request ids (the seed has its own)
        info: n
        for info, n in sandbox.held(timeout=60).items()
        if (info or "").startswith("certdesk:")
    }
    assert all(n == 1 for n in by_request.values()), "an order was placed twice"
    for o in ours:
        expected = 1 if o.placement == "placed" else 0
        assert by_request.get(o.request_id, 0) == expected, (o.placement, o.request_id)
    assert set(by_request) == {o.request_id for o in ours if o.placement == "placed"}
