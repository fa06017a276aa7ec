"""Files sent to the browser: safe file names and one way to answer with an attachment."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, stream_with_context

# Characters of a file name made from a name (a common name, say), and of the whole name offered
# with its extension (".fullchain.pem", ".key.pem": an extension cut off would leave a file that
# no program takes for what it is).
STEM_CHARS = 80
FILE_NAME_CHARS = STEM_CHARS + 20


def safe_name(name: str, fallback: str = "download", limit: int = STEM_CHARS) -> str:
    """A file name from a common name: ASCII letters, digits, dots, dashes and underscores only
    (a header holds Latin-1 alone: a name in another script would fail the response), at most
    ``limit`` characters."""
    base = (name or "").replace("*", "wildcard")
    return (
        "".join(c if c.isascii() and c.isalnum() or c in ".-_" else "_" for c in base)[:limit]
        or fallback
    )


def attachment(body: bytes | str | Iterable[str], mimetype: str, filename: str) -> Response:
    """The response that makes the browser save ``body`` as ``filename`` (a stem of at most
    ``STEM_CHARS`` and its extension, as ``safe_name`` makes them). An iterable body is
    streamed within the request's context, but after the view has returned: the request's
    database session is closed by then, so a body that reads the database reads through a
    session of its own (:func:`webapp.csvexport.query_rows`)."""
    if not isinstance(body, bytes | str):
        body = stream_with_context(body)
    name = safe_name(filename, limit=FILE_NAME_CHARS)
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
