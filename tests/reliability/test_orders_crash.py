"""`certdesk serve` killed while Entrust carries out its create call: the order exists at Entrust,
CertDesk holds only the intent. A new `certdesk serve` settles it at start-up, by searching Entrust
for the request id: linked, with its certificate, and never ordered a second time."""

from __future__ import annotations

import contextlib
import threading
import time

import requests
from sqlalchemy import select

from tests.conftest import link_sandbox, make_app
from tests.live import signed_in, start_server, stop_server
from webapp.credentials import clients
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.orders.models import Order
from webapp.settings import service as settings

CREATE = "/enterprise/v2/certificates"
FAST_SCHEDULER = {"CERTDESK_SCHEDULER_TICK_SECONDS": "1", "CERTDESK_SCHEDULER_LEASE_SECONDS": "3"}


def _orders(app) -> list[Order]:
    with app.app_context():
        rows = list(db.session.execute(select(Order)).scalars())
        db.session.expunge_all()
        db.session.remove()
        return rows


def test_an_order_caught_in_a_crash_is_settled_when_certdesk_starts_again(
    instance, sandbox, fast_clients
):
    sandbox.seed(certificates=0, seed=5)
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        cred_id = link_sandbox(user, sandbox).id
        csr_id = csrs.create_csr(user["operator"], "p256", {"CN": "crash.example.com"}, "").id
        db.session.remove()

    # Entrust carries out the call, then holds the answer for a minute: CertDesk is killed first.
    sandbox.faults([{"kind": "commit_then_timeout", "method": "POST", "path": CREATE, "ms": 60000}])
    first = start_server(instance, FAST_SCHEDULER)
    try:
        session = signed_in(first, "operator")
        form = {
            "credential_id": cred_id,
            "organization": "1:CertDesk Demo Corp",
            "product": "STANDARD_SSL",
            "csr_source": "certdesk",
            "csr_id": csr_id,
            "custom_text2": "crash test",
            "ct_log": "1",
            "action": "order",
        }
        threading.Thread(
            target=lambda: _ignore(
                lambda: session.post(first.url + "/entrust/new", data=form, timeout=90)
            ),
            daemon=True,
        ).start()
        deadline = time.monotonic() + 30
        while not [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == CREATE]:
            assert time.monotonic() < deadline, "the order never reached the sandbox"
            time.sleep(0.1)
        time.sleep(0.5)  # the sandbox has committed the order and holds the answer
    finally:
        first.process.kill()
        first.process.wait(10)
    sandbox.clear_faults()

    rows = _orders(app)
    assert [r.placement for r in rows] == ["intent"]  # committed before the call, nothing after
    request_id = rows[0].request_id

    # The next start settles it (short timeouts: the call's deadline is long past).
    with app.app_context():
        settings.put(clients.READ_TIMEOUT, 1)
        settings.put(clients.CONNECT_TIMEOUT, 1)
        db.session.commit()
        db.session.remove()
    second = start_server(
        instance,
        {
            **FAST_SCHEDULER,
            "CERTDESK_ORDERS_SETTLE_MARGIN_SECONDS": "0",
            # No call waits in the budget after a crash: the order is due at the start.
            "CERTDESK_ECS_RATE_WAIT_MAX_SECONDS": "0",
        },
    )
    try:
        deadline = time.monotonic() + 60
        while (row := _orders(app)[0]).placement != "placed":
            assert time.monotonic() < deadline, f"not settled: {row.placement} {row.message}"
            time.sleep(0.5)
        assert row.status == "ACTIVE" and row.request_id == request_id
        page = signed_in(second, "auditor").get(f"{second.url}/entrust/{row.id}", timeout=10).text
        assert "Found at Entrust as order" in page and 'id="order-certificate"' in page
    finally:
        stop_server(second)
    posts = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == CREATE]
    assert len(posts) == 1  # settled by a search, not by ordering again


def _ignore(call):
    with contextlib.suppress(requests.RequestException):  # the server was killed mid-request
        call()
