"""Credential service: validation, sealing, client-certificate uploads, admin flag."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import select, text

from webapp import hooks
from webapp.audit.models import AuditEvent
from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
from webapp.credentials import clients, service
from webapp.credentials.models import EcsCredential
from webapp.ecs import errors
from webapp.extensions import LARGE_WRITE_CACHE_KIB, db

API_KEY = "unit-api-key-Zq81"


def make_cert(cn="certdesk-client"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def pem(cert, key, password=None):
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
    )


def data(**kw):
    kw.setdefault("name", "Main")
    kw.setdefault("api_user", "api-user")
    kw.setdefault("api_key", API_KEY)
    kw.setdefault("base_url", "http://127.0.0.1:9/enterprise/v2/")
    return service.CredentialInput(**kw)


def test_create_seals_the_key_and_audits_without_it(app, user):
    cred, job = service.create(user["admin"], data(), start_sync=False)
    assert job is None
    assert API_KEY not in cred.api_key_sealed and cred.api_key_sealed.startswith("v1:")
    ev = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.create")
    ).scalar_one()
    assert API_KEY not in ev.detail and "Main" in ev.detail


def test_client_for_opens_the_secrets_and_uses_settings(app, user):
    cert, key = make_cert()
    cert_pem, key_pem = pem(cert, key)
    cred, _ = service.create(
        user["admin"],
        data(
            base_url="https://127.0.0.1:9/enterprise/v2/",
            client_cert_pem=cert_pem,
            client_key_pem=key_pem,
        ),
        start_sync=False,
    )
    assert cred.client_cert_subject == "CN=certdesk-client"
    assert key_pem.decode().splitlines()[1] not in cred.client_key_sealed
    client = clients.client_for(cred)
    assert client.has_client_cert and client.connect_timeout == 10 and client.read_timeout == 60
    assert client.rate_budget is clients.client_for(cred).rate_budget  # one budget per credential
    assert client.rate_budget.per_minute == 120
    assert API_KEY not in repr(client)


def test_pkcs12_upload_and_its_errors(app, user):
    cert, key = make_cert("p12-client")
    p12 = pkcs12.serialize_key_and_certificates(
        b"x", key, cert, None, serialization.BestAvailableEncryption(b"pw-123")
    )
    with pytest.raises(service.CredentialError) as exc:
        service.create(user["admin"], data(pkcs12=p12, pkcs12_password="wrong"), start_sync=False)
    assert exc.value.field == "pkcs12" and "wrong password" in str(exc.value)
    cred, _ = service.create(
        user["admin"], data(pkcs12=p12, pkcs12_password="pw-123"), start_sync=False
    )
    assert cred.client_cert_subject == "CN=p12-client"
    assert "pw-123" not in str([getattr(cred, c.name) for c in EcsCredential.__table__.columns])


def test_mismatched_or_encrypted_keys_are_refused_in_words(app, user):
    cert, _ = make_cert()
    other_cert, other_key = make_cert()
    cert_pem, _ = pem(cert, other_key)
    _, other_key_pem = pem(other_cert, other_key)
    with pytest.raises(service.CredentialError, match="does not belong"):
        service.create(
            user["admin"],
            data(client_cert_pem=cert_pem, client_key_pem=other_key_pem),
            start_sync=False,
        )
    _, enc_key = pem(other_cert, other_key, password=b"pw")
    other_pem, _ = pem(other_cert, other_key)
    with pytest.raises(service.CredentialError, match="encrypted"):
        service.create(
            user["admin"], data(client_cert_pem=other_pem, client_key_pem=enc_key), start_sync=False
        )
    with pytest.raises(service.CredentialError, match="together"):
        service.create(user["admin"], data(client_cert_pem=other_pem), start_sync=False)
    assert db.session.execute(select(EcsCredential)).first() is None


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", ""),
        ("api_user", " "),
        ("api_key", ""),
        ("base_url", "ftp://x"),
        ("proxy", "nope"),
        ("proxy", "http://user:secret@proxy.example:3128"),
    ],
)
def test_invalid_input_names_the_field(app, user, field, value):
    with pytest.raises(service.CredentialError) as exc:
        service.create(user["admin"], data(**{field: value}), start_sync=False)
    assert exc.value.field == field


def test_names_are_unique_among_live_credentials(app, user):
    cred, _ = service.create(user["admin"], data(), start_sync=False)
    with pytest.raises(service.CredentialError, match="already exists"):
        service.create(user["admin"], data(name="main"), start_sync=False)
    service.delete(user["admin"], cred, confirmed=True)
    again, _ = service.create(user["admin"], data(), start_sync=False)
    assert again.id != cred.id


@pytest.mark.parametrize(
    ("first", "second"), [("Äpfel", "äpfel"), ("ασ", "ΑΣ"), ("Straße", "STRASSE")]
)
def test_names_are_unique_whatever_their_case_beyond_ascii_on_every_database(
    app, user, first, second
):
    service.create(user["admin"], data(name=first), start_sync=False)
    with pytest.raises(service.CredentialError, match="already exists") as exc:
        service.create(user["admin"], data(name=second), start_sync=False)
    assert exc.value.field == "name"
    assert [c.name for c in service.list_credentials()] == [first]


def test_a_client_key_is_sized_before_its_primes_are_tested(app, user):
    """The client key goes through the checks every other key upload has: a 16,384-bit RSA key
    (25 s of prime tests when opened) is refused by its size, and a weak one by its size too."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.unit.certs import hostile

    cert, _ = make_cert()
    cert_pem, _ = pem(cert, ec.generate_private_key(ec.SECP256R1()))
    for key, said in (
        (hostile.rsa_key_of(16384), "RSA 16384 is larger than CertDesk takes"),
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA 1024 is too weak"),  # noqa: S505
    ):
        _, key_pem = pem(cert, key)
        with pytest.raises(service.CredentialError, match=said) as exc:
            service.create(
                user["admin"],
                data(client_cert_pem=cert_pem, client_key_pem=key_pem),
                start_sync=False,
            )
        assert exc.value.field == "client_key"
    with pytest.raises(service.CredentialError, match="not a PEM key"):
        service.create(
            user["admin"],
            data(client_cert_pem=cert_pem, client_key_pem=b"\x30\x00"),
            start_sync=False,
        )
    assert db.session.execute(select(EcsCredential)).first() is None


def test_a_name_saved_meanwhile_in_another_case_is_refused(app, user):
    """Another request saves "Main" while this one checks "MAIN": the check cannot see the
    uncommitted row, so only the database's index, which ignores case, keeps the two apart."""
    import threading

    from sqlalchemy import create_engine, insert
    from sqlalchemy.exc import IntegrityError

    other = create_engine(db.engine.url).connect()
    tx = other.begin()
    other.execute(insert(EcsCredential).values(name="Main", api_user="u", base_url="http://x/"))
    committed = threading.Timer(1.0, tx.commit)  # while this request waits to insert
    committed.start()
    try:
        with pytest.raises(IntegrityError):
            service.create(user["admin"], data(name="MAIN"), start_sync=False)
    finally:
        committed.join()
        other.close()
    db.session.rollback()
    names = db.session.execute(select(EcsCredential.name)).scalars().all()
    assert names == ["Main"]


def test_edit_keeps_the_key_when_left_empty(app, user):
    cred, _ = service.create(user["admin"], data(), start_sync=False)
    sealed = cred.api_key_sealed
    changed = service.update(user["admin"], cred, data(name="Renamed", api_key=""))
    assert changed == ["name"] and cred.api_key_sealed == sealed
    service.update(user["admin"], cred, data(name="Renamed", api_key="new-key"))
    assert cred.api_key_sealed != sealed


def test_delete_needs_confirmation_and_keeps_the_row(app, user):
    cred, _ = service.create(user["admin"], data(), start_sync=False)

    def three_orders(credential):
        return (3, "orders")

    hooks.on("credential.references")(three_orders)
    try:
        with pytest.raises(service.CredentialError, match="3 orders"):
            service.delete(user["admin"], cred, confirmed=False)
        detail = service.delete(user["admin"], cred, confirmed=True)
    finally:
        hooks._handlers["credential.references"].remove(three_orders)
    assert detail["orders"] == 3
    assert service.get(cred.id) is None
    kept = service.get(cred.id, include_deleted=True)
    assert kept.deleted_at and kept.api_key_sealed == "" and not kept.enabled
    with pytest.raises(clients.ClientUnavailable, match="deleted"):
        clients.client_for(kept)


def test_delete_marks_exactly_its_catalog_rows_gone_in_a_large_page_cache(app, user):
    """Delete marks the credential's catalog rows gone (not another credential's, and not rows
    gone before, whose time stays), all at the same time, audits the counts, and does it with
    SQLite's page cache for large writes, put back to its usual size afterwards."""
    mine, _ = service.create(user["admin"], data(), start_sync=False)
    other, _ = service.create(user["admin"], data(name="Other"), start_sync=False)
    before = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for cred in (mine, other):
        db.session.add_all(
            [
                CatalogOrganization(
                    credential_id=cred.id, kind="organization", client_id=1, name="Org A"
                ),
                CatalogOrganization(
                    credential_id=cred.id,
                    kind="organization",
                    client_id=1,
                    name="Org B",
                    gone_at=before,
                ),
                CatalogDomain(credential_id=cred.id, client_id=1, name="a.example"),
                CatalogDomain(credential_id=cred.id, client_id=1, name="b.example"),
                CatalogDomain(credential_id=cred.id, client_id=1, name="c.example", gone_at=before),
                CatalogProduct(credential_id=cred.id, product_type="STANDARD_SSL"),
            ]
        )
    db.session.commit()
    sqlite = db.engine.dialect.name == "sqlite"

    def cache_size():
        return db.session.execute(text("PRAGMA cache_size")).scalar_one() if sqlite else None

    usual, seen = cache_size(), []

    def note_cache_size(actor, credential):
        seen.append(cache_size())

    hooks.on("credential.deleted")(note_cache_size)
    try:
        detail = service.delete(user["admin"], mine, confirmed=True)
    finally:
        hooks._handlers["credential.deleted"].remove(note_cache_size)

    assert detail == {"name": "Main", "catalog_rows_marked_gone": 4, "orders_kept": 0}
    audited = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.delete")
    ).scalar_one()
    assert json.loads(audited.detail) == detail and audited.object_id == str(mine.id)
    rows = {
        (model.__name__, r.credential_id, r.name): (r.gone, r.gone_at)
        for model in (CatalogOrganization, CatalogDomain)
        for r in db.session.execute(select(model)).scalars()
    }
    products = {
        r.credential_id: (r.gone, r.gone_at)
        for r in db.session.execute(select(CatalogProduct)).scalars()
    }
    deleted_at = service.get(mine.id, include_deleted=True).deleted_at
    marked = {k for k, (gone, at) in rows.items() if k[1] == mine.id and at != before}
    assert len(marked) == 3
    gone_times = {rows[k][1] for k in marked} | {products[mine.id][1]}
    assert len(gone_times) == 1 and all(rows[k][0] for k in marked) and products[mine.id][0]
    assert abs(gone_times.pop() - deleted_at) < timedelta(seconds=5)
    for k, (gone, at) in rows.items():
        if k[2] in ("Org B", "c.example"):
            assert gone and at == before, k  # gone before: its time stays
        elif k[1] == other.id:
            assert not gone and at is None, k
    assert products[other.id] == (False, None)
    if sqlite:
        assert seen == [-LARGE_WRITE_CACHE_KIB]
        assert cache_size() == usual != -LARGE_WRITE_CACHE_KIB


def test_a_403_clears_the_admin_flag_and_says_so(app, user):
    cred, _ = service.create(user["admin"], data(is_admin=True), start_sync=False)
    exc = errors.AuthenticationError(status=403, messages=["User is not an administrator"])
    message = service.note_admin_refused(cred, exc, actor=user["admin"])
    assert not cred.is_admin and "was cleared" in message and cred.admin_note == message
    assert db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "credential.admin_rights_cleared")
    ).scalar_one()
