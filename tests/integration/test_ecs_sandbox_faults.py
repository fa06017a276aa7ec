"""Each sandbox fault kind gives the right typed error; mutating calls are sent exactly once."""

from __future__ import annotations

import socket
import time

import pytest

from webapp.ecs import EcsClient, errors

from .helpers import new_request

FAST = {"read_timeout": 1.0, "connect_timeout": 2.0, "max_get_attempts": 3}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fast(peer, sleeps):
    client = peer.client(sleep=sleeps, **FAST)
    yield client
    client.close()


def gets(peer, suffix: str) -> int:
    return len(peer.api_requests("GET", suffix))


def posts(peer, suffix: str = "/certificates") -> list[dict]:
    return peer.api_requests("POST", suffix)


# --- GET: retried, then the typed error ----------------------------------------------------------


def test_latency_is_just_slow(fast, peer):
    peer.server.faults(
        [{"kind": "latency", "ms": 300, "path": "/enterprise/v2/application/version"}]
    )
    started = time.monotonic()
    assert fast.get_version()
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503", "http_504"])
def test_5xx_on_get_is_retried_then_server_error(fast, peer, sleeps, kind):
    peer.server.faults([{"kind": kind, "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.ServerError) as info:
        fast.list_clients()
    assert info.value.status == int(kind[-3:])
    assert not info.value.outcome_unknown  # a GET changes nothing
    assert gets(peer, "/clients") == 3 and len(sleeps) == 2


def test_5xx_once_then_success(fast, peer, sleeps):
    peer.server.faults([{"kind": "http_503", "path": "/enterprise/v2/clients", "count": 1}])
    assert fast.list_clients()
    assert gets(peer, "/clients") == 2 and len(sleeps) == 1


def test_rate_limit_on_get_waits_retry_after(fast, peer, sleeps):
    peer.server.faults(
        [{"kind": "rate_limit", "retry_after": 3, "path": "/enterprise/v2/clients", "count": 1}]
    )
    assert fast.list_clients()
    assert sleeps == [3.0]


def test_rate_limit_longer_than_cap_is_surfaced(peer, sleeps):
    client = peer.client(sleep=sleeps, max_retry_after=5, **FAST)
    peer.server.faults([{"kind": "rate_limit", "retry_after": 120}])
    with pytest.raises(errors.RateLimitedError) as info:
        client.get_version()
    assert info.value.retry_after == 120 and sleeps == []
    client.close()


def test_timeout_on_get(fast, peer, sleeps):
    peer.server.faults([{"kind": "timeout", "ms": 2500, "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.EcsTimeout) as info:
        fast.list_clients()
    assert info.value.phase == "read" and not info.value.outcome_unknown
    assert gets(peer, "/clients") == 3


def test_reset_on_get(fast, peer):
    peer.server.faults([{"kind": "reset", "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.EcsConnectionError) as info:
        fast.list_clients()
    assert info.value.problem == errors.ConnectionProblem.RESET
    assert gets(peer, "/clients") == 3


def test_malformed_json(fast, peer):
    peer.server.faults([{"kind": "malformed_json", "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.MalformedResponseError) as info:
        fast.list_clients()
    assert info.value.status == 200 and "not valid JSON" in str(info.value)
    assert gets(peer, "/clients") == 1  # a broken body is not a transient failure


def test_truncated_body(fast, peer):
    peer.server.faults([{"kind": "truncated_body", "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.MalformedResponseError) as info:
        fast.list_clients()
    assert "cut off" in str(info.value) and info.value.status == 200
    assert gets(peer, "/clients") == 3  # a cut connection is worth another GET


def test_truncated_body_once_then_success(fast, peer):
    peer.server.faults([{"kind": "truncated_body", "path": "/enterprise/v2/clients", "count": 1}])
    assert fast.list_clients()


def test_html_error_page(fast, peer):
    peer.server.faults([{"kind": "html_error_page", "path": "/enterprise/v2/clients"}])
    with pytest.raises(errors.ServerError) as info:
        fast.list_clients()
    assert info.value.status == 502
    assert "not an ECS error body (text/html)" in str(info.value)


def test_html_page_with_200_is_malformed(fast, peer):
    peer.server.faults(
        [{"kind": "html_error_page", "status": 200, "path": "/enterprise/v2/clients"}]
    )
    with pytest.raises(errors.MalformedResponseError) as info:
        fast.list_clients()
    assert "expected JSON, got text/html" in str(info.value)


def test_paging_survives_a_transient_fault_mid_listing(peer, sleeps):
    client = peer.client(sleep=sleeps, **FAST)
    peer.server.faults(
        [{"kind": "http_502", "path": "/enterprise/v2/certificates", "count": 1, "rate": 1.0}]
    )
    ids = [c.tracking_id for c in client.iter_certificates(page_size=3)]
    assert len(ids) == len(set(ids)) > 3
    client.close()


# --- POST/PUT/PATCH: one attempt, and an honest "outcome unknown" ------------------------------


def test_commit_then_500_on_new_order_posts_once_and_reconciles(fast, peer, sleeps):
    request = new_request()
    peer.server.faults(
        [{"kind": "commit_then_500", "method": "POST", "path": "/enterprise/v2/certificates"}]
    )
    with pytest.raises(errors.ServerError) as info:
        fast.new_certificate(request)
    assert info.value.status == 500 and info.value.outcome_unknown
    assert len(posts(peer)) == 1, "an order POST must never be sent twice"
    assert sleeps == []
    peer.server.clear_faults()
    found = fast.find_certificates_by_tracking_info(request.tracking.tracking_info)
    assert len(found) == 1  # the order exists exactly once: settle the intent with it


def test_commit_then_timeout_on_new_order(fast, peer):
    request = new_request()
    peer.server.faults(
        [
            {
                "kind": "commit_then_timeout",
                "ms": 2500,
                "method": "POST",
                "path": "/enterprise/v2/certificates",
            }
        ]
    )
    with pytest.raises(errors.EcsTimeout) as info:
        fast.new_certificate(request)
    assert info.value.outcome_unknown and info.value.phase == "read"
    assert len(posts(peer)) == 1
    peer.server.clear_faults()
    assert len(fast.find_certificates_by_tracking_info(request.tracking.tracking_info)) == 1


@pytest.mark.parametrize(
    ("fault", "cls", "unknown"),
    [
        ({"kind": "http_500"}, errors.ServerError, True),
        ({"kind": "http_503"}, errors.ServerError, True),
        ({"kind": "rate_limit", "retry_after": 1}, errors.RateLimitedError, False),
        ({"kind": "timeout", "ms": 2500}, errors.EcsTimeout, True),
        ({"kind": "reset"}, errors.EcsConnectionError, True),
        ({"kind": "malformed_json"}, errors.MalformedResponseError, True),
        ({"kind": "truncated_body"}, errors.MalformedResponseError, True),
        ({"kind": "html_error_page"}, errors.ServerError, True),
    ],
)
def test_faults_on_new_order_are_sent_once(fast, peer, sleeps, fault, cls, unknown):
    request = new_request()
    peer.server.faults([{**fault, "method": "POST", "path": "/enterprise/v2/certificates"}])
    with pytest.raises(cls) as info:
        fast.new_certificate(request)
    assert info.value.outcome_unknown is unknown
    assert len(posts(peer)) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("PATCH", "/certificates/{tid}", lambda c, t: c.suspend(t)),
        ("POST", "/certificates/{tid}/revocations", lambda c, t: c.revoke(t)),
        ("POST", "/certificates/{tid}/reissues", lambda c, t: c.reissue(t)),
        ("PUT", "/certificates/{tid}/tracking", lambda c, t: c.replace_tracking(t, {})),
        ("POST", "/certificates/{tid}/deactivations", lambda c, t: c.deactivate(t)),
    ],
)
def test_commit_then_500_on_lifecycle_calls_is_sent_once(fast, peer, method, path, call):
    tid = fast.new_certificate(new_request()).tracking_id
    path = path.format(tid=tid)
    peer.server.clear_requests()
    peer.server.faults(
        [{"kind": "commit_then_500", "method": method, "path": "/enterprise/v2" + path}]
    )
    with pytest.raises(errors.ServerError) as info:
        call(fast, tid)
    assert info.value.outcome_unknown
    assert len(peer.api_requests(method, path)) == 1


# --- the connection itself -------------------------------------------------------------------


def test_connection_refused(peer, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = EcsClient(
        f"http://127.0.0.1:{port}/enterprise/v2/", "u", "k", sleep=sleeps, max_get_attempts=2
    )
    with pytest.raises(errors.EcsConnectionError) as info:
        client.get_version()
    assert info.value.problem == errors.ConnectionProblem.REFUSED
    assert "connection refused" in str(info.value)
    with pytest.raises(errors.EcsConnectionError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    assert not info.value.outcome_unknown  # nothing was sent
    client.close()


def test_tls_errors_are_named(https_server, sleeps):
    https_server.reset()
    # trusting only the public roots: the sandbox's CA is unknown
    client = EcsClient(
        https_server.base_url, https_server.api_user, https_server.api_key, sleep=sleeps
    )
    with pytest.raises(errors.EcsConnectionError) as info:
        client.get_version()
    assert info.value.problem == errors.ConnectionProblem.TLS
    assert str(info.value).startswith("TLS error")
    assert sleeps == []  # a TLS failure is not retried
    client.close()


def test_mtls_user_without_its_certificate(https_server):
    https_server.reset()
    client = EcsClient(
        https_server.base_url,
        https_server.api_user,
        https_server.api_key,
        verify=https_server.ca_cert_path,
    )
    with pytest.raises(errors.AuthenticationError) as info:
        client.get_version()
    assert info.value.status == 401
    assert "client certificate is required" in str(info.value)
    client.close()


def test_proxy_refused(peer, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = peer.client(proxy=f"http://user:proxy-pass@127.0.0.1:{port}", sleep=sleeps, **FAST)
    if peer.name == "http":
        # A plain request would show the proxy the API key: a sandbox on this machine (the only
        # place http:// is allowed) is reached directly.
        assert client.get_version()
    else:
        with pytest.raises(errors.EcsConnectionError) as info:
            client.get_version()
        assert info.value.problem == errors.ConnectionProblem.PROXY
        assert "proxy-pass" not in str(info.value)
    client.close()


def test_plain_http_goes_nowhere_but_this_machine():
    with pytest.raises(ValueError, match="https"):
        EcsClient("http://ecs.example/enterprise/v2/", "user", "key")
    for host in ("localhost", "127.0.0.1", "127.8.0.1", "[::1]"):
        EcsClient(f"http://{host}:8443/enterprise/v2/", "user", "key").close()
