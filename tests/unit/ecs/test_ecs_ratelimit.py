"""The per-credential rate budget: a thread-safe token bucket shared through a registry."""

from __future__ import annotations

import threading

import pytest

from webapp.ecs import RateBudget, budget_for, clear_budgets, errors

from .helpers import url


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_burst_then_paced():
    clock = Clock()
    budget = RateBudget(60, clock=clock, sleep=clock.sleep)  # one per second
    for _ in range(60):
        assert budget.acquire() == 0
    assert clock.sleeps == []
    assert budget.acquire() == pytest.approx(1.0)
    assert budget.acquire() == pytest.approx(1.0)
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


def test_refills_over_time_up_to_capacity():
    clock = Clock()
    budget = RateBudget(120, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        budget.acquire()
    assert budget.available == pytest.approx(0)
    clock.now += 1.0  # 2 tokens per second
    assert budget.available == pytest.approx(2)
    clock.now += 100
    assert budget.available == pytest.approx(5)


def test_max_wait_raises_without_reserving():
    clock = Clock()
    budget = RateBudget(6, burst=1, clock=clock, sleep=clock.sleep)  # one per 10 s
    budget.acquire()
    with pytest.raises(errors.RateLimitedError) as info:
        budget.acquire(max_wait=5)
    assert info.value.retry_after == pytest.approx(10)
    assert budget.acquire(max_wait=10) == pytest.approx(10)


def test_concurrent_callers_queue_instead_of_overspending():
    clock_lock = threading.Lock()
    clock = Clock()
    slept: list[float] = []

    def sleep(s: float) -> None:
        with clock_lock:
            slept.append(s)

    budget = RateBudget(60, burst=10, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=budget.acquire) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 10 free tokens, then 20 callers each reserved a distinct slot one second apart
    assert sorted(round(s) for s in slept) == list(range(1, 21))


def test_registry_shares_one_bucket_per_key():
    clear_budgets()
    a = budget_for(("https://x", "user"), 100)
    b = budget_for(("https://x", "user"), 100)
    c = budget_for(("https://x", "other"), 100)
    assert a is b and a is not c
    d = budget_for(("https://x", "user"), 30)  # setting changed: same bucket, new rate
    assert d is a and a.per_minute == 30 and a.capacity == 30
    clear_budgets()
    assert budget_for(("https://x", "user"), 30) is not a


def test_invalid_rates():
    with pytest.raises(ValueError):
        RateBudget(0)
    with pytest.raises(ValueError):
        RateBudget(10, burst=0.5)


def test_client_draws_from_budget_for_every_attempt(make_client, rsps, fake_time):
    budget = RateBudget(60, burst=2, clock=fake_time.clock, sleep=fake_time.sleep)
    client = make_client(rate_budget=budget, max_get_attempts=3)
    rsps.get(url("clients"), status=500, json={"status": 500, "errors": []})
    rsps.get(url("clients"), json={"clients": []})
    client.list_clients()
    client.list_clients()
    # 3 requests with a burst of 2: the third waited for a token (plus one backoff sleep)
    assert len(rsps.calls) == 3
    assert budget.available < 1


def test_client_budget_exhausted_raises_rate_limited(make_client, rsps, fake_time):
    budget = RateBudget(1, burst=1, clock=fake_time.clock, sleep=fake_time.sleep)
    client = make_client(rate_budget=budget, rate_wait_max=5)
    rsps.get(url("application/version"), json={"version": "1"})
    client.get_version()
    with pytest.raises(errors.RateLimitedError) as info:
        client.get_version()
    assert info.value.retry_after == pytest.approx(60)
    assert len(rsps.calls) == 1
