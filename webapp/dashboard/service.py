"""The dashboard's figures, each a sum over per-day counters or an index look-up: none of them
reads the repository row by row, so they cost the same at 100,000 certificates as at 1,000.

The tiles, the chart and "Most urgent" count the same certificates: every one not revoked (CA
certificates included), by its expiry. A suspended certificate (its order held by the CA) and one
whose notBefore is still to come are not valid: they have tiles of their own, and neither the
chart nor Most urgent shows them until they expire. Suspended ones have day counters of their
own; those not valid yet are the few at the end of the notBefore index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import and_, bindparam, func, or_, select, text
from sqlalchemy.orm import defer

from webapp.audit.models import ACTIVITY, AuditEvent
from webapp.certificates.models import Certificate, CertificateExpiryDay, expiry_day
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.search import unindexed

WEEKS = 26
LIVE = Certificate.revoked_at.is_(None)  # what the tiles, the chart and Most urgent count
# The live certificates of the "live" day counters: not suspended either.
UNSUSPENDED = and_(LIVE, Certificate.suspended_at.is_(None))
SUSPENDED = and_(LIVE, Certificate.suspended_at.is_not(None))
_DAYS = CertificateExpiryDay


def _sum(column, *conds):
    return select(func.coalesce(func.sum(column), 0)).where(*conds).scalar_subquery()


def _before(i: int, counter, which):
    """Certificates of the day counter ``counter`` (``which``: the same as a condition)
    expiring before boundary ``i``: the day counters before its day, plus the certificates of
    its own day before that time (an index range within one day)."""
    full_days = _sum(counter, _DAYS.day < bindparam(f"day{i}"))
    same_day = (
        select(func.count())
        .select_from(Certificate)
        .where(
            Certificate.not_after >= bindparam(f"midnight{i}"),
            Certificate.not_after < bindparam(f"at{i}"),
            which,
        )
        .scalar_subquery()
    )
    return full_days + same_day


def _not_yet_valid(i: int | None):
    """Live, unsuspended certificates whose notBefore is after now, not expired, expiring before
    boundary ``i`` (None: whenever): the few at the end of ix_certificate_not_before."""
    conds = [
        Certificate.not_before > bindparam("at0"),
        # Tested on those few: as an index range, the expiry would read every certificate
        # expiring before the boundary instead (a quarter of them within 90 days).
        unindexed(Certificate.not_after) >= bindparam("at0"),
        UNSUSPENDED,
    ]
    if i is not None:
        conds.append(unindexed(Certificate.not_after) < bindparam(f"at{i}"))
    return select(func.count()).select_from(Certificate).where(*conds).scalar_subquery()


@cache
def _statements() -> dict:
    """Built once (at first use, when every model is mapped): each request only binds its times,
    and SQLAlchemy's compiled-statement cache serves the rest."""
    return {
        "states": select(
            _sum(_DAYS.live),
            _sum(_DAYS.suspended),
            _sum(_DAYS.revoked),
            *(_before(i, _DAYS.live, UNSUSPENDED) for i in range(4)),
            _before(0, _DAYS.suspended, SUSPENDED),
            *(_not_yet_valid(i) for i in (1, 2, 3, None)),
        ),
        "timeline": select(_DAYS.day, _DAYS.live).where(
            _DAYS.day >= bindparam("first"), _DAYS.day < bindparam("end")
        ),
        # The live, unsuspended certificates that expired today before now: the first week's
        # day counters hold them, but they are expired, not expiring (an index range in a day).
        "expired_today": select(func.count())
        .select_from(Certificate)
        .where(
            Certificate.not_after >= bindparam("midnight"),
            Certificate.not_after < bindparam("now"),
            UNSUSPENDED,
        ),
        # The live, unsuspended certificates not valid yet that the timeline's days count.
        "not_yet_valid": select(Certificate.not_after).where(
            Certificate.not_before > bindparam("now"),
            unindexed(Certificate.not_after) >= bindparam("now"),
            UNSUSPENDED,
        ),
        "urgent": select(Certificate)
        .options(defer(Certificate.pem), defer(Certificate.chain_pem))
        .where(
            LIVE,
            Certificate.not_after >= bindparam("since"),
            # Expired, or valid: not a suspended one, nor one whose validity is still to come.
            or_(
                Certificate.not_after < bindparam("now"),
                and_(
                    Certificate.suspended_at.is_(None), Certificate.not_before <= bindparam("now")
                ),
            ),
        )
        .order_by(Certificate.not_after.asc())
        .limit(bindparam("limit")),
        "activity": select(AuditEvent)
        .where(text(ACTIVITY))
        .order_by(AuditEvent.seq.desc())
        .limit(bindparam("n")),
    }


def state_counts(now: datetime | None = None) -> dict[str, int]:
    """Certificates by state: valid, expiring within 7/30/90 days (valid ones), suspended, not
    valid yet, expired (suspended ones too), revoked, total."""
    now = now or utcnow()
    params = {}
    for i, days in enumerate((0, 7, 30, 90)):
        at = now + timedelta(days=days)
        params.update(
            {
                f"day{i}": expiry_day(at),
                f"midnight{i}": at.replace(hour=0, minute=0, second=0, microsecond=0),
                f"at{i}": at,
            }
        )
    row = db.session.execute(_statements()["states"], params).one()
    live, suspended, revoked, expired, by7, by30, by90, suspended_expired = (
        int(v) for v in row[:8]
    )
    early7, early30, early90, early = (int(v) for v in row[8:])
    return {
        "total": live + suspended + revoked,
        "valid": live - expired - early,
        "expiring_7": by7 - expired - early7,
        "expiring_30": by30 - expired - early30,
        "expiring_90": by90 - expired - early90,
        "suspended": suspended - suspended_expired,
        "not_yet_valid": early,
        "expired": expired + suspended_expired,
        "revoked": revoked,
    }


@dataclass
class Week:
    start: datetime
    count: int


def expiry_timeline(now: datetime | None = None, weeks: int = WEEKS) -> list[Week]:
    """Certificates (not revoked, nor suspended, nor before their notBefore) expiring in each of
    the next ``weeks`` weeks, from today: whole days, so the day counters answer it, less the
    few not valid yet and those expired earlier today."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = expiry_day(start)
    per_week = [0] * weeks
    for day, live in db.session.execute(
        _statements()["timeline"], {"first": first, "end": first + 7 * weeks}
    ):
        per_week[(day - first) // 7] += live
    if weeks:
        per_week[0] -= db.session.execute(
            _statements()["expired_today"], {"midnight": start, "now": now}
        ).scalar_one()
    for (not_after,) in db.session.execute(_statements()["not_yet_valid"], {"now": now}):
        week = (expiry_day(not_after) - first) // 7
        if week < weeks:
            per_week[week] -= 1
    return [Week(start + timedelta(weeks=i), per_week[i]) for i in range(weeks)]


def urgent(limit: int = 10, now: datetime | None = None) -> list[Certificate]:
    """The valid certificates that expire next (expired in the last 30 days included, suspended
    or not): the same certificates the state tiles and the timeline count, CA certificates among
    them."""
    now = now or utcnow()
    params = {"since": now - timedelta(days=30), "now": now, "limit": limit}
    return list(db.session.execute(_statements()["urgent"], params).scalars())


def recent_activity(limit: int = 10) -> list[AuditEvent]:
    """The latest events but sign-ins, through the partial index that holds only those."""
    return list(db.session.execute(_statements()["activity"], {"n": limit}).scalars())


@dataclass
class Chart:
    """The SVG geometry of the timeline, computed here so the template only draws."""

    width: int
    height: int
    bars: list[dict]
    max_count: int
    ticks: list[dict]


def timeline_chart(weeks: list[Week], width: int = 780, height: int = 200) -> Chart:
    top, bottom, left = 16, 28, 36
    plot_h = height - top - bottom
    max_count = max((w.count for w in weeks), default=0)
    scale_max = max(1, max_count)
    slot = (width - left) / max(1, len(weeks))
    bars = []
    labelled_year = None
    for i, w in enumerate(weeks):
        h = round(plot_h * w.count / scale_max, 1)
        label = ""
        if i % 4 == 0:
            # The year with the first label, and again where a new year starts.
            label = w.start.strftime("%d %b" if w.start.year == labelled_year else "%d %b %Y")
            labelled_year = w.start.year
        bars.append(
            {
                "x": round(left + i * slot + 2, 1),
                "y": round(top + plot_h - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "count": w.count,
                "start": w.start,
                "label": label,
                "tone": "bad" if i < 1 else "warn" if i < 5 else "ok",
            }
        )
    ticks = [
        {"y": round(top + plot_h - plot_h * v / scale_max, 1), "value": v}
        for v in sorted({0, scale_max // 2, scale_max})
    ]
    return Chart(width, height, bars, max_count, ticks)
