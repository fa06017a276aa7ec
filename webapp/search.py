"""Search text in SQL: what the user typed is matched literally, never as a pattern.

List searches are "starts with" (and, over a reversed copy of a name, "ends with"): an index
range on both SQLite and PostgreSQL, where "contains" (``%q%``) reads the whole table.
:func:`narrowed` turns such a range into a condition that keeps a sorted page cheap whether it
matches three rows or half the table.
"""

from __future__ import annotations

from sqlalchemy import and_, case, false, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from webapp.extensions import db

ESCAPE = "\\"
# Matches up to which a search's page sorts them; beyond it, the page walks its sort order.
NARROW = 2000


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (``%``, ``_``) and the escape character escaped."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def contains(column, text: str):
    """Case-insensitive "contains ``text``" on ``column`` (``text`` taken literally). It reads
    every row: for small tables only; lists use :func:`starts_with`."""
    like = "%" + escape_like(text.strip().lower()) + "%"
    return func.lower(column).like(like, escape=ESCAPE)


def starts_with(column, prefix: str):
    """``column`` starts with ``prefix`` (case as stored), as an index range on every backend
    (LIKE is not one on SQLite, nor on PostgreSQL without a special operator class)."""
    if not prefix:
        return column.is_not(None)
    if ord(prefix[-1]) >= 0x10FFFF:  # no successor: the top of the range is open
        return column >= prefix
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < upper)


def prefixed(key, column, prefix: str, *conds):
    """A select of ``key`` for the rows whose ``column`` starts with ``prefix`` (and ``conds``),
    walked in ``column``'s order so that it is an index range on every planner."""
    return select(key).where(*conds, starts_with(column, prefix)).order_by(column)


class _Unindexed(ColumnElement):
    """A column that SQLite must not use an index for (``+column``); itself elsewhere."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _plain(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _unary_plus(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)


def unindexed(column):
    """``column``, tested on the rows an index walk reads rather than used to pick an index.

    SQLite takes ``x IS NULL`` for an equality on an index holding ``x`` and then sorts runs
    of the walk's order; ``+x IS NULL`` it only tests. Other databases get the column itself.
    """
    return _Unindexed(column)


def has_row(correlated):
    """Whether the correlated select finds a row, looked up for each row of the outer query (its
    index on the correlation, then LIMIT 1). Unlike EXISTS, no planner turns it into reading
    every matching row first (a semi-join, a hashed subplan)."""
    return correlated.limit(1).scalar_subquery().is_not(None)


def narrowed(candidates, key, test, limit: int | None = None):
    """A filter for a sorted page, chosen by how much it matches.

    ``candidates`` are selects of keys, each an index range (a name that starts with the text,
    one that ends with it, see :func:`prefixed`); ``test`` is the same condition for one row.
    Up to ``limit`` candidates in all: ``key IN (them)``, and the page sorts those few. More:
    ``test`` on each row as the page walks its own order, which finds a page within a few hundred
    rows when the test matches that many (written so that no planner uses an index for it, nor
    guesses that it matches few rows). Either way the page costs about the same at 10,000 rows
    as at 100,000. Each range is read on its own, so that it stops at ``limit``.
    """
    limit = NARROW if limit is None else limit
    found: set = set()
    for select_ in candidates:
        found.update(db.session.execute(select_.limit(limit + 1 - len(found))).scalars())
        if len(found) > limit:
            return case((test, 1)).is_not(None)
    return key.in_(sorted(found)) if found else false()
