"""Catalog tabs at scale: sync 20,000 domains from the sandbox, then time the Domains tab queries
(search, filter, sort, deep paging) as the page runs them, and what the Order Certificate form
reads of such an account (its choices, a search of them, the domains of an order's names).
Prints figures; never fails a build."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOMAINS = 20000


def main() -> None:
    from flask_migrate import upgrade

    from entrust_sandbox.testing import SandboxServer
    from webapp import _init_secretbox, create_app, paths
    from webapp.auth import service as auth
    from webapp.catalog import service as catalog
    from webapp.credentials import service as credentials
    from webapp.extensions import db
    from webapp.jobs import service as jobs
    from webapp.orders import checks
    from webapp.paging import paginate

    with tempfile.TemporaryDirectory() as tmp, SandboxServer() as sb:
        sb.seed(certificates=10, seed=1)
        store = sb.sandbox.store
        with store.tx() as conn:  # a large account: DOMAINS extra domains over three clients
            conn.executemany(
                "INSERT INTO domains (client_id, domain_name, verification_method, "
                "verification_status, ov_eligible, ev_eligible) VALUES (?, ?, 'DNS', ?, 1, 0)",
                [
                    (1 + i % 3, f"host{i:05d}.bench.example", ("APPROVED", "EXPIRED")[i % 7 == 0])
                    for i in range(DOMAINS)
                ],
            )
        app = create_app(
            {
                "INSTANCE_PATH": tmp,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/certdesk.db",
                "SECRET_KEY": "bench",
                "SCHEDULER_ENABLED": False,
                "JOBS_RUN_INLINE": True,
            }
        )
        with app.app_context():
            upgrade(directory=str(paths.MIGRATIONS_DIR))
            _init_secretbox(app)
            admin = auth.create_user(None, "admin", "bench password 1", "admin")
            data = credentials.CredentialInput(
                name="Bench", api_user=sb.api_user, api_key=sb.api_key, base_url=sb.base_url
            )
            start = time.perf_counter()
            cred, job = credentials.create(admin, data)
            elapsed = time.perf_counter() - start
            assert job.state == "succeeded", job.error
            print(f"first full sync of {DOMAINS:,}+ domains: {elapsed:.2f} s {jobs.result_of(job)}")
            start = time.perf_counter()
            job = catalog.start_sync(admin, [cred.id], ["domains"])
            elapsed = time.perf_counter() - start
            print(f"re-sync, nothing changed: {elapsed:.2f} s {jobs.result_of(job)}")

            cases = {
                "first page, by name": catalog.TabFilter(),
                "sorted by OV expiry desc": catalog.TabFilter(sort="ov_expiry", direction="desc"),
                "status APPROVED": catalog.TabFilter(status="APPROVED"),
                "expired": catalog.TabFilter(status="expired"),
                "search 'host1234'": catalog.TabFilter(q="host1234"),
                "credential + sort client": catalog.TabFilter(credential_id=cred.id, sort="client"),
            }
            for label, f in cases.items():
                for page in (1, 200):
                    times = []
                    for _ in range(5):
                        t = time.perf_counter()
                        paginate(catalog.domains_query(f), page, 50)
                        times.append((time.perf_counter() - t) * 1000)
                    median = statistics.median(times)
                    print(f"  {label:28s} page {page:3d}: median {median:6.1f} ms")

            names = [f"www.host{i:05d}.bench.example" for i in range(0, DOMAINS, DOMAINS // 100)]
            form = {
                "order form choices": lambda: checks.choices(cred.id, with_custom=False),
                "order form domain search": lambda: checks.choices(
                    cred.id, with_custom=False, domain_search="host1234"
                ),
                f"domains of {len(names)} names": lambda: catalog.covering_domains(cred.id, names),
            }
            for label, call in form.items():
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t) * 1000)
                print(f"  {label:28s}         : median {statistics.median(times):6.1f} ms")
            db.session.remove()


if __name__ == "__main__":
    main()
