"""Server-side paging shared by every list page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request
from sqlalchemy import func, select

from webapp.extensions import db

PER_PAGE_CHOICES = (25, 50, 100, 200)


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)


def page_args(default_per_page: int = 50) -> tuple[int, int]:
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", default_per_page, type=int)
    if per_page not in PER_PAGE_CHOICES:
        per_page = default_per_page
    return max(1, page), per_page


def paginate(stmt, page: int, per_page: int, *, key=None) -> Page:
    """One page of ``stmt`` (a ``select`` of one model, filtered and ordered) and the total.

    Three queries, each served by an index when the filter and order lead one: a COUNT of the
    matching keys; the page's keys alone, in order (a deep OFFSET then skips index entries, not
    table rows); and the page's rows by those keys, in the same order. ``key`` is the model's
    primary key column (found from the statement when not given). A page past the end shows the
    last page.
    """
    if key is None:
        entity = stmt.column_descriptions[0]["entity"]
        key = entity.__mapper__.primary_key[0]
    keys = stmt.with_only_columns(key)
    total = db.session.execute(
        select(func.count()).select_from(keys.order_by(None).subquery())
    ).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    page_keys = keys.limit(per_page).offset((page - 1) * per_page)
    rows = db.session.execute(stmt.where(key.in_(page_keys.scalar_subquery()))).scalars()
    return Page(list(rows), page, per_page, total)
