"""Scaling benchmark: every list page and the dashboard at 10,000 and 100,000 rows, over HTTP.

Usage: .venv/bin/python bench/scaling.py [--quick] [--db sqlite|postgresql|both]
           [--scales 10000,100000] [--repeat R] [--rounds K] [--clients C] [--mixed-seconds S]
           [--only certificates,domains,...] [--keep DIR] [--json FILE] [--workers N] [--threads N]

For each database (SQLite; PostgreSQL in a throwaway cluster when Debian's binaries are there) it
fills a fresh migrated database per scale N with N rows of every list (certificates with their
names, CSRs, organizations, domains, users, audit events, then N failed sign-ins in the audit
trail; tests/populate.py), starts a real `certdesk serve` (waitress) on each, signs in, and times
every page scenario over HTTP (requests, keep-alive): R calls with one client and R/2 by each of
C clients at once, plus the bare time of the page's main query (the service calls the view makes,
no HTTP, no rendering). The scales are measured interleaved, in K rounds per scenario, so that
whatever else runs on the machine weighs on each alike. It prints p50/p95/p99 per scale and the
p95 ratio of the largest scale to the smallest (target: at most 1.5). At the largest scale it then
runs a mixed read load (C clients cycling through every page, S seconds) and /healthz with the
same clients, in alternating slices. The mixed load's clients are bare keep-alive connections
(http.client, the signed-in cookie): they share the cores with the server, and `requests` would
take about 1.5 ms of CPU per 30 KB page from it where these take 0.3 ms.

The deep pages are three quarters down each list: "by Next" is the page the Next link of the page
before leads to (as a person paging through gets it), "by number" the same page asked for by its
number in the URL.

--quick: scales 1,000 and 10,000, fewer calls, a short mixed load (a few minutes for SQLite).
--keep DIR: SQLite instances are filled once into DIR/<scale> and reused by later runs.
--workers N: each server runs `certdesk serve --workers N` (N processes on one port).
--threads N: and `--threads N` (threads per process; serve's default when not given).
The machine is shared: run it more than once and read the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import html
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.populate import PASSWORD, fill  # noqa: E402  (after the path is set)

HTMX = {"HX-Request": "true"}
TARGET_RATIO = 1.5


# -- the pages ------------------------------------------------------------------------------------


@dataclass
class Scenario:
    page: str
    label: str
    url: str
    htmx: bool = False
    bare: object = None  # callable(app) -> None: the page's main query, no HTTP or rendering

    @property
    def name(self) -> str:
        return f"{self.page}: {self.label}" + (" (htmx)" if self.htmx else "")


def _bare_view(path_qs: str, run):
    """A bare call: ``run()`` inside a request context for the URL (so the view's own argument
    parsing is used), then the session is closed."""

    def call(app):
        from webapp.extensions import db

        with app.test_request_context(path_qs):
            run()
            db.session.remove()

    return call


def _bare_certificates(qs):
    def run():
        from flask import request

        from webapp.certificates import service
        from webapp.certificates.views import _filter

        page = request.args.get("page", 1, type=int)
        service.page_of(_filter(), page, 50)
        if not request.headers.get("HX-Request"):
            service.issuers()

    return _bare_view("/certificates/?" + qs, run)


def _bare_catalog(tab, qs):
    def run():
        from webapp.catalog import service
        from webapp.catalog.views import _filter
        from webapp.paging import page_args

        page, per_page = page_args(50)
        service.tab(tab, _filter(tab), page, per_page)  # the page, its credentials and statuses

    return _bare_view(f"/entrust/manage/{tab}?{qs}", run)


def _bare_csrs(qs):
    def run():
        from flask import request

        from webapp.csrs import service
        from webapp.paging import page_args, paginate

        a = request.args
        page, per_page = page_args(50)
        paginate(
            service.list_query(a.get("q", ""), a.get("sort", "created"), a.get("dir", "desc")),
            page,
            per_page,
        )

    return _bare_view("/csrs/?" + qs, run)


def _bare_orders(qs):
    def run():
        from flask import request

        from webapp.orders import queries
        from webapp.orders.views import _filter
        from webapp.paging import page_args

        page, per_page = page_args(50)
        queries.page_of(_filter(), page, per_page)
        if not request.headers.get("HX-Request"):
            queries.filter_choices()

    return _bare_view("/entrust/?" + qs, run)


def _bare_users(qs):
    def run():
        from webapp.auth import service

        if hasattr(service, "users_query"):
            from webapp.paging import page_args, paginate

            page, per_page = page_args(50)
            paginate(service.users_query(), page, per_page)
        else:
            service.list_users()

    return _bare_view("/admin/users/?" + qs, run)


def _bare_audit(qs):
    def run():
        from webapp.audit import service
        from webapp.audit.views import _filter
        from webapp.paging import page_args, paginate

        page, per_page = page_args(50)
        paginate(service.query(_filter()), page, per_page)
        service.actions()

    return _bare_view("/admin/audit/?" + qs, run)


def _bare_dashboard(app):
    from webapp.dashboard import service
    from webapp.dbtypes import utcnow
    from webapp.extensions import db

    with app.app_context():
        now = utcnow()
        service.state_counts(now)
        service.expiry_timeline(now)
        service.urgent(10, now)
        service.recent_activity(10)
        db.session.remove()


# A page three quarters down the list: reached by Next from the page before it (as a person
# paging would), and asked for by its number.
DEEP = [("deep page by Next (75%)", "page=DEEP_NEXT"), ("deep page by number (75%)", "page=DEEP")]


def scenarios() -> list[Scenario]:
    out = []

    def add(page, label, path, qs, bare, htmx=False):
        out.append(Scenario(page, label, f"{path}?{qs}" if qs else path, htmx, bare))

    cert = [
        ("first page (expiry)", ""),
        ("sort common name desc", "sort=cn&dir=desc"),
        ("sort issuer", "sort=issuer"),
        ("sort source desc", "sort=source&dir=desc"),
        ("sort created desc", "sort=created&dir=desc"),
        ("sort serial", "sort=serial"),
        ("search name prefix", "q=www.host4242"),
        ("search domain suffix", "q=dept5.example5.com"),
        ("search broad (host1)", "q=host1"),
        ("search serial", "q=0123456789abcdef"),
        ("expiring 30 days", "expiry=30"),
        ("expired + source", "expiry=expired&source=entrust"),
        ("revoked", "expiry=revoked"),
        ("valid", "expiry=valid"),
        ("suspended", "expiry=suspended"),
        ("not valid yet", "expiry=not_yet_valid"),
        ("has key: no", "has_key=no"),
        ("issuer + has key: no", "issuer=Internal+Issuing+CA&has_key=no"),
        ("source + 90 days + key", "source=entrust&expiry=90&has_key=yes"),
        *DEEP,
    ]
    for label, qs in cert:
        add("certificates", label, "/certificates/", qs, _bare_certificates(qs))
    add("certificates", "first page", "/certificates/", "", _bare_certificates(""), htmx=True)

    domains = [
        ("first page (name)", ""),
        ("search prefix", "q=host4242"),
        ("search suffix", "q=zone5.example5.com"),
        ("search broad (host1)", "q=host1"),
        ("sort client", "sort=client"),
        ("sort status", "sort=status"),
        ("sort method desc", "sort=method&dir=desc"),
        ("sort OV expiry desc", "sort=ov_expiry&dir=desc"),
        ("sort EV expiry", "sort=ev_expiry"),
        ("status PENDING", "status=PENDING"),
        ("status APPROVED", "status=APPROVED"),
        ("expiring", "status=expiring"),
        ("expired", "status=expired"),
        ("second credential", "credential=2"),
        ("gone", "show=gone"),
        ("all", "show=all"),
        *DEEP,
    ]
    for label, qs in domains:
        add("domains", label, "/entrust/manage/domains", qs, _bare_catalog("domains", qs))
    add("domains", "first page", "/entrust/manage/domains", "", _bare_catalog("domains", ""), True)

    orgs = [
        ("first page (name)", ""),
        ("search name", "q=org+0042"),
        ("search client", "q=client+00042"),
        ("sort client", "sort=client"),
        ("sort status desc", "sort=status&dir=desc"),
        ("sort OV expiry", "sort=ov_expiry"),
        ("status PENDING", "status=PENDING"),
        ("clients only", "kind=client"),
        ("all", "show=all"),
        *DEEP,
    ]
    for label, qs in orgs:
        add(
            "organizations",
            label,
            "/entrust/manage/organizations",
            qs,
            _bare_catalog("organizations", qs),
        )

    for label, qs in [
        ("first page", ""),
        ("sort remaining", "sort=remaining"),
        ("available", "status=available"),
    ]:
        add("products", label, "/entrust/manage/products", qs, _bare_catalog("products", qs))

    for label, qs in [
        ("first page (newest)", ""),
        ("sort common name", "sort=cn&dir=asc"),
        ("search prefix", "q=host4242"),
        ("search suffix", "q=csr5.example.org"),
        ("search broad (host1)", "q=host1"),
        *DEEP,
    ]:
        add("csrs", label, "/csrs/", qs, _bare_csrs(qs))

    for label, qs in [
        ("first page (expiry)", ""),
        ("sort tracking ID desc", "sort=tracking&dir=desc"),
        ("sort common name", "sort=cn"),
        ("sort status", "sort=status"),
        ("sort requester desc", "sort=requester&dir=desc"),
        ("sort last checked desc", "sort=checked&dir=desc"),
        ("search name prefix", "q=www.host4242"),
        ("search domain suffix", "q=shop5.example5.net"),
        ("search tracking ID", "q=5004242"),
        ("search broad (host1)", "q=host1"),
        ("search requester (1 in 4)", "q=omar"),
        ("status PENDING", "status=PENDING"),
        ("checking with Entrust", "status=%40unknown"),
        ("second credential", "credential=2"),
        ("product", "product=EV_SSL"),
        ("expiring 30 days", "expiring=30"),
        *DEEP,
    ]:
        add("orders", label, "/entrust/", qs, _bare_orders(qs))
    add("orders", "first page", "/entrust/", "", _bare_orders(""), htmx=True)

    for label, qs in [("first page", ""), *DEEP]:
        add("users", label, "/admin/users/", qs, _bare_users(qs))

    for label, qs in [
        ("first page", ""),
        ("action", "action=certificate.add"),
        ("user", "user=alice"),
        ("object", "object=certificate:123"),
        ("date range", "since=2000-01-01&until=2000-01-31"),
        *DEEP,
    ]:
        add("audit", label, "/admin/audit/", qs, _bare_audit(qs))

    add("dashboard", "page", "/", "", _bare_dashboard)
    return out


def resolve(scenario: Scenario, server, session, now: datetime, n: int) -> Scenario:
    """The scenario's URL at this scale: the audit date range (one day in the middle of the
    day-to-day events), and the deep pages (the Next link of the page before, as served)."""
    url = scenario.url
    if "since=2000" in url:
        day = (now - timedelta(seconds=int(1.5 * n))).date()
        url = f"/admin/audit/?since={day:%Y-%m-%d}&until={day:%Y-%m-%d}"
    deep = max(2, int(0.75 * n / 50))
    if "page=DEEP_NEXT" in url:
        before = server.url + url.replace("DEEP_NEXT", str(deep - 1))
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', session.get(before, timeout=120).text)
        url = html.unescape(found.group(1)) if found else url.replace("DEEP_NEXT", str(deep))
        how = "with its cursor" if "after=" in url else "by number (no cursor in the link)"
        print(f"  ({scenario.page}: the Next link of page {deep - 1} asks for page {deep} {how})")
    url = url.replace("page=DEEP", f"page={deep}")
    if url == scenario.url:
        return scenario
    path, _, qs = url.partition("?")
    bare = {
        "certificates": _bare_certificates,
        "orders": _bare_orders,
        "csrs": _bare_csrs,
        "users": _bare_users,
        "audit": _bare_audit,
    }.get(scenario.page)
    if bare is not None:
        bare = bare(qs)
    elif scenario.page in ("domains", "organizations"):
        bare = _bare_catalog(scenario.page, qs)
    return Scenario(scenario.page, scenario.label, url, scenario.htmx, bare)


# -- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`certdesk serve` on a free port over the given instance and database."""

    def __init__(self, instance: Path, database_url: str, workers: int = 1, threads: int = 0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            CERTDESK_INSTANCE=str(instance),
            CERTDESK_SECRET_KEY="bench-secret-of-at-least-32-characters",
            DATABASE_URL=database_url,
            PYTHONUNBUFFERED="1",
        )
        self.log = open(instance / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--port", str(self.port)]
            + ["--workers", str(workers)]
            + (["--threads", str(threads)] if threads else []),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"certdesk serve exited; see {instance / 'serve.log'}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("certdesk serve did not answer within 60 s")
            time.sleep(0.2)

    def session(self) -> requests.Session:
        return sign_in(self.url)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def sign_in(url: str, timeout: float = 60) -> requests.Session:
    """A `requests` session signed in as the benchmark's user on the server at ``url``."""
    s = requests.Session()
    page = s.get(url + "/login", timeout=timeout).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        url + "/login",
        data={"username": "bench", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=timeout,
    )
    assert r.status_code in (302, 303), f"sign-in failed: {r.status_code}"
    return s


# -- timing ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Figures:
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, times: list[float]) -> Figures:
        return cls(statistics.median(times), pct(times, 95), pct(times, 99))


def timed_get(session, url, headers) -> float:
    t0 = time.perf_counter()
    r = session.get(url, headers=headers, timeout=120)
    elapsed = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise SystemExit(f"GET {url}: {r.status_code}")
    return elapsed


def run_clients(sessions, url, headers, calls_each) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker(s):
        mine = [timed_get(s, url, headers) for _ in range(calls_each)]
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


@dataclass
class Result:
    one: Figures
    many: Figures
    bare: Figures | None


def _bare_times(scenario: Scenario, app, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        scenario.bare(app)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def measure(targets, repeat: int, rounds: int) -> dict:
    """Time one scenario at every scale, interleaved: each round runs the one-client calls, the
    concurrent calls and the bare query at each scale in turn, so that whatever else the machine
    is doing weighs on every scale alike. ``targets``: scale -> (server, sessions, app, scenario).
    Returns scale -> Result."""
    one: dict = {n: [] for n in targets}
    many: dict = {n: [] for n in targets}
    bare: dict = {n: [] for n in targets}
    calls = repeat
    for server, sessions, app, sc in targets.values():
        headers = HTMX if sc.htmx else {}
        first = [timed_get(sessions[0], server.url + sc.url, headers) for _ in range(2)]
        if sc.bare is not None:
            sc.bare(app)  # warm up
        if max(first) > 500:  # a slow page gets few calls: one page cannot hold the run
            calls, rounds = 2, 2
    per_round = max(1, calls // rounds)
    for _ in range(rounds):
        for n, (server, sessions, app, sc) in targets.items():
            url, headers = server.url + sc.url, HTMX if sc.htmx else {}
            one[n] += [timed_get(sessions[0], url, headers) for _ in range(per_round)]
            many[n] += run_clients(sessions, url, headers, max(1, per_round // 2))
            if sc.bare is not None:
                bare[n] += _bare_times(sc, app, per_round)
    return {
        n: Result(Figures.of(one[n]), Figures.of(many[n]), Figures.of(bare[n]) if bare[n] else None)
        for n in targets
    }


class LeanClient:
    """One keep-alive HTTP connection carrying a signed-in session's cookies, on http.client.

    The mixed load measures the server, but the clients run on the same cores: `requests` spends
    about 1.5 ms of CPU on each 30 KB page (cookie jar, adapters, decoding), a fifth of what the
    server spends, taken from the server. A bare connection spends about 0.3 ms."""

    def __init__(self, base_url: str, session: requests.Session):
        self.host, _, port = base_url.split("//", 1)[1].partition(":")
        self.port = int(port or 80)
        self.cookies = {c.name: c.value for c in session.cookies}
        self.cookie = self._header()
        self.conn = None

    def _header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def get(self, path: str) -> int:
        """GET ``path``; the status, or 0 when the connection failed (it is opened again)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request("GET", path, headers={"Cookie": self.cookie})
            response = self.conn.getresponse()
            response.read()
            self._keep(response.msg.get_all("Set-Cookie") or ())
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return 0

    def _keep(self, set_cookies) -> None:
        # As a browser does: a session cookie the server renews (CertDesk moves its expiry on
        # once a minute) is sent from then on. Sending the first one for the whole run would
        # have the server sign a new cookie on every request after the first minute.
        for header in set_cookies:
            name, _, value = header.split(";", 1)[0].partition("=")
            if value.strip():
                self.cookies[name.strip()] = value.strip()
            else:  # cleared
                self.cookies.pop(name.strip(), None)
        if set_cookies:
            self.cookie = self._header()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def mix_urls(chosen, users: bool = False) -> list[str]:
    """The pages of the mixed load: every full page of ``chosen`` but the deep ones (their page
    number is worked out per run), and the users' pages only when asked."""
    urls = [sc.url for sc in chosen if not sc.htmx and "DEEP" not in sc.url]
    return [u for u in urls if users or not u.startswith("/admin/users/")]


def mixed_load(server: Server, sessions, urls: list[str], seconds: float) -> tuple:
    """Every session cycles through ``urls`` for ``seconds`` on a LeanClient of its own;
    (requests/s, errors, latencies, the latencies in order)."""
    stop_at = time.monotonic() + seconds
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(n, client):
        mine = []
        failed = 0
        for url in itertools.islice(itertools.cycle(urls), n, None):
            if time.monotonic() >= stop_at:
                break
            t0 = time.perf_counter()
            ok = client.get(url) == 200
            mine.append((time.perf_counter() - t0) * 1000)
            failed += not ok
        client.close()
        with lock:
            times.extend(mine)
            errors[0] += failed

    clients = [LeanClient(server.url, s) for s in sessions]
    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return len(times) / elapsed, errors[0], Figures.of(times), times


# -- databases ------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_cluster():
    """A throwaway PostgreSQL cluster on a free port; yields a function making databases."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        yield None
        return
    bindir = os.path.dirname(found[-1])
    root = Path(tempfile.mkdtemp(prefix="certdesk-bench-pg-"))
    data = root / "data"
    data.mkdir()
    as_owner = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*as_owner, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "certdesk"]
        + ["-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_owner, f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(root / "log")]
        + ["-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        import psycopg

        def create(name: str) -> str:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} user=certdesk dbname=postgres", autocommit=True
            ) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return f"postgresql+psycopg://certdesk@127.0.0.1:{port}/{name}"

        yield create
    finally:
        subprocess.run(
            [*as_owner, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def bench_app(instance: Path, url: str):
    """The app over a benchmark's instance, in process (no scheduler, quiet logs)."""
    from webapp import create_app

    return create_app(
        {
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-secret",
            "SCHEDULER_ENABLED": False,
            "LOG_LEVEL": "WARNING",
        }
    )


def build(instance: Path, url: str, n: int):
    """A migrated, filled database; returns the app (for the bare queries)."""
    from flask_migrate import upgrade

    from webapp import _init_secretbox, paths
    from webapp.extensions import db

    instance.mkdir(parents=True, exist_ok=True)
    marker = instance / "bench-filled.json"
    app = bench_app(instance, url)
    with app.app_context():
        if not marker.exists():
            upgrade(directory=str(paths.MIGRATIONS_DIR))
            _init_secretbox(app)
            fill(n)
            if url.startswith("sqlite"):
                marker.write_text(json.dumps({"rows": n}))
        else:
            upgrade(directory=str(paths.MIGRATIONS_DIR))
            print(f"  reusing the {n:,}-row database in {instance}", flush=True)
        db.session.remove()
        db.engine.dispose()
    return app


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Run:
    db: str
    results: dict = field(default_factory=dict)  # scale -> scenario name -> Result
    mixed: dict = field(default_factory=dict)


def fmt(f: Figures | None) -> str:
    return " " * 24 if f is None else f"{f.p50:8.1f}{f.p95:8.1f}{f.p99:8.1f}"


def run_database(kind: str, url_for_scale, scales, args, chosen) -> Run:
    """Fill a database per scale, serve them all at once, and time every scenario at every
    scale in turn; then the mixed load and /healthz at the largest scale, alternating."""
    run = Run(kind)
    servers = {}
    try:
        for n in scales:
            print(f"\n== {kind}, {n:,} rows per list", flush=True)
            instance, url = url_for_scale(n)
            app = build(instance, url, n)
            server = Server(instance, url, args.workers, args.threads)
            servers[n] = (server, [], app)  # stopped at the end even if signing in fails
            servers[n][1].extend(server.session() for _ in range(args.clients))
        now = datetime.now(UTC)
        run.results = {n: {} for n in scales}
        print(
            f"\n{kind}: p50/p95/p99 in ms, one client and {args.clients} at once, and the bare "
            "query; the scales interleaved"
        )
        head = f"{'scenario':<50}{'rows':>8}{'1 client':>24}{f'{args.clients} clients':>24}"
        head += f"{'bare query':>24}"
        print(head + "\n" + "-" * len(head), flush=True)
        for sc in chosen:
            targets = {
                n: (server, sessions, app, resolve(sc, server, sessions[0], now, n))
                for n, (server, sessions, app) in servers.items()
            }
            results = measure(targets, args.repeat, args.rounds)
            for n, res in results.items():
                run.results[n][sc.name] = res
                print(
                    f"{sc.name:<50}{n:>8,}{fmt(res.one)}{fmt(res.many)}{fmt(res.bare)}",
                    flush=True,
                )
        if args.mixed_seconds:
            server, sessions, _ = servers[scales[-1]]
            urls = mix_urls(chosen, users=args.users_in_mix)
            run.mixed = mixed_against_health(server, sessions, urls, args.mixed_seconds)
            m = run.mixed
            print(
                f"\nmixed read load at {scales[-1]:,} rows, {args.clients} clients, "
                f"{len(urls)} pages in turn, {args.mixed_seconds:.0f} s: {m['rate']:.0f} "
                f"requests/s, {m['errors']} errors, p50 {m['p50']:.1f} ms, p95 {m['p95']:.1f} ms"
            )
            print(
                f"/healthz, same clients, alternating with it: {m['health']:.0f} requests/s "
                f"({m['health_errors']} errors); the pages at {100 * m['rate'] / m['health']:.0f}%",
                flush=True,
            )
    finally:
        for server, _, _ in servers.values():
            server.stop()
    return run


def mixed_against_health(server, sessions, urls, seconds: float, slices: int = 4) -> dict:
    """The mixed load and /healthz in alternating slices of the same total length each."""
    done = {"pages": [0, 0.0, 0, []], "health": [0, 0.0, 0, []]}
    for _ in range(slices):
        for kind, mix in (("pages", urls), ("health", ["/healthz"])):
            rate, errors, figures, times = mixed_load(server, sessions, mix, seconds / slices)
            acc = done[kind]
            acc[0] += round(rate * seconds / slices)
            acc[1] += seconds / slices
            acc[2] += errors
            acc[3] += times
    pages, health = Figures.of(done["pages"][3]), done["health"]
    return {
        "rate": done["pages"][0] / done["pages"][1],
        "errors": done["pages"][2],
        "p50": pages.p50,
        "p95": pages.p95,
        "health": health[0] / health[1],
        "health_errors": health[2],
        "pages": len(urls),
    }


def summary(run: Run, scales, clients) -> int:
    lo, hi = scales[0], scales[-1]
    print(f"\n== {run.db}: p95 at {hi:,} against {lo:,} rows (target ratio <= {TARGET_RATIO})")
    head = (
        f"{'scenario':<50}{'1c p95':>9}{'':>9}{'x':>6}{f'{clients}c p95':>9}{'':>9}{'x':>6}"
        f"{'bare p50':>9}{'':>9}{'x':>6}"
    )
    print(head + "\n" + "-" * len(head))
    over = 0
    for name, small in run.results[lo].items():
        big = run.results[hi].get(name)
        if big is None:
            continue
        r1 = big.one.p95 / small.one.p95
        r8 = big.many.p95 / small.many.p95
        bare = ""
        if small.bare and big.bare:
            bare = f"{small.bare.p50:9.1f}{big.bare.p50:9.1f}{big.bare.p50 / small.bare.p50:6.1f}"
        flag = "" if max(r1, r8) <= TARGET_RATIO else "  OVER"
        over += bool(flag)
        print(
            f"{name:<50}{small.one.p95:9.1f}{big.one.p95:9.1f}{r1:6.2f}"
            f"{small.many.p95:9.1f}{big.many.p95:9.1f}{r8:6.2f}{bare}{flag}"
        )
    if run.mixed:
        m = run.mixed
        print(
            f"mixed load at {hi:,}: {m['rate']:.0f} requests/s ({m['errors']} errors, "
            f"p95 {m['p95']:.1f} ms); /healthz {m['health']:.0f} requests/s; "
            f"{100 * m['rate'] / m['health']:.0f}%"
        )
    print(f"{over} scenario(s) over the {TARGET_RATIO}x target" if over else "all within target")
    return over


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1k and 10k rows, fewer calls")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--scales", help="comma-separated row counts (default 10000,100000)")
    parser.add_argument("--repeat", type=int, help="calls per scenario with one client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="certdesk serve --workers N")
    parser.add_argument(
        "--threads", type=int, default=0, help="certdesk serve --threads N (default: serve's own)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per scenario")
    parser.add_argument("--mixed-seconds", type=float, help="length of the mixed load")
    parser.add_argument("--only", help="comma-separated pages (certificates, domains, ...)")
    parser.add_argument("--users-in-mix", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", help="fill SQLite instances once into DIR and reuse them")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    scales = [
        int(s) for s in (args.scales or ("1000,10000" if args.quick else "10000,100000")).split(",")
    ]
    args.repeat = args.repeat or (10 if args.quick else 40)
    args.mixed_seconds = (
        args.mixed_seconds if args.mixed_seconds is not None else (5 if args.quick else 20)
    )
    chosen = scenarios()
    if args.only:
        pages = set(args.only.split(","))
        chosen = [sc for sc in chosen if sc.page in pages]

    runs = []
    tmp = Path(tempfile.mkdtemp(prefix="certdesk-scaling-"))
    try:
        if args.db in ("sqlite", "both"):
            base = Path(args.keep) if args.keep else tmp / "sqlite"

            def sqlite_url(n):
                inst = base / str(n)
                return inst, f"sqlite:///{inst / 'certdesk.db'}"

            runs.append(run_database("SQLite", sqlite_url, scales, args, chosen))
        if args.db in ("postgresql", "both"):
            with postgres_cluster() as create:
                if create is None:
                    print("\nPostgreSQL binaries not installed: PostgreSQL skipped")
                else:

                    def pg_url(n):
                        return tmp / f"pg{n}", create(f"bench{n}")

                    runs.append(run_database("PostgreSQL", pg_url, scales, args, chosen))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for run in runs:
        summary(run, scales, args.clients)
    if args.json:
        out = {
            run.db: {
                "mixed": run.mixed,
                "scales": {
                    str(n): {
                        name: {
                            "one": vars(r.one),
                            "many": vars(r.many),
                            "bare": vars(r.bare) if r.bare else None,
                        }
                        for name, r in res.items()
                    }
                    for n, res in run.results.items()
                },
            }
            for run in runs
        }
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
