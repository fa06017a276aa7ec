"""ECS errors in words: every error class of the ECS client has wording a person can act on."""

from __future__ import annotations

import inspect

import pytest

from webapp.credentials import wording
from webapp.ecs import errors
from webapp.ecs.errors import ConnectionProblem

URL = "https://ecs.example.com/enterprise/v2/"
GENERIC = "Entrust answered with an error"


@pytest.mark.parametrize(
    "exc,words",
    [
        (
            errors.AuthenticationError(status=401, messages=["Invalid API username or key"]),
            "Wrong user name or API key",
        ),
        (
            errors.AuthenticationError(
                status=401, messages=["A client certificate is required for this API user"]
            ),
            "Client certificate required",
        ),
        (
            errors.AuthenticationError(
                status=401, messages=["The client certificate does not belong to this API user"]
            ),
            "Client certificate rejected",
        ),
        (
            errors.AuthenticationError(status=403, messages=["Not an administrator"]),
            "An Entrust administrator can do it",
        ),
        (errors.EcsConnectionError("x", problem=ConnectionProblem.DNS), "Host unreachable"),
        (errors.EcsConnectionError("x", problem=ConnectionProblem.REFUSED), "Host unreachable"),
        (errors.EcsConnectionError("x", problem=ConnectionProblem.UNREACHABLE), "Host unreachable"),
        (errors.EcsConnectionError("x", problem=ConnectionProblem.RESET), "was cut off"),
        (errors.EcsConnectionError("x", problem=ConnectionProblem.OTHER), "Could not connect"),
        (
            errors.EcsConnectionError(
                "407 Proxy Authentication Required", problem=ConnectionProblem.PROXY
            ),
            "Proxy refused",
        ),
        (
            errors.EcsConnectionError("certificate verify failed", problem=ConnectionProblem.TLS),
            "TLS error",
        ),
        (errors.EcsTimeout("no connection within 10 s", phase="connect"), "Timeout: no connection"),
        (errors.EcsTimeout("no answer within 60 s", phase="read"), "did not answer in time"),
        (errors.NotFoundError(status=404, path="/application/version"), "/enterprise/v2/"),
        (
            errors.NotFoundError(status=404, path="/certificates/4711", messages=["Unknown"]),
            "does not know the order with tracking ID 4711",
        ),
        (errors.NotFoundError(status=404, path="/customFields"), "not enabled"),
        (errors.MalformedResponseError("expected JSON, got text/html"), "not as the ECS API does"),
        (errors.PagingError("empty page at offset 1000 of 3000"), "broke off part-way"),
        (errors.RateLimitedError(status=429, retry_after=3), "Try again in 3 s"),
        (errors.ServerError(status=502, messages=["Bad gateway"]), "Entrust server error"),
        (
            errors.ConflictError(status=400, messages=["Certificate cannot be revoked"]),
            "in the order's current state: Certificate cannot be revoked",
        ),
        (
            errors.ValidationError(status=400, messages=["Unapproved OU"]),
            "Entrust refused the request: Unapproved OU",
        ),
        (errors.EcsError(status=418, messages=["teapot"]), "teapot"),
    ],
)
def test_errors_in_words(exc, words):
    assert words in wording.describe(exc, URL, has_cert=False)


def test_every_error_class_has_its_own_words():
    """A new error class in webapp.ecs.errors without wording here fails this test."""
    for _name, cls in inspect.getmembers(errors, inspect.isclass):
        if not issubclass(cls, errors.EcsError) or cls is errors.EcsError:
            continue
        text = wording.describe(cls("detail", status=400, messages=["said"]), URL)
        assert not text.startswith(GENERIC), cls


def test_field_errors_are_named_one_by_one():
    exc = errors.ValidationError(
        status=400,
        messages=["The key size must be 2048 bits or more.", "Domain not approved"],
        field_errors={"csr": ["The key size must be 2048 bits or more."]},
    )
    text = wording.describe(exc, URL)
    assert "csr: The key size must be 2048 bits or more." in text
    assert "Domain not approved" in text
    assert wording.field_messages(exc) == {"csr": "The key size must be 2048 bits or more."}


def test_an_unknown_outcome_is_said():
    exc = errors.ServerError(status=500, outcome_unknown=True, method="POST", path="/certificates")
    assert "may have taken effect at Entrust" in wording.describe(exc, URL)
    assert "may have taken effect" not in wording.describe(errors.ServerError(status=500), URL)


def test_tls_rejection_of_the_client_certificate():
    exc = errors.EcsConnectionError(
        "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required",
        problem=ConnectionProblem.TLS,
    )
    assert "rejected the client certificate" in wording.describe(exc, URL, has_cert=True)
