"""Never twice, never lost: 300 orders placed through CertDesk while the sandbox loses, refuses or
drops a good share of the create calls (after carrying some of them out), then the reconciler.

The sandbox's request log and its certificates are the judge: every intent reached Entrust exactly
once (no automatic retry), at most one certificate exists per intent, exactly one for each call
the sandbox carried out, and every intent ends issued or "not placed", in plain sight."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from entrust_sandbox import traffic
from tests.conftest import link_sandbox
from webapp.auth import service as auth
from webapp.cas import registry
from webapp.certificates.models import Certificate
from webapp.credentials import clients
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.orders import checks, placing, settling
from webapp.orders.models import Order
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")

ORDERS = 300
THREADS = 4
CREATE = "/enterprise/v2/certificates"
# The create call reached the account: no fault, or one that only spoiled its answer.
CARRIED_OUT = traffic.CARRIED_OUT | {None}


def test_three_hundred_orders_through_lost_answers_each_placed_at_most_once(app, user, sandbox):
    sandbox.seed(certificates=0, seed=4)
    cred = link_sandbox(user, sandbox)
    settings.put(clients.READ_TIMEOUT, 1)
    settings.put(clients.CONNECT_TIMEOUT, 1)
    settings.put(clients.REQUESTS_PER_MINUTE, 6000)  # the default 120 would pace this to 4 min
    db.session.commit()
    csr = csrs.create_csr(user["operator"], "p256", {"CN": "dup.example.net"}, "")
    form = dict(
        credential_id=cred.id,
        organization="1:CertDesk Demo Corp",
        product="PRIVATE_SSL",  # unlimited inventory
        csr_source="certdesk",
        csr_id=csr.id,
        custom={"text2": "duplicate test"},
    )
    sandbox.clear_requests()
    sandbox.faults(
        [
            {"kind": "commit_then_500", "method": "POST", "path": CREATE, "rate": 0.1, "seed": 9},
            {
                "kind": "commit_then_timeout",
                "method": "POST",
                "path": CREATE,
                "rate": 0.05,
                "ms": 1300,
            },
            {"kind": "reset", "method": "POST", "path": CREATE, "rate": 0.1},
            {"kind": "http_502", "method": "POST", "path": CREATE, "rate": 0.1},
            {"kind": "timeout", "method": "POST", "path": CREATE, "rate": 0.05, "ms": 1300},
            # The searches that settle lost answers fail now and then too (GETs are retried).
            {"kind": "http_503", "method": "GET", "path": CREATE, "rate": 0.1},
        ]
    )
    flask_app = app
    errors: list[BaseException] = []
    lock = threading.Lock()
    turns = iter(range(ORDERS))

    def submit_some():
        with flask_app.app_context():
            while True:
                with lock:
                    turn = next(turns, None)
                if turn is None:
                    return
                try:
                    placing.place(auth.by_username("operator"), checks.OrderForm(**form))
                except Exception as exc:  # collected, so that the test reports it
                    errors.append(exc)
                finally:
                    db.session.remove()

    threads = [threading.Thread(target=submit_some) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    sandbox.clear_faults()
    assert errors == []

    rows = list(db.session.execute(select(Order)).scalars())
    assert len(rows) == ORDERS
    # Settle what is still unknown, once every call's deadline has passed.
    latest = max(r.attempted_at for r in rows)
    settling.reconcile_due("scheduler", now=latest + registry.answer_deadline("entrust"))
    db.session.expire_all()
    rows = list(db.session.execute(select(Order)).scalars())

    posts = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == CREATE]
    sent = Counter(p["body"]["tracking"]["trackingInfo"] for p in posts)
    fault_of = {p["body"]["tracking"]["trackingInfo"]: p["fault"] for p in posts}
    assert set(sent) == {r.request_id for r in rows}
    assert set(sent.values()) == {1}  # no create call was ever sent twice
    faults = Counter(fault_of.values())
    assert all(faults[k] for k in ("commit_then_500", "reset", "http_502", None)), faults

    held = sandbox.held()
    assert set(held.values()) <= {1}  # never two certificates for one intent
    for row in rows:
        carried_out = fault_of[row.request_id] in CARRIED_OUT
        assert held.get(row.request_id, 0) == (1 if carried_out else 0)
        if carried_out:
            assert row.placement == "placed" and row.display_status == "ACTIVE", row.message
            assert row.ca_order_id and row.phase == "issued"
        else:
            assert row.placement == "not_placed" and row.display_status == "NOT_PLACED"
    certificates = db.session.execute(select(Certificate.order_id)).scalars().all()
    placed = {r.id for r in rows if r.placement == "placed"}
    assert sorted(certificates) == sorted(placed)  # one certificate per placed order, linked
    assert sum(held.values()) == len(placed)
