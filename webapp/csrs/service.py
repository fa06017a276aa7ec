"""SSL > CSRs: generate or import key pairs and CSRs (the keys are kept by webapp.keys).

Every change is audited in its own transaction. Errors a person can fix are ``PkiError``s with
the form field they belong to; nothing is written when one is raised.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from sqlalchemy import or_, select
from sqlalchemy.orm import load_only, with_expression

from webapp import hooks, pki
from webapp.audit import service as audit
from webapp.auth.models import User
from webapp.csrs.models import Csr, CsrName, ListedCsr
from webapp.dbtypes import join_names
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.keys.models import PrivateKey
from webapp.paging import Listed
from webapp.pki import PkiError
from webapp.search import listed_name_matches, name_forms, narrowed, prefixed
from webapp.security import rbac

MAX_SANS = 250  # what Entrust accepts in one certificate

# -- CSRs --------------------------------------------------------------------------------------


def _names(info: pki.CsrInfo) -> list[str]:
    """The names a CSR is searched by: its SANs, and its CN when not one of them; lower case."""
    names = list(dict.fromkeys(name.lower() for name in info.sans.all()))  # once each, in order
    cn = info.common_name.strip().lower()
    if cn and cn not in names:
        names.insert(0, cn)
    return [n[:255] for n in names]


def _add_csr(info: pki.CsrInfo, key_row: PrivateKey | None, source: str, actor) -> Csr:
    row = Csr(
        common_name=info.common_name[:255],
        subject=info.subject,
        sans=join_names(info.sans.all()),
        key_label=info.key.label,
        signature_algorithm=info.signature_algorithm[:64],
        public_key_id=info.public_key_id,
        pem=info.pem,
        source=source,
        private_key_id=key_row.id if key_row else None,
        created_by_id=getattr(actor, "id", None),
    )
    row.names = [CsrName(value=n, reversed=n[::-1]) for n in _names(info)]
    db.session.add(row)
    db.session.flush()
    return row


def check_names(common_name: str, san_text: str) -> dict:
    """Live form feedback: the CN's problem, the SANs' problems, and the SANs to suggest."""
    cn = (common_name or "").strip()
    cn_error = ""
    if cn:
        try:
            if pki.ip_address(cn) is None:
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
    """Generate a key pair and sign a CSR for it. The CN is a host name or an IP address, put in
    the form certificates hold (lower case, no final dot, xn--), and added to the SANs if missing:
    a certificate's CN is one of its SANs.

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
        raise PkiError(" ".join(problems[:10]), "sans")
    if len(sans.all()) > MAX_SANS:
        raise PkiError(
            f"{len(sans.all()):,} subject alternative names; a certificate holds at most "
            f"{MAX_SANS}.",
            "sans",
        )
    pki.subject_name(subject)  # a control character or an over-long field, said as such
    try:
        cn_ip = pki.ip_address(cn)
    except PkiError as exc:
        raise PkiError(str(exc), "CN") from None
    if cn_ip is not None:
        subject = {**subject, "CN": cn_ip}
        if cn_ip not in sans.ip:
            sans.ip.insert(0, cn_ip)
    else:
        try:
            cn_name = pki.check_dns_name(cn)
        except PkiError as exc:
            raise PkiError(
                f"The common name is the certificate's host name (www.example.com, "
                f"*.example.com) or IP address. {exc}",
                "CN",
            ) from None
        subject = {**subject, "CN": cn_name}
        if cn_name not in sans.dns:
            sans.dns.insert(0, cn_name)
    pki.subject_name(subject)  # refuse a bad subject before the (slow) key generation
    if hash_name not in pki.HASHES:
        raise PkiError("Choose SHA-256, SHA-384 or SHA-512.", "hash")
    key, info = pki.new_csr(key_type, subject, sans, hash_name)
    key_row = keys.store(key, actor, "generated")
    row = _add_csr(info, key_row, "generated", actor)
    audit.record(
        "csr.create",
        actor=actor,
        object_type="csr",
        object_id=row.id,
        detail={"common_name": row.common_name, "key": info.key.label, "hash": hash_name},
    )
    db.session.commit()
    return row


def _same_csr(info: pki.CsrInfo) -> Csr | None:
    """The CSR already held that is ``info``'s, byte for byte (CSRs of one key are few)."""
    der = info.csr.public_bytes(serialization.Encoding.DER)
    for row in db.session.execute(
        select(Csr).where(Csr.public_key_id == info.public_key_id).order_by(Csr.id)
    ).scalars():
        try:
            if pki.parse_csr(row.pem, "csr").csr.public_bytes(serialization.Encoding.DER) == der:
                return row
        except PkiError:
            continue
    return None


def import_csr(actor, csr_data, key_data=None, key_password: str | None = None) -> Csr:
    """Store a CSR someone made elsewhere, with its private key if given (checked to match).

    Raises PkiError for a CSR or key that cannot be read, a wrong key password, an unsupported
    key type, or a key that does not belong to the CSR.
    """
    rbac.check(actor, rbac.CSRS_MANAGE)
    info = pki.parse_csr(csr_data, "csr")
    pki.check_name_count(info.csr, "This CSR", "csr")
    existing = _same_csr(info)
    given_key = key_data is not None and key_data.strip()
    if existing is not None and (existing.private_key_id is not None or not given_key):
        raise PkiError(
            f"This CSR is in CertDesk already, as CSR #{existing.id} "
            f"({existing.common_name or 'no common name'}).",
            "csr",
        )
    key_row = None
    if given_key:
        key = pki.load_private_key(key_data, key_password or None, "key")
        if not pki.key_matches(key, info.csr.public_key()):
            raise PkiError(
                "This private key does not belong to the CSR: their public keys differ.", "key"
            )
        key_row = keys.store(key, actor, "imported")
    elif (held := keys.by_public_id(info.public_key_id)) is not None:
        key_row = held
    if existing is not None:  # the same CSR, imported before without its key: the key joins it
        existing.private_key_id = key_row.id
        row = existing
    else:
        row = _add_csr(info, key_row, "imported", actor)
    audit.record(
        "csr.import",
        actor=actor,
        object_type="csr",
        object_id=row.id,
        detail={
            "common_name": row.common_name,
            "with_key": key_row is not None,
            **({"key_added": True} if existing is not None else {}),
        },
    )
    db.session.commit()
    return row


def record_for_order(actor, info: pki.CsrInfo, key_row: PrivateKey | None) -> Csr:
    """The CSR row for a CSR given with an order: the one already held with the same PEM (given
    ``key_row`` when it had none), or a new one, made by CertDesk when its key was (a key pair
    made for the order: generated, and no CSR holds it yet), else imported. Audited; the caller
    commits with its own change."""
    existing = db.session.execute(
        select(Csr)
        .where(Csr.public_key_id == info.public_key_id, Csr.pem == info.pem)
        .order_by(Csr.id.desc())
        .limit(1)
    ).scalar()
    if existing is not None:
        if key_row is not None and existing.private_key_id is None:
            existing.private_key_id = key_row.id
            audit.record(
                "csr.update",
                actor=actor,
                object_type="csr",
                object_id=existing.id,
                detail={"common_name": existing.common_name, "key_linked": True, "order": True},
            )
        return existing
    made_here = (
        key_row is not None
        and key_row.origin == "generated"
        and db.session.execute(
            select(Csr.id).where(Csr.private_key_id == key_row.id).limit(1)
        ).scalar()
        is None
    )
    row = _add_csr(info, key_row, "generated" if made_here else "imported", actor)
    detail = {"common_name": row.common_name, "with_key": key_row is not None, "order": True}
    if made_here:
        detail["key"] = info.key.label
    audit.record(
        "csr.create" if made_here else "csr.import",
        actor=actor,
        object_type="csr",
        object_id=row.id,
        detail=detail,
    )
    return row


def get_csr(csr_id: int) -> Csr | None:
    return db.session.get(Csr, csr_id)


def recent(limit: int = 100, offset: int = 0) -> list[Csr]:
    """The newest CSRs (for choosing one on a form), past the ``offset`` newest."""
    stmt = select(Csr).order_by(Csr.created_at.desc(), Csr.id.desc()).limit(limit).offset(offset)
    return list(db.session.execute(stmt).scalars())


def matching(text: str, limit: int, offset: int = 0) -> list[Csr]:
    """The newest ``limit`` CSRs (past the ``offset`` newest) with a name (CN or SAN) that starts
    or ends with ``text``, found as the CSR list's search finds them (``list_query``): by index
    ranges when few match, by a walk of the newest testing each when many do. For choosing one
    on a form."""
    stmt = _searched(select(Csr), text.strip().lower())
    stmt = stmt.order_by(Csr.created_at.desc(), Csr.id.desc()).limit(limit).offset(offset)
    return list(db.session.execute(stmt).scalars())


SORTS = {
    "created": Csr.created_at,
    "cn": Csr.common_name,
}


# What the list shows and sorts by; the PEM and the subject stay in the database (reading any
# other column of a listed CSR raises rather than loading it row by row).
LISTED = (
    Csr.common_name,
    Csr.sans,
    Csr.key_label,
    Csr.private_key_id,
    Csr.source,
    Csr.created_at,
)
# Each listed CSR's creator, read beside its row (a look-up by primary key).
CREATOR = select(User.username).where(User.id == Csr.created_by_id).scalar_subquery()
# The list page reads the same as plain values (webapp.paging.Listed).
LISTED_ROWS = Listed((Csr.id, *LISTED, CREATOR.label("creator_name")), ListedCsr)


def list_query(q: str = "", sort: str = "created", direction: str = "desc"):
    """The CSR list: newest first, or by common name; the search finds CSRs with a name (CN or
    SAN) that starts or ends with the text."""
    stmt = (
        select(Csr)
        .options(load_only(*LISTED, raiseload=True), with_expression(Csr.creator_name, CREATOR))
        .execution_options(listed=LISTED_ROWS)
    )
    stmt = _searched(stmt, (q or "").strip().lower())
    col = SORTS.get(sort, Csr.created_at)
    if direction == "asc":
        return stmt.order_by(col.asc(), Csr.id.asc())
    return stmt.order_by(col.desc(), Csr.id.desc())


def _searched(stmt, q: str):
    """``stmt`` (of CSRs) narrowed to those with a name that starts or ends with ``q`` (lower
    case), see ``search.narrowed``; all of them when ``q`` is empty."""
    if not q:
        return stmt
    forms = name_forms(q)  # bücher.example finds xn--bcher-kva.example
    return narrowed(
        stmt,
        [
            range_
            for form in forms
            for range_ in (
                prefixed(CsrName.csr_id, CsrName.value, form),
                prefixed(CsrName.csr_id, CsrName.reversed, form[::-1]),
            )
        ],
        Csr.id,
        # The same names on the row itself (csr_name holds the CN and the SANs, lower case).
        or_(*(listed_name_matches(Csr.common_name + "," + Csr.sans, form) for form in forms)),
    )


def latest_for_public_key(public_key_id: str) -> Csr | None:
    """The newest CSR CertDesk holds for a public key (a certificate issued for it links to it)."""
    return db.session.execute(
        select(Csr).where(Csr.public_key_id == public_key_id).order_by(Csr.id.desc()).limit(1)
    ).scalar()


@hooks.on("key.in_use")
def _key_in_use(key_id: int) -> bool:
    return (
        db.session.execute(select(Csr.id).where(Csr.private_key_id == key_id).limit(1)).first()
        is not None
    )


def delete_csr(actor, row: Csr) -> dict:
    """Delete a CSR, and its private key when nothing else needs it (``keys.delete_holder``: an
    InputError, nothing deleted, when that key would be left unreachable by one who may not
    delete it). Returns the audit detail (``key_deleted`` / ``key_kept``)."""
    rbac.check(actor, rbac.CSRS_MANAGE)
    key_row = row.private_key
    detail = {"common_name": row.common_name}
    csr_id = row.id
    detail.update(keys.delete_holder(actor, row, key_row, "CSR"))
    audit.record("csr.delete", actor=actor, object_type="csr", object_id=csr_id, detail=detail)
    db.session.commit()
    return detail
