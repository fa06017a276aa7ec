"""Moving an install's data to another database (SQLite to PostgreSQL), rows and ids as they are.

``copy(source_url)`` copies every table of the source into the app's own database, which must be
migrated to the same revision and still empty. Rows keep their ids (the audit chain, sealed
secrets and every link stay valid: the instance folder and its master key are the same); on
PostgreSQL each id sequence is then moved past the largest id. Tables are copied parents first,
each in primary-key order, in batches, so memory does not grow with the data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, exc, func, inspect, select, text
from sqlalchemy.engine import URL, make_url

from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.scheduler import SchedulerLease

BATCH = 2000


class CopyError(RuntimeError):
    """The copy cannot start (or did not come out equal); the message says why."""


def _revision(conn) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("select version_num from alembic_version")).scalar()


def source(source_url: str) -> URL:
    """``source_url`` parsed; CopyError when it is no database URL, or names an SQLite file that
    is not there (SQLite would make an empty one)."""
    try:
        url = make_url(source_url)
    except exc.ArgumentError:
        raise CopyError(
            f"{source_url!r} is not a database URL; an SQLite file is named "
            "sqlite:////absolute/path/to/certdesk.db"
        ) from None
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise CopyError(f"There is no SQLite database at {url.database or '(no path)'}.")
    return url


def _has_sqlite_sequence(conn) -> bool:
    return (
        conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
        ).first()
        is not None
    )


def _last_ids(src, tables) -> dict[str, int]:
    """The last id each table of ``src`` gave (deleted rows' too), where the database keeps it:
    SQLite's ``sqlite_sequence`` (the tables that never reuse an id), PostgreSQL's sequences."""
    if src.dialect.name == "sqlite":
        if not _has_sqlite_sequence(src):
            return {}
        return {
            name: int(seq)
            for name, seq in src.execute(text("SELECT name, seq FROM sqlite_sequence"))
        }
    if src.dialect.name != "postgresql":
        return {}
    given = {}
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and _is_int(pk[0]):
            last = src.execute(
                text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:t, :c))"),
                {"t": table.name, "c": pk[0].name},
            ).scalar()
            if last is not None:
                given[table.name] = int(last)
    return given


def copy(source_url: str, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Copy every row of ``source_url`` into this app's database; returns rows per table.

    Raises CopyError when the two are at different migration revisions, when this database
    already holds data, or when a table's row count differs afterwards."""
    target = db.engine
    if str(target.url) == source_url:
        raise CopyError("The source is this database itself.")
    url = source(source_url)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = create_engine(url)
    except (exc.NoSuchModuleError, ImportError) as error:
        raise CopyError(f"{shown} cannot be opened here: {error}") from None
    tables = [t for t in db.metadata.sorted_tables if t.name != "alembic_version"]
    counts: dict[str, int] = {}
    try:
        try:
            src = engine.connect()
        except exc.OperationalError as error:
            raise CopyError(f"{shown} cannot be opened: {error.orig}") from None
        with src, target.begin() as dst:
            _refuse_a_running_source(src)
            have, want = _revision(src), _revision(dst)
            if have != want:
                raise CopyError(
                    f"The source is at migration {have or 'none'} and this database at "
                    f"{want or 'none'}: upgrade both to the same version first "
                    "(`certdesk db upgrade` with each DATABASE_URL)."
                )
            busy = [
                t.name
                for t in tables
                if t.name not in ("setting", "audit_head")
                and dst.execute(select(func.count()).select_from(t)).scalar()
            ]
            if busy:
                raise CopyError(
                    f"This database already holds data ({', '.join(busy[:5])}); copy into a new, "
                    "empty database."
                )
            given = _last_ids(src, tables)
            for table in tables:
                # Rows a migration or the first start wrote (the audit head, the key check)
                # are replaced by the source's.
                dst.execute(table.delete())
                order = list(table.primary_key.columns)
                result = src.execution_options(yield_per=BATCH).execute(
                    select(table).order_by(*order)
                )
                n = 0
                for rows in result.partitions(BATCH):
                    dst.execute(table.insert(), [dict(r._mapping) for r in rows])
                    n += len(rows)
                counts[table.name] = n
                echo(f"  {table.name}: {n:,} rows")
            # The next id of each table follows the last one the source ever gave, not only the
            # highest it holds: a row deleted before the copy must not lend its id (and its
            # history in the audit trail) to a new one.
            if dst.dialect.name == "postgresql":
                for table in tables:
                    pk = list(table.primary_key.columns)
                    if len(pk) == 1 and _is_int(pk[0]):
                        top = dst.execute(select(func.max(pk[0]))).scalar() or 0
                        top = max(top, given.get(table.name, 0))
                        dst.execute(
                            text("select setval(pg_get_serial_sequence(:t, :c), :n, false)"),
                            {"t": table.name, "c": pk[0].name, "n": top + 1},
                        )
            elif given and _has_sqlite_sequence(dst):
                for name, last in given.items():
                    dst.execute(
                        text("UPDATE sqlite_sequence SET seq = max(seq, :n) WHERE name = :t"),
                        {"t": name, "n": last},
                    )
            for table in tables:
                copied = dst.execute(select(func.count()).select_from(table)).scalar()
                if copied != counts[table.name]:
                    raise CopyError(
                        f"{table.name}: {copied} rows arrived of {counts[table.name]}; "
                        "nothing was kept."
                    )
    finally:
        engine.dispose()
    return counts


def _refuse_a_running_source(src) -> None:
    """A CertDesk still running on the source would go on writing there (sign-ins, audit events,
    orders placed) after its rows were read: what it wrote would be missing from the copy. Its
    scheduler's lease says it runs (see webapp.scheduler)."""
    table = SchedulerLease.__table__
    if not inspect(src).has_table(table.name):
        return
    live = src.execute(
        select(table.c.holder, table.c.expires_at).where(table.c.expires_at > utcnow())
    ).first()
    if live is not None:
        raise CopyError(
            f"CertDesk is running on the source database (its scheduler is held by {live[0]}): "
            "stop it first, or what it writes during and after the copy is lost. If it is "
            f"stopped already (killed, or crashed), its hold ends at {live[1]:%H:%M:%S} UTC: run "
            "this again then."
        )


def _is_int(column) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False
