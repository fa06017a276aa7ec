"""Files sent to the browser: safe file names and one way to answer with an attachment."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

from flask import Response, stream_with_context

from webapp import pki

# Characters of a file name made from a name (a common name, say), and of the whole name offered
# with its extension (".fullchain.pem", ".key.pem": an extension cut off would leave a file that
# no program takes for what it is).
STEM_CHARS = 80
FILE_NAME_CHARS = STEM_CHARS + 20


def _host_name(name: str) -> str | None:
    """``name``'s xn-- form when it is an internationalised host name (``*.`` spelt out as
    ``wildcard.``), as ``pki.check_dns_name`` reads one; else None."""
    try:
        host = pki.check_dns_name(name)
    except pki.PkiError:
        return None
    return "wildcard." + host[2:] if host.startswith("*.") else host


def _clean(name: str, limit: int) -> str:
    """Letters and digits of any script, dots, dashes and underscores; anything else (a quote, a
    line break, a space, a control or direction character) as ``_``. At most ``limit``."""
    base = unicodedata.normalize("NFC", name).replace("*", "wildcard")
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in base)[:limit]


def safe_name(name: str, fallback: str = "download", limit: int = STEM_CHARS) -> str:
    """A file name from a common name, at most ``limit`` characters: an internationalised host
    name in its xn-- form (``bücher.example`` as ``xn--bcher-kva.example``), which is how a
    certificate holds it; any other name as it reads, letters of other scripts kept, for
    :func:`attachment` to offer beside an ASCII form."""
    name = name or ""
    host = None if name.isascii() else _host_name(name)
    return (host or _clean(name, limit))[:limit] or fallback


def attachment(body: bytes | str | Iterable[str], mimetype: str, filename: str) -> Response:
    """The response that makes the browser save ``body`` as ``filename`` (a stem of at most
    ``STEM_CHARS`` and its extension, as ``safe_name`` makes them). A header holds Latin-1
    alone: a name outside ASCII is offered as ``filename*`` (RFC 6266, UTF-8 percent-encoded as
    RFC 5987 says), which browsers save, beside an ASCII ``filename`` with ``_`` for each letter
    outside ASCII, for those that do not. An iterable body is streamed within the request's
    context, but after the view has returned: the request's database session is closed by then,
    so a body that reads the database reads through a session of its own
    (:func:`webapp.csvexport.query_rows`)."""
    if not isinstance(body, bytes | str):
        body = stream_with_context(body)
    name = _clean(filename or "", FILE_NAME_CHARS) or "download"
    plain = "".join(c if c.isascii() else "_" for c in name)
    disposition = f'attachment; filename="{plain}"'
    if plain != name:
        disposition += f"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": disposition})
