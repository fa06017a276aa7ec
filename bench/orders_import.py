"""Benchmark: Import Existing Orders against the sandbox, with latency on every Entrust call.

Usage: .venv/bin/python bench/orders_import.py [--sizes 10000,50000] [--latency-ms 20]
                                               [--naive-sample 500] [--cert-sample 800]
                                               [--full] [--concurrency 8] [--json FILE]

For each size N the sandbox (in this process, over HTTP on loopback) is seeded with N existing
orders and answers every API call after ``--latency-ms``. CertDesk's importer runs in a child
process (its own SQLite database, migrated), so that its peak memory is its own:

- the metadata import (phase 1: the list, 1,000 per page, upserted page by page, no exclusions):
  wall time, list calls (from the sandbox's request log), rows per second, the child's resident
  memory (``_held_mb``) after the first and the last page and its peak (VmHWM; the peak of the
  whole child is set by hashing the bench user's password, before the import), and, in a second
  child run, tracemalloc's peak of Python allocations during the import (tracemalloc slows the
  run, so its time is not reported);
- the certificate phase (phase 2) on the first ``--cert-sample`` issued orders, at the default
  concurrency of 8 and the highest request budget Settings allow (6,000/min), extrapolated to
  every issued order of the account (and at the default budget of 120/min);
- in the same run, a naive importer that reads each order's details one by one (the list, then
  GET /certificates/{id} for each order), timed on ``--naive-sample`` orders and extrapolated to N.

--full: instead of the sample, the whole import runs as the job runs it (the list, then the
certificate of every issued order), with the request budget lifted (no client-side limit) and
``--concurrency`` downloads at once (the setting; 8 by default). It prints the wall time of each
phase, the Entrust calls (counted in the importer's process), rows per second, the importer's
resident memory (``_held_mb``, sampled after every page and batch) and the certificate phase
against its floor (detail calls x latency / concurrency), and the naive importer's extrapolated
time against it.

Targets: metadata import of 50,000 orders in at most 55 list calls and under 20 s; with --full,
the whole import at least 10x faster than the naive one and its certificate phase within 1.3x
of its floor.
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

PASSWORD = "bench-password-1"


def _status_mb(field: str = "VmRSS") -> float:
    """From /proc/self/status (Linux), in MB: VmRSS, resident now; VmHWM, the peak since the
    process started (ru_maxrss is no use here: it keeps the parent's size across the exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _held_mb() -> float:
    """The importer's own resident memory (RssAnon): what it holds, without the database file's
    pages that SQLite reads through a memory map (RssFile), which the kernel counts in RSS as
    they are touched and can take back at will; with the map, total RSS grows with the file."""
    return _status_mb("RssAnon")


def _count_calls():
    """Count every HTTP call the ECS client sends in this process: {"list": n, "other": n}."""
    import threading

    from webapp.ecs.client import EcsClient

    counts = {"list": 0, "other": 0}
    lock = threading.Lock()
    real = EcsClient._send_once

    def send_once(self, method, path, *a, **k):
        kind = "list" if method == "GET" and path.rstrip("/").endswith("certificates") else "other"
        with lock:
            counts[kind] += 1
        return real(self, method, path, *a, **k)

    EcsClient._send_once = send_once
    return counts


def _full(app, admin, cred, concurrency: int) -> dict:
    """The whole import as the job runs it; each phase timed, the calls counted, RSS sampled."""
    from webapp.credentials import clients
    from webapp.jobs import service as jobs
    from webapp.orders import importing

    clients.CLIENT_OPTIONS["rate_budget"] = None  # the request budget lifted for the run
    calls = _count_calls()
    rss, marks = [], {}
    real_upsert, real_count = importing.upsert_page, importing._with_certificate_count
    real_await = importing._await

    def upsert_and_measure(*a, **k):
        counts = real_upsert(*a, **k)
        rss.append(_held_mb())
        return counts

    def count_and_mark(*a, **k):  # called once, as the list phase ends
        marks["metadata"] = time.perf_counter()
        marks["list_calls"] = calls["list"]
        return real_count(*a, **k)

    def await_and_measure(*a, **k):  # the job thread waiting for a batch's downloads
        t0 = time.perf_counter()
        fetched = real_await(*a, **k)
        marks["fetching"] = marks.get("fetching", 0.0) + time.perf_counter() - t0
        rss.append(_held_mb())
        return fetched

    importing.upsert_page = upsert_and_measure
    importing._with_certificate_count = count_and_mark
    importing._await = await_and_measure
    started = time.perf_counter()
    job = importing.start_import(admin, cred.id, [])
    ended = time.perf_counter()
    assert job.state == "succeeded", job.error
    result = jobs.result_of(jobs.get(job.id))
    return {
        "seconds": ended - started,
        "metadata_seconds": marks["metadata"] - started,
        "cert_seconds": ended - marks["metadata"],
        "fetch_seconds": marks.get("fetching", 0.0),
        "rows": result["new"] + result["skipped"] + result["failed"],
        "new": result["new"],
        "certificates": result["certificates"],
        "failed": result["failed"],
        "list_calls": marks["list_calls"],
        "detail_calls": calls["other"],
        "calls": calls["list"] + calls["other"],
        "concurrency": concurrency,
        "rss_max_during_import_mb": max(rss) if rss else None,
        "rss_first_page_mb": rss[0] if rss else None,
        "peak_rss_mb": _status_mb("VmHWM"),
    }


def _child(
    base_url: str, api_user: str, api_key: str, mode: str, sample: int, out, concurrency: int = 8
) -> None:
    """Run in a fresh process: a migrated database, a credential, then one measurement."""
    import tracemalloc

    from flask_migrate import upgrade

    from webapp import _init_secretbox, create_app, paths
    from webapp.auth import service as auth
    from webapp.credentials import clients
    from webapp.credentials import service as credentials
    from webapp.extensions import db
    from webapp.jobs import service as jobs
    from webapp.orders import importing
    from webapp.settings import service as settings

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-import-"))
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
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        admin = auth.create_user(None, "bench", PASSWORD, "admin")
        settings.put(clients.REQUESTS_PER_MINUTE, 6000)
        settings.put(importing.service.IMPORT_CONCURRENCY, concurrency)
        db.session.commit()
        cred, _ = credentials.create(
            admin,
            credentials.CredentialInput(
                name="Bench", api_user=api_user, api_key=api_key, base_url=base_url
            ),
            start_sync=False,
        )
        if mode == "full":
            out.put(_full(app, admin, cred, concurrency))
            return
        # Phase 1 alone: the certificate phase finds nothing to do.
        real_batch = importing._certificate_batch
        importing._certificate_batch = lambda *a, **k: []
        # The process's resident memory after each page.
        rss = []
        real_upsert = importing.upsert_page

        def upsert_and_measure(*a, **k):
            counts = real_upsert(*a, **k)
            rss.append(_held_mb())
            return counts

        importing.upsert_page = upsert_and_measure
        if mode == "memory":
            tracemalloc.start()
        started = time.perf_counter()
        job = importing.start_import(admin, cred.id, [])
        elapsed = time.perf_counter() - started
        peak_py = tracemalloc.get_traced_memory()[1] if mode == "memory" else None
        tracemalloc.stop()
        result = jobs.result_of(jobs.get(job.id))
        assert job.state == "succeeded", job.error
        figures = {
            "seconds": elapsed,
            "rows": result["new"] + result["skipped"] + result["failed"],
            "new": result["new"],
            "peak_rss_mb": _status_mb("VmHWM"),
            "rss_first_page_mb": rss[0] if rss else None,
            "rss_last_page_mb": rss[-1] if rss else None,
            "rss_max_during_import_mb": max(rss) if rss else None,
            "peak_python_mb": None if peak_py is None else peak_py / 2**20,
        }
        if mode == "time" and sample:
            # Phase 2 on a sample of the issued orders, with the importer's own functions.
            from sqlalchemy import func, select

            from webapp.orders.models import Order

            importing._certificate_batch = real_batch
            issued = db.session.execute(
                select(func.count()).where(Order.phase.in_(("issued", "suspended")))
            ).scalar_one()
            items = real_batch(cred.id, ("issued", ""), 0)
            todo = list(items)
            while len(todo) < sample and items:
                items = real_batch(cred.id, ("issued", ""), items[-1][0])
                todo += items
            todo = todo[:sample]
            concurrency = int(settings.get(importing.service.IMPORT_CONCURRENCY))
            t0 = time.perf_counter()
            fetched = _fetch(importing, cred.id, todo, concurrency)
            rows = {
                r.id: r
                for r in db.session.execute(
                    select(Order).where(Order.id.in_([t[0] for t in todo]))
                ).scalars()
            }
            added = 0
            for order_id, ca in fetched.items():
                ok, _problem = importing.records.store_certificate(
                    rows[order_id], ca, actor="bench", source="entrust_import"
                )
                added += ok
            db.session.commit()
            figures.update(
                cert_sample=len(todo),
                cert_added=added,
                cert_seconds=time.perf_counter() - t0,
                issued=issued,
            )
    out.put(figures)


def _fetch(importing, credential_id: int, items: list, concurrency: int) -> dict:
    """{order id: CaOrder or CaError} for ``items``, fetched as the import's certificate phase
    fetches a batch: by its ``concurrency`` threads, each with a connector of its own."""
    from flask import current_app

    fetchers = importing._Fetchers(current_app._get_current_object(), credential_id, concurrency)
    try:
        batch = fetchers.submit(importing._Batch(0, items, items))
        batch.done.wait()
    finally:
        fetchers.close()
    return batch.results


def _run_child(sb, mode: str, sample: int = 0, concurrency: int = 8) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(
        target=_child,
        args=(sb.base_url, sb.api_user, sb.api_key, mode, sample, out, concurrency),
    )
    p.start()
    figures = out.get(timeout=3600)
    p.join(60)
    return figures


def _naive(sb, sample: int) -> dict:
    """The list's first page, then each order's details one by one, as a naive importer would."""
    from webapp.ecs import EcsClient

    with EcsClient(sb.base_url, sb.api_user, sb.api_key, read_timeout=60) as client:
        sb.clear_requests()
        started = time.perf_counter()
        ids = []
        offset = 0
        while len(ids) < sample:
            page, _total = client.certificates_page(offset, 1000)
            if not page:
                break
            ids += [c.tracking_id for c in page if c.tracking_id]
            offset += len(page)
        for tid in ids[:sample]:
            client.get_certificate(tid)
        seconds = time.perf_counter() - started
    return {"sample": min(sample, len(ids)), "seconds": seconds, "calls": len(sb.requests())}


def _list_calls(sb) -> int:
    return sum(
        1
        for r in sb.requests()
        if r["method"] == "GET" and r["path"].rstrip("/").endswith("/certificates")
    )


def _full_report(sb, n: int, seeded: dict, args) -> dict:
    """The whole import and the naive importer's sample, side by side."""
    full = _run_child(sb, "full", concurrency=args.concurrency)
    naive = _naive(sb, args.naive_sample)
    per_order = naive["seconds"] / max(1, naive["sample"])
    naive_all = per_order * n
    floor = full["detail_calls"] * args.latency_ms / 1000 / args.concurrency
    row = {
        "orders": n,
        "seed_seconds": seeded["seconds"],
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "wall_seconds": round(full["seconds"], 2),
        "metadata_seconds": round(full["metadata_seconds"], 2),
        "certificates_seconds": round(full["cert_seconds"], 2),
        "certificates_fetching_seconds": round(full["fetch_seconds"], 2),
        "certificates_floor_seconds": round(floor, 2),
        "certificates_ratio_to_floor": round(full["cert_seconds"] / floor, 2) if floor else None,
        "api_calls": full["calls"],
        "list_calls": full["list_calls"],
        "detail_calls": full["detail_calls"],
        "orders_imported": full["new"],
        "certificates_added": full["certificates"],
        "failed": full["failed"],
        "rows_per_second": round(full["rows"] / full["seconds"]),
        "metadata_rows_per_second": round(full["rows"] / full["metadata_seconds"]),
        "rss_max_during_import_mb": round(full["rss_max_during_import_mb"], 1),
        "rss_after_first_page_mb": round(full["rss_first_page_mb"], 1),
        "peak_rss_mb": round(full["peak_rss_mb"], 1),
        "naive_sample": naive["sample"],
        "naive_sample_seconds": round(naive["seconds"], 2),
        "naive_calls_for_all": -(-n // 1000) + n,
        "naive_seconds_for_all_extrapolated": round(naive_all, 1),
        "speedup_over_naive": round(naive_all / full["seconds"], 1),
    }
    print(f"\n== {n:,} orders, {args.latency_ms} ms per call, the whole import")
    print(
        f"import: {row['wall_seconds']} s, {row['api_calls']:,} calls "
        f"({row['list_calls']} lists, {row['detail_calls']:,} certificate reads), "
        f"{row['rows_per_second']:,} orders/s, {row['orders_imported']:,} orders and "
        f"{row['certificates_added']:,} certificates; importer memory at most "
        f"{row['rss_max_during_import_mb']} MB during the import (resident, the database's "
        "mapped pages left out)"
    )
    print(
        f"  metadata phase {row['metadata_seconds']} s "
        f"({row['metadata_rows_per_second']:,} orders/s); certificate phase "
        f"{row['certificates_seconds']} s against a floor of {row['certificates_floor_seconds']} s "
        f"({row['detail_calls']:,} x {args.latency_ms} ms / {args.concurrency}): "
        f"{row['certificates_ratio_to_floor']}x; of it {row['certificates_fetching_seconds']} s "
        f"waiting for the downloads, the rest storing them (while the next batch downloads)"
    )
    print(
        f"naive (details one by one): {naive['sample']} orders in {row['naive_sample_seconds']} s "
        f"-> {row['naive_calls_for_all']:,} calls and "
        f"~{row['naive_seconds_for_all_extrapolated']:,} s for all {n:,} (extrapolated); "
        f"CertDesk {row['speedup_over_naive']}x faster"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--cert-sample", type=int, default=800)
    parser.add_argument("--full", action="store_true", help="the whole import, not a sample")
    parser.add_argument("--concurrency", type=int, default=8, help="downloads at once (--full)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from entrust_sandbox.testing import SandboxServer

    report = []
    with SandboxServer() as sb:
        for n in [int(s) for s in args.sizes.split(",")]:
            seeded = sb.seed(certificates=n, seed=3)
            sb.faults([{"kind": "latency", "ms": args.latency_ms}])
            sb.clear_requests()
            if args.full:
                report.append(_full_report(sb, n, seeded, args))
                sb.clear_faults()
                continue
            timed = _run_child(sb, "time", args.cert_sample)
            list_calls = _list_calls(sb)
            memory = _run_child(sb, "memory")
            naive = _naive(sb, args.naive_sample)
            sb.clear_faults()
            per_order = naive["seconds"] / max(1, naive["sample"])
            naive_calls = -(-n // 1000) + n
            cert_rate = (
                timed["cert_added"] / timed["cert_seconds"] if timed.get("cert_seconds") else 0
            )
            row = {
                "orders": n,
                "seed_seconds": seeded["seconds"],
                "latency_ms": args.latency_ms,
                "metadata_seconds": round(timed["seconds"], 2),
                "metadata_list_calls": list_calls,
                "metadata_rows_per_second": round(timed["rows"] / timed["seconds"]),
                "orders_imported": timed["new"],
                "peak_rss_mb": round(timed["peak_rss_mb"], 1),
                "rss_after_first_page_mb": round(timed["rss_first_page_mb"], 1),
                "rss_after_last_page_mb": round(timed["rss_last_page_mb"], 1),
                "rss_max_during_import_mb": round(timed["rss_max_during_import_mb"], 1),
                "peak_python_alloc_mb": round(memory["peak_python_mb"], 1),
                "issued_orders": timed.get("issued"),
                "cert_sample": timed.get("cert_sample"),
                "cert_sample_seconds": round(timed.get("cert_seconds", 0), 2),
                "cert_per_second_at_6000_per_min": round(cert_rate, 1),
                "certificates_all_seconds_at_6000_per_min": round(
                    timed.get("issued", 0) / cert_rate
                )
                if cert_rate
                else None,
                "certificates_all_seconds_at_120_per_min": (timed.get("issued") or 0) // 2,
                "naive_sample": naive["sample"],
                "naive_sample_seconds": round(naive["seconds"], 2),
                "naive_calls_for_all": naive_calls,
                "naive_seconds_for_all_extrapolated": round(per_order * n),
            }
            report.append(row)
            print(f"\n== {n:,} orders, {args.latency_ms} ms latency per call")
            print(
                f"metadata import: {row['metadata_seconds']} s, {list_calls} list calls, "
                f"{row['metadata_rows_per_second']:,} rows/s, {timed['new']:,} orders"
            )
            print(
                "  importer process memory (resident, mapped DB pages left out) after the first "
                f"page {row['rss_after_first_page_mb']} MB, "
                f"after the last {row['rss_after_last_page_mb']} MB (max during the import "
                f"{row['rss_max_during_import_mb']} MB; peak of the whole child process "
                f"{row['peak_rss_mb']} MB); peak Python allocations during the import "
                f"{row['peak_python_alloc_mb']} MB"
            )
            print(
                f"  targets (50,000): <= 55 list calls "
                f"{'PASS' if list_calls <= 55 else 'FAIL'}, < 20 s "
                f"{'PASS' if row['metadata_seconds'] < 20 else 'FAIL'}"
                if n == 50_000
                else "  (targets apply to 50,000 orders)"
            )
            print(
                f"certificates: {row['cert_sample']} fetched and added in "
                f"{row['cert_sample_seconds']} s ({row['cert_per_second_at_6000_per_min']}/s at "
                f"6,000 calls/min); all {row['issued_orders']:,} issued orders: "
                f"~{row['certificates_all_seconds_at_6000_per_min']} s at 6,000/min, "
                f"~{row['certificates_all_seconds_at_120_per_min']} s at the default 120/min"
            )
            print(
                f"naive (details one by one): {naive['sample']} orders in "
                f"{row['naive_sample_seconds']} s -> {naive_calls:,} calls and "
                f"~{row['naive_seconds_for_all_extrapolated']:,} s for all {n:,} (extrapolated)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
