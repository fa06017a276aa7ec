"""Typed errors raised by the ECS client.

Every error carries the HTTP ``method`` and ``path`` (relative to the API base, without the query
string), the HTTP ``status`` when there was a response, the server's ``messages`` and, for
validation errors, ``field_errors`` so a form can show each message next to its input. None of
them ever carries a credential: they are built from the ECS error envelope and from the request
line only.

``outcome_unknown`` is True when a non-idempotent call (POST, PUT, PATCH) may or may not have taken
effect on the server (timeout after sending, connection reset, 5xx, unreadable success body). The
caller must then reconcile, for example by searching for the order's ``tracking.trackingInfo``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ConnectionProblem",
    "EcsConnectionError",
    "EcsError",
    "EcsTimeout",
    "MalformedResponseError",
    "NotFoundError",
    "PagingError",
    "RateLimitedError",
    "ServerError",
    "ValidationError",
]


class EcsError(Exception):
    """Base class of every error the ECS client raises."""

    #: a short human summary of the error class, used by ``str()``
    summary = "ECS request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        messages: Sequence[str] = (),
        field_errors: Mapping[str, Sequence[str]] | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.messages: list[str] = list(messages)
        self.field_errors: dict[str, list[str]] = {
            k: list(v) for k, v in (field_errors or {}).items()
        }
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after
        self.detail = message
        super().__init__(str(self))

    # The text a person reads: what was asked, what came back, what the server said.
    def __str__(self) -> str:
        parts = [self.summary]
        if self.method or self.path:
            parts.append(f"({' '.join(p for p in (self.method, self.path) if p)})")
        text = " ".join(parts)
        if self.status is not None:
            text += f": HTTP {self.status}"
        details: list[str] = []
        if self.detail:
            details.append(self.detail)
        for field, msgs in self.field_errors.items():
            details.extend(f"{field}: {m}" for m in msgs)
        field_msgs = {m for msgs in self.field_errors.values() for m in msgs}
        details.extend(m for m in self.messages if m not in field_msgs and m != self.detail)
        if details:
            text += ": " + "; ".join(details)
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        if self.outcome_unknown:
            text += (
                " [outcome unknown: the request may have taken effect on the server; "
                "reconcile before trying again]"
            )
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, path={self.path!r}, "
            f"status={self.status!r}, messages={self.messages!r})"
        )


class AuthenticationError(EcsError):
    """401/403: the API user, key or client certificate was refused."""

    summary = "ECS refused the credentials"


class NotFoundError(EcsError):
    """404: unknown trackingId, clientId, domain, or a feature that is not enabled."""

    summary = "Not found in ECS"


class ValidationError(EcsError):
    """400: the request was invalid; ``field_errors`` maps request fields to messages."""

    summary = "ECS rejected the request"


class ConflictError(EcsError):
    """The operation is not allowed in the object's current state (e.g. revoke a revoked cert)."""

    summary = "ECS refused the operation in the current state"


class RateLimitedError(EcsError):
    """429: too many requests; ``retry_after`` says how many seconds to wait, when known."""

    summary = "ECS rate limit reached"


class ServerError(EcsError):
    """5xx from ECS (or from a proxy in front of it)."""

    summary = "ECS server error"


class EcsTimeout(EcsError):
    """No answer in time. ``phase`` is "connect" (nothing was sent) or "read"."""

    summary = "ECS did not answer in time"

    def __init__(self, message: str | None = None, *, phase: str = "read", **kwargs) -> None:
        self.phase = phase
        super().__init__(message, **kwargs)


class ConnectionProblem(enum.StrEnum):
    """Why a connection failed, so a UI can say which thing to check."""

    TLS = "tls"  # handshake or certificate verification failed
    PROXY = "proxy"  # the proxy refused or could not be reached
    DNS = "dns"  # the host name did not resolve
    REFUSED = "refused"  # the host refused the connection
    UNREACHABLE = "unreachable"  # no route, network down
    RESET = "reset"  # the connection broke after the request was sent
    OTHER = "other"


class EcsConnectionError(EcsError):
    """The connection failed. ``problem`` is a :class:`ConnectionProblem`."""

    summary = "Could not talk to ECS"

    _labels = {
        ConnectionProblem.TLS: "TLS error",
        ConnectionProblem.PROXY: "proxy error",
        ConnectionProblem.DNS: "host name not found",
        ConnectionProblem.REFUSED: "connection refused",
        ConnectionProblem.UNREACHABLE: "host unreachable",
        ConnectionProblem.RESET: "connection reset",
        ConnectionProblem.OTHER: "connection failed",
    }

    def __init__(
        self,
        message: str | None = None,
        *,
        problem: ConnectionProblem = ConnectionProblem.OTHER,
        **kwargs,
    ) -> None:
        self.problem = ConnectionProblem(problem)
        super().__init__(message, **kwargs)

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self._labels[self.problem]}: {base}"


class MalformedResponseError(EcsError):
    """The answer was not the JSON expected: HTML page, truncated body, wrong type or shape."""

    summary = "ECS sent a response that could not be understood"


class PagingError(MalformedResponseError):
    """A paginated listing returned an empty or repeated page before its announced total."""

    summary = "ECS paging broke off"
