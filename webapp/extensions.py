"""Extensions, created unbound and bound to the app in create_app."""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def conflict_insert(conn, table):
    """An INSERT into ``table`` that takes ``on_conflict_do_nothing`` / ``on_conflict_do_update``:
    PostgreSQL's or SQLite's, as ``conn`` is (both spell ON CONFLICT the same)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def take_turn(key: int) -> None:
    """From here to the end of the transaction, others taking the same turn wait: for a check
    and the change it allows (the throttle and the try, the last administrator and the role).
    PostgreSQL: a transaction-level advisory lock on ``key``. SQLite: its one writer, which a
    write that changes nothing takes (whatever the key)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(key)))
    else:
        db.session.execute(text("UPDATE setting SET key = key WHERE 0"))


# The page cache (KiB) of a SQLite transaction that changes tens of thousands of rows at once.
LARGE_WRITE_CACHE_KIB = 64 * 1024


@contextmanager
def large_write() -> Iterator[None]:
    """Within the block, the session's SQLite connection has a page cache that holds the pages a
    large change writes (deleting 20,000 orders: some 40 MB of table and index pages), so none of
    them is written out to the WAL and read back before the commit, as with the default 2 MB.
    The block ends before the commit and puts the size back: the pages the transaction changed
    stay until it ends, then the cache shrinks to its usual size. PostgreSQL: nothing."""
    raw = db.session.connection().connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        yield
        return
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size=-{LARGE_WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        with suppress(sqlite3.Error):  # the connection is gone (and its cache with it)
            raw.execute(f"PRAGMA cache_size={int(before)}")


# How long a SQLite statement waits for another connection's write lock before it gives up with
# "database is locked" (the request then answers 503, see webapp.errors).
BUSY_TIMEOUT_MS = 10_000
# How often a pooled SQLite connection looks whether ANALYZE has changed the planner's statistics.
STATISTICS_CHECK_SECONDS = 30.0
# Pages are read through a memory map of the first 256 MB of the file rather than a read() each:
# about a fifth less system time per page of the lists at 100,000 rows (docs/performance.md). The
# mapped pages are the kernel's page cache, shared, counted in a worker's RSS as file pages.
MMAP_BYTES = 256 * 1024 * 1024
_STATISTICS = (
    "SELECT group_concat(s, ';') FROM (SELECT tbl || ' ' || ifnull(idx, '') || ' ' || stat AS s"
    " FROM sqlite_stat1 ORDER BY tbl, idx)"
)


def _statistics(dbapi_connection) -> str | None:
    try:
        return dbapi_connection.execute(_STATISTICS).fetchone()[0]
    except sqlite3.OperationalError:  # no sqlite_stat1: ANALYZE never ran
        return None


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, record):
    """WAL for concurrent readers, foreign keys enforced, a wait instead of 'database is locked',
    reads through a memory map.
    Notes the planner statistics the connection opened with (see _plan_by_current_statistics)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        in_memory = cur.execute("PRAGMA database_list").fetchone()[2] == ""
        cur.close()
        if record is not None and not in_memory:  # a database in memory ends with its connection
            record.info["statistics"] = _statistics(dbapi_connection)
            record.info["statistics_due"] = time.monotonic() + STATISTICS_CHECK_SECONDS


@event.listens_for(Pool, "checkout")
def _plan_by_current_statistics(dbapi_connection, record, _proxy):
    """A SQLite connection reads the planner's statistics when it opens, and not when another
    connection (the hourly task, an import, another process) runs ANALYZE again. So a pooled
    connection compares them, at most every STATISTICS_CHECK_SECONDS, with those it opened with,
    and is opened again (about 1 ms) when they changed: every connection of every process plans by
    the current statistics within that time."""
    info = record.info
    due = info.get("statistics_due")
    if due is None or time.monotonic() < due:
        return
    info["statistics_due"] = time.monotonic() + STATISTICS_CHECK_SECONDS
    if _statistics(dbapi_connection) != info["statistics"]:
        raise DisconnectionError("the planner statistics changed: opening the connection again")
