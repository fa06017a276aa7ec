"""Opening password-protected key files: the work they ask for, bounded, and done without the
interpreter lock.

An encrypted PKCS#8 key or a PKCS#12 file names its own key-derivation settings: PBKDF2 or
PKCS#12 iteration counts, scrypt's cost. The library's loaders run those rounds with the
interpreter lock held, so every other request of the process waits: a file edited to ask for 200
million rounds would stall the whole portal for half a minute, and eight uploads of a second's
work each stalled it for seconds. So the files are opened here: :func:`open_pkcs8` and
:func:`open_pkcs12` read the structure, add up every derivation it asks for (a PKCS#12 file's
MAC, each encrypted safe, each encrypted key, also keys inside encrypted safes) and raise
:class:`TooCostly` above the bounds before running it; then they derive the keys with PBKDF2 and
scrypt, which run without the lock (the PKCS#12 derivation of old files is Python, which yields
it), check the MAC and decrypt. What they hand back is unencrypted DER, cheap to load.

Tools ask for 2,048 (OpenSSL) to 600,000 rounds; CertDesk opens files that ask for at most
``MAX_ROUNDS`` in all, about a second of work, and within a request (``start_budget``) at most
that much for all the files it sends. No Flask, no database.
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, RC2, TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAX_ROUNDS = 10_000_000  # PBKDF2 and PKCS#12 rounds, summed over the whole file
MAX_LEGACY_ROUNDS = 1_000_000  # one PKCS#12-KDF derivation (run here in Python)
MAX_SCRYPT_MEMORY = 32 * 1024 * 1024  # OpenSSL's own ceiling for scrypt
MAX_SCRYPT_PARALLEL = 16
MAX_DEPTH = 32
# Opening an RSA key checks its primes: about 4 s at 8,192 bits, 30 s at 16,384, minutes beyond.
MAX_RSA_BITS = 8192

# Object identifiers (dotted) of what is read here.
PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SCRYPT = "1.3.6.1.4.1.11591.4.11"
PBMAC1 = "1.2.840.113549.1.5.14"
PBES1 = {f"1.2.840.113549.1.5.{n}" for n in (1, 3, 4, 6, 10, 11)}
P12_PBE = {f"1.2.840.113549.1.12.1.{n}" for n in range(1, 7)}
DATA = "1.2.840.113549.1.7.1"
ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
KEY_BAG = "1.2.840.113549.1.12.10.1.1"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
CERT_BAG = "1.2.840.113549.1.12.10.1.3"
SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.6"
X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
MAC_DIGESTS = {  # a PKCS#12 MAC's digest: hashlib's name
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
PRFS = {
    "1.2.840.113549.2.7": hashes.SHA1,
    "1.2.840.113549.2.8": hashes.SHA224,
    "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384,
    "1.2.840.113549.2.11": hashes.SHA512,
}
CBC_CIPHERS = {  # PBES2 encryption schemes: (cipher, key length)
    "2.16.840.1.101.3.4.1.2": (algorithms.AES, 16),
    "2.16.840.1.101.3.4.1.22": (algorithms.AES, 24),
    "2.16.840.1.101.3.4.1.42": (algorithms.AES, 32),
    "1.2.840.113549.3.7": (TripleDES, 24),
}
P12_CIPHERS = {  # PKCS#12 PBE: (cipher, key length, block cipher?)
    "1.2.840.113549.1.12.1.1": ("rc4", 16),
    "1.2.840.113549.1.12.1.2": ("rc4", 5),
    "1.2.840.113549.1.12.1.3": ("3des", 24),
    "1.2.840.113549.1.12.1.4": ("3des", 16),
    "1.2.840.113549.1.12.1.5": ("rc2", 16),
    "1.2.840.113549.1.12.1.6": ("rc2", 5),
}

_SEQUENCE, _INTEGER, _OCTETS, _OID, _CONTEXT0 = 0x30, 0x02, 0x04, 0x06, 0xA0


class TooCostly(ValueError):
    """The file asks for more key-derivation work than CertDesk does; the message says so."""


class Unreadable(ValueError):
    """The file's structure could not be read, or an encrypted part could not be opened
    (usually a wrong password)."""


class Unsupported(Unreadable):
    """An encryption or key derivation this module does not run."""


# -- a small BER reader -------------------------------------------------------------------------


@dataclass
class Node:
    tag: int
    value: bytes = b""  # primitive content (a constructed OCTET STRING: its pieces joined)
    children: list[Node] = field(default_factory=list)
    raw: bytes = b""  # the whole element as it was read: tag, length and content

    def child(self, i: int, tag: int | None = None) -> Node:
        if i >= len(self.children) or (tag is not None and self.children[i].tag != tag):
            raise Unreadable("unexpected structure")
        return self.children[i]

    def oid(self) -> str:
        if self.tag != _OID or not self.value or self.value[-1] & 0x80:
            raise Unreadable("not an object identifier")
        arcs, n = [], 0
        for b in self.value:
            n = (n << 7) | (b & 0x7F)
            if not b & 0x80:
                arcs.append(n)
                n = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])

    def integer(self) -> int:
        if self.tag != _INTEGER or not self.value:
            raise Unreadable("not an integer")
        return int.from_bytes(self.value, "big", signed=True)


def parse(data: bytes) -> Node:
    """The BER (or DER) element at the start of ``data``; raises Unreadable."""
    node, _ = _read(data, 0, len(data), 0)
    return node


def _read(data: bytes, pos: int, end: int, depth: int) -> tuple[Node, int]:
    if depth > MAX_DEPTH or pos + 2 > end:
        raise Unreadable("truncated or too deeply nested")
    start = pos
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # a high tag number: skip its bytes
        while pos < end and data[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= end:
        raise Unreadable("truncated")
    first = data[pos]
    pos += 1
    constructed = bool(tag & 0x20)
    if first == 0x80:  # indefinite length, ended by two zero bytes
        if not constructed:
            raise Unreadable("indefinite length on a primitive")
        node = Node(tag)
        while True:
            if pos + 2 > end:
                raise Unreadable("unterminated indefinite length")
            if data[pos] == 0 and data[pos + 1] == 0:
                pos += 2
                break
            child, pos = _read(data, pos, end, depth + 1)
            node.children.append(child)
    else:
        if first & 0x80:
            count = first & 0x7F
            if count > 8 or pos + count > end:  # OpenSSL reads lengths of up to 8 bytes
                raise Unreadable("bad length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        else:
            length = first
        if pos + length > end:
            raise Unreadable("truncated")
        node = Node(tag)
        if constructed:
            inner = pos
            while inner < pos + length:
                child, inner = _read(data, inner, pos + length, depth + 1)
                node.children.append(child)
        else:
            node.value = data[pos : pos + length]
        pos += length
    if tag == _OCTETS | 0x20:  # a constructed OCTET STRING: its pieces, joined
        node = Node(_OCTETS, b"".join(c.value for c in node.children))
    node.raw = data[start:pos]
    return node, pos


# -- counting the work ----------------------------------------------------------------------------


class _Work:
    def __init__(self):
        self.rounds = 0
        self.earlier = 0  # rounds of the files checked before this one (a shared budget)

    def add(self, rounds: int) -> None:
        if rounds < 0:
            raise Unreadable("negative iteration count")
        self.rounds += rounds
        if self.rounds <= MAX_ROUNDS:
            return
        if self.earlier:
            raise TooCostly(
                f"Together these files ask for {self.rounds:,} rounds of password hashing to be "
                f"opened; CertDesk opens at most {MAX_ROUNDS:,} at once. Send fewer of them at "
                "a time."
            )
        raise TooCostly(
            f"The file asks for {self.rounds:,} rounds of password hashing to be opened; "
            f"CertDesk opens files that ask for at most {MAX_ROUNDS:,} (tools use 2,048 to "
            "600,000). Export it again with your tool's usual settings."
        )


# The work every file one request sends adds up to, so that fifty files of a second's work each
# are not fifty seconds of it: the app starts a budget with each request and ends it with the
# request. Elsewhere (a job, a script) each file has its own.
_shared: ContextVar[_Work | None] = ContextVar("kdfcost_shared", default=None)


def start_budget() -> None:
    """One budget of ``MAX_ROUNDS`` for every file checked from now on in this context."""
    _shared.set(_Work())


def end_budget(_exc: BaseException | None = None) -> None:
    """Each file checked from now on in this context has its own budget again."""
    _shared.set(None)


def _work() -> _Work:
    work = _shared.get()
    if work is None:
        return _Work()
    work.earlier = work.rounds
    return work


def _pbkdf2(params: Node, work: _Work) -> tuple[bytes, int, type]:
    salt = params.child(0).value
    iterations = params.child(1, _INTEGER).integer()
    prf = hashes.SHA1
    for extra in params.children[2:]:
        if extra.tag == _SEQUENCE:
            prf = PRFS.get(extra.child(0).oid(), prf)
    work.add(iterations)
    return salt, iterations, prf


def _scrypt(params: Node) -> tuple[bytes, int, int, int]:
    salt = params.child(0, _OCTETS).value
    n, r, p = (params.child(i, _INTEGER).integer() for i in (1, 2, 3))
    if n < 2 or r < 1 or p < 1:
        raise Unreadable("bad scrypt parameters")
    if 128 * r * (n + p) > MAX_SCRYPT_MEMORY or p > MAX_SCRYPT_PARALLEL:
        raise TooCostly(
            f"The file's scrypt settings (N={n:,}, r={r}, p={p}) need more memory or work than "
            "CertDesk gives one file. Export it again with your tool's usual settings."
        )
    return salt, n, r, p


def algorithm_cost(alg: Node, work: _Work) -> None:
    """Add the work of one AlgorithmIdentifier (PBES1, PKCS#12 PBE, PBES2, PBMAC1)."""
    oid = alg.child(0).oid()
    if oid in PBES1 or oid in P12_PBE:
        work.add(alg.child(1, _SEQUENCE).child(1, _INTEGER).integer())
    elif oid in (PBES2, PBMAC1):
        kdf = alg.child(1, _SEQUENCE).child(0, _SEQUENCE)
        kdf_oid = kdf.child(0).oid()
        if kdf_oid == PBKDF2:
            _pbkdf2(kdf.child(1, _SEQUENCE), work)
        elif kdf_oid == SCRYPT:
            _scrypt(kdf.child(1, _SEQUENCE))


def check_pkcs8(der: bytes) -> None:
    """Raise TooCostly when the encrypted PKCS#8 key ``der`` (an EncryptedPrivateKeyInfo) asks
    for too much work. Anything else (an unencrypted key, another format) passes untouched."""
    try:
        alg = parse(der).child(0, _SEQUENCE)
        alg.child(0, _OID)
        algorithm_cost(alg, _work())
    except Unreadable:
        return  # not an encrypted PKCS#8 key CertDesk can read: the key loader refuses it


def open_pkcs8(der: bytes, password: bytes) -> bytes | None:
    """The PrivateKeyInfo (unencrypted PKCS#8 DER) inside the EncryptedPrivateKeyInfo ``der``,
    or None when it is not one, or its encryption is one this module does not open (PBES1: the
    library's loader opens it, its work bounded by :func:`check_pkcs8`). Raises TooCostly, and
    Unreadable for a wrong password (or damaged file)."""
    try:
        info = parse(der)
        alg, data = info.child(0, _SEQUENCE), info.child(1, _OCTETS).value
        oid = alg.child(0).oid()
    except Unreadable:
        return None
    if oid != PBES2 and oid not in P12_CIPHERS:
        return None
    algorithm_cost(alg, _work())
    try:
        return _decrypt(alg, data, password)
    except Unsupported:
        return None


@dataclass
class Pkcs12Contents:
    """What a PKCS#12 file holds, unencrypted: its first private key (PrivateKeyInfo DER) and its
    X.509 certificates (DER), in the file's order."""

    key: bytes | None = None
    certificates: list[bytes] = field(default_factory=list)
    mac_checked: bool = True  # False: a PBMAC1 MAC, left to the library's loader


def open_pkcs12(der: bytes, password: bytes | None) -> Pkcs12Contents:
    """Open the PKCS#12 file ``der`` as OpenSSL would, the work of every part counted before it
    is done: its MAC checked with ``password`` (an empty one tried as no bytes, then as an empty
    string), its encrypted safes and keys decrypted. Raises TooCostly, and Unreadable when the
    structure cannot be read, or the password is wrong (the message then says "password")."""
    work = _work()
    pfx = parse(der)
    if pfx.child(0, _INTEGER).integer() != 3:
        raise Unreadable("not a version 3 PKCS#12 file")
    auth_safe = pfx.child(1, _SEQUENCE)
    if auth_safe.child(0).oid() != DATA:
        raise Unreadable("public-key integrity mode is not read")
    content = auth_safe.child(1, _CONTEXT0).child(0, _OCTETS).value
    found = Pkcs12Contents()
    if len(pfx.children) > 2:
        mac = pfx.child(2, _SEQUENCE)
        try:
            password = _checked_mac(mac, content, password, work)
        except Unsupported:
            found.mac_checked = False
            algorithm_cost(mac.child(0, _SEQUENCE).child(0, _SEQUENCE), work)
    first = work.rounds
    for info in parse(content).children:
        kind = info.child(0).oid()
        if kind == DATA:
            _bags(parse(info.child(1, _CONTEXT0).child(0, _OCTETS).value), work, password, found)
        elif kind == ENCRYPTED_DATA:
            encrypted = info.child(1, _CONTEXT0).child(0, _SEQUENCE).child(1, _SEQUENCE)
            alg = encrypted.child(1, _SEQUENCE)
            algorithm_cost(alg, work)
            if len(encrypted.children) > 2:
                plain = _decrypt(alg, encrypted.children[2].value, password)
                try:
                    safe = parse(plain)
                except Unreadable:
                    # A wrong password yields garbage that now and then ends in valid padding.
                    raise Unreadable(
                        "the encrypted safe does not open with this password"
                    ) from None
                _bags(safe, work, password, found)
        else:
            raise Unreadable("a safe of an unknown kind")
    if not found.mac_checked:
        work.add(work.rounds - first)  # the loader runs it all again
    return found


def _checked_mac(mac: Node, content: bytes, password: bytes | None, work: _Work):
    """Check the MacData ``mac`` over ``content``; return the password that opens it (an empty
    one: None or b"", whichever OpenSSL would have found). Raises Unreadable (naming the
    password) when it does not match."""
    digest_info = mac.child(0, _SEQUENCE)
    alg, expected = digest_info.child(0, _SEQUENCE), digest_info.child(1, _OCTETS).value
    alg_oid = alg.child(0).oid()
    if alg_oid == PBMAC1:
        raise Unsupported("a PBMAC1 MAC (RFC 9579): the library's loader checks it")
    digest = MAC_DIGESTS.get(alg_oid)
    if digest is None:
        raise Unreadable("unsupported MAC digest")
    salt = mac.child(1, _OCTETS).value
    rounds = mac.child(2, _INTEGER).integer() if len(mac.children) > 2 else 1
    if rounds < 1:
        raise Unreadable("bad MAC iteration count")
    if rounds > MAX_LEGACY_ROUNDS:
        raise TooCostly(
            f"The file's MAC asks for {rounds:,} rounds of password hashing; CertDesk checks "
            f"at most {MAX_LEGACY_ROUNDS:,}. Export it again with your tool's usual settings."
        )
    work.add(rounds)
    # OpenSSL tries an empty password as no bytes, then as an empty string.
    for candidate in [password] if password else [None, b""]:
        size = hashlib.new(digest).digest_size
        key = pkcs12_kdf(candidate, salt, 3, rounds, size, digest)
        if hmac.compare_digest(hmac.new(key, content, digest).digest(), expected):
            return candidate
    raise Unreadable("the MAC does not match this password")


def _bags(safe_contents: Node, work: _Work, password, found: Pkcs12Contents, depth=0) -> None:
    if depth > 4:
        raise Unreadable("safe contents nested too deeply")
    for bag in safe_contents.children:
        kind = bag.child(0).oid()
        value = bag.child(1, _CONTEXT0).child(0)
        if kind == KEY_BAG:
            _check_key_size(value)
            found.key = found.key or value.raw
        elif kind == SHROUDED_KEY_BAG:
            alg = value.child(0, _SEQUENCE)
            algorithm_cost(alg, work)
            plain = _decrypt(alg, value.child(1, _OCTETS).value, password)
            try:
                _check_key_size(parse(plain))
            except Unreadable:
                # A wrong password yields garbage that now and then ends in valid padding.
                raise Unreadable("the key does not open with this password") from None
            found.key = found.key or plain
        elif kind == CERT_BAG:
            if value.child(0).oid() == X509_CERTIFICATE:  # others (SDSI) are left, as OpenSSL does
                found.certificates.append(value.child(1, _CONTEXT0).child(0, _OCTETS).value)
        elif kind == SAFE_CONTENTS_BAG:
            _bags(value, work, password, found, depth + 1)


def _check_key_size(private_key_info: Node) -> None:
    """Raise TooCostly for an RSA key (a PKCS#8 PrivateKeyInfo) larger than MAX_RSA_BITS."""
    if private_key_info.child(1, _SEQUENCE).child(0).oid() != RSA_ENCRYPTION:
        return
    modulus = parse(private_key_info.child(2, _OCTETS).value).child(1, _INTEGER).integer()
    if modulus.bit_length() > MAX_RSA_BITS:
        raise TooCostly(
            f"The file holds an RSA key of {modulus.bit_length():,} bits; CertDesk takes keys "
            f"of at most {MAX_RSA_BITS:,} bits (opening a larger one takes minutes)."
        )


# -- opening an encrypted safe, to see what it holds ----------------------------------------------


def _decrypt(alg: Node, data: bytes, password: bytes | None) -> bytes:
    """The plaintext of an encrypted safe; its derivation was counted (and allowed) before."""
    try:
        return _open_safe(alg, data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if isinstance(exc, TooCostly | Unreadable):
            raise
        raise Unreadable(f"the encrypted safe cannot be read ({exc})") from None


def _open_safe(alg: Node, data: bytes, password: bytes | None) -> bytes:
    oid = alg.child(0).oid()
    if oid == PBES2:
        params = alg.child(1, _SEQUENCE)
        kdf, scheme = params.child(0, _SEQUENCE), params.child(1, _SEQUENCE)
        cipher_oid = scheme.child(0).oid()
        if cipher_oid not in CBC_CIPHERS:
            raise Unsupported(f"unsupported encryption {cipher_oid}")
        cipher, key_length = CBC_CIPHERS[cipher_oid]
        iv = scheme.child(1, _OCTETS).value
        pw = password or b""
        if kdf.child(0).oid() == PBKDF2:
            salt, iterations, prf = _pbkdf2(kdf.child(1, _SEQUENCE), _Work())
            key = PBKDF2HMAC(prf(), key_length, salt, iterations).derive(pw)
        elif kdf.child(0).oid() == SCRYPT:
            salt, n, r, p = _scrypt(kdf.child(1, _SEQUENCE))
            key = Scrypt(salt, key_length, n, r, p).derive(pw)
        else:
            raise Unsupported("unsupported key derivation")
        return _cbc(cipher(key), iv, data)
    if oid in P12_CIPHERS:
        params = alg.child(1, _SEQUENCE)
        salt, iterations = params.child(0, _OCTETS).value, params.child(1, _INTEGER).integer()
        if iterations > MAX_LEGACY_ROUNDS:
            raise TooCostly(
                f"The file's legacy encryption asks for {iterations:,} rounds; CertDesk opens "
                f"at most {MAX_LEGACY_ROUNDS:,}. Export it again with AES encryption."
            )
        kind, key_length = P12_CIPHERS[oid]
        # OpenSSL tries the empty password both ways: as no bytes and as an empty string.
        attempts = [password] if password else [b"", None]
        for pw in attempts:
            key = pkcs12_kdf(pw, salt, 1, iterations, key_length)
            iv = pkcs12_kdf(pw, salt, 2, iterations, 8) if kind != "rc4" else b""
            try:
                if kind == "rc4":
                    return Cipher(ARC4(key), mode=None).decryptor().update(data)
                if kind == "3des":
                    return _cbc(TripleDES(key), iv, data)
                return rc2_cbc_decrypt(key, key_length * 8, iv, data)
            except Unreadable:
                continue
        raise Unreadable("the encrypted safe does not open with this password")
    raise Unsupported(f"unsupported encryption {oid}")


def _cbc(cipher, iv: bytes, data: bytes) -> bytes:
    if not data or len(data) % (cipher.block_size // 8) or len(iv) != cipher.block_size // 8:
        raise Unreadable("bad encrypted length")
    dec = Cipher(cipher, modes.CBC(iv)).decryptor()
    return _unpad(dec.update(data) + dec.finalize(), cipher.block_size)


def _unpad(plain: bytes, block_bits: int) -> bytes:
    unpadder = padding.PKCS7(block_bits).unpadder()
    try:
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError:
        raise Unreadable("the encrypted safe does not open with this password") from None


def pkcs12_kdf(
    password: bytes | None,
    salt: bytes,
    purpose: int,
    rounds: int,
    size: int,
    digest: str = "sha1",
) -> bytes:
    """RFC 7292 appendix B.2 with ``digest``: SHA-1 is what PKCS#12's own PBE algorithms use (to
    read old files); a file's MAC names its own (SHA-256 in the files CertDesk writes).
    ``password`` is the text's UTF-8; it is used as a BMPString with its two zero bytes (None: no
    bytes)."""
    pw = b"" if password is None else password.decode("utf-8").encode("utf-16-be") + b"\0\0"
    # SHA-1 for reading old files that say so; no new file is protected with it.
    make = {
        "sha1": hashlib.sha1,
        "sha224": hashlib.sha224,
        "sha256": hashlib.sha256,
        "sha384": hashlib.sha384,
        "sha512": hashlib.sha512,
    }[digest]
    legacy = digest == "sha1"
    u, v = make().digest_size, make().block_size

    def fill(data: bytes) -> bytes:  # repeated to a whole number of v-byte blocks
        size = v * -(-len(data) // v)
        return (data * (size // len(data) + 1))[:size] if data else b""

    def h(data: bytes) -> bytes:
        return make(data, usedforsecurity=not legacy).digest()

    i_block = bytearray(fill(salt) + fill(pw))
    out = b""
    while len(out) < size:
        a = h(bytes([purpose]) * v + bytes(i_block))
        for _ in range(rounds - 1):
            a = h(a)
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i_block), v):
            chunk = (int.from_bytes(i_block[j : j + v], "big") + b + 1) % (1 << (8 * v))
            i_block[j : j + v] = chunk.to_bytes(v, "big")
    return out[:size]


# RC2 (RFC 2268): PKCS#12 files from older tools encrypt their certificates with 40-bit RC2,
# which cryptography offers only with 128-bit keys.
_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)


def _rc2_key_schedule(key: bytes, effective_bits: int) -> list[int]:
    t = len(key)
    expanded = bytearray(128)
    expanded[:t] = key
    for i in range(t, 128):
        expanded[i] = _PITABLE[(expanded[i - 1] + expanded[i - t]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF >> (8 * t8 - effective_bits)
    expanded[128 - t8] = _PITABLE[expanded[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        expanded[i] = _PITABLE[expanded[i + 1] ^ expanded[i + t8]]
    return [expanded[2 * i] | (expanded[2 * i + 1] << 8) for i in range(64)]


def _rc2_decrypt_block(k: list[int], block: bytes) -> bytes:
    r = [block[2 * i] | (block[2 * i + 1] << 8) for i in range(4)]
    j = 63
    for rounds, mash in ((5, True), (6, True), (5, False)):
        for _ in range(rounds):
            for i, s in ((3, 5), (2, 3), (1, 2), (0, 1)):
                x = r[i]
                x = ((x >> s) | (x << (16 - s))) & 0xFFFF
                x = (x - k[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & 0xFFFF
                r[i] = x
                j -= 1
        if mash:
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - k[r[i - 1] & 63]) & 0xFFFF
    return b"".join(bytes((w & 0xFF, w >> 8)) for w in r)


def rc2_cbc_decrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """RC2-CBC decryption with ``effective_bits`` (40 or 128), PKCS#7 padding removed."""
    if not data or len(data) % 8 or len(iv) != 8:
        raise Unreadable("bad encrypted length")
    if effective_bits == 128 and len(key) == 16:
        return _cbc(RC2(key), iv, data)
    k = _rc2_key_schedule(key, effective_bits)
    out, prev = bytearray(), iv
    for pos in range(0, len(data), 8):
        block = data[pos : pos + 8]
        plain = _rc2_decrypt_block(k, block)
        out += bytes(a ^ b for a, b in zip(plain, prev, strict=True))
        prev = block
    return _unpad(bytes(out), 64)
