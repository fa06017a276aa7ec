"""Every error class: mapping from statuses, the ECS envelope and transport failures."""

from __future__ import annotations

import logging

import pytest
import requests
import urllib3.exceptions

from webapp.ecs import errors

from .helpers import KEY, USER, url

ENVELOPE_400 = {
    "status": 400,
    "errors": [
        {"message": "The key size must be 1024, 1536, 2048, 3072 or 4096 bits.", "field": "csr"},
        {"message": "Unapproved OU", "field": "ou"},
        {"message": "Something general"},
    ],
}


def test_validation_error_keeps_fields(client, rsps):
    rsps.post(url("certificates"), status=400, json=ENVELOPE_400)
    with pytest.raises(errors.ValidationError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    err = info.value
    assert (err.method, err.path, err.status) == ("POST", "/certificates", 400)
    assert err.field_errors == {
        "csr": ["The key size must be 1024, 1536, 2048, 3072 or 4096 bits."],
        "ou": ["Unapproved OU"],
    }
    assert err.messages[-1] == "Something general"
    assert not err.outcome_unknown  # a 400 is a definite "no"
    text = str(err)
    assert "POST /certificates" in text and "HTTP 400" in text
    assert "csr: The key size must be" in text and "Something general" in text


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("Certificate cannot be revoked", errors.ConflictError),
        ("Invalid state for operation APPROVE: certificate is ACTIVE", errors.ConflictError),
        ("declineReason is too long", errors.ValidationError),
    ],
)
def test_state_errors_are_conflicts(client, rsps, message, cls):
    rsps.post(
        url("certificates/1/revocations"),
        status=400,
        json={"status": 400, "errors": [{"message": message}]},
    )
    with pytest.raises(errors.EcsError) as info:
        client.revoke(1)
    assert type(info.value) is cls
    assert info.value.messages == [message]


def test_409_is_conflict(client, rsps):
    rsps.patch(
        url("certificates/1"), status=409, json={"status": 409, "errors": [{"message": "x"}]}
    )
    with pytest.raises(errors.ConflictError):
        client.suspend(1)


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_error_has_server_message(client, rsps, status):
    rsps.get(
        url("application/version"),
        status=status,
        json={"status": status, "errors": [{"message": "Invalid credentials"}]},
    )
    with pytest.raises(errors.AuthenticationError) as info:
        client.get_version()
    assert info.value.status == status
    assert "Invalid credentials" in str(info.value)
    assert len(rsps.calls) == 1  # never retried


def test_not_found(client, rsps):
    rsps.get(
        url("certificates/9"),
        status=404,
        json={"status": 404, "errors": [{"message": "Unknown trackingId"}]},
    )
    with pytest.raises(errors.NotFoundError) as info:
        client.get_certificate(9)
    assert info.value.messages == ["Unknown trackingId"]
    assert len(rsps.calls) == 1


def test_nested_cause_is_kept(client, rsps):
    rsps.get(
        url("clients/1"),
        status=400,
        json={"status": 400, "errors": [{"message": "Bad", "cause": {"message": "deeper"}}]},
    )
    with pytest.raises(errors.ValidationError) as info:
        client.get_client(1)
    assert info.value.messages == ["Bad (deeper)"]


def test_what_an_error_body_says_is_kept_within_bounds(client, rsps):
    """A server may send anything: a message of 100,000 characters, a cause nested 900 deep,
    thousands of errors. What is kept fits a page, a log line and a flashed notice's cookie."""
    from webapp.ecs.client import MESSAGE_CHARS, MESSAGES_KEPT

    deep: dict = {"message": "bottom"}
    for n in range(900):
        deep = {"message": f"level {n}", "cause": deep}
    body = {
        "status": 400,
        "errors": [
            {"message": "x" * 100_000, "field": "f" * 10_000},
            {"message": "Bad", "cause": deep},
            *({"message": f"error {n}"} for n in range(5000)),
        ],
    }
    rsps.post(url("certificates"), status=400, json=body)
    with pytest.raises(errors.ValidationError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    err = info.value
    assert len(err.messages) == MESSAGES_KEPT
    assert all(len(m) <= MESSAGE_CHARS for m in err.messages)
    assert err.messages[0] == "x" * (MESSAGE_CHARS - 1) + "…"
    assert err.messages[1].startswith("Bad (level 899) (level 898)")
    assert [len(k) for k in err.field_errors] == [MESSAGE_CHARS]
    assert len(str(err)) < (MESSAGES_KEPT + 2) * MESSAGE_CHARS


def test_rate_limited_on_post_is_not_retried(client, rsps, fake_time):
    rsps.post(
        url("certificates"),
        status=429,
        json={"status": 429, "errors": [{"message": "Too many requests"}]},
        headers={"Retry-After": "2", "X-Rate-Limit-Limit": "100"},
    )
    with pytest.raises(errors.RateLimitedError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    assert info.value.retry_after == 2
    assert not info.value.outcome_unknown
    assert "retry after 2 s" in str(info.value)
    assert len(rsps.calls) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_on_post_is_outcome_unknown(client, rsps, status):
    rsps.post(
        url("certificates"), status=status, json={"status": status, "errors": [{"message": "boom"}]}
    )
    with pytest.raises(errors.ServerError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    assert info.value.outcome_unknown
    assert "outcome unknown" in str(info.value)
    assert len(rsps.calls) == 1


def test_html_error_page_on_error_status(client, rsps):
    rsps.get(
        url("clients"),
        status=502,
        body="<html><title>502 Bad Gateway</title></html>",
        content_type="text/html",
    )
    client.max_get_attempts = 1
    with pytest.raises(errors.ServerError) as info:
        client.list_clients()
    assert "not an ECS error body (text/html)" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"body": "<html>login</html>", "content_type": "text/html"},
            "expected JSON, got text/html",
        ),
        ({"body": '{"clients": [', "content_type": "application/json"}, "cut off"),
        ({"body": "nope", "content_type": "application/json"}, "not valid JSON"),
        ({"json": ["a list"]}, "expected a JSON object"),
        ({"json": {"other": []}}, "no 'clients'"),
        ({"json": {"clients": [{"clientName": "no id"}]}}, "unexpected JSON shape"),
        ({"json": {"clients": {"clientId": 1}}}, "'clients' is not a list"),
    ],
)
def test_malformed_responses(client, rsps, kwargs, reason):
    rsps.get(url("clients"), status=200, **kwargs)
    with pytest.raises(errors.MalformedResponseError) as info:
        client.list_clients()
    assert reason in str(info.value)
    assert info.value.method == "GET" and info.value.path == "/clients"
    assert len(rsps.calls) == 1  # a wrong body is not retried


def test_malformed_success_body_on_post_is_outcome_unknown(client, rsps):
    rsps.post(url("certificates"), status=201, body="{", content_type="application/json")
    with pytest.raises(errors.MalformedResponseError) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    assert info.value.outcome_unknown
    rsps.post(url("certificates/1/renewals"), status=201, json={"no": "trackingId"})
    with pytest.raises(errors.MalformedResponseError) as info:
        client.renew(1)
    assert info.value.outcome_unknown


def test_redirect_is_not_followed(client, rsps):
    rsps.get(url("clients"), status=302, headers={"Location": "https://user:pw@login.example/"})
    with pytest.raises(errors.MalformedResponseError) as info:
        client.list_clients()
    assert "redirect" in str(info.value) and "pw" not in str(info.value)


def _conn_error(inner):
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", inner))


@pytest.mark.parametrize(
    ("exc", "cls", "problem", "unknown_on_post"),
    [
        (requests.exceptions.ConnectTimeout("t"), errors.EcsTimeout, None, False),
        (requests.exceptions.ReadTimeout("t"), errors.EcsTimeout, None, True),
        (
            requests.exceptions.SSLError("cert verify failed"),
            errors.EcsConnectionError,
            "tls",
            False,
        ),
        (requests.exceptions.ProxyError("407"), errors.EcsConnectionError, "proxy", False),
        (
            _conn_error(urllib3.exceptions.NameResolutionError("h", None, OSError("no name"))),
            errors.EcsConnectionError,
            "dns",
            False,
        ),
        (
            _conn_error(urllib3.exceptions.NewConnectionError(None, "[Errno 111] refused")),
            errors.EcsConnectionError,
            "unreachable",
            False,
        ),
        (
            requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused")),
            errors.EcsConnectionError,
            "refused",
            False,
        ),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))
            ),
            errors.EcsConnectionError,
            "reset",
            True,
        ),
    ],
)
def test_transport_failures(client, rsps, exc, cls, problem, unknown_on_post):
    rsps.post(url("certificates"), body=exc)
    with pytest.raises(cls) as info:
        client.new_certificate({"certType": "STANDARD_SSL"})
    err = info.value
    assert type(err) is cls
    assert err.status is None and err.path == "/certificates"
    assert err.outcome_unknown is unknown_on_post
    if problem:
        assert err.problem == problem
    assert len(rsps.calls) == 1


def test_connection_error_labels_are_distinct():
    labels = {
        str(errors.EcsConnectionError("x", problem=p, method="GET", path="/a")).split(":")[0]
        for p in errors.ConnectionProblem
    }
    assert len(labels) == len(errors.ConnectionProblem)
    assert "TLS error" in labels and "proxy error" in labels and "host unreachable" in labels


def test_proxy_credentials_are_scrubbed(make_client, rsps):
    client = make_client(proxy="http://puser:ppass@proxy.local:3128")
    rsps.get(
        url("clients"),
        body=requests.exceptions.ProxyError(
            "Cannot connect to proxy http://puser:ppass@proxy.local:3128"
        ),
    )
    client.max_get_attempts = 1
    with pytest.raises(errors.EcsConnectionError) as info:
        client.list_clients()
    assert "ppass" not in str(info.value)
    assert "***@proxy.local" in str(info.value)


def test_no_secret_in_errors_or_logs(client, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.get(url("application/version"), json={"version": "1"})
    rsps.post(url("certificates"), status=400, json=ENVELOPE_400)
    rsps.get(url("clients"), status=401, json={"status": 401, "errors": [{"message": "denied"}]})
    rsps.patch(url("certificates/3"), body=requests.exceptions.ReadTimeout("t"))
    client.get_version()
    raised = []
    for call in (
        lambda: client.new_certificate({"certType": "X", "csr": "C"}),
        client.list_clients,
        lambda: client.suspend(3),
    ):
        with pytest.raises(errors.EcsError) as info:
            call()
        raised.append(info.value)
    texts = [str(e) + repr(e) + str(e.args) for e in raised] + [caplog.text]
    import base64

    basic = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    for text in texts:
        assert KEY not in text
        assert basic not in text
        assert "Authorization" not in text
    assert "GET /application/version -> 200" in caplog.text
    assert "POST /certificates -> 400" in caplog.text
    assert "webapp.ecs" in {r.name for r in caplog.records}


def test_operation_state_error_with_operation_field_is_conflict(client, rsps):
    message = "Operation APPROVE is not valid for a certificate in status ACTIVE"
    rsps.patch(
        url("certificates/1"),
        status=400,
        json={"status": 400, "errors": [{"message": message, "field": "operation"}]},
    )
    with pytest.raises(errors.ConflictError) as info:
        client.approve(1)
    assert info.value.field_errors == {"operation": [message]}


def test_state_words_on_an_input_field_stay_validation(client, rsps):
    rsps.post(
        url("certificates"),
        status=400,
        json={
            "status": 400,
            "errors": [{"message": "The client is not approved", "field": "clientId"}],
        },
    )
    with pytest.raises(errors.ValidationError):
        client.new_certificate({"certType": "STANDARD_SSL"})


def test_log_line_has_status_elapsed_and_ecs_elapsed(client, rsps, caplog, fake_time):
    caplog.set_level(logging.INFO, logger="webapp.ecs")
    rsps.get(
        url("certificates"),
        json={"summary": {"total": 0, "elapsed": 380}, "certificates": []},
    )
    list(client.iter_certificates())
    record = next(r for r in caplog.records if r.name == "webapp.ecs")
    message = record.getMessage()
    assert message.startswith("ECS GET /certificates -> 200 in ")
    assert "(ECS elapsed 380 ms)" in message
    assert "offset" not in message  # the query (which may carry search terms) is not logged
