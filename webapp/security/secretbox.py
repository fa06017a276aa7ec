"""Encryption at rest: AES-256-GCM under a master key kept outside the database.

A sealed value is the text ``v1:<base64(key_id | nonce | ciphertext+tag)>``. The key id (4 bytes of
the key's SHA-256) says which key sealed it, so a rotation that was interrupted can be resumed: the
box opens values under the current key and under a key being rotated to. The associated data binds
each value to its column, so a sealed value copied into another column does not open.

Models declare their sealed columns with ``@sealed_columns("col", ...)``; the rotation walks them.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shlex
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from webapp import privatefile

PREFIX = "v1:"
KEY_FILE = "master.key"
NEXT_KEY_FILE = "master.key.next"  # present only while a rotation is under way
log = logging.getLogger(__name__)
CANARY = b"certdesk master key check"

# (model class, column attribute) for every sealed column, filled by @sealed_columns.
SEALED: list[tuple[type, str]] = []


class MasterKeyError(RuntimeError):
    """The master key is missing, unreadable, unsafe or does not open the data. Startup stops."""


class SecretError(ValueError):
    """A sealed value could not be opened (wrong key, wrong column, or corrupted)."""


def sealed_columns(*names: str):
    def register(cls):
        SEALED.extend((cls, name) for name in names)
        return cls

    return register


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


class SecretBox:
    """Seals with the current key; opens with any key it holds."""

    def __init__(self, key: bytes, *other_keys: bytes):
        for k in (key, *other_keys):
            if len(k) != 32:
                raise MasterKeyError("the master key must be 32 bytes (AES-256)")
        self.key = key
        self.keys = (key, *other_keys)  # the current key first
        self._keys = {key_id(k): AESGCM(k) for k in self.keys}
        self.current_id = key_id(key)

    def seal(self, plaintext: bytes | str, context: str) -> str:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        nonce = os.urandom(12)
        ct = self._keys[self.current_id].encrypt(nonce, plaintext, context.encode())
        return PREFIX + base64.b64encode(self.current_id + nonce + ct).decode()

    def open(self, token: str, context: str) -> bytes:
        if not token or not token.startswith(PREFIX):
            raise SecretError("not a sealed value")
        try:
            raw = base64.b64decode(token[len(PREFIX) :], validate=True)
        except ValueError as exc:
            raise SecretError("sealed value is corrupted") from exc
        kid, nonce, ct = raw[:4], raw[4:16], raw[16:]
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretError("sealed under a master key this install does not hold")
        try:
            return aead.decrypt(nonce, ct, context.encode())
        except InvalidTag as exc:
            raise SecretError("sealed value does not open (corrupted or moved)") from exc

    def open_text(self, token: str, context: str) -> str:
        return self.open(token, context).decode()

    def is_current(self, token: str) -> bool:
        try:
            return base64.b64decode(token[len(PREFIX) :])[:4] == self.current_id
        except ValueError:
            return False


def derive(key: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` derived from the master key ``key`` (HKDF-SHA256): keys
    for other uses than sealing (the audit chain's) without a second secret to keep."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(key)


def context_for(model: type, column: str) -> str:
    return f"{model.__tablename__}.{column}"


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(
            f"{path} is readable by other users (mode {oct(mode & 0o777)}); make it owner-only, "
            f"then start again: chmod 600 {shlex.quote(str(path))}"
        )
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except ValueError as exc:
        raise MasterKeyError(f"{path} does not hold a base64 master key") from exc
    if len(key) != 32:
        raise MasterKeyError(f"{path} does not hold a 32-byte master key")
    return key


def write_key_file(path: Path, key: bytes) -> None:
    privatefile.write(path, base64.b64encode(key).decode() + "\n")


def new_key() -> bytes:
    return secrets.token_bytes(32)


def load_box(instance: Path, env_key: str | None, *, may_create: bool) -> SecretBox:
    """Build the box from CERTDESK_MASTER_KEY or instance/master.key.

    The key file is created (0600) only when ``may_create`` says no sealed data exists yet; a
    missing key with sealed data, a key file others can read, or a bad key raise MasterKeyError.
    """
    box = find_box(instance, env_key, sealed=not may_create)
    if box is None:
        # Workers starting together on a new instance all use the key written first.
        path = instance / KEY_FILE
        privatefile.create_once(path, base64.b64encode(new_key()).decode() + "\n")
        box = _file_box(instance, _read_key_file(path))
    if len(box.keys) > 1:
        log.warning(
            "a master key rotation was interrupted (%s exists): some secrets are sealed under "
            "that key; run `certdesk rotate-master-key` again to finish it, and keep that file "
            "until then",
            instance / NEXT_KEY_FILE,
        )
    return box


def find_box(instance: Path, env_key: str | None, *, sealed: bool) -> SecretBox | None:
    """The box of the key there is, as load_box checks it, with nothing made: None when there is
    no key file yet and nothing is ``sealed`` (load_box would make one). A start checks this
    before it makes the instance, so that a key refused leaves nothing behind."""
    if env_key:
        try:
            key = base64.b64decode(env_key, validate=True)
        except ValueError as exc:
            raise MasterKeyError("CERTDESK_MASTER_KEY is not base64") from exc
        if len(key) != 32:
            raise MasterKeyError("CERTDESK_MASTER_KEY must decode to 32 bytes")
        return SecretBox(key)
    path = instance / KEY_FILE
    if not path.exists():
        if sealed:
            raise MasterKeyError(
                f"encrypted data exists but the master key {path} is missing; restore it from "
                "your backup (or set CERTDESK_MASTER_KEY)"
            )
        return None
    return _file_box(instance, _read_key_file(path))


def _file_box(instance: Path, key: bytes) -> SecretBox:
    nxt = instance / NEXT_KEY_FILE
    # A rotation was interrupted: values may be sealed under either key until it is re-run.
    if not nxt.exists():
        return SecretBox(key)
    return SecretBox(key, _read_key_file(nxt))


KEY_CHECK_SETTING = "master_key_check"
_KEY_CHECK_CONTEXT = "setting.master_key_check"


def key_check(box: SecretBox) -> str:
    """The value kept under KEY_CHECK_SETTING: a known text sealed under the box's key."""
    return box.seal(CANARY, _KEY_CHECK_CONTEXT)


def verify_key_check(box: SecretBox, stored: str) -> None:
    """Raise MasterKeyError unless the box opens the stored check value."""
    try:
        ok = box.open(stored, _KEY_CHECK_CONTEXT) == CANARY
    except (SecretError, ValueError):
        ok = False
    if not ok:
        raise MasterKeyError(
            "the master key does not match this database's encrypted data; restore the right "
            "instance/master.key (or CERTDESK_MASTER_KEY)"
        )


def current_box() -> SecretBox:
    from flask import current_app

    return current_app.extensions["secretbox"]
