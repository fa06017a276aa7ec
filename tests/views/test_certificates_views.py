"""SSL > Certificates views: list, filters, search, import, detail, downloads, roles, delete."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import warnings
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from sqlalchemy import func, select

from tests.helpers import HTMX
from tests.unit.certs.factory import MiniPki, der, key_pem, p7b, p12, pem
from webapp import kdfcost
from webapp import pki as webapp_pki
from webapp.audit.models import AuditEvent
from webapp.certificates import service
from webapp.certificates.models import Certificate
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.keys.models import PrivateKey

P12_PASSWORD = "import-pass-1"


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _upload(client, *files, password="", pem_text=""):
    data = {"files": [(io.BytesIO(body), name) for name, body in files], "password": password}
    if pem_text:
        data["pem_text"] = pem_text
    return client.post("/certificates/import", data=data, content_type="multipart/form-data")


def _import_p12(client, pki=None, cn="shop.example.com", sans=None):
    pki = pki or MiniPki()
    key, cert = pki.leaf(cn, sans or [cn, "api.example.com"])
    resp = _upload(
        client, ("shop.p12", p12(key, cert, pki.chain, P12_PASSWORD)), password=P12_PASSWORD
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Certificate).where(Certificate.common_name == cn)).scalar_one()
    return row, key, cert, pki


def test_import_every_format_and_duplicates(admin_client):
    pki = MiniPki()
    k1, c1 = pki.leaf("a.example.com")
    k2, c2 = pki.leaf("b.example.com")
    k3, c3 = pki.leaf("c.example.com")
    k4, c4 = pki.leaf("d.example.com")
    resp = _upload(
        admin_client,
        ("a.pem", pem(c1) + pem(pki.intermediate)),
        ("b.der", der(c2)),
        ("c.p7b", p7b([c3, *pki.chain])),
        ("d.p12", p12(k4, c4, pki.chain, P12_PASSWORD)),
        password=P12_PASSWORD,
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _count(Certificate) == 4
    assert _count(PrivateKey) == 1
    d = db.session.execute(
        select(Certificate).where(Certificate.common_name == "d.example.com")
    ).scalar_one()
    assert d.private_key_id is not None and d.chain_pem.count("BEGIN CERTIFICATE") == 2
    # the same files again: recognised, not doubled
    resp = _upload(admin_client, ("a.pem", pem(c1)), ("b.der", der(c2)))
    assert resp.status_code == 303
    assert _count(Certificate) == 4
    page = admin_client.get("/certificates/", follow_redirects=True).get_data(as_text=True)
    assert "a.example.com" in page


def test_a_key_in_its_own_file_or_several_pairs_in_one_file_are_each_linked(admin_client):
    """The usual layout, leaf.crt beside leaf.key, was refused whole ("No certificate found");
    a file of two certificate and key pairs kept the first key only, without a word. Each key
    now goes with its certificate, whichever file holds it; a key whose certificate is not in
    the import is refused, naming its file, and nothing is stored."""
    pki = MiniPki()
    k1, c1 = pki.leaf("a.example.com")
    k2, c2 = pki.leaf("b.example.com")
    k3, c3 = pki.leaf("c.example.com")
    k4, _c4 = pki.leaf("d.example.com")
    resp = _upload(admin_client, ("a.crt", pem(c1)), ("a.key", key_pem(k1)))
    assert resp.status_code == 303, resp.get_data(as_text=True)[-800:]
    resp = _upload(admin_client, ("pairs.pem", pem(c2) + key_pem(k2) + pem(c3) + key_pem(k3)))
    assert resp.status_code == 303, resp.get_data(as_text=True)[-800:]
    held = dict(
        db.session.execute(select(Certificate.common_name, Certificate.private_key_id)).all()
    )
    assert set(held) == {"a.example.com", "b.example.com", "c.example.com"}
    assert all(held.values()) and _count(PrivateKey) == 3
    # The key pasted beside an uploaded certificate goes with it too.
    k5, c5 = pki.leaf("e.example.com")
    resp = _upload(admin_client, ("e.crt", pem(c5)), pem_text=key_pem(k5).decode())
    assert resp.status_code == 303, resp.get_data(as_text=True)[-800:]
    assert _count(PrivateKey) == 4
    refused = _upload(
        admin_client, ("f.crt", pem(pki.leaf("f.example.com")[1])), ("d.key", key_pem(k4))
    )
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "d.key: a private key in this file belongs to none of the certificates" in body
    alone = _upload(admin_client, ("d.key", key_pem(k4)))
    assert alone.status_code == 422 and "These files hold no certificate" in alone.get_data(
        as_text=True
    )
    # A key pasted alone: the paste box is the field at fault, not the files left empty.
    pasted = _upload(admin_client, pem_text=key_pem(k4).decode()).get_data(as_text=True)
    assert 'id="pem_text-error">The pasted text holds no certificate' in pasted
    assert 'id="files-error"' not in pasted
    assert re.search(r'<textarea name="pem_text"[^>]*autofocus[^>]*aria-invalid="true"', pasted)
    assert _count(Certificate) == 4 and _count(PrivateKey) == 4


def test_a_ca_certificate_that_issued_none_of_the_others_is_imported_not_dropped(admin_client):
    """A file of certificates: a CA certificate that is no other one's issuer is one of the
    certificates given, not part of a chain, and must not vanish without a word."""
    pki, other = MiniPki(), MiniPki("Other Corp")
    _key, cert = pki.leaf("leaf.example.com")
    bundle = pem(cert) + pem(pki.intermediate) + pem(other.root)
    resp = _upload(admin_client, ("bundle.pem", bundle))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = admin_client.get(resp.headers["Location"], follow_redirects=True)
    assert "Import finished: 2 added." in page.get_data(as_text=True)
    rows = {r.fingerprint_sha256: r for r in db.session.execute(select(Certificate)).scalars()}
    assert set(rows) == {webapp_pki.fingerprint(cert), webapp_pki.fingerprint(other.root)}
    leaf = rows[webapp_pki.fingerprint(cert)]
    assert leaf.chain_pem.count("BEGIN CERTIFICATE") == 1  # its intermediate, not the other root
    assert rows[webapp_pki.fingerprint(other.root)].is_ca


def test_a_chain_holds_the_issuer_that_signed_not_another_of_the_same_name(admin_client):
    """Two roots of one name (a CA re-keyed): the leaf's chain, and so its full-chain and PKCS#7
    downloads, hold the one whose key signed its intermediate."""
    pki, rekeyed = MiniPki(), MiniPki()  # the same names, other keys
    assert rekeyed.root.subject == pki.root.subject
    _key, cert = pki.leaf("leaf.example.com")
    bundle = pem(cert) + pem(pki.intermediate) + pem(rekeyed.root) + pem(pki.root)
    resp = _upload(admin_client, ("bundle.pem", bundle))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    leaf = db.session.execute(
        select(Certificate).where(Certificate.common_name == "leaf.example.com")
    ).scalar_one()
    full = x509.load_pem_x509_certificates(
        admin_client.get(f"/certificates/{leaf.id}/download/fullchain").get_data()
    )
    assert full == [cert, pki.intermediate, pki.root]
    for child, issuer in zip(full, full[1:], strict=False):
        child.verify_directly_issued_by(issuer)
    p7 = admin_client.get(f"/certificates/{leaf.id}/download/p7b").get_data()
    assert set(pkcs7.load_pem_pkcs7_certificates(p7)) == {cert, pki.intermediate, pki.root}
    # The other root is a certificate of the file too: imported on its own.
    assert db.session.execute(
        select(Certificate).where(
            Certificate.fingerprint_sha256 == webapp_pki.fingerprint(rekeyed.root)
        )
    ).scalar_one()


def test_the_sans_shown_are_those_the_certificate_holds(admin_client):
    """Every SAN of the certificate, as it holds them: a URI too (a SPIFFE ID, say), and a DNS
    name in the case it was written, as ``openssl x509 -text`` shows them."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes

    from tests.unit.certs.factory import ec_key

    key, start = ec_key(), datetime.now(UTC) - timedelta(days=1)
    names = [
        x509.DNSName("WWW.Upper.Example"),
        x509.UniformResourceIdentifier("spiffe://example.org/ns/prod/sa/web"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.RFC822Name("Ops@Example.org"),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "www.upper")]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "www.upper")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    resp = _upload(admin_client, ("sans.pem", pem(cert)))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    shown = re.search(r'<dd id="cert-sans">(.*?)</dd>', page, re.S).group(1)
    assert re.findall(r"<code>([^<]*)</code>", shown) == [
        "WWW.Upper.Example",
        "URI:spiffe://example.org/ns/prod/sa/web",
        "192.0.2.7",
        "Ops@Example.org",
    ]
    # The list and its search still read the names in lower case.
    found = admin_client.get("/certificates/?q=www.upper.example").get_data(as_text=True)
    assert f'href="/certificates/{resp.headers["Location"].rsplit("/", 1)[1]}"' in found


def test_a_certificate_not_valid_yet_says_so_rather_than_valid(admin_client):
    """Its notBefore is still to come: the page says when it starts, not "Valid"."""
    from datetime import UTC, datetime, timedelta

    pki = MiniPki()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    _key, later = pki.leaf("later.example.com", start=start)
    _key, now = pki.leaf("now.example.com")
    resp = _upload(admin_client, ("later.pem", pem(later)), ("now.pem", pem(now)))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    ids = {r.common_name: r.id for r in db.session.execute(select(Certificate)).scalars().all()}
    page = admin_client.get(f"/certificates/{ids['later.example.com']}").get_data(as_text=True)
    assert 'id="cert-not-yet-valid">Not valid before ' in page
    assert f"{start:%Y-%m-%d %H:%M}" in page.split('id="cert-not-yet-valid">')[1][:120]
    assert "days left" not in page and "Expires in" not in page
    page = admin_client.get(f"/certificates/{ids['now.example.com']}").get_data(as_text=True)
    assert "cert-not-yet-valid" not in page


def _listed(client, expiry: str) -> str:
    page = client.get(f"/certificates/?expiry={expiry}").get_data(as_text=True)
    return page.split('id="certificates-table"')[1].split("</table>")[0]


def test_a_certificate_not_valid_yet_is_not_listed_or_counted_as_valid(admin_client):
    """The list's badge says "Not valid yet"; the Valid and Expiring filters leave it out, the
    "Not valid yet" one lists it; the dashboard counts it apart, in no valid figure."""
    from datetime import UTC, datetime, timedelta

    from webapp.dashboard import service as dashboard

    pki = MiniPki()
    start = datetime.now(UTC) + timedelta(days=5)
    _key, later = pki.leaf("later.example.com", start=start, days=30)
    _key, now = pki.leaf("now.example.com", start=datetime.now(UTC) - timedelta(days=1), days=30)
    resp = _upload(admin_client, ("later.pem", pem(later)), ("now.pem", pem(now)))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    everything = _listed(admin_client, "")
    row = everything.split("later.example.com")[2].split("</tr>")[0]
    assert ">Not valid yet</span>" in row and "d left" not in row
    for expiry in ("valid", "30", "90"):
        shown = _listed(admin_client, expiry)
        assert "later.example.com" not in shown and "now.example.com" in shown, expiry
    early = _listed(admin_client, "not_yet_valid")
    assert "later.example.com" in early and "now.example.com" not in early
    counts = dashboard.state_counts()
    assert (counts["valid"], counts["expiring_30"], counts["not_yet_valid"]) == (1, 1, 1)
    assert counts["total"] == 2
    assert sum(w.count for w in dashboard.expiry_timeline()) == 1
    assert [c.common_name for c in dashboard.urgent()] == ["now.example.com"]
    home = admin_client.get("/").get_data(as_text=True)
    assert "expiry=not_yet_valid" in home


def test_bad_input_changes_nothing(admin_client):
    pki = MiniPki()
    key, cert = pki.leaf("x.example.com")
    before = _count(AuditEvent)
    cases = [
        (("junk.pem", b"this is not a certificate"), "", "not a certificate file"),
        (("x.p12", p12(key, cert, pki.chain, P12_PASSWORD)), "wrong-password", "Wrong password"),
        (("x.p12", p12(key, cert, pki.chain, P12_PASSWORD)), "", "enter its password"),
        (("big.pem", b"0" * (1024 * 1024 + 10)), "", "larger than"),
        (
            ("k.pem", pem(cert) + key_pem(MiniPki().leaf()[0])),
            "",
            "belongs to none of the certificates",
        ),
    ]
    for f, password, message in cases:
        resp = _upload(admin_client, ("ok.pem", pem(cert)), f, password=password)
        assert resp.status_code == 422, message
        body = resp.get_data(as_text=True)
        assert message in body and 'aria-invalid="true"' in body
    assert _count(Certificate) == 0 and _count(PrivateKey) == 0
    assert _count(AuditEvent) == before


def test_a_file_of_certificates_each_issued_by_the_one_before_is_refused(operator_client):
    """Each leaf keeps a copy of its chain: such a ladder would cost the square of its length."""
    from tests.unit.certs.hostile import certificate_ladder
    from webapp import pki

    resp = _upload(operator_client, ("ladder.pem", certificate_ladder(pki.MAX_CHAIN + 2)))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "ladder.pem: a certificate has more than 10 issuers" in body
    assert _count(Certificate) == 0
    resp = _upload(operator_client, ("short.pem", certificate_ladder(pki.MAX_CHAIN + 1)))
    assert resp.status_code == 303  # a chain of ten issuers is still taken
    rows = db.session.execute(select(Certificate)).scalars().all()
    assert len(rows) == pki.MAX_CHAIN + 1
    assert max(r.chain_pem.count("BEGIN CERTIFICATE") for r in rows) == pki.MAX_CHAIN


def test_one_import_takes_at_most_a_thousand_certificates(operator_client):
    """All of an import is written in one transaction, which holds the database's writes."""
    from tests.unit.certs.hostile import certificate_ladder

    many = certificate_ladder(service.MAX_CERTIFICATES + 1, ladder=False)
    resp = _upload(operator_client, ("many.pem", many))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "These files hold 1,001 certificates; one import takes at most 1,000" in body
    assert _count(Certificate) == 0
    parts = [certificate_ladder(500, prefix=f"p{i}-", ladder=False) for i in range(2)]
    resp = _upload(operator_client, ("a.pem", parts[0]), ("b.pem", parts[1]))
    assert resp.status_code == 303 and _count(Certificate) == 1000


_KEYS: dict = {}  # a key per common name, so that an issuer's key signs what it issues


def _certificate(cn, *, issuer=None, ca=False, padding=0, sans=()):
    """A certificate of ``issuer`` (CN; default: itself), signed by that name's key, with
    ``sans`` and an unknown extension of ``padding`` bytes."""
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes

    from tests.unit.certs.factory import ec_key

    key = _KEYS.setdefault(cn, ec_key())
    signer = _KEYS.setdefault(issuer or cn, ec_key())
    start = datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, issuer or cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if padding:
        pad = x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\0" * padding
        )
        builder = builder.add_extension(pad, critical=False)
    if sans:
        names = [x509.DNSName(n) for n in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def test_a_certificate_larger_than_a_real_one_is_refused(operator_client):
    """A certificate is stored with each one it issued: its size is bounded on reading."""
    limit = webapp_pki.MAX_CERT_BYTES
    big = _certificate("big.example.com", padding=limit)
    assert len(der(big)) > limit
    leaf = _certificate("leaf.example.com", issuer="big.example.com")
    for name, body in (("big.pem", pem(big) + pem(leaf)), ("big.p7b", p7b([leaf, big]))):
        resp = _upload(operator_client, ("ok.pem", pem(leaf)), (name, body))
        text = resp.get_data(as_text=True)
        assert resp.status_code == 422
        assert f"{name}: A certificate in this file takes {len(der(big)):,} bytes" in text
        assert "a real certificate takes at most 64 KiB" in text
    assert _count(Certificate) == 0
    fits = _certificate("fits.example.com", padding=limit - 1000)
    assert len(der(fits)) <= limit
    assert _upload(operator_client, ("fits.pem", pem(fits))).status_code == 303
    assert _count(Certificate) == 1


def test_one_import_stores_a_bounded_number_of_bytes(operator_client, monkeypatch):
    """Each leaf stores a copy of its chain: leaves all naming one large issuer would store it
    again and again."""
    monkeypatch.setattr(service, "MAX_IMPORT_BYTES", 1024 * 1024)
    ca = _certificate("Large CA", ca=True, padding=60_000)
    leaves = [_certificate(f"l{i}.example.com", issuer="Large CA") for i in range(14)]
    before = _count(AuditEvent)
    resp = _upload(operator_client, ("ok.pem", pem(leaves[0])), ("many.p7b", p7b([ca, *leaves])))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "These files would store 1.1 MiB of certificates (each with a copy of its chain)" in body
    assert "one import stores at most 1 MiB. Import them in parts." in body
    assert _count(Certificate) == 0 and _count(AuditEvent) == before
    resp = _upload(operator_client, ("fewer.p7b", p7b([ca, *leaves[:10]])))
    assert resp.status_code == 303 and _count(Certificate) == 10


def test_a_certificate_with_more_names_than_a_real_one_is_refused(operator_client, monkeypatch):
    """Each name is a row: an import is refused, whole, for a certificate of too many names."""
    from webapp.certificates.models import CertificateName

    monkeypatch.setattr(webapp_pki, "MAX_NAMES", 5)
    many = _certificate("many.example.com", sans=[f"n{i}.example.com" for i in range(6)])
    five = _certificate("five.example.com", sans=[f"f{i}.example.com" for i in range(5)])
    before = _count(AuditEvent)
    resp = _upload(operator_client, ("five.pem", pem(five)), ("many.der", der(many)))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert (
        "many.der: A certificate in this file has 6 subject alternative names; CertDesk takes "
        "at most 5." in body
    )
    assert _count(Certificate) == 0 and _count(CertificateName) == 0
    assert _count(AuditEvent) == before
    resp = _upload(operator_client, ("five.pem", pem(five)))
    assert resp.status_code == 303 and _count(CertificateName) == 6  # with the CN


def test_one_import_stores_a_bounded_number_of_names(operator_client, monkeypatch):
    from webapp.certificates.models import CertificateName

    monkeypatch.setattr(service, "MAX_IMPORT_NAMES", 8)
    certs = [_certificate("c.example.com", sans=[f"c{j}.example.com" for j in range(3)])]
    certs += [_certificate(f"d{i}.example.com", sans=[f"d{i}.example.com"]) for i in range(6)]
    before = _count(AuditEvent)
    resp = _upload(operator_client, ("all.pem", b"".join(pem(c) for c in certs)))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert (
        "These certificates hold 9 subject alternative names; one import takes at most 8." in body
    )
    assert _count(Certificate) == 0 and _count(CertificateName) == 0
    assert _count(AuditEvent) == before
    resp = _upload(operator_client, ("fewer.pem", b"".join(pem(c) for c in certs[:-1])))
    assert resp.status_code == 303 and _count(Certificate) == 6


def test_the_list_shows_the_first_names_of_a_certificate_and_how_many_more(operator_client):
    names = [f"n{i}.example.com" for i in range(10)]
    cert = _certificate("n0.example.com", sans=names)
    assert _upload(operator_client, ("names.pem", pem(cert))).status_code == 303
    page = operator_client.get("/certificates/").get_data(as_text=True)
    assert "n0.example.com, n1.example.com, n2.example.com, n3.example.com" in page
    assert '<span class="muted">+6 more</span>' in page and "n4.example.com" not in page


def test_import_starts_at_the_files_and_returns_to_the_wrong_field(admin_client):
    blank = admin_client.get("/certificates/import").get_data(as_text=True)
    assert re.search(r'<input type="file" name="files" [^>]*autofocus>', blank)
    pki = MiniPki()
    key, cert = pki.leaf("x.example.com")
    bundle = ("x.p12", p12(key, cert, pki.chain, P12_PASSWORD))
    body = _upload(admin_client, bundle, password="wrong-password").get_data(as_text=True)
    assert body.count("autofocus") == 1
    assert re.search(
        r'<input type="password" name="password" [^>]*aria-describedby="password-error" autofocus>',
        body,
    )
    assert '<small class="field-error" id="password-error">x.p12: Wrong password' in body


def test_a_refused_import_keeps_the_pasted_certificates_but_never_a_pasted_key(admin_client):
    pki = MiniPki()
    key, cert = pki.leaf("kept.example.com")
    bundle = ("x.p12", p12(key, cert, pki.chain, P12_PASSWORD))
    pasted = pem(cert).decode()
    resp = _upload(admin_client, bundle, password="wrong-password", pem_text=pasted)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _count(Certificate) == 0
    # Fix the password and send again: the pasted certificate is still there.
    assert f">{pasted}</textarea>" in body
    assert "Paste the text again" not in body
    # With a private key in it, nothing of the text comes back, and the form says why.
    with_key = pasted + key_pem(key).decode()
    body = _upload(admin_client, bundle, password="wrong-password", pem_text=with_key).get_data(
        as_text=True
    )
    assert "PRIVATE KEY" not in body.replace('placeholder="-----BEGIN PRIVATE KEY', "")
    assert "BEGIN CERTIFICATE-----\nMII" not in body
    assert 'aria-describedby="pem-again"></textarea>' in body
    assert "it held a private key, and CertDesk never sends a key back" in body


def test_a_private_key_in_any_shape_pasted_for_import_is_never_shown_again(admin_client):
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (secret, material) in pasted_private_keys().items():
        resp = _upload(admin_client, pem_text=secret)
        body = resp.get_data(as_text=True)
        assert not [m for m in material if m in body], shape
        assert resp.status_code == 422, shape
        assert "it held a private key, and CertDesk never sends a key back" in body, shape
    assert _count(Certificate) == 0 and _count(PrivateKey) == 0


def test_a_revoked_certificate_is_in_no_expiring_or_valid_filter(admin_client, user):
    """Two certificates expiring in 5 days, one of them revoked: "Expiring within 7 days" and
    "Valid" list the other only, "Revoked" lists the revoked one only (and the export follows the
    list)."""
    from datetime import UTC, datetime

    pki = MiniPki()
    then = datetime.now(UTC) - timedelta(days=25)
    _key, kept = pki.leaf("kept.example.com", start=then, days=30)
    _key, gone = pki.leaf("gone.example.com", start=then, days=30)
    resp = _upload(admin_client, ("kept.pem", pem(kept)), ("gone.pem", pem(gone)))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    cert = db.session.execute(
        select(Certificate).where(Certificate.common_name == "gone.example.com")
    ).scalar_one()
    service.mark_revoked(cert, actor=user["admin"])
    for expiry in ("7", "30", "valid"):
        shown = _listed(admin_client, expiry)
        assert "kept.example.com" in shown and "gone.example.com" not in shown, expiry
        csv = admin_client.get(f"/certificates/export.csv?expiry={expiry}").get_data(as_text=True)
        assert "kept.example.com" in csv and "gone.example.com" not in csv, expiry
    revoked = _listed(admin_client, "revoked")
    assert "gone.example.com" in revoked and "kept.example.com" not in revoked


def test_search_by_san_serial_fingerprint_and_filters(admin_client):
    row, key, cert, pki = _import_p12(admin_client)
    _, other = pki.leaf("old.example.net", days=3)
    _upload(admin_client, ("o.pem", pem(other)))

    def rows(**args):
        r = admin_client.get("/certificates/", query_string=args, headers=HTMX)
        assert r.status_code == 200
        return r.get_data(as_text=True)

    assert "shop.example.com" in rows(q="api.example.com")
    assert "shop.example.com" in rows(q="example.com")  # suffix
    assert "shop.example.com" in rows(q="api.")  # prefix
    assert "shop.example.com" not in rows(q="old.example.net")
    assert "shop.example.com" in rows(q=row.serial_hex.upper())
    assert "shop.example.com" in rows(q=row.fingerprint_sha256)
    assert "old.example.net" in rows(expiry="7") and "shop.example.com" not in rows(expiry="7")
    assert "old.example.net" not in rows(has_key="yes")
    assert "old.example.net" in rows(has_key="no")
    assert "shop.example.com" in rows(issuer=row.issuer_cn, source="imported")
    assert "No certificates match" in rows(expiry="expired")
    for odd in ("\U0010ffff", "%", "_", "'; drop table certificate; --", "ü" * 300, ":"):
        assert "No certificates match" in rows(q=odd)
    frag = rows(sort="cn", dir="desc")
    assert "<html" not in frag and frag.index("shop.example.com") < frag.index("old.example.net")
    full = admin_client.get("/certificates/?q=api.example.com").get_data(as_text=True)
    assert "<html" in full and "shop.example.com" in full


def test_csv_export_follows_filter(admin_client):
    row, *_ = _import_p12(admin_client)
    text = admin_client.get("/certificates/export.csv?q=shop").get_data(as_text=True)
    lines = text.strip().splitlines()
    assert (
        lines[0].startswith("id,common_name")
        and len(lines) == 2
        and row.fingerprint_sha256 in lines[1]
    )
    assert (
        len(
            admin_client.get("/certificates/export.csv?q=nothing")
            .get_data(as_text=True)
            .splitlines()
        )
        == 1
    )


def test_the_csv_export_says_each_certificates_state(admin_client):
    row, *_ = _import_p12(admin_client)

    def state() -> str:
        text = admin_client.get("/certificates/export.csv?q=shop").get_data(as_text=True)
        [exported] = list(csv.DictReader(io.StringIO(text)))
        return exported["state"]

    assert state() == "valid"
    row.suspended_at = utcnow()
    db.session.commit()
    assert state() == "suspended"
    row.suspended_at, row.not_before = None, utcnow() + timedelta(days=2)
    db.session.commit()
    assert state() == "not valid yet"
    row.revoked_at = utcnow()
    db.session.commit()
    assert state() == "revoked"


def test_detail_and_every_download(admin_client):
    row, key, cert, pki = _import_p12(admin_client)
    page = admin_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    for text in (
        "api.example.com",
        row.fingerprint_sha256,
        "extendedKeyUsage",
        "CertDesk Test Root",
        "ECDSA P-256",
        "CA: no",  # basicConstraints, in the words of the page, not Python's False
    ):
        assert text in page
    get = lambda fmt: admin_client.get(f"/certificates/{row.id}/download/{fmt}").data  # noqa: E731
    assert x509.load_pem_x509_certificate(get("pem")) == cert
    assert x509.load_der_x509_certificate(get("der")) == cert
    assert x509.load_pem_x509_certificates(get("chain")) == pki.chain
    assert x509.load_pem_x509_certificates(get("fullchain")) == [cert, *pki.chain]
    assert pkcs7.load_pem_pkcs7_certificates(get("p7b"))[0] in (cert, *pki.chain)
    assert set(pkcs7.load_pem_pkcs7_certificates(get("p7b"))) == {cert, *pki.chain}
    assert admin_client.get(f"/certificates/{row.id}/download/nope").status_code == 404
    resp = admin_client.post(
        f"/certificates/{row.id}/pkcs12", data={"password": "download-1", "password2": "download-1"}
    )
    assert resp.status_code == 200
    loaded = pkcs12.load_pkcs12(resp.data, b"download-1")
    assert loaded.cert.certificate == cert and loaded.key.private_numbers() == key.private_numbers()
    assert [c.certificate for c in loaded.additional_certs] == pki.chain
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "key.download")
    ).scalar_one()
    assert f'"certificate_id": {row.id}' in event.detail and '"format": "pkcs12"' in event.detail
    pem_key = admin_client.post(
        f"/certificates/{row.id}/pkcs12",
        data={"format": "pkcs8", "password": "download-1", "password2": "download-1"},
    )
    assert b"ENCRYPTED PRIVATE KEY" in pem_key.data
    short = admin_client.post(
        f"/certificates/{row.id}/pkcs12", data={"password": "short", "password2": "short"}
    )
    assert short.status_code == 422 and "at least 8" in short.get_data(as_text=True)


def test_a_refused_key_download_keeps_the_format_chosen(admin_client):
    row, *_ = _import_p12(admin_client)
    data = {"format": "pkcs8", "password": "long enough one", "password2": "long enough two"}
    body = admin_client.post(f"/certificates/{row.id}/pkcs12", data=data).get_data(as_text=True)
    assert '<option value="pkcs8" selected>PKCS#8 PEM: the key alone' in body
    page = admin_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    assert '<option value="pkcs8" >PKCS#8 PEM: the key alone' in page


def test_roles_on_keys(app, admin_client, operator_client, auditor_client, user):
    row, *_ = _import_p12(admin_client)  # the admin imported the key
    data = {"password": "download-1", "password2": "download-1"}
    assert auditor_client.post(f"/certificates/{row.id}/pkcs12", data=data).status_code == 403
    assert operator_client.post(f"/certificates/{row.id}/pkcs12", data=data).status_code == 403
    page = auditor_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    assert "Download with private key" not in page
    assert "A private key is held; your role does not allow downloading it." in page
    # The operator's role downloads keys, but only those they made or imported: they are told so.
    page = operator_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    assert "Download with private key" not in page and "role does not allow" not in page
    assert "only an administrator or the user who made or imported it may download it" in page
    assert auditor_client.post(f"/certificates/{row.id}/delete").status_code == 403
    assert auditor_client.get("/certificates/import").status_code == 403
    # the operator's own key: allowed
    own, *_ = _import_p12(operator_client, cn="ops.example.com")
    assert operator_client.post(f"/certificates/{own.id}/pkcs12", data=data).status_code == 200


def test_delete_with_confirmation(admin_client):
    row, *_ = _import_p12(admin_client)
    page = admin_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    assert "data-confirm=" in page
    assert admin_client.post(f"/certificates/{row.id}/delete", csrf=False).status_code == 400
    resp = admin_client.post(f"/certificates/{row.id}/delete", headers=HTMX)
    assert resp.status_code == 204 and resp.headers["HX-Redirect"].endswith("/certificates/")
    # Nothing else used the key it came with: it goes too, rather than stay where no page reaches.
    assert _count(Certificate) == 0 and _count(PrivateKey) == 0
    assert admin_client.get(f"/certificates/{row.id}").status_code == 404
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "certificate.delete")
    ).scalar_one()
    assert '"key_deleted": true' in event.detail


def test_a_key_another_certificate_uses_stays_and_one_who_may_not_delete_a_lone_key_is_refused(
    admin_client, operator_client
):
    pki = MiniPki()
    first, key, *_ = _import_p12(admin_client, pki=pki)
    _, renewed = pki.leaf("shop.example.com", ["shop.example.com"], key=key)
    resp = _upload(admin_client, ("renewed.pem", pem(renewed)))
    assert resp.status_code == 303
    second = db.session.execute(select(Certificate).where(Certificate.id != first.id)).scalar_one()
    assert second.private_key_id == first.private_key_id
    key_id, first_id, second_id = first.private_key_id, first.id, second.id
    # The operator did not import the key: while the renewed certificate uses it, fine.
    resp = operator_client.post(f"/certificates/{first.id}/delete")
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(PrivateKey, key_id) is not None and _count(Certificate) == 1
    # The last certificate of that key: deleting it would leave the key unreachable.
    resp = operator_client.post(f"/certificates/{second.id}/delete")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(
        f"/certificates/{second.id}"
    )
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert (
        "Only an administrator or the maker of its private key may delete this certificate" in page
    )
    db.session.expire_all()
    assert _count(Certificate) == 1 and db.session.get(PrivateKey, key_id) is not None
    deletes = db.session.execute(
        select(AuditEvent.outcome, AuditEvent.actor_name, AuditEvent.object_id).where(
            AuditEvent.action == "certificate.delete"
        )
    ).all()
    assert sorted(deletes) == [
        ("refused", "operator", str(second_id)),
        ("success", "operator", str(first_id)),
    ]
    # Its maker may: the key goes with it.
    resp = admin_client.post(f"/certificates/{second.id}/delete")
    assert resp.status_code == 303
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Its private key was deleted with it." in page
    assert _count(Certificate) == 0 and _count(PrivateKey) == 0


def test_add_certificate_service_is_idempotent(app, user):
    from tests.helpers import make_order

    pki = MiniPki()
    key, cert = pki.leaf("order.example.com")
    order = make_order("4242")
    row, created = service.add_certificate(
        pem(cert).decode(),
        [pem(c).decode() for c in pki.chain],
        source="entrust",
        order_id=order.id,
        private_key=key,
        actor=user["admin"],
    )
    assert created and row.order_id == order.id and row.private_key_id and row.source == "entrust"
    again, created = service.add_certificate(cert, source="entrust_import", actor="scheduler")
    assert not created and again.id == row.id and _count(Certificate) == 1
    assert service.for_order(order.id) == [row]
    assert service.orders_with_certificate([order.id, order.id + 1]) == {order.id}
    assert service.order_label(row) == "Entrust order 4242 (ACTIVE)"
    service.mark_revoked(row, actor=user["admin"])
    assert row.revoked_at is not None and service.state_of(row)[0] == "revoked"
    other_key, _ = pki.leaf("z.example.com")
    import pytest

    from webapp.pki import PkiError

    _, cert2 = pki.leaf("order2.example.com")
    with pytest.raises(PkiError):
        service.add_certificate(cert2, private_key=other_key, actor=user["admin"])


def test_random_uploads_never_500(admin_client):
    import random

    rng = random.Random(11)
    pki = MiniPki()
    key, cert = pki.leaf("fuzz.example.com")
    samples = [pem(cert), der(cert), p7b([cert]), p12(key, cert, [], "pw-123456"), key_pem(key)]
    for i in range(40):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 4 == 0:
            data = bytearray(rng.randbytes(rng.randint(1, 3000)))
        cert_resp = _upload(admin_client, ("f.bin", bytes(data)), password="pw-123456")
        csr_resp = admin_client.post(
            "/csrs/import",
            data={"csr_file": (io.BytesIO(bytes(data)), "f.csr"), "key_text": bytes(data)[:500]},
            content_type="multipart/form-data",
        )
        # A corruption may leave the file readable (stored), or not (refused in words): never 500.
        assert cert_resp.status_code in (303, 422), cert_resp.status_code
        if cert_resp.status_code == 422:
            assert 'class="field-error"' in cert_resp.get_data(as_text=True)
        assert csr_resp.status_code == 422, csr_resp.status_code


def test_a_certificate_whose_names_are_not_text_shows_its_page(admin_client):
    # Distribution points, access locations and alternative names may be directory names,
    # addresses, object identifiers or raw bytes: each is shown as text.
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes

    from tests.unit.certs.factory import ec_key

    key = ec_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "names.example.com")])
    odd = [
        x509.DirectoryName(name),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
        x509.OtherName(x509.ObjectIdentifier("1.2.3.5"), b"\x04\x02hi"),
    ]
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(odd), critical=False)
        .add_extension(
            x509.CRLDistributionPoints([x509.DistributionPoint(odd, None, None, None)]), False
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, odd[0])]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    assert _upload(admin_client, ("names.pem", pem(cert))).status_code == 303
    row = db.session.execute(
        select(Certificate).where(Certificate.common_name == "names.example.com")
    ).scalar_one()
    page = admin_client.get(f"/certificates/{row.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "CN=names.example.com, 192.0.2.7, 1.2.3.4, 04026869" in text  # the distribution points
    assert "OCSP: CN=names.example.com" in text


def test_a_tampered_pager_link_is_answered_not_500(admin_client):
    _import_p12(admin_client)
    for qs in ("page=3&after=%ff%fe", "page=2&before=WyJ4Il0", "page=-4&after=", "page=99999"):
        resp = admin_client.get(f"/certificates/?{qs}", headers=HTMX)
        assert resp.status_code == 200 and "shop.example.com" in resp.get_data(as_text=True)
    # A NUL character is refused in words before any query runs (as in every other field).
    resp = admin_client.get("/certificates/?page=3&after=%00%ff", headers=HTMX)
    assert resp.status_code == 400 and "NUL character" in resp.get_data(as_text=True)


def test_an_empty_repository_says_how_certificates_get_there(admin_client, auditor_client):
    page = admin_client.get("/certificates/").get_data(as_text=True)
    assert "No certificates yet." in page and "/certificates/import" in page
    assert "match these filters" not in page
    assert "No certificates yet." in auditor_client.get("/certificates/").get_data(as_text=True)
    filtered = admin_client.get("/certificates/?q=nothing-here").get_data(as_text=True)
    assert "No certificates match these filters." in filtered


def test_the_files_of_one_import_share_one_budget_of_password_hashing(admin_client, monkeypatch):
    # Each file within the bound, together beyond it: one request does not open fifty files of
    # a second's work each. Scaled down here: a budget of 100,000 rounds, files of about 62,000
    # (their MAC 2,048, their certificates' and their key's encryption 30,000 each).
    monkeypatch.setattr(kdfcost, "MAX_ROUNDS", 100_000)
    pki = MiniPki()
    files = []
    for n in range(2):
        key, cert = pki.leaf(f"budget{n}.example.com")
        files.append((f"f{n}.p12", p12(key, cert, pki.chain, P12_PASSWORD, rounds=30_000)))
    resp = _upload(admin_client, *files, password=P12_PASSWORD)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, page
    assert "f1.p12" in page and "Together these files ask for" in page
    assert _count(Certificate) == 0 and _count(PrivateKey) == 0
    # The next request has a budget of its own: each file alone opens.
    for name, body in files:
        resp = _upload(admin_client, (name, body), password=P12_PASSWORD)
        assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _count(Certificate) == 2 and _count(PrivateKey) == 2
    # The budget ends with its request: outside one (a job, a script) each file has its own.
    for _, body in files:
        assert webapp_pki.read_certificates(body, P12_PASSWORD).key is not None


def test_a_text_direction_override_in_a_certificates_names_is_shown_escaped(admin_client):
    """U+202E in a subject would show "shop.example.com‮moc.knab" reversed, as another name;
    the pages show it as its RFC 4514 escapes instead, and never the character itself."""
    pki = MiniPki()
    spoof = "invoice\u202efdp.exe"
    _key, cert = pki.leaf(spoof, ["shop.example.com"])
    assert _upload(admin_client, ("spoof.pem", pem(cert))).status_code == 303
    row = db.session.execute(select(Certificate)).scalar_one()
    assert row.common_name == "invoice\\E2\\80\\AEfdp.exe"
    for url in ("/certificates/", f"/certificates/{row.id}"):
        page = admin_client.get(url).get_data(as_text=True)
        assert "\u202e" not in page, url
        assert "invoice\\E2\\80\\AEfdp.exe" in page, url


def test_a_name_whose_64th_byte_splits_a_letter_still_downloads_as_pkcs12(admin_client):
    """The file's friendly name is the common name cut to 64 bytes: cut inside a letter, it was
    no longer UTF-8 and the download a 500. A common name of 34 letters, 65 bytes in UTF-8
    (OpenSSL counts its 64-letter bound in letters; ``cryptography`` in bytes, unless told not
    to check)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from tests.unit.certs.factory import ec_key

    cn = "Zoe" + "é" * 31  # 65 bytes: the 64th is the first half of the last "é"
    ca, key = MiniPki(), ec_key()
    with warnings.catch_warnings():  # that it is over cryptography's bound is the point
        warnings.simplefilter("ignore", UserWarning)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - timedelta(days=1))
        .not_valid_after(utcnow() + timedelta(days=90))
        .sign(ca.int_key, hashes.SHA256())
    )
    resp = _upload(
        admin_client, ("zoe.p12", p12(key, cert, ca.chain, P12_PASSWORD)), password=P12_PASSWORD
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Certificate).where(Certificate.common_name == cn)).scalar_one()
    resp = admin_client.post(
        f"/certificates/{row.id}/pkcs12", data={"password": "download-1", "password2": "download-1"}
    )
    assert resp.status_code == 200
    loaded = pkcs12.load_pkcs12(resp.data, b"download-1")
    assert loaded.cert.certificate == cert
    assert loaded.cert.friendly_name == ("Zoe" + "é" * 30).encode()


def test_a_downloaded_pkcs12_is_as_costly_to_guess_through_its_mac_as_through_its_key(
    admin_client,
):
    """The MAC is keyed from the same password as the key's encryption: the library made it in
    OpenSSL's default 2,048 rounds, so a password was guessed through the MAC 25 times faster
    than the 50,000 rounds of the key's encryption promised. The file still opens, in
    ``cryptography`` and in OpenSSL 3 without -legacy, with a password outside ASCII too."""
    row, key, cert, pki = _import_p12(admin_client)
    password = "pässwört-1 😀"
    resp = admin_client.post(
        f"/certificates/{row.id}/pkcs12", data={"password": password, "password2": password}
    )
    assert resp.status_code == 200
    mac = kdfcost.parse(resp.data).child(2)
    assert mac.child(0).child(0).child(0).oid() == "2.16.840.1.101.3.4.2.1"  # SHA-256
    assert mac.child(2).integer() == 50_000  # as many as the key's encryption
    assert len(mac.child(1).value) == 16  # its salt
    loaded = pkcs12.load_pkcs12(resp.data, password.encode())
    assert loaded.cert.certificate == cert and loaded.key.private_numbers() == key.private_numbers()
    assert loaded.cert.friendly_name == b"shop.example.com"
    assert [c.certificate for c in loaded.additional_certs] == pki.chain
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(resp.data, b"wrong password")
    if shutil.which("openssl") is None:  # the command-line tool, where installed, opens it too
        return
    opened = subprocess.run(
        ["openssl", "pkcs12", "-info", "-nokeys", "-passin", f"pass:{password}"],
        input=resp.data,
        capture_output=True,
        check=True,
    )
    assert b"MAC: sha256, Iteration 50000" in opened.stderr
    assert b"friendlyName: shop.example.com" in opened.stdout
    wrong = ["openssl", "pkcs12", "-info", "-nokeys", "-passin", "pass:wrong password"]
    assert subprocess.run(wrong, input=resp.data, capture_output=True).returncode != 0


def test_a_long_wildcard_name_downloads_with_every_extension_whole(admin_client):
    """A wildcard's file name spells the star out ("wildcard."), so a common name of 64
    characters, the most a certificate holds, makes a stem of 71: with ".fullchain.pem" the name
    went over the bound it was cut to, and the file was saved as "....example.com.fullch"."""
    cn = "*." + "a" * 50 + ".example.com"
    assert len(cn) == 64
    row, *_ = _import_p12(admin_client, cn=cn, sans=[cn])
    stem = "wildcard." + "a" * 50 + ".example.com"

    def name(resp) -> str:
        assert resp.status_code == 200
        found = re.fullmatch(r'attachment; filename="([^"]+)"', resp.headers["Content-Disposition"])
        return found.group(1)

    for fmt, ext in [
        ("pem", "pem"),
        ("der", "cer"),
        ("chain", "chain.pem"),
        ("fullchain", "fullchain.pem"),
        ("p7b", "p7b"),
    ]:
        assert name(admin_client.get(f"/certificates/{row.id}/download/{fmt}")) == f"{stem}.{ext}"
    password = {"password": "download-1", "password2": "download-1"}
    for fmt, ext in [("pkcs12", "p12"), ("pkcs8", "key.pem")]:
        resp = admin_client.post(f"/certificates/{row.id}/pkcs12", data={"format": fmt, **password})
        assert name(resp) == f"{stem}.{ext}"


def test_a_chain_that_starts_with_the_certificate_itself_is_stored_without_it(admin_client, user):
    """ECS's chainCerts starts with the end-entity certificate; written with other line breaks
    than endEntityCert, it went into the certificate's own chain: the chain download (issuers
    only) began with the certificate, the full chain held it twice, and so did the PKCS#12."""
    pki = MiniPki()
    crlf = lambda c: pem(c).decode().replace("\n", "\r\n")  # noqa: E731
    _, one = pki.leaf("one.example.com")
    _, two = pki.leaf("two.example.com")
    row, created = service.add_certificate(
        pem(one).decode(),
        [crlf(one), crlf(pki.intermediate)],
        source="entrust",
        actor=user["admin"],
    )
    assert created
    added = service.add_for_orders(
        [(None, pem(two).decode(), [crlf(two), crlf(pki.intermediate)])],
        source="entrust_import",
        actor=user["admin"],
    )
    db.session.commit()
    for cert_id, cert in [(row.id, one), (added[0].certificate.id, two)]:
        get = lambda fmt, i=cert_id: admin_client.get(f"/certificates/{i}/download/{fmt}").data  # noqa: E731
        assert x509.load_pem_x509_certificates(get("chain")) == [pki.intermediate]
        assert x509.load_pem_x509_certificates(get("fullchain")) == [cert, pki.intermediate]
        assert set(pkcs7.load_pem_pkcs7_certificates(get("p7b"))) == {cert, pki.intermediate}
        assert len(pkcs7.load_pem_pkcs7_certificates(get("p7b"))) == 2


def test_a_certificate_without_a_chain_has_no_chain_file_to_download(admin_client):
    """Its page offers no chain download; the address opened directly answered an empty
    ".chain.pem" (200). It is a 404 saying why, and audits nothing; the full chain, PKCS#7 and
    PKCS#12 still hold the certificate itself."""
    pki = MiniPki()
    key, cert = pki.leaf("alone.example.com")
    resp = _upload(
        admin_client, ("alone.p12", p12(key, cert, [], P12_PASSWORD)), password=P12_PASSWORD
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Certificate)).scalar_one()
    assert row.chain_pem == ""
    assert 'id="dl-chain"' not in admin_client.get(f"/certificates/{row.id}").get_data(as_text=True)
    events = _count(AuditEvent)
    resp = admin_client.get(f"/certificates/{row.id}/download/chain")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 404 and "Content-Disposition" not in resp.headers
    assert "404 · Not found" in body and "No chain certificates are stored with this" in body
    resp = admin_client.get(f"/certificates/{row.id}/download/chain", headers=HTMX)
    assert resp.status_code == 404 and "no chain file to download" in resp.get_data(as_text=True)
    assert _count(AuditEvent) == events
    fullchain = admin_client.get(f"/certificates/{row.id}/download/fullchain")
    assert fullchain.status_code == 200 and fullchain.data == pem(cert)
    p7 = admin_client.get(f"/certificates/{row.id}/download/p7b")
    assert p7.status_code == 200 and pkcs7.load_pem_pkcs7_certificates(p7.data) == [cert]
    resp = admin_client.post(
        f"/certificates/{row.id}/pkcs12", data={"password": "download-1", "password2": "download-1"}
    )
    assert resp.status_code == 200
    loaded = pkcs12.load_pkcs12(resp.data, b"download-1")
    assert loaded.cert.certificate == cert and loaded.additional_certs == []


def test_a_name_outside_ascii_downloads_under_a_name_that_reads(admin_client):
    """Letters outside ASCII were each made "_": ünï.example.com was saved as
    "_n_.example.com.pem". A host name is offered in its xn-- form, as certificates hold it; any
    other name as it reads (RFC 6266 filename*), with an ASCII one beside it, both still without
    the quotes a header's file name must not hold."""

    def disposition(resp) -> str:
        assert resp.status_code == 200
        return resp.headers["Content-Disposition"]

    pki = MiniPki()
    host = _import_p12(admin_client, pki, cn="ünï.example.com", sans=["www.example.com"])[0]
    host_pem = admin_client.get(f"/certificates/{host.id}/download/pem")
    assert disposition(host_pem) == 'attachment; filename="xn--n-nga1b.example.com.pem"'
    assert "ünï.example.com".encode("idna") == b"xn--n-nga1b.example.com"
    resp = admin_client.post(
        f"/certificates/{host.id}/pkcs12",
        data={"format": "pkcs8", "password": "download-1", "password2": "download-1"},
    )
    assert disposition(resp) == 'attachment; filename="xn--n-nga1b.example.com.key.pem"'
    wild = _import_p12(admin_client, pki, cn="*.bücher.example", sans=["*.xn--bcher-kva.example"])
    resp = admin_client.get(f"/certificates/{wild[0].id}/download/fullchain")
    assert (
        disposition(resp) == 'attachment; filename="wildcard.xn--bcher-kva.example.fullchain.pem"'
    )
    named = _import_p12(admin_client, pki, cn='Zoé "Müller" GmbH', sans=["zoe.example.com"])[0]
    resp = admin_client.get(f"/certificates/{named.id}/download/der")
    assert disposition(resp) == (
        'attachment; filename="Zo___M_ller__GmbH.cer"; '
        "filename*=UTF-8''Zo%C3%A9__M%C3%BCller__GmbH.cer"
    )


def test_an_error_in_the_pasted_text_is_shown_at_the_paste_box(admin_client):
    bad = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    resp = _upload(admin_client, pem_text=bad)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, page
    box = re.search(r"<textarea name=\"pem_text\"[^>]*>", page).group(0)
    assert 'aria-invalid="true"' in box and "autofocus" in box
    assert 'aria-describedby="pem_text-error"' in box
    assert re.search(r'<small class="field-error" id="pem_text-error">pasted text: ', page)
    assert 'id="files-error"' not in page
    # A bad file is still shown at the files.
    resp = _upload(admin_client, ("bad.pem", bad.encode()))
    assert 'id="files-error">bad.pem: ' in resp.get_data(as_text=True)
    assert _count(Certificate) == 0
