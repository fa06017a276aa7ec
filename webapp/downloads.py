"""Files sent to the browser: safe file names and one way to answer with an attachment."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, stream_with_context


def safe_name(name: str, fallback: str = "download") -> str:
    """A file name from a common name: ASCII letters, digits, dots, dashes and underscores only
    (a header holds Latin-1 alone: a name in another script would fail the response)."""
    base = (name or "").replace("*", "wildcard")
    return (
        "".join(c if c.isascii() and c.isalnum() or c in ".-_" else "_" for c in base)[:80]
        or fallback
    )


def attachment(body: bytes | str | Iterable[str], mimetype: str, filename: str) -> Response:
    """The response that makes the browser save ``body`` as ``filename``. An iterable body is
    streamed within the request's context, but after the view has returned: the request's
    database session is closed by then, so a body that reads the database reads through a
    session of its own (:func:`webapp.csvexport.query_rows`)."""
    if not isinstance(body, bytes | str):
        body = stream_with_context(body)
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{safe_name(filename)}"'},
    )
