"""Everything between the socket and the API: the request log, fault injection and rate limits.

`TrafficMiddleware` wraps the Flask app. For API paths (under /enterprise/v2) it records each
request, and applies the first matching fault rule. A body over `MAX_BODY_BYTES` is answered 413
in the error envelope before anything else, and is not kept. Fault kinds and what they do:

- `latency` (`ms`): wait, then serve normally.
- `http_500`/`http_502`/`http_503`/`http_504`: answer that status with the error envelope; the
  request is not carried out.
- `rate_limit`: 429 with `Retry-After` (`retry_after`, default 2) and `X-Rate-Limit-Limit`.
- `html_error_page`: an HTML page as a proxy would give it (`status`, default 502).
- `timeout` (`ms`, default 30000): hold the response for `ms` without carrying out the request,
  then drop the connection. A client whose timeout is shorter than `ms` times out.
- `reset`: drop the connection (TCP RST) without carrying out the request.
- `malformed_json`: carry out the request, answer its status with a broken JSON body.
- `truncated_body`: carry out the request, send fewer bytes than Content-Length, then close.
- `commit_then_500`: carry out the request, then answer 500 with the error envelope.
- `commit_then_timeout` (`ms`): carry out the request, hold for `ms`, then drop the connection.

Matching: `method` (absent or "*" for any) and `path` (absent for any; exact match, or a prefix
match when it ends with `*`; a trailing slash is ignored). `rate` (default 1.0) is the chance a
matching request is hit; `count` (default unlimited) caps the number of hits; rules are tried in
order and only the first that hits applies.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from datetime import UTC, datetime

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request

from .auth import credentials
from .errors import parse_json

API_PREFIX = "/enterprise/v2"
# The largest request body the API reads. A real order is a few KB; CertDesk takes CSR files of
# up to 1 MB, which travel as PEM in JSON (about 1.4 MB), and peers may too. A larger body is
# answered 413, and neither kept nor logged; up to _DISCARD_BYTES of it are read off first, so
# that the client, still sending, reads the answer rather than a reset connection.
MAX_BODY_BYTES = 4 * 1024 * 1024
_DISCARD_BYTES = 16 * 1024 * 1024
# The request log keeps bodies up to this size parsed, larger ones as their bytes.
_PARSED_BODY_BYTES = 64 * 1024
_SLASHES = re.compile("/{2,}")
FAULT_KINDS = (
    "latency",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "rate_limit",
    "timeout",
    "reset",
    "malformed_json",
    "truncated_body",
    "html_error_page",
    "commit_then_500",
    "commit_then_timeout",
)
# Kinds that answer without letting the request reach the API.
_SHORT_CIRCUIT = {"http_500", "http_502", "http_503", "http_504", "rate_limit", "timeout"}
_SHORT_CIRCUIT |= {"reset", "html_error_page"}
# Kinds after which the request has been carried out (its answer is slow, lost or garbled).
CARRIED_OUT = frozenset(FAULT_KINDS) - _SHORT_CIRCUIT


class ConnectionDropped(ConnectionAbortedError):
    """Raised to make the server abandon the connection without an answer."""


class FaultRules:
    """The active fault rules, with thread-safe hit counting."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._random = random.Random()

    def set(self, rules: list[dict]) -> list[dict]:
        """Replace the rules after checking them; raise ValueError on a bad rule."""
        checked = []
        for raw in rules:
            if not isinstance(raw, dict):
                raise ValueError("each rule must be an object")
            kind = raw.get("kind")
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
            rule = dict(raw)
            rule["rate"] = _number(rule, "rate", 1.0, high=1.0)
            count = rule.get("count")
            rule["count"] = None if count is None else int(_number(rule, "count", 0))
            for key in ("method", "path"):
                if rule.get(key) is not None and not isinstance(rule[key], str):
                    raise ValueError(f"{key} must be a string")
            rule["method"] = (rule.get("method") or "*").upper()
            if "ms" in rule:
                rule["ms"] = _number(rule, "ms", 0)
            if "status" in rule:
                rule["status"] = int(_number(rule, "status", 502, low=100, high=599))
            rule["hits"] = 0
            checked.append(rule)
        with self._lock:
            if rules and any("seed" in r for r in rules):
                self._random.seed(rules[0].get("seed"))
            self._rules = checked
        return self.list()

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def list(self) -> list[dict]:
        """Copies of the rules with their hit counts."""
        with self._lock:
            return [dict(r) for r in self._rules]

    def pick(self, method: str, path: str) -> dict | None:
        """The rule that hits this request, if any (its hit count is taken)."""
        with self._lock:
            for rule in self._rules:
                if not _matches(rule, method, path):
                    continue
                if rule["count"] is not None and rule["hits"] >= rule["count"]:
                    continue
                if rule["rate"] < 1.0 and self._random.random() >= rule["rate"]:
                    continue
                rule["hits"] += 1
                return dict(rule)
        return None


def _number(rule: dict, key: str, default: float, low: float = 0, high: float | None = None):
    """``rule[key]`` as a finite number within bounds (``default`` when absent)."""
    value = rule.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number") from None
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ValueError(f"{key} must be a number {bounds}")
    return number


def _matches(rule: dict, method: str, path: str) -> bool:
    if rule["method"] not in ("*", method.upper()):
        return False
    wanted = rule.get("path")
    if not wanted:
        return True
    if wanted.endswith("*"):
        return path.startswith(wanted[:-1])
    return path.rstrip("/") == wanted.rstrip("/")


class RequestLog:
    """Every API request seen, newest last. Bounded by entries and by the bytes of the bodies
    they hold, so that neither a benchmark's many calls nor a few large bodies exhaust memory:
    the oldest entries go first."""

    def __init__(self, maxlen: int = 20000, max_body_bytes: int = 64 * 1024 * 1024):
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, dict]] = deque()
        self._maxlen = maxlen
        self._max_body_bytes = max_body_bytes
        self._body_bytes = 0

    def add(self, entry: dict, body_bytes: int = 0) -> None:
        """Append one entry, whose body took ``body_bytes`` on the wire."""
        with self._lock:
            self._entries.append((body_bytes, entry))
            self._body_bytes += body_bytes
            while len(self._entries) > self._maxlen or (
                self._body_bytes > self._max_body_bytes and len(self._entries) > 1
            ):
                self._body_bytes -= self._entries.popleft()[0]

    def list(self) -> list[dict]:
        """All entries, oldest first (a large body read now, see ``_body_for_log``)."""
        with self._lock:
            entries = [entry for _, entry in self._entries]
        return [
            {**entry, "body": _parsed(entry["body"])} if isinstance(entry["body"], bytes) else entry
            for entry in entries
        ]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._body_bytes = 0


class RateLimiter:
    """A sliding 30-second window of request times per API user."""

    WINDOW = 30.0

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def check(self, user: str, limit: int | None) -> int | None:
        """Count this request; return None if allowed, else the seconds to wait."""
        if not limit:
            return None
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(user, deque())
            while times and now - times[0] >= self.WINDOW:
                times.popleft()
            if len(times) >= limit:
                return max(1, int(self.WINDOW - (now - times[0]) + 0.999))
            times.append(now)
            return None

    def clear(self) -> None:
        """Forget all windows."""
        with self._lock:
            self._seen.clear()


def drop_connection(environ) -> None:
    """Make the sandbox server reset this request's connection, then abandon the request."""
    handler = environ.get("sandbox.handler")
    if handler is not None:
        handler.close_connection = True
        handler.server.mark_for_reset(handler.connection)
    raise ConnectionDropped("sandbox fault: connection dropped")


def _envelope(status: int, message: str) -> bytes:
    return json.dumps({"status": status, "errors": [{"message": message}]}).encode()


_REASONS = {
    400: "Bad Request",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class TrafficMiddleware:
    """WSGI middleware: request log, fault injection and connection-level failures."""

    def __init__(self, app, faults: FaultRules, log: RequestLog, stop_event: threading.Event):
        self.app = app
        self.faults = faults
        self.log = log
        self.stop_event = stop_event

    def __call__(self, environ, start_response):
        # Repeated slashes count as one: a base URL ending in / joined to a path starting with /
        # reaches its resource, rather than a redirect with an HTML page (which a POST cannot
        # follow everywhere) before even the credentials are checked.
        path = environ["PATH_INFO"] = _SLASHES.sub("/", environ.get("PATH_INFO", ""))
        if not path.startswith(API_PREFIX):
            return self.app(environ, start_response)
        request = Request(environ)
        unreadable = too_large = False
        try:
            raw = _read_up_to(request.stream, MAX_BODY_BYTES + 1)
            if len(raw) > MAX_BODY_BYTES:  # announced, or found as a chunked body is read
                too_large = True
                _read_up_to(request.stream, _DISCARD_BYTES)
                raw = b""
        except (OSError, ClientDisconnected):
            # A body that cannot be read (a broken chunked encoding, a client that went away
            # before sending what it announced) is a bad request, not a crash.
            raw, unreadable = b"", True
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": request.method,
            "path": path,
            "query": request.query_string.decode("latin-1"),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "body": _body_for_log(raw),
            "user": _username(request),
            "status": None,
            "fault": None,
        }
        if unreadable:
            entry["status"] = 400
            self.log.add(entry)
            message = "The request body could not be read"
            return _respond(start_response, 400, _envelope(400, message))
        if too_large:
            entry["status"] = 413
            self.log.add(entry)
            message = f"The request body is larger than {MAX_BODY_BYTES:,} bytes"
            return _respond(start_response, 413, _envelope(413, message))
        rule = self.faults.pick(request.method, path)
        kind = rule["kind"] if rule else None
        entry["fault"] = kind
        self.log.add(entry, len(raw))
        if kind == "latency":
            self.stop_event.wait(float(rule.get("ms", 1000)) / 1000)
        if kind in _SHORT_CIRCUIT:
            return self._short_circuit(rule, entry, environ, start_response)
        status, headers, body = self._run(environ)
        entry["status"] = int(status.split()[0])
        if kind == "commit_then_500":
            entry["status"] = 500
            return _respond(start_response, 500, _envelope(500, "Internal server error"))
        if kind == "commit_then_timeout":
            self.stop_event.wait(float(rule.get("ms", 30000)) / 1000)
            entry["status"] = None
            drop_connection(environ)
        if kind == "malformed_json":
            broken = (body[: max(1, len(body) // 2)] or b"{") + b'<!-- "errors": '
            return _respond(start_response, entry["status"], broken, "application/json")
        if kind == "truncated_body":
            return self._truncated(environ, start_response, status, headers, body)
        start_response(status, headers)
        return [body]

    def _run(self, environ) -> tuple[str, list, bytes]:
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        iterable = self.app(environ, capture)
        try:
            body = b"".join(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        return captured["status"], captured["headers"], body

    def _short_circuit(self, rule, entry, environ, start_response):
        kind = rule["kind"]
        if kind in ("timeout", "reset"):
            if kind == "timeout":
                self.stop_event.wait(float(rule.get("ms", 30000)) / 1000)
            drop_connection(environ)
        if kind == "rate_limit":
            entry["status"] = 429
            headers = {
                "Retry-After": str(rule.get("retry_after", 2)),
                "X-Rate-Limit-Limit": str(rule.get("limit", 100)),
            }
            return _respond(start_response, 429, _envelope(429, "Too many requests"), extra=headers)
        if kind == "html_error_page":
            code = int(rule.get("status", 502))
            entry["status"] = code
            page = (
                f"<html><head><title>{code} {_REASONS.get(code, 'Error')}</title></head>"
                f"<body><h1>{code} {_REASONS.get(code, 'Error')}</h1><hr>nginx</body></html>"
            ).encode()
            return _respond(start_response, code, page, "text/html")
        code = int(kind.split("_")[1])
        entry["status"] = code
        return _respond(start_response, code, _envelope(code, _REASONS[code]))

    def _truncated(self, environ, start_response, status, headers, body):
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        # An empty body cannot be cut short, so promise a few bytes that never come.
        headers.append(("Content-Length", str(len(body) or 16)))
        handler = environ.get("sandbox.handler")
        if handler is not None:
            handler.close_connection = True
        start_response(status, headers)
        return [body[: len(body) // 2]]


def _respond(start_response, code, body, mimetype="application/json", extra=None):
    headers = [("Content-Type", mimetype), ("Content-Length", str(len(body)))]
    headers += list((extra or {}).items())
    start_response(f"{code} {_REASONS.get(code, 'OK')}", headers)
    return [body]


def _username(request) -> str | None:
    authorization = credentials(request)
    return authorization.username if authorization else None


def _read_up_to(stream, limit: int) -> bytes:
    """What ``stream`` holds, stopping after ``limit`` bytes."""
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(65536, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _body_for_log(raw: bytes):
    """The body as the log keeps it: parsed, or over ``_PARSED_BODY_BYTES`` the bytes themselves
    (parsed when the log is read), since parsed JSON can take many times its size."""
    if not raw:
        return None
    if len(raw) > _PARSED_BODY_BYTES:
        return raw
    return _parsed(raw)


def _parsed(raw: bytes):
    try:
        return parse_json(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def reset_socket(sock) -> None:
    """Close a socket so that the peer sees a TCP reset rather than an orderly close."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
