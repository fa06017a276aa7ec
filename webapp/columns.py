"""A list's sortable column header, as the ``sort_th`` template global.

A function rather than a macro: every list page has five to nine of them, and a macro call costs
several times what this does (the orders list's header was a tenth of its template's time)."""

from __future__ import annotations

from flask import url_for
from markupsafe import Markup, escape

# Query arguments that place a page in the current order: a new order starts at its first page.
_PLACE = ("page", "after", "before")


def link_args(args) -> dict:
    """The query arguments to carry into a link; url_for's own keywords (endpoint, _method,
    _external ...) never come from a query string."""
    return {k: v for k, v in dict(args).items() if k != "endpoint" and not k.startswith("_")}


def sort_th(label: str, key: str, endpoint: str, args, f, target: str) -> Markup:
    """A ``<th>`` whose link sorts the list by ``key``, keeping the other filters; a second click
    on the current sort flips its direction. ``f``: any filter with .sort and .direction;
    ``target``: the element htmx swaps."""
    a = link_args(args)
    for k in _PLACE:
        a.pop(k, None)
    active = f.sort == key
    ascending = f.direction == "asc"
    a["sort"] = key
    a["dir"] = "desc" if active and ascending else "asc"
    url = escape(url_for(endpoint, **a))
    aria = ""
    arrow = ""
    if active:
        aria = f' aria-sort="{"ascending" if ascending else "descending"}"'
        arrow = " ▲" if ascending else " ▼"
    return Markup(  # noqa: S704 - every value is escaped above or below
        f'<th{aria}><a href="{url}" hx-get="{url}" hx-target="{escape(target)}" '
        f'hx-push-url="true">{escape(label)}{arrow}</a></th>'
    )
