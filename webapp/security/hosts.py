"""TRUSTED_HOSTS (``CERTDESK_TRUSTED_HOSTS``): the names CertDesk is reached by.

A request naming another host is answered with a plain 400 before Flask sees it. A web page whose
own name its DNS points at CertDesk (DNS rebinding) is then of the same origin as that name, but
CertDesk does not answer it. Flask checks the setting too, but only once the request has no URL
adapter left, so its error page (which builds links) failed as a logged 500.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_host

from webapp import accesslog
from webapp.security.headers import EVERY_RESPONSE

REFUSED = "CertDesk is not reached by this name. Use the address your administrator gave you.\n"


def init_app(app: Flask) -> None:
    inner = app.wsgi_app

    def wsgi_app(environ, start_response):
        trusted = app.config.get("TRUSTED_HOSTS")
        if trusted:
            try:
                get_host(environ, trusted)
            except SecurityError:
                resp = Response(REFUSED, 400, mimetype="text/plain")
                for name, value in EVERY_RESPONSE:
                    resp.headers[name] = value
                resp.headers["Cache-Control"] = "no-store"
                return accesslog.refused_before_flask(app, environ, resp)(environ, start_response)
        return inner(environ, start_response)

    app.wsgi_app = wsgi_app
