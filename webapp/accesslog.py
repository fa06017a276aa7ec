"""Each request's id, and the access log.

Every answer carries ``X-Request-Id``, a short random id that ends each line CertDesk logs while
handling the request (an unhandled error's among them: webapp.logsafe), so one request's lines
can be told apart from the others' and matched with what a user or a proxy saw. With ACCESS_LOG
on (``CERTDESK_ACCESS_LOG=true``), each request also gets one line at INFO on the
``certdesk.access`` logger: the client's address (through the trusted proxies), the user, the
method, the path and query, the status, the size and the time taken. Nothing secret travels in a
URL here (forms are POSTed), and the log escapes control characters (webapp.logsafe).
"""

from __future__ import annotations

import logging
import secrets
from time import perf_counter

from flask import Flask, current_app, g, request

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
            request.full_path if request.query_string else request.path,
            response.status_code,
            "-" if response.content_length is None else response.content_length,
            took,
        )
    return response


def init_app(app: Flask) -> None:
    """Give each request its id first, before any other hook can log or refuse it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
