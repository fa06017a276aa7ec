"""X.509 plumbing shared by SSL > CSRs and SSL > Certificates: parse, describe, generate, export.

No Flask and no database here. Every parser takes untrusted bytes and raises ``PkiError`` (a
ValueError with a message a person can act on) for anything it cannot read; nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtensionOID, NameOID

from webapp import kdfcost
from webapp.validation import InputError, has_control, is_control

MAX_FILE_BYTES = 1024 * 1024  # one CSR, key or certificate (pasted or uploaded)
MAX_RSA_BITS = kdfcost.MAX_RSA_BITS
# One certificate, DER: real ones take a few KiB, the largest (thousands of names) well under this.
# A certificate is stored with each certificate it issued, so a larger one is refused on reading.
MAX_CERT_BYTES = 64 * 1024
# Names (SANs) of one imported certificate or CSR, each stored and searched as a row: real
# certificates hold up to a few hundred.
MAX_NAMES = 1000
NOT_A_CERTIFICATE_FILE = (
    "This is not a certificate file CertDesk can read (PEM, DER, PKCS#7 or PKCS#12)."
)

KEY_TYPES = {
    "rsa2048": ("RSA", 2048),
    "rsa3072": ("RSA", 3072),
    "rsa4096": ("RSA", 4096),
    "p256": ("EC", 256),
    "p384": ("EC", 384),
}
KEY_TYPE_LABELS = {
    "rsa2048": "RSA 2048",
    "rsa3072": "RSA 3072",
    "rsa4096": "RSA 4096",
    "p256": "ECDSA P-256",
    "p384": "ECDSA P-384",
}
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1}

SUBJECT_FIELDS = (
    ("CN", NameOID.COMMON_NAME, "Common name", 64),
    ("O", NameOID.ORGANIZATION_NAME, "Organization", 64),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME, "Organizational unit", 64),
    ("L", NameOID.LOCALITY_NAME, "Locality", 128),
    ("ST", NameOID.STATE_OR_PROVINCE_NAME, "State or province", 128),
    ("C", NameOID.COUNTRY_NAME, "Country", 2),
    ("emailAddress", NameOID.EMAIL_ADDRESS, "E-mail", 128),
)

# Subject attributes RFC 4514 has no short name for (it writes their dotted OID), as OpenSSL
# names them: the e-mail of S/MIME and CSRs, and what EV certificates carry.
_NAMED_ATTRIBUTES = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


def visible(text: str) -> str:
    """``text`` with each control character (a line break, a text-direction override) written
    as the RFC 4514 escapes of its UTF-8 bytes (U+202E: \\E2\\80\\AE), so that a name read
    from a certificate shows as it is and cannot make another name appear on a page."""
    if not has_control(text):
        return text
    return "".join(
        "".join(f"\\{b:02X}" for b in ch.encode()) if is_control(ch) else ch for ch in text
    )


def name_text(name: x509.Name) -> str:
    """A distinguished name as text: RFC 4514, with the attributes it leaves as numbers named
    (control characters escaped, see :func:`visible`)."""
    return visible(name.rfc4514_string(_NAMED_ATTRIBUTES))


_LABEL = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# The local part of an address a certificate can hold (an IA5String: ASCII), RFC 5322's
# dot-atom: no spaces, quotes, brackets or non-ASCII letters.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def check_email(text: str) -> str:
    """The address as a certificate holds it (lower case, its domain in xn-- form), or PkiError
    saying what is wrong."""
    local, at, domain = (text or "").strip().rpartition("@")
    if not at or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        raise PkiError(
            f"{text.strip()}: not a valid e-mail address (before the @, only letters A to Z, "
            "digits and signs such as . _ + -: no spaces, accents or brackets)."
        )
    try:
        host = check_dns_name(domain)
    except PkiError as exc:
        raise PkiError(f"{text.strip()}: not a valid e-mail address ({exc})") from None
    if host.startswith("*."):
        raise PkiError(f"{text.strip()}: not a valid e-mail address.")
    return f"{local}@{host}".lower()


class PkiError(InputError):
    """Input that is not what it claims to be; ``field`` names the form field it belongs to."""


class TooCostly(PkiError):
    """A key file that asks for more key-derivation work than CertDesk does to open it."""


# -- PEM ---------------------------------------------------------------------------------------

_LABEL_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


@dataclass(frozen=True)
class PemBlock:
    label: bytes  # b"CERTIFICATE", b"ENCRYPTED PRIVATE KEY", ...
    text: bytes  # from "-----BEGIN" to the end of the END line's "-----"


def _begin_label(line: bytes) -> bytes | None:
    """The label of a line that ends in ``-----BEGIN <label>-----``, else None."""
    if not line.endswith(b"-----"):
        return None
    at = line.rfind(b"-----BEGIN ", 0, len(line) - 5)
    label = line[at + 11 : -5] if at >= 0 else b""
    return label if label and all(c in _LABEL_CHARS for c in label) else None


# Marks of a private key in text: a PEM label (PKCS#8, encrypted PKCS#8, RSA, EC, DSA, OpenSSH),
# an OpenPGP secret key block, a PuTTY key file.
_KEY_MARKS = ("PRIVATE KEY-----", "PGP PRIVATE KEY BLOCK", "PuTTY-User-Key-File-")
# A JWK's private member: "d" with a base64url value beside a "kty".
_JWK_PRIVATE = re.compile(r'"d"\s*:\s*"[A-Za-z0-9_\-]{16,}')
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
# Bare base64 of a DER key: from an Ed25519 PKCS#8 (48 bytes) to an RSA-16384 PKCS#1 (~9.5 KiB).
_DER_KEY_CHARS = (60, 14 * 1024)

KEY_PASTED = (
    "A private key was pasted here. It is not shown again and nothing of it was kept: paste "
    "what this field asks for, and a key only in a key field."
)


def holds_private_key(text: str | bytes) -> bool:
    """Whether ``text`` holds a private key in any shape a person may paste: a PEM block of any
    kind (PKCS#8, encrypted, RSA, EC, OpenSSH), an OpenPGP secret key block, a PuTTY ``.ppk``
    file, a JWK with its private member, or bare base64 of a DER key (PKCS#1, PKCS#8, SEC1).

    Cheap: text marks first; the base64 is decoded and read as a key only when the whole text
    is base64 of a key's size, starting as DER does."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if any(mark.encode() in raw for mark in _KEY_MARKS):
        return True
    if b'"kty"' in raw and _JWK_PRIVATE.search(raw.decode("utf-8", "replace")):
        return True
    return _is_base64_der_key(raw)


def _is_base64_der_key(raw: bytes) -> bool:
    low, high = _DER_KEY_CHARS
    if not low <= len(raw) <= high * 2:  # leave room for line breaks before they are cut
        return False
    packed = b"".join(raw.split())
    if not low <= len(packed) <= high or not _BASE64_TEXT.fullmatch(packed):
        return False
    try:
        der = base64.b64decode(packed + b"=" * (-len(packed) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    if der[:1] != b"\x30":  # a DER SEQUENCE, as every key format here is
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            serialization.load_der_private_key(
                der, password=None, unsafe_skip_rsa_key_validation=True
            )
    except TypeError:  # an encrypted PKCS#8 key, asking for its password
        return True
    except Exception:  # noqa: BLE001 (any other DER: a CSR, a certificate, noise)
        return False
    return True


def shown_again(pasted: str) -> str:
    """A pasted text as a form may show it again after an error: nothing at all when a private
    key was pasted with it or in its place (a key is never sent back to the browser)."""
    return "" if holds_private_key(pasted) else pasted


def drop_pasted_key(values: dict, errors: dict[str, str], name: str, error_name: str) -> None:
    """Before a refused form is shown again with what was typed: empty ``values[name]`` (the
    CSR box, the one typed text besides the key's own field that may hold a key; any other field
    with one was refused before the view, see ``validation.refuse_pasted_keys``) when it holds a
    private key, and say so in the error ``error_name`` (after any error it already has)."""
    if not holds_private_key(values.get(name) or ""):
        return
    values[name] = ""
    held = errors.get(error_name, "")
    errors[error_name] = held if "private key" in held else f"{held} {KEY_PASTED}".strip()


def pem_blocks(raw: bytes) -> list[PemBlock]:
    """Every ``-----BEGIN X-----`` ... ``-----END X-----`` block in ``raw``, in order.

    One pass over the lines, so the work grows with the input's length and nothing else (a
    pattern that searches for the END of every BEGIN line is quadratic on a file of BEGIN lines).
    A block needs at least one line between its BEGIN and END lines; a BEGIN line inside a block
    abandons the block and opens a new one; an END line with another label abandons it.
    """
    blocks: list[PemBlock] = []
    label, start, body = None, 0, False
    pos = 0
    for line in raw.split(b"\n"):
        text = line[:-1] if line.endswith(b"\r") else line
        if (found := _begin_label(text)) is not None:
            label, start, body = found, pos + len(text) - len(found) - 16, False
        elif label is not None and text.startswith(b"-----END "):
            end = 9 + len(label)
            if body and text[9:end] == label and text[end : end + 5] == b"-----":
                blocks.append(PemBlock(label, raw[start : pos + end + 5]))
            label = None
        elif label is not None:
            body = True
        pos += len(line) + 1
    return blocks


def _pem_der(block: PemBlock) -> bytes:
    """The DER inside a PEM block (header lines such as Proc-Type skipped)."""
    lines = block.text.splitlines()[1:-1]
    body = b"".join(line.strip() for line in lines if b":" not in line)
    try:
        return binascii.a2b_base64(body)
    except binascii.Error:
        return b""


def check_key_cost(data: bytes, field_name: str = "key") -> None:
    """Refuse (PkiError) an encrypted PKCS#8 key, PEM or DER, whose key derivation asks for more
    work than CertDesk does (see :mod:`webapp.kdfcost`), before anything tries to open it."""
    if b"-----BEGIN" in data:
        ders = [_pem_der(b) for b in pem_blocks(data) if b.label == b"ENCRYPTED PRIVATE KEY"]
    else:
        ders = [data]
    for der in ders:
        try:
            kdfcost.check_pkcs8(der)
        except kdfcost.TooCostly as exc:
            raise TooCostly(str(exc), field_name) from None


@dataclass
class Pkcs12:
    """A PKCS#12 file's private key (None if it holds none), the certificate of that key (None
    if none matches it) and its other certificates, in the file's order, as OpenSSL splits them."""

    key: object | None
    cert: x509.Certificate | None
    others: list[x509.Certificate]

    @property
    def certificates(self) -> list[x509.Certificate]:
        return ([self.cert] if self.cert else []) + self.others


def open_pkcs12(
    data: bytes, password: str | bytes | None, field_name: str, password_field: str
) -> Pkcs12:
    """Open a PKCS#12 file, or refuse it (PkiError) in words: one that asks for more
    key-derivation work than CertDesk does, a wrong password, a damaged file. The key derivations
    run without the interpreter lock (see :mod:`webapp.kdfcost`), so a costly file does not hold
    up the process's other requests."""
    pw = password.encode() if isinstance(password, str) else password
    wrong_password = PkiError(
        "Wrong password for the PKCS#12 file (or the file is damaged)."
        if pw
        else "This PKCS#12 file is protected; enter its password (or the file is damaged).",
        password_field,
    )
    try:
        contents = kdfcost.open_pkcs12(data, pw or None)
    except kdfcost.TooCostly as exc:
        raise TooCostly(str(exc), field_name) from None
    except kdfcost.Unreadable as exc:
        if "password" in str(exc):
            raise wrong_password from None
        raise PkiError(
            "This PKCS#12 file is damaged or not one CertDesk reads."
            if _looks_like_pkcs12(data)
            else NOT_A_CERTIFICATE_FILE,
            field_name,
        ) from None
    try:
        if not contents.mac_checked:  # a MAC this module does not check: the library does
            try:
                key, cert, others = pkcs12.load_key_and_certificates(data, pw)
            except ValueError:
                raise wrong_password from None
            return Pkcs12(key, cert, list(others))
        key = serialization.load_der_private_key(contents.key, None) if contents.key else None
        certs = [x509.load_der_x509_certificate(der) for der in contents.certificates]
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise PkiError(
            "This PKCS#12 file is damaged or not one CertDesk reads.", field_name
        ) from None
    cert = None
    if key is not None:
        cert = next((c for c in certs if key_matches(key, c.public_key())), None)
    return Pkcs12(key, cert, [c for c in certs if c is not cert])


# -- names -------------------------------------------------------------------------------------


def a_label(label: str) -> str:
    """One label of a host name as DNS and certificates hold it: an internationalised one in its
    xn-- form by IDNA 2008 with UTS 46 mapping, as browsers and CAs convert it ("straße" is
    xn--strae-oqa, not "strasse" as Python's own IDNA 2003 codec makes it); an xn-- label only
    if it is a valid one. Others as they are. Raises UnicodeError (idna.IDNAError)."""
    if label.isascii() and not label.lower().startswith("xn--") or label == "*":
        return label
    if label.isascii():
        idna.decode(label)  # raises for an xn-- label that decodes to no valid name
        return label.lower()
    return idna.encode(label, uts46=True).decode("ascii")


def u_label(label: str) -> str:
    """An xn-- label as its reader types it (``xn--bcher-kva`` is ``bücher``); raises
    UnicodeError for one that is not valid."""
    return idna.decode(label)


def check_dns_name(name: str) -> str:
    """Return the normalised DNS name or raise PkiError saying what is wrong with it."""
    n = (name or "").strip().lower().rstrip(".")
    if not n:
        raise PkiError("Empty name.")
    if len(n) > 253:
        raise PkiError(f"{n[:40]}…: longer than 253 characters.")
    if "*" in n and not n.startswith("*.") or n.count("*") > 1:
        raise PkiError(f"{n}: a wildcard may only be the whole left-most label (*.example.com).")
    if not n.isascii() or "xn--" in n:
        try:
            n = ".".join(a_label(label) for label in n.split("."))
        except UnicodeError as exc:
            raise PkiError(f"{name.strip()}: not a valid internationalised domain name.") from exc
    if not _LABEL.match(n):
        raise PkiError(
            f"{n}: not a valid DNS name (letters, digits and hyphens in dot-separated labels, "
            "with a top-level domain)."
        )
    return n


@dataclass
class SanSet:
    dns: list[str] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)
    email: list[str] = field(default_factory=list)
    # Every SAN as the certificate or CSR holds it, in its order (case kept; a URI, a directory
    # name or another kind of name with its kind): what its page shows.
    shown: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.dns + self.ip + self.email


def parse_san_text(text: str) -> tuple[SanSet, list[str]]:
    """Split free text (commas, spaces or lines) into DNS names, IP addresses and e-mails.

    Returns the SANs found and a list of problems, one per bad entry.
    """
    sans, problems, seen = SanSet(), [], set()

    def add(kind: list, value: str) -> None:  # once, by the form it is kept in
        if value not in seen:
            seen.add(value)
            kind.append(value)

    for raw in re.split(r"[\s,;]+", text or ""):
        item = raw.strip()
        if not item or item in seen:
            continue
        try:
            if "@" in item:
                add(sans.email, check_email(item))
            elif (ip := ip_address(item)) is not None:
                add(sans.ip, ip)
            else:
                add(sans.dns, check_dns_name(item))
        except PkiError as exc:
            seen.add(item)
            problems.append(str(exc))
    return sans, problems


def ip_address(text: str) -> str | None:
    """``text`` as an IP address a certificate holds, None when it is no address; PkiError for
    one with a zone (fe80::1%eth0), which only means something on one machine."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if getattr(ip, "scope_id", None):
        raise PkiError(f"{text}: an address with a zone (%...) names no certificate's address.")
    return str(ip)


def suggest_sans(common_name: str) -> list[str]:
    """The SANs a CN usually wants: itself, and the www. name for a bare registrable domain."""
    try:
        cn = check_dns_name(common_name)
    except PkiError:
        try:
            return [str(ipaddress.ip_address((common_name or "").strip()))]
        except ValueError:
            return []
    if cn.startswith("*."):
        return [cn, cn[2:]]
    if cn.count(".") == 1:
        return [cn, "www." + cn]
    return [cn]


# -- keys --------------------------------------------------------------------------------------


@dataclass
class KeyInfo:
    type: str  # RSA, EC, Ed25519, ...
    size: int | None
    label: str  # "RSA 2048", "ECDSA P-256"


def describe_public_key(pub) -> KeyInfo:
    if isinstance(pub, rsa.RSAPublicKey):
        return KeyInfo("RSA", pub.key_size, f"RSA {pub.key_size}")
    if isinstance(pub, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return KeyInfo("EC", pub.key_size, f"ECDSA {names.get(pub.curve.name, pub.curve.name)}")
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return KeyInfo("Ed25519", 256, "Ed25519")
    if isinstance(pub, ed448.Ed448PublicKey):
        return KeyInfo("Ed448", 456, "Ed448")
    return KeyInfo(type(pub).__name__.replace("PublicKey", ""), None, "other")


def public_key_id(pub) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: the link between a key, its CSRs and certificates."""
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def generate_private_key(key_type: str):
    if key_type not in KEY_TYPES:
        raise PkiError("Choose one of the offered key types.", "key_type")
    if key_type.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=KEY_TYPES[key_type][1])
    return ec.generate_private_key(_CURVES[key_type]())


def _supported_key(key, field_name: str):
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise PkiError(f"RSA {key.key_size} is too weak; use at least 2048 bits.", field_name)
        if key.key_size > MAX_RSA_BITS:
            raise PkiError(
                f"RSA {key.key_size} is larger than CertDesk takes; use at most "
                f"{MAX_RSA_BITS:,} bits.",
                field_name,
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise PkiError(f"Unsupported elliptic curve {key.curve.name}.", field_name)
        return key
    raise PkiError(
        "Unsupported key type; CertDesk accepts RSA (2048 bits or more) and ECDSA "
        "(P-256, P-384, P-521) keys.",
        field_name,
    )


def load_private_key(data: bytes | str, password: str | None = None, field_name="key"):
    """Read a private key (PEM: PKCS#1, SEC1 or PKCS#8; or DER PKCS#8), encrypted or not."""
    raw = _bytes(data, field_name)
    pw = password.encode() if password else None
    loaders = (
        [serialization.load_pem_private_key]
        if b"-----BEGIN" in raw
        else [serialization.load_der_private_key]
    )
    if b"-----BEGIN" in raw:
        blocks = [b.text for b in pem_blocks(raw) if b"PRIVATE KEY" in b.label]
        if not blocks:
            raise PkiError("This is not a private key (no PRIVATE KEY block).", field_name)
        raw = blocks[0]
    encrypted = b"ENCRYPTED" in raw
    if pw is not None and (plain := _opened_pkcs8(raw, pw, field_name)) is not None:
        raw, pw, loaders, encrypted = plain, None, [serialization.load_der_private_key], True
    else:
        check_key_cost(raw, field_name)
    for loader in loaders:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                key = loader(raw, pw, unsafe_skip_rsa_key_validation=True)
        except TypeError as exc:
            if pw is None:
                raise PkiError(
                    "The private key is encrypted; enter its password.", "key_password"
                ) from exc
            raise PkiError(
                "The private key is not encrypted; leave the password empty.", "key_password"
            ) from exc
        except Exception as exc:  # noqa: BLE001 (untrusted input: every failure is a bad file)
            if encrypted or (pw is not None and "password" in str(exc).lower()):
                raise PkiError(
                    "Wrong password for the private key (or the key is damaged).", "key_password"
                ) from exc
            raise PkiError("This is not a readable private key.", field_name) from exc
        return _checked_rsa(_supported_key(key, field_name), field_name)
    raise PkiError("This is not a readable private key.", field_name)  # pragma: no cover


def _opened_pkcs8(raw: bytes, password: bytes, field_name: str) -> bytes | None:
    """The unencrypted PKCS#8 DER of an encrypted PKCS#8 key (PEM or DER), its work counted and
    its key derived without the interpreter lock (see :mod:`webapp.kdfcost`); None when it is not
    one that module opens (the library's loader then does). Raises PkiError for a key that asks
    for too much work or a wrong password."""
    if raw.lstrip().startswith(b"-----BEGIN"):
        blocks = pem_blocks(raw)
        if not blocks or blocks[0].label != b"ENCRYPTED PRIVATE KEY":
            return None
        raw = _pem_der(blocks[0])
    try:
        return kdfcost.open_pkcs8(raw, password)
    except kdfcost.TooCostly as exc:
        raise TooCostly(str(exc), field_name) from None
    except kdfcost.Unreadable:
        raise PkiError(
            "Wrong password for the private key (or the key is damaged).", "key_password"
        ) from None


def _checked_rsa(key, field_name: str):
    """An RSA key read without its checks, checked once its size is known to be one CertDesk
    takes: the check tests its primes, seconds of work at 8,192 bits and minutes beyond."""
    if not isinstance(key, rsa.RSAPrivateKey):
        return key
    try:
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return serialization.load_der_private_key(der, None)
    except ValueError as exc:
        raise PkiError("This RSA key is damaged (its numbers do not agree).", field_name) from exc


def private_key_pem(key) -> bytes:
    """Unencrypted PKCS#8 PEM: only ever handed to the secret box, never stored as is."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_matches(key, pub) -> bool:
    return public_key_id(key.public_key()) == public_key_id(pub)


# -- CSRs --------------------------------------------------------------------------------------


@dataclass
class CsrInfo:
    csr: x509.CertificateSigningRequest
    pem: str
    subject: str
    common_name: str
    sans: SanSet
    key: KeyInfo
    public_key_id: str
    signature_algorithm: str
    signature_valid: bool
    subject_fields: list[tuple[str, str]]


def _bytes(data: bytes | str, field_name: str, bounded: bool = True) -> bytes:
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if not data or not data.strip():
        raise PkiError("Nothing was given.", field_name)
    if bounded and len(data) > MAX_FILE_BYTES:
        raise PkiError(f"The file is larger than {MAX_FILE_BYTES // 1024} KiB.", field_name)
    return data.strip() if b"-----BEGIN" in data else data


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return visible(value if isinstance(value, str) else value.decode("latin-1"))


def _sig_alg(obj) -> str:
    try:
        oid = obj.signature_algorithm_oid
        return getattr(oid, "_name", None) or oid.dotted_string
    except Exception:  # noqa: BLE001
        return "unknown"


def _sans_of(ext_holder) -> SanSet:
    sans = SanSet()
    try:
        ext = ext_holder.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return sans
    for gn in ext.value:
        if isinstance(gn, x509.DNSName):
            sans.dns.append(visible(gn.value.lower()))
        elif isinstance(gn, x509.IPAddress):
            sans.ip.append(str(gn.value))
        elif isinstance(gn, x509.RFC822Name):
            sans.email.append(visible(gn.value.lower()))
        if isinstance(gn, x509.DNSName | x509.IPAddress | x509.RFC822Name):
            sans.shown.append(visible(_general_name(gn)))
        else:
            kind = type(gn).__name__.replace("Name", "").replace("UniformResourceIdentifier", "URI")
            sans.shown.append(f"{kind}:{visible(_general_name(gn))}")
    return sans


def check_name_count(holder, what: str, field_name: str) -> int:
    """Refuse a certificate or CSR (``what``, in words) with more than MAX_NAMES SANs; return
    how many it has."""
    count = len(_sans_of(holder).all())
    if count > MAX_NAMES:
        raise PkiError(
            f"{what} has {count:,} subject alternative names; CertDesk takes at most "
            f"{MAX_NAMES:,}.",
            field_name,
        )
    return count


def _name_fields(name: x509.Name) -> list[tuple[str, str]]:
    out = []
    for attr in name:
        label = getattr(attr.oid, "_name", None) or attr.oid.dotted_string
        value = visible(attr.value) if isinstance(attr.value, str) else attr.value.hex()
        out.append((label, value))
    return out


_KEY_NOT_CSR = (
    "This is a private key, not a CSR. It is not shown again here: paste the CSR, and the key "
    "in its own field."
)


def parse_csr(data: bytes | str, field_name: str = "csr", *, stored: bool = False) -> CsrInfo:
    """Read one PKCS#10 CSR, PEM or DER; raise PkiError unless it parses and its signature holds.

    ``stored``: the PEM CertDesk stored, read without the bound of an upload (a CSR uploaded
    as DER just under it takes a third more as PEM)."""
    raw = _bytes(data, field_name, bounded=not stored)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if b"-----BEGIN" in raw:
                blocks = [b for b in pem_blocks(raw) if b.label.endswith(b"CERTIFICATE REQUEST")]
                if not blocks and holds_private_key(raw):
                    raise PkiError(_KEY_NOT_CSR, field_name)
                if not blocks:
                    raise PkiError(
                        "This is not a CSR (no BEGIN CERTIFICATE REQUEST block).", field_name
                    )
                block = blocks[0].text.replace(b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST")
                csr = x509.load_pem_x509_csr(block)
            elif holds_private_key(raw):  # bare base64, PuTTY, JWK: no BEGIN line
                raise PkiError(_KEY_NOT_CSR, field_name)
            else:
                csr = x509.load_der_x509_csr(raw)
            pub = csr.public_key()
            info = CsrInfo(
                csr=csr,
                pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
                subject=name_text(csr.subject),
                common_name=_cn(csr.subject),
                sans=_sans_of(csr),
                key=describe_public_key(pub),
                public_key_id=public_key_id(pub),
                signature_algorithm=_sig_alg(csr),
                signature_valid=csr.is_signature_valid,
                subject_fields=_name_fields(csr.subject),
            )
    except PkiError:
        raise
    except Exception as exc:  # noqa: BLE001 (untrusted input: every failure is a bad file)
        raise PkiError("This is not a readable CSR (PKCS#10, PEM or DER).", field_name) from exc
    if not info.signature_valid:
        raise PkiError(
            "The CSR's signature does not verify; it was altered or damaged.", field_name
        )
    return info


def subject_name(subject: dict[str, str]) -> x509.Name:
    """The X.509 name for ``subject`` (keys as in SUBJECT_FIELDS); PkiError names a bad field."""
    attrs = []
    for short, oid, label, limit in SUBJECT_FIELDS:
        value = (subject.get(short) or "").strip()
        if not value:
            continue
        if short == "C" and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise PkiError("Country: two letters (ISO 3166), such as US or DE.", short)
        if short == "emailAddress":
            try:
                value = check_email(value)
            except PkiError as exc:
                raise PkiError(f"{label}: {exc}", short) from None
        if len(value) > limit:
            raise PkiError(f"{label}: at most {limit} characters.", short)
        if has_control(value):
            raise PkiError(
                f"{label}: contains a control character (such as a line break or a "
                "text-direction override); type it again without one.",
                short,
            )
        attrs.append(x509.NameAttribute(oid, value.upper() if short == "C" else value))
    if not attrs:
        raise PkiError("Give at least a common name.", "CN")
    return x509.Name(attrs)


def build_csr(key, subject: dict[str, str], sans: SanSet, hash_name: str = "sha256"):
    """Sign a CSR for ``subject`` (keys as in SUBJECT_FIELDS) and ``sans`` with ``key``."""
    if hash_name not in HASHES:
        raise PkiError("Choose SHA-256, SHA-384 or SHA-512.", "hash")
    name = subject_name(subject)
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    general = [x509.DNSName(n) for n in sans.dns]
    general += [x509.IPAddress(ipaddress.ip_address(i)) for i in sans.ip]
    general += [x509.RFC822Name(e) for e in sans.email]
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(key, HASHES[hash_name]())


def new_csr(
    key_type: str, subject: dict[str, str], sans: SanSet, hash_name: str = "sha256"
) -> tuple[object, CsrInfo]:
    """A new key pair of ``key_type`` and a CSR signed with it: (the private key, the CSR)."""
    key = generate_private_key(key_type)
    csr = build_csr(key, subject, sans, hash_name)
    return key, parse_csr(csr.public_bytes(serialization.Encoding.PEM))


# -- certificates ------------------------------------------------------------------------------


@dataclass
class Bundle:
    """What one file held: certificates (leaf first where known) and the private keys in it."""

    certificates: list[x509.Certificate]
    keys: list = field(default_factory=list)

    @property
    def key(self):
        return self.keys[0] if self.keys else None


def private_key_blocks(data: bytes | str) -> int:
    """How many PEM private key blocks ``data`` holds (counted before any is opened: an
    encrypted one costs its key derivation)."""
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        return 0
    return sum(1 for b in pem_blocks(raw) if b"PRIVATE KEY" in b.label)


def _load_pem_certs(raw: bytes, field_name: str) -> list[x509.Certificate]:
    certs = []
    for block in pem_blocks(raw):
        label = block.label
        if label in (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"):
            certs.append(x509.load_pem_x509_certificate(block.text.replace(label, b"CERTIFICATE")))
        elif label == b"PKCS7":
            certs.extend(pkcs7.load_pem_pkcs7_certificates(block.text))
    return certs


def _touch(cert: x509.Certificate) -> x509.Certificate:
    """cryptography parses lazily; read every field now so a damaged one fails here."""
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    _ = cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number
    _ = list(cert.extensions)
    cert.public_key()
    return cert


def read_certificates(
    data: bytes | str,
    password: str | None = None,
    field_name: str = "files",
    *,
    keys_alone: bool = False,
) -> Bundle:
    """Read PEM (one or many, PKCS#7 blocks too, and every private key in it), DER, PKCS#7 (DER)
    or PKCS#12 (with password). ``keys_alone``: a PEM file of private keys without a certificate
    is read too (a key file beside its certificate's)."""
    raw = _bytes(data, field_name)
    keys = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if b"-----BEGIN" in raw:
                certs = _load_pem_certs(raw, field_name)
                key_blocks = [b for b in pem_blocks(raw) if b"PRIVATE KEY" in b.label]
                if not certs and not (keys_alone and key_blocks):
                    raise PkiError("No certificate found in this PEM file.", field_name)
                keys = [load_private_key(b.text, password or None, field_name) for b in key_blocks]
            else:
                certs = _read_binary(raw, password, field_name)
                if isinstance(certs, Bundle):
                    keys, certs = certs.keys, certs.certificates
            certs = [_touch(c) for c in certs]
    except PkiError:
        raise
    except Exception as exc:  # noqa: BLE001 (untrusted input: every failure is a bad file)
        raise PkiError(NOT_A_CERTIFICATE_FILE, field_name) from exc
    for cert in certs:
        size = len(cert.public_bytes(serialization.Encoding.DER))
        if size > MAX_CERT_BYTES:
            raise PkiError(
                f"A certificate in this file takes {size:,} bytes; a real certificate takes at "
                f"most {MAX_CERT_BYTES // 1024} KiB.",
                field_name,
            )
    return Bundle(certs, keys)


def _read_binary(raw: bytes, password: str | None, field_name: str):
    try:
        return [x509.load_der_x509_certificate(raw)]
    except ValueError:
        pass
    try:
        return pkcs7.load_der_pkcs7_certificates(raw)
    except ValueError:
        pass
    p12 = open_pkcs12(raw, password, field_name, "password")
    if not p12.certificates:
        raise PkiError("The PKCS#12 file holds no certificate.", field_name)
    keys = [_supported_key(p12.key, field_name)] if p12.key is not None else []
    return Bundle(p12.certificates, keys)


def _looks_like_pkcs12(raw: bytes) -> bool:
    # PFX: SEQUENCE { INTEGER 3, ContentInfo { OID pkcs7-data ... } }
    return raw[:1] == b"\x30" and b"\x02\x01\x03\x30" in raw[:12]


def fingerprint(cert: x509.Certificate, algorithm=hashes.SHA256) -> str:
    return cert.fingerprint(algorithm()).hex()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.subject == cert.issuer


MAX_CHAIN = 10  # issuers above a certificate in a bundle; real chains have two or three


# Certificates named as a certificate's issuer whose signature is checked at most, to find the
# one that signed it (a re-keyed CA keeps its name); a real bundle has one or two.
MAX_ISSUER_TRIES = 4


def _issuer_among(cert: x509.Certificate, named: list[x509.Certificate]):
    """The certificate among ``named`` (those whose subject is ``cert``'s issuer) that signed
    ``cert``, or None: two CA certificates may bear one name (a CA re-keyed, an old and a new
    root), and a chain holding the other one would not verify. One whose signature this library
    cannot check (an algorithm it lacks) is taken by its name alone, as before."""
    unchecked = None
    for candidate in named[:MAX_ISSUER_TRIES]:
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError):
            continue
        except UnsupportedAlgorithm:
            unchecked = unchecked or candidate
            continue
        return candidate
    return unchecked


def split_leaves(certs: list[x509.Certificate]) -> list[tuple[x509.Certificate, list]]:
    """Group a bundle into (leaf, chain): the end-entity certificates, each with its issuers.

    The chain runs from the leaf's issuer upwards, as far as the bundle goes. A CA certificate
    in no leaf's chain (a bundle of CA certificates only, a root and an intermediate, say, or
    a CA certificate beside leaves it did not issue) is one of the bundle's own certificates:
    it comes with its own chain too, rather than going missing.
    Raises PkiError for a chain longer than MAX_CHAIN: each leaf keeps its own copy of its chain,
    so a bundle of certificates each issued by the one before would cost the square of its size.
    """
    certs = list({fingerprint(c): c for c in certs}.values())
    by_subject: dict = {}
    for c in certs:
        by_subject.setdefault(c.subject, []).append(c)

    def chain_of(leaf) -> list:
        chain, cur, seen = [], leaf, {fingerprint(leaf)}
        while cur.issuer != cur.subject and cur.issuer in by_subject:
            nxt = _issuer_among(cur, by_subject[cur.issuer])
            if nxt is None or fingerprint(nxt) in seen:
                break
            seen.add(fingerprint(nxt))
            chain.append(nxt)
            if len(chain) > MAX_CHAIN:
                raise PkiError(
                    f"a certificate has more than {MAX_CHAIN} issuers above it in this file "
                    "(a real chain has two or three). Import each certificate with its own "
                    "chain only.",
                    "files",
                )
            cur = nxt
        return chain

    out = [(leaf, chain_of(leaf)) for leaf in certs if not is_ca(leaf)]
    in_chains = {fingerprint(c) for _, chain in out for c in chain}
    out += [(ca, chain_of(ca)) for ca in certs if is_ca(ca) and fingerprint(ca) not in in_chains]
    return out


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_pem_list(text: str) -> list[x509.Certificate]:
    """Certificates from our own stored PEM text (trusted, but tolerate empty)."""
    if not text:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificates(text.encode())


@dataclass
class CertInfo:
    fingerprint_sha256: str
    fingerprint_sha1: str
    serial_hex: str
    subject: str
    common_name: str
    issuer: str
    issuer_cn: str
    not_before: datetime
    not_after: datetime
    sans: SanSet
    key: KeyInfo
    public_key_id: str
    signature_algorithm: str
    is_ca: bool
    self_signed: bool


def describe_certificate(cert: x509.Certificate) -> CertInfo:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pub = cert.public_key()
        issuer_cn = _cn(cert.issuer) or name_text(cert.issuer)
        return CertInfo(
            fingerprint_sha256=fingerprint(cert),
            fingerprint_sha1=fingerprint(cert, hashes.SHA1),  # noqa: S303 (display only)
            serial_hex=format(cert.serial_number, "x")
            if cert.serial_number >= 0
            else "-" + format(-cert.serial_number, "x"),
            subject=name_text(cert.subject),
            common_name=_cn(cert.subject),
            issuer=name_text(cert.issuer),
            issuer_cn=issuer_cn[:200],
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sans=_sans_of(cert),
            key=describe_public_key(pub),
            public_key_id=public_key_id(pub),
            signature_algorithm=_sig_alg(cert),
            is_ca=is_ca(cert),
            self_signed=cert.subject == cert.issuer,
        )


def describe_extensions(cert) -> list[tuple[str, bool, str]]:
    """(name, critical, readable value) for every extension, for the detail page."""
    out = []
    for ext in cert.extensions:
        name = getattr(ext.oid, "_name", None) or ext.oid.dotted_string
        out.append((name, ext.critical, _ext_value(ext.value)))
    return out


def _general_name(g) -> str:
    """A general name's value as text (a directory name, an OID or raw bytes too)."""
    value = g.value
    if isinstance(value, x509.Name):
        return name_text(value)
    if isinstance(value, x509.ObjectIdentifier):
        return value.dotted_string
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _ext_value(v) -> str:
    if isinstance(v, x509.SubjectAlternativeName | x509.IssuerAlternativeName):
        return ", ".join(f"{type(g).__name__.replace('Name', '')}:{_general_name(g)}" for g in v)
    if isinstance(v, x509.BasicConstraints):
        plen = f", path length {v.path_length}" if v.path_length is not None else ""
        return f"CA: {'yes' if v.ca else 'no'}{plen}"  # yes/no as the Critical column says it
    if isinstance(v, x509.KeyUsage):
        names = [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
        ]
        used = [n.replace("_", " ") for n in names if getattr(v, n)]
        if v.key_agreement:
            extra = ("encipher_only", "decipher_only")
            used += [n.replace("_", " ") for n in extra if getattr(v, n)]
        return ", ".join(used)
    if isinstance(v, x509.ExtendedKeyUsage):
        return ", ".join(getattr(o, "_name", None) or o.dotted_string for o in v)
    if isinstance(v, x509.SubjectKeyIdentifier):
        return v.digest.hex(":")
    if isinstance(v, x509.AuthorityKeyIdentifier):
        return v.key_identifier.hex(":") if v.key_identifier else ""
    if isinstance(v, x509.CRLDistributionPoints):
        return ", ".join(_general_name(n) for dp in v for n in (dp.full_name or []))
    if isinstance(v, x509.AuthorityInformationAccess):
        return ", ".join(
            f"{getattr(d.access_method, '_name', '')}: {_general_name(d.access_location)}"
            for d in v
        )
    if isinstance(v, x509.CertificatePolicies):
        return ", ".join(p.policy_identifier.dotted_string for p in v)
    if isinstance(v, x509.PrecertificateSignedCertificateTimestamps):
        return f"{len(v)} signed certificate timestamps"
    return str(v)[:300]


# -- exports -----------------------------------------------------------------------------------


# PBKDF2-HMAC-SHA256 rounds of a downloaded key file: what current guidance asks of that hash
# (about 0.07 s here, run without the interpreter lock). The library writes PKCS#8 with 2,048.
KEY_FILE_ROUNDS = 600_000
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(out))


def der_seq(*parts: bytes) -> bytes:
    return der_tlv(0x30, b"".join(parts))


def export_key_pkcs8(key, password: str, rounds: int = KEY_FILE_ROUNDS) -> bytes:
    """The key as an encrypted PKCS#8 PEM: PBES2, PBKDF2-HMAC-SHA256 with ``rounds`` and
    AES-256-CBC, as ``openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256`` writes it,
    which OpenSSL, Java, Windows and the rest read."""
    salt, iv = os.urandom(16), os.urandom(16)
    secret = PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(password.encode())
    padder = sym_padding.PKCS7(128).padder()
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    kdf = der_seq(
        der_oid(_PBKDF2),
        der_seq(
            der_tlv(0x04, salt),
            der_tlv(0x02, rounds.to_bytes((rounds.bit_length() + 8) // 8, "big")),
            der_seq(der_oid(_HMAC_SHA256), b"\x05\x00"),
        ),
    )
    scheme = der_seq(der_oid(_AES256_CBC), der_tlv(0x04, iv))
    der = der_seq(der_seq(der_oid(_PBES2), der_seq(kdf, scheme)), der_tlv(0x04, sealed))
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "\n".join(
        ["-----BEGIN ENCRYPTED PRIVATE KEY-----", *lines, "-----END ENCRYPTED PRIVATE KEY-----"]
    )
    return (pem + "\n").encode()


FRIENDLY_NAME_BYTES = 64


def friendly_name(name: str) -> bytes:
    """A PKCS#12 file's friendly name: ``name`` in UTF-8, at most 64 bytes, cut between letters
    (a cut inside one is no longer UTF-8, which the file cannot hold)."""
    cut = (name or "certdesk").encode()[:FRIENDLY_NAME_BYTES]
    return cut.decode(errors="ignore").encode() or b"certdesk"


# PKCS#12 rounds of a downloaded file: its encrypted parts (PBKDF2-HMAC-SHA256) and its MAC (the
# PKCS#12 key derivation with SHA-256, run here in Python: about 0.06 s).
PKCS12_ROUNDS = 50_000
_SHA256 = "2.16.840.1.101.3.4.2.1"


def export_pkcs12(name: str, key, cert, chain: list, password: str) -> bytes:
    """The key, certificate and chain as a PKCS#12 file: AES-256-CBC under PBKDF2-HMAC-SHA256
    and an HMAC-SHA256 MAC, each derived from ``password`` in ``PKCS12_ROUNDS`` rounds, which
    OpenSSL 3 (without -legacy), Java 8u301 and later and Windows 10 and later open. The library
    derives the MAC's key in OpenSSL's default 2,048 rounds, which would make the password as
    cheap to guess through the MAC as that; the MAC is made again here."""
    enc = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    pfx = pkcs12.serialize_key_and_certificates(friendly_name(name), key, cert, chain or None, enc)
    return _with_mac(pfx, password, PKCS12_ROUNDS)


def _with_mac(pfx: bytes, password: str, rounds: int) -> bytes:
    """``pfx`` (version, authSafe, macData) with a new MAC over its authSafe: HMAC-SHA256 keyed
    by the PKCS#12 key derivation (RFC 7292 appendix B) in ``rounds`` rounds of SHA-256."""
    auth_safe = kdfcost.parse(pfx).child(1)
    content = auth_safe.child(1).child(0).value  # ContentInfo data: [0] { OCTET STRING }
    salt = os.urandom(16)
    secret = kdfcost.pkcs12_kdf(password.encode(), salt, 3, rounds, 32, "sha256")
    digest = hmac.new(secret, content, "sha256").digest()
    mac = der_seq(
        der_seq(der_seq(der_oid(_SHA256), b"\x05\x00"), der_tlv(0x04, digest)),
        der_tlv(0x04, salt),
        der_tlv(0x02, rounds.to_bytes((rounds.bit_length() + 8) // 8, "big")),
    )
    # The authSafe as the library wrote it (DER: its content in one OCTET STRING).
    body = der_seq(der_oid(kdfcost.DATA), der_tlv(0xA0, der_tlv(0x04, content)))
    return der_seq(der_tlv(0x02, b"\x03"), body, mac)


def export_pkcs7(certs: list) -> bytes:
    return pkcs7.serialize_certificates(certs, serialization.Encoding.PEM)


def export_der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
