"""Private keys: seal and store them, open them, hand them out on request, delete unused ones.

Keys are only ever stored sealed by the secret box. A download is a separate permission
(``keys.download``), limited for operators to keys they made or imported, protected by a password
and audited; :func:`download` is the one way out, used by the CSR and the certificate pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from webapp import hooks, pki
from webapp.audit import service as audit
from webapp.downloads import safe_name
from webapp.extensions import db
from webapp.keys.models import PrivateKey
from webapp.pki import PkiError
from webapp.security import rbac
from webapp.security.secretbox import context_for, current_box
from webapp.validation import InputError

MIN_EXPORT_PASSWORD = 8
FORMATS = {
    "pkcs8": ("application/x-pem-file", "key.pem"),
    "pkcs12": ("application/x-pkcs12", "p12"),
}
_SEAL_CONTEXT = context_for(PrivateKey, "sealed_pem")


def store(key, actor=None, origin: str = "generated") -> PrivateKey:
    """Seal ``key`` and add it to the session (flushed), or return the row already holding it."""
    pub_id = pki.public_key_id(key.public_key())
    existing = by_public_id(pub_id)
    if existing is not None:
        return existing
    info = pki.describe_public_key(key.public_key())
    row = PrivateKey(
        key_type=info.type,
        key_size=info.size,
        label=info.label,
        public_key_id=pub_id,
        sealed_pem=current_box().seal(pki.private_key_pem(key), _SEAL_CONTEXT),
        origin=origin,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(row)
    db.session.flush()
    return row


def open_key(row: PrivateKey):
    """The ``cryptography`` private key held in ``row``."""
    return pki.load_private_key(current_box().open(row.sealed_pem, _SEAL_CONTEXT))


def by_public_id(public_key_id: str) -> PrivateKey | None:
    return db.session.execute(
        select(PrivateKey).where(PrivateKey.public_key_id == public_key_id)
    ).scalar()


def count() -> int:
    from sqlalchemy import func

    return db.session.execute(select(func.count()).select_from(PrivateKey)).scalar_one()


def can_download(user, row: PrivateKey | None) -> bool:
    """Admins may download any key; operators only keys they made or imported; auditors none."""
    if row is None or not rbac.has_permission(user, rbac.KEYS_DOWNLOAD):
        return False
    return user.role == "admin" or row.created_by_id == user.id


@dataclass(frozen=True)
class KeyFile:
    data: bytes
    mimetype: str
    filename: str


def download(
    actor,
    row: PrivateKey,
    *,
    fmt: str,
    password: str,
    repeated: str | None = None,
    name: str = "",
    cert=None,
    chain=(),
    about: dict | None = None,
) -> KeyFile:
    """The key encrypted under ``password`` as PKCS#8 PEM or PKCS#12 (with ``cert`` and
    ``chain`` when given), and the file name to offer.

    Raises PermissionDenied unless the actor may download this key; PkiError (with the form
    field) for an unknown format, a short password or a repeated password that differs.
    Audited as ``key.download`` with ``about`` (what page it came from) in the detail.
    """
    rbac.check(actor, rbac.KEYS_DOWNLOAD)
    if not can_download(actor, row):
        raise rbac.PermissionDenied("Only an administrator or the key's creator may download it.")
    if fmt not in FORMATS:
        raise PkiError("Choose PKCS#8 or PKCS#12.", "format")
    if len(password or "") < MIN_EXPORT_PASSWORD:
        raise PkiError(
            f"Protect the file with a password of at least {MIN_EXPORT_PASSWORD} characters.",
            "password",
        )
    if repeated is not None and repeated != password:
        raise PkiError("The passwords differ: type the password in both boxes again.", "password2")
    key = open_key(row)
    if fmt == "pkcs8":
        data = pki.export_key_pkcs8(key, password)
    else:
        data = pki.export_pkcs12(name, key, cert, list(chain), password)
    audit.record(
        "key.download",
        actor=actor,
        object_type="private_key",
        object_id=row.id,
        detail={"format": fmt, "with_certificate": cert is not None, **(about or {})},
    )
    db.session.commit()
    mimetype, ext = FORMATS[fmt]
    return KeyFile(data, mimetype, f"{safe_name(name, 'key')}.{ext}")


def delete_holder(actor, holder_row, key_row: PrivateKey | None, holder: str) -> dict:
    """Delete ``holder_row`` (a CSR, a certificate) and then :func:`release` its ``key_row``;
    when the key may not be released, roll back (nothing deleted), record the refusal and raise
    its InputError. The caller records and commits a deletion. Returns the audit detail of the
    key."""
    holder_id, name = holder_row.id, holder_row.common_name
    db.session.delete(holder_row)
    db.session.flush()
    try:
        return release(actor, key_row, holder)
    except InputError as exc:
        db.session.rollback()
        audit.record(
            f"{holder.lower()}.delete",
            actor=actor,
            object_type=holder.lower(),
            object_id=holder_id,
            outcome="refused",
            detail={"common_name": name, "reason": str(exc)},
        )
        db.session.commit()
        raise


def release(actor, row: PrivateKey | None, holder: str) -> dict:
    """After the ``holder`` ("CSR", "certificate") that held ``row`` is deleted (flushed, not
    committed): delete the key too when nothing else needs it, so that no key is left that no
    page reaches. A key still in use is kept. An actor who may not handle the key (not an
    administrator, not its maker) may not leave it unreachable either: InputError, and the caller
    rolls back. Returns the audit detail (``key_deleted`` or ``key_kept``)."""
    if row is None:
        return {}
    if any(hooks.emit("key.in_use", key_id=row.id)):
        return {"key_kept": "in use"}
    if not can_download(actor, row):
        raise InputError(
            f"Only an administrator or the maker of its private key may delete this {holder}: "
            "nothing else uses the key, which would be left where no page reaches it."
        )
    db.session.delete(row)
    return {"key_deleted": True}


def delete_if_unused(row: PrivateKey) -> bool:
    """Delete the key when no feature still needs it (asked through ``key.in_use``); the caller
    commits, with its audit event. Returns whether it was deleted."""
    if any(hooks.emit("key.in_use", key_id=row.id)):
        return False
    db.session.delete(row)
    return True
