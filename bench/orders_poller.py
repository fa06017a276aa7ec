"""Benchmark: the order-status poller's Entrust calls per cycle.

Usage: .venv/bin/python bench/orders_poller.py [--pending 1000] [--approved 50]
                                               [--latency-ms 20] [--json FILE]

The sandbox (over HTTP on loopback, ``--latency-ms`` on every call) holds ``--pending`` orders
queued for approval. CertDesk imports them (none has a certificate yet); then an Entrust
administrator approves ``--approved`` of them without their being issued yet (status APPROVED:
ECS's list leaves those out), and the poller runs cycles with every order due:

1. the first cycle (CertDesk last saw every order PENDING: the APPROVED ones are read one by one);
2. an unchanged cycle (CertDesk knows which are APPROVED: their absence from the list says it);
3. a cycle in which 10 orders were issued meanwhile (their certificates are fetched).

For comparison, in the same run: the connector's status read without what CertDesk last saw (every
order missing from the list read one by one), and a naive poller that reads every order's detail.
Target: under 15 calls per cycle for 1,000 unchanged pending orders.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

PASSWORD = "bench-password-1"


def _csr(common_name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _calls(sb) -> tuple[int, int]:
    """(list calls, one-order reads) in the sandbox's request log."""
    paths = [r["path"].rstrip("/") for r in sb.requests() if r["method"] == "GET"]
    lists = sum(1 for p in paths if p.endswith("/certificates"))
    return lists, len(paths) - lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--approved", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from entrust_sandbox.testing import SandboxServer
    from webapp import _init_secretbox, create_app, paths
    from webapp.auth import service as auth
    from webapp.cas import registry
    from webapp.credentials import clients
    from webapp.credentials import service as credentials
    from webapp.dbtypes import utcnow
    from webapp.ecs import EcsClient, types
    from webapp.extensions import db
    from webapp.orders import importing, polling
    from webapp.settings import service as settings

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-poller-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the database goes with the run
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'certdesk.db'}",
            "SECRET_KEY": "bench",
            "SCHEDULER_ENABLED": False,
            "JOBS_RUN_INLINE": True,
            "LOG_LEVEL": "WARNING",
        }
    )
    report = {"pending": args.pending, "approved": args.approved, "latency_ms": args.latency_ms}
    with SandboxServer() as sb, app.app_context():
        sb.seed(certificates=0, seed=1)
        csr = _csr("queue.example.net")
        started = time.perf_counter()
        with EcsClient(sb.base_url, sb.api_user, sb.api_key) as ecs:
            ids = [
                ecs.new_certificate(
                    types.NewCertificateRequest(
                        cert_type="PRIVATE_SSL", csr=csr, queue_for_approval=True
                    )
                ).tracking_id
                for _ in range(args.pending)
            ]
        print(f"{args.pending} queued orders made in {time.perf_counter() - started:.1f} s")

        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        admin = auth.create_user(None, "bench", PASSWORD, "admin")
        settings.put(clients.REQUESTS_PER_MINUTE, 6000)
        db.session.commit()
        cred, _ = credentials.create(
            admin,
            credentials.CredentialInput(
                name="Bench", api_user=sb.api_user, api_key=sb.api_key, base_url=sb.base_url
            ),
            start_sync=False,
        )
        job = importing.start_import(admin, cred.id, [])
        assert job.state == "succeeded", job.error
        # Since the import (which saw every order PENDING), some were approved at Entrust.
        for tid in ids[: args.approved]:
            sb.set_certificate_status(tid, "APPROVED")
        followed = len(polling.due(utcnow() + timedelta(days=1)))
        sb.faults([{"kind": "latency", "ms": args.latency_ms}])

        def cycle(name: str, now) -> None:
            sb.clear_requests()
            t0 = time.perf_counter()
            result = polling.poll(now=now)
            seconds = time.perf_counter() - t0
            lists, reads = _calls(sb)
            report[name] = {
                "checked": result.counts["checked"],
                "changed": result.counts["changed"],
                "certificates": result.counts["certificates"],
                "list_calls": lists,
                "one_order_reads": reads,
                "calls": lists + reads,
                "seconds": round(seconds, 2),
            }
            r = report[name]
            print(
                f"{name}: {r['checked']} orders checked, {r['changed']} changed, "
                f"{r['certificates']} certificates; {r['calls']} calls ({lists} lists, "
                f"{reads} one-order reads) in {r['seconds']} s"
            )

        now = utcnow()
        cycle("first_cycle", now + timedelta(days=1))
        cycle("unchanged_cycle", now + timedelta(days=3))
        issued = ids[args.approved : args.approved + 10]
        sb.clear_faults()
        for tid in issued:
            sb.set_certificate_status(tid, "ACTIVE")
        sb.faults([{"kind": "latency", "ms": args.latency_ms}])
        cycle("ten_issued_cycle", now + timedelta(days=5))

        # The same orders read without what CertDesk last saw, and one by one.
        remaining = [str(t) for t in ids if t not in issued]
        with registry.open_connector("entrust", cred.id) as conn:
            sb.clear_requests()
            t0 = time.perf_counter()
            conn.statuses(remaining)
            lists, reads = _calls(sb)
            report["without_last_seen"] = {
                "calls": lists + reads,
                "seconds": round(time.perf_counter() - t0, 2),
            }
            sb.clear_requests()
            t0 = time.perf_counter()
            for tid in remaining:
                conn.fetch(tid)
            report["naive_one_by_one"] = {
                "calls": len(sb.requests()),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        sb.clear_faults()
        unchanged = report["unchanged_cycle"]["calls"]
        print(
            f"without what was last seen: {report['without_last_seen']['calls']} calls in "
            f"{report['without_last_seen']['seconds']} s; naive, every order's detail: "
            f"{report['naive_one_by_one']['calls']} calls in "
            f"{report['naive_one_by_one']['seconds']} s"
        )
        print(
            f"{followed} orders followed; target under 15 calls per unchanged cycle for 1,000 "
            f"pending orders: {unchanged} calls "
            f"{'PASS' if unchanged < 15 else 'FAIL'}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
