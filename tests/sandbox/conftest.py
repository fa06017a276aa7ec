"""Fixtures: one sandbox server per session, reset and seeded before each test."""

from __future__ import annotations

import pytest
import requests

from entrust_sandbox.ca import make_csr
from entrust_sandbox.testing import SandboxServer

SEED_CERTIFICATES = 300


@pytest.fixture(scope="session")
def server():
    with SandboxServer() as sb:
        yield sb


@pytest.fixture
def sb(server):
    """The session server, reset and seeded with a small deterministic account."""
    server.reset()
    server.seed(certificates=SEED_CERTIFICATES, seed=42)
    return server


class Api:
    """A tiny client for the tests: base URL, credentials, and JSON helpers."""

    def __init__(self, sb, user=None, key=None, **session_options):
        self.base = sb.base_url
        self.session = requests.Session()
        self.session.auth = (user or sb.api_user, key or sb.api_key)
        self.session.headers["Content-Type"] = "application/json"
        for name, value in session_options.items():
            setattr(self.session, name, value)

    def get(self, path, **kw):
        return self.session.get(self.base + path, timeout=30, **kw)

    def post(self, path, body=None, **kw):
        return self.session.post(self.base + path, json=body, timeout=30, **kw)

    def patch(self, path, body=None, **kw):
        return self.session.patch(self.base + path, json=body, timeout=30, **kw)

    def put(self, path, body=None, **kw):
        return self.session.put(self.base + path, json=body, timeout=30, **kw)

    def order(self, common_name="www.example.com", cert_type="STANDARD_SSL", **fields):
        """POST a new order with a CSR for `common_name`; return the response."""
        csr, _ = make_csr(common_name)
        body = {"certType": cert_type, "csr": csr}
        body.update(fields)
        return self.post("certificates", body)


@pytest.fixture
def api(sb):
    api = Api(sb)
    yield api
    api.session.close()


def assert_error(response, status, field=None):
    """The response is `status` with the ECS error envelope (and the field, if given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["errors"], list) and body["errors"]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return body
