"""The list queries whose plans must stay flat as tables grow, and how a plan is judged.

A list page is ``paginate`` over a statement its service builds; the query-plan tests
(tests/unit/test_query_plans.py on SQLite, tests/reliability/test_query_plans_postgres.py on
PostgreSQL) run each entry of ``LIST_QUERIES`` through ``paginate`` as a page would (first page,
Next, Previous, a page asked for by number), catch every SELECT it sends, and ask the database
for its plan. ``OTHER_QUERIES`` are called as they are (the dashboard, the filter drop-downs).

A new list adds its entries here: one per filter, sort (both directions) and kind of search its
page offers (see the orders list's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import contextmanager

from sqlalchemy import event

from webapp import hooks, paging
from webapp.audit import service as audit
from webapp.auth import service as auth
from webapp.catalog import service as catalog
from webapp.catalog.models import CatalogDomain, CatalogOrganization
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.csrs import service as csrs
from webapp.dashboard import service as dashboard
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.orders import importing
from webapp.orders import queries as orders

# Tables that grow with use. A plan may not scan one whole, nor sort what it read from one.
GROWING = {
    "certificate",
    "certificate_name",
    "csr",
    "csr_name",
    "catalog_organization",
    "catalog_domain",
    "user",
    "audit_event",
    "login_attempt",
    "job",
    "private_key",
    "ca_order",
    "ca_order_name",
}

# Texts that find few rows and many in the populated database (tests/populate.py).
FEW, MANY = "host123", "host"


def _cert(**kw) -> Callable:
    return lambda: certificates.query(certificates.CertFilter(**kw))


def _tab(query, **kw) -> Callable:
    return lambda: query(catalog.TabFilter(**kw))


def _csrs(q="", sort="created", direction="desc") -> Callable:
    return lambda: csrs.list_query(q, sort, direction)


def _audit(**kw) -> Callable:
    def build():
        from datetime import timedelta

        from webapp.dbtypes import utcnow

        dates = {}
        if kw.pop("dates", False):
            dates = {"since": utcnow() - timedelta(hours=2), "until": utcnow() - timedelta(hours=1)}
        return audit.query(audit.AuditFilter(**kw, **dates))

    return build


def _orders(**kw) -> Callable:
    return lambda: orders.query(orders.OrderFilter(**kw))


def _both(name: str, make: Callable, sorts, **kw) -> list:
    return [
        (f"{name} sort={s} {d}", make(sort=s, direction=d, **kw))
        for s in sorts
        for d in ("asc", "desc")
    ]


LIST_QUERIES: list[tuple[str, Callable]] = [
    # SSL > Certificates
    *_both("certificates", _cert, certificates.SORTS),
    ("certificates q=name prefix", _cert(q="www.host42")),
    ("certificates q=few", _cert(q=FEW)),
    ("certificates q=many", _cert(q=MANY)),
    ("certificates q=suffix", _cert(q="dept5.example5.com")),
    ("certificates q=serial", _cert(q="0123456789abcdef")),
    ("certificates q=many sort=cn", _cert(q=MANY, sort="cn")),
    *[(f"certificates expiry={e}", _cert(expiry=e)) for e in ("valid", "30", "expired")],
    ("certificates expiry=revoked", _cert(expiry="revoked")),
    ("certificates expiry=suspended", _cert(expiry="suspended")),
    ("certificates expiry=not_yet_valid", _cert(expiry="not_yet_valid")),
    ("certificates q=many not_yet_valid", _cert(q=MANY, expiry="not_yet_valid")),
    ("certificates expiry=7 has_key=yes", _cert(expiry="7", has_key="yes")),
    ("certificates issuer", _cert(issuer="Internal Issuing CA")),
    ("certificates source", _cert(source="entrust")),
    ("certificates has_key=yes", _cert(has_key="yes")),
    ("certificates has_key=no", _cert(has_key="no")),
    ("certificates issuer+has_key=no", _cert(issuer="Internal Issuing CA", has_key="no")),
    ("certificates source+90d+key", _cert(source="entrust", expiry="90", has_key="yes")),
    ("certificates expired+source", _cert(expiry="expired", source="entrust")),
    # SSL > Entrust > Manage > Domains
    *_both("domains", lambda **kw: _tab(catalog.domains_query, **kw), catalog.DOMAIN_SORTS),
    *[
        (f"domains q={q}", _tab(catalog.domains_query, q=q))
        for q in (FEW, MANY, "zone5.example5.com")
    ],
    (f"domains q={MANY} sort=client", _tab(catalog.domains_query, q=MANY, sort="client")),
    ("domains status=PENDING", _tab(catalog.domains_query, status="PENDING")),
    ("domains status=APPROVED", _tab(catalog.domains_query, status="APPROVED")),
    ("domains status=expiring", _tab(catalog.domains_query, status="expiring")),
    ("domains status=expired", _tab(catalog.domains_query, status="expired")),
    ("domains credential", _tab(catalog.domains_query, credential_id=2)),
    ("domains show=gone", _tab(catalog.domains_query, show="gone")),
    ("domains show=all", _tab(catalog.domains_query, show="all")),
    ("domains show=all sort=status", _tab(catalog.domains_query, show="all", sort="status")),
    # Organizations
    *_both("orgs", lambda **kw: _tab(catalog.organizations_query, **kw), catalog.ORG_SORTS),
    *[
        (f"orgs q={q}", _tab(catalog.organizations_query, q=q))
        for q in ("org 00004", "org", "client 0004")
    ],
    ("orgs status", _tab(catalog.organizations_query, status="PENDING")),
    ("orgs kind", _tab(catalog.organizations_query, kind="client")),
    ("orgs credential", _tab(catalog.organizations_query, credential_id=2)),
    ("orgs show=all", _tab(catalog.organizations_query, show="all")),
    ("orgs show=gone", _tab(catalog.organizations_query, show="gone")),
    # Products (a handful per credential: listed, never a growing table)
    *_both("products", lambda **kw: _tab(catalog.products_query, **kw), catalog.PRODUCT_SORTS),
    # SSL > CSRs
    *[
        (f"csrs sort={s} {d}", _csrs(sort=s, direction=d))
        for s in csrs.SORTS
        for d in ("asc", "desc")
    ],
    *[(f"csrs q={q}", _csrs(q=q)) for q in (FEW, MANY, "csr5.example.org")],
    (f"csrs q={MANY} sort=cn", _csrs(q=MANY, sort="cn", direction="asc")),
    # SSL > Entrust (the orders)
    *_both("orders", _orders, orders.SORTS),
    ("orders q=name prefix", _orders(q="www.host42")),
    ("orders q=few", _orders(q=FEW)),
    ("orders q=many", _orders(q=MANY)),
    ("orders q=suffix", _orders(q="shop5.example5.net")),
    ("orders q=tracking ID", _orders(q="5000123")),
    ("orders q=requester", _orders(q="omar")),
    ("orders q=serial", _orders(q=f"{42 * 0x9E3779B97F4A7C15 % (1 << 120):x}"[:10])),
    ("orders q=many sort=cn", _orders(q=MANY, sort="cn")),
    ("orders q=many sort=status desc", _orders(q=MANY, sort="status", direction="desc")),
    ("orders status=PENDING", _orders(status="PENDING")),
    ("orders status=ACTIVE", _orders(status="ACTIVE")),
    ("orders status=@unknown", _orders(status="@unknown")),
    ("orders status=@not_placed", _orders(status="@not_placed")),
    ("orders credential", _orders(credential_id=2)),
    ("orders product", _orders(product="EV_SSL")),
    ("orders expiring=30", _orders(expiring="30")),
    ("orders q=few status=ACTIVE", _orders(q=FEW, status="ACTIVE")),
    # Admin > Users, Admin > Audit, Jobs
    ("users", auth.users_query),
    ("jobs", jobs.query),
    ("audit", _audit()),
    ("audit action", _audit(action="certificate.add")),
    ("audit user", _audit(user="alice")),
    ("audit object", _audit(object="certificate")),
    ("audit object id", _audit(object="certificate:12")),
    ("audit dates", _audit(dates=True)),
]

OTHER_QUERIES: list[tuple[str, Callable]] = [
    ("dashboard counts", dashboard.state_counts),
    ("dashboard pending orders", lambda: orders.pending(10)),
    ("dashboard timeline", dashboard.expiry_timeline),
    ("dashboard urgent", dashboard.urgent),
    ("dashboard activity", dashboard.recent_activity),
    ("certificate issuers", certificates.issuers),
    ("domain statuses", lambda: catalog.statuses(CatalogDomain)),
    ("organization statuses", lambda: catalog.statuses(CatalogOrganization)),
    ("audit actions", audit.actions),
    (
        "audit certificate's order",
        lambda: audit.issuing_order(audit.AuditFilter(object="certificate:12")),
    ),
    ("order filter choices", orders.filter_choices),
    # Entrust > Manage > Credentials: each credential's synced rows, counted up to a bound
    ("credentials tab counts", lambda: credentials.counts([1, 2])),
    (
        # the bound keeps its share of the table (COUNT_CAP is scaled down with the rows)
        "credentials tab counts, bounded",
        lambda: catalog.counts_by_credential([1, 2], up_to=10 * paging.COUNT_CAP + 1),
    ),
    # Import Existing Orders: each step of the certificate phase (a batch from the start and from
    # the middle), what it counts, and the orders of a page held under another credential
    *[
        (
            f"import certificates step {i + 1} after {after}",
            lambda i=i, after=after: importing._certificate_batch(
                1, importing._certificate_steps()[i], after
            ),
        )
        for i in range(3)  # issued, suspended, renewed (Entrust's steps)
        for after in (0, 50_000)
    ],
    ("import certificates count", lambda: importing._with_certificate_count(1)),
    (
        # a page of 1,000 orders keeps its share of the table at 100,000 orders
        "import orders held under another credential",
        lambda: importing._held_elsewhere(2, [str(5_000_000 + i) for i in range(1, 41)]),
    ),
    # The order form's organizations and domains, listed, searched and checked
    ("order form organizations", lambda: catalog.approved_organizations(1, limit=501)),
    (
        "order form organization search",
        lambda: catalog.approved_organizations(1, starting="org 0012", limit=50),
    ),
    (
        "order form organization",
        lambda: catalog.approved_organization(1, 13, "Org 001201 Holdings"),
    ),
    ("order form primary client", lambda: catalog.primary_client_name(1)),
    # The order forms' CSRs: the newest, and the newest a search finds, few or many
    ("order form CSRs", lambda: csrs.recent(100)),
    # Deleting a CSR or a certificate asks whether its key is still needed
    ("key in use", lambda: hooks.emit("key.in_use", key_id=7)),
    *[
        (f"order form CSR search {q}", lambda q=q: csrs.matching(q, 100))
        for q in (FEW, MANY, "csr5.example.org")
    ],
    ("order form domains", lambda: catalog.usable_domains(1, limit=501)),
    ("order form domain search", lambda: catalog.usable_domains(1, matching=FEW, limit=50)),
    (
        "order form domain search by end",
        lambda: catalog.usable_domains(1, matching="zone5.example5.com", limit=50),
    ),
    (
        "order form names' domains",
        lambda: catalog.covering_domains(
            1, ["www.host1201.zone37.example5.com", "*.example1.com"], 13
        ),
    ),
]


@contextmanager
def captured():
    """Every SELECT sent while the block runs, as (sql, parameters)."""
    seen: list[tuple[str, object]] = []

    def listen(_conn, _cursor, statement, parameters, _context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not executemany:
            seen.append((statement, parameters))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def run_pages(build: Callable) -> None:
    """What the list page does: the first page, Next twice, a page by number, and Previous, from
    the middle of the list (at either end, a planner may rightly sort the few rows left)."""
    from webapp.paging import paginate

    first = paginate(build(), 1, 50, cursor=(None, None))
    if first.next_cursor and first.has_next:
        second = paginate(build(), 2, 50, cursor=(first.next_cursor, None))
        if second.has_next:
            paginate(build(), 3, 50, cursor=(second.next_cursor, None))
    middle = max(3, first.pages // 2) if first.exact else 20
    deep = paginate(build(), middle, 50, cursor=(None, None))
    if deep.page > 2:
        paginate(build(), deep.page - 1, 50, cursor=(None, deep.prev_cursor))


# A page's rows by a short list of keys (a narrow search, a page by number): sorting those is
# bounded by the list, not by the table.
_KEY_LIST = re.compile(r"\.(id|certificate_id|csr_id) (IN|= ANY) \(", re.IGNORECASE)
_KEY_LIST_TABLE = re.compile(r"(\w+)\.id (IN|= ANY) \(", re.IGNORECASE)


def dbapi_connection():
    """The raw driver connection under the session (plans are asked for with the statement's own
    placeholders and parameters)."""
    return db.session.connection().connection.dbapi_connection


def sqlite_problems(conn, sql: str, params) -> list[str]:
    """Problems in SQLite's plan of ``sql``: a growing table scanned without an index (but in
    its own order, unfiltered and limited), or scanned whole along one without a LIMIT to stop
    the walk; a sort (temporary B-tree) of rows
    read from a growing table, unless they were fetched by a short list of keys."""
    details = [r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
    limited = re.search(r"\bLIMIT\b", sql, re.IGNORECASE) is not None
    by_keys = bool(_KEY_LIST.search(sql))
    growing = [d for d in details if re.match(r"(SCAN|SEARCH) (\w+)", d) and _table(d) in GROWING]
    problems = []
    # A table walked in its own (rowid) order with nothing to filter reads only the rows the
    # LIMIT takes (a list by id, newest first); any filter could make that walk the whole table.
    # (SQLAlchemy starts the clauses on lines of their own: words, not " WHERE ".)
    filtered = re.search(r"\bWHERE\b", sql, re.IGNORECASE) is not None
    rowid_walk = limited and not filtered and not any("TEMP B-TREE" in d for d in details)
    for detail in growing:
        if detail == f"SCAN {_table(detail)}" and rowid_walk:
            continue
        if detail.startswith("SCAN ") and ("INDEX" not in detail or not limited):
            problems.append(f"full scan: {detail}")
    keyed = {m.group(1) for m in _KEY_LIST_TABLE.finditer(sql)} & GROWING
    for detail in growing:
        if _table(detail) in keyed and "PRIMARY KEY" not in detail:
            problems.append(f"a key list that does not drive the look-up: {detail}")
    if growing and not by_keys:
        problems += [f"sort of the whole result: {d}" for d in details if "TEMP B-TREE" in d]
    return problems


def _table(detail: str) -> str:
    return detail.split()[1]


def postgres_problems(conn, sql: str, params) -> list[str]:
    """The same problems in PostgreSQL's plan of ``sql``: a Seq Scan of a growing table, an index
    walked whole with no Limit above it, a Sort above a growing table (unless by a key list).

    PostgreSQL rightly sorts a few rows fetched through an index rather than walk the index in
    order when it expects few to qualify (a rare filter, the end of a small list). A sort is
    accepted then, if the same query has a plan without it when sorting is off: the index for
    the order exists, and at scale the planner walks it.
    """
    problems = _pg_plan_problems(conn, sql, params)
    sorts = [p for p in problems if p.startswith("sort")]
    if sorts and len(sorts) == len(problems):
        off = ("enable_sort", "enable_bitmapscan", "enable_seqscan")
        with conn.cursor() as cur:
            for name in off:
                cur.execute(f"SET {name} = off")
        try:
            if not _pg_plan_problems(conn, sql, params):
                return []
        finally:
            with conn.cursor() as cur:
                for name in off:
                    cur.execute(f"RESET {name}")
    return problems


def _pg_plan_problems(conn, sql: str, params) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0][0]["Plan"]
    by_keys = bool(_KEY_LIST.search(sql))
    keyed = {m.group(1) for m in _KEY_LIST_TABLE.finditer(sql)} & GROWING
    problems: list[str] = []

    def walk(node, under_sort=False, limited=False):
        kind = node["Node Type"]
        rel = node.get("Relation Name")
        scans = ("Seq Scan", "Index Scan", "Index Only Scan")
        cond = node.get("Index Cond", "")
        # (A list of one key is an equality: "id = 123".)
        by_list = "= ANY" in cond or re.fullmatch(r"\(id = \d+\)", cond)
        if rel in keyed and kind in scans and not by_list:
            problems.append(f"a key list that does not drive the look-up: {kind} on {rel}")
        if rel in GROWING:
            if kind == "Seq Scan":
                problems.append(f"full scan: Seq Scan on {rel}")
            elif "Index" in kind and "Index Cond" not in node and not limited:
                problems.append(f"full scan: {kind} on {rel} with no LIMIT")
            if under_sort and not by_keys:
                problems.append(f"sort of the whole result: {kind} on {rel} under a Sort")
        sorting = under_sort or kind in ("Sort", "Incremental Sort")
        for child in node.get("Plans", []):
            walk(child, sorting, limited or kind == "Limit")

    walk(plan)
    return problems


def problems(seen) -> dict:
    """{sql: what is wrong with its plan} for the statements ``seen``, judged by the rules of
    the database the app is on."""
    conn = dbapi_connection()
    judge = postgres_problems if db.engine.dialect.name == "postgresql" else sqlite_problems
    return {sql: found for sql, params in seen if (found := judge(conn, sql, params))}
