"""Benchmark: the orders, certificates and domains lists and the dashboard at 100,000 rows over
HTTP, a sustained mixed read load, and the cold start and memory of `certdesk serve`.

Usage: .venv/bin/python bench/list_pages.py [--rows 100000] [--clients 8] [--repeat R]
           [--rounds K] [--mixed-seconds 60] [--health-seconds 10] [--keep DIR] [--quick]
           [--json FILE] [--workers 2]

One fresh migrated SQLite database gets ``--rows`` rows of every list, orders among them
(tests/populate.py). Then, against a real `certdesk serve`:

- cold start: the time from starting the process to the first 200 on /healthz, and to a signed-in
  dashboard (sign-in form, sign-in, dashboard), beside the same on an empty database (the
  baseline: what the start costs whatever the data); the server's resident memory (VmRSS) once
  started and after the whole run, and its peak (VmHWM);
- each list page (first page, full page and htmx fragment; the dashboard has no fragment) timed
  over HTTP on loopback with keep-alive, R calls with one client and R/2 by each of C clients at
  once, in K interleaved rounds, beside the bare query (the service calls the view makes, inside
  a request context, no HTTP and no rendering) timed in the same rounds, and by C threads at once
  after them: p50/p95/p99 in ms and the ratio of the page's p95 to the bare query's p95 at the
  same concurrency (targets: p95 < 100 ms and < 3x);
- a mixed read load: C clients cycling through every list page of bench/scaling.py and the
  orders list's sorts and filters for ``--mixed-seconds``: requests per second and errors (target
  at least 200/s, no error), beside /healthz with the same clients (the HTTP stack's ceiling).

The times are taken by the client on loopback: the server's time plus a fraction of a
millisecond. With C clients on a machine of fewer cores, requests queue for the CPU (one
process, one GIL): the one-client figures are the cost of a page, the C-client ones include the
wait; the script prints the served requests per second of each so the two can be compared.
--quick: 10,000 rows, fewer calls, 10 s of mixed load (a couple of minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scaling  # noqa: E402  (after the path is set)
from scaling import HTMX, Figures, Scenario, free_port, measure  # noqa: E402

from tests.populate import PASSWORD  # noqa: E402

TARGET_P95_MS = 100
TARGET_RATIO = 3


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the bare queries ---------------------------------------------------------------------------


def _bare_orders(qs: str):
    def run():
        from webapp.dbtypes import utcnow
        from webapp.htmx import is_htmx
        from webapp.orders import queries
        from webapp.orders.views import _filter
        from webapp.paging import page_args

        page, per_page = page_args(50)
        queries.page_of(_filter(), page, per_page, utcnow())
        if not is_htmx():
            queries.filter_choices()

    return run


def _bare_dashboard():
    from webapp.certificates import service as certificates
    from webapp.dashboard import service
    from webapp.dbtypes import utcnow
    from webapp.jobs import service as jobs
    from webapp.orders import queries as orders

    now = utcnow()
    service.state_counts(now)
    service.timeline_chart(service.expiry_timeline(now))
    for c in service.urgent(10, now):
        certificates.state_of(c, now)
    service.recent_activity(10)
    jobs.recent(5)
    orders.pending(10)


def _in_request(path_qs: str, run, htmx: bool):
    def call(app):
        from webapp.extensions import db

        headers = HTMX if htmx else {}
        with app.test_request_context(path_qs, headers=headers):
            run()
            db.session.remove()

    return call


def _certificates(qs):
    def run():
        from flask import request

        from webapp.certificates import service
        from webapp.certificates.views import _filter

        service.page_of(_filter(), request.args.get("page", 1, type=int), 50)
        if not request.headers.get("HX-Request"):
            service.issuers()

    return run


def _domains(qs):
    def run():
        from webapp.catalog import service
        from webapp.catalog.views import _filter
        from webapp.paging import page_args

        page, per_page = page_args(50)
        service.tab("domains", _filter("domains"), page, per_page)  # as the view calls it

    return run


def scenarios() -> list[Scenario]:
    out = []
    pages = [
        ("orders", "/entrust/", _bare_orders),
        ("certificates", "/certificates/", _certificates),
        ("domains", "/entrust/manage/domains", _domains),
    ]
    for page, path, bare in pages:
        for htmx in (False, True):
            out.append(Scenario(page, "first page", path, htmx, _in_request(path, bare(""), htmx)))
    out.append(Scenario("dashboard", "page", "/", False, _in_request("/", _bare_dashboard, False)))
    return out


ORDER_MIX = [
    "/entrust/?sort=cn",
    "/entrust/?sort=status",
    "/entrust/?status=PENDING",
    "/entrust/?credential=2",
    "/entrust/?expiring=30",
    "/entrust/?q=host4242.dept",
]


def mixed_urls() -> list[str]:
    urls = [sc.url for sc in scaling.scenarios() if not sc.htmx and "DEEP" not in sc.url]
    urls = [u for u in urls if not u.startswith("/admin/users/")]
    return urls + ["/entrust/", *ORDER_MIX]


# -- the database and the server ------------------------------------------------------------------


def build(instance: Path, rows: int):
    """A migrated database with ``rows`` rows of every list and as many orders (none for 0)."""
    from flask_migrate import upgrade

    from webapp import _init_secretbox, paths
    from webapp.auth import service as auth
    from webapp.extensions import db

    instance.mkdir(parents=True, exist_ok=True)
    marker = instance / "bench-filled.json"
    app = scaling.bench_app(instance, f"sqlite:///{instance / 'certdesk.db'}")
    with app.app_context():
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        if marker.exists():
            print(f"  reusing the {rows:,}-row database in {instance}", flush=True)
        else:
            _init_secretbox(app)
            if rows:
                from tests.populate import fill

                fill(rows)  # every list, orders too
            else:
                auth.create_user(None, "bench", PASSWORD, "admin")
                db.session.commit()
            marker.write_text(json.dumps({"rows": rows}))
        db.session.remove()
        db.engine.dispose()
    return app


class Serve:
    """`certdesk serve` on a free port, timed from the start of the process."""

    def __init__(self, instance: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            CERTDESK_INSTANCE=str(instance),
            CERTDESK_SECRET_KEY="bench-secret-of-at-least-32-characters",
            DATABASE_URL=f"sqlite:///{instance / 'certdesk.db'}",
            PYTHONUNBUFFERED="1",
        )
        self.log = open(instance / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--port", str(self.port)]
            + ["--workers", str(workers)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"certdesk serve exited; see {instance / 'serve.log'}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("certdesk serve did not answer within 120 s")
            time.sleep(0.02)
        self.healthz_seconds = time.perf_counter() - started
        first = self.session()
        r = first.get(self.url + "/", timeout=60)
        if r.status_code != 200 or "/login" in r.url:
            raise SystemExit(f"the dashboard after sign-in: {r.status_code} {r.url}")
        self.signed_in_seconds = time.perf_counter() - started
        self.rss_started_mb = _status_mb(self.proc.pid, "VmRSS")

    def session(self) -> requests.Session:
        return scaling.sign_in(self.url)

    def memory(self) -> dict:
        return {
            "rss_mb": round(_status_mb(self.proc.pid, "VmRSS"), 1),
            "peak_rss_mb": round(_status_mb(self.proc.pid, "VmHWM"), 1),
        }

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- the run --------------------------------------------------------------------------------------


def bare_concurrent(sc: Scenario, app, clients: int, calls_each: int) -> Figures:
    """The bare query run by ``clients`` threads at once in this process (they queue for the
    CPU and the GIL as the server's threads do)."""
    import threading

    times: list[float] = []
    lock = threading.Lock()

    def worker():
        mine = []
        for _ in range(calls_each):
            t0 = time.perf_counter()
            sc.bare(app)
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Figures.of(times)


def _figures(f: Figures | None) -> dict | None:
    return None if f is None else {k: round(v, 2) for k, v in vars(f).items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, help="calls per page with one client")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per page")
    parser.add_argument("--mixed-seconds", type=float)
    parser.add_argument("--health-seconds", type=float)
    parser.add_argument("--keep", help="fill the instances once into DIR and reuse them")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, fewer calls")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="the mixed load again against `certdesk serve --workers N` (0: skip)",
    )
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (10 if args.quick else 40)
    mixed_seconds = args.mixed_seconds or (10 if args.quick else 60)
    health_seconds = args.health_seconds or (5 if args.quick else 10)

    tmp = Path(tempfile.mkdtemp(prefix="certdesk-bench-pages-"))
    base = Path(args.keep) if args.keep else tmp
    report: dict = {"rows": rows, "clients": args.clients, "repeat": repeat}
    try:
        started = time.perf_counter()
        app = build(base / str(rows), rows)
        build(base / "empty", 0)
        report["fill_seconds"] = round(time.perf_counter() - started, 1)
        print(f"databases ready in {report['fill_seconds']} s", flush=True)

        empty = Serve(base / "empty")
        empty.stop()
        server = Serve(base / str(rows))
        try:
            report["cold_start"] = {
                "healthz_seconds": round(server.healthz_seconds, 2),
                "signed_in_seconds": round(server.signed_in_seconds, 2),
                "empty_healthz_seconds": round(empty.healthz_seconds, 2),
                "empty_signed_in_seconds": round(empty.signed_in_seconds, 2),
                "rss_started_mb": round(server.rss_started_mb, 1),
                "empty_rss_started_mb": round(empty.rss_started_mb, 1),
            }
            c = report["cold_start"]
            print(
                f"cold start at {rows:,} rows: /healthz after {c['healthz_seconds']} s, signed-in "
                f"dashboard after {c['signed_in_seconds']} s (empty database: "
                f"{c['empty_healthz_seconds']} s and {c['empty_signed_in_seconds']} s); RSS "
                f"{c['rss_started_mb']} MB (empty: {c['empty_rss_started_mb']} MB)",
                flush=True,
            )
            sessions = [server.session() for _ in range(args.clients)]
            print(
                f"\np50/p95/p99 in ms at {rows:,} rows: one client, {args.clients} at once, and "
                f"the bare query; ratio = page p95 / bare p95"
            )
            head = f"{'page':<34}{'1 client':>24}{f'{args.clients} clients':>24}{'bare':>24}"
            head += f"{f'bare x{args.clients}':>24}"
            print(head + f"{'x1':>7}{'x8':>7}\n" + "-" * (len(head) + 14), flush=True)
            pages = {}
            for sc in scenarios():
                res = measure({rows: (server, sessions, app, sc)}, repeat, args.rounds)[rows]
                many_bare = bare_concurrent(sc, app, args.clients, max(1, repeat // 2))
                ratio1 = res.one.p95 / res.bare.p95
                ratio_many = res.many.p95 / many_bare.p95
                pages[sc.name] = {
                    "one": _figures(res.one),
                    "many": _figures(res.many),
                    "bare": _figures(res.bare),
                    "bare_many": _figures(many_bare),
                    "ratio_one": round(ratio1, 2),
                    "ratio_many": round(ratio_many, 2),
                    "ratio_many_to_one_client_bare": round(res.many.p95 / res.bare.p95, 2),
                }
                print(
                    f"{sc.name:<34}{scaling.fmt(res.one)}{scaling.fmt(res.many)}"
                    f"{scaling.fmt(res.bare)}{scaling.fmt(many_bare)}{ratio1:7.1f}{ratio_many:7.1f}",
                    flush=True,
                )
            report["pages"] = pages

            m = report["mixed"] = mixed(server, sessions, mixed_seconds, health_seconds)
            print(
                f"\nmixed read load, {args.clients} clients over {m['pages']} pages for "
                f"{mixed_seconds:.0f} s: {m['requests_per_second']} requests/s, "
                f"{m['errors']} errors, p50 {m['p50']} ms, p95 {m['p95']} ms; /healthz with the "
                "same clients "
                f"{m['healthz_requests_per_second']} requests/s",
                flush=True,
            )
            report["memory_after_run"] = server.memory()
            print(
                f"certdesk serve after the run: RSS {report['memory_after_run']['rss_mb']} MB, "
                f"peak {report['memory_after_run']['peak_rss_mb']} MB"
            )
        finally:
            server.stop()
        if args.workers > 1:
            report["mixed_workers"] = mixed_with_workers(
                base / str(rows), args.workers, args.clients, mixed_seconds, health_seconds
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def mixed(server, sessions, seconds: float, health_seconds: float) -> dict:
    """Every page of the mix in turn for ``seconds``, then /healthz with the same clients."""
    urls = mixed_urls()
    rate, errors, figures, _ = scaling.mixed_load(server, sessions, urls, seconds)
    h_rate, h_errors, _, _ = scaling.mixed_load(server, sessions, ["/healthz"], health_seconds)
    return {
        "seconds": seconds,
        "pages": len(urls),
        "requests_per_second": round(rate, 1),
        "errors": errors,
        "p50": round(figures.p50, 1),
        "p95": round(figures.p95, 1),
        "healthz_requests_per_second": round(h_rate, 1),
        "healthz_errors": h_errors,
    }


def mixed_with_workers(instance: Path, workers: int, clients: int, seconds, health_seconds):
    """The same mixed read load against `certdesk serve --workers N` over the same database."""
    server = Serve(instance, workers)
    try:
        sessions = [server.session() for _ in range(clients)]
        m = {"workers": workers, **mixed(server, sessions, seconds, health_seconds)}
    finally:
        server.stop()
    print(
        f"\nthe same with `certdesk serve --workers {workers}`: {m['requests_per_second']} "
        f"requests/s, {m['errors']} errors, p50 {m['p50']} ms, p95 {m['p95']} ms; /healthz "
        f"{m['healthz_requests_per_second']} requests/s",
        flush=True,
    )
    return m


if __name__ == "__main__":
    main()
