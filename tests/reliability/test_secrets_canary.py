"""Canary secrets typed and uploaded through the UI of a real `certdesk serve` — an API key, a
client-certificate key, private keys with a CSR and in a PKCS#12 file — never appear in the
database file, its WAL, the server's log of the whole run, or any page, fragment or export."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives import serialization

from tests.live import signed_in
from tests.unit.certs.factory import MiniPki, ec_key, key_pem, p12
from webapp import pki

SKIP = ("/logout", "/static/")


def _key_needles(key) -> list[bytes]:
    """What would betray a private key (and nothing public): its secret number, raw and in hex,
    and the first two lines of its unencrypted PEM, which carry that number."""
    numbers = key.private_numbers()
    secret = getattr(numbers, "private_value", None) or numbers.d
    raw = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    pem_lines = key_pem(key).decode().splitlines()[1:3]
    return [raw, raw.hex().encode(), raw.hex().upper().encode(), *(x.encode() for x in pem_lines)]


def _crawl(http, base: str, limit: int = 400) -> list[bytes]:
    """Every page reachable by links from the dashboard (and the CSV exports), with bodies."""
    seen, todo, bodies = set(), ["/"], []
    while todo and len(seen) < limit:
        path = todo.pop()
        if path in seen or any(s in path for s in SKIP):
            continue
        seen.add(path)
        resp = http.get(base + path, timeout=60)
        bodies.append(resp.content)
        if "text/html" not in resp.headers.get("Content-Type", ""):
            continue
        for href in re.findall(r'(?:href|hx-get)="([^"#]+)"', resp.text):
            href = href.replace("&amp;", "&")
            url = urlsplit(urljoin(base + path, href))
            if url.netloc == urlsplit(base).netloc:
                todo.append(url.path + (f"?{url.query}" if url.query else ""))
    return bodies


def test_secrets_never_leak(live_server, sandbox):
    sandbox.seed(certificates=5, seed=3)
    server = live_server
    http = signed_in(server, "admin")
    api_key = "CANARY-API-" + secrets.token_hex(12)
    client_t = MiniPki()
    client_key, client_cert = client_t.leaf("certdesk-client.example.com")
    csr_key = ec_key()
    cert_t = MiniPki()
    cert_key, cert = cert_t.leaf("vault.example.com")
    p12_password = "canary-p12-" + secrets.token_hex(4)
    sandbox.add_user("canary-user", api_key)  # the canary is a key Entrust accepts

    saved = http.post(
        server.url + "/entrust/manage/credentials/new",
        data={
            "name": "Canary",
            "api_user": "canary-user",
            "api_key": api_key,
            "base_url": sandbox.base_url,
            "is_admin": "1",
        },
        files={
            "client_cert": ("c.pem", client_cert.public_bytes(serialization.Encoding.PEM)),
            "client_key": ("k.pem", key_pem(client_key)),
        },
        timeout=60,
    )
    assert saved.status_code == 200 and "Canary" in saved.text, saved.text[:2000]
    test = http.post(
        server.url + "/entrust/manage/credentials/test",
        data={
            "name": "Canary",
            "api_user": sandbox.api_user,
            "base_url": sandbox.base_url,
            "credential_id": "1",
        },
        timeout=60,
    )
    assert test.status_code in (200, 422)
    csr = pki.build_csr(
        csr_key, {"CN": "canary.example.com"}, pki.SanSet(dns=["canary.example.com"])
    )
    imported = http.post(
        server.url + "/csrs/import",
        data={
            "csr_text": csr.public_bytes(serialization.Encoding.PEM).decode(),
            "key_text": key_pem(csr_key).decode(),
        },
        timeout=60,
    )
    assert imported.status_code == 200 and "imported" in imported.text
    uploaded = http.post(
        server.url + "/certificates/import",
        data={"password": p12_password},
        files={"files": ("v.p12", p12(cert_key, cert, cert_t.chain, p12_password))},
        timeout=60,
    )
    assert uploaded.status_code == 200 and "private key" in uploaded.text

    bodies = [saved.content, test.content, imported.content, uploaded.content]
    bodies += _crawl(http, server.url)
    bodies += _crawl(signed_in(server, "auditor"), server.url, limit=150)
    assert len(bodies) > 40

    needles = [api_key.encode(), p12_password.encode()]
    for key in (client_key, csr_key, cert_key):
        needles += _key_needles(key)
    stored = b"".join(
        (server.instance / name).read_bytes()
        for name in ("certdesk.db", "certdesk.db-wal", "certdesk.db-shm")
        if (server.instance / name).exists()
    )
    log = "\n".join(server.lines).encode()
    for needle in needles:
        assert needle not in stored, "a secret is in the database file in plaintext"
        assert needle not in log, "a secret is in the server's log"
        for body in bodies:
            assert needle not in body, "a secret is in a response"
    # The canaries were really stored (sealed): the credential logs in with its key.
    tested = http.post(server.url + "/entrust/manage/credentials/1/test", timeout=60)
    assert tested.status_code == 200
    assert "Login OK" in http.get(server.url + "/entrust/manage/", timeout=30).text
