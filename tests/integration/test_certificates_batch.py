"""Certificates added a batch at a time (Import Existing Orders) end exactly as added one by one:
the same rows, names, key and CSR links, expiry counters and audit events, on the real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import event, select

from tests.helpers import make_order
from webapp.audit.models import AuditEvent
from webapp.certificates import service as certificates
from webapp.certificates.models import Certificate, CertificateExpiryDay, CertificateName
from webapp.csrs import service as csrs
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.pki import cert_pem
from webapp.security import rbac

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Batch Test CA"))
        .issuer_name(_name("Batch Test CA"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert, cn: str, serial: int, days: int, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn), x509.DNSName("www." + cn)]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _csr_pem(key, cn: str) -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(cn)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _setup(actor):
    """Keys and CSRs CertDesk holds, a certificate already stored, and a batch to add."""
    ca_key, ca = _ca()
    chain = [cert_pem(ca)]
    with_key, _ = _leaf(ca_key, ca, "k.example.com", 11, 30)
    keys.store(with_key, actor, "imported")
    with_csr = ec.generate_private_key(ec.SECP256R1())
    csrs.import_csr(actor, _csr_pem(with_csr, "c.example.com"))
    csrs.import_csr(actor, _csr_pem(with_csr, "c.example.com"))  # the newer one is linked
    _, stored = _leaf(ca_key, ca, "s.example.com", 13, 60)
    certificates.add_certificate(cert_pem(stored), (), source="imported", actor=actor)
    _, plain = _leaf(ca_key, ca, "p.example.com", 14, 90)
    o = [make_order(str(5000100 + i)).id for i in range(6)]
    items = [
        (o[0], cert_pem(_leaf(ca_key, ca, "k.example.com", 12, 30, with_key)[1]), chain),
        (o[1], cert_pem(_leaf(ca_key, ca, "c.example.com", 15, 45, with_csr)[1]), chain),
        (o[2], cert_pem(stored), chain),  # already held: given its chain and order
        (o[3], "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n", chain),
        (o[4], cert_pem(plain), chain),
        (o[5], cert_pem(plain), chain),  # the same certificate twice in one batch
    ]
    db.session.commit()
    return items


def _snapshot(since_seq: int):
    certs = [
        (
            c.fingerprint_sha256,
            c.serial_hex,
            c.common_name,
            c.sans,
            c.source,
            c.order_id,
            c.private_key_id,
            c.csr_id,
            c.chain_pem,
            c.pem,
            c.not_after,
            tuple(
                sorted(
                    (n.kind, n.value, n.reversed)
                    for n in db.session.execute(
                        select(CertificateName).where(CertificateName.certificate_id == c.id)
                    ).scalars()
                )
            ),
        )
        for c in db.session.execute(select(Certificate).order_by(Certificate.id)).scalars()
    ]
    days = [
        (d.day, d.live, d.revoked)
        for d in db.session.execute(
            select(CertificateExpiryDay).order_by(CertificateExpiryDay.day)
        ).scalars()
    ]
    # Certificates by fingerprint, not id: PostgreSQL does not give back a rolled-back id.
    fingerprint = {
        str(i): f
        for i, f in db.session.execute(select(Certificate.id, Certificate.fingerprint_sha256))
    }
    events = [
        (e.action, e.object_type, fingerprint.get(e.object_id, e.object_id), e.detail)
        for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.seq > since_seq).order_by(AuditEvent.seq)
        ).scalars()
    ]
    return certs, days, events


def test_a_batch_ends_as_one_by_one(app, user):
    actor = user["operator"]
    assert rbac.has_permission(actor, rbac.CSRS_MANAGE)
    items = _setup(actor)
    seq = db.session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).scalar()

    one_by_one = []
    for order_id, pem, chain in items:
        try:
            one_by_one.append(
                certificates.add_certificate(
                    pem,
                    chain,
                    source="entrust_import",
                    order_id=order_id,
                    actor=actor,
                    commit=False,
                )[1]
            )
        except Exception:  # noqa: BLE001 - the unreadable one
            one_by_one.append(None)
    expected = _snapshot(seq)
    db.session.rollback()

    added = certificates.add_for_orders(items, source="entrust_import", actor=actor)
    got = _snapshot(seq)
    db.session.commit()

    assert [a.created if not a.problem else None for a in added] == one_by_one
    assert one_by_one == [True, True, False, None, True, False]
    assert added[3].problem and added[3].certificate is None
    assert got == expected
    certs, _, events = got
    linked = {c[2]: (c[6] is not None, c[7] is not None) for c in certs}
    assert linked["k.example.com"] == (True, False)
    assert linked["c.example.com"] == (False, True)
    assert [e[0] for e in events] == [
        "certificate.add",
        "certificate.add",
        "certificate.update",
        "certificate.add",
    ]


def test_one_event_for_the_batch_names_every_certificate_added(app, user):
    actor = user["operator"]
    items = _setup(actor)
    seq = db.session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).scalar()
    added = certificates.add_for_orders(
        items, source="entrust_import", actor=actor, batch_event={"job": 7}
    )
    db.session.commit()
    _, _, events = _snapshot(seq)
    assert [e[0] for e in events] == ["certificate.add_batch", "certificate.update"]

    detail = json.loads(events[0][3])
    new = sorted(a.certificate.id for a in added if a.created)
    assert detail["count"] == 3 and detail["job"] == 7 and detail["source"] == "entrust_import"
    listed = set()
    for part in detail["ids"]:
        lo, _, hi = part.partition("-")
        listed |= set(range(int(lo), int(hi or lo) + 1))
    assert listed == set(new)
    serials = {a.certificate.serial_hex for a in added if a.created}
    assert {detail["first_serial"], detail["last_serial"]} <= serials
    assert detail["with_key"] == 1


def test_a_batch_inserts_its_certificates_together(app, user):
    """The rows of a batch's new certificates go in by one statement, and their names by one
    more, not one a row (on SQLite the ORM sends one a row unless a column tells the rows it
    hands back apart), each certificate with its own names."""
    actor = user["operator"]
    ca_key, ca = _ca()
    orders = [make_order(str(5000200 + i)).id for i in range(20)]
    items = [
        (order_id, cert_pem(_leaf(ca_key, ca, f"n{i}.example.com", 100 + i, 30)[1]), [])
        for i, order_id in enumerate(orders)
    ]
    db.session.commit()
    inserts = []

    def count(conn, cursor, statement, params, context, executemany):
        words = statement.split(None, 3)
        if words[:2] == ["INSERT", "INTO"]:
            inserts.append(words[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        added = certificates.add_for_orders(items, source="entrust_import", actor=actor)
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert inserts.count("certificate") == 1 and inserts.count("certificate_name") == 1
    for (order_id, _, _), result in zip(items, added, strict=True):
        cert = result.certificate
        assert result.created and cert.order_id == order_id
        names = db.session.execute(
            select(CertificateName.value).where(CertificateName.certificate_id == cert.id)
        ).scalars()
        assert sorted(names) == sorted([cert.common_name, "www." + cert.common_name])


def test_id_ranges():
    assert certificates._id_ranges([9, 3, 4, 5]) == ["3-5", "9"]
    assert certificates._id_ranges([1]) == ["1"]
    assert certificates._id_ranges([]) == []
