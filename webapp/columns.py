"""A list's sortable column header and its filter form's sort, as the ``sort_th`` and
``sort_fields`` template globals.

A function rather than a macro: every list page has five to nine of them, and a macro call costs
several times what this does (about 1% of a list page's CPU, docs/performance.md)."""

from __future__ import annotations

from markupsafe import Markup, escape

from webapp.paging import carried_args
from webapp.urls import url_for


def sort_th(label: str, key: str, endpoint: str, args, f, target: str) -> Markup:
    """A ``<th>`` whose link sorts the list by ``key``, keeping the other filters; a second click
    on the current sort flips its direction. ``f``: any filter with .sort and .direction;
    ``target``: the element htmx swaps."""
    a = carried_args(args)  # a new order starts at its first page
    active = f.sort == key
    ascending = f.direction == "asc"
    a["sort"] = key
    a["dir"] = "desc" if active and ascending else "asc"
    url = escape(url_for(endpoint, **a))
    aria = ""
    arrow = ""
    if active:
        aria = f' aria-sort="{"ascending" if ascending else "descending"}"'
        # The arrow is for the eye; aria-sort says it to assistive technology.
        arrow = f' <span aria-hidden="true">{"▲" if ascending else "▼"}</span>'
    return Markup(  # noqa: S704 - every value is escaped above or below
        f'<th{aria}><a href="{url}" hx-get="{url}" hx-target="{escape(target)}" '
        f'hx-push-url="true">{escape(label)}{arrow}</a></th>'
    )


def sort_fields(f, form: str, oob: bool = False) -> Markup:
    """A list's filter form's hidden sort and direction (ids ``<form>-sort``, ``<form>-dir``),
    which a filter sends on with the rest. A list sorted in place by a header's link (htmx) sends
    them again out of band (``oob``), so that the next filter keeps that sort rather than the
    one the page was loaded with."""
    swap = ' hx-swap-oob="true"' if oob else ""
    sort, direction = escape(f.sort or ""), escape(f.direction or "")
    return Markup(  # noqa: S704 - every value is escaped above
        f'<input type="hidden" name="sort" id="{form}-sort" value="{sort}"{swap}>'
        f'<input type="hidden" name="dir" id="{form}-dir" value="{direction}"{swap}>'
    )
