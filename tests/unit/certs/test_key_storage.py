"""No private key is stored in plaintext: search the SQLite file and its WAL for the PEM body."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from tests.unit.certs.factory import MiniPki, p12
from webapp.certificates import service as certificates
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.keys.models import PrivateKey


def _body(key) -> bytes:
    """The base64 body of the key's PEM (any 48-char line of it would betray the key)."""
    text = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return b"".join(text.splitlines()[1:-1])


@pytest.mark.sqlite_only
def test_no_private_key_in_plaintext(app, instance, user):
    admin = user["admin"]
    row = csrs.create_csr(admin, "rsa2048", {"CN": "plain.example.com"}, "")
    made = keys.open_key(row.private_key)
    t = MiniPki()
    key, cert = t.leaf("p12.example.com")
    result = certificates.import_files(
        admin, [("x.p12", p12(key, cert, t.chain, "pw-123456"))], "pw-123456"
    )
    assert result.keys == 1
    db.session.commit()
    files = [p for p in instance.iterdir() if p.name.startswith("certdesk.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert any(p.name.endswith("-wal") for p in files) or raw
    for k in (made, key):
        body = _body(k)
        der = base64.b64decode(body)
        for needle in (body[:48], body[-48:], der[-64:]):
            assert needle not in raw
    sealed = db.session.query(PrivateKey.sealed_pem).all()
    assert len(sealed) == 2 and all(s.startswith("v1:") for (s,) in sealed)
