"""The retry policy: GET only, bounded, exponential backoff with jitter, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from webapp.ecs import errors

from .helpers import url

ERR = {"status": 503, "errors": [{"message": "Service Unavailable"}]}


def test_get_retries_5xx_with_exponential_backoff_and_jitter(make_client, rsps, fake_time):
    client = make_client(max_get_attempts=4, backoff_base=0.5, backoff_max=8.0)
    for status in (500, 502, 504):
        rsps.get(url("clients"), status=status, json={"status": status, "errors": []})
    rsps.get(url("clients"), json={"clients": []})
    assert client.list_clients() == []
    assert len(rsps.calls) == 4
    assert len(fake_time.sleeps) == 3
    # attempt n waits base * 2**(n-1), scaled by a jitter factor in [0.5, 1.0]
    for n, slept in enumerate(fake_time.sleeps, start=1):
        nominal = 0.5 * 2 ** (n - 1)
        assert nominal * 0.5 <= slept <= nominal
    assert fake_time.sleeps[0] < fake_time.sleeps[2]


def test_jitter_differs_between_clients(make_client, rsps, fake_time):
    a = make_client(rng=random.Random(1), max_get_attempts=2)
    b = make_client(rng=random.Random(2), max_get_attempts=2)
    for c in (a, b):
        rsps.get(url("clients"), status=500, json={"status": 500, "errors": []})
        rsps.get(url("clients"), json={"clients": []})
        c.list_clients()
    assert fake_time.sleeps[0] != fake_time.sleeps[1]


def test_backoff_is_capped(make_client, rsps, fake_time):
    client = make_client(max_get_attempts=6, backoff_base=1.0, backoff_max=3.0)
    rsps.get(url("clients"), status=500, json={"status": 500, "errors": []})
    with pytest.raises(errors.ServerError):
        client.list_clients()
    assert len(rsps.calls) == 6 and len(fake_time.sleeps) == 5
    assert max(fake_time.sleeps) <= 3.0


def test_attempts_are_bounded_and_last_error_raised(make_client, rsps, fake_time):
    client = make_client(max_get_attempts=3)
    rsps.get(url("clients"), status=503, json=ERR)
    with pytest.raises(errors.ServerError) as info:
        client.list_clients()
    assert info.value.status == 503 and not info.value.outcome_unknown
    assert len(rsps.calls) == 3 and len(fake_time.sleeps) == 2


def test_429_honours_retry_after(make_client, rsps, fake_time):
    client = make_client()
    rsps.get(
        url("clients"),
        status=429,
        json={"status": 429, "errors": [{"message": "Too many"}]},
        headers={"Retry-After": "7"},
    )
    rsps.get(url("clients"), json={"clients": []})
    client.list_clients()
    assert fake_time.sleeps == [7.0]


def test_503_honours_retry_after_http_date(make_client, rsps, fake_time):
    client = make_client()
    when = datetime.now(UTC) + timedelta(seconds=20)
    rsps.get(
        url("clients"),
        status=503,
        json=ERR,
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    rsps.get(url("clients"), json={"clients": []})
    client.list_clients()
    assert len(fake_time.sleeps) == 1 and 15 <= fake_time.sleeps[0] <= 21


def test_retry_after_longer_than_cap_is_raised_not_slept(make_client, rsps, fake_time):
    client = make_client(max_retry_after=30)
    rsps.get(
        url("clients"),
        status=429,
        json={"status": 429, "errors": [{"message": "Too many"}]},
        headers={"Retry-After": "600"},
    )
    with pytest.raises(errors.RateLimitedError) as info:
        client.list_clients()
    assert info.value.retry_after == 600
    assert fake_time.sleeps == [] and len(rsps.calls) == 1


def test_429_exhausting_attempts_raises_rate_limited(make_client, rsps, fake_time):
    client = make_client(max_get_attempts=2)
    rsps.get(
        url("clients"),
        status=429,
        json={"status": 429, "errors": [{"message": "Too many"}]},
        headers={"Retry-After": "1"},
    )
    with pytest.raises(errors.RateLimitedError) as info:
        client.list_clients()
    assert info.value.retry_after == 1
    assert fake_time.sleeps == [1.0] and len(rsps.calls) == 2


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout("slow"),
        requests.exceptions.ConnectTimeout("slow"),
        requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")),
    ],
)
def test_get_retries_transport_failures(make_client, rsps, fake_time, exc):
    client = make_client()
    rsps.get(url("application/version"), body=exc)
    rsps.get(url("application/version"), json={"version": "1"})
    assert client.get_version() == "1"
    assert len(rsps.calls) == 2 and len(fake_time.sleeps) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.ValidationError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
        (404, errors.NotFoundError),
    ],
)
def test_client_errors_are_not_retried(make_client, rsps, fake_time, status, cls):
    client = make_client()
    rsps.get(url("clients"), status=status, json={"status": status, "errors": [{"message": "m"}]})
    with pytest.raises(cls):
        client.list_clients()
    assert len(rsps.calls) == 1 and fake_time.sleeps == []


def test_tls_errors_are_not_retried(make_client, rsps, fake_time):
    client = make_client()
    rsps.get(url("clients"), body=requests.exceptions.SSLError("bad cert"))
    with pytest.raises(errors.EcsConnectionError):
        client.list_clients()
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "certificates", lambda c: c.new_certificate({"certType": "STANDARD_SSL"})),
        ("POST", "certificates/1/reissues", lambda c: c.reissue(1)),
        ("POST", "certificates/1/renewals", lambda c: c.renew(1)),
        ("POST", "certificates/1/revocations", lambda c: c.revoke(1)),
        ("POST", "certificates/1/deactivations", lambda c: c.deactivate(1)),
        ("POST", "clients/1/domains", lambda c: c.add_domain(1, "a.com")),
        ("PUT", "clients/1/domains/a.com", lambda c: c.reverify_domain(1, "a.com")),
        ("PUT", "certificates/1/tracking", lambda c: c.replace_tracking(1, {})),
        ("PATCH", "certificates/1", lambda c: c.approve(1)),
        ("PATCH", "certificates/1", lambda c: c.suspend(1)),
    ],
)
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "json": ERR, "headers": {"Retry-After": "1"}},
        {"status": 500, "json": {"status": 500, "errors": [{"message": "x"}]}},
        {"status": 429, "json": {"status": 429, "errors": []}, "headers": {"Retry-After": "1"}},
        {"body": requests.exceptions.ReadTimeout("slow")},
        {"body": requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))},
    ],
)
def test_mutating_calls_are_never_retried(
    make_client, rsps, fake_time, method, path, call, failure
):
    client = make_client(max_get_attempts=5)
    rsps.add(getattr(responses, method), url(path), **failure)
    rsps.add(getattr(responses, method), url(path), status=200, json={"trackingId": 1})
    with pytest.raises(errors.EcsError) as info:
        call(client)
    assert len(rsps.calls) == 1
    assert fake_time.sleeps == []
    if failure.get("status") == 429:
        assert not info.value.outcome_unknown
    else:
        assert info.value.outcome_unknown


def test_every_call_its_retries_and_waits_run_inside_the_waiting_hook(make_client, rsps, fake_time):
    log = []

    class Waiting:
        def __enter__(self):
            log.append("enter")

        def __exit__(self, *exc):
            log.append("exit")

    def sleep(seconds):
        log.append("sleep")
        fake_time.sleep(seconds)

    client = make_client(max_get_attempts=3, waiting=Waiting, sleep=sleep)
    rsps.get(url("clients"), status=503, json=ERR)
    rsps.get(url("clients"), json={"clients": []})
    assert client.list_clients() == []
    assert log == ["enter", "sleep", "exit"]  # one call, its retry and its wait, all inside
    rsps.post(url("clients"), status=500, json={"status": 500, "errors": []})
    with pytest.raises(errors.ServerError):
        client._request("POST", "clients", json_body={})
    assert log[3:] == ["enter", "exit"]  # left even when the call fails


@pytest.mark.parametrize("wait", ["inf", "Infinity", "nan", "1e999"])
def test_a_retry_after_that_is_no_number_of_seconds_is_no_wait_told(
    make_client, rsps, fake_time, wait
):
    """An endless or undefined Retry-After tells no wait: the client backs off as it does when
    none is given, rather than giving up "for inf seconds"."""
    client = make_client()
    rsps.get(
        url("clients"),
        status=429,
        json={"status": 429, "errors": [{"message": "Too many"}]},
        headers={"Retry-After": wait},
    )
    rsps.get(url("clients"), json={"clients": []})
    client.list_clients()
    assert len(fake_time.sleeps) == 1 and 0 < fake_time.sleeps[0] <= 30
