"""Benchmark: SSL > Certificates list and the dashboard at 100,000 certificates.

Usage: .venv/bin/python bench/certificates_list.py [--count N] [--repeat R] [--clients C]

Fills a fresh migrated SQLite database with N certificate rows (inserted directly, with their
names), then, through the Flask test client with C concurrent clients (threads), times each
scenario R times per client: the full page and the htmx fragment of the repository list (first
page, a SAN search, filters, sorts, a deep page) and the dashboard. In the same run it times the
bare SQL for the same list page (the COUNT and the LIMIT/OFFSET select, no rendering) and prints
p50/p95/p99 and the ratio of p95s. Targets: p95 < 100 ms and < 3x the bare query (a page whose
p95 is under 20 ms passes whatever the ratio: rendering 50 rows costs a few ms on its own).

--keep DIR fills DIR once and reuses it. All clients share one process (one GIL): with more
clients than cores the figures measure CPU queueing as much as the page; run --clients 1 too.
"""

from __future__ import annotations

import argparse
import atexit
import random
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HTMX = {"HX-Request": "true"}
PASSWORD = "bench-password-1"
ISSUERS = [
    "Entrust Certification Authority - L1K",
    "Entrust OV TLS Issuing RSA CA 1",
    "Entrust DV TLS Issuing RSA CA 1",
    "Internal Issuing CA",
    "Let's Encrypt R11",
]
SOURCES = ["imported", "entrust", "entrust_import"]


def fill(count: int) -> None:
    """Insert ``count`` certificates and their names with executemany (a few seconds)."""
    from sqlalchemy import insert

    from webapp.certificates.models import Certificate, CertificateName
    from webapp.extensions import db
    from webapp.keys.models import PrivateKey

    rng = random.Random(5)
    now = datetime.now(UTC)
    batch, names = [], []
    started = time.perf_counter()
    # Every 20th certificate has a key (a placeholder: the list never opens it).
    keys = [
        {
            "id": k,
            "key_type": "RSA",
            "key_size": 2048,
            "label": "RSA 2048",
            "public_key_id": f"{k:064x}",
            "sealed_pem": "v1:bench-placeholder",
            "origin": "imported",
            "created_at": now,
        }
        for k in range(1, count // 20 + 1)
    ]
    db.session.execute(insert(PrivateKey), keys)
    for i in range(1, count + 1):
        host = f"host{i}.dept{i % 97}.example{i % 13}.com"
        not_after = now + timedelta(days=rng.randint(-200, 500), seconds=rng.randint(0, 86400))
        sans = [host, f"www.{host}"]
        batch.append(
            {
                "id": i,
                "fingerprint_sha256": f"{rng.getrandbits(256):064x}",
                "fingerprint_sha1": f"{rng.getrandbits(160):040x}",
                "serial_hex": f"{rng.getrandbits(128):x}",
                "common_name": host,
                "subject": f"CN={host},O=Example",
                "sans": ",".join(sans),
                "issuer": "CN=" + ISSUERS[i % len(ISSUERS)],
                "issuer_cn": ISSUERS[i % len(ISSUERS)],
                "not_before": not_after - timedelta(days=365),
                "not_after": not_after,
                "key_type": "RSA",
                "key_size": 2048,
                "key_label": "RSA 2048",
                "signature_algorithm": "sha256WithRSAEncryption",
                "public_key_id": f"{rng.getrandbits(256):064x}",
                "is_ca": False,
                "source": SOURCES[i % 3],
                "pem": "-----BEGIN CERTIFICATE-----\n(bench)\n-----END CERTIFICATE-----\n",
                "chain_pem": "",
                "revoked_at": now if i % 500 == 0 else None,
                "private_key_id": i // 20 if i % 20 == 0 else None,
                "csr_id": None,
                "created_by_id": None,
                "created_at": now - timedelta(seconds=i),
            }
        )
        for kind, v in [("DNS", s) for s in sans]:
            names.append({"certificate_id": i, "kind": kind, "value": v, "reversed": v[::-1]})
        if len(batch) == 5000:
            db.session.execute(insert(Certificate), batch)
            db.session.execute(insert(CertificateName), names)
            batch, names = [], []
    if batch:
        db.session.execute(insert(Certificate), batch)
        db.session.execute(insert(CertificateName), names)
    db.session.commit()
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    print(f"filled {count:,} certificates in {time.perf_counter() - started:.1f} s")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run_concurrent(clients: int, repeat: int, call) -> list[float]:
    """Run ``call()`` repeat times in each of ``clients`` threads; per-call ms."""
    times: list[float] = []
    lock = threading.Lock()

    def worker(n):
        mine = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call(n)
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keep", help="instance folder to fill once and reuse across runs")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from werkzeug.datastructures import MultiDict

    from webapp import _init_secretbox, create_app, paths
    from webapp.auth import service as auth
    from webapp.certificates import service
    from webapp.dashboard import service as dashboard
    from webapp.extensions import db

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    if not args.keep:  # a 100,000-row database is tens of MB: gone when the run ends
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    fresh = not (tmp / "certdesk.db").exists()
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'certdesk.db'}",
            "SECRET_KEY": "bench",
            "SCHEDULER_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        if fresh:
            upgrade(directory=str(paths.MIGRATIONS_DIR))
            _init_secretbox(app)
            auth.create_user(None, "bench", PASSWORD, "admin")
            fill(args.count)
        db.session.remove()

    def client():
        c = app.test_client()
        r = c.post("/login", data={"username": "bench", "password": PASSWORD})
        assert r.status_code == 302, r.status_code
        return c

    pool = [client() for _ in range(args.clients)]  # signed in before any timing

    def get(n, url, headers=None):
        r = pool[n].get(url, headers=headers or {})
        assert r.status_code == 200, (url, r.status_code)

    scenarios = [
        ("first page (not_after asc)", ""),
        ("sort by CN desc", "sort=cn&dir=desc"),
        ("sort by issuer", "sort=issuer"),
        ("sort by source desc", "sort=source&dir=desc"),
        ("search SAN prefix", "q=www.host4242"),
        ("search domain suffix", "q=dept5.example5.com"),
        ("search serial/fingerprint", "q=0123456789abcdef"),
        ("filter expiring 30d", "expiry=30"),
        ("filter expired + source", "expiry=expired&source=entrust"),
        ("filter issuer + has key no", "issuer=Internal+Issuing+CA&has_key=no"),
        ("filter source + 90d + has key", "source=entrust&expiry=90&has_key=yes"),
        ("deep page (page 1500)", "page=1500"),
    ]
    print(
        f"\n{args.count:,} certificates, {args.clients} concurrent clients, "
        f"{args.repeat} calls each (ms)"
    )
    head = f"{'scenario':<32}{'kind':<10}{'p50':>8}{'p95':>8}{'p99':>8}{'bare p95':>10}{'x':>6}"
    print(head)
    print("-" * len(head))
    failures = 0

    def report(label, kind, times, bare_p95=None):
        nonlocal failures
        p95 = pct(times, 95)
        ratio = p95 / bare_p95 if bare_p95 else None
        ok = p95 < 100 and (ratio is None or ratio < 3 or p95 < 20)
        failures += not ok
        bare = f"{bare_p95:10.1f}{ratio:6.1f}" if bare_p95 else " " * 16
        print(
            f"{label:<32}{kind:<10}{statistics.median(times):8.1f}{p95:8.1f}"
            f"{pct(times, 99):8.1f}{bare}  {'ok' if ok else 'OVER TARGET'}"
        )

    for label, qs in scenarios:
        url = "/certificates/?" + qs

        def bare(_n, qs=qs):
            with app.test_request_context("/certificates/?" + qs):
                from flask import request

                request.args = MultiDict(request.args)
                from webapp.certificates.views import _filter

                page = int(request.args.get("page", 1))
                service.page_of(_filter(), page, 50)
                db.session.remove()

        get(0, url)  # warm up
        bare_times = run_concurrent(args.clients, args.repeat, bare)
        bare_p95 = pct(bare_times, 95)
        report(
            label,
            "page",
            run_concurrent(args.clients, args.repeat, lambda n, u=url: get(n, u)),
            bare_p95,
        )
        report(
            label,
            "fragment",
            run_concurrent(args.clients, args.repeat, lambda n, u=url: get(n, u, HTMX)),
            bare_p95,
        )

    def bare_dashboard(_n):
        with app.app_context():
            now = datetime.now(UTC)
            dashboard.state_counts(now)
            dashboard.expiry_timeline(now)
            dashboard.urgent(10, now)
            dashboard.recent_activity(10)
            db.session.remove()

    get(0, "/")
    dash_bare = pct(run_concurrent(args.clients, args.repeat, bare_dashboard), 95)
    report(
        "dashboard",
        "page",
        run_concurrent(args.clients, args.repeat, lambda n: get(n, "/")),
        dash_bare,
    )
    print(
        "\nserver time = Flask test client call (routing, auth, query, render) in-process; "
        "bare = the same COUNT, id page and row SELECT (dashboard: its queries), no rendering."
    )
    print("all within target" if not failures else f"{failures} scenario(s) over target")


if __name__ == "__main__":
    main()
