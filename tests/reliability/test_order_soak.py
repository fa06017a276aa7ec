"""The order soak: 500 submissions (new orders, renewals and reissues of issued orders) while about
a fifth of the create calls meet a fault of every kind the sandbox has, drawn from a seeded random
plan; then the scheduled status check (which settles lost answers first), as it runs in production.

The sandbox is the judge: every request id reached Entrust at most once, the orders Entrust holds
are exactly the orders CertDesk shows as placed, each intent is placed (one order) or refused or
"not placed" (none), and none is left unknown without showing it on the orders page.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import func, select

from entrust_sandbox.traffic import CARRIED_OUT, FAULT_KINDS
from tests.conftest import link_sandbox, successor_form
from webapp.cas import registry
from webapp.certificates.models import Certificate
from webapp.credentials import clients
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.orders import checks, placing, polling, successors
from webapp.orders.models import Order
from webapp.settings import service as settings

pytestmark = pytest.mark.usefixtures("fast_clients")

SUBMISSIONS = 500
PARENTS = 110  # placed first, 40 days back, so that they can be renewed
SUCCESSORS = 80  # renewals and reissues among the submissions, of parents that were issued
FAULT_SHARE = 0.2
SEED = 20261201
CERTS = "/enterprise/v2/certificates"


def _plan(rng: random.Random, n: int) -> list[str | None]:
    """For each submission, the fault its create call meets (None: none). Every kind appears."""
    faulted = rng.sample(range(n), round(n * FAULT_SHARE))
    kinds = [FAULT_KINDS[i % len(FAULT_KINDS)] for i in range(len(faulted))]
    rng.shuffle(kinds)
    plan: list[str | None] = [None] * n
    for i, kind in zip(faulted, kinds, strict=True):
        plan[i] = kind
    return plan


def _rule(kind: str, path: str) -> dict:
    rule = {"kind": kind, "method": "POST", "path": path, "count": 1}
    if kind in ("timeout", "commit_then_timeout"):
        rule["ms"] = 1100  # just beyond the 1 s read timeout
    if kind == "latency":
        rule["ms"] = 20
    return rule


def _successor_form(row: Order, origin: str, csr_id: int | None) -> checks.OrderForm:
    fields = {"csr_id": csr_id, "csr_source": "certdesk"} if csr_id else {"csr_id": None}
    if origin == "renew":
        fields["expires_on"] = successors.page(row, origin).dates[1]
    return successor_form(row, origin, **fields)


def test_five_hundred_submissions_through_faults_never_twice(app, user, sandbox, admin_client):
    rng = random.Random(SEED)
    sandbox.seed(certificates=0, seed=4)
    cred = link_sandbox(user, sandbox)
    settings.put(clients.READ_TIMEOUT, 1)
    settings.put(clients.CONNECT_TIMEOUT, 1)
    settings.put(clients.REQUESTS_PER_MINUTE, 6000)
    db.session.commit()
    operator = user["operator"]
    csr = csrs.create_csr(operator, "p256", {"CN": "soak.example.net"}, "")
    new_order = checks.OrderForm(
        credential_id=cred.id,
        organization="1:CertDesk Demo Corp",
        product="PRIVATE_SSL",  # unlimited inventory
        csr_source="certdesk",
        csr_id=csr.id,
        custom={"text2": "soak"},
    )
    plan = _plan(rng, SUBMISSIONS)
    outcomes: Counter = Counter()
    errors: list[str] = []

    def submit(i: int, origin: str, parent: Order | None) -> None:
        kind = plan[i]
        if parent is None:
            path = CERTS
        else:
            path = (
                f"{CERTS}/{parent.ca_order_id}/{'reissues' if origin == 'reissue' else 'renewals'}"
            )
        if kind:
            sandbox.faults([_rule(kind, path)])
        try:
            if parent is None:
                row = placing.place(operator, new_order)
            else:
                # a reissue needs a new key; a renewal keeps the one CertDesk holds
                new_csr = csrs.create_csr(operator, "p256", {"CN": parent.common_name}, "")
                form = _successor_form(parent, origin, new_csr.id if origin == "reissue" else None)
                place = successors.reissue if origin == "reissue" else successors.renew
                row = place(operator, parent, form)
            outcomes[row.placement] += 1
        except placing.OrderRefused:
            outcomes["refused"] += 1
        except Exception as exc:  # collected, so that the test reports every one
            errors.append(f"submission {i} ({origin}, fault {kind}): {exc!r}")
            db.session.rollback()
        finally:
            if kind:
                sandbox.clear_faults()

    # The parents: placed 40 days back (the sandbox's clock), so that they can be renewed.
    sandbox.advance_clock(-40)
    for i in range(PARENTS):
        submit(i, "placed", None)
    sandbox.advance_clock(40)
    parents = list(
        db.session.execute(
            select(Order)
            .where(Order.placement == "placed", Order.phase == "issued")
            .order_by(Order.id)
        ).scalars()
    )
    assert len(parents) >= SUCCESSORS, len(parents)
    rng.shuffle(parents)
    kinds_of = ["reissue", "renew"] * (SUCCESSORS // 2)
    successors_at = set(rng.sample(range(PARENTS, SUBMISSIONS), SUCCESSORS))
    todo = iter(zip(parents, kinds_of, strict=False))
    mix = Counter()
    for i in range(PARENTS, SUBMISSIONS):
        if i in successors_at:
            parent, origin = next(todo)
            submit(i, origin, parent)
        else:
            origin = "placed"
            submit(i, origin, None)
        mix[origin] += 1
    assert errors == []

    # The scheduled status check, once every lost answer's deadline has passed (it settles lost
    # answers first, then reads the orders that are due).
    rows = list(db.session.execute(select(Order)).scalars())
    latest = max(r.attempted_at for r in rows if r.attempted_at)
    when = latest + registry.answer_deadline("entrust")
    unknown_before = sum(r.placement in ("intent", "unknown") for r in rows)
    for _ in range(3):
        polling.poll("scheduler", now=when)
        left = db.session.execute(
            select(func.count())
            .select_from(Order)
            .where(Order.placement.in_(("intent", "unknown")))
        ).scalar_one()
        if not left:
            break
        when = max(
            r.next_check_at for r in db.session.execute(select(Order)).scalars() if r.next_check_at
        )
    db.session.expire_all()
    rows = list(db.session.execute(select(Order)).scalars())

    # The judge: the sandbox's request log and its orders.
    posts = [
        r
        for r in sandbox.requests()
        if r["method"] == "POST"
        and (r["path"] == CERTS or r["path"].endswith(("/reissues", "/renewals")))
    ]
    sent = Counter(p["body"]["tracking"]["trackingInfo"] for p in posts)
    fault_of = {p["body"]["tracking"]["trackingInfo"]: p["fault"] for p in posts}
    assert len(posts) == SUBMISSIONS  # each submission sent once, never again
    assert set(sent.values()) == {1}
    faults = Counter(k for k in fault_of.values() if k)
    assert set(faults) == set(FAULT_KINDS), faults  # every kind met
    held = sandbox.held(timeout=60)
    duplicates = sum(n - 1 for n in held.values() if n > 1)
    assert duplicates == 0
    by_request = {r.request_id: r for r in rows}
    for request_id, kind in fault_of.items():
        carried_out = kind is None or kind in CARRIED_OUT
        assert held.get(request_id, 0) == (1 if carried_out else 0), (request_id, kind)
        row = by_request.get(request_id)
        if carried_out:
            assert row is not None and row.placement == "placed", (kind, row and row.message)
        elif row is not None:
            # the answer was lost: settled as not placed, shown so
            assert row.placement == "not_placed" and row.display_status == "NOT_PLACED"
        else:
            assert kind == "rate_limit"  # refused at once: nothing kept
    placed = [r for r in rows if r.placement == "placed"]
    assert sum(held.values()) == len(placed)  # Entrust holds exactly the orders shown as placed
    unknown = [r for r in rows if r.placement in ("intent", "unknown")]
    if unknown:  # anything left unsettled is in plain sight
        page = admin_client.get("/entrust/?status=@unknown").get_data(as_text=True)
        assert all(f"/entrust/{r.id}" in page for r in unknown[:50])
    not_placed = [r for r in rows if r.placement == "not_placed"]
    if not_placed:
        page = admin_client.get("/entrust/?status=@not_placed").get_data(as_text=True)
        assert f"/entrust/{not_placed[0].id}" in page
    certs = db.session.execute(select(func.count()).select_from(Certificate)).scalar_one()
    assert certs == len(placed)  # one certificate per placed order (all issue at once)
    print(
        f"\norder soak: submissions={len(posts)} "
        f"(new {mix['placed'] + PARENTS}, renew {mix['renew']}, reissue {mix['reissue']}) "
        f"faults={sum(faults.values())} {dict(sorted(faults.items()))} "
        f"placed={len(placed)} refused={outcomes['refused']} not_placed={len(not_placed)} "
        f"reconciled={unknown_before} unknown_left={len(unknown)} duplicates={duplicates}"
    )
