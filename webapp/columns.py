"""A list's sortable column header, as the ``sort_th`` template global.

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
