"""A per-credential request budget shared by everything in the process.

ECS rate-limits per API user. Sync, import and status polling may run at the same time in one
process, so they must draw from one bucket: :func:`budget_for` returns the same
:class:`RateBudget` for the same key (for example ``(base_url, api_user)``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from .errors import RateLimitedError

__all__ = ["RateBudget", "budget_for", "clear_budgets"]


class RateBudget:
    """Token bucket: ``per_minute`` requests per minute, bursts up to ``burst`` (default: the rate).

    :meth:`acquire` reserves one token and sleeps until it is due. Reservations are made under a
    lock and the sleep happens outside it, so concurrent callers queue fairly. If the wait would
    exceed ``max_wait`` seconds, nothing is reserved and :class:`RateLimitedError` is raised with
    the wait as ``retry_after``.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = float(per_minute)
        self.capacity = float(burst if burst is not None else per_minute)
        if self.capacity < 1:
            raise ValueError("burst must allow at least one request")
        self._rate = self.per_minute / 60.0  # tokens per second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)
        self._stamp = now

    @property
    def available(self) -> float:
        """Tokens available right now (may be negative while callers wait)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    def reserve(self, max_wait: float | None = None) -> float:
        """Reserve one token and return how many seconds the caller must wait before using it."""
        with self._lock:
            self._refill(self._clock())
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate
            if max_wait is not None and wait > max_wait:
                raise RateLimitedError(
                    "the local request budget for this credential is exhausted",
                    retry_after=round(wait, 3),
                )
            self._tokens -= 1
            return wait

    def acquire(self, max_wait: float | None = None) -> float:
        """Take one token, sleeping until it is due; return the seconds slept."""
        wait = self.reserve(max_wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"RateBudget(per_minute={self.per_minute:g}, capacity={self.capacity:g})"


_registry: dict[Hashable, RateBudget] = {}
_registry_lock = threading.Lock()


def budget_for(key: Hashable, per_minute: float, **kwargs) -> RateBudget:
    """Return the process-wide budget for ``key``, creating it on first use.

    Later calls with the same key get the same bucket; if ``per_minute`` differs, the bucket's
    rate is updated (the setting was changed) while its current fill is kept.
    """
    with _registry_lock:
        budget = _registry.get(key)
        if budget is None:
            budget = RateBudget(per_minute, **kwargs)
            _registry[key] = budget
        elif budget.per_minute != float(per_minute):
            with budget._lock:
                budget._refill(budget._clock())
                budget.per_minute = float(per_minute)
                budget._rate = budget.per_minute / 60.0
                budget.capacity = float(kwargs.get("burst") or per_minute)
                budget._tokens = min(budget._tokens, budget.capacity)
        return budget


def clear_budgets() -> None:
    """Forget every registered budget (tests, or after credentials are deleted)."""
    with _registry_lock:
        _registry.clear()
