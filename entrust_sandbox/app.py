"""The sandbox application: its runtime state and the Flask app factory."""

from __future__ import annotations

import threading

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from .auth import PEER_CERT, authenticate, credentials
from .errors import INT_MAX, ApiError, error_response
from .settings import Settings
from .store import Store
from .traffic import FaultRules, RateLimiter, RequestLog, TrafficMiddleware


class Sandbox:
    """One sandbox's state: storage, settings, fault rules, request log and rate limiter.

    `keep_users` names the API users that survive a reset (the one printed at start).
    """

    def __init__(self, state_path: str | None = None, settings: Settings | None = None):
        self.store = Store(state_path)
        self.initial_settings = settings or Settings()
        stored = self.store.get_meta("settings")
        self.settings = self.initial_settings.updated(stored) if stored else self.initial_settings
        self.faults = FaultRules()
        self.log = RequestLog()
        self.rate_limiter = RateLimiter()
        self.stop_event = threading.Event()
        self.keep_users: list[str] = []

    def update_settings(self, changes: dict) -> Settings:
        """Apply and persist settings changes."""
        self.settings = self.settings.updated(changes)
        self.store.set_meta("settings", self.settings.to_json())
        return self.settings

    def reset(self) -> None:
        """Back to an empty account: no data, no faults, no log, real time, initial settings."""
        self.store.wipe_account()
        self.store.delete_users_except(self.keep_users)
        self.store.reset_clock()
        self.store.set_meta("settings", {})
        self.settings = self.initial_settings
        self.faults.clear()
        self.log.clear()
        self.rate_limiter.clear()


class _StoredInt(IntegerConverter):
    """An id in a path: ASCII digits, at most what the store holds (larger finds nothing: 404)."""

    regex = r"[0-9]+"

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, *args, max=INT_MAX, **kwargs)


def create_app(sandbox: Sandbox | None = None, **kwargs) -> Flask:
    """Build the sandbox Flask app around `sandbox` (a new in-memory one if not given).

    The returned app's `wsgi_app` is wrapped in the traffic middleware (log and faults); the
    Sandbox object is at `app.extensions["sandbox"]`.
    """
    from . import api, control

    sandbox = sandbox or Sandbox(**kwargs)
    app = Flask("entrust_sandbox")
    app.json.sort_keys = False
    app.json.compact = True
    # A path with a trailing slash finds its resource (AddClient's Location is /clients/{id}/).
    app.url_map.strict_slashes = False
    app.url_map.converters["int"] = _StoredInt  # before the routes are added
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return err.response()

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code in (404, 405) and request.path.startswith(api.bp.url_prefix):
            # Credentials are checked on every request, one for no resource too: a caller
            # without them learns nothing of which paths exist.
            try:
                authenticate(sandbox, credentials(request), request.environ.get(PEER_CERT))
            except ApiError as refused:
                return refused.response()
        message = {404: "Resource not found", 405: "Method not allowed"}.get(
            err.code, err.description
        )
        if err.code == 404 and request.path.startswith("/_sandbox"):
            message = "No such control endpoint"
        # werkzeug's headers for the error (a 405's Allow), without its text/html Content-Type.
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        return error_response(err.code or 500, message, headers=headers)

    @app.errorhandler(Exception)
    def _crash(err: Exception):
        app.logger.exception("sandbox error")
        return error_response(500, "Internal server error")

    app.wsgi_app = TrafficMiddleware(app.wsgi_app, sandbox.faults, sandbox.log, sandbox.stop_event)
    return app
