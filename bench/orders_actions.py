"""Benchmark: the actions on orders among 100,000 orders.

Usage: .venv/bin/python bench/orders_actions.py [--count N] [--repeat R] [--bulk B] [--delete D]
       [--profile FILE]

Fills a fresh migrated SQLite database with N order rows (as bench/orders_list.py does), one in
a hundred of them a renewal of the order before it, each with two lines of history. Then, through
the Flask test client, it times R times: an order's page (it looks up the order's successors), the
Update Certificate Status and Revoke Certificate pages for 25 and for 1,000 selected orders, and
the Delete confirmation page for 1,000; it prints p50/p95 (target: p95 < 100 ms for 25 orders).
Then it deletes B selected orders in one request (default 20,000, as many as a user may select;
orders without a renewal, from the second half of the ids, a few of them not settled) and prints
the time (target: < 3 s); with --profile, it also writes that request's cProfile statistics to
FILE and prints the functions that took most of it.
Last it deletes D selected orders (their history goes, their successors' parent_id is set NULL by
the foreign key), once with the index on ca_order.parent_id (migration 0008) and once without it,
and prints both times with SQLite's plan of the foreign key's lookup. No CA is called: the pages
only read, and Delete touches CertDesk alone.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import importlib.util
import pstats
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PASSWORD = "bench-password-1"
HERE = Path(__file__).resolve().parent


def _orders_list():
    spec = importlib.util.spec_from_file_location("orders_list", HERE / "orders_list.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_lineage_and_history() -> None:
    from sqlalchemy import insert, update

    from webapp.extensions import db
    from webapp.orders.models import Order, OrderEvent

    started = time.perf_counter()
    ids = [r[0] for r in db.session.execute(db.select(Order.id).order_by(Order.id))]
    for i in range(1, len(ids), 100):
        db.session.execute(
            update(Order).where(Order.id == ids[i]).values(parent_id=ids[i - 1], origin="renew")
        )
    now = datetime.now(UTC)
    batch = []
    for order_id in ids:
        for kind in ("imported", "status"):
            batch.append({"order_id": order_id, "kind": kind, "at": now, "message": ""})
        if len(batch) >= 10000:
            db.session.execute(insert(OrderEvent), batch)
            batch = []
    if batch:
        db.session.execute(insert(OrderEvent), batch)
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    print(f"linked renewals and wrote history in {time.perf_counter() - started:.1f} s")


def timed(client, method: str, url: str, repeat: int, **kwargs) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.open(url, method=method, **kwargs)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--delete", type=int, default=1000)
    parser.add_argument("--bulk", type=int, default=20_000)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    bench = _orders_list()

    from flask_migrate import upgrade

    from webapp import _init_secretbox, create_app, paths
    from webapp.auth import service as auth
    from webapp.extensions import db
    from webapp.orders.models import Order

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the database goes with the run
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'certdesk.db'}",
            "SECRET_KEY": "bench",
            "SCHEDULER_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        auth.create_user(None, "bench", PASSWORD, "admin")
        bench.fill(args.count)
        add_lineage_and_history()
        ids = [r[0] for r in db.session.execute(db.select(Order.id).order_by(Order.id))]
        with_successor = db.session.execute(
            db.select(Order.parent_id).where(Order.parent_id.is_not(None)).limit(1)
        ).scalar()
        db.session.remove()

    client = app.test_client()
    assert (
        client.post("/login", data={"username": "bench", "password": PASSWORD}).status_code == 302
    )
    # At 100,000 orders: from the 5,000th and from the 10,000th (smaller counts scale down).
    few, many = ids[len(ids) // 20 :][:25], ids[len(ids) // 10 :][:1000]
    scenarios = [
        ("order page (has a renewal)", "GET", f"/entrust/{with_successor}", {}),
        ("order page (none)", "GET", f"/entrust/{ids[777]}", {}),
        (
            "Update Certificate Status, 25",
            "GET",
            "/entrust/status",
            {"query_string": {"order": few}},
        ),
        ("Update Certificate Status, 1,000", "POST", "/entrust/status", {"data": {"order": many}}),
        ("Revoke Certificate, 25", "GET", "/entrust/revoke", {"query_string": {"order": few}}),
        ("Revoke Certificate, 1,000", "POST", "/entrust/revoke", {"data": {"order": many}}),
        ("Delete confirmation, 1,000", "POST", "/entrust/delete", {"data": {"order": many}}),
    ]
    print(f"{'page':<36} {'p50':>8} {'p95':>8}")
    worst_few = 0.0
    for label, method, url, kwargs in scenarios:
        times = timed(client, method, url, args.repeat, **kwargs)
        p95 = bench.pct(times, 95)
        if "1,000" not in label:
            worst_few = max(worst_few, p95)
        print(f"{label:<36} {statistics.median(times):6.1f}ms {p95:6.1f}ms")
    print(
        f"worst p95 of the pages for one or 25 orders {worst_few:.1f} ms; target < 100 ms: "
        f"{'PASS' if worst_few < 100 else 'FAIL'}"
    )

    parents = ids[0::100][: args.delete]
    # Delete B orders at once (selected with "select all matching"), none of them a parent above.
    taken = set(ids[0::100])
    bulk = [i for i in ids[len(ids) // 2 :] if i not in taken][: args.bulk]
    form = {"order": bulk, "step": "delete", "confirm": "1", "confirm_unsettled": "1"}
    profiler = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    r = client.post("/entrust/delete", data=form)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - t0
    assert r.status_code == 303, r.status_code
    with app.app_context():
        left = db.session.execute(
            db.select(db.func.count()).select_from(Order).where(Order.id.in_(bulk))
        ).scalar()
        db.session.remove()
    assert left == 0, left
    print(
        f"delete {len(bulk):,} selected orders at once: {elapsed * 1000:,.0f} ms; "
        f"target < 3,000 ms: {'PASS' if elapsed < 3 else 'FAIL'}"
    )
    if profiler:
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"webapp", 30)

    # Delete D orders whose successors must be unlinked, with and without the parent index.
    half = len(parents) // 2
    for label, chunk, drop in (
        ("with ix_ca_order_parent", parents[:half], False),
        ("without it", parents[half:], True),
    ):
        with app.app_context():
            if drop:
                db.session.execute(db.text("DROP INDEX ix_ca_order_parent"))
                db.session.commit()
            # A different statement each time (a prepared one may outlive the dropped index).
            sql = "EXPLAIN QUERY PLAN SELECT " + ("2" if drop else "1")
            sql += " FROM ca_order WHERE parent_id = :p"
            plan = db.session.execute(db.text(sql), {"p": chunk[0]}).all()
            db.session.remove()
        t0 = time.perf_counter()
        r = client.post("/entrust/delete", data={"order": chunk, "step": "delete", "confirm": "1"})
        elapsed = time.perf_counter() - t0
        assert r.status_code == 303, r.status_code
        print(
            f"delete {len(chunk):,} orders {label}: {elapsed * 1000:,.0f} ms "
            f"(foreign key lookup: {'; '.join(row[-1] for row in plan)})"
        )


if __name__ == "__main__":
    main()
