"""Each request's id, and the access log.

Every answer carries ``X-Request-Id``, a short random id that ends each line CertDesk logs while
handling the request (an unhandled error's among them: webapp.logsafe), so one request's lines
can be told apart from the others' and matched with what a user or a proxy saw. With ACCESS_LOG
on (``CERTDESK_ACCESS_LOG=true``), each request also gets one line at INFO on the
``certdesk.access`` logger: the client's address (through the trusted proxies), the user, the
method, the path and query, the status, the size and the time taken. Nothing secret travels in a
URL here but the first-run setup link's token, which is left out; the path and query are logged
encoded, so nothing in them can forge the line's other fields.
"""

from __future__ import annotations

import logging
import secrets
from time import perf_counter
from urllib.parse import quote, unquote_plus

from flask import Flask, Response, current_app, g, request

log = logging.getLogger("certdesk.access")


def _start() -> None:
    g.request_id = secrets.token_hex(6)
    g.request_started = perf_counter()


def _finish(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers["X-Request-Id"] = request_id
    if current_app.config.get("ACCESS_LOG") and request_id:
        took = (perf_counter() - g.request_started) * 1000
        user = getattr(g.get("_login_user"), "username", None) or "-"  # loaded, never looked up
        log.info(
            '%s %s "%s %s" %s %s %.1f ms',
            g.get("client_address") or request.remote_addr or "-",
            user,
            request.method,
            _target(),
            response.status_code,
            "-" if response.content_length is None else response.content_length,
            took,
        )
    return response


# A URL's characters that stay as they are in the log line; any other (a quote or a space that
# would end the request's field early, a control, a non-ASCII letter) is percent-encoded.
_KEPT = "/:@!$&'()*+,;=-._~"
# Query parameters whose value is a secret (the first-run setup link's token): logged as "...".
_SECRET_PARAMETERS = frozenset({"token"})


def _target(path: str | None = None, query: bytes | None = None) -> str:
    """The path and query as requested (this request's, or those given), one field of the log
    line: encoded again as a URL, so that nothing in it (a `"` decoded from %22) can end the
    field and forge the fields after it; a secret parameter's value left out."""
    path = quote(request.path if path is None else path, safe=_KEPT)
    query = request.query_string if query is None else query
    if not query:
        return path
    pairs = []
    for pair in query.decode("latin-1").split("&"):
        name, eq, _value = pair.partition("=")
        if eq and unquote_plus(name) in _SECRET_PARAMETERS:
            pair = f"{name}=..."
        pairs.append(quote(pair, safe=_KEPT + "%"))
    return f"{path}?{'&'.join(pairs)}"


def refused_before_flask(app: Flask, environ: dict, response: Response) -> Response:
    """``response``, made before Flask saw the request (a host name not among TRUSTED_HOSTS),
    with its request id, and its access log line: such a probe is in the log too."""
    request_id = secrets.token_hex(6)
    response.headers["X-Request-Id"] = request_id
    if app.config.get("ACCESS_LOG"):
        remote = environ.get("REMOTE_ADDR") or "-"
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        log.info(
            '%s - "%s %s" %s %s - [request %s]',
            remote,
            environ.get("REQUEST_METHOD", "-"),
            _target(path, environ.get("QUERY_STRING", "").encode("latin-1")),
            response.status_code,
            response.content_length,
            request_id,
        )
    return response


def init_app(app: Flask) -> None:
    """Give each request its id first, before any other hook can log or refuse it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
