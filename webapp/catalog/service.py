"""Organizations, Domains and Products mirrored from ECS: the sync, and the tab queries.

A sync first fetches everything it needs from ECS (reporting progress), then applies it in one
transaction per credential: new items are added, changed ones updated, and items no longer in ECS
marked gone (never deleted). Any ECS failure ends the job with a message a person can act on and
leaves the previous data as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Select, and_, case, false, func, or_, select, true, update
from sqlalchemy.orm import defer

from webapp import hooks, housekeeping
from webapp.audit import service as audit
from webapp.catalog.models import (
    CLIENT,
    ORGANIZATION,
    CatalogDomain,
    CatalogOrganization,
    CatalogProduct,
)
from webapp.credentials import clients, wording
from webapp.credentials import service as credentials
from webapp.credentials.models import EcsCredential
from webapp.dbtypes import utcnow
from webapp.ecs import errors
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.paging import Listed, Page, Values, distinct_values, paginate
from webapp.search import contains, name_forms, narrowed, prefixed, starts_with
from webapp.security import rbac
from webapp.settings import service as settings
from webapp.validation import InputError

log = logging.getLogger(__name__)

KINDS = credentials.SYNC_KINDS
KIND_LABELS = {"organizations": "Organizations", "domains": "Domains", "products": "Products"}
EXPIRING_WITHIN = timedelta(days=90)  # ECS's own EXPIRING: within 90 days of expiry
MODELS = {
    "organizations": CatalogOrganization,
    "domains": CatalogDomain,
    "products": CatalogProduct,
}

SYNC_INTERVAL_HOURS = settings.register(
    "catalog.sync_interval_hours",
    24,
    "Sync interval (hours)",
    "How often every enabled credential's organizations, domains and products are synced.",
    minimum=1,
    maximum=720,
)


class SyncError(InputError):
    """A sync that cannot start (nothing to sync, a disabled credential); in words."""


class SyncRunning(SyncError):
    """A sync of the same credential and kind has not finished yet; ``job`` is that sync."""

    def __init__(self, message: str, job):
        super().__init__(message)
        self.job = job


def _enum_text(value) -> str:
    return "" if value is None else str(getattr(value, "value", value))


NAME_LENGTH = 300  # the name columns' width (PostgreSQL refuses a longer value)


def _fit(name: str) -> str:
    """A client's or organization's name as stored: whole when it fits its column, else cut to
    the column with a trailing "…" that shows it was cut (every sync cuts it alike, so the row
    is still matched by it)."""
    if len(name) <= NAME_LENGTH:
        return name
    log.warning("ECS name of %d characters kept to its first %d", len(name), NAME_LENGTH - 1)
    return name[: NAME_LENGTH - 1] + "\u2026"


# --- fetching -----------------------------------------------------------------------------------


@dataclass
class Fetched:
    organizations: dict | None = None  # key -> values
    domains: dict | None = None
    products: dict | None = None
    counts: dict = field(default_factory=dict)


def _fetch(ctx, client, cred: EcsCredential, kinds, step: list, total: int) -> Fetched:
    out = Fetched()
    client_names: dict[int, str] = {}
    if "organizations" in kinds or "domains" in kinds:
        ctx.progress(step[0], total, f"{cred.name}: reading clients")
        clients = client.list_clients()
        client_names = {
            c.client_id: _fit(c.client_name or c.friendly_client_name or "") for c in clients
        }
    if "organizations" in kinds:
        ctx.progress(step[0], total, f"{cred.name}: reading organizations")
        rows = {}
        for c in clients:
            # a client is keyed by its id alone, so a renamed client is updated, not replaced
            rows[(CLIENT, c.client_id, "")] = {
                "name": client_names[c.client_id] or f"Client {c.client_id}",
                "client_name": client_names[c.client_id],
                "verification_status": _enum_text(c.verification_status).upper(),
                "ov_expiry": c.ov_expiry_date,
                "ev_status": _enum_text(c.ev_verification_status).upper(),
                "ev_expiry": c.ev_expiry_date,
            }
        by_client = {c.client_id: c for c in clients}
        for org in client.list_organizations():
            cid = org.client_id if org.client_id is not None else 1
            owner = by_client.get(cid)
            rows[(ORGANIZATION, cid, _fit(org.name))] = {
                "client_name": client_names.get(cid, ""),
                "verification_status": _enum_text(org.verification_status).upper(),
                "ov_expiry": owner.ov_expiry_date if owner else None,
                "ev_status": _enum_text(owner.ev_verification_status).upper() if owner else "",
                "ev_expiry": owner.ev_expiry_date if owner else None,
            }
        out.organizations = rows
        step[0] += 1
    if "domains" in kinds:
        rows = {}
        ctx.progress(step[0], total, f"{cred.name}: reading domains")
        for n, d in enumerate(client.iter_domains(), 1):
            cid = d.client_id if d.client_id is not None else 1
            rows[(cid, d.domain_name.lower())] = {
                "client_name": client_names.get(cid, ""),
                "verification_status": _enum_text(d.verification_status).upper(),
                "verification_method": _enum_text(d.verification_method).upper(),
                "ov_eligible": bool(d.ov_eligible),
                "ev_eligible": bool(d.ev_eligible),
                "ov_expiry": d.ov_expiry,
                "ev_expiry": d.ev_expiry,
            }
            if n % 1000 == 0:
                ctx.progress(step[0], total, f"{cred.name}: read {n:,} domains")
        out.domains = rows
        step[0] += 1
    if "products" in kinds:
        ctx.progress(step[0], total, f"{cred.name}: reading products")
        rows = {}
        for p in client.list_inventories():
            rows[_enum_text(p.product_type)] = {
                "consumption_type": p.consumption_type or "",
                "total_count": p.total_count,
                "used_count": p.used_count,
                "remaining_count": p.remaining_count,
            }
        out.products = rows
        step[0] += 1
    return out


# --- applying -----------------------------------------------------------------------------------


def _merge(model, cred_id: int, key_of, fetched: dict, now) -> dict:
    """Upsert ``fetched`` (key -> values) into ``model`` rows of one credential; mark the rest
    gone. A row that did not change is not written: a sync of an unchanged account holds the
    write lock for no time at all. Returns {"added", "updated", "gone", "unchanged"}."""
    counts = {"added": 0, "updated": 0, "gone": 0, "unchanged": 0}
    existing = {
        key_of(row): row
        for row in db.session.execute(select(model).where(model.credential_id == cred_id)).scalars()
    }
    for key, values in fetched.items():
        row = existing.pop(key, None)
        if row is None:
            row = model(credential_id=cred_id, first_seen_at=now, updated_at=now)
            parts = key if isinstance(key, tuple) else (key,)
            for attr, value in zip(_KEY_ATTRS[model], parts, strict=True):
                setattr(row, attr, value)
            for attr, value in values.items():
                setattr(row, attr, value)
            db.session.add(row)
            counts["added"] += 1
            continue
        changed = row.gone_at is not None
        for attr, value in values.items():
            if getattr(row, attr) != value:
                setattr(row, attr, value)
                changed = True
        if changed:
            row.gone_at = None
            row.updated_at = now
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for row in existing.values():
        if row.gone_at is None:
            row.gone_at = now
            row.updated_at = now
            counts["gone"] += 1
    return counts


_KEY_ATTRS = {
    CatalogOrganization: ("kind", "client_id", "name"),
    CatalogDomain: ("client_id", "name"),
    CatalogProduct: ("product_type",),
}


def _key_of(model):
    if model is CatalogOrganization:
        return lambda row: (row.kind, row.client_id, row.name if row.kind == ORGANIZATION else "")
    attrs = _KEY_ATTRS[model]
    if len(attrs) == 1:
        return lambda row: getattr(row, attrs[0])
    return lambda row: tuple(getattr(row, a) for a in attrs)


def _apply(cred: EcsCredential, fetched: Fetched, now) -> dict:
    per_kind = {}
    plan = (
        ("organizations", CatalogOrganization, fetched.organizations),
        ("domains", CatalogDomain, fetched.domains),
        ("products", CatalogProduct, fetched.products),
    )
    for kind, model, rows in plan:
        if rows is None:
            continue
        per_kind[kind] = _merge(model, cred.id, _key_of(model), rows, now)
    credentials.record_sync(cred, list(per_kind), now)
    return per_kind


# --- the job ------------------------------------------------------------------------------------


def _total(counts_by_kind: dict) -> dict:
    out = {"added": 0, "updated": 0, "gone": 0}
    for counts in counts_by_kind.values():
        for k in out:
            out[k] += counts[k]
    return out


def sync_credential(ctx, cred: EcsCredential, kinds, actor, step=None, total=None) -> dict:
    """Fetch then apply one credential's items of ``kinds``; returns counts per kind.

    ``actor`` is the user who asked, or "scheduler". Raises jobs.JobError with a clear message on
    any ECS failure (previous data intact); the failure is audited."""
    step = step if step is not None else [0]
    total = total or len(kinds)
    try:
        client = clients.client_for(cred)
    except clients.ClientUnavailable as exc:
        _record_failure(cred, kinds, str(exc), actor)
        raise jobs.JobError(str(exc)) from None
    asked = utcnow()  # before the sync's first call
    try:
        with client:
            fetched = _fetch(ctx, client, cred, kinds, step, total)
    except errors.EcsError as exc:
        db.session.rollback()
        # A tab's Sync names its kind: "Sync of Sandbox's domains failed".
        what = cred.name if set(kinds) >= set(KINDS) else f"{cred.name}'s {' and '.join(kinds)}"
        message = (
            f"Sync of {what} failed; nothing was changed. "
            f"{wording.describe(exc, cred.base_url, cred.has_client_cert)}"
        )
        log.warning("catalog sync of credential %s failed: %r", cred.id, exc)
        _record_failure(cred, kinds, message, actor)
        raise jobs.JobError(message) from None
    cred = credentials.held(cred)
    if not cred.usable:  # deleted or disabled while Entrust answered: nothing is written for it
        db.session.rollback()
        state = "deleted" if cred.deleted_at is not None else "disabled"
        raise jobs.JobError(f"{cred.name} was {state} while it synced; nothing was kept.")
    now = utcnow()
    per_kind = _apply(cred, fetched, now)
    # Entrust accepted the login: a refusal noted before the sync's calls no longer stands (one
    # noted while they were on their way does).
    credentials.login_accepted(cred.id, "a sync", asked, actor)
    audit.record(
        "catalog.sync",
        object_type="credential",
        object_id=cred.id,
        detail={"name": cred.name, **per_kind},
        actor=actor,
    )
    db.session.commit()
    return per_kind


def _record_failure(cred: EcsCredential, kinds, message: str, actor) -> None:
    db.session.rollback()
    cred = db.session.get(EcsCredential, cred.id)
    credentials.record_sync(cred, kinds, None, error=message)
    audit.record(
        "catalog.sync",
        object_type="credential",
        object_id=cred.id,
        outcome="failure",
        detail={"name": cred.name, "kinds": list(kinds), "error": message},
        actor=actor,
    )
    db.session.commit()


def _run_sync(ctx, credential_ids: list[int], kinds: list[str]):
    """The job body: every credential in turn; counts summed, failures reported together.
    Run again after an interruption, it syncs again (a sync is idempotent)."""
    actor = ctx.actor
    scheduled = isinstance(actor, str)  # CertDesk's own: the schedule's sync of every credential
    total = len(credential_ids) * len(kinds)
    step = [0]
    grand = {"added": 0, "updated": 0, "gone": 0}
    failures, done, skipped = [], [], []
    for cred_id in credential_ids:
        cred = credentials.get(cred_id, include_deleted=True)
        if cred is None or not cred.usable:
            # Deleted or disabled while the sync waited: nothing is asked of Entrust for it. The
            # schedule syncs the credentials in use, so it passes over one no longer in use; a
            # sync someone asked for did not do what they asked.
            if cred is None:
                name, state = f"Credential {cred_id}", "removed"
            else:
                name, state = cred.name, "deleted" if cred.deleted_at is not None else "disabled"
            if scheduled:
                skipped.append(f"{name} was skipped: it was {state} after the sync was queued.")
            else:
                failures.append(f"{name} was not synced: it was {state} after the sync was asked.")
            step[0] = (credential_ids.index(cred_id) + 1) * len(kinds)
            continue
        try:
            per_kind = sync_credential(ctx, cred, kinds, actor, step, total)
        except jobs.JobError as exc:
            failures.append(str(exc))
            step[0] = (credential_ids.index(cred_id) + 1) * len(kinds)
            continue
        done.append(cred.name)
        for k, v in _total(per_kind).items():
            grand[k] += v
        ctx.progress(step[0], total, f"{cred.name}: saved")
    housekeeping.after_bulk_change(grand["added"])
    if failures:
        if done:
            failures.append(
                f"Synced meanwhile: {', '.join(done)} (added {grand['added']}, updated "
                f"{grand['updated']}, gone {grand['gone']})."
            )
        raise jobs.JobError(" ".join(failures + skipped))
    what = ", ".join(KIND_LABELS[k].lower() for k in kinds)
    synced = f"Synced {what} of {', '.join(done)}." if done else "No credential was synced."
    grand["message"] = " ".join([synced, *skipped])
    return grand


JOB_KIND = jobs.register("catalog.sync", _run_sync, permission=rbac.CATALOG_SYNC)


def start_sync(actor, credential_ids: list[int] | None, kinds, reason: str = ""):
    """Start a background sync of ``kinds`` for the given credentials (None: every enabled one).
    ``actor`` is the user who asked, or None for the scheduler. Returns the job. Raises
    SyncError when there is nothing to sync."""
    if actor is not None:
        rbac.check(actor, rbac.CATALOG_SYNC)
    kinds = [k for k in KINDS if k in set(kinds)]
    if not kinds:
        raise SyncError("Choose what to sync.")
    if credential_ids is None:
        creds = credentials.usable_credentials()
    else:
        found = [credentials.get(i, include_deleted=True) for i in credential_ids]
        # A row's Sync clicked on a page shown before its credential was deleted (in another
        # tab, by another administrator): said as such, not as if none were enabled.
        deleted = [c.name for c in found if c is not None and c.deleted_at is not None]
        if deleted:
            raise SyncError(
                f"{', '.join(deleted)} was deleted; a deleted credential can no longer be synced."
            )
        if None in found:
            raise SyncError("That credential does not exist; reload the page.")
        creds = found
        disabled = [c.name for c in creds if not c.enabled]
        if disabled:
            raise SyncError(f"{', '.join(disabled)} is disabled; enable it to sync.")
    if not creds:
        raise SyncError("There is no enabled credential to sync.")
    names = ", ".join(c.name for c in creds) if len(creds) <= 3 else f"{len(creds)} credentials"
    what = "all" if len(kinds) == len(KINDS) else " and ".join(KIND_LABELS[k] for k in kinds)
    title = f"Sync {what} of {names}" if what != "all" else f"Full sync of {names}"
    if reason:
        title += f" ({reason})"
    # The check and the start in one transaction, one caller at a time: of two syncs asked for
    # at once (a double click, the first sync of a new credential and a click on Sync, the
    # schedule), the second finds the first instead of writing the same rows beside it.
    jobs.hold_starts()
    for running in jobs.unfinished_of_kind(JOB_KIND):
        params = jobs.params_of(running)
        busy = [c.name for c in creds if c.id in (params.get("credential_ids") or [])]
        if busy and set(kinds) & set(params.get("kinds") or KINDS):
            message = (
                f"A sync of {', '.join(busy)} is already running (job {running.id}); "
                "its progress is shown below."
            )
            db.session.rollback()
            raise SyncRunning(message, running)
    job = jobs.queue(
        JOB_KIND, title, actor=actor, credential_ids=[c.id for c in creds], kinds=kinds
    )
    db.session.commit()
    return jobs.submit(job)


def scheduled_sync() -> None:
    """The periodic task: a full sync of every enabled credential, as one background job
    (skipped while a sync of any of them runs)."""
    if not credentials.usable_credentials():
        return
    try:
        start_sync(None, None, KINDS, reason="scheduled")
    except SyncRunning:
        log.info("scheduled sync skipped: a sync is already running")


def sync_interval() -> timedelta:
    return timedelta(hours=int(settings.get(SYNC_INTERVAL_HOURS)))


# --- the tabs -----------------------------------------------------------------------------------


@dataclass
class TabFilter:
    q: str = ""
    credential_id: int | None = None
    status: str = ""
    show: str = "current"  # current | gone | all
    sort: str = ""
    direction: str = "asc"
    kind: str = ""


# Each sort: its columns (every order then ends with the id); an index serves each, after
# ``gone`` (see catalog.models).
ORG_SORTS = {
    "name": (CatalogOrganization.name_key,),
    "client": (CatalogOrganization.client_key, CatalogOrganization.name_key),
    "status": (CatalogOrganization.verification_status, CatalogOrganization.name_key),
    "ov_expiry": (CatalogOrganization.ov_expiry,),
    "ev_expiry": (CatalogOrganization.ev_expiry,),
}
DOMAIN_SORTS = {
    "name": (CatalogDomain.name,),
    "client": (CatalogDomain.client_name, CatalogDomain.name),
    "status": (CatalogDomain.verification_status, CatalogDomain.name),
    "method": (CatalogDomain.verification_method, CatalogDomain.name),
    "ov_expiry": (CatalogDomain.ov_expiry,),
    "ev_expiry": (CatalogDomain.ev_expiry,),
}


def _unless_unlimited(count):
    """``count`` of a product, above every number for one sold without limit, whose total and
    remaining the tab shows as "Unlimited" (Entrust gives them counts all the same)."""
    unlimited = CatalogProduct.consumption_type == "UNLIMITED"
    return case((unlimited, 2**62), else_=count)


# Products are a handful per credential: sorted as shown rather than along an index.
PRODUCT_SORTS = {
    "type": (CatalogProduct.product_type,),
    "total": (_unless_unlimited(CatalogProduct.total_count),),
    "used": (CatalogProduct.used_count,),
    "remaining": (_unless_unlimited(CatalogProduct.remaining_count),),
}
# Each tab's sorts and the one it is in when none is chosen (its header says so).
TAB_SORTS = {
    "organizations": (ORG_SORTS, "name"),
    "domains": (DOMAIN_SORTS, "name"),
    "products": (PRODUCT_SORTS, "type"),
}
# Entrust's status, or an OV expiry date CertDesk sees has come (or comes within 90 days).
EXPIRY_FILTERS = {"expiring": "Expiring within 90 days", "expired": "Expired by status or date"}


def _gone(model, f: TabFilter):
    """The ``show`` filter as a condition on ``gone`` (None for all rows)."""
    if f.show == "gone":
        return model.gone == true()
    if f.show != "all":
        return model.gone == false()
    return None


# Kept for the sync, not shown in the tabs.
_UNSHOWN = ("first_seen_at", "updated_at")


@cache
def _listed(model) -> Listed:
    """A tab's rows as plain values: every column but the unshown ones."""
    names = [c.key for c in model.__table__.c if c.key not in _UNSHOWN]
    return Listed(tuple(getattr(model, name) for name in names), Values)


def _common(stmt: Select, model, f: TabFilter) -> Select:
    stmt = stmt.options(*(defer(getattr(model, name)) for name in _UNSHOWN))
    if f.credential_id:
        stmt = stmt.where(model.credential_id == f.credential_id)
    gone = _gone(model, f)
    return stmt if gone is None else stmt.where(gone)


def _bound_gone(model, f: TabFilter) -> list:
    """The ``show`` filter for a select of keys: both values for all rows, so that an index that
    leads with ``gone`` still serves the range after it."""
    gone = _gone(model, f)
    return [model.gone.in_([false(), true()]) if gone is None else gone]


def _sorted(stmt: Select, sorts: dict, f: TabFilter, default: str, model) -> Select:
    """Order by the sort's columns, then the id; for all rows, by ``gone`` first (current rows,
    then those gone). One direction for every column, so that one index serves the order."""
    columns = (*(sorts.get(f.sort) or sorts[default]), model.id)
    if _gone(model, f) is None:
        columns = (model.gone, *columns)
    if f.direction == "desc":
        return stmt.order_by(*(c.desc() for c in columns))
    return stmt.order_by(*(c.asc() for c in columns))


def organizations_query(f: TabFilter) -> Select:
    """Organizations: the search finds names and client names that start with the text."""
    model = CatalogOrganization
    stmt = _common(select(model), model, f)
    if f.q:
        q = f.q.strip().lower()
        stmt = narrowed(
            stmt,
            [
                prefixed(model.id, model.name_key, q, *_bound_gone(model, f)),
                prefixed(model.id, model.client_key, q, *_bound_gone(model, f)),
            ],
            model.id,
            or_(starts_with(model.name_key, q), starts_with(model.client_key, q)),
        )
    if f.status:
        stmt = stmt.where(model.verification_status == f.status)
    if f.kind in (CLIENT, ORGANIZATION):
        stmt = stmt.where(model.kind == f.kind)
    return _sorted(stmt, ORG_SORTS, f, TAB_SORTS["organizations"][1], model)


def domains_query(f: TabFilter, now=None) -> Select:
    """Domains: the search finds names that start or end with the text ("example.com" finds
    www.example.com)."""
    now = now or utcnow()
    model = CatalogDomain
    stmt = _common(select(model), model, f)
    if f.q:
        forms = name_forms(f.q.strip().lower())  # bücher.example finds xn--bcher-kva.example
        stmt = narrowed(
            stmt,
            [
                range_
                for q in forms
                for range_ in (
                    prefixed(model.id, model.name, q, *_bound_gone(model, f)),
                    prefixed(model.id, model.name_reversed, q[::-1]),
                )
            ],
            model.id,
            or_(
                *(
                    or_(starts_with(model.name, q), starts_with(model.name_reversed, q[::-1]))
                    for q in forms
                )
            ),
        )
    status, ov_expiry = model.verification_status, model.ov_expiry
    if f.status in ("expiring", "expired"):
        # ECS's own status, or an OV expiry CertDesk can see has come (ECS updates its status
        # only now and then): two index ranges, read as far as the page needs.
        if f.status == "expiring":
            by_status = "EXPIRING"
            by_date = and_(ov_expiry >= now, ov_expiry < now + EXPIRING_WITHIN)
        else:
            by_status, by_date = "EXPIRED", ov_expiry < now
        stmt = narrowed(
            stmt,
            [
                select(model.id).where(status == by_status, *_bound_gone(model, f)),
                select(model.id)
                .where(*_bound_gone(model, f), by_date)
                .order_by(model.gone, ov_expiry),
            ],
            model.id,
            or_(status == by_status, by_date),
        )
    elif f.status:
        stmt = stmt.where(status == f.status)
    return _sorted(stmt, DOMAIN_SORTS, f, TAB_SORTS["domains"][1], model)


def products_query(f: TabFilter) -> Select:
    """Products: a handful per credential, so a plain "contains" search."""
    stmt = _common(select(CatalogProduct), CatalogProduct, f)
    if f.q:
        stmt = stmt.where(contains(CatalogProduct.product_type, f.q.strip().replace(" ", "_")))
    if f.status == "available":
        stmt = stmt.where(
            or_(CatalogProduct.remaining_count > 0, CatalogProduct.consumption_type == "UNLIMITED")
        )
    elif f.status == "exhausted":
        stmt = stmt.where(
            CatalogProduct.remaining_count <= 0,
            or_(
                CatalogProduct.consumption_type != "UNLIMITED",
                CatalogProduct.consumption_type.is_(None),
            ),
        )
    return _sorted(stmt, PRODUCT_SORTS, f, TAB_SORTS["products"][1], CatalogProduct)


def statuses(model) -> list[str]:
    """The statuses to filter by: one index seek per status (the index leads with it)."""
    return distinct_values(model.verification_status)


@dataclass
class Tab:
    """What an Organizations, Domains or Products tab shows besides its rows."""

    page: Page
    credentials: list  # not deleted: the filter and Sync drop-downs
    credential_names: dict  # every credential's name by id, deleted ones too (for the rows)
    last_synced: datetime | None
    statuses: list[str]
    # (name, when) of the credentials shown whose latest sync of this kind failed
    failed: list = field(default_factory=list)


QUERIES = {"organizations": None, "domains": None, "products": None}  # filled below
_STATUSES: dict = {}


def _statuses_as_of(model, stamp) -> list[str]:
    """The statuses to filter by, read again only when a sync has run since (``stamp``: the
    latest sync of this kind by any credential), in any process."""
    key = (model, db.engine.url)
    cached = _STATUSES.get(key)
    if cached is None or cached[0] != stamp:
        cached = _STATUSES[key] = (stamp, statuses(model))
    return cached[1]


def tab(kind: str, f: TabFilter, page: int, per_page: int) -> Tab:
    """One page of a tab, the credentials, when it was last synced and its statuses."""
    every = credentials.summaries(include_deleted=True)
    live = [c for c in every if c.deleted_at is None]
    column = f"{kind}_synced_at"
    shown = [c for c in live if not f.credential_id or c.id == f.credential_id]
    synced = [getattr(c, column) for c in shown]
    failed = [
        (c.name, c.last_sync_failed_at)
        for c in shown
        if kind in (c.last_sync_failed_kinds or "").split(",")
    ]
    stamp = max((getattr(c, column) for c in every if getattr(c, column)), default=None)
    model = MODELS[kind]
    return Tab(
        page=paginate(QUERIES[kind](f).execution_options(listed=_listed(model)), page, per_page),
        credentials=live,
        credential_names={c.id: c.name for c in every},
        last_synced=max((s for s in synced if s), default=None),
        statuses=_statuses_as_of(model, stamp) if model is not CatalogProduct else [],
        failed=failed,
    )


QUERIES.update(organizations=organizations_query, domains=domains_query, products=products_query)


def domain_expiry(d: CatalogDomain, now=None) -> str:
    """ "expired", "expiring" or "" for a domain, from ECS's status and its OV expiry."""
    now = now or utcnow()
    if d.verification_status == "EXPIRED" or (d.ov_expiry and d.ov_expiry < now):
        return "expired"
    if d.verification_status == "EXPIRING" or (d.ov_expiry and d.ov_expiry < now + EXPIRING_WITHIN):
        return "expiring"
    return ""


# The order of each credential's index after (credential_id, gone): a count walks it (without
# it, PostgreSQL may read the table from its start until it has found enough of the credential's
# rows). Products, a handful per credential, have none.
_CREDENTIAL_INDEX_ORDER = {
    CatalogOrganization: ("name_key", "id"),
    CatalogDomain: ("name", "id"),
}


def counts_by_credential(credential_ids, up_to: int) -> dict[int, dict[str, int]]:
    """Current (not gone) rows of each credential per kind, for the Credentials tab: each counted
    along the credential's index, up to ``up_to`` rows (every row, at every view of the tab,
    took it 50 ms at 100,000 domains and organizations, and grew with them)."""
    out: dict[int, dict[str, int]] = {}
    for cred_id in credential_ids:
        for kind, model in MODELS.items():
            along = [getattr(model, c) for c in _CREDENTIAL_INDEX_ORDER.get(model, ())]
            current = (
                select(model.id)
                .where(model.credential_id == cred_id, model.gone == false())
                .order_by(*along)
                .limit(up_to)
                .subquery()
            )
            n = db.session.execute(select(func.count()).select_from(current)).scalar_one()
            if n:
                out.setdefault(cred_id, {})[kind] = n
    return out


# --- what an order may use ---------------------------------------------------------------------

# Domains Entrust issues for: approved, being verified again, or approved and expiring soon.
USABLE_DOMAIN_STATUSES = ("APPROVED", "RE_VERIFICATION", "EXPIRING")
# SSL products that draw on the pooled FLEX inventory when their own is used up.
FLEX_POOLED = frozenset(
    {
        "STANDARD_SSL",
        "ADVANTAGE_SSL",
        "UC_SSL",
        "EV_SSL",
        "QWAC_SSL",
        "PSD2_SSL",
        "WILDCARD_SSL",
        "PRIVATE_SSL",
    }
)


def product_types() -> list[str]:
    """Every product type any credential's inventory has listed (for filters)."""
    stmt = select(CatalogProduct.product_type).distinct().order_by(CatalogProduct.product_type)
    return [t for t in db.session.execute(stmt).scalars() if t != "FLEX"]


def _approved_organizations(credential_id: int) -> Select:
    model = CatalogOrganization
    return select(model).where(
        model.credential_id == credential_id,
        model.kind == ORGANIZATION,
        model.verification_status == "APPROVED",
        model.gone == false(),
    )


def approved_organizations(
    credential_id: int, *, starting: str = "", limit: int | None = None
) -> list[CatalogOrganization]:
    """The credential's organizations Entrust has approved (current rows): by client and name,
    or, with ``starting``, those whose name starts with it (any case), by name. At most
    ``limit``: an account may have tens of thousands."""
    model = CatalogOrganization
    stmt = _approved_organizations(credential_id)
    if starting:
        stmt = stmt.where(starts_with(model.name_key, starting.strip().lower()))
        stmt = stmt.order_by(model.name_key, model.id)
    else:
        stmt = stmt.order_by(model.client_id, model.name)
    return list(db.session.execute(stmt.limit(limit)).scalars())


def approved_organization(credential_id: int, client_id: int, name: str):
    """The credential's approved organization of that client and name (current), or None."""
    stmt = _approved_organizations(credential_id).where(
        CatalogOrganization.client_id == client_id, CatalogOrganization.name == name
    )
    return db.session.execute(stmt).scalar()


def client_of(credential_id: int, organization: str) -> int | None:
    """The client an order's organization (as its certificate names it) belongs to, as the
    credential last synced them: the one client with an organization of that name, or whose own
    name it is; None when none or several have it."""
    if not organization:
        return None
    model = CatalogOrganization
    stmt = (
        select(model.client_id)
        .where(
            model.credential_id == credential_id,
            model.gone == false(),
            model.name_key == organization.lower(),
            model.name == organization,
        )
        .distinct()
        .limit(2)
    )
    found = db.session.execute(stmt).scalars().all()
    return found[0] if len(found) == 1 else None


def primary_client_name(credential_id: int) -> str:
    """The name of the account's primary client (client 1), as its approved organizations were
    last synced ("" when not known)."""
    model = CatalogOrganization
    stmt = (
        _approved_organizations(credential_id)
        .with_only_columns(model.client_name)
        .where(model.client_id == 1, model.client_name != "")
        .limit(1)
    )
    return db.session.execute(stmt).scalar() or ""


def _usable_domains(credential_id: int, client_id: int | None):
    model = CatalogDomain
    stmt = select(model.name).where(
        model.credential_id == credential_id,
        model.gone == false(),
        model.verification_status.in_(USABLE_DOMAIN_STATUSES),
    )
    return stmt if client_id is None else stmt.where(model.client_id == client_id)


def usable_domains(
    credential_id: int, *, matching: str = "", limit: int | None = None
) -> list[str]:
    """The names of the credential's domains certificates can be ordered for, in order, each
    once; with ``matching``, those that start or end with it (any case). At most ``limit``: an
    account may have tens of thousands."""
    model = CatalogDomain
    stmt = _usable_domains(credential_id, None)
    if not matching:
        return list(db.session.execute(stmt.distinct().order_by(model.name).limit(limit)).scalars())
    text = matching.strip().lower()
    starts = stmt.where(starts_with(model.name, text)).order_by(model.name)
    ends = stmt.where(starts_with(model.name_reversed, text[::-1])).order_by(model.name_reversed)
    found = [*db.session.execute(starts.limit(limit)).scalars()]
    found += db.session.execute(ends.limit(limit)).scalars()
    return list(dict.fromkeys(sorted(found)))[:limit]


def covering_domains(
    credential_id: int, names: list[str], client_id: int | None = None
) -> dict[str, str | None]:
    """For each DNS name, the longest of the credential's usable domains (of one client, when
    given) it is or falls under (``*.a.example.com`` falls under ``a.example.com``), or None.
    Looks up each name's parents, not every domain: an account may have tens of thousands."""
    parents = {name: parent_domains(name) for name in names}
    wanted = sorted({p for ps in parents.values() for p in ps})
    found: set[str] = set()
    for at in range(0, len(wanted), 500):
        stmt = _usable_domains(credential_id, client_id)
        stmt = stmt.where(CatalogDomain.name.in_(wanted[at : at + 500]))
        found.update(db.session.execute(stmt).scalars())
    return {name: next((p for p in ps if p in found), None) for name, ps in parents.items()}


def domain_clients(credential_id: int, name: str, limit: int = 5) -> list[str]:
    """The names of the clients whose usable domains include ``name`` (an account's domain may
    be another client's too), in order."""
    model = CatalogDomain
    stmt = (
        _usable_domains(credential_id, None)
        .with_only_columns(model.client_name)
        .where(model.name == name)
        .order_by(model.client_name)
        .limit(limit)
    )
    return list(dict.fromkeys(db.session.execute(stmt).scalars()))


def is_usable_domain(credential_id: int, name: str, client_id: int | None = None) -> bool:
    """Whether ``name`` is one of the credential's usable domains (of one client, when given)."""
    stmt = _usable_domains(credential_id, client_id).where(CatalogDomain.name == name).limit(1)
    return db.session.execute(stmt).first() is not None


def parent_domains(name: str) -> list[str]:
    """``name`` (without a leading ``*.``) and each domain above it, longest first: the domains
    it falls under."""
    labels = (name[2:] if name.startswith("*.") else name).split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def orderable_products(credential_id: int) -> list[str]:
    """The credential's product types with inventory left (their own, unlimited, or, for SSL
    products, the pooled FLEX inventory). FLEX grants every pooled SSL product, those the
    inventory lists no line of too: Entrust issues them from the pool."""
    rows = db.session.execute(
        select(CatalogProduct).where(
            CatalogProduct.credential_id == credential_id, CatalogProduct.gone_at.is_(None)
        )
    ).scalars()

    def left(p: CatalogProduct) -> bool:
        return p.consumption_type == "UNLIMITED" or (p.remaining_count or 0) > 0

    products = {p.product_type: p for p in rows}
    flex = products.get("FLEX")
    pooled = flex is not None and left(flex)
    own = {t for t, p in products.items() if t != "FLEX" and left(p)}
    return sorted(own | FLEX_POOLED if pooled else own)


# --- reactions to credentials ------------------------------------------------------------------


@hooks.on("credential.created")
def _first_sync(actor, credential: EcsCredential):
    try:
        return start_sync(actor, [credential.id], KINDS, reason="new credential")
    except SyncRunning as exc:  # a scheduled sync that started meanwhile covers it
        return exc.job


@hooks.on("credential.deleted")
def _mark_gone(actor, credential: EcsCredential) -> dict:
    """A deleted credential's items are kept, marked gone (orders may refer to them)."""
    now, marked = utcnow(), 0
    for model in MODELS.values():
        marked += db.session.execute(
            update(model)
            .where(model.credential_id == credential.id, model.gone_at.is_(None))
            .values(gone_at=now, gone=True)
        ).rowcount
    return {"catalog_rows_marked_gone": marked}


@hooks.on("credential.jobs")
def _unfinished_syncs(credential: EcsCredential) -> int:
    return sum(
        1
        for job in jobs.unfinished_of_kind(JOB_KIND)
        if credential.id in (jobs.params_of(job).get("credential_ids") or [])
    )


@hooks.on("credential.syncing")
def _syncing() -> set[int]:
    return {
        credential_id
        for job in jobs.unfinished_of_kind(JOB_KIND)
        for credential_id in jobs.params_of(job).get("credential_ids") or []
    }


@hooks.on("credential.counts")
def _counts(credential_ids, up_to) -> dict:
    return counts_by_credential(credential_ids, up_to)
