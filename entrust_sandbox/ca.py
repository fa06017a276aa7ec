"""The sandbox's test CA: a root and an intermediate made once and kept in the state.

Issued certificates are real X.509 signed by the intermediate. Seeded certificates get their PEM
lazily (see `store.Store.certificate_pem`); to keep that fast, keys for seeded and third-party
certificates come from a small per-process cache keyed by type and size, since generating an RSA
4096 key per certificate would take seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RSA_KEY_SIZES = (1024, 1536, 2048, 3072, 4096)
KEY_SIZE_MESSAGE = "The key size must be 1024, 1536, 2048, 3072 or 4096 bits."
# Microsoft's document-signing EKU, the nearest public OID for CDS certificates.
DOCUMENT_SIGNING_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")

_key_cache: dict[tuple[str, int], object] = {}
_key_lock = threading.Lock()


def cached_key(key_type: str, key_size: int):
    """A private key of that type and size, generated once per process and then reused."""
    with _key_lock:
        key = _key_cache.get((key_type, key_size))
        if key is None:
            if key_type == "EC":
                curve = {256: ec.SECP256R1(), 384: ec.SECP384R1()}.get(key_size, ec.SECP256R1())
                key = ec.generate_private_key(curve)
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
            _key_cache[(key_type, key_size)] = key
        return key


def key_pem(key) -> str:
    """PKCS#8 PEM of a private key, unencrypted."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    """PEM text of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def serial_hex(serial: int) -> str:
    """ECS's serial format: upper-case hex, no leading zeros."""
    return format(serial, "X")


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 thumbprint of the DER encoding, upper-case hex, as Windows and Keyfactor show it."""
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # noqa: S324


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """Load a CSR given as PEM or as bare base64 DER; raise ValueError when it is neither."""
    text = (text or "").strip()
    if not text:
        raise ValueError("empty CSR")
    if "-----BEGIN" in text:
        return x509.load_pem_x509_csr(text.encode())
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("CSR is not base64") from exc
    return x509.load_der_x509_csr(der)


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    """PEM text of a CSR."""
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def describe_key(public_key) -> tuple[str, int]:
    """Return (keyType, keySize) as ECS reports them."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC", public_key.curve.key_size
    return "OTHER", 0


def csr_common_name(csr: x509.CertificateSigningRequest) -> str | None:
    """The CN of the CSR subject, if any."""
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def csr_attribute(csr: x509.CertificateSigningRequest, oid) -> str | None:
    """One subject attribute of the CSR, if present."""
    names = csr.subject.get_attributes_for_oid(oid)
    return str(names[0].value) if names else None


def csr_dns_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """The dNSName SANs requested in the CSR."""
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(x509.DNSName)


def make_csr(common_name: str, key=None, sans=()) -> tuple[str, object]:
    """Build a CSR (PEM) for tests, seeding and the CLI demo; returns (pem, key)."""
    key = key or cached_key("RSA", 2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return csr_pem(builder.sign(key, hashes.SHA256())), key


@dataclass
class Issued:
    """A freshly signed certificate and the facts the API reports about it."""

    pem: str
    serial: str
    dn: str


def _name(pairs: list[tuple]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs if value])


def _eku_oids(eku: str | None, cert_type: str) -> list:
    if cert_type in ("CODE_SIGNING", "EV_CODE_SIGNING"):
        return [ExtendedKeyUsageOID.CODE_SIGNING]
    if cert_type == "SMIME_ENT":
        return [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    if cert_type.startswith("CDS_"):
        return [DOCUMENT_SIGNING_OID, ExtendedKeyUsageOID.EMAIL_PROTECTION]
    return {
        "SERVER_AUTH": [ExtendedKeyUsageOID.SERVER_AUTH],
        "CLIENT_AUTH": [ExtendedKeyUsageOID.CLIENT_AUTH],
    }.get(eku or "", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


def _san_entry(value: str):
    if "@" in value:
        return x509.RFC822Name(value)
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


class CertificateAuthority:
    """Root and intermediate of the sandbox, able to sign leaf, server and client certificates."""

    def __init__(self, root_pem: str, root_key_pem: str, int_pem: str, int_key_pem: str):
        self.root_pem = root_pem
        self.intermediate_pem = int_pem
        self.root_key_pem = root_key_pem
        self.intermediate_key_pem = int_key_pem
        self.root = x509.load_pem_x509_certificate(root_pem.encode())
        self.intermediate = x509.load_pem_x509_certificate(int_pem.encode())
        self._int_key = serialization.load_pem_private_key(int_key_pem.encode(), None)

    @classmethod
    def create(cls, now: datetime) -> CertificateAuthority:
        """Make a new root (20 years) and intermediate (10 years)."""
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        int_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_name = _name(
            [
                (NameOID.COUNTRY_NAME, "US"),
                (NameOID.ORGANIZATION_NAME, "CertDesk Sandbox"),
                (NameOID.COMMON_NAME, "CertDesk Sandbox Root CA - G2"),
            ]
        )
        int_name = _name(
            [
                (NameOID.COUNTRY_NAME, "US"),
                (NameOID.ORGANIZATION_NAME, "CertDesk Sandbox"),
                (NameOID.COMMON_NAME, "CertDesk Sandbox Certification Authority - L1K"),
            ]
        )
        start = now - timedelta(days=1)
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365 * 20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        inter = (
            x509.CertificateBuilder()
            .subject_name(int_name)
            .issuer_name(root_name)
            .public_key(int_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365 * 10))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(int_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        return cls(cert_pem(root), key_pem(root_key), cert_pem(inter), key_pem(int_key))

    def sign(
        self,
        public_key,
        *,
        subject: list[tuple] | x509.Name,
        sans: list[str],
        not_before: datetime,
        not_after: datetime,
        serial: int,
        eku: str | None = None,
        cert_type: str = "STANDARD_SSL",
    ) -> Issued:
        """Sign a leaf certificate for `public_key` from the intermediate."""
        name = subject if isinstance(subject, x509.Name) else _name(subject)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(_eku_oids(eku, cert_type)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._int_key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san_entry(s) for s in sans]), critical=False
            )
        cert = builder.sign(self._int_key, hashes.SHA256())
        return Issued(cert_pem(cert), serial_hex(serial), name.rfc4514_string())

    def issue_tls_server(self, now: datetime, hosts=("127.0.0.1", "localhost", "::1")):
        """A server certificate for the sandbox's own HTTPS listener: (cert+chain PEM, key PEM)."""
        key = cached_key("EC", 256)
        issued = self.sign(
            key.public_key(),
            subject=[(NameOID.COMMON_NAME, hosts[1] if len(hosts) > 1 else hosts[0])],
            sans=list(hosts),
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
            serial=x509.random_serial_number(),
            eku="SERVER_AUTH",
        )
        return issued.pem + self.intermediate_pem, key_pem(key)

    def issue_client(self, username: str, now: datetime) -> tuple[str, str]:
        """A TLS client certificate for an API user: (cert PEM, key PEM), each with a new key."""
        key = ec.generate_private_key(ec.SECP256R1())
        issued = self.sign(
            key.public_key(),
            subject=[
                (NameOID.ORGANIZATION_NAME, "CertDesk Sandbox"),
                (NameOID.COMMON_NAME, username),
            ],
            sans=[],
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365 * 2),
            serial=x509.random_serial_number(),
            eku="CLIENT_AUTH",
        )
        return issued.pem, key_pem(key)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def third_party_certificate(
    common_name: str, serial: int, not_before: datetime, not_after: datetime
) -> str:
    """A certificate from an unrelated issuer, as a discovered third-party cert.

    Keys are derived from the serial and the issuer signs with Ed25519 (deterministic
    signatures), so the same seed gives the same certificate and thumbprint in any process.
    """
    issuer_key = ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"sandbox third-party issuer").digest()
    )
    issuer = _name(
        [(NameOID.ORGANIZATION_NAME, "Example Other CA"), (NameOID.COMMON_NAME, "Other CA R3")]
    )
    secret = int.from_bytes(hashlib.sha256(serial.to_bytes(20, "big")).digest(), "big")
    key = ec.derive_private_key(secret % (2**255) + 1, ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name([(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(issuer_key, None)
    )
    return cert_pem(cert)


def load_cert(pem: str) -> x509.Certificate:
    """Parse a PEM certificate."""
    return x509.load_pem_x509_certificate(pem.encode())


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, hex; used to match a TLS peer to an API user."""
    return hashlib.sha256(der).hexdigest()


def subject_dn(der: bytes) -> str:
    """The subject of a DER certificate, written as the API writes a certificate's dn."""
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the DER form of a PEM certificate, hex."""
    return der_fingerprint(load_cert(pem).public_bytes(serialization.Encoding.DER))


def utc(moment: datetime) -> datetime:
    """Ensure a datetime is timezone-aware UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def csr_common_name_from_name(name: x509.Name) -> str | None:
    """The CN of an x509.Name, if any."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None
