"""Small helpers shared by tests."""

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
