"""Fixtures for the ECS client unit tests: a client on `responses` with a fake clock and sleep."""

from __future__ import annotations

import random

import pytest
import responses

from webapp.ecs import EcsClient

from .helpers import BASE, KEY, USER


class FakeTime:
    """A clock that only moves when something sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def make_client(fake_time):
    made = []

    def make(**kwargs) -> EcsClient:
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.clock)
        kwargs.setdefault("rng", random.Random(7))
        client = EcsClient(BASE, USER, KEY, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client, rsps) -> EcsClient:
    return make_client()
