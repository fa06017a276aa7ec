"""Entrust credentials: create, edit, disable and delete them, test them, and record their
sync state. Building the ECS client is :mod:`.clients`; ECS errors in words is :mod:`.wording`;
the demo sandbox is :mod:`.demo`."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, or_, select, true
from sqlalchemy import update as sql_update

from webapp import hooks, pki, validation
from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.credentials import clients, wording
from webapp.credentials.models import REFUSED_DURING, EcsCredential
from webapp.dbtypes import utcnow
from webapp.ecs import DEFAULT_BASE_URL, EcsClient, errors
from webapp.ecs.client import in_clear_across_network
from webapp.ecs.transport import scrub
from webapp.extensions import db, large_write
from webapp.security import rbac
from webapp.security.secretbox import current_box
from webapp.validation import InputError, text

log = logging.getLogger(__name__)
SYNC_KINDS = ("organizations", "domains", "products")
_COLUMNS = EcsCredential.__table__.c
NAME_LENGTH = _COLUMNS.name.type.length  # 100
API_USER_LENGTH = _COLUMNS.api_user.type.length  # 200
URL_LENGTH = _COLUMNS.base_url.type.length  # 500 (the proxy's column too)
API_KEY_LENGTH = 1000  # sealed, so no column bound; far beyond any Entrust key


class CredentialError(InputError):
    """Invalid input or a refused change; ``field`` names the form field to show it next to."""


class ChangedMeanwhile(CredentialError):
    """The form was opened before someone else saved the credential: saving it would undo that
    change unseen, so nothing is saved."""


@dataclass
class CredentialInput:
    """What the form sends. Empty secret fields mean "keep what is stored"."""

    name: str = ""
    api_user: str = ""
    api_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    proxy: str = ""
    is_admin: bool = True
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    pkcs12: bytes | None = None
    pkcs12_password: str = ""
    ca_bundle_pem: bytes | None = None
    remove_client_cert: bool = False
    remove_ca_bundle: bool = False


@dataclass
class LoginResult:
    ok: bool
    message: str
    version: str = ""
    details: dict = field(default_factory=dict)
    # Entrust refused the login (401/403), as opposed to a call it did not answer or a client
    # that could not be built.
    refused: bool = False


# --- queries ------------------------------------------------------------------------------------


def list_credentials(include_deleted: bool = False) -> list[EcsCredential]:
    stmt = select(EcsCredential).order_by(func.lower(EcsCredential.name))
    if not include_deleted:
        stmt = stmt.where(EcsCredential.deleted_at.is_(None))
    return list(db.session.execute(stmt).scalars())


# The drop-downs of the lists (orders, Organizations, Domains, Products) show every credential's
# name: read as plain rows of the few columns they use, not whole credentials with their sealed
# secrets and certificates. Each statement is built once.
_SUMMARY_COLUMNS = (
    EcsCredential.id,
    EcsCredential.name,
    EcsCredential.enabled,
    EcsCredential.deleted_at,
    *(getattr(EcsCredential, f"{kind}_synced_at") for kind in SYNC_KINDS),
    EcsCredential.last_sync_failed_at,
    EcsCredential.last_sync_failed_kinds,
)
_SUMMARIES = select(*_SUMMARY_COLUMNS).order_by(func.lower(EcsCredential.name))
_LIVE_SUMMARIES = _SUMMARIES.where(EcsCredential.deleted_at.is_(None))


def summaries(include_deleted: bool = False) -> list:
    """Every credential (deleted ones too when asked) as a row of id, name, enabled, deleted_at,
    <kind>_synced_at for each kind, last_sync_failed_at and last_sync_failed_kinds, by name."""
    return list(db.session.execute(_SUMMARIES if include_deleted else _LIVE_SUMMARIES))


def usable_credentials() -> list[EcsCredential]:
    return [c for c in list_credentials() if c.enabled]


def get(credential_id: int, include_deleted: bool = False) -> EcsCredential | None:
    cred = db.session.get(EcsCredential, credential_id)
    if cred is None or (cred.deleted_at is not None and not include_deleted):
        return None
    return cred


def deleted_since_read(credential_id: int) -> bool:
    """Whether the credential is deleted now, as the database holds it (not as an object read
    earlier in the session says): for a long job that reads it once and goes on for minutes."""
    stmt = select(EcsCredential.deleted_at).where(EcsCredential.id == credential_id)
    return db.session.execute(stmt).scalar() is not None


def references(cred: EcsCredential) -> list[tuple[int, str]]:
    """(count, label) of the rows of other features that refer to ``cred``."""
    return [r for r in hooks.emit("credential.references", credential=cred) if r and r[0]]


def unfinished_jobs(cred: EcsCredential) -> int:
    """How many background jobs of ``cred`` (syncs, imports) are queued or running."""
    return sum(n or 0 for n in hooks.emit("credential.jobs", credential=cred))


def syncing() -> set[int]:
    """The ids of the credentials a sync, queued or running, is reading now."""
    return set().union(*hooks.emit("credential.syncing"))


# The Credentials tab counts each credential's synced rows up to this many, then says "more
# than": an account with hundreds of thousands of domains is not counted whole at each view.
COUNTED_UP_TO = 10_000


def counts(credential_ids) -> dict[int, dict[str, int]]:
    """{credential id: {label: count}} of ``credential_ids`` from every feature that keeps rows
    per credential, each counted up to COUNTED_UP_TO + 1 (more than COUNTED_UP_TO: "more than")."""
    out: dict[int, dict[str, int]] = {}
    ids = list(credential_ids)
    for part in hooks.emit("credential.counts", credential_ids=ids, up_to=COUNTED_UP_TO + 1):
        for cred_id, labels in part.items():
            out.setdefault(cred_id, {}).update(labels)
    return out


# --- validation ---------------------------------------------------------------------------------


def _http_basic(value: str, field_name: str, label: str) -> str:
    """HTTP Basic authentication sends the API user and key as Latin-1, joined by a colon."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise CredentialError(
            f"The {label} may hold only Latin-1 characters, the way HTTP sends it; Entrust's are "
            "plain letters and digits. Look for a pasted character such as a curly quote or a "
            "long dash.",
            field_name,
        ) from None
    return value


def _api_user(value: str) -> str:
    user = text(value, field="api_user", label="API user name", max_length=API_USER_LENGTH)
    if not user:
        raise CredentialError("Enter the API user name from Entrust.", "api_user")
    if ":" in user:
        raise CredentialError(
            "The API user name cannot contain a colon (:): HTTP Basic authentication uses one to "
            "separate the user name from the key.",
            "api_user",
        )
    return _http_basic(user, "api_user", "API user name")


def _api_key(value: str) -> str:
    key = text(value, field="api_key", label="API key", max_length=API_KEY_LENGTH)
    return _http_basic(key, "api_key", "API key")


def _url(value: str, field_name: str, what: str) -> str:
    value = text(value, field=field_name, label=what, max_length=URL_LENGTH)
    parts = validation.http_url(value)
    if parts is None:
        raise CredentialError(
            f"Enter the {what} as an http:// or https:// URL (a port, if any, from 1 to 65535).",
            field_name,
        )
    if parts.password:
        # This field is stored and shown in clear; a password in it would leak.
        raise CredentialError(
            f"The {what} must not contain a password: CertDesk stores it in clear. Use a proxy "
            "that admits this host without a password.",
            field_name,
        )
    return value


def _load_client_cert(data: CredentialInput) -> tuple[str, str] | None:
    """(certificate PEM, unencrypted PKCS#8 key PEM) from the uploads, or None if none given."""
    if data.pkcs12:
        password = data.pkcs12_password.encode() if data.pkcs12_password else None
        try:
            opened = pki.open_pkcs12(data.pkcs12, password, "pkcs12", "pkcs12")
        except pki.TooCostly as exc:
            raise CredentialError(str(exc), "pkcs12") from None
        except pki.PkiError:
            raise CredentialError(
                "The PKCS#12 file could not be opened: wrong password, or not a PKCS#12 file.",
                "pkcs12",
            ) from None
        key, cert, extra = opened.key, opened.cert, opened.others
        if key is None or cert is None:
            raise CredentialError(
                "The PKCS#12 file must hold the client certificate and its private key.", "pkcs12"
            )
        chain = [cert, *(extra or [])]
    elif data.client_cert_pem or data.client_key_pem:
        if not (data.client_cert_pem and data.client_key_pem):
            which = "client_key" if data.client_cert_pem else "client_cert"
            raise CredentialError(
                "Upload the client certificate and its private key together.", which
            )
        try:
            chain = x509.load_pem_x509_certificates(data.client_cert_pem)
        except ValueError:
            raise CredentialError(
                "The client certificate is not a PEM certificate.", "client_cert"
            ) from None
        if b"-----BEGIN" not in data.client_key_pem:
            raise CredentialError("The private key is not a PEM key.", "client_key")
        try:  # its size and kind checked before an RSA key's primes are tested
            key = pki.load_private_key(data.client_key_pem, None, "client_key")
        except pki.PkiError as exc:
            if exc.field == "key_password":
                raise CredentialError(
                    "The private key is encrypted: upload it unencrypted, or upload a PKCS#12 "
                    "file with its password.",
                    "client_key",
                ) from None
            raise CredentialError(str(exc), "client_key") from None
        cert = chain[0]
    else:
        return None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CredentialError(
            "The private key does not belong to the client certificate.",
            "pkcs12" if data.pkcs12 else "client_key",
        )
    cert_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem


def _load_ca_bundle(raw: bytes) -> str:
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        raise CredentialError("The CA bundle must hold PEM certificates.", "ca_bundle") from None
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


MOVED = "The base URL, proxy or CA bundle changed: "
MOVED_WHY = " CertDesk sends stored secrets only where they were entered for."


def _base_url(value: str) -> str:
    base_url = _url(value or DEFAULT_BASE_URL, "base_url", "base URL")
    if in_clear_across_network(base_url):
        raise CredentialError(
            "Enter the base URL as an https:// URL: over http:// the API key would cross the "
            "network in clear text. Plain http:// is only for a sandbox on this machine "
            "(localhost or 127.0.0.1).",
            "base_url",
        )
    return base_url if base_url.endswith("/") else base_url + "/"


def _moved(existing, base_url: str, proxy: str, ca_bundle: str | None, remove_ca: bool) -> bool:
    """Whether requests would now go elsewhere than where the stored secrets were entered for."""
    if existing is None:
        return False
    if base_url != existing.base_url or proxy != existing.proxy:
        return True
    if ca_bundle is not None and ca_bundle != existing.ca_bundle_pem:
        return True
    return bool(remove_ca and existing.ca_bundle_pem)


def _secrets_again(existing, data: CredentialInput, cert) -> None:
    """For a new destination: the API key, and the client certificate if one is stored, must be
    entered again (the stored ones are not sent there)."""
    if not data.api_key:
        raise CredentialError(MOVED + "enter the API key again." + MOVED_WHY, "api_key")
    if existing.client_cert_pem and cert is None and not data.remove_client_cert:
        raise CredentialError(
            MOVED + "upload the client certificate and its key again (or tick Remove the "
            "client certificate)." + MOVED_WHY,
            "client_cert",
        )


def _name(value: str, existing: EcsCredential | None) -> str:
    name = text(value, field="name", label="credential name", max_length=NAME_LENGTH)
    if not name:
        raise CredentialError("Enter a credential name.", "name")
    # Unique whatever its case: as the database's lower() compares (its unique index, which on
    # PostgreSQL follows the collation), and as Unicode folds case (SQLite's lower() folds ASCII
    # only), so that a name refused on one database is refused on the other.
    others = select(EcsCredential.name).where(EcsCredential.deleted_at.is_(None))
    if existing is not None:
        others = others.where(EcsCredential.id != existing.id)
    same = others.where(func.lower(EcsCredential.name) == func.lower(name))
    folded = name.casefold()
    if db.session.execute(same).first() or any(
        other.casefold() == folded for other in db.session.execute(others).scalars()
    ):
        raise CredentialError(f"A credential named {name!r} already exists.", "name")
    return name


def _new_api_key(value: str, existing: EcsCredential | None) -> str:
    api_key = _api_key(value)
    if existing is None and not api_key:
        raise CredentialError("Enter the API key.", "api_key")
    return api_key


def _clean(data: CredentialInput, existing: EcsCredential | None) -> dict:
    """The form's values checked, or a CredentialError naming each field's problem at once."""
    problems = validation.Problems()
    name = api_user = base_url = proxy = cert = ca_bundle = None
    with problems.gathered():
        name = _name(data.name, existing)
    with problems.gathered():
        api_user = _api_user(data.api_user)
    with problems.gathered():
        data.api_key = _new_api_key(data.api_key, existing)
    with problems.gathered():
        base_url = _base_url(data.base_url)
    with problems.gathered():
        proxy = _url(data.proxy, "proxy", "HTTPS proxy") if data.proxy.strip() else ""
    with problems.gathered():
        cert = _load_client_cert(data)
    with problems.gathered():
        ca_bundle = _load_ca_bundle(data.ca_bundle_pem) if data.ca_bundle_pem else None
    problems.raise_any(CredentialError)
    if _moved(existing, base_url, proxy, ca_bundle, data.remove_ca_bundle):
        _secrets_again(existing, data, cert)
    return {
        "name": name,
        "api_user": api_user,
        "base_url": base_url,
        "proxy": proxy,
        "is_admin": bool(data.is_admin),
        "cert": cert,
        "ca_bundle": ca_bundle,
    }


def _same_api_key(cred: EcsCredential, api_key: str) -> bool:
    """Whether ``api_key`` is the key the credential holds (False when it holds none, or when
    what it holds cannot be opened)."""
    if not cred.api_key_sealed:
        return False
    try:
        held, _ = clients.open_secrets(cred)
    except clients.ClientUnavailable:
        return False
    return hmac.compare_digest(held.encode(), api_key.encode())


def _apply(cred: EcsCredential, data: CredentialInput, clean: dict) -> list[str]:
    """Set the fields; return the names of what changed (for the audit event)."""
    box = current_box()
    changed = []
    for attr in ("name", "api_user", "base_url", "proxy", "is_admin"):
        if getattr(cred, attr) != clean[attr]:
            setattr(cred, attr, clean[attr])
            changed.append(attr)
    if clean["is_admin"] and "is_admin" in changed:
        cred.admin_note = ""
    if data.api_key:
        if not _same_api_key(cred, data.api_key):  # typed again as it was: not a change
            changed.append("api_key")
        cred.api_key_sealed = box.seal(data.api_key, clients.API_KEY_CTX)
    if clean["cert"] is not None:
        cert_pem, key_pem = clean["cert"]
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        cred.client_cert_pem = cert_pem
        cred.client_key_sealed = box.seal(key_pem, clients.CLIENT_KEY_CTX)
        cred.client_cert_subject = pki.name_text(cert.subject)[:500]
        cred.client_cert_expires_at = cert.not_valid_after_utc
        changed.append("client_certificate")
    elif data.remove_client_cert and cred.client_cert_pem:
        cred.client_cert_pem = cred.client_key_sealed = cred.client_cert_subject = ""
        cred.client_cert_expires_at = None
        changed.append("client_certificate_removed")
    if clean["ca_bundle"] is not None:
        cred.ca_bundle_pem = clean["ca_bundle"]
        changed.append("ca_bundle")
    elif data.remove_ca_bundle and cred.ca_bundle_pem:
        cred.ca_bundle_pem = ""
        changed.append("ca_bundle_removed")
    return changed


def _summary(cred: EcsCredential) -> dict:
    return {
        "name": cred.name,
        "user": cred.api_user,
        "base_url": cred.base_url,
        "proxy": scrub(cred.proxy) if cred.proxy else "",
        "client_certificate": cred.client_cert_subject or "",
        "administrator_rights": cred.is_admin,
    }


def _update_detail(changed: list[str], before: dict, after: dict) -> dict:
    """``credential.update``'s detail: what changed, the credential as it is now, and what each
    shown value that changed was before (``from``): a rename or a new address, from what to
    what. The API key and the client key are named as changed, never shown."""
    was = {k: v for k, v in before.items() if after[k] != v}
    return {"changed": changed, **after, **({"from": was} if was else {})}


# What the edit form changes. The API key and the client key are compared sealed (a new seal
# each time one is stored), so the stamp tells whether they changed and nothing of what they are.
_EDITED = (
    "name",
    "api_user",
    "api_key_sealed",
    "base_url",
    "proxy",
    "client_cert_pem",
    "client_key_sealed",
    "ca_bundle_pem",
    "is_admin",
)


def form_stamp(cred: EcsCredential) -> str:
    """A digest of what the edit form shows and changes, as stored: the form carries it, and a
    save compares it with the row's, so one over a change saved since the form was opened is
    refused rather than undoing that change unseen. A sync or a Test Login does not change it."""
    digest = hashlib.sha256()
    for name in _EDITED:
        digest.update(repr(getattr(cred, name)).encode() + b"\0")
    return digest.hexdigest()[:32]


def held(cred: EcsCredential) -> EcsCredential:
    """The row as it is now, held until the transaction ends: a save in another request waits
    for this one to commit, then compares its stamp with what this one wrote; a delete and a
    sync's writing of what it read wait for each other, so that neither undoes the other."""
    db.session.execute(  # a write that changes nothing: PostgreSQL's row lock, SQLite's writer
        sql_update(EcsCredential)
        .where(EcsCredential.id == cred.id)
        .values(updated_at=EcsCredential.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(cred)
    return cred


# --- use cases ----------------------------------------------------------------------------------


def create(actor, data: CredentialInput, *, start_sync: bool = True):
    """Store a new credential (audited) and announce it (``credential.created``: its first
    sync starts); returns (credential, the job started, or None).

    Raises CredentialError for invalid input; nothing is stored then."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    clean = _clean(data, None)
    cred = EcsCredential(created_by_id=actor.id)
    _apply(cred, data, clean)
    db.session.add(cred)
    db.session.flush()
    audit.record(
        "credential.create",
        object_type="credential",
        object_id=cred.id,
        detail=_summary(cred),
        actor=actor,
    )
    db.session.commit()
    log.info("credential %s (%s) created", cred.id, cred.name)
    job = None
    if start_sync:
        job = next(
            (j for j in hooks.emit("credential.created", actor=actor, credential=cred) if j), None
        )
    return cred, job


# What Entrust checks at a login: a change to any of them makes the last test's outcome stale.
LOGIN_FIELDS = frozenset(
    {"api_user", "api_key", "client_certificate", "client_certificate_removed"}
)
# Where the login is sent: a Test Login or a sync through another address spoke for that one.
ROUTE_FIELDS = frozenset({"base_url", "proxy", "ca_bundle", "ca_bundle_removed"})


def update(
    actor, cred: EcsCredential, data: CredentialInput, *, stamp: str | None = None
) -> list[str]:
    """Change a credential; empty secret fields keep the stored ones. Returns what changed.
    A change to its login (API user, API key, client certificate) or to where it is sent (base
    URL, proxy, CA bundle) clears the last Test Login's outcome and marks the time, so the row
    says it is not tested since. An API key typed again as it was is no change.

    ``stamp``: the :func:`form_stamp` the form was opened with. If the credential has been saved
    (or deleted) since, raises ChangedMeanwhile and changes nothing."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    if stamp is not None:
        held(cred)
        if cred.deleted_at is not None:
            db.session.rollback()
            raise ChangedMeanwhile(
                f"The credential {cred.name} was deleted after this form was opened; nothing "
                "was saved."
            )
        if stamp != form_stamp(cred):
            db.session.rollback()
            raise ChangedMeanwhile(
                f"The credential {cred.name} was saved elsewhere (by someone else, or in another "
                "tab) after this form was opened. Nothing was saved, so as not to undo that "
                "change unseen: the form now shows the credential as it is stored; make your "
                "change again and save."
            )
    clean = _clean(data, cred)
    before = _summary(cred)
    changed = _apply(cred, data, clean)
    if (LOGIN_FIELDS | ROUTE_FIELDS).intersection(changed):
        # What the row said about the login (its last test, its last sync's verdict) was about
        # the secrets it held before, sent where they were sent: not shown as if it were about
        # these.
        cred.login_changed_at = utcnow()
        cred.last_test_at = cred.last_test_ok = None
        cred.last_test_refused = False
        cred.last_test_message = ""
    if changed:
        audit.record(
            "credential.update",
            object_type="credential",
            object_id=cred.id,
            detail=_update_detail(changed, before, _summary(cred)),
            actor=actor,
        )
    db.session.commit()
    return changed


def set_enabled(actor, cred: EcsCredential, enabled: bool) -> None:
    """Disable (no sync, no new orders, kept for history) or enable again."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    if cred.enabled != enabled:
        cred.enabled = enabled
        audit.record(
            "credential.enable" if enabled else "credential.disable",
            object_type="credential",
            object_id=cred.id,
            detail={"name": cred.name},
            actor=actor,
        )
    db.session.commit()


def delete(actor, cred: EcsCredential, *, confirmed: bool) -> dict:
    """Delete a credential after explicit confirmation.

    The row stays (marked deleted, secrets erased) so orders and other records that refer to it
    keep their history read-only; its organizations, domains and products are marked gone.
    Returns counts. Raises CredentialError when not confirmed."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    refs = references(cred)
    if not confirmed:
        kept = ", ".join(f"{n} {label}" for n, label in refs)
        raise CredentialError(
            "Tick the box to confirm the deletion"
            + (f": {kept} refer to this credential and will be kept read-only." if kept else "."),
            "confirm",
        )
    held(cred)  # a sync writing what it read finishes first, or finds the credential deleted
    if cred.deleted_at is not None:  # deleted by another request meanwhile
        db.session.rollback()
        raise CredentialError(f"The credential {cred.name} was deleted already.")
    now = utcnow()
    kept: dict[str, int] = {}
    # Marking a large account's catalog rows gone moves each of them in every index that holds
    # ``gone`` (some 190,000 rows, 8 indexes each): a page cache that holds those pages keeps
    # the write lock for less time (docs/performance.md).
    with large_write():
        for part in hooks.emit("credential.deleted", actor=actor, credential=cred):
            kept.update(part or {})
        name = cred.name
        cred.deleted_at = now
        cred.enabled = False
        cred.api_key_sealed = ""
        cred.client_key_sealed = ""
        detail = {"name": name, **kept}
        detail.update({label: n for n, label in refs})
        audit.record(
            "credential.delete",
            object_type="credential",
            object_id=cred.id,
            detail=detail,
            actor=actor,
        )
    db.session.commit()
    return detail


def note_admin_refused(cred: EcsCredential, exc: errors.EcsError | None = None, actor=None) -> str:
    """Entrust answered 403 to an administrator operation: clear the credential's administrator
    flag, record why (audited, committed) and return the message to show."""
    when = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    said = f" ({'; '.join(exc.messages)})" if exc is not None and exc.messages else ""
    message = (
        f"Entrust refused an administrator operation for credential {cred.name!r}{said}; its "
        f'"has Entrust administrator rights" setting was cleared on {when}. Ask your Entrust '
        "account administrator for the rights, then tick it again."
    )
    if cred.is_admin:
        cred.is_admin = False
        cred.admin_note = message
        audit.record(
            "credential.admin_rights_cleared",
            object_type="credential",
            object_id=cred.id,
            outcome="failure",
            detail={"name": cred.name, "status": getattr(exc, "status", None)},
            actor=actor,
        )
        db.session.commit()
    return message


def record_sync(cred: EcsCredential, kinds, when, error: str = "") -> None:
    """Note on the credential that ``kinds`` were synced at ``when`` (or, with ``error``, that
    the sync failed, when (``when``, or now) and why); the caller commits, with its audit
    event. A failure stands until the kinds it was about are synced again."""
    for kind in kinds:
        if kind not in SYNC_KINDS:
            raise ValueError(f"unknown sync kind {kind!r}")
        if not error:
            setattr(cred, f"{kind}_synced_at", when)
    failed = set(cred.sync_failed_kinds)
    if error:
        failed |= set(kinds)
        cred.last_sync_error = error
        cred.last_sync_failed_at = when or utcnow()
    else:
        failed -= set(kinds)
        if not failed:
            cred.last_sync_error = ""
            cred.last_sync_failed_at = None
    cred.last_sync_failed_kinds = ",".join(k for k in SYNC_KINDS if k in failed)


def login_refused(credential_id: int, message: str, during: str, actor, since=None) -> str:
    """Entrust refused the credential's login (HTTP 401) during ``during`` ("the scheduled
    status check", "an import"): its API key was changed or its API user removed at Entrust,
    say. Noted on the credential as a failed login, which the Credentials page shows (as after
    a failed Test Login) until a Test Login, a sync, a status check or an import that Entrust
    answers through it (``login_accepted``), or an edit of the login; audited once while the
    same refusal stands. (A sync that fails says so on the page itself.) ``since``: when the
    refused call's login was read (its connector opened); a login changed after that is not the
    one refused, and nothing is noted. Returns the credential's name ("" when it is gone). The
    caller commits."""
    cred = db.session.get(EcsCredential, credential_id)
    if cred is None:
        return ""
    if since is not None and cred.login_changed_at is not None and cred.login_changed_at > since:
        return cred.name  # the login held before an edit was refused, not the one held now
    # Its time moves on even when the refusal is noted already: an answer to a call made before
    # this refusal does not clear it (``login_accepted``).
    cred.last_test_at = utcnow()
    cred.last_test_refused = True
    if cred.last_test_ok is False and cred.last_test_message.endswith(message):
        return cred.name  # noted already: not one audit event per refused call
    said = f"{REFUSED_DURING}{during}: {message}"
    cred.last_test_ok = False
    cred.last_test_message = said
    audit.record(
        "credential.login_refused",
        object_type="credential",
        object_id=cred.id,
        outcome="failure",
        detail={"name": cred.name, "during": during, "result": message},
        actor=actor,
    )
    return cred.name


def login_accepted(credential_id: int, during: str, since, actor, *, opened=None) -> None:
    """Entrust answered a call through the credential made at ``since`` during ``during`` (a
    sync, a status check, an import): a failed login noted on the credential before that call (a
    refusal during a check or an import, or a failed Test Login) no longer stands. Cleared and
    audited once; a failure noted after ``since`` (the call was on its way meanwhile) stands.
    ``opened``: when the call's login was read (its connector opened); a failure noted on a
    login changed after that is not about the login answered, and stands. The caller commits."""
    cred = db.session.get(EcsCredential, credential_id)
    if cred is None or cred.last_test_ok is not False:
        return
    said = cred.last_test_message
    # One statement that finds the note still there: of two checks that end at once, one
    # clears it and audits that.
    cleared = db.session.execute(
        sql_update(EcsCredential)
        .where(
            EcsCredential.id == credential_id,
            EcsCredential.last_test_ok.is_(False),
            or_(EcsCredential.last_test_at.is_(None), EcsCredential.last_test_at <= since),
            true()
            if opened is None
            else or_(
                EcsCredential.login_changed_at.is_(None),
                EcsCredential.login_changed_at <= opened,
            ),
        )
        .values(last_test_at=None, last_test_ok=None, last_test_refused=False, last_test_message="")
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if cleared:
        audit.record(
            "credential.login_accepted",
            object_type="credential",
            object_id=credential_id,
            detail={"name": cred.name, "during": during, "cleared": said[:500]},
            actor=actor,
        )


def _login(client: EcsClient, base_url: str, has_cert: bool) -> LoginResult:
    try:
        with client:
            version = client.get_version()
    except errors.EcsError as exc:
        return LoginResult(
            False,
            wording.describe(exc, base_url, has_cert),
            details={"error": repr(exc)},
            refused=isinstance(exc, errors.AuthenticationError),
        )
    return LoginResult(True, f"Entrust answered: ECS API version {version}.", version)


def test_login(actor, cred: EcsCredential) -> LoginResult:
    """Call the version endpoint with a stored credential; record the outcome on the row and in
    the audit trail."""
    rbac.check(actor, rbac.CATALOG_SYNC)
    try:
        client = clients.client_for(cred, for_test=True)
    except clients.ClientUnavailable as exc:
        result = LoginResult(False, str(exc))
    else:
        result = _login(client, cred.base_url, cred.has_client_cert)
    cred.last_test_at = utcnow()
    cred.last_test_ok = result.ok
    cred.last_test_refused = result.refused
    cred.last_test_message = result.message
    audit.record(
        "credential.test",
        object_type="credential",
        object_id=cred.id,
        outcome="success" if result.ok else "failure",
        detail={"name": cred.name, "result": result.message},
        actor=actor,
    )
    db.session.commit()
    return result


# Test Login on the form sends whatever key was typed: after this many failures of one user within
# the window, it waits, so the form is no way to guess an API key (each guess a failed login at
# Entrust, which may lock the API user) or to probe address after address.
TEST_FAILURES_ALLOWED = 10
TEST_FAILURE_WINDOW = timedelta(minutes=10)


def _test_login_wait(actor) -> timedelta | None:
    """How long ``actor`` waits before the next Test Login on the form, or None."""
    since = utcnow() - TEST_FAILURE_WINDOW
    failed = list(
        db.session.execute(
            select(AuditEvent.at)
            .where(
                AuditEvent.at >= since,
                AuditEvent.action == "credential.test",
                AuditEvent.actor_id == actor.id,
                AuditEvent.outcome == "failure",
            )
            .order_by(AuditEvent.at.desc())
            .limit(TEST_FAILURES_ALLOWED)
        ).scalars()
    )
    if len(failed) < TEST_FAILURES_ALLOWED:
        return None
    return failed[-1] + TEST_FAILURE_WINDOW - utcnow()


def test_login_input(actor, data: CredentialInput, existing: EcsCredential | None) -> LoginResult:
    """Test Login on the form: the values as entered, with the stored secrets where the secret
    fields were left empty. Nothing is stored but the audit event. Raises CredentialError."""
    rbac.check(actor, rbac.CREDENTIALS_MANAGE)
    api_user = _api_user(data.api_user)
    data.api_key = _api_key(data.api_key)
    base_url = _base_url(data.base_url)
    proxy = _url(data.proxy, "proxy", "HTTPS proxy") if data.proxy.strip() else ""
    cert = _load_client_cert(data)
    new_bundle = _load_ca_bundle(data.ca_bundle_pem) if data.ca_bundle_pem else None
    moved = _moved(existing, base_url, proxy, new_bundle, data.remove_ca_bundle)
    if moved:
        _secrets_again(existing, data, cert)
    api_key, stored_client_key = data.api_key, None
    if existing is not None and existing.api_key_sealed and not moved:
        try:
            stored_key, stored_client_key = clients.open_secrets(existing)
        except clients.ClientUnavailable as exc:
            raise CredentialError(str(exc), "api_key") from None
        api_key = api_key or stored_key
    if not api_key:
        raise CredentialError("Enter the API key.", "api_key")
    keep_cert = existing is not None and existing.client_cert_pem and not data.remove_client_cert
    if cert is None and keep_cert and not moved:
        cert = (existing.client_cert_pem, stored_client_key)
    ca_bundle = new_bundle or ""
    if new_bundle is None and existing is not None and not data.remove_ca_bundle:
        ca_bundle = existing.ca_bundle_pem
    wait = _test_login_wait(actor)
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        message = (
            f"Test Login failed {TEST_FAILURES_ALLOWED} times in the last "
            f"{TEST_FAILURE_WINDOW.seconds // 60} minutes: try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}. Entrust may lock an API user after repeated "
            "failed logins; check the API user and key in Entrust's portal meanwhile."
        )
        audit.record(
            "credential.test",
            object_type="credential",
            object_id=existing.id if existing is not None else "",
            outcome="refused",
            detail={"name": data.name.strip(), "user": api_user, "result": "too many failures"},
            actor=actor,
        )
        db.session.commit()
        raise CredentialError(message, "form")
    try:
        client = clients.build(
            base_url=base_url,
            api_user=api_user,
            api_key=api_key,
            cert_pem=cert[0] if cert else None,
            key_pem=cert[1] if cert else None,
            proxy=proxy,
            ca_bundle=ca_bundle,
            budget_key=("ecs_credential", existing.id) if existing is not None else None,
            for_test=True,
        )
    except Exception as exc:
        raise CredentialError(f"The TLS settings cannot be used: {exc}", "ca_bundle") from None
    result = _login(client, base_url, bool(cert))
    audit.record(
        "credential.test",
        object_type="credential",
        object_id=existing.id if existing is not None else "",
        outcome="success" if result.ok else "failure",
        detail={"name": data.name.strip(), "user": api_user, "result": result.message},
        actor=actor,
    )
    db.session.commit()
    return result
