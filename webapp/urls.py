"""``url_for`` for templates, remembering the URLs it has built.

A page builds twenty to forty URLs (the menu, the stylesheets, each sortable column, the pager),
nearly all the same from one request to the next, and Flask builds each afresh (5 to 15 us:
about 3% of a list page's CPU). A URL depends only on its endpoint and values, and on the request
where the values leave it open: the path the application is mounted at, the blueprint a relative
endpoint (".index") names, and the host and scheme of an external URL; those go into the key.
"""

from __future__ import annotations

from functools import lru_cache

from flask import request
from flask import url_for as build

_KEPT = 4096  # URLs, at most a few hundred bytes each: about 1 MB at worst


def url_for(endpoint: str, **values) -> str:
    try:
        # With the types: 1, 1.0 and True are equal keys but not the same text in a URL.
        items = (*values.items(), *map(type, values.values()))
        return _built(_request_part(endpoint, values), endpoint, items)
    except TypeError:  # a value that cannot be a key (a list of values for one argument)
        return build(endpoint, **values)


def _request_part(endpoint: str, values: dict) -> tuple:
    # The request itself, not the proxy: each attribute read through that costs a microsecond.
    req = request._get_current_object()
    part = (req.environ.get("SCRIPT_NAME", ""),)  # the mount path, as Flask's URL adapter reads it
    if endpoint.startswith("."):
        part += (req.blueprint,)
    if values.get("_external") or "_scheme" in values:
        part += (req.host_url,)
    return part


@lru_cache(maxsize=_KEPT)
def _built(request_part: tuple, endpoint: str, items: tuple) -> str:
    return build(endpoint, **dict(items[: len(items) // 2]))


def local_path(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default``: where to go after an action
    or a sign-in, given by a link or a form, so never another site (``//host``, ``/\\host``, a
    scheme) and never characters a URL built here does not hold (spaces, tabs and line breaks,
    which browsers drop, or anything outside printable ASCII)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and all("!" <= c <= "~" and c != "\\" for c in target)
    ):
        return target
    return default
