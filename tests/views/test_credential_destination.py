"""A saved credential's secrets go only where they were entered for (CD-7 #9): when the base URL,
the proxy or the CA bundle changes, the stored API key and client key are not used until they are
entered again, by Test Login or by Save."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from tests.live import free_port
from tests.unit.test_credentials import make_cert, pem
from webapp.credentials import clients, service
from webapp.credentials.models import EcsCredential
from webapp.extensions import db

STORED_KEY = "stored-api-key-4711"


class _Listener(BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def elsewhere():
    """Another host: an HTTP listener that notes every Authorization header it is sent."""
    _Listener.seen = []
    server = HTTPServer(("127.0.0.1", free_port()), _Listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/enterprise/v2/", _Listener.seen
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fast_client(monkeypatch):
    monkeypatch.setattr(clients, "CLIENT_OPTIONS", {"sleep": lambda s: None})


@pytest.fixture
def saved(app, user, sandbox):
    cred, _ = service.create(
        user["admin"],
        service.CredentialInput(
            name="Prod", api_user="prod-user", api_key=STORED_KEY, base_url=sandbox.base_url
        ),
        start_sync=False,
    )
    return cred


def _form(cred, **over):
    values = {
        "credential_id": str(cred.id),
        "name": cred.name,
        "api_user": cred.api_user,
        "api_key": "",
        "base_url": cred.base_url,
        "proxy": cred.proxy,
        "is_admin": "1",
    }
    values.update(over)
    return values


def test_test_login_does_not_send_the_stored_key_to_a_new_base_url(admin_client, saved, elsewhere):
    url, seen = elsewhere
    resp = admin_client.post("/entrust/manage/credentials/test", data=_form(saved, base_url=url))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "enter the API key again" in body
    assert seen == []
    # Typed again, the key goes (it is the one the administrator just entered).
    admin_client.post(
        "/entrust/manage/credentials/test", data=_form(saved, base_url=url, api_key="typed-now")
    )
    assert len(seen) == 1 and seen[0].startswith("Basic ")
    import base64

    assert base64.b64decode(seen[0][6:]).decode() == "prod-user:typed-now"


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://127.0.0.1:9/other/v2/"},
        {"proxy": "http://127.0.0.1:3128"},
    ],
)
def test_save_with_a_new_destination_needs_the_key_again(admin_client, saved, change):
    before = (saved.base_url, saved.proxy, saved.api_key_sealed)
    url = f"/entrust/manage/credentials/{saved.id}"
    for endpoint in (url, "/entrust/manage/credentials/test"):
        resp = admin_client.post(endpoint, data=_form(saved, **change))
        assert resp.status_code == 422, endpoint
        assert "enter the API key again" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert (saved.base_url, saved.proxy, saved.api_key_sealed) == before
    ok = admin_client.post(url, data=_form(saved, api_key="a-new-key", **change))
    assert ok.status_code == 303


def test_a_new_or_removed_ca_bundle_needs_the_key_again(admin_client, saved):
    cert, key = make_cert("gateway-ca")
    bundle, _ = pem(cert, key)
    url = f"/entrust/manage/credentials/{saved.id}"
    resp = admin_client.post(
        url,
        data={**_form(saved), "ca_bundle": (io.BytesIO(bundle), "ca.pem")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422 and "enter the API key again" in resp.get_data(as_text=True)
    resp = admin_client.post(
        url,
        data={**_form(saved, api_key="k2"), "ca_bundle": (io.BytesIO(bundle), "ca.pem")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    removal = admin_client.post(url, data=_form(saved, remove_ca_bundle="1"))
    assert removal.status_code == 422


def test_the_stored_client_key_is_not_used_for_a_new_destination(admin_client, saved):
    cert, key = make_cert("client")
    cert_pem, key_pem = pem(cert, key)
    url = f"/entrust/manage/credentials/{saved.id}"
    resp = admin_client.post(
        url,
        data={
            **_form(saved),
            "client_cert": (io.BytesIO(cert_pem), "c.pem"),
            "client_key": (io.BytesIO(key_pem), "k.pem"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    moved = admin_client.post(
        url, data=_form(saved, base_url="http://127.0.0.1:9/other/v2/", api_key="k3")
    )
    body = moved.get_data(as_text=True)
    assert moved.status_code == 422 and "client certificate and its key again" in body


def test_an_unchanged_destination_keeps_using_the_stored_key(admin_client, saved, sandbox):
    resp = admin_client.post("/entrust/manage/credentials/test", data=_form(saved))
    assert resp.status_code == 200  # Test Login ran (with the stored key)
    assert (
        admin_client.post(f"/entrust/manage/credentials/{saved.id}", data=_form(saved)).status_code
        == 303
    )
    # the same URL without its trailing slash is the same destination
    same = _form(saved, base_url=saved.base_url.rstrip("/"))
    assert (
        admin_client.post(f"/entrust/manage/credentials/{saved.id}", data=same).status_code == 303
    )
    assert db.session.execute(select(EcsCredential)).scalar_one().api_key_sealed


def test_the_form_says_so_next_to_the_key(admin_client, saved):
    page = admin_client.get(f"/entrust/manage/credentials/{saved.id}").get_data(as_text=True)
    assert "the base URL, proxy or CA bundle" in page
