"""A small test PKI: a root, an intermediate and leaf certificates, made with cryptography."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID


def _name(cn: str, org: str = "CertDesk Test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def padded_csr_der(cn: str, padding: int) -> tuple[bytes, bytes]:
    """A CSR for ``cn`` made ``padding`` bytes larger by an unknown extension: (DER, PEM)."""
    extension = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\0" * padding
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(extension, critical=False)
        .sign(ec_key(), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER), csr.public_bytes(
        serialization.Encoding.PEM
    )


@lru_cache(maxsize=1)
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _build(subject, issuer, pub, signer, *, ca, days=365, start=None, sans=(), serial=None):
    start = start or datetime.now(UTC) - timedelta(days=1)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(pub)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        names = []
        for s in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.RFC822Name(s) if "@" in s else x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if not ca:
        b = b.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return b.sign(signer, hashes.SHA256())


class MiniPki:
    """root -> intermediate -> leaves."""

    def __init__(self, name: str = "CertDesk Test"):
        self.root_key = ec_key()
        self.root = _build(
            _name(f"{name} Root"),
            _name(f"{name} Root"),
            self.root_key.public_key(),
            self.root_key,
            ca=True,
            days=3650,
        )
        self.int_key = ec_key()
        self.intermediate = _build(
            _name(f"{name} Issuing CA"),
            self.root.subject,
            self.int_key.public_key(),
            self.root_key,
            ca=True,
            days=1825,
        )

    def leaf(self, cn="www.example.com", sans=None, days=365, key=None, start=None):
        key = key or ec_key()
        cert = _build(
            _name(cn),
            self.intermediate.subject,
            key.public_key(),
            self.int_key,
            ca=False,
            days=days,
            start=start,
            sans=sans if sans is not None else [cn],
        )
        return key, cert

    @property
    def chain(self):
        return [self.intermediate, self.root]


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key, password: str | None = None, fmt=serialization.PrivateFormat.PKCS8) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)


def p7b(certs, encoding=serialization.Encoding.DER) -> bytes:
    return pkcs7.serialize_certificates(certs, encoding)


def p12(key, cert, chain, password: str | None, rounds: int | None = None) -> bytes:
    """A PKCS#12 file; with ``rounds``, AES and PBKDF2-SHA256 of that many rounds for its
    certificates' and its key's encryption (its MAC keeps the library's 2,048)."""
    if password and rounds:
        enc = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(rounds)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password.encode())
        )
    elif password:
        enc = serialization.BestAvailableEncryption(password.encode())
    else:
        enc = serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"test", key, cert, chain, enc)


def _material(text: str) -> list[str]:
    """The first 40 characters of every base64 line of ``text`` (the key's own material)."""
    return [line[:40] for line in text.splitlines() if len(line) >= 40 and " " not in line]


def pasted_private_keys() -> dict[str, tuple[str, list[str]]]:
    """A private key in each shape a person may paste, by name: (the text, 40-character slices
    of the key's material, none of which may ever come back in a page)."""
    enc, fmt = serialization.Encoding, serialization.PrivateFormat
    ec_, rsa_ = ec_key(), rsa_key()
    plain = serialization.NoEncryption()
    locked = serialization.BestAvailableEncryption(b"pw-123456")

    def b64(der: bytes) -> str:
        return base64.encodebytes(der).decode()

    texts = {
        "base64 PKCS#1": b64(rsa_.private_bytes(enc.DER, fmt.TraditionalOpenSSL, plain)),
        "base64 PKCS#8": b64(ec_.private_bytes(enc.DER, fmt.PKCS8, plain)),
        "base64 SEC1": b64(ec_.private_bytes(enc.DER, fmt.TraditionalOpenSSL, plain)),
        "base64 encrypted PKCS#8": b64(ec_.private_bytes(enc.DER, fmt.PKCS8, locked)),
        "OpenSSH": ec_.private_bytes(enc.PEM, fmt.OpenSSH, plain).decode(),
        "encrypted PEM": ec_.private_bytes(enc.PEM, fmt.PKCS8, locked).decode(),
    }
    secret = b64(os.urandom(96))
    texts["PuTTY"] = (
        "PuTTY-User-Key-File-3: ecdsa-sha2-nistp256\nEncryption: none\nComment: laptop\n"
        f"Public-Lines: 1\nAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=\nPrivate-Lines: 2\n"
        f"{secret}Private-MAC: {os.urandom(32).hex()}\n"
    )
    texts["PGP"] = (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
        f"{b64(os.urandom(300))}=Ab1c\n-----END PGP PRIVATE KEY BLOCK-----\n"
    )
    scalar = ec_.private_numbers().private_value.to_bytes(32, "big")
    d = base64.urlsafe_b64encode(scalar).rstrip(b"=").decode()
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}
    shapes = {name: (text, _material(text)) for name, text in texts.items()}
    shapes["JWK"] = (json.dumps({**jwk, "d": d}, indent=2), [d[:40]])
    return shapes
