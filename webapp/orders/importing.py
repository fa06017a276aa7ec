"""Import Existing Orders: a background job that brings a credential's orders into CertDesk.

Two phases, both resumable from the job's checkpoint (after a restart the job carries on; after a
fault it ends, and the next import of the same credential with the same exclusions carries on
from where it stopped):

1. the orders: the CA's list, page by page (1000 per page, oldest first), each page upserted by
   (credential, CA order id) in one transaction together with the checkpoint;
2. the certificates: for issued orders, and renewed ones whose certificate is still valid (a
   renewal does not revoke it), whose certificate the repository does not hold yet, the
   certificate and chain are fetched (a few at once, each thread with its own connector, all within
   the credential's request budget) and added to the repository. Entrust refusing the
   credential's login (HTTP 401, its key changed there, say) stops the import at once, in either
   phase: no call after it, the credential marked Login failed, what came before it kept and
   the checkpoint at the first order not stored. Entrust refusing the API user the right to read
   the certificates (HTTP 403) stops it the same way, the credential's login not marked failed
   (it works: the rights are missing).

A re-run changes nothing that has not changed at the CA ("updated" counts real changes only), and
memory does not grow with the number of orders: one page, or one batch, is held at a time.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, select, update

from webapp import hooks, housekeeping
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import CaError, CaOrder, NotAllowed, Phase, Unavailable
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.dbtypes import utcnow
from webapp.extensions import conflict_insert, db, take_turn
from webapp.jobs import service as jobs
from webapp.jobs.models import FAILED, QUEUED, RUNNING, Job
from webapp.orders import records, service
from webapp.orders.models import PLACED, Order, OrderEvent, OrderName, unsettled
from webapp.security import rbac
from webapp.settings import service as settings
from webapp.validation import InputError

log = logging.getLogger(__name__)

CA = "entrust"
PAGE_SIZE = 1000
CERT_BATCH = 200
# A smaller import stores its certificates in about 20 batches, at least this many at a time, so
# that its "added" moves along with "checked" rather than all at once at the end.
CERT_BATCH_LEAST = 20
EXCLUSIONS = {
    "expired": "Expired",
    "revoked": "Revoked",
    "declined": "Declined",
    "deactivated": "Deactivated",
    "third_party": "Third-party certificates (tracking ID 0: found by Entrust, not issued by it)",
    "existing": "Orders already imported (leave them as they are)",
}
DEFAULT_EXCLUSIONS = ("expired", "revoked", "declined", "deactivated", "third_party")
_EXCLUDED_PHASES = {
    "expired": Phase.EXPIRED,
    "revoked": Phase.REVOKED,
    "declined": Phase.DECLINED,
    "deactivated": Phase.DEACTIVATED,
}
# "elsewhere": orders CertDesk holds under another credential (the same tracking ID: another API
# user of the same account), not imported again; "taken_over": orders of a deleted credential
# that this one now follows.
COUNT_NAMES = (
    "new",
    "updated",
    "unchanged",
    "skipped",
    "failed",
    "elsewhere",
    "taken_over",
    "certificates",
)
# One page of one import upserted at a time: the check for an order held under another
# credential and the insert it allows are one step (two credentials of one account imported at
# once do not both add the same order).
PAGE_TURN = int.from_bytes(b"CDIMPORT")

IMPORT_INTERVAL_HOURS = settings.register(
    "orders.import_interval_hours",
    0,
    "Scheduled Import Existing Orders (hours)",
    "How often the orders of every enabled credential are imported, with the exclusions of that "
    "credential's last import, to bring in orders placed, reissued or renewed at Entrust outside "
    "CertDesk; the first within a minute of turning it on (unless one ran less than that many "
    "hours before). 0 = off.",
    minimum=0,
    maximum=720,
)


class ImportInputError(InputError):
    """An import that cannot start; in words, with the dialog field."""


class ImportRunning(ImportInputError):
    """An import of the same credential has not finished yet; ``job`` is that import."""

    def __init__(self, message: str, job):
        super().__init__(message, "credential_id")
        self.job = job


def _fresh_state() -> dict:
    return {
        "phase": "orders",
        "offset": 0,
        "total": None,
        "cert_phase": 0,  # which of _certificate_steps() is being fetched
        "after_id": 0,
        "cert_total": None,
        "cert_done": 0,
        "counts": dict.fromkeys(COUNT_NAMES, 0),
        "held_by": {},  # {credential id: orders held under it} (the "elsewhere" count)
        "problems": [],  # why certificates were not fetched (the first few reasons)
    }


# --- phase 1: the orders -----------------------------------------------------------------------


def _excluded(ca: CaOrder, exclusions: set[str]) -> bool:
    if ca.third_party and "third_party" in exclusions:
        return True
    return any(ca.phase is phase for key, phase in _EXCLUDED_PHASES.items() if key in exclusions)


def _insert_new(credential_id: int, new_rows: list[dict], now: datetime) -> dict[str, int]:
    """Insert a page's new orders; returns {CA id: order id} of those inserted.

    One executemany, then the new ids by the unique (credential, CA id) index: faster than an
    INSERT ... RETURNING. An order that someone's new order links meanwhile (placed at Entrust as
    the list was read) is theirs: it is left out rather than failing the page, and the ids read
    back are those of the rows this page imported."""
    db.session.execute(
        conflict_insert(db.session.connection(), Order).on_conflict_do_nothing(
            index_elements=["credential_id", "ca_order_id"]
        ),
        new_rows,
    )
    made = [v["ca_order_id"] for v in new_rows]
    return dict(
        db.session.execute(
            select(Order.ca_order_id, Order.id).where(
                Order.credential_id == credential_id,
                Order.ca_order_id.in_(made),
                Order.origin == "imported",
                Order.created_at == now,
            )
        ).all()
    )


def _being_linked(keyed: dict[str, CaOrder], existing: dict) -> set[str]:
    """The request ids, among orders not in CertDesk by their CA id, of orders placed in CertDesk
    and not linked yet: the call under way, or its answer lost. Entrust lists such an order with
    CertDesk's request id; it is that order's to link, and a row imported for it would make the
    link fail on the (credential, CA id) index."""
    asked = {ca.request_id for key, ca in keyed.items() if ca.request_id and key not in existing}
    if not asked:
        return set()
    return set(
        db.session.execute(
            select(Order.request_id).where(
                Order.request_id.in_(asked), Order.ca_order_id.is_(None), unsettled()
            )
        ).scalars()
    )


def _held_elsewhere(credential_id: int, keys: list[str]) -> dict[str, Order]:
    """Of ``keys`` (the CA's ids of orders the credential does not hold), the orders CertDesk
    holds under another credential: Entrust's tracking IDs are unique across Entrust, so the same
    ID is the same order, listed to two API users of one account. Read by the tracking ID's
    number (its index); third-party certificates (tracking ID 0) are told apart by thumbprint
    per credential, as before."""
    numbers = {records.number(k) for k in keys} - {None}
    if not numbers:
        return {}
    rows = db.session.execute(
        select(Order).where(Order.ca_order_number.in_(sorted(numbers)))
    ).scalars()
    wanted = set(keys)
    out: dict[str, Order] = {}
    for row in rows:
        if (
            row.ca_order_id in wanted
            and row.credential_id != credential_id
            and row.ca == CA
            and not row.third_party
        ):
            out.setdefault(row.ca_order_id, row)
    return out


def _take_over(row: Order, cred, old, actor, now: datetime) -> None:
    """Follow ``row``, an order of the deleted credential ``old``, through ``cred`` from now on
    (its history says so)."""
    row.credential_id = cred.id
    was = f"{old.name}, the credential it was imported through," if old else "its credential"
    records.event(
        row,
        "credential",
        actor=actor,
        now=now,
        message=f"Now followed through credential {cred.name}: {was} was deleted.",
    )


def upsert_page(
    credential_id: int,
    orders: list[CaOrder],
    exclusions: set[str],
    actor,
    now: datetime,
    held_by: dict | None = None,
) -> dict:
    """Upsert one page of the CA's orders (the caller commits). Returns its counts; ``held_by``
    (when given) counts the orders left to another credential, by its id (a string)."""
    counts = dict.fromkeys(COUNT_NAMES, 0)
    take_turn(PAGE_TURN)
    keyed: dict[str, CaOrder] = {}
    for ca in orders:
        key = records.order_key(ca)
        if key is None:
            counts["failed"] += 1
            continue
        keyed[key] = ca
    existing = {
        row.ca_order_id: row
        for row in db.session.execute(
            select(Order).where(
                Order.credential_id == credential_id, Order.ca_order_id.in_(list(keyed))
            )
        ).scalars()
    }
    linking = _being_linked(keyed, existing)
    elsewhere = _held_elsewhere(credential_id, [k for k in keyed if k not in existing])
    owners = {
        row.credential_id: credentials.get(row.credential_id, include_deleted=True)
        for row in elsewhere.values()
    }
    this = credentials.get(credential_id, include_deleted=True) if elsewhere else None
    new_rows = []
    for key, ca in keyed.items():
        row = existing.get(key)
        if row is None and key in elsewhere and ca.request_id not in linking:
            row = elsewhere[key]
            owner = owners.get(row.credential_id)
            if owner is not None and owner.deleted_at is None:
                counts["elsewhere"] += 1  # its credential follows it; a second row would not
                if held_by is not None:
                    held_by[str(owner.id)] = held_by.get(str(owner.id), 0) + 1
                continue
            _take_over(row, this, owner, actor, now)  # read-only under a deleted credential
            counts["taken_over"] += 1
        if row is not None:
            if "existing" in exclusions:
                counts["skipped"] += 1
                continue
            changed, old_status = records.read(row, ca, now, actor=actor, read_by="import")
            if old_status is not None:
                records.schedule(row, now, changed=True)
            counts["updated" if changed else "unchanged"] += 1
            continue
        if ca.request_id in linking or _excluded(ca, exclusions):
            counts["skipped"] += 1
            continue
        values = records.values_of(ca)
        values.update(
            ca=CA,
            credential_id=credential_id,
            ca_order_id=key,
            ca_order_number=records.number(key),
            placement=PLACED,
            origin="imported",
            details=records.details_json("{}", ca.details),
            status_changed_at=now,
            created_at=now,
            updated_at=now,
            last_checked_at=now,
            friendly_name="",
            request="{}",
            message="",
        )
        values["search_text"] = records.search_text(values)
        final = Phase(values["phase"]).final if values["phase"] else True
        values["check_interval_minutes"] = 0 if final else service.poll_minutes()
        values["next_check_at"] = None if final else now
        new_rows.append(values)
    ids = _insert_new(credential_id, new_rows, now) if new_rows else {}
    counts["skipped"] += len(new_rows) - len(ids)  # linked by someone's new order meanwhile
    new_rows = [values for values in new_rows if values["ca_order_id"] in ids]
    if new_rows:
        events = [
            {
                "order_id": ids[values["ca_order_id"]],
                "at": now,
                "kind": "imported",
                "old_status": "",
                "new_status": values["status"],
                "message": "Imported from Entrust.",
                "actor_name": records.actor_name(actor),
            }
            for values in new_rows
        ]
        db.session.execute(insert(OrderEvent), events)
        names = [
            name
            for values in new_rows
            for name in records.name_rows(ids[values["ca_order_id"]], values["search_text"])
        ]
        if names:
            db.session.execute(insert(OrderName), names)
        counts["new"] += len(new_rows)
    return counts


def read_ahead(pages: Iterator) -> Iterator:
    """The items of ``pages``, the next ones (two at most) read by a thread while the caller
    handles this one, so that the CA's time and CertDesk's overlap. An error reading is raised to
    the caller in turn; closing this generator stops the reader."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def read() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        ahead.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = end
        except Exception as exc:  # handed to the caller, who raises it
            item = exc
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    reader = threading.Thread(target=read, name="order-pages", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is end:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=30)


# --- phase 2: the certificates -----------------------------------------------------------------


def _certificate_steps() -> list[tuple[str, str]]:
    """The steps of the certificate phase, in order (the checkpoint's ``cert_phase`` counts
    them): (phase, the CA's status or "" for any). Issued and suspended orders, then renewed ones
    whose certificate the renewal left valid (see ``records.holds_certificate``)."""
    steps = [(phase, "") for phase in records.WITH_CERTIFICATE]
    renewed = records.renewed_valid_status(CA)
    if renewed:
        steps.append((Phase.REPLACED.value, renewed))
    return steps


def _in_step(credential_id: int, step: tuple[str, str], now: datetime) -> list:
    """The condition for one step's orders of a credential: a range of the (credential, phase,
    id) index; renewed orders are those in the CA's status whose certificate has not expired."""
    phase, status = step
    where = [Order.credential_id == credential_id, Order.phase == phase]
    if status:
        where += [Order.status == status, Order.expires_at > now]
    return where


def batch_size(total: int | None) -> int:
    """How many orders a batch of the certificate phase holds, for ``total`` orders to check:
    CERT_BATCH, or fewer for a small import (about 20 batches, CERT_BATCH_LEAST at least)."""
    return min(CERT_BATCH, max(CERT_BATCH_LEAST, (total or 0) // 20))


def _certificate_batch(
    credential_id: int,
    step: tuple[str, str],
    after_id: int,
    now: datetime | None = None,
    size: int = CERT_BATCH,
) -> list[tuple[int, str, bool]]:
    """The next ``size`` orders of one step, in id order: a range of the (credential, phase, id)
    index."""
    stmt = (
        select(Order.id, Order.ca_order_id, Order.third_party)
        .where(*_in_step(credential_id, step, now or utcnow()), Order.id > after_id)
        .order_by(Order.id)
        .limit(size)
    )
    return [tuple(r) for r in db.session.execute(stmt)]


def _with_certificate_count(credential_id: int, now: datetime | None = None) -> int:
    """How many orders of the credential the certificate phase checks (one count per step)."""
    now = now or utcnow()
    return sum(
        db.session.execute(
            select(func.count()).select_from(Order).where(*_in_step(credential_id, step, now))
        ).scalar_one()
        for step in _certificate_steps()
    )


def _held_for_another_order(order_ids: list[int]) -> set[int]:
    """Of ``order_ids`` (orders whose certificate the repository does not hold for them), those
    whose certificate it holds for another order: the same order at the CA imported through
    another credential of the account. A certificate belongs to one order, so fetching it again
    would add nothing, on every import."""
    if not order_ids:
        return set()
    rows = db.session.execute(
        select(Order.id, Order.serial).where(Order.id.in_(order_ids), Order.serial != "")
    ).all()
    held = certificates.serials_of_ordered(serial for _, serial in rows)
    return {order_id for order_id, serial in rows if serial.lower() in held}


def _refused(result) -> bool:
    """Whether ``result`` (of one fetch) is the CA refusing the call for the credential: its
    login (HTTP 401), or its API user's right to read certificates (HTTP 403). Either holds for
    every fetch after it."""
    return isinstance(result, NotAllowed)


class _Batch:
    """One batch of the certificate phase: its orders in id order, those whose certificate the
    repository lacks (handed to the fetching threads), and their results as they come in."""

    def __init__(self, cert_phase: int, items: list, todo: list) -> None:
        self.cert_phase = cert_phase
        self.items = items
        self.todo = todo
        self.results: dict[int, CaOrder | Exception] = {}
        self._left = len(todo)
        self._lock = threading.Lock()
        self.done = threading.Event()
        if not todo:
            self.done.set()

    def put(self, order_id: int, result) -> None:
        with self._lock:
            self.results[order_id] = result
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def checked(self) -> int:
        """How many of its orders are settled so far: held already, or fetched."""
        with self._lock:
            return len(self.items) - self._left

    def fetched_part(self) -> _Batch:
        """The batch up to its first order still being fetched: what can be stored now."""
        with self._lock:
            results = dict(self.results)
        waiting = {r[0] for r in self.todo} - set(results)
        return self._cut(waiting, results)

    def part_before_refusal(self) -> _Batch:
        """The batch up to its first order whose fetch the CA refused (the whole batch when
        there is none): what was fetched before the refusal, to be stored."""
        refused = {k for k, v in self.results.items() if _refused(v)}
        return self._cut(refused, self.results)

    def _cut(self, stop_at: set[int], results: dict) -> _Batch:
        cut = next((i for i, r in enumerate(self.items) if r[0] in stop_at), len(self.items))
        items = self.items[:cut]
        part = _Batch(self.cert_phase, items, [r for r in self.todo if r in items])
        part.results = {r[0]: results[r[0]] for r in part.todo}
        return part


class _Fetchers:
    """``concurrency`` threads, each with a connector of its own for the whole phase, taking
    orders one by one from a queue that the job thread fills a batch at a time. The queue holds
    the batch being fetched and the next one, so the threads never wait for a batch to be stored
    and no batch waits for the slowest thread of the one before."""

    def __init__(self, app, credential_id: int, concurrency: int) -> None:
        self._tasks: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        # The CA refused the credential's login, or its right to read certificates: every order
        # still queued gets that refusal without a call, as every call would get it too.
        self.refused: NotAllowed | None = None
        self._threads = [
            threading.Thread(
                target=self._work, args=(app, credential_id), name=f"order-fetch-{i}", daemon=True
            )
            for i in range(max(1, concurrency))
        ]
        for t in self._threads:
            t.start()

    def submit(self, batch: _Batch) -> _Batch:
        for item in batch.todo:
            self._tasks.put((batch, item))
        return batch

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def close(self) -> None:
        """Stop: what is still queued is not fetched; a call under way ends first."""
        self._stop.set()
        for _ in self._threads:
            self._tasks.put(None)
        for t in self._threads:
            t.join(timeout=60)

    def _work(self, app, credential_id: int) -> None:
        with app.app_context():
            conn, failure = None, None
            try:
                conn = registry.open_connector(CA, credential_id)
            except Exception as exc:  # every order of this thread gets it, the job decides
                failure = exc
            finally:
                db.session.remove()  # no transaction held open while fetching
            try:
                while True:
                    task = self._tasks.get()
                    if task is None:
                        return
                    batch, (order_id, ca_id, third_party) = task
                    if failure is None and self._stop.is_set():
                        failure = Unavailable("The import stopped.")
                    if failure is not None or self.refused is not None:
                        batch.put(order_id, failure or self.refused)
                        continue
                    try:
                        result = conn.fetch_third_party(ca_id) if third_party else conn.fetch(ca_id)
                    except Exception as exc:  # a CaError is the order's; any other, the job's
                        result = exc
                        if _refused(exc):
                            self.refused = exc
                    batch.put(order_id, result)
            finally:
                if conn is not None:
                    conn.close()


def _batches(
    credential_id: int, cert_phase: int, after_id: int, size: int = CERT_BATCH
) -> Iterator[tuple[int, list]]:
    """The batches of the certificate phase from a checkpoint on: (step index, orders)."""
    steps = _certificate_steps()
    while cert_phase < len(steps):
        items = _certificate_batch(credential_id, steps[cert_phase], after_id, size=size)
        if not items:
            cert_phase, after_id = cert_phase + 1, 0
            continue
        yield cert_phase, items
        after_id = items[-1][0]


def _await(batch: _Batch, fetchers: _Fetchers, ctx, report: Callable[[int], None]) -> _Batch:
    """The batch once every one of its orders is fetched; if CertDesk stops meanwhile, the part
    of it fetched so far. While it waits, ``report`` is told each second how many of the batch's
    orders are settled, so that the progress bar moves within a batch."""
    while not batch.done.wait(1.0):
        if ctx.stopping:
            return batch.fetched_part()
        if not fetchers.alive():
            raise RuntimeError("the certificate fetching threads ended before their work")
        report(batch.checked())
    return batch


def _import_certificates(ctx, cred, state: dict, actor, since) -> None:
    """Phase 2: the threads fetch batch N+1 while the job thread stores batch N; each batch is
    committed with the checkpoint that points past it, so a crash resumes after the last batch
    stored (what was fetched for the next one is fetched again). ``since``: as for
    ``_import_pages``."""
    counts = state["counts"]
    concurrency = int(settings.get(service.IMPORT_CONCURRENCY))
    app = current_app._get_current_object()
    size = batch_size(state["cert_total"])
    batches = _batches(cred.id, state["cert_phase"], state["after_id"], size)
    opened = utcnow()  # the fetchers read the credential's login from here on
    fetchers = _Fetchers(app, cred.id, concurrency)
    pending: deque[_Batch] = deque()

    def hand_out() -> None:
        nxt = next(batches, None)
        if nxt is not None:
            phase_index, items = nxt
            have = certificates.orders_with_certificate(r[0] for r in items)
            have |= _held_for_another_order([r[0] for r in items if r[0] not in have])
            todo = [r for r in items if r[0] not in have]
            pending.append(fetchers.submit(_Batch(phase_index, items, todo)))

    def report(checked: int) -> None:
        done = state["cert_done"] + checked
        ctx.progress(
            done,
            state["cert_total"],
            f"{cred.name}, step 2 of 2, certificates of issued and renewed orders: "
            f"{done:,} checked; {counts['certificates']:,} added",
        )

    try:
        hand_out()
        hand_out()
        while pending:
            batch = _await(pending.popleft(), fetchers, ctx, report)
            _unless_deleted(ctx, cred, state, actor)
            if not batch.items:  # stopping before the first order of the batch came
                ctx.progress(state["cert_done"], state["cert_total"])
            fetched = batch.results
            for result in fetched.values():
                if isinstance(result, Exception) and not isinstance(result, CaError):
                    raise result
            refusal = next((e for e in fetched.values() if _refused(e)), None)
            if refusal is not None:
                # Every fetch through the credential is refused from now on (its login, or its
                # right to read certificates): store what came before the refusal, then stop,
                # the checkpoint at the first order not stored.
                batch = batch.part_before_refusal()
                fetched = batch.results
            unavailable = [e for e in fetched.values() if isinstance(e, Unavailable)]
            if refusal is None and batch.todo and len(unavailable) == len(batch.todo):
                _stop(ctx, cred, state, actor, "fetching certificates", unavailable[0])
            good = []
            for order_id, _ca_id, _third_party in batch.todo:
                result = fetched[order_id]
                if isinstance(result, CaError):
                    counts["failed"] += 1
                    _not_fetched(state, order_id, result)
                else:
                    good.append((order_id, result))
            if good and since is not None:
                credentials.login_accepted(cred.id, "an import", since, actor)
                since = None
            stored = records.store_certificates(
                good,
                actor=actor,
                source="entrust_import",
                now=utcnow(),
                batch_event={"job": ctx.job_id, "credential": cred.name},
            )
            for added, problem in stored:
                if problem:
                    counts["failed"] += 1
                elif added:
                    counts["certificates"] += 1
            if batch.items:  # none: stopped or refused at its first order, the checkpoint stays
                state["cert_phase"] = batch.cert_phase
                state["after_id"] = batch.items[-1][0]
                state["cert_done"] += len(batch.items)
            ctx.save_checkpoint(state)  # the batch and how far we got, in one commit
            if refusal is not None:
                _stop(ctx, cred, state, actor, "fetching certificates", refusal, opened)
            report(0)
            hand_out()
    finally:
        batches.close()
        fetchers.close()
    state["cert_phase"], state["after_id"] = len(_certificate_steps()), 0


MAX_PROBLEMS = 3  # the reasons a certificate was not fetched, named in the import's result


def _not_fetched(state: dict, order_id: int, exc: CaError) -> None:
    """Say on the order why its certificate was not fetched, and keep the first few reasons
    for the import's result (the caller commits)."""
    message = f"The certificate could not be fetched: {exc}"
    db.session.execute(update(Order).where(Order.id == order_id).values(message=message[:2000]))
    problems = state.setdefault("problems", [])
    if len(problems) < MAX_PROBLEMS and str(exc) not in problems:
        problems.append(str(exc)[:500])


# --- the job -----------------------------------------------------------------------------------


def _summary(counts: dict) -> str:
    """The counts in words, without those of none (the job's card lists every count):
    "3 new, 2 skipped; 3 certificates added"."""
    parts = [
        f"{counts[k]:,} {k}"
        for k in ("new", "updated", "unchanged", "skipped", "failed")
        if counts.get(k)
    ]
    if counts.get("taken_over"):
        parts.append(f"{counts['taken_over']:,} taken over from a deleted credential")
    return (
        (", ".join(parts) or "no order") + "; " + records.certificates_added(counts["certificates"])
    )


def _elsewhere_text(held_by: dict) -> str:
    """Why orders the CA listed were not imported: CertDesk holds them under another credential
    (``held_by``: {credential id: how many}), in words; "" when there were none."""
    if not held_by:
        return ""
    parts = []
    for cred_id, n in sorted(held_by.items(), key=lambda kv: -kv[1]):
        other = credentials.get(int(cred_id), include_deleted=True)
        name = other.name if other is not None else f"credential #{cred_id}"
        part = f"{n:,} under {name}"
        if other is not None and not other.enabled:
            part += (
                " (disabled: enable it to check them again, or delete it and import again to "
                "follow them through this credential)"
            )
        parts.append(part)
    return (
        " Not imported again, as CertDesk already holds them through another credential "
        "(another API user of the same Entrust account): " + "; ".join(parts) + "."
    )


def _stop(ctx, cred, state: dict, actor, what: str, exc: Exception, opened=None) -> None:
    """End the job on a CA failure, keeping the checkpoint so the next import carries on.
    ``opened``: when the refused call's connector read the credential's login."""
    db.session.rollback()
    ctx.save_checkpoint(state)
    started = state["phase"] != "orders" or state["offset"] > 0
    said = str(exc)
    # "Try again later." and then "Start the import again.": one piece of advice, said once.
    later = said.endswith(" Try again later.")
    said = said.removesuffix(" Try again later.")
    then = (
        "start the import again"
        + (" later" if later else "")
        + (" to carry on from there" if started else "")
        + "."
    )
    if isinstance(exc, NotAllowed) and exc.login_refused:  # a key or user changed at Entrust
        then = (
            "Check the credential (Test Login under SSL › Entrust › Manage); once its login "
            "works, " + then
        )
        credentials.login_refused(cred.id, said, "an import", actor, since=opened)
    elif isinstance(exc, NotAllowed):
        # The login works (its failure is not noted): the API user lacks the right to read the
        # certificates, which only an Entrust administrator can give.
        said = (
            f"Entrust accepted the login of credential {cred.name} but refused its API user "
            f"({cred.api_user}) the right to read the certificates (HTTP 403)."
        )
        then = (
            "Ask an Entrust administrator to give that API user the right to read certificates, "
            "then " + then
        )
    else:
        then = then[0].upper() + then[1:]
    if started:
        message = (
            f"Import of {cred.name} stopped while {what}: {said} So far: "
            f"{_summary(state['counts'])}. {then}"
        )
    else:
        message = f"Import of {cred.name} could not read the order list: {said} {then}"
    _failed(cred, state, actor, str(exc)[:500], message)


def _failed(cred, state: dict, actor, error: str, message: str) -> None:
    """Audit the import's end in failure (with its counts so far), commit, and end the job
    saying ``message``."""
    audit.record(
        "order.import",
        actor=actor,
        object_type="credential",
        object_id=cred.id,
        outcome="failure",
        detail={"name": cred.name, **state["counts"], "error": error},
    )
    db.session.commit()
    raise jobs.JobError(message)


def _unless_deleted(ctx, cred, state: dict, actor) -> None:
    """End the job when its credential was deleted while it ran (its key is gone, and its orders
    are kept read-only): what was stored stays, and the job says how far it got."""
    if not credentials.deleted_since_read(cred.id):
        return
    db.session.rollback()
    ctx.save_checkpoint(state)
    message = (
        f"Import of {cred.name} stopped: the credential was deleted while it ran. So far: "
        f"{_summary(state['counts'])}."
    )
    _failed(cred, state, actor, "the credential was deleted", message)


def _import_pages(
    ctx, cred, pages, state: dict, excluded: set[str], actor, since, opened=None
) -> bool:
    """Phase 1: each page upserted and committed with the checkpoint. ``since``: when the
    import's calls began (None once one was answered); ``opened``: when their connector read the
    credential's login. True when one was answered."""
    counts = state["counts"]
    while True:
        try:
            page = next(pages, None)
        except CaError as exc:
            _stop(ctx, cred, state, actor, f"reading orders at {state['offset']:,}", exc, opened)
        if page is None:
            return since is None
        _unless_deleted(ctx, cred, state, actor)
        if since is not None:
            # Entrust took the credential's login: a refusal noted before no longer stands.
            credentials.login_accepted(cred.id, "an import", since, actor)
            since = None
        now = utcnow()
        held_by = state.setdefault("held_by", {})
        for k, v in upsert_page(cred.id, page.orders, excluded, actor, now, held_by).items():
            counts[k] = counts.get(k, 0) + v  # a checkpoint of an older CertDesk lacks some
        state["offset"] = page.offset + len(page.orders)
        state["total"] = page.total
        ctx.save_checkpoint(state)  # the page and how far we got, in one commit
        ctx.progress(
            state["offset"],
            page.total,
            f"{cred.name}, step 1 of 2, the order list: {state['offset']:,} orders read; "
            f"{counts['new']:,} new, {counts['updated']:,} updated",
        )


def _run_import(ctx, credential_id: int, exclusions: list[str], resume: dict | None = None):
    """The job body (see the module docstring)."""
    actor = ctx.actor
    cred = credentials.get(credential_id, include_deleted=True)
    if cred is None:
        raise jobs.JobError("The credential of this import no longer exists.")
    state = ctx.checkpoint or resume or _fresh_state()
    excluded = set(exclusions)
    counts = state["counts"]
    since = opened = utcnow()  # before the import's first call, and its connector
    try:
        conn = registry.open_connector(CA, credential_id)
    except Unavailable as exc:
        raise jobs.JobError(f"Import of {cred.name} could not start: {exc}") from None

    with conn:
        if state["phase"] == "orders":
            pages = read_ahead(conn.list_orders(state["offset"], PAGE_SIZE))
            try:
                if _import_pages(ctx, cred, pages, state, excluded, actor, since, opened):
                    since = None
            finally:
                pages.close()  # the reader stops before the connector closes
            state["phase"] = "certificates"
            state["cert_total"] = _with_certificate_count(credential_id)
            ctx.save_checkpoint(state)
            # The bar starts again for the second step at once, not at its first batch.
            ctx.progress(
                0,
                state["cert_total"],
                f"{cred.name}, step 2 of 2, certificates of issued and renewed orders: starting",
            )

    if state["phase"] == "certificates":
        _import_certificates(ctx, cred, state, actor, since)
    housekeeping.after_bulk_change(counts["new"])
    state["phase"] = "done"
    audit.record(
        "order.import",
        actor=actor,
        object_type="credential",
        object_id=cred.id,
        detail={"name": cred.name, "exclusions": sorted(excluded), **counts},
    )
    ctx.save_checkpoint(state)
    result = dict(counts)
    result["message"] = f"Imported the orders of {cred.name}: {_summary(counts)}."
    result["message"] += _elsewhere_text(state.get("held_by") or {})
    if state.get("problems"):
        result["message"] += " Certificates not fetched: " + " ".join(state["problems"])
    return result


JOB_KIND = jobs.register("orders.import", _run_import, permission=rbac.ORDERS_MANAGE)


def _matching(job, credential_id: int, exclusions: list[str]) -> bool:
    params = jobs.params_of(job)
    return params.get("credential_id") == credential_id and sorted(
        params.get("exclusions") or []
    ) == sorted(exclusions)


def running_import(credential_id: int | None = None):
    """The newest import not finished yet (of ``credential_id``, when given), or None: the
    Import Existing Orders page shows its progress when it is opened again meanwhile."""
    for job in jobs.recent_of_kind(JOB_KIND, 50):
        if credential_id and jobs.params_of(job).get("credential_id") != credential_id:
            continue
        if job.state in (QUEUED, RUNNING):
            return job
    return None


def start_import(actor, credential_id: int | None, exclusions) -> object:
    """Start Import Existing Orders for one credential (audited); returns the job. An import of
    the same credential with the same exclusions that stopped on a fault is carried on from its
    checkpoint. Raises ImportInputError when it cannot start."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    cred = credentials.get(credential_id) if credential_id else None
    if cred is None:
        raise ImportInputError("Choose the credential whose orders to import.", "credential_id")
    if not cred.enabled:
        raise ImportInputError(f"{cred.name} is disabled; enable it first.", "credential_id")
    unknown = [e for e in exclusions if e not in EXCLUSIONS]
    if unknown:
        raise ImportInputError("Choose among the offered exclusions.", "exclude")
    return _start(actor, cred, sorted(set(exclusions)))


def _start(actor, cred, chosen: list[str]):
    """Start the import of ``cred`` with the exclusions ``chosen`` (checked already), audited as
    ``actor`` (a user, or "scheduler"); returns the job. Raises ImportRunning while one of the
    same credential has not finished."""
    # The check, the audit and the start in one transaction, one caller at a time: of two
    # imports asked for at once (a double click), the second finds the first.
    jobs.hold_starts()
    resume = None
    for job in jobs.recent_of_kind(JOB_KIND, 50):
        if jobs.params_of(job).get("credential_id") != cred.id:
            continue
        if job.state in (QUEUED, RUNNING):
            message = (
                f"An import of {cred.name} is already running (job {job.id}); "
                "its progress is shown below."
            )
            db.session.rollback()
            raise ImportRunning(message, job)
        if job.state == FAILED and _matching(job, cred.id, chosen):
            checkpoint = jobs.checkpoint_of(job)
            if checkpoint and checkpoint.get("phase") != "done":
                resume = checkpoint
        break  # only the newest import of this credential counts
    audit.record(
        "order.import.start",
        actor=actor,
        object_type="credential",
        object_id=cred.id,
        detail={"name": cred.name, "exclusions": chosen, "carries_on": resume is not None},
    )
    title = f"Import existing orders of {cred.name}"
    if actor == "scheduler":
        title += " (scheduled)"  # as scheduled syncs and status checks are named
    if resume is not None:
        title += " (carrying on)"
    job = jobs.queue(
        JOB_KIND,
        title,
        actor=actor if not isinstance(actor, str) else None,
        credential_id=cred.id,
        exclusions=chosen,
        resume=resume,
    )
    db.session.commit()
    return jobs.submit(job)


def last_exclusions(credential_id: int) -> list[str]:
    """The exclusions of the newest import of a credential (kept in its job), or the ones the
    Import Existing Orders page offers when it has none."""
    stmt = select(Job.params).where(Job.kind == JOB_KIND).order_by(Job.id.desc())
    result = db.session.execute(stmt.execution_options(yield_per=100))
    try:
        for text in result.scalars():
            params = json.loads(text) if text else {}
            if params.get("credential_id") == credential_id:
                return sorted(e for e in params.get("exclusions") or [] if e in EXCLUSIONS)
    finally:
        result.close()  # read no further than the newest import of this credential
    return sorted(DEFAULT_EXCLUSIONS)


def scheduled_import() -> None:
    """The periodic task (when turned on in Admin > Settings): an import of every enabled
    credential, as a background job each, with the exclusions of its last import. A credential
    whose import has not finished is left to it; one that cannot start does not stop the
    others. One whose login Entrust refused last (a Test Login answered 401/403, or a refusal
    noted during a status check or an import) is left out until a status check or a Test Login
    that Entrust answers clears that: its import would only fail again. One whose last Test
    Login failed otherwise (not answered: a timeout, the connection or TLS, or its client
    certificate unusable here) is imported as usual: that says nothing of its login."""
    if not import_hours():
        return
    for cred_id in [c.id for c in credentials.usable_credentials()]:
        try:
            cred = credentials.get(cred_id)
            if cred is None or not cred.enabled:
                continue
            if cred.last_test_ok is False and cred.last_test_refused:
                log.info(
                    "scheduled import of credential %s (%s) skipped: Entrust refused its login",
                    cred_id,
                    cred.name,
                )
                continue
            _start("scheduler", cred, last_exclusions(cred.id))
        except ImportRunning as exc:
            log.info("scheduled import of credential %s skipped: %s", cred_id, exc)
        except Exception:
            db.session.rollback()
            log.exception("scheduled import of credential %s could not start", cred_id)


def import_hours() -> int:
    return int(settings.get(IMPORT_INTERVAL_HOURS) or 0)


def import_interval() -> timedelta | None:
    """Between scheduled imports; None while they are turned off. Turned on, the first runs at
    the scheduler's next tick (or, if one ran less than an interval before, an interval after
    that one), then every interval."""
    hours = import_hours()
    return timedelta(hours=hours) if hours else None


@hooks.on("credential.jobs")
def _unfinished_imports(credential) -> int:
    return sum(
        1
        for job in jobs.unfinished_of_kind(JOB_KIND)
        if jobs.params_of(job).get("credential_id") == credential.id
    )
