"""Check Order Status: by hand for the selected orders, and on a schedule for every order that can
still change.

Orders are asked about many at a time (the connector reads up to 100 per call). An order whose
status is unchanged is checked again after twice its last wait, up to once a day; a change resets
the wait to the poll interval (Admin > Settings). The certificate is fetched only when the status
says it exists and the repository does not hold it yet. An issued order is read again once its
certificate has expired (and a day later, if the CA still called it issued), so that its status
follows what the CA calls it. Orders whose answer was lost are settled
by the reconciler (``settling.reconcile``) at start-up, every minute while any is due, and when
someone checks them by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from webapp import validation
from webapp.audit import service as audit
from webapp.cas import registry
from webapp.cas.base import CaError, CaOrder, NotAllowed, Phase
from webapp.certificates import service as certificates
from webapp.credentials import service as credentials
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.orders import checks, records, service, settling
from webapp.orders.models import INTENT, NOT_PLACED, PLACED, UNKNOWN, Order
from webapp.security import rbac

log = logging.getLogger(__name__)

CHUNK = 100  # orders per status call
INLINE_LIMIT = 25  # a check of more orders than this runs as a background job
MAX_PER_RUN = 20000
FOLLOWED_PHASES = (Phase.PENDING.value, Phase.UNKNOWN.value, "")
# An order in one of these phases has no next check, unless one was asked for: an action done
# whose outcome could not be read back.
SETTLED_PHASES = tuple(p.value for p in Phase if p.value not in FOLLOWED_PHASES)
# An issued order whose certificate expired is read once after its expiry, if that came within
# this long (CertDesk stopped for longer leaves the older ones to Check Order Status or an import).
EXPIRED_LOOKBACK = timedelta(days=30)


@dataclass
class CheckResult:
    counts: dict = field(
        default_factory=lambda: {
            "checked": 0,
            "changed": 0,
            "unchanged": 0,
            "certificates": 0,
            "settled": 0,
            "failed": 0,
        }
    )
    problems: list[str] = field(default_factory=list)
    job: object | None = None

    def summary(self) -> str:
        """What the check found, in words: "2 checked, 1 changed, 1 certificate added to SSL ›
        Certificates.", "1 checked, no change.", "2 could not be checked."; no count of none."""
        c = self.counts
        parts = []
        if c["checked"]:
            parts.append(f"{c['checked']:,} checked")
            parts.append(f"{c['changed']:,} changed" if c["changed"] else "no change")
        if c["certificates"]:
            parts.append(records.certificates_added(c["certificates"]))
        if c["settled"]:
            n = c["settled"]
            parts.append(f"{n:,} lost {'answer' if n == 1 else 'answers'} settled")
        if c["failed"]:
            parts.append(f"{c['failed']:,} could not be checked")
        return (", ".join(parts) or "no order to check") + "."


def _during(actor) -> str:
    return "the scheduled status check" if actor == "scheduler" else "a status check"


def _check_chunk(
    conn,
    rows: list[Order],
    actor,
    now: datetime,
    result: CheckResult,
    since: datetime | None,
    opened: datetime | None = None,
) -> bool:
    """Check one call's worth of orders; True when the CA answered the call. ``since``: when
    this call began, while no call of the check through this credential has been answered yet;
    ``opened``: when ``conn`` read the credential's login."""
    counts = result.counts
    known = {r.ca_order_id: r.status for r in rows}
    try:
        found = conn.statuses(list(known), known)
    except CaError as exc:
        db.session.rollback()
        counts["failed"] += len(rows)
        problem = str(exc)
        if isinstance(exc, NotAllowed) and exc.login_refused:
            during = _during(actor)
            name = credentials.login_refused(
                rows[0].credential_id, str(exc), during, actor, since=opened
            )
            # Which credential's login it is, among the several a check may go through.
            problem = f"Credential {name}: {problem}" if name else problem
        result.problems.append(problem)
        for r in records.lock_rows([r.id for r in rows]):
            r.message = f"Could not check the status: {exc}"[:2000]
            records.retry_later(r, now)
        db.session.commit()
        return False
    if since is not None:
        # Entrust took the credential's login: a refusal noted before no longer stands.
        credentials.login_accepted(
            rows[0].credential_id, _during(actor), since, actor, opened=opened
        )
    need_certificate = []
    # As they are now: another check of the same orders may have written them meanwhile.
    rows = records.lock_rows([r.id for r in rows])
    for r in rows:
        counts["checked"] += 1
        ca = found.get(r.ca_order_id)
        old_status = None
        if ca is not None:
            _changed, old_status = records.read(r, ca, now, actor=actor, read_by="status check")
        if old_status is not None:
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
        r.message = ""
        records.schedule(r, now, changed=old_status is not None)
        if records.holds_certificate(r, now):  # a renewed order's certificate stays valid too
            need_certificate.append(r)
    have = certificates.orders_with_certificate(r.id for r in need_certificate)
    wanted = {r.id: r.ca_order_id for r in need_certificate if r.id not in have}
    # The statuses are saved before the certificates are fetched: a write transaction left open
    # across those calls would hold SQLite's write lock (every sign-in and order waiting) for as
    # long as Entrust takes to answer them all.
    db.session.commit()
    if not wanted:
        return True
    fetched: dict[int, CaOrder | CaError] = {}
    for order_id, ca_order_id in wanted.items():
        try:
            fetched[order_id] = conn.fetch(ca_order_id)
        except CaError as exc:
            fetched[order_id] = exc
    # The rows again (the commit expired them; one deleted meanwhile is left out), held, and
    # without those whose certificate another check stored meanwhile.
    again = records.lock_rows(wanted)
    have = certificates.orders_with_certificate(list(wanted))
    for r in again:
        if r.id in have:
            continue
        full = fetched[r.id]
        if isinstance(full, CaError):
            counts["failed"] += 1
            r.message = f"The certificate could not be fetched: {full}"[:2000]
            continue
        added, problem = records.store_certificate(r, full, actor=actor, source="entrust")
        r.message = problem
        if added:
            counts["certificates"] += 1
            records.certificate_added(r, actor=actor, now=now)
    db.session.commit()
    return True


def check(rows: list[Order], actor, now: datetime | None = None, result=None) -> CheckResult:
    """Check the status of ``rows`` (orders the CA holds), credential by credential, 100 per
    call: one transaction for a call's statuses, then another for the certificates they brought
    (fetched with no write held). Orders whose answer was lost are settled instead."""
    now = now or utcnow()
    result = result or CheckResult()
    by_credential: dict[int, list[Order]] = {}
    for r in rows:
        if r.placement in (INTENT, UNKNOWN):
            settled = settling.reconcile(r, actor, now=now)
            if settled.placement in (PLACED, NOT_PLACED):
                result.counts["settled"] += 1
            elif settled.message.startswith(settling.COULD_NOT_CHECK):
                result.counts["failed"] += 1  # Entrust could not be searched for it
                result.problems.append(settled.message[len(settling.COULD_NOT_CHECK) :])
            continue
        if r.placement != PLACED or r.third_party or not r.ca_order_id:
            continue
        by_credential.setdefault(r.credential_id, []).append(r)
    for credential_id, group in by_credential.items():
        opened = utcnow()  # the login the connector holds is the one read from here on
        try:
            conn = registry.open_connector(group[0].ca, credential_id)
        except CaError as exc:
            result.counts["failed"] += len(group)
            result.problems.append(str(exc))
            for r in group:
                r.message = f"Could not check the status: {exc}"[:2000]
                records.retry_later(r, now)
            db.session.commit()
            continue
        with conn:
            answered = False
            for i in range(0, len(group), CHUNK):
                # Each call's own start while none was answered: a refusal an earlier call of
                # this check noted no longer stands once a later one is answered. Once one is,
                # the login is known to work: not read again per call.
                since = None if answered else utcnow()
                if _check_chunk(conn, group[i : i + CHUNK], actor, now, result, since, opened):
                    answered = True
    return result


def _rows(order_ids) -> list[Order]:
    ids = validation.ids(order_ids, MAX_PER_RUN)
    out = []
    for i in range(0, len(ids), 500):
        stmt = select(Order).where(Order.id.in_(ids[i : i + 500])).order_by(Order.id)
        out += list(db.session.execute(stmt).scalars())
    return out


def _run_check(ctx, order_ids: list[int]):
    result = CheckResult()
    ids = list(order_ids)
    for i in range(0, len(ids), CHUNK):
        check(_rows(ids[i : i + CHUNK]), ctx.actor, result=result)
        ctx.progress(min(i + CHUNK, len(ids)), len(ids), result.summary())
    return _ended(result, "Check Order Status: ")


def _ended(result: CheckResult, label: str) -> dict:
    """A check job's result; raises JobError when orders could not be checked, so that its card
    says Failed, with why, rather than Succeeded (what was checked is kept either way)."""
    if result.counts["failed"]:
        why = list(dict.fromkeys(result.problems))
        more = f" (and {len(why) - 3} more problems)" if len(why) > 3 else ""
        reasons = f" {' '.join(why[:3])}{more}" if why else " Each order's page says why."
        raise jobs.JobError(f"{label}{result.summary()}{reasons}")
    out = dict(result.counts)
    out["message"] = label + result.summary()
    return out


CHECK_JOB = jobs.register("orders.check", _run_check, permission=rbac.ORDERS_MANAGE)


def check_selected(actor, order_ids) -> CheckResult:
    """Check Order Status for the orders a user selected: at once for a few, as a background job
    for more (``result.job``). Audited. Raises InputError when nothing is selected."""
    rbac.check(actor, rbac.ORDERS_MANAGE)
    ids = validation.ids(order_ids)
    if not ids:
        raise checks.OrderInputError(
            "Check Order Status: select the orders first (tick them in the list).", "order"
        )
    result = CheckResult()
    if len(ids) > INLINE_LIMIT:
        ids = ids[:MAX_PER_RUN]
        # Of two requests at once for the same orders (two tabs, a page without scripts sent
        # twice), the second is shown the first one's job rather than read them all again.
        jobs.hold_starts()
        for running in jobs.unfinished_of_kind(CHECK_JOB):
            if jobs.params_of(running).get("order_ids") == ids:
                db.session.rollback()
                result.job = running
                return result
        job = jobs.queue(
            CHECK_JOB, f"Check Order Status of {len(ids):,} orders", actor=actor, order_ids=ids
        )
        audit.record(
            "order.check",
            actor=actor,
            object_type="order",
            detail={"orders": len(ids), "job": job.id} | audit.some_ids("order_ids", ids),
        )
        db.session.commit()
        result.job = jobs.submit(job)
        return result
    rows = _rows(ids)
    check(rows, actor, result=result)
    audit.record(
        "order.check",
        actor=actor,
        object_type="order",
        object_id=ids[0] if len(ids) == 1 else "",
        outcome="failure" if result.counts["failed"] else "success",
        detail={"orders": ids, **result.counts},
    )
    db.session.commit()
    return result


# --- on a schedule -------------------------------------------------------------------------------


def due(now: datetime | None = None, limit: int = MAX_PER_RUN) -> list[Order]:
    """Orders the CA holds that can still change and whose next check is due (with half a poll
    interval of slack, so that each scheduled run takes everything due before the next), those
    an action changed without CertDesk reading what they became, and issued ones whose
    certificate has expired since they were last read."""
    now = now or utcnow()
    slack = timedelta(minutes=service.poll_minutes() / 2)
    # Orders of a disabled or deleted credential wait: their CA cannot be asked.
    usable = [c.id for c in credentials.usable_credentials()]
    stmt = (
        select(Order)
        .where(
            Order.phase.in_(FOLLOWED_PHASES),
            Order.next_check_at <= now + slack,
            Order.placement == PLACED,
            Order.third_party.is_(False),
            Order.credential_id.in_(usable),
        )
        .order_by(Order.credential_id, Order.id)
        .limit(limit)
    )
    rows = list(db.session.execute(stmt).scalars())
    # Read through the phase and next check (ix_ca_order_phase_due): there are few. The
    # credential is tested in the query, before the limit: one of a disabled credential first in
    # line made a run of one ask whether anything was due and hear "no".
    asked = (
        select(Order)
        .where(
            Order.phase.in_(SETTLED_PHASES),
            Order.next_check_at <= now + slack,
            Order.placement == PLACED,
            Order.third_party.is_(False),
            Order.credential_id.in_(usable),
        )
        .order_by(Order.next_check_at, Order.id)
        .limit(limit)
    )
    rows += list(db.session.execute(asked).scalars())
    # Issued (or suspended) orders whose certificate has expired since CertDesk last read them:
    # the CA calls them expired now, and no one's action will say so. Read through the phase
    # and expiry (ix_ca_order_phase_expiry), those of the last EXPIRED_LOOKBACK only.
    expired = (
        select(Order)
        .where(
            Order.phase.in_(records.WITH_CERTIFICATE),
            Order.expires_at <= now,
            Order.expires_at > now - EXPIRED_LOOKBACK,
            or_(Order.last_checked_at.is_(None), Order.last_checked_at < Order.expires_at),
            or_(Order.next_check_at.is_(None), Order.next_check_at <= now + slack),
            Order.placement == PLACED,
            Order.third_party.is_(False),
            Order.credential_id.in_(usable),
        )
        .limit(limit)  # in the index's order: no sort of the two phases' ranges together
    )
    seen = {r.id for r in rows}
    rows += [r for r in db.session.execute(expired).scalars() if r.id not in seen]
    rows.sort(key=lambda r: (r.credential_id, r.id))
    return rows[:limit]


def poll(actor="scheduler", now: datetime | None = None) -> CheckResult:
    """One scheduled run: settle lost answers that are due, then check every due order."""
    now = now or utcnow()
    result = CheckResult()
    counts = settling.reconcile_due(actor, now)
    result.counts["settled"] += counts["found"] + counts["not_placed"]
    check(due(now), actor, now, result)
    return result


def _run_poll(ctx):
    return _ended(poll(ctx.actor), "Scheduled status check: ")


POLL_JOB = jobs.register("orders.poll", _run_poll)


def _run_reconcile(ctx):
    counts = settling.reconcile_due(ctx.actor)
    counts["message"] = (
        f"Lost answers: {counts['found']} found at Entrust, {counts['not_placed']} not placed, "
        f"{counts['unsettled']} still being checked."
    )
    return counts


RECONCILE_JOB = jobs.register("orders.reconcile", _run_reconcile)


def scheduled_poll() -> None:
    """The periodic task: one background check of every due order, unless one is running."""
    if not due(limit=1) and not settling.due_for_reconciling(limit=1):
        return
    if jobs.running_of_kind(POLL_JOB) is not None:
        log.info("scheduled order check skipped: one is already running")
        return
    jobs.start(POLL_JOB, "Check Order Status (scheduled)", actor=None)


def scheduled_reconcile() -> None:
    """The periodic task of the reconciler (at start-up, then every minute while needed)."""
    if not settling.due_for_reconciling(limit=1):
        return
    if jobs.running_of_kind(RECONCILE_JOB) is not None:
        return
    jobs.start(RECONCILE_JOB, "Settle orders whose answer was lost", actor=None)


def poll_interval() -> timedelta:
    return timedelta(minutes=service.poll_minutes())
