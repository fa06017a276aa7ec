"""Server-side paging shared by every list page.

A list is a ``select`` of one model, filtered and ordered by columns that an index leads with the
filter and ends with the order (and the primary key, or another unique column, last). Then:

- the first page is one query: its rows, and beside them their count (a scalar subquery);
- the Next and Previous links carry the sort values of the last (first) row shown, and the next
  page continues from there through the index (keyset paging): page 1,500 costs what page 2 does;
- a page asked for by number alone (``?page=N``) skips index entries, not table rows: the page's
  keys first, then those rows;
- the total is counted only as far as the pager needs: from the first row shown, up to
  ``COUNT_CAP`` rows (then the pager says "more than"), so a count never reads a whole table.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from flask import has_request_context, request
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    and_,
    false,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from webapp.extensions import db
from webapp.validation import INT_MAX

PER_PAGE_CHOICES = (25, 50, 100, 200)
# Rows counted at most after the first one shown; beyond it the pager says "more than".
COUNT_CAP = 1000
CURSOR_ARGS = ("after", "before")
_MAX_CURSOR = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")
BIGINT_MAX = 2**63 - 1


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int  # exact when ``exact``; otherwise the rows known to exist ("more than total")
    exact: bool = True
    next_cursor: str | None = None  # for the Next link (``after=``)
    prev_cursor: str | None = None  # for the Previous link (``before=``)
    # The rows above this page, when they are not (page - 1) pages' worth: rows were added or
    # removed above since the link to it was made (see ``paginate``).
    above: int | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def _start(self) -> int:
        return (self.page - 1) * self.per_page if self.above is None else self.above

    @property
    def has_prev(self) -> bool:
        return self._start > 0

    @property
    def has_next(self) -> bool:
        # "More than total": rows were counted past the cap, which is at least a page's worth,
        # so some follow this page.
        return not self.exact or self._start + self.per_page < self.total

    @property
    def first_index(self) -> int:
        return 0 if not self.items else self._start + 1

    @property
    def last_index(self) -> int:
        return 0 if not self.items else self._start + len(self.items)

    def link_args(self, args: dict, which: str) -> dict:
        """``args`` for the Previous (``which="prev"``) or Next link: the page number, and the
        cursor that lets the next query start at the right row through the index."""
        out = carried_args(args)
        if which == "next":
            out["page"] = self.page + 1
            if self.next_cursor:
                out["after"] = self.next_cursor
        else:
            out["page"] = self.page - 1
            if self.prev_cursor:  # page 1 too: rows added above since would be skipped
                out["before"] = self.prev_cursor
        return out


def carried_args(args) -> dict:
    """The query arguments a link to another page or order of the same list keeps: the filters,
    not the place in the list (page number, cursor), and never url_for's own keywords (endpoint,
    _method, _external ...) from a query string."""
    return {
        k: v
        for k, v in dict(args).items()
        if k not in CURSOR_ARGS and k != "page" and k != "endpoint" and not k.startswith("_")
    }


def page_args(default_per_page: int = 50) -> tuple[int, int]:
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", default_per_page, type=int)
    if per_page not in PER_PAGE_CHOICES:
        per_page = default_per_page
    return max(1, page), per_page


@dataclass(frozen=True)
class Listed:
    """A list whose rows are read as plain values, not as model objects: set on its statement as
    the ``listed`` execution option. ``columns``: what the list shows, named as the attributes the
    template reads (with the primary key and the order's columns, which the pager reads too);
    ``kind``: the class of the items the template gets (``Values`` or a subclass), which hold
    those values as attributes.

    A model object costs several times its values: a state in the session's identity map, a
    callable for each column left out, and its release when the request ends (about 12 us a row
    for an order, a tenth of a list page's CPU).
    """

    columns: tuple
    kind: type

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)


class NotListed(RuntimeError):
    """A listed row was asked for a column its list does not read."""


class Values:
    """A listed row, whose values the pager sets as attributes: the ``kind`` of a ``Listed``
    whose template reads columns only; a subclass adds what the template works out from them.

    Asking it for anything else raises ``NotListed``, not AttributeError, which Jinja would turn
    into an empty cell: a column left out of the list fails its page and its tests."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # Python's and markupsafe's probes (__html__, __copy__ ...)
            raise AttributeError(name)
        raise NotListed(f"{type(self).__name__}.{name}: not among the list's columns")


def _load(stmt, *extra) -> list[tuple]:
    """The rows of ``stmt`` (a select of one model) as ``(item, *extra)``: the model object, or
    an item of its ``Listed`` kind."""
    listed = stmt.get_execution_options().get("listed")
    if listed is None:
        return db.session.execute(stmt.add_columns(*extra)).all()
    rows = db.session.execute(stmt.with_only_columns(*listed.columns, *extra)).all()
    names, n, kind = listed.names, len(listed.columns), listed.kind
    found = []
    for row in rows:
        # Made without __init__ (a third of the cost): zip stops at the last listed column.
        item = kind.__new__(kind)
        item.__dict__.update(zip(names, row, strict=False))
        found.append((item, *row[n:]))
    return found


# -- the order, and cursors -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    column: object  # the Column
    desc: bool
    attr: str  # the model attribute holding the column's value


def _order_keys(stmt, entity) -> list[_Key] | None:
    """The statement's ORDER BY as plain columns of ``entity`` ending with a unique one, or None
    when it cannot drive keyset paging (an expression, NULLS FIRST/LAST, no unique column last)."""
    mapper = inspect(entity)
    keys = []
    for clause in stmt._order_by_clauses:
        desc = False
        if isinstance(clause, UnaryExpression):
            if clause.modifier not in (operators.asc_op, operators.desc_op):
                return None
            desc = clause.modifier is operators.desc_op
            clause = clause.element
        table = getattr(clause, "table", None)
        if table is None or table is not mapper.local_table:
            return None
        column = table.c[clause.key]
        try:
            prop = mapper.get_property_by_column(column)
        except Exception:  # not mapped to an attribute
            return None
        keys.append(_Key(column, desc, prop.key))
    if not keys or not (keys[-1].column.primary_key or keys[-1].column.unique):
        return None
    return keys


def _signature(keys: list[_Key]) -> str:
    return ",".join(f"{k.column.table.name}.{k.column.name}{'-' if k.desc else ''}" for k in keys)


def _encode(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _decode(value, column):
    """The cursor's value for ``column``, checked against its type; ValueError if it does not
    fit (a cursor comes from the URL)."""
    if value is None:
        if not column.nullable:
            raise ValueError("null for a required column")
        return None
    kind = column.type
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise ValueError("not a time")
        when = datetime.fromisoformat(value["t"])
        if when.tzinfo is None:
            raise ValueError("a time without its zone")
        return when.astimezone(UTC)  # OverflowError past the ends of time
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise ValueError("not a boolean")
        return value
    if isinstance(kind, Integer):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not an integer")
        bound = BIGINT_MAX if isinstance(kind, BigInteger) else INT_MAX
        if not -bound - 1 <= value <= bound:
            raise ValueError("beyond what the column holds")
        return value
    if isinstance(kind, String):
        if not isinstance(value, str):
            raise ValueError("not text")
        if "\0" in value or not value.isascii() and _SURROGATE.search(value):
            raise ValueError("text no column holds")  # PostgreSQL takes no NUL; UTF-8 no half
        return value
    raise ValueError("a column type cursors do not carry")


def make_cursor(keys: list[_Key], row) -> str:
    values = [_encode(getattr(row, k.attr)) for k in keys]
    raw = json.dumps([_signature(keys), values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(keys: list[_Key], text: str | None) -> list | None:
    """The row values a cursor carries, or None when it is absent, damaged or made for another
    order (the page then falls back to its number)."""
    if not text or len(text) > _MAX_CURSOR:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        signature, values = json.loads(raw)
        if signature != _signature(keys) or len(values) != len(keys):
            return None
        return [_decode(v, k.column) for v, k in zip(values, keys, strict=True)]
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        return None


# -- keyset conditions ------------------------------------------------------------------------


def _nulls_first(desc: bool) -> bool:
    """Whether NULLs come first in this direction: SQLite sorts them as the smallest value,
    PostgreSQL as the largest."""
    smallest = db.session.get_bind().dialect.name != "postgresql"
    return smallest != desc


def _beyond(key: _Key, value, reverse: bool):
    """``key`` comes strictly after ``value`` in the order (before it when ``reverse``)."""
    col, desc = key.column, key.desc != reverse
    nulls_first = _nulls_first(key.desc) != reverse
    if value is None:
        return col.is_not(None) if nulls_first else false()
    cond = col < value if desc else col > value
    if col.nullable and not nulls_first:
        cond = or_(cond, col.is_(None))
    return cond


def _equal(key: _Key, value):
    return key.column.is_(None) if value is None else key.column == value


def _is_flag(key: _Key) -> bool:
    return isinstance(key.column.type, Boolean) and not key.column.nullable


def _segments(keys: list[_Key], values: list, reverse: bool, inclusive: bool) -> list[list]:
    """The conditions selecting the rows after ``values`` (before them when ``reverse``; from
    them on when ``inclusive``), as index ranges in list order.

    Mostly one range: the leading column from the cursor's value on, then the rest of the key
    compared on those entries. When the leading column may be NULL and the NULLs come after the
    cursor, they are a second range, read only if the first one runs short. A leading yes/no
    column (``gone``) splits the list the same way: the rest of the cursor's part, then the
    other part from its start.
    """
    lead, first = keys[0], values[0]
    if _is_flag(lead) and len(keys) > 1:
        segments = [
            [lead.column == first, *conds]
            for conds in _segments(keys[1:], values[1:], reverse, inclusive)
        ]
        if first == (lead.desc != reverse):  # False then True ascending; True then False
            segments.append([lead.column == (not first)])
        return segments
    terms = []
    for i, key in enumerate(keys):
        same = [_equal(k, v) for k, v in zip(keys[:i], values[:i], strict=False)]
        terms.append(and_(*same, _beyond(key, values[i], reverse)))
    if inclusive:
        terms.append(and_(*[_equal(k, v) for k, v in zip(keys, values, strict=True)]))
    after = or_(*terms)
    col, desc = lead.column, lead.desc != reverse
    nulls_first = _nulls_first(lead.desc) != reverse
    if first is None:
        segments = [[col.is_(None), after]]
        if nulls_first:
            segments.append([col.is_not(None)])
        return segments
    # The leading column's range: an index seek to the cursor's value.
    segments = [[col <= first if desc else col >= first, after]]
    if col.nullable and not nulls_first:
        segments.append([col.is_(None)])
    return segments


def _ordered(keys: list[_Key], reverse: bool) -> list:
    return [(k.column.asc() if k.desc == reverse else k.column.desc()) for k in keys]


# -- paginate -------------------------------------------------------------------------------------


def _cursor_from_request() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, None
    return request.args.get("after"), request.args.get("before")


def _fetch(stmt, keys, segments, reverse: bool, limit: int) -> list:
    """Rows of ``stmt`` in ``segments`` (read in turn until ``limit`` rows)."""
    rows: list = []
    ordered = stmt.order_by(None).order_by(*_ordered(keys, reverse))
    for conds in segments:
        need = limit - len(rows)
        if need <= 0:
            break
        rows += [row[0] for row in _load(ordered.where(*conds).limit(need))]
    return rows


def _with_count(
    stmt, key, conds: list, limit: int, cap: int, by=None, known: int | None = None
) -> tuple[list, int]:
    """Rows of ``stmt`` in ``conds`` up to ``limit``, and how many there are up to ``cap`` from
    the first of them, in one round trip: the count is a scalar subquery beside the rows, which
    the database works out once. ``known``: the count is known already (no subquery).

    With ``by`` (a unique column the list's indexes end with), the page's values of ``by`` are
    read first, then the rows by them. PostgreSQL then reads the index alone for the page, as it
    does for the count, where it could otherwise prefer another index and a filter on the rows
    it fetches (it cannot know that the newest audit events are all sign-ins, say).
    """
    page = (stmt if by is None else stmt.with_only_columns(by)).where(*conds).limit(limit)
    extra = ()
    if known is None:
        count = select(func.count()).select_from(
            stmt.with_only_columns(key if by is None else by).where(*conds).limit(cap).subquery()
        )
        extra = (count.scalar_subquery().label("counted"),)
    if by is None:
        found = _load(page, *extra)
    else:  # the page's keys alone; _rows_by reads their rows
        found = db.session.execute(page.add_columns(*extra)).all()
    firsts = [row[0] for row in found]
    total = known if known is not None else (found[0][1] if found else 0)
    return (firsts if by is None else _rows_by(stmt, by, firsts)), total


def _rows_by(stmt, key, values: list) -> list:
    """The rows of ``stmt``'s model whose ``key`` is in ``values``, in that order, with the
    statement's loader options (deferred columns, related rows); the filters already chose the
    values."""
    if not values:
        return []
    entity = stmt.column_descriptions[0]["entity"]
    by_keys = select(entity).options(*stmt._with_options).where(key.in_(values))
    if (listed := stmt.get_execution_options().get("listed")) is not None:
        by_keys = by_keys.execution_options(listed=listed)
    rows = [row[0] for row in _load(by_keys)]
    attr = inspect(entity).get_property_by_column(key).key
    by_key = {getattr(r, attr): r for r in rows}
    return [by_key[k] for k in values if k in by_key]


def _count(stmt, key, conds_list, cap: int) -> int:
    """Rows of ``stmt`` (restricted to each of ``conds_list`` in turn) up to ``cap``, counted
    along the list's own order: the walk the page itself makes, through the same index, and one
    that stops at ``cap`` whatever the planner thinks of the filter."""
    keys_only = stmt.with_only_columns(key)
    total = 0
    for conds in conds_list:
        need = cap - total
        if need <= 0:
            break
        sub = keys_only.where(*conds).limit(need).subquery()
        total += db.session.execute(select(func.count()).select_from(sub)).scalar_one()
    return total


# Rows above a page reached by Next or Previous that are counted to check where it is (see
# ``paginate``): a cost that does not grow with the list.
RECOUNT_ABOVE = 1000


def paginate(
    stmt,
    page: int,
    per_page: int,
    *,
    key=None,
    cursor: tuple[str | None, str | None] | None = None,
    count_cap: int | None = None,
) -> Page:
    """One page of ``stmt`` (a ``select`` of one model, filtered and ordered), its links' cursors
    and how many rows there are (exactly up to ``count_cap`` from the page's first row on).

    ``key`` is the model's primary key column (found from the statement when not given).
    ``cursor`` is ``(after, before)``, read from the request's query string when not given.
    ``count_cap`` defaults to the statement's ``count_cap`` execution option (a search that
    tests every row it walks counts fewer, see ``search.narrowed``), else ``COUNT_CAP``. A page
    past the end shows the last page when the count reaches it, else the first.
    """
    entity = stmt.column_descriptions[0]["entity"]
    if key is None:
        key = entity.__mapper__.primary_key[0]
    if count_cap is None:
        count_cap = stmt.get_execution_options().get("count_cap", COUNT_CAP)
    # At least a page's worth: the count says whether a row follows the page (Next).
    count_cap = max(count_cap, per_page)
    page = max(1, page)
    keys = _order_keys(stmt, entity)
    after, before = cursor if cursor is not None else _cursor_from_request()
    items, counted = None, None
    # PostgreSQL: the page's keys through the index first (see _with_count).
    by = None
    if db.session.get_bind().dialect.name == "postgresql":
        by = keys[-1].column if keys is not None else key
    if keys is not None and (page > 1 or before):
        if page > 1 and (values := read_cursor(keys, after)) is not None:
            segments = _segments(keys, values, False, False)
            if len(segments) == 1:  # the rows after the cursor, counted from the first of them
                ordered = stmt.order_by(None).order_by(*_ordered(keys, False))
                items, counted = _with_count(ordered, key, segments[0], per_page, count_cap + 1, by)
            else:
                items = _fetch(stmt, keys, segments, False, per_page)
            if not items:  # nothing after the cursor any more: start again
                items, counted, page = None, None, 1
        elif (values := read_cursor(keys, before)) is not None:
            # The page before the cursor, and whether rows come before it (one more is read).
            segments = _segments(keys, values, True, False)
            found = _fetch(stmt, keys, segments, True, per_page + 1)
            found.reverse()
            if len(found) > per_page:  # rows before it: not the first page (rows were added)
                items, page = found[1:], max(page, 2)
            elif len(found) == per_page:  # the list's first rows (rows were removed before)
                items, page = found, 1
            else:  # fewer rows before the cursor than a page: the first page, from its start
                items, page = None, 1
    above = None
    if items and page > 1 and (page - 1) * per_page <= RECOUNT_ABOVE:
        # The page number came with the link: rows added or removed above since then moved the
        # cursor's rows. Near the top, where the rows above are few to count, they are counted,
        # so that the page says where its rows are ("6-30 of 173", not "26-50 of 168"); the rows
        # are still those next to the cursor, so that none is skipped.
        first = [getattr(items[0], k.attr) for k in keys]
        backwards = stmt.order_by(None).order_by(*_ordered(keys, True))
        counted_above = _count(
            backwards, key, _segments(keys, first, True, False), RECOUNT_ABOVE + 1
        )
        if counted_above != (page - 1) * per_page and counted_above <= RECOUNT_ABOVE:
            above, page = counted_above, counted_above // per_page + 1
    if items is None and page > 1:
        # By number: the order's last (unique) column is the key the index holds, the primary
        # key otherwise.
        by = keys[-1].column if keys is not None else key
        items = _by_offset(stmt, by, page, per_page)
        if not items:  # past the end: the last page, when the capped count reaches it
            total = _count(stmt, key, [[]], count_cap + 1)
            page = -(-total // per_page) if 0 < total <= count_cap else 1
            items = _by_offset(stmt, by, page, per_page) if page > 1 else None
    if items is None:
        page = 1
        known = stmt.get_execution_options().get("known_count")  # see search.narrowed
        known = None if known is None else min(known, count_cap + 1)
        items, counted = _with_count(stmt, key, [], per_page, count_cap + 1, by, known)

    start = (page - 1) * per_page if above is None else above
    if not items:
        return Page([], page, per_page, start)
    if counted is not None:
        pass
    elif keys is not None:
        first = [getattr(items[0], k.attr) for k in keys]
        counted = _count(stmt, key, _segments(keys, first, False, True), count_cap + 1)
    else:
        counted = _count(stmt, key, [[]], start + count_cap + 1) - start
    exact = counted <= count_cap
    result = Page(list(items), page, per_page, start + min(counted, count_cap), exact, above=above)
    if keys is not None:
        result.next_cursor = make_cursor(keys, items[-1])
        result.prev_cursor = make_cursor(keys, items[0])
    return result


def _by_offset(stmt, key, page: int, per_page: int) -> list:
    """A page by its number: its keys alone through the index, skipping entries rather than
    rows, then those rows, in the keys' order."""
    page_keys = (
        db.session.execute(
            stmt.with_only_columns(key).limit(per_page).offset((page - 1) * per_page)
        )
        .scalars()
        .all()
    )
    return _rows_by(stmt, key, page_keys)


# -- filter drop-downs ----------------------------------------------------------------------------


_DISTINCT: dict = {}


def distinct_values(column, limit: int = 500) -> list:
    """The distinct non-empty values of ``column`` in order, for a filter drop-down.

    ``column`` must lead an index: the values are found one index seek each (the next value
    after the last one found), so the cost follows the number of values, not of rows. The
    statement is built once per column.
    """
    stmt = _DISTINCT.get((column, limit))
    if stmt is None:
        step = select(column).where(column.is_not(None)).order_by(column).limit(1)
        found = select(step.scalar_subquery().label("v")).cte("distinct_values", recursive=True)
        nxt = select(
            select(column).where(column > found.c.v).order_by(column).limit(1).scalar_subquery()
        ).where(found.c.v.is_not(None))
        found = found.union_all(nxt)
        stmt = _DISTINCT[(column, limit)] = (
            select(found.c.v).where(found.c.v.is_not(None)).limit(limit)
        )
    return [v for v in db.session.execute(stmt).scalars() if v != ""]
