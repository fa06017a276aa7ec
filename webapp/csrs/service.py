"""SSL > CSRs: generate or import key pairs and CSRs, keep keys sealed, hand keys out on request.

Every change is audited in its own transaction. Errors a person can fix are ``PkiError``s with
the form field they belong to; nothing is written when one is raised.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from webapp.audit import service as audit
from webapp.certificates import pki
from webapp.certificates.pki import PkiError
from webapp.csrs.models import Csr, PrivateKey
from webapp.extensions import db
from webapp.security import rbac
from webapp.security.secretbox import context_for, current_box

MIN_EXPORT_PASSWORD = 8
KEY_FORMATS = ("pkcs8", "pkcs12")


# -- private keys ------------------------------------------------------------------------------


def store_private_key(key, actor=None, origin: str = "generated") -> PrivateKey:
    """Seal ``key`` and add it to the session, or return the row already holding that key."""
    pub_id = pki.public_key_id(key.public_key())
    existing = db.session.execute(
        select(PrivateKey).where(PrivateKey.public_key_id == pub_id)
    ).scalar()
    if existing is not None:
        return existing
    info = pki.describe_public_key(key.public_key())
    row = PrivateKey(
        key_type=info.type,
        key_size=info.size,
        label=info.label,
        public_key_id=pub_id,
        sealed_pem=current_box().seal(
            pki.private_key_pem(key), context_for(PrivateKey, "sealed_pem")
        ),
        origin=origin,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(row)
    db.session.flush()
    return row


def open_private_key(row: PrivateKey):
    pem = current_box().open(row.sealed_pem, context_for(PrivateKey, "sealed_pem"))
    return pki.load_private_key(pem)


def key_by_public_id(public_key_id: str) -> PrivateKey | None:
    return db.session.execute(
        select(PrivateKey).where(PrivateKey.public_key_id == public_key_id)
    ).scalar()


def can_download_key(user, row: PrivateKey | None) -> bool:
    """Admins may download any key; operators only keys they made or imported; auditors none."""
    if row is None or not rbac.has_permission(user, rbac.KEYS_DOWNLOAD):
        return False
    return user.role == "admin" or row.created_by_id == user.id


def export_private_key(
    actor,
    row: PrivateKey,
    password: str,
    fmt: str,
    *,
    name: str = "",
    cert=None,
    chain=(),
    commit: bool = True,
) -> bytes:
    """The key encrypted under ``password`` as PKCS#8 PEM or PKCS#12 (with ``cert`` if given).

    Raises PermissionDenied unless the actor may download this key, PkiError for a short
    password or an unknown format. Audited as ``key.download``.
    """
    rbac.check(actor, rbac.KEYS_DOWNLOAD)
    if not can_download_key(actor, row):
        raise rbac.PermissionDenied("Only an administrator or the key's creator may download it.")
    if fmt not in KEY_FORMATS:
        raise PkiError("Choose PKCS#8 or PKCS#12.", "format")
    if len(password or "") < MIN_EXPORT_PASSWORD:
        raise PkiError(
            f"Protect the file with a password of at least {MIN_EXPORT_PASSWORD} characters.",
            "password",
        )
    key = open_private_key(row)
    if fmt == "pkcs8":
        data = pki.export_key_pkcs8(key, password)
    else:
        data = pki.export_pkcs12(name, key, cert, list(chain), password)
    audit.record(
        "key.download",
        object_type="private_key",
        object_id=row.id,
        detail={"format": fmt, "with_certificate": cert is not None},
    )
    if commit:
        db.session.commit()
    return data


# -- CSRs --------------------------------------------------------------------------------------


def _sans_text(sans: pki.SanSet) -> str:
    return ",".join(sans.all())


def _add_csr(info: pki.CsrInfo, key_row: PrivateKey | None, source: str, actor) -> Csr:
    row = Csr(
        common_name=info.common_name[:255],
        subject=info.subject,
        sans=_sans_text(info.sans),
        key_label=info.key.label,
        signature_algorithm=info.signature_algorithm[:64],
        public_key_id=info.public_key_id,
        pem=info.pem,
        source=source,
        private_key_id=key_row.id if key_row else None,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(row)
    db.session.flush()
    return row


def check_names(common_name: str, san_text: str) -> dict:
    """Live form feedback: the CN's problem, the SANs' problems, and the SANs to suggest."""
    cn = (common_name or "").strip()
    cn_error = ""
    if cn:
        try:
            pki.check_dns_name(cn)
        except PkiError as exc:
            cn_error = str(exc)
    sans, problems = pki.parse_san_text(san_text)
    return {
        "cn_error": cn_error,
        "san_problems": problems,
        "sans": sans.all(),
        "suggested": pki.suggest_sans(cn),
    }


def create_csr(
    actor, key_type: str, subject: dict[str, str], san_text: str, hash_name: str = "sha256"
) -> Csr:
    """Generate a key pair and sign a CSR for it; the CN is added to the DNS SANs if missing.

    Raises PkiError (with the field) for a bad key type, subject, SAN or hash.
    """
    rbac.check(actor, rbac.CSRS_MANAGE)
    if key_type not in pki.KEY_TYPES:
        raise PkiError("Choose one of the offered key types.", "key_type")
    cn = (subject.get("CN") or "").strip()
    if not cn:
        raise PkiError("Give a common name.", "CN")
    sans, problems = pki.parse_san_text(san_text)
    if problems:
        raise PkiError(" ".join(problems), "sans")
    try:
        cn_name = pki.check_dns_name(cn)
    except PkiError:
        cn_name = None  # a CN that is not a host name (a person, an IP) is allowed
    if cn_name and cn_name not in sans.dns:
        sans.dns.insert(0, cn_name)
    pki.subject_name(subject)  # refuse a bad subject before the (slow) key generation
    if hash_name not in pki.HASHES:
        raise PkiError("Choose SHA-256, SHA-384 or SHA-512.", "hash")
    key = pki.generate_private_key(key_type)
    csr = pki.build_csr(key, subject, sans, hash_name)
    info = pki.parse_csr(csr.public_bytes(pki.serialization.Encoding.PEM))
    key_row = store_private_key(key, actor, "generated")
    row = _add_csr(info, key_row, "generated", actor)
    audit.record(
        "csr.create",
        object_type="csr",
        object_id=row.id,
        detail={"common_name": row.common_name, "key": info.key.label, "hash": hash_name},
    )
    db.session.commit()
    return row


def import_csr(actor, csr_data, key_data=None, key_password: str | None = None) -> Csr:
    """Store a CSR someone made elsewhere, with its private key if given (checked to match).

    Raises PkiError for a CSR or key that cannot be read, a wrong key password, an unsupported
    key type, or a key that does not belong to the CSR.
    """
    rbac.check(actor, rbac.CSRS_MANAGE)
    info = pki.parse_csr(csr_data, "csr")
    key_row = None
    if key_data is not None and key_data.strip():
        key = pki.load_private_key(key_data, key_password or None, "key")
        if not pki.key_matches(key, info.csr.public_key()):
            raise PkiError(
                "This private key does not belong to the CSR: their public keys differ.", "key"
            )
        key_row = store_private_key(key, actor, "imported")
    elif (existing := key_by_public_id(info.public_key_id)) is not None:
        key_row = existing
    row = _add_csr(info, key_row, "imported", actor)
    audit.record(
        "csr.import",
        object_type="csr",
        object_id=row.id,
        detail={"common_name": row.common_name, "with_key": key_row is not None},
    )
    db.session.commit()
    return row


def get_csr(csr_id: int) -> Csr | None:
    return db.session.get(Csr, csr_id)


SORTS = {
    "created": Csr.created_at,
    "cn": Csr.common_name,
}


def list_query(q: str = "", sort: str = "created", direction: str = "desc"):
    stmt = select(Csr)
    q = (q or "").strip().lower()
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(func.lower(Csr.common_name).like(like), Csr.sans.like(like)))
    col = SORTS.get(sort, Csr.created_at)
    order = col.asc() if direction == "asc" else col.desc()
    return stmt.order_by(order, Csr.id.desc())


def delete_csr(actor, row: Csr) -> None:
    """Delete a CSR; its key goes too unless a certificate still uses it."""
    rbac.check(actor, rbac.CSRS_MANAGE)
    from webapp.certificates.models import Certificate

    key_row = row.private_key
    detail = {"common_name": row.common_name}
    db.session.delete(row)
    db.session.flush()
    if key_row is not None:
        in_use = (
            db.session.execute(
                select(Certificate.id).where(Certificate.private_key_id == key_row.id).limit(1)
            ).first()
            or db.session.execute(
                select(Csr.id).where(Csr.private_key_id == key_row.id).limit(1)
            ).first()
        )
        if not in_use:
            db.session.delete(key_row)
            detail["key_deleted"] = True
    audit.record("csr.delete", object_type="csr", object_id=row.id, detail=detail)
    db.session.commit()
