"""Key and CSR generation, every import format, every export, and the key-matches check."""

from __future__ import annotations

import base64
import ipaddress
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from tests.unit.certs.factory import MiniPki, _build, der, key_pem, p7b, p12, pem, rsa_key
from webapp import kdfcost, pki
from webapp.pki import PkiError

SUBJECT = {
    "CN": "www.example.com",
    "O": "Example Ltd",
    "OU": "Web",
    "L": "Berlin",
    "ST": "Berlin",
    "C": "de",
    "emailAddress": "pki@example.com",
}


@pytest.mark.parametrize("key_type", sorted(pki.KEY_TYPES))
def test_generate_every_key_type(key_type):
    key = pki.generate_private_key(key_type)
    sans, problems = pki.parse_san_text(
        "www.example.com, example.com 192.0.2.7\n2001:db8::1 ops@example.com"
    )
    assert not problems
    csr = pki.build_csr(key, SUBJECT, sans, "sha384" if key_type == "p384" else "sha256")
    assert csr.is_signature_valid
    info = pki.parse_csr(csr.public_bytes(serialization.Encoding.PEM))
    kind, size = pki.KEY_TYPES[key_type]
    assert info.key.type == kind and info.key.size == size
    assert csr.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Web"
    assert csr.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "pki@example.com"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com", "example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256 | hashes.SHA384)
    assert pki.key_matches(key, csr.public_key())


def test_build_csr_refuses_bad_subject():
    key = pki.generate_private_key("p256")
    with pytest.raises(PkiError) as e:
        pki.build_csr(key, {"CN": "x.example.com", "C": "Germany"}, pki.SanSet())
    assert e.value.field == "C"
    with pytest.raises(PkiError):
        pki.build_csr(key, {"CN": "x.example.com"}, pki.SanSet(), "md5")
    with pytest.raises(PkiError):
        pki.generate_private_key("dsa1024")


def test_name_checks():
    assert pki.check_dns_name("WWW.Example.COM.") == "www.example.com"
    assert pki.check_dns_name("*.example.com") == "*.example.com"
    assert pki.check_dns_name("bücher.de") == "xn--bcher-kva.de"
    # IDNA 2008 with UTS 46, as browsers and CAs convert names: "straße" is its own name, not
    # "strasse" (Python's IDNA 2003 codec made the certificate name another domain).
    assert pki.check_dns_name("Straße.example.com") == "xn--strae-oqa.example.com"
    assert pki.check_dns_name("ß.example") == "xn--zca.example"
    assert pki.check_dns_name("*.Bücher.example") == "*.xn--bcher-kva.example"
    assert pki.check_dns_name("XN--BCHER-KVA.example") == "xn--bcher-kva.example"
    for bad in (
        "xn--zz.example",  # no valid A-label
        "a\u200db.example",  # a joiner outside its context
        "a..b",
        "ex ample.com",
        "www.*.example.com",
        "-a.example.com",
        "localhost",
        "a" * 64 + ".com",
    ):
        with pytest.raises(PkiError):
            pki.check_dns_name(bad)
    sans, problems = pki.parse_san_text("good.example.com bad..example.com x@ 10.0.0.1")
    assert sans.dns == ["good.example.com"] and sans.ip == ["10.0.0.1"] and len(problems) == 2
    assert pki.suggest_sans("example.com") == ["example.com", "www.example.com"]
    assert pki.suggest_sans("*.example.com") == ["*.example.com", "example.com"]
    assert pki.suggest_sans("host.example.com") == ["host.example.com"]


def test_parse_csr_pem_and_der_and_errors():
    key = pki.generate_private_key("p256")
    csr = pki.build_csr(key, {"CN": "a.example.com"}, pki.SanSet(dns=["a.example.com"]))
    assert (
        pki.parse_csr(csr.public_bytes(serialization.Encoding.DER)).common_name == "a.example.com"
    )
    legacy = csr.public_bytes(serialization.Encoding.PEM).replace(
        b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"
    )
    assert pki.parse_csr(legacy).common_name == "a.example.com"
    _, cert = MiniPki().leaf()
    with pytest.raises(PkiError, match="not a CSR"):
        pki.parse_csr(pem(cert))
    with pytest.raises(PkiError, match="larger than"):
        pki.parse_csr(b"x" * (pki.MAX_FILE_BYTES + 1))
    with pytest.raises(PkiError, match="Nothing"):
        pki.parse_csr(b"   ")


def test_private_key_formats_and_passwords():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        assert pki.key_matches(pki.load_private_key(key_pem(key, fmt=fmt)), key.public_key())
        enc = key_pem(key, "s3cret-pass", fmt=fmt)
        assert pki.key_matches(pki.load_private_key(enc, "s3cret-pass"), key.public_key())
        with pytest.raises(PkiError, match="encrypted") as e:
            pki.load_private_key(enc)
        assert e.value.field == "key_password"
        with pytest.raises(PkiError, match="Wrong password"):
            pki.load_private_key(enc, "nope")
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert pki.load_private_key(der_key).key_size == 2048
    with pytest.raises(PkiError, match="not encrypted"):
        pki.load_private_key(key_pem(key), "unneeded")


@pytest.mark.parametrize(
    "make",
    [
        lambda: ed25519.Ed25519PrivateKey.generate(),
        lambda: dsa.generate_private_key(2048),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 (the weak key under test)
        lambda: ec.generate_private_key(ec.SECP256K1()),
    ],
)
def test_unsupported_key_types(make):
    with pytest.raises(PkiError):
        pki.load_private_key(key_pem(make()))


def test_key_matches():
    a, b = pki.generate_private_key("p256"), pki.generate_private_key("p256")
    assert pki.key_matches(a, a.public_key()) and not pki.key_matches(a, b.public_key())


def test_every_import_format():
    t = MiniPki()
    key, cert = t.leaf("leaf.example.com", ["leaf.example.com", "10.1.2.3"])
    bundles = {
        "pem": pki.read_certificates(pem(cert)),
        "pem chain": pki.read_certificates(pem(cert) + pem(t.intermediate) + pem(t.root)),
        "der": pki.read_certificates(der(cert)),
        "p7b der": pki.read_certificates(p7b([cert, *t.chain])),
        "p7b pem": pki.read_certificates(p7b([cert, *t.chain], serialization.Encoding.PEM)),
        "p12": pki.read_certificates(p12(key, cert, t.chain, "pw-123456"), "pw-123456"),
        "p12 no password": pki.read_certificates(p12(key, cert, t.chain, None)),
        "pem with key": pki.read_certificates(pem(cert) + key_pem(key)),
    }
    for name, b in bundles.items():
        ((leaf, chain),) = pki.split_leaves(b.certificates)
        assert leaf == cert, name
        if name in ("pem chain", "p7b der", "p7b pem", "p12", "p12 no password"):
            assert chain == t.chain, name
    assert bundles["p12"].key is not None and pki.key_matches(bundles["p12"].key, cert.public_key())
    assert bundles["pem with key"].key is not None
    info = pki.describe_certificate(cert)
    assert info.sans.dns == ["leaf.example.com"] and info.sans.ip == ["10.1.2.3"]
    assert info.issuer_cn == "CertDesk Test Issuing CA" and not info.is_ca
    assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    cas = pki.split_leaves([t.intermediate, t.root])
    assert {c.subject for c, _ in cas} == {t.intermediate.subject, t.root.subject}


def test_every_export_format():
    t = MiniPki()
    key, cert = t.leaf()
    assert x509.load_der_x509_certificate(pki.export_der(cert)) == cert
    assert set(pkcs7.load_pem_pkcs7_certificates(pki.export_pkcs7([cert, *t.chain]))) == {
        cert,
        *t.chain,
    }
    loaded = pkcs12.load_pkcs12(
        pki.export_pkcs12("leaf", key, cert, t.chain, "pass-word"), b"pass-word"
    )
    assert (
        loaded.cert.certificate == cert
        and [c.certificate for c in loaded.additional_certs] == t.chain
    )
    key_only = pkcs12.load_pkcs12(pki.export_pkcs12("k", key, None, [], "pass-word"), b"pass-word")
    assert key_only.key.private_numbers() == key.private_numbers() and key_only.cert is None
    enc = pki.export_key_pkcs8(key, "pass-word")
    assert b"ENCRYPTED PRIVATE KEY" in enc
    assert (
        serialization.load_pem_private_key(enc, b"pass-word").private_numbers()
        == key.private_numbers()
    )


@pytest.mark.parametrize("make", [lambda: ec.generate_private_key(ec.SECP384R1()), rsa_key])
def test_a_downloaded_pkcs8_key_takes_600000_rounds_of_pbkdf2_sha256_and_aes_256(make):
    """The library writes PKCS#8 with 2,048 rounds; a key file handed out is as costly to guess
    as current guidance asks, and OpenSSL opens it."""
    key = make()
    enc = pki.export_key_pkcs8(key, "pass-word")
    der = base64.b64decode("".join(enc.decode().strip().splitlines()[1:-1]))
    alg = kdfcost.parse(der).child(0)
    kdf, scheme = alg.child(1).children
    assert alg.child(0).oid() == "1.2.840.113549.1.5.13"  # PBES2
    params = kdf.child(1)
    assert params.child(1).integer() == 600_000 and len(params.child(0).value) == 16
    assert params.child(2).child(0).oid() == "1.2.840.113549.2.9"  # HMAC-SHA256
    assert scheme.child(0).oid() == "2.16.840.1.101.3.4.1.42"  # AES-256-CBC
    assert enc != pki.export_key_pkcs8(key, "pass-word")  # a new salt and IV each time
    loaded = serialization.load_pem_private_key(enc, b"pass-word")
    assert loaded.private_numbers() == key.private_numbers()
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(enc, b"wrong-word")
    if shutil.which("openssl") is None:  # the command-line tool, where installed, opens it too
        return
    opened = subprocess.run(
        ["openssl", "pkey", "-passin", "pass:pass-word", "-outform", "DER"],
        input=enc,
        capture_output=True,
        check=True,
    ).stdout
    reloaded = serialization.load_der_private_key(opened, None)
    assert reloaded.private_numbers() == key.private_numbers()


def test_subjects_name_the_attributes_rfc_4514_leaves_as_numbers():
    """The e-mail of S/MIME certificates and CSRs, and the attributes of EV subjects, show by
    name (as OpenSSL shows them), not as dotted OIDs."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = pki.build_csr(key, SUBJECT, pki.SanSet())
    info = pki.parse_csr(csr.public_bytes(serialization.Encoding.PEM))
    assert info.subject == (
        "emailAddress=pki@example.com,C=DE,ST=Berlin,L=Berlin,OU=Web,O=Example Ltd,"
        "CN=www.example.com"
    )
    ev = x509.Name(
        [
            x509.NameAttribute(NameOID.JURISDICTION_COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, "Private Organization"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "HRB 12345"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Ltd"),
            x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com"),
        ]
    )
    cert = _build(ev, ev, key.public_key(), key, ca=False)
    described = pki.describe_certificate(cert)
    expected = (
        "CN=www.example.com,O=Example Ltd,serialNumber=HRB 12345,"
        "businessCategory=Private Organization,jurisdictionC=DE"
    )
    assert described.subject == described.issuer == expected
    assert "1.2.840" not in info.subject and "1.3.6" not in described.subject


def test_a_private_key_is_recognised_in_every_shape_and_nothing_else_is():
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (text, _) in pasted_private_keys().items():
        assert pki.holds_private_key(text), shape
        assert pki.holds_private_key(text.encode()), shape
        assert pki.shown_again(text) == "", shape
    mini = MiniPki()
    key, cert = mini.leaf("plain.example.com")
    csr = pki.build_csr(key, {"CN": "plain.example.com"}, pki.SanSet(dns=["plain.example.com"]))
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for text in (
        base64.encodebytes(der(cert)).decode(),  # base64 DER, but of a certificate
        base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode(),
        base64.b64encode(public).decode(),
        pem(cert).decode(),
        "www.example.com\nexample.com",
        '{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}',
        "A" * 200,  # base64 of zeros: no DER
    ):
        assert not pki.holds_private_key(text), text[:40]
        assert pki.shown_again(text) == text
