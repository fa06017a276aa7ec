"""Benchmark: Delete of a credential whose account holds some 190,000 catalog rows.

Usage: .venv/bin/python bench/credential_delete.py [--count N] [--repeat R] [--profile FILE]
       [--keep DIR]

Fills a fresh migrated SQLite database as the scaling benchmark does (``tests.populate.fill(N)``,
default 100,000: N rows of every list, among them N organizations and N domains of which 19 in 20
belong to credential "Main account", one in 50 of them gone already, and N orders). So "Main
account" holds about 190,000 catalog rows (188,020 not gone), and 90,000 orders. Then it times
``credentials.delete(..., confirmed=True)`` (the service behind Delete on SSL > Entrust > Manage):
one transaction that marks the credential's catalog rows gone, counts its orders and audits it,
while it holds SQLite's write lock. Each of the R runs starts from a copy of the filled database.
It prints the time of each run and the median (target: < 3 s; every other writer waits up to
``extensions.BUSY_TIMEOUT_MS``, 10 s, for the lock). With --profile, the last run's cProfile
statistics go to FILE and the functions that took most of it are printed. With --keep, the
filled database is kept in DIR and reused by the next run given the same DIR.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.populate import fill  # noqa: E402  (after the path is set)

TARGET_S = 3.0


def _app(instance: Path):
    from webapp import create_app

    return create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'certdesk.db'}",
            "SECRET_KEY": "bench",
            "SCHEDULER_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )


def _fill(instance: Path, count: int) -> None:
    from flask_migrate import upgrade

    from webapp import _init_secretbox, paths
    from webapp.extensions import db

    app = _app(instance)
    t0 = time.perf_counter()
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        fill(count, quiet=True)
        db.session.commit()
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.remove()
        db.engine.dispose()
    print(f"filled {count:,} rows of every list in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--keep", metavar="DIR", type=Path)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from webapp import _init_secretbox
    from webapp.auth.models import User
    from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
    from webapp.credentials import service as credentials
    from webapp.extensions import db

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the databases go with the run
    filled = args.keep or tmp / "filled"
    if (filled / "certdesk.db").exists():
        print(f"reusing the database filled in {filled}")
    else:
        filled.mkdir(parents=True, exist_ok=True)
        _fill(filled, args.count)

    times = []
    for run in range(args.repeat):
        instance = tmp / f"run{run}"
        shutil.copytree(filled, instance)
        app = _app(instance)
        with app.app_context():
            _init_secretbox(app)
            actor = db.session.execute(select(User).where(User.username == "bench")).scalar_one()
            cred = credentials.get(1)
            live = sum(
                db.session.execute(
                    select(func.count())
                    .select_from(model)
                    .where(model.credential_id == 1, model.gone_at.is_(None))
                ).scalar_one()
                for model in (CatalogOrganization, CatalogDomain, CatalogProduct)
            )
            profiler = cProfile.Profile() if args.profile and run == args.repeat - 1 else None
            start = time.perf_counter()
            if profiler:
                profiler.enable()
            detail = credentials.delete(actor, cred, confirmed=True)
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - start
            assert detail["catalog_rows_marked_gone"] == live, (detail, live)
            times.append(elapsed)
            print(f"run {run + 1}: {elapsed * 1000:,.0f} ms {detail}")
            db.session.remove()
            db.engine.dispose()
        shutil.rmtree(instance, ignore_errors=True)
    median = statistics.median(times)
    print(
        f"delete a credential with {live:,} catalog rows: median {median * 1000:,.0f} ms; "
        f"target < {TARGET_S * 1000:,.0f} ms: {'PASS' if median < TARGET_S else 'FAIL'}"
    )
    if args.profile:
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
