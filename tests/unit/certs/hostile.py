"""Key files that ask for too much work to open, built by hand: a few lines of DER encoding.

``encrypted_pkcs8`` makes a real PBES2 key (PBKDF2 or scrypt, AES-256-CBC) that opens with its
password, and can state another iteration count than the one it was encrypted with: the edited
file of the report (opening it would run the stated count first, then fail). The PKCS#12 helpers
edit a file's MAC count or hide such a key inside an encrypted safe.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from webapp import kdfcost, pki

# A PKCS#12 file made by `openssl pkcs12 -export -legacy` (certificate under 40-bit RC2, key
# under 3DES, SHA-1 MAC, 2,048 rounds each), password "legacy-pass": what older tools write.
LEGACY_P12_PASSWORD = "legacy-pass"
LEGACY_P12 = base64.b64decode(
    "MIIDkgIBAzCCA1gGCSqGSIb3DQEHAaCCA0kEggNFMIIDQTCCAjcGCSqGSIb3DQEHBqCCAigwggIkAgEAMIICHQYJKoZIhvcN"
    "AQcBMBwGCiqGSIb3DQEMAQYwDgQIxH8gIwBWI/oCAggAgIIB8ARC1ESz0wgOlccpGc7XaunWO+xcA6CQWfn9j1KRxF8Nz1Yw"
    "XHfsj0CHa7PIcwhM4eXPolUZV3LYET54f+E0RGdsrYtHzcx0V9eCxH13Cir7+OUBAMOMrBD/2Zv6q58bnookVqblp2Cj3Oh1"
    "NeazJ0joeuJMhLAO3iw5Zs8BW9nJvzBEXwgbWggecWKemM/828K9z3YOcQE+oIaOnwylmxLuh0DXc2B/mW7gFRkwLZXhS6sF"
    "m1mg6e0Ro/JK7jmzEvYV+RzXfMHxpKKnubRSFMb2q4MjDdKRCuR8939vxtes5UUltmzTJzgPtGNDeZopul1yixx3P+DuPMqq"
    "WxtrDJ20fwVlTE54YpFwbnLc805DAHWwQvMQaIW28h1uK+/l6rVZoDtK/lhhoMeiCBwUSVcKdL3s5nJYlfSdM+WlBr3FA2Y/"
    "jkMuQYZqkLsqTsk6u37wl1W2JqWK5QxQd4Z22BulaRDB03xsaeAL9N8ziELBwqlyra17ZYvjcnUUN2GCHgNnQo1u6X7+Ldsm"
    "ESF4dHpxNbyyOvW090FPsptyG5EEcPYWhxD6aXGZ7IS95/R5JW3i308F7lmQb3D7Ft/qKjTkYLLWgTUyf4ygcs6wBivChRtH"
    "bptO6cEwhHtEcXd6Wm4mB+pOXZS8acjqL+8L5TIwggECBgkqhkiG9w0BBwGggfQEgfEwge4wgesGCyqGSIb3DQEMCgECoIG0"
    "MIGxMBwGCiqGSIb3DQEMAQMwDgQIi2oka3jpafgCAggABIGQL6osGrpBCw+bizymtNHjNoVzVIGXPwlKErq/u+U0Z/Oz0reF"
    "unQmpdcNiYD+oHO6qQOK2q0dARrq+FvP6zb3vuxFjVIEmg0c2frqPx3f7hPkVJjneH/ZO8BYCvFxxtKZYTSQt3bqyUBMTlfh"
    "Xv9vVxEudrehJUID0hCM/QL7OiwBXaCOfFoljJPL7EkJyc+TMSUwIwYJKoZIhvcNAQkVMRYEFElOg5gPspC8EDDP2E6EFMY1"
    "EI0NMDEwITAJBgUrDgMCGgUABBTQWzjqUC3sXdjybcWFRFxt2xXRzwQI64CiG9wPMzQCAggA"
)

HMAC_SHA256 = "1.2.840.113549.2.9"
AES_256_CBC = "2.16.840.1.101.3.4.1.42"


# -- DER encoding ---------------------------------------------------------------------------------


# The DER writer CertDesk's key files are written with.
tlv, seq, oid = pki.der_tlv, pki.der_seq, pki.der_oid


def integer(n: int) -> bytes:
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def explicit0(content: bytes) -> bytes:
    return tlv(0xA0, content)


def children(der: bytes) -> list[bytes]:
    """The encoded elements inside the (definite-length) constructed element ``der``."""
    node_end = len(der)
    pos = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    out = []
    while pos < node_end:
        first = der[pos + 1]
        head = 2 + (first & 0x7F if first & 0x80 else 0)
        length = int.from_bytes(der[pos + 2 : pos + head], "big") if first & 0x80 else first
        out.append(der[pos : pos + head + length])
        pos += head + length
    return out


# -- hostile files --------------------------------------------------------------------------------


def _aes_cbc(key: bytes, iv: bytes, plain: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()


def pbes2(password: str, plain: bytes, *, stated: int, used: int | None = None):
    """(AlgorithmIdentifier, ciphertext) of PBES2 with PBKDF2-SHA256 and AES-256-CBC, encrypted
    with ``used`` rounds (default: ``stated``) but saying ``stated``."""
    salt, iv = os.urandom(16), os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, used or stated).derive(password.encode())
    kdf = seq(oid(kdfcost.PBKDF2), seq(octets(salt), integer(stated), seq(oid(HMAC_SHA256))))
    alg = seq(oid(kdfcost.PBES2), seq(kdf, seq(oid(AES_256_CBC), octets(iv))))
    return alg, _aes_cbc(key, iv, plain)


def encrypted_pkcs8(key, password: str, *, stated: int, used: int | None = None) -> bytes:
    """An EncryptedPrivateKeyInfo (DER) of ``key``."""
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    alg, data = pbes2(password, plain, stated=stated, used=used)
    return seq(alg, octets(data))


def scrypt_pkcs8(n: int, r: int = 8, p: int = 1) -> bytes:
    """An EncryptedPrivateKeyInfo stating scrypt parameters (its content is never reached)."""
    kdf = seq(oid(kdfcost.SCRYPT), seq(octets(b"salt" * 4), integer(n), integer(r), integer(p)))
    alg = seq(oid(kdfcost.PBES2), seq(kdf, seq(oid(AES_256_CBC), octets(b"\0" * 16))))
    return seq(alg, octets(b"\0" * 64))


def pem(der: bytes, label: str = "ENCRYPTED PRIVATE KEY") -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def with_mac_rounds(p12: bytes, rounds: int) -> bytes:
    """``p12`` with its MAC's iteration count changed to ``rounds``."""
    version, auth_safe, mac = children(p12)
    digest, salt, _ = children(mac)
    return seq(version, auth_safe, seq(digest, salt, integer(rounds)))


def p12_hiding_a_costly_key(key, cert, password: str, rounds: int) -> bytes:
    """A PKCS#12 file (no MAC) whose only safe is encrypted (2,048 rounds) and holds the
    certificate and a shrouded key that states ``rounds``."""
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    cert_bag = seq(
        oid("1.2.840.113549.1.12.10.1.3"),
        explicit0(seq(oid("1.2.840.113549.1.9.22.1"), explicit0(octets(cert_der)))),
    )
    shrouded = encrypted_pkcs8(key, password, stated=rounds, used=2048)
    key_bag = seq(oid(kdfcost.SHROUDED_KEY_BAG), explicit0(shrouded))
    alg, data = pbes2(password, seq(cert_bag, key_bag), stated=2048)
    encrypted_data = seq(integer(0), seq(oid(kdfcost.DATA), alg, tlv(0x80, data)))
    safes = seq(seq(oid(kdfcost.ENCRYPTED_DATA), explicit0(encrypted_data)))
    return seq(integer(3), seq(oid(kdfcost.DATA), explicit0(octets(safes))))


def rsa_key_of(bits: int):
    """An RSA key of ``bits`` bits made at once: its numbers are odd, not prime, so only the
    checks run when a key is opened (which test the primes: minutes at this size) tell."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    half = bits // 2
    p = int.from_bytes(os.urandom(half // 8), "big") | (3 << (half - 2)) | 1
    q = p + 2
    e = 65537
    numbers = rsa.RSAPrivateNumbers(p, q, 3, 3, 3, 3, rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def certificate_ladder(count: int, *, prefix: str = "rung", ladder: bool = True) -> bytes:
    """PEM of ``count`` end-entity certificates, each naming the one before as its issuer: every
    one is a leaf whose chain is all those below it (signatures are not what is checked).
    ``ladder=False``: all of one issuer that is not among them (each a leaf without a chain)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(days=1)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix}-base.example.com")])
    out = []
    for i in range(count):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix}{i}.example.com")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(i + 1)
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=90))
            .sign(key, hashes.SHA256())
        )
        out.append(cert.public_bytes(serialization.Encoding.PEM))
        if ladder:
            issuer = subject
    return b"".join(out)
