"""The ECS client against the real sandbox, over plain HTTP and over HTTPS with a client cert.

One sandbox server per transport for the whole session; every test starts from ``reset()`` and
a small deterministic seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from webapp.ecs import EcsClient

testing = pytest.importorskip("entrust_sandbox.testing")

MTLS_USER = "mtls-api-user"
MTLS_KEY = "mtls-api-key-0123456789"
SEED_CERTIFICATES = 12


@dataclass
class Peer:
    """A running sandbox and how to reach it as one API user."""

    name: str
    server: object
    api_user: str
    api_key: str
    verify: bool | str = True
    client_cert_pem: str | None = None
    client_key_pem: str | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, **kwargs) -> EcsClient:
        kwargs.setdefault("connect_timeout", 5.0)
        kwargs.setdefault("read_timeout", 30.0)
        kwargs.setdefault("sleep", lambda s: None)
        return EcsClient(
            self.server.base_url,
            kwargs.pop("api_user", self.api_user),
            kwargs.pop("api_key", self.api_key),
            verify=kwargs.pop("verify", self.verify),
            client_cert_pem=kwargs.pop("client_cert_pem", self.client_cert_pem),
            client_key_pem=kwargs.pop("client_key_pem", self.client_key_pem),
            **kwargs,
        )

    def api_requests(self, method: str | None = None, suffix: str | None = None) -> list[dict]:
        """The sandbox's request log, optionally only one method and path ending."""
        out = []
        for entry in self.server.requests():
            if method and entry.get("method") != method:
                continue
            if suffix and not str(entry.get("path", "")).rstrip("/").endswith(suffix):
                continue
            out.append(entry)
        return out


@pytest.fixture(scope="session")
def http_server():
    with testing.SandboxServer() as server:
        yield server


@pytest.fixture(scope="session")
def https_server():
    # The harness's control session sets `verify` on a requests.Session, which requests lets
    # REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override; without them it verifies against the sandbox CA.
    # (Our EcsClient ignores the environment, so this affects only the harness.)
    # The administrator user needs the client certificate and survives every reset().
    with (
        pytest.MonkeyPatch.context() as mp,
        testing.SandboxServer(
            https=True, require_client_cert_user=True, api_user=MTLS_USER, api_key=MTLS_KEY
        ) as server,
    ):
        mp.delenv("REQUESTS_CA_BUNDLE", raising=False)
        mp.delenv("CURL_CA_BUNDLE", raising=False)
        cert_path, key_path = server.client_cert
        with open(cert_path) as fh:
            server.client_cert_pem = fh.read()
        with open(key_path) as fh:
            server.client_key_pem = fh.read()
        yield server


@pytest.fixture(params=["http", "https-mtls"])
def peer(request) -> Peer:
    """The sandbox, reset and seeded, with the user to talk to it as (per transport)."""
    if request.param == "http":
        server = request.getfixturevalue("http_server")
        found = Peer("http", server, server.api_user, server.api_key)
    else:
        server = request.getfixturevalue("https_server")
        found = Peer(
            "https-mtls",
            server,
            MTLS_USER,
            MTLS_KEY,
            verify=server.ca_cert_path,
            client_cert_pem=server.client_cert_pem,
            client_key_pem=server.client_key_pem,
        )
    server.reset()
    server.seed(certificates=SEED_CERTIFICATES, seed=7)
    server.clear_requests()
    return found


@pytest.fixture
def ecs(peer):
    client = peer.client()
    yield client
    client.close()
