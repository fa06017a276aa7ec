"""SSL > Certificates: the repository every issued or imported certificate lands in.

``add_certificate`` is the one way in (imports here, and the Entrust orders feature): idempotent on
the SHA-256 fingerprint, it links the certificate to the key and CSR CertDesk holds for the same
public key. Lists filter and sort on indexed columns so they stay fast at 100,000 rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from webapp import csvexport, hooks, pki
from webapp.audit import service as audit
from webapp.certificates.models import (
    LIVE,
    REVOKED,
    SOURCES,
    SUSPENDED,
    Certificate,
    CertificateExpiryDay,
    CertificateName,
    ListedCertificate,
    counter_of,
    expiry_day,
)
from webapp.csrs import service as csrs
from webapp.csrs.models import Csr
from webapp.dbtypes import join_names, utcnow
from webapp.downloads import safe_name
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.keys.models import PrivateKey
from webapp.paging import Listed, Page, distinct_values, paginate
from webapp.pki import PkiError
from webapp.search import listed_name_matches, name_forms, narrowed, prefixed, unindexed
from webapp.security import rbac

MAX_FILES = 50
MAX_KEYS = 50  # private keys in one import (each encrypted one costs its key derivation)
# Certificates one import adds, all in one transaction: a few seconds of writing, within the time
# another request waits for the database.
MAX_CERTIFICATES = 1000
# Bytes one import may store: each certificate's PEM and its copy of its chain's. A thousand
# certificates with real chains take a few MiB; a bundle whose leaves all name one huge issuer
# would store that issuer once per leaf.
MAX_IMPORT_BYTES = 32 * 1024 * 1024
# Names (SANs) one import stores, one row each: a thousand certificates of 25 names each.
MAX_IMPORT_NAMES = 25_000


# -- adding ------------------------------------------------------------------------------------


def _names(info: pki.CertInfo) -> list[tuple[str, str]]:
    names = [("DNS", n) for n in info.sans.dns]
    names += [("IP", n) for n in info.sans.ip] + [("EMAIL", n) for n in info.sans.email]
    cn = info.common_name.strip().lower()
    if cn and cn not in {v for _, v in names}:
        names.insert(0, ("CN", cn))
    return [(k, v[:255]) for k, v in names]


def _as_cert(value):
    if isinstance(value, str | bytes):
        bundle = pki.read_certificates(value, field_name="certificate")
        return bundle.certificates[0]
    return value


def _fill_in(existing: Certificate, chain_pem: str, key_id, csr_id, order_id, actor) -> None:
    """Give a stored certificate the links it lacks (chain, key, CSR, order); nothing is
    overwritten. A change is audited (``certificate.update``)."""
    changed = {}
    if chain_pem and not existing.chain_pem:
        existing.chain_pem = chain_pem
        changed["chain"] = True
    if key_id is not None and existing.private_key_id is None:
        existing.private_key_id = key_id
        changed["key_linked"] = True
    if csr_id is not None and existing.csr_id is None:
        existing.csr_id = csr_id
        changed["csr_linked"] = True
    if order_id is not None and existing.order_id is None:
        existing.order_id = order_id
        changed["order_id"] = order_id
    if changed:
        if existing.id is None:  # added earlier in the same batch
            db.session.flush()
        audit.record(
            "certificate.update",
            object_type="certificate",
            object_id=existing.id,
            actor=actor,
            detail=changed,
        )


def _new_row(
    cert,
    info: pki.CertInfo,
    chain_pem: str,
    *,
    source,
    order_id,
    key_id,
    csr_id,
    actor,
    with_names: bool = True,
) -> Certificate:
    row = Certificate(
        fingerprint_sha256=info.fingerprint_sha256,
        fingerprint_sha1=info.fingerprint_sha1,
        serial_hex=info.serial_hex[:80],
        common_name=info.common_name[:255],
        subject=info.subject,
        sans=join_names(info.sans.all()),
        issuer=info.issuer,
        issuer_cn=info.issuer_cn,
        not_before=info.not_before,
        not_after=info.not_after,
        key_type=info.key.type,
        key_size=info.key.size,
        key_label=info.key.label,
        signature_algorithm=info.signature_algorithm[:64],
        public_key_id=info.public_key_id,
        is_ca=info.is_ca,
        source=source,
        pem=pki.cert_pem(cert),
        chain_pem=chain_pem,
        order_id=order_id,
        private_key_id=key_id,
        csr_id=csr_id,
        created_by_id=getattr(actor, "id", None),
        # Given, so that a change later in the same transaction (revoked, suspended) knows the
        # value it replaces, and the per-day counters move the certificate between theirs.
        revoked_at=None,
        suspended_at=None,
    )
    if with_names:  # else the caller inserts them (_insert_names)
        row.names = [CertificateName(kind=k, value=v, reversed=v[::-1]) for k, v in _names(info)]
    return row


def _insert_names(rows: list[tuple[Certificate, pki.CertInfo]]) -> None:
    """The names of flushed certificates, in one statement. Given to their rows as objects
    instead, they go in one statement a row on SQLite (the ORM needs each one's new id, and
    SQLite hands back the ids of a many-row INSERT in no set order)."""
    values = [
        {"certificate_id": row.id, "kind": kind, "value": value, "reversed": value[::-1]}
        for row, info in rows
        for kind, value in _names(info)
    ]
    if values:
        db.session.execute(insert(CertificateName.__table__), values)


def _record_added(row: Certificate, actor, with_key: bool) -> None:
    audit.record(
        "certificate.add",
        object_type="certificate",
        object_id=row.id,
        actor=actor,
        detail={
            "common_name": row.common_name,
            "serial": row.serial_hex,
            "source": row.source,
            "with_key": with_key,
            "order_id": row.order_id,
        },
    )


def _issuers_of(cert, chain: list) -> list:
    """``chain`` without ``cert`` itself: a CA's chain that starts with the end-entity
    certificate (ECS's chainCerts does) written otherwise than the certificate (other line
    breaks, say) would otherwise store it in its own chain, and every download of the chain would
    hold it again."""
    return [c for c in chain if c != cert]


def add_certificate(
    pem,
    chain_pems=(),
    *,
    source: str = "imported",
    private_key=None,
    csr: Csr | None = None,
    order_id: int | None = None,
    actor,
    commit: bool = True,
) -> tuple[Certificate, bool]:
    """Put a certificate in the repository, or return the one already there (same fingerprint).

    ``pem`` is PEM text or a ``cryptography`` certificate; ``chain_pems`` its issuers, nearest
    first (PEM strings or certificates); ``source`` one of SOURCES; ``private_key`` a
    ``cryptography`` private key or a PrivateKey row (stored sealed; refused if it does not match);
    ``order_id`` the CA order (``webapp.orders``) it was issued for. A key and a CSR already held
    for the certificate's public key are linked automatically. For an existing row, missing links
    (chain, key, CSR, order) are filled in, nothing is overwritten. Returns
    ``(certificate, created)``.
    The audit event (``certificate.add``) is written in the same transaction; with
    ``commit=False`` the caller commits. Raises PkiError for input that is not a certificate or
    a key that does not match.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown certificate source {source!r}")
    cert = _as_cert(pem)
    chain = _issuers_of(cert, [_as_cert(c) for c in chain_pems or ()])
    info = pki.describe_certificate(cert)

    key_row = None
    if private_key is not None:
        if isinstance(private_key, PrivateKey):
            key_row = private_key
            if key_row.public_key_id != info.public_key_id:
                raise PkiError("The private key does not belong to this certificate.", "key")
        else:
            if not pki.key_matches(private_key, cert.public_key()):
                raise PkiError("The private key does not belong to this certificate.", "key")
            key_row = keys.store(private_key, actor, "imported")
    key_row = key_row or keys.by_public_id(info.public_key_id)
    if csr is None:
        csr = csrs.latest_for_public_key(info.public_key_id)

    existing = db.session.execute(
        select(Certificate).where(Certificate.fingerprint_sha256 == info.fingerprint_sha256)
    ).scalar()
    if existing is not None:
        _fill_in(
            existing,
            "".join(pki.cert_pem(c) for c in chain),
            key_row.id if key_row is not None else None,
            csr.id if csr is not None else None,
            order_id,
            actor,
        )
        if commit:
            db.session.commit()
        return existing, False

    row = _new_row(
        cert,
        info,
        "".join(pki.cert_pem(c) for c in chain),
        source=source,
        order_id=order_id,
        key_id=key_row.id if key_row else None,
        csr_id=csr.id if csr else None,
        actor=actor,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request stored the same certificate between our look-up and this insert.
        if not commit:
            raise
        db.session.rollback()
        return db.session.execute(
            select(Certificate).where(Certificate.fingerprint_sha256 == info.fingerprint_sha256)
        ).scalar_one(), False
    _record_added(row, actor, key_row is not None)
    if commit:
        db.session.commit()
    return row, True


@dataclass
class Added:
    """What ``add_for_orders`` did with one certificate."""

    certificate: Certificate | None
    created: bool
    problem: str = ""  # in words, when the certificate could not be read


def _id_ranges(ids: list[int]) -> list[str]:
    """Sorted ids as ranges: [3, 4, 5, 9] -> ["3-5", "9"]."""
    out: list[str] = []
    ids = sorted(ids)
    start = prev = None
    for i in [*ids, None]:
        if start is not None and (i is None or i != prev + 1):
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return out


RANGES_PER_EVENT = 40  # within the audit detail's bounds (50 entries to a list)


def _record_batch(rows: list[Certificate], actor, about: dict) -> None:
    """One ``certificate.add_batch`` event for certificates added together: how many, their ids
    (as ranges: each certificate is found in the trail by its id), first and last serial, and
    ``about`` (the import job, say). More id ranges than one event holds take more events."""
    ranges = _id_ranges([r.id for r in rows])
    by_id = sorted(rows, key=lambda r: r.id)
    for start in range(0, len(ranges), RANGES_PER_EVENT):
        part = ranges[start : start + RANGES_PER_EVENT]
        lo = int(part[0].split("-")[0])
        hi = int(part[-1].split("-")[-1])
        chosen = [r for r in by_id if lo <= r.id <= hi]
        audit.record(
            "certificate.add_batch",
            object_type="certificate",
            object_id=f"{lo}-{hi}" if lo != hi else lo,
            actor=actor,
            detail={
                **about,
                "count": len(chosen),
                "ids": part,
                "first_serial": chosen[0].serial_hex,
                "last_serial": chosen[-1].serial_hex,
                "source": chosen[0].source,
                "with_key": sum(1 for r in chosen if r.private_key_id is not None),
            },
        )


def add_for_orders(items, *, source: str, actor, batch_event: dict | None = None) -> list[Added]:
    """Add a batch of certificates issued for CA orders: ``items`` are (order id, certificate PEM,
    chain PEMs nearest issuer first). Each ends as ``add_certificate`` would leave it (idempotent
    on the fingerprint, linked to the key and newest CSR held for its public key, missing links of
    a stored one filled in, one ``certificate.add`` event per certificate added), but the batch
    takes a few queries and one flush: each certificate is parsed once, the batch's stored
    certificates, keys and CSRs are read in one query each, and the new rows are inserted
    together. A certificate that cannot be read is reported in ``problem``; the others are still
    added. With ``batch_event`` (what to say about the batch, such as the job adding it), the
    certificates added are audited by one ``certificate.add_batch`` event instead of one event
    each. The caller commits."""
    if source not in SOURCES:
        raise ValueError(f"unknown certificate source {source!r}")
    out = [Added(None, False)] * len(items)
    parsed = []  # (position, order id, certificate, info, chain PEM)
    chains: dict[tuple, list] = {}  # the same chain comes with every certificate of one CA
    for i, (order_id, pem, chain_pems) in enumerate(items):
        try:
            cert = _as_cert(pem)
            info = pki.describe_certificate(cert)
            chain_key = tuple(chain_pems or ())
            if chain_key not in chains:
                chains[chain_key] = [(c, pki.cert_pem(c)) for c in map(_as_cert, chain_key)]
        except PkiError as exc:
            out[i] = Added(None, False, str(exc))
            continue
        chain_pem = "".join(text for c, text in chains[chain_key] if c != cert)
        parsed.append((i, order_id, cert, info, chain_pem))
    if not parsed:
        return out
    fingerprints = list({p[3].fingerprint_sha256 for p in parsed})
    public_ids = list({p[3].public_key_id for p in parsed})
    with db.session.no_autoflush:
        stored = {
            c.fingerprint_sha256: c
            for c in db.session.execute(
                select(Certificate).where(Certificate.fingerprint_sha256.in_(fingerprints))
            ).scalars()
        }
        key_ids = dict(
            db.session.execute(
                select(PrivateKey.public_key_id, PrivateKey.id).where(
                    PrivateKey.public_key_id.in_(public_ids)
                )
            ).all()
        )
        csr_ids = dict(
            db.session.execute(
                select(Csr.public_key_id, func.max(Csr.id))
                .where(Csr.public_key_id.in_(public_ids))
                .group_by(Csr.public_key_id)
            ).all()
        )
        new_rows, named = [], []
        for i, order_id, cert, info, chain_pem in parsed:
            key_id = key_ids.get(info.public_key_id)
            csr_id = csr_ids.get(info.public_key_id)
            row = stored.get(info.fingerprint_sha256)
            if row is not None:
                out[i] = Added(row, False)
                continue
            row = _new_row(
                cert,
                info,
                chain_pem,
                source=source,
                order_id=order_id,
                key_id=key_id,
                csr_id=csr_id,
                actor=actor,
                with_names=False,
            )
            stored[info.fingerprint_sha256] = row
            new_rows.append(row)
            named.append((row, info))
            out[i] = Added(row, True)
        db.session.add_all(new_rows)
    db.session.flush()
    _insert_names(named)
    # The audit chain takes its events one after the other, in the batch's order; a stored
    # certificate lacking a link is given it (and audited) as add_certificate would.
    if batch_event is not None and new_rows:
        _record_batch(new_rows, actor, batch_event)
    for i, order_id, _cert, info, chain_pem in parsed:
        added = out[i]
        if added.created:
            if batch_event is None:
                _record_added(
                    added.certificate, actor, added.certificate.private_key_id is not None
                )
        else:
            _fill_in(
                added.certificate,
                chain_pem,
                key_ids.get(info.public_key_id),
                csr_ids.get(info.public_key_id),
                order_id,
                actor,
            )
    return out


@dataclass
class ImportResult:
    added: list[Certificate] = field(default_factory=list)
    duplicates: list[Certificate] = field(default_factory=list)
    keys: int = 0


def _check_stored_bytes(groups) -> None:
    """Refuse an import whose rows would hold more than MAX_IMPORT_BYTES of PEM: each leaf's
    own, and its chain's (copied into every leaf it issued)."""
    sizes: dict[int, int] = {}

    def size(cert) -> int:
        if id(cert) not in sizes:
            sizes[id(cert)] = len(pki.cert_pem(cert))
        return sizes[id(cert)]

    total = sum(size(leaf) + sum(map(size, chain)) for group in groups for leaf, chain in group)
    if total > MAX_IMPORT_BYTES:
        raise PkiError(
            f"These files would store {total / 2**20:,.1f} MiB of certificates (each with a copy "
            f"of its chain); one import stores at most {MAX_IMPORT_BYTES // 2**20} MiB. Import "
            "them in parts.",
            "files",
        )


PASTED = "pasted text"  # the name of the certificates pasted on the import form


def _field_of(name: str, field: str | None = "files") -> str:
    """The form field an error about file ``name`` belongs to: the paste box, or the files."""
    field = field or "files"
    return "pem_text" if field == "files" and name == PASTED else field


def import_files(actor, files: list[tuple[str, bytes]], password: str = "") -> ImportResult:
    """Import certificate files (PEM, DER, PKCS#7, PKCS#12): all of them, or none.

    Every file is read first; the first unreadable one raises PkiError naming the file, and
    nothing is stored. Keys in PKCS#12 (or PEM) files are stored sealed.
    """
    rbac.check(actor, rbac.CERTIFICATES_MANAGE)
    files = [(n, d) for n, d in files if d]
    if not files:
        raise PkiError("Choose at least one file, or paste a certificate.", "files")
    if len(files) > MAX_FILES:
        raise PkiError(f"At most {MAX_FILES} files at once.", "files")
    held_keys = sum(pki.private_key_blocks(d) for _n, d in files)
    if held_keys > MAX_KEYS:
        raise PkiError(
            f"These files hold {held_keys:,} private keys; one import takes at most {MAX_KEYS}. "
            "Import them in parts.",
            "files",
        )
    bundles = []
    for name, data in files:
        try:
            bundles.append(pki.read_certificates(data, password or None, "files", keys_alone=True))
        except PkiError as exc:
            raise PkiError(f"{name}: {exc}", _field_of(name, exc.field)) from exc
    certificates = [c for b in bundles for c in b.certificates]
    if not certificates:
        if all(name == PASTED for name, _ in files):
            raise PkiError(
                "The pasted text holds no certificate: a private key is imported with its "
                "certificate (paste both, or choose the files).",
                "pem_text",
            )
        raise PkiError(
            "These files hold no certificate: a private key is imported with its certificate "
            "(choose both files, or one file holding both).",
            "files",
        )
    total = sum(len(b.certificates) for b in bundles)
    if total > MAX_CERTIFICATES:
        raise PkiError(
            f"These files hold {total:,} certificates; one import takes at most "
            f"{MAX_CERTIFICATES:,}. Import them in parts.",
            "files",
        )
    result = ImportResult()
    keys_before = keys.count()
    groups = []
    names = 0
    # A key may come in its own file beside its certificate's: each belongs to a certificate of
    # the import, whichever file holds it.
    imported = {pki.public_key_id(c.public_key()) for c in certificates}
    by_public_key = {}
    for (name, _), bundle in zip(files, bundles, strict=True):
        for key in bundle.keys:
            key_id = pki.public_key_id(key.public_key())
            if key_id not in imported:
                raise PkiError(
                    f"{name}: a private key in this file belongs to none of the certificates "
                    "imported with it.",
                    _field_of(name),
                )
            by_public_key[key_id] = key
        try:
            group = pki.split_leaves(bundle.certificates)
            for leaf, _chain in group:
                names += pki.check_name_count(leaf, "A certificate in this file", "files")
        except PkiError as exc:
            raise PkiError(f"{name}: {exc}", _field_of(name, exc.field)) from exc
        groups.append(group)
    if names > MAX_IMPORT_NAMES:
        raise PkiError(
            f"These certificates hold {names:,} subject alternative names; one import takes at "
            f"most {MAX_IMPORT_NAMES:,}. Import them in parts.",
            "files",
        )
    _check_stored_bytes(groups)
    try:
        for group in groups:
            for leaf, chain in group:
                key = by_public_key.get(pki.public_key_id(leaf.public_key()))
                row, created = add_certificate(
                    leaf, chain, source="imported", private_key=key, actor=actor, commit=False
                )
                (result.added if created else result.duplicates).append(row)
    except Exception:
        db.session.rollback()
        raise
    result.keys = keys.count() - keys_before
    db.session.commit()
    return result


# -- reading -----------------------------------------------------------------------------------


def get(cert_id: int) -> Certificate | None:
    return db.session.get(Certificate, cert_id)


def for_order(order_id: int) -> list[Certificate]:
    """The certificates issued for one CA order (usually one), newest first."""
    return list(
        db.session.execute(
            select(Certificate)
            .options(defer(Certificate.pem), defer(Certificate.chain_pem))
            .where(Certificate.order_id == order_id)
            .order_by(Certificate.id.desc())
        ).scalars()
    )


def holding_keys(public_key_ids) -> dict[str, Certificate]:
    """Of ``public_key_ids`` (a form's few), those a certificate in the repository holds: each
    with the newest such certificate."""
    rows = db.session.execute(
        select(Certificate)
        .options(defer(Certificate.pem), defer(Certificate.chain_pem))
        .where(Certificate.public_key_id.in_(set(public_key_ids)))
        .order_by(Certificate.id)
    ).scalars()
    return {cert.public_key_id: cert for cert in rows}


def for_orders(order_ids) -> dict[int, list[Certificate]]:
    """The certificates issued for each of ``order_ids``, newest first (one query per 500)."""
    ids = list(order_ids)
    found: dict[int, list[Certificate]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        rows = db.session.execute(
            select(Certificate)
            .options(defer(Certificate.pem), defer(Certificate.chain_pem))
            .where(Certificate.order_id.in_(ids[start : start + 500]))
            .order_by(Certificate.id.desc())
        ).scalars()
        for cert in rows:
            found[cert.order_id].append(cert)
    return found


def order_label(cert: Certificate) -> str:
    """Words for the CA order ``cert`` was issued for (from the orders feature), or ""."""
    if cert.order_id is None:
        return ""
    return next((r for r in hooks.emit("certificate.order", order_id=cert.order_id) if r), "")


@hooks.on("certificate.issued_by")
def _issued_by(certificate_id: int) -> int | None:
    """The id of the order that issued the certificate (a primary-key read), or None."""
    return db.session.execute(
        select(Certificate.order_id).where(Certificate.id == certificate_id)
    ).scalar()


def orders_with_certificate(order_ids) -> set[int]:
    """Of ``order_ids``, those that have a certificate in the repository."""
    ids = list(order_ids)
    if not ids:
        return set()
    stmt = select(Certificate.order_id).where(Certificate.order_id.in_(ids)).distinct()
    return set(db.session.execute(stmt).scalars())


def serials_of_ordered(serials) -> set[str]:
    """Of the serial numbers ``serials`` (hex, any case, no leading zeros), those of
    certificates in the repository that belong to an order (lower-case, as ``serial_hex``)."""
    wanted = list({s.lower() for s in serials if s})
    if not wanted:
        return set()
    out: set[str] = set()
    for at in range(0, len(wanted), 500):
        stmt = select(Certificate.serial_hex).where(
            Certificate.serial_hex.in_(wanted[at : at + 500]), Certificate.order_id.is_not(None)
        )
        out.update(db.session.execute(stmt).scalars())
    return out


@dataclass
class CertFilter:
    q: str = ""
    # "", "expired", "revoked", "suspended", "not_yet_valid", "valid", or a number of days
    # (valid, expiring within them)
    expiry: str = ""
    issuer: str = ""
    source: str = ""
    has_key: str = ""  # "", "yes", "no"
    sort: str = "not_after"
    direction: str = "asc"


# The column order of the expiry indexes (see Certificate.__table_args__).
_EXPIRY = (Certificate.not_after, Certificate.revoked_at, Certificate.private_key_id)
SORTS = {
    "not_after": _EXPIRY,
    "cn": (Certificate.common_name,),
    "issuer": (Certificate.issuer_cn, *_EXPIRY),
    "source": (Certificate.source, *_EXPIRY),
    "created": (Certificate.created_at,),
    "serial": (Certificate.serial_hex,),
}


def _search(stmt, q: str):
    """Names that start with ``q`` or end with it ("example.com" finds www.example.com), a serial
    number, or a fingerprint: index look-ups, whatever the size of the repository."""
    q = q.strip().lower()
    names = CertificateName
    candidates, tests = [], []
    for form in name_forms(q):  # bücher.example finds xn--bcher-kva.example
        candidates += [
            prefixed(names.certificate_id, names.value, form),
            prefixed(names.certificate_id, names.reversed, form[::-1]),
        ]
        # The same names on the row itself (certificate_name holds the CN and the SANs, lower
        # case).
        tests.append(listed_name_matches(Certificate.common_name + "," + Certificate.sans, form))
    hexish = q.replace(":", "").replace(" ", "")
    if hexish and all(c in "0123456789abcdef" for c in hexish):
        exact = [(Certificate.serial_hex, hexish.lstrip("0") or "0")]
        if len(hexish) == 64:
            exact.append((Certificate.fingerprint_sha256, hexish))
        elif len(hexish) == 40:
            exact.append((Certificate.fingerprint_sha1, hexish))
        candidates += [select(Certificate.id).where(column == value) for column, value in exact]
        tests += [column == value for column, value in exact]
    return narrowed(stmt, candidates, Certificate.id, or_(*tests))


def _conditions(f: CertFilter, now) -> list:
    conds = []
    # "Not revoked" is tested on the index entries the page walks: written as a plain IS NULL,
    # SQLite would take it for an equality on the index and sort each run of equal expiry times.
    live = unindexed(Certificate.revoked_at).is_(None)
    # Valid: neither suspended nor before its notBefore, as ``state_of`` tells them apart. Those
    # few are read first (the suspended index, the end of the notBefore index) and the entries
    # the page walks are tested by id, which every index holds: testing the two columns there
    # would read each row the walk passes, and a count reads up to a thousand.
    not_in_force = (
        select(Certificate.id)
        .where(Certificate.suspended_at.is_not(None))
        .union_all(select(Certificate.id).where(Certificate.not_before > now))
    )
    in_force = [Certificate.id.not_in(not_in_force)]
    valid = False
    expiry = (f.expiry or "").strip()
    if expiry == "expired":
        conds += [Certificate.not_after < now, live]
    elif expiry == "revoked":
        conds.append(Certificate.revoked_at.is_not(None))
    elif expiry == "suspended":
        # Only the suspended rows are in ix_certificate_suspended (expiry order).
        conds += [Certificate.suspended_at.is_not(None), Certificate.not_after >= now, live]
    elif expiry == "not_yet_valid":
        # Which ones: see ``_not_yet_valid``.
        conds += [Certificate.not_after >= now, live, unindexed(Certificate.suspended_at).is_(None)]
    elif expiry == "valid":
        conds += [Certificate.not_after >= now, live]
        valid = True
    elif expiry.isascii() and expiry.isdigit():
        days = min(int(expiry[:6]), 36500)
        conds += [
            Certificate.not_after >= now,
            Certificate.not_after < now + timedelta(days=days),
            live,
        ]
        valid = True
    if f.issuer:
        conds.append(Certificate.issuer_cn == f.issuer)
    if f.source:
        conds.append(Certificate.source == f.source)
    if f.has_key == "yes":
        conds.append(Certificate.private_key_id.is_not(None))
    elif f.has_key == "no":
        # Tested on the entries of the expiry-ordered index the other filters walk (most rows
        # match), not looked up through the key index.
        conds.append(unindexed(Certificate.private_key_id).is_(None))
    return conds + in_force if valid else conds


def _order(f: CertFilter) -> list:
    """ORDER BY in the order of an index (issuer and source sorts tie-break on expiry)."""
    cols = SORTS.get(f.sort, SORTS["not_after"])
    desc = f.direction == "desc"
    return [c.desc() if desc else c.asc() for c in (*cols, Certificate.id)]


def _not_yet_valid(stmt, now):
    """``stmt`` narrowed to the certificates whose notBefore is after ``now``: the few at the
    end of ix_certificate_not_before, an index range (see :func:`webapp.search.narrowed`)."""
    candidates = [select(Certificate.id).where(Certificate.not_before > now)]
    return narrowed(stmt, candidates, Certificate.id, unindexed(Certificate.not_before) > now)


def query(f: CertFilter, now=None):
    """The select for the filtered, sorted list (without the PEM columns)."""
    now = now or utcnow()
    stmt = select(Certificate).options(defer(Certificate.pem), defer(Certificate.chain_pem))
    stmt = stmt.where(*_conditions(f, now))
    if (f.expiry or "").strip() == "not_yet_valid":
        stmt = _not_yet_valid(stmt, now)
    if f.q.strip():
        stmt = _search(stmt, f.q)
    return stmt.order_by(*_order(f))


# What the list shows and sorts by, read as plain values (``ListedCertificate``); the rest of a
# row stays in the database.
LISTED = (
    Certificate.id,
    Certificate.common_name,
    Certificate.sans,
    Certificate.issuer_cn,
    Certificate.serial_hex,
    Certificate.not_before,
    Certificate.not_after,
    Certificate.revoked_at,
    Certificate.suspended_at,
    Certificate.key_label,
    Certificate.source,
    Certificate.private_key_id,
    Certificate.created_at,
)
LISTED_ROWS = Listed(LISTED, ListedCertificate)


def page_of(f: CertFilter, page: int, per_page: int, now=None) -> Page:
    """One page of the filtered, sorted list (see :func:`webapp.paging.paginate`)."""
    stmt = query(f, now).execution_options(listed=LISTED_ROWS)
    return paginate(stmt, page, per_page, key=Certificate.id)


def issuers() -> list[str]:
    """The issuers to filter by: one index seek per issuer (ix_certificate_issuer_expiry)."""
    return distinct_values(Certificate.issuer_cn)


def state_of(cert: Certificate, now=None) -> tuple[str, int]:
    """(state, days left); state: revoked, expired, suspended (the CA holds it on hold),
    not_yet_valid (its notBefore is still to come), critical (<7d), warning (<30d), soon,
    valid. Whole days: 0 in the last day before the expiry; once expired, minus the whole days
    since (0 in the first day after it, -1 in the second: "expired 1 day ago")."""
    now = now or utcnow()
    days = (cert.not_after - now).days
    if cert.revoked_at is not None:
        return "revoked", days
    if cert.not_after < now:
        return "expired", -(now - cert.not_after).days
    if cert.suspended_at is not None:
        return "suspended", days
    if cert.not_before > now:
        return "not_yet_valid", days
    if days < 7:
        return "critical", days
    if days < 30:
        return "warning", days
    if days < 90:
        return "soon", days
    return "valid", days


# The state column of the CSV export: the list's state, the days left aside.
_CSV_STATES = {"suspended": "suspended", "not_yet_valid": "not valid yet"}


def csv_state(cert, now=None) -> str:
    """revoked, expired, suspended, not valid yet or valid (as the list's badge says it)."""
    state, _days = state_of(cert, now)
    if state in ("revoked", "expired"):
        return state
    return _CSV_STATES.get(state, "valid")


CSV_COLUMNS = [
    "id",
    "common_name",
    "sans",
    "issuer_cn",
    "serial_hex",
    "not_before",
    "not_after",
    "state",
    "key_label",
    "source",
    "has_key",
    "fingerprint_sha256",
    "order_id",
]


def export_csv(actor, f: CertFilter) -> Iterator[str]:
    """Record the export (``certificate.export``, committed), then stream the filtered list as
    CSV in the page's order (read after the view has returned, through a session of its own)."""
    rbac.check(actor, rbac.READ)
    audit.record(
        "certificate.export",
        actor=actor,
        object_type="certificate",
        detail={k: v for k, v in vars(f).items() if v and k not in ("sort", "direction")},
    )
    db.session.commit()
    now = utcnow()
    certs = csvexport.query_rows(query(f, now), db.engine)
    rows = (
        [
            c.id,
            c.common_name,
            " ".join(c.san_list),
            c.issuer_cn,
            c.serial_hex,
            c.not_before,
            c.not_after,
            csv_state(c, now),
            c.key_label,
            c.source,
            "yes" if c.has_key else "no",
            c.fingerprint_sha256,
            c.order_id,
        ]
        for c in certs
    )
    return csvexport.stream(CSV_COLUMNS, rows)


# -- downloads ---------------------------------------------------------------------------------

FORMATS = {
    "pem": ("application/x-pem-file", "pem"),
    "der": ("application/pkix-cert", "cer"),
    "chain": ("application/x-pem-file", "chain.pem"),
    "fullchain": ("application/x-pem-file", "fullchain.pem"),
    "p7b": ("application/x-pkcs7-certificates", "p7b"),
}


def file_stem(cert: Certificate) -> str:
    return safe_name(cert.common_name, f"certificate-{cert.id}")


def export(cert: Certificate, fmt: str) -> tuple[bytes, str, str] | None:
    """(body, mimetype, filename) for a public download format; raises KeyError for others.
    None when the file would be empty: the chain of a certificate stored without one (its full
    chain and PKCS#7 still hold the certificate itself)."""
    mimetype, ext = FORMATS[fmt]
    leaf = pki.load_pem_list(cert.pem)
    chain = pki.load_pem_list(cert.chain_pem)
    if fmt == "chain" and not chain:
        return None
    if fmt == "pem":
        body = cert.pem.encode()
    elif fmt == "der":
        body = pki.export_der(leaf[0])
    elif fmt == "chain":
        body = cert.chain_pem.encode()
    elif fmt == "fullchain":
        body = (cert.pem + cert.chain_pem).encode()
    else:
        body = pki.export_pkcs7(leaf + chain)
    return body, mimetype, f"{file_stem(cert)}.{ext}"


def download_key(actor, cert: Certificate, fmt: str, password: str, repeated: str | None):
    """The certificate's private key as a protected file: PKCS#12 with the certificate and its
    chain, or the key alone as PKCS#8. See :func:`webapp.keys.service.download` for what it
    raises; PkiError too when CertDesk does not hold the key."""
    if cert.private_key is None:
        raise PkiError("CertDesk does not hold the private key of this certificate.", "password")
    return keys.download(
        actor,
        cert.private_key,
        fmt=fmt,
        password=password,
        repeated=repeated,
        name=cert.common_name or f"certificate-{cert.id}",
        cert=pki.load_pem_list(cert.pem)[0] if fmt == "pkcs12" else None,
        chain=pki.load_pem_list(cert.chain_pem) if fmt == "pkcs12" else (),
        about={"certificate_id": cert.id},
    )


@hooks.on("key.in_use")
def _key_in_use(key_id: int) -> bool:
    stmt = select(Certificate.id).where(Certificate.private_key_id == key_id).limit(1)
    return db.session.execute(stmt).first() is not None


def _state_detail(cert: Certificate, more: dict | None = None) -> dict:
    return {"common_name": cert.common_name, "serial": cert.serial_hex} | (more or {})


def _state_changed(cert: Certificate, action: str, actor, more: dict | None) -> None:
    """Audit a change the CA made to ``cert``'s state (revoked, suspended, resumed); ``more``
    adds to the detail (where the change was made, when not through CertDesk)."""
    audit.record(
        action,
        object_type="certificate",
        object_id=cert.id,
        actor=actor,
        detail=_state_detail(cert, more),
    )


def mark_revoked(
    cert: Certificate, revoked_at=None, *, actor, commit: bool = True, detail: dict | None = None
) -> None:
    """Record that the CA revoked ``cert`` (the orders feature calls this after a revoke).

    Idempotent: an already revoked certificate keeps its first revocation time.
    """
    if cert.revoked_at is not None:
        return
    cert.revoked_at = revoked_at or utcnow()
    _state_changed(cert, "certificate.revoked", actor, detail)
    if commit:
        db.session.commit()


def mark_suspended(
    cert: Certificate, suspended_at=None, *, actor, detail: dict | None = None
) -> None:
    """Record that the CA holds ``cert`` suspended (its order was suspended): not valid until
    resumed. Idempotent (a suspended certificate keeps its first time); a revoked one is left
    as it is. Audited (``certificate.suspended``); the caller commits."""
    if cert.suspended_at is not None or cert.revoked_at is not None:
        return
    cert.suspended_at = suspended_at or utcnow()
    _state_changed(cert, "certificate.suspended", actor, detail)


def mark_suspended_many(certs, *, actor) -> None:
    """``mark_suspended`` for each of ``certs`` (stored rows), their events written in one
    statement (an import stores hundreds of suspended certificates a batch)."""
    now = utcnow()
    changed = {c.id: c for c in certs if c.suspended_at is None and c.revoked_at is None}.values()
    for cert in changed:
        cert.suspended_at = now
    audit.record_many(
        "certificate.suspended",
        actor=actor,
        object_type="certificate",
        items=[(cert.id, _state_detail(cert)) for cert in changed],
    )


def mark_resumed(cert: Certificate, *, actor, detail: dict | None = None) -> None:
    """Record that the CA no longer holds ``cert`` suspended (its order was resumed, or left the
    suspended phase). Idempotent; a revoked one is left as it is. Audited
    (``certificate.resumed``); the caller commits."""
    if cert.suspended_at is None or cert.revoked_at is not None:
        return
    cert.suspended_at = None
    _state_changed(cert, "certificate.resumed", actor, detail)


def delete_certificate(actor, cert: Certificate) -> dict:
    """Remove the certificate, and its private key when nothing else (a CSR, an order, another
    certificate) needs it (``keys.delete_holder``: an InputError, nothing deleted, when that key
    would be left unreachable by one who may not delete it). Any CSR and Entrust order stay.
    Returns the audit detail."""
    rbac.check(actor, rbac.CERTIFICATES_MANAGE)
    detail = {
        "common_name": cert.common_name,
        "serial": cert.serial_hex,
        "fingerprint": cert.fingerprint_sha256,
    }
    cert_id = cert.id
    key_row = cert.private_key
    detail.update(keys.delete_holder(actor, cert, key_row, "certificate"))
    audit.record(
        "certificate.delete",
        actor=actor,
        object_type="certificate",
        object_id=cert_id,
        detail=detail,
    )
    db.session.commit()
    return detail


def recount_expiry_days() -> int:
    """Count the certificates per expiry day again from the rows themselves (after a bulk load
    that bypassed the ORM, say); the counters are otherwise kept as rows change. Returns the
    number of days."""
    per_day: dict[int, Counter] = {}
    rows = db.session.execute(
        select(
            Certificate.not_after, Certificate.revoked_at, Certificate.suspended_at
        ).execution_options(yield_per=5000)
    )
    for not_after, revoked_at, suspended_at in rows:
        per_day.setdefault(expiry_day(not_after), Counter())[
            counter_of(revoked_at, suspended_at)
        ] += 1
    db.session.execute(delete(CertificateExpiryDay))
    if per_day:
        db.session.execute(
            insert(CertificateExpiryDay),
            [
                {"day": d, **{c: n[c] for c in (LIVE, SUSPENDED, REVOKED)}}
                for d, n in sorted(per_day.items())
            ],
        )
    db.session.commit()
    return len(per_day)
