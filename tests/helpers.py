"""Small helpers shared by tests."""

from contextlib import contextmanager

HTMX = {"HX-Request": "true"}
PASSWORD = "correct horse battery"


def make_order(ca_order_id="5000001", status="ACTIVE", phase="issued", **values):
    """An order row of a stand-in credential (no CA behind it), committed."""
    from webapp.credentials.models import EcsCredential
    from webapp.extensions import db
    from webapp.orders import records
    from webapp.orders.models import Order

    cred = db.session.query(EcsCredential).filter_by(name="Stand-in").first()
    if cred is None:
        cred = EcsCredential(name="Stand-in", api_user="nobody")
        db.session.add(cred)
        db.session.flush()
    values.setdefault("common_name", "order.example.com")
    row = Order(
        credential_id=cred.id,
        ca_order_id=ca_order_id,
        ca_order_number=int(ca_order_id) if ca_order_id and ca_order_id.isdigit() else None,
        status=status,
        phase=phase,
        **values,
    )
    records.index_search(row)
    db.session.add(row)
    db.session.commit()
    return row


def analyzed_tables(sqlite_connection) -> set:
    """The tables SQLite's planner has statistics for (``sqlite_stat1`` exists once ANALYZE has
    run), read through a ``sqlite3`` connection."""
    if not sqlite_connection.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).fetchone():
        return set()
    return {row[0] for row in sqlite_connection.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}


def planned_rows(table: str) -> int | None:
    """The row count SQLite's planner holds for ``table``, read through the app's session (None
    before ANALYZE has counted it)."""
    from webapp.extensions import db

    conn = db.session.connection().connection.driver_connection
    if not analyzed_tables(conn):
        return None
    found = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ?", (table,)).fetchone()
    return int(found[0].split()[0]) if found else None


def at_once(app, call, n: int = 2, *, line_up_seconds: float = 1.0) -> list:
    """Run ``call()`` in ``n`` threads, each with its own app context (and so its own database
    session), lined up to reach the database together: another connection holds the turn of job
    starts (``jobs.hold_starts``) until every thread has had ``line_up_seconds`` to get to it.
    Returns what each call returned or raised."""
    import threading
    import time

    from webapp.extensions import db
    from webapp.jobs import service as jobs

    held, release = threading.Event(), threading.Event()
    outcomes: list = [None] * n

    def hold():
        with app.app_context():
            jobs.hold_starts()
            held.set()
            release.wait(30)
            db.session.rollback()

    def run(i):
        with app.app_context():
            try:
                outcomes[i] = call()
            except Exception as exc:
                outcomes[i] = exc

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(line_up_seconds)
    release.set()
    holder.join()
    for t in threads:
        t.join(120)
    return outcomes


@contextmanager
def workers_held(app):
    """Jobs run in the app's real worker pool, cut to one worker that a job holds until the block
    ends: jobs started meanwhile wait in the pool's queue, unfinished. Yields the holding job's
    id."""
    import threading

    from webapp.extensions import db
    from webapp.jobs import service as jobs
    from webapp.settings import service as settings

    release = threading.Event()

    def hold(ctx):
        release.wait(60)
        return {}

    jobs.register("test.hold-worker", hold)
    settings.put(jobs.WORKERS, 1)
    db.session.commit()
    inline = app.config["JOBS_RUN_INLINE"]
    app.config["JOBS_RUN_INLINE"] = False
    try:
        yield jobs.start("test.hold-worker", "Holds the only worker").id
    finally:
        release.set()
        app.config["JOBS_RUN_INLINE"] = inline


def wait_finished(*job_ids, seconds: float = 60) -> None:
    """Wait until every one of the jobs has finished (run in the worker pool)."""
    import time

    from webapp.extensions import db
    from webapp.jobs.models import Job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.expire_all()
        if all(db.session.get(Job, i).finished for i in job_ids):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs {job_ids} did not finish in {seconds} s")


def together(app, *calls, timeout: float = 60) -> list:
    """Run each call on its own thread, in its own app context (so its own database session),
    all released at once. Returns what each call returned or raised, in order."""
    import threading

    from webapp.extensions import db

    start = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        with app.app_context():
            start.wait()
            try:
                outcomes[i] = call()
            except Exception as exc:  # the caller's assertions say what was expected
                outcomes[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return outcomes
