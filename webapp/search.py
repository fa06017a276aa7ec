"""Search text in SQL: what the user typed is matched literally, never as a pattern.

List searches are "starts with" (and, over a reversed copy of a name, "ends with"): an index
range on both SQLite and PostgreSQL, where "contains" (``%q%``) reads the whole table.
:func:`narrowed` filters a list by such ranges in the way that keeps a sorted page cheap whether
they match three rows or half the table.
"""

from __future__ import annotations

import json

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from webapp import pki
from webapp.dbtypes import CodePointString
from webapp.extensions import db

ESCAPE = "\\"
# Matches up to which a search's page sorts them; beyond it, the page walks its sort order.
NARROW = 2000
# Rows the pager counts ahead when the page walks its order testing each row.
WALKED_COUNT = 100


def name_forms(text: str) -> list[str]:
    """``text`` (a name, or the start or end of one, lower case) and, when it holds an
    internationalised label, the same name in its other form: ``bücher.example`` and
    ``xn--bcher-kva.example`` find each other. A certificate holds a host name in its xn-- form,
    and a user types it as it reads. Only whole labels convert ("büch" is no label's start in
    xn-- form); a label that does not convert leaves the text as typed."""
    forms = [text]
    other = []
    for label in text.split("."):
        try:
            if not label.isascii():
                label = pki.a_label(label)
            elif label.startswith("xn--"):
                label = pki.u_label(label)
        except UnicodeError:
            return forms
        other.append(label)
    converted = ".".join(other)
    if converted != text:
        forms.append(converted)
    return forms


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
    (LIKE is not one on SQLite, nor on PostgreSQL without a special operator class). The range
    is exact only in code-point order, so the column must be declared with
    ``dbtypes.code_point_text``."""
    if not isinstance(column.type, CodePointString):
        raise TypeError(f"{column} is searched by range: declare it with code_point_text")
    if not prefix:
        return column.is_not(None)
    # The range ends before the first text past every one that starts with the prefix: the
    # prefix with its last character that has a next one moved on (trailing U+10FFFF have none).
    head = prefix.rstrip(chr(0x10FFFF))
    if not head:  # nothing above it: the top of the range is open
        return column >= prefix
    following = ord(head[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates: no text holds one
        following = 0xE000
    return and_(column >= prefix, column < head[:-1] + chr(following))


def listed_name_matches(names, text: str):
    """One of the comma-separated names in ``names`` (an SQL text expression) starts or ends with
    ``text`` (lower case): the same test as a range over a name table's ``value`` or ``reversed``
    column, on the row itself, for a page that tests each row it walks."""
    text = escape_like(text)
    joined = func.lower(literal(",") + names + literal(","))
    return or_(
        joined.like("%," + text + "%", escape=ESCAPE), joined.like("%" + text + ",%", escape=ESCAPE)
    )


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


class _KeyArray(TypeDecorator):
    """A list of integer keys as one parameter: a JSON array for SQLite, an array elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Integer))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value, dialect):
        return value if dialect.name == "postgresql" else json.dumps(value)


def in_keys(key, keys: list[int]):
    """``key`` is one of ``keys`` (integers), with the keys as one parameter, so that the
    statement is the same (and compiled once) whatever their number: SQLite reads them from a
    JSON array, PostgreSQL from an array."""
    keys = bindparam(None, list(keys), type_=_KeyArray(), unique=True)
    if db.session.get_bind().dialect.name == "postgresql":
        return key == func.any(keys)
    return key.in_(select(literal_column("value")).select_from(func.json_each(keys)))


def narrowed(stmt, candidates, key, test, limit: int | None = None):
    """``stmt`` filtered for a sorted page, the way chosen by how much the filter matches.

    ``candidates`` are selects of keys, each an index range (a name that starts with the text,
    one that ends with it, see :func:`prefixed`); ``test`` is the same condition for one row.
    Up to ``limit`` candidates in all: ``key IN (them)``, and the page sorts those few. More:
    ``test`` on each row as the page walks its own order, which finds a page within a few hundred
    rows when the test matches that many (written so that no planner uses an index for it, nor
    guesses that it matches few rows); the pager then counts only ``WALKED_COUNT`` rows ahead,
    each one tested. Either way the page costs about the same at 10,000 rows as at 100,000. Each
    range is read on its own, so that it stops at ``limit``. When nothing else filters ``stmt``,
    the few keys found are its rows, and their number is its count (the ``known_count``
    execution option, which the pager reads instead of looking each of them up again).
    """
    limit = NARROW if limit is None else limit
    conn = db.session.connection()
    counted = 0
    for select_ in candidates:  # how many, first: fetching thousands of keys costs more
        sub = select_.limit(limit + 1 - counted).subquery()
        counted += conn.execute(select(func.count()).select_from(sub)).scalar_one()
        if counted > limit:
            walked = stmt.where(case((test, 1)).is_not(None))
            return walked.execution_options(count_cap=WALKED_COUNT)
    found = {k for sel in candidates for k in conn.execute(sel).scalars()} if counted else ()
    if not found:
        return stmt.where(false())
    few = stmt.where(in_keys(key, sorted(found)))
    if stmt.whereclause is None:
        # Nothing else filters the list (a select of one model, see webapp.paging): each key
        # found is one of its rows, so the pager knows the count without a query (which would
        # look up every one of them again).
        few = few.execution_options(known_count=len(found))
    return few
