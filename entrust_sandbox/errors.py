"""The ECS error envelope and the exception the API code raises to produce it."""

from __future__ import annotations

import json as stdlib_json
import re

from flask import Response, json


class ApiError(Exception):
    """An error answered as `{"status", "errors": [{"message", "field"?}]}` with that status."""

    def __init__(self, status: int, message: str, field: str | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> Response:
        """Render this error as the ECS envelope."""
        return error_response(self.status, self.message, self.field, self.headers)


def error_response(status: int, message: str, field: str | None = None, headers=None) -> Response:
    """Build the ECS error envelope response for `status`."""
    error = {"message": message}
    if field:
        error["field"] = field
    body = json.dumps({"status": status, "errors": [error]})
    return Response(body, status=status, mimetype="application/json", headers=headers or {})


# The largest integer the store (SQLite) holds; a larger one in a request is out of range.
INT_MAX = 2**63 - 1


def in_range(number: int, field: str) -> int:
    """``number``, or a 400 on ``field`` when the store could not hold it."""
    if not -INT_MAX <= number <= INT_MAX:
        raise bad_request(f"{field} is out of range", field)
    return number


_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_int(value) -> int:
    """An integer as the live API's parser reads one: a JSON integer (not a boolean), or text of
    ASCII digits with an optional sign. Python's own ``int()`` also takes ``1_000``, digits of
    other scripts, and truncates ``1.5``; a ValueError here for all of those.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError(f"not an integer: {value!r}")


def bad_request(message: str, field: str | None = None) -> ApiError:
    """Shorthand for a 400 ApiError."""
    return ApiError(400, message, field)


def not_found(message: str) -> ApiError:
    """Shorthand for a 404 ApiError."""
    return ApiError(404, message)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str):
    """Parse a request body as a strict JSON parser does (the live API's, for one).

    NaN and Infinity are not JSON, nesting too deep to follow is refused rather than crashing,
    and so is a string with half of a surrogate pair (``"\\ud800"``), which no UTF-8 text can
    hold (I-JSON, RFC 7493, forbids it): all raise ValueError like any other malformed body.
    """
    try:
        data = stdlib_json.loads(raw, parse_constant=_no_constant)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc
    try:
        stdlib_json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc
    except UnicodeEncodeError as exc:
        raise ValueError("a string holds half of a surrogate pair") from exc
    return data
