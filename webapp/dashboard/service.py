"""The dashboard's figures, each one SQL aggregate over indexed columns (no Python row loops)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.orm import defer

from webapp.audit.models import AuditEvent
from webapp.certificates.models import Certificate
from webapp.dbtypes import utcnow
from webapp.extensions import db

WEEKS = 26


def _revoked_only(expr):
    """Sum ``expr`` over the revoked certificates only: the revoked_at index finds those few."""
    return db.session.execute(
        select(expr).select_from(Certificate).where(Certificate.revoked_at.is_not(None))
    ).scalar_one()


def state_counts(now: datetime | None = None) -> dict[str, int]:
    """Certificates by state: valid, expiring within 7/30/90 days, expired, revoked, total.

    Each figure counts a range of the not_after index (which covers it, so no table reads), and
    the revoked certificates in the same range, found through their own index, are taken off.
    """
    now = now or utcnow()
    na = Certificate.not_after
    ranges = {
        "total": (),
        "valid": (na >= now,),
        "expiring_7": (na >= now, na < now + timedelta(days=7)),
        "expiring_30": (na >= now, na < now + timedelta(days=30)),
        "expiring_90": (na >= now, na < now + timedelta(days=90)),
        "expired": (na < now,),
    }
    every = {
        name: db.session.execute(
            select(func.count()).select_from(Certificate).where(*conds)
        ).scalar_one()
        for name, conds in ranges.items()
    }
    revoked = _revoked_only(
        func.count(),
    )
    revoked_in = (
        {
            name: int(
                _revoked_only(func.coalesce(func.sum(case((and_(true(), *conds), 1), else_=0)), 0))
            )
            for name, conds in ranges.items()
            if conds
        }
        if revoked
        else {}
    )
    counts = {name: every[name] - revoked_in.get(name, 0) for name in ranges}
    counts["total"] = every["total"]
    counts["revoked"] = revoked
    return counts


@dataclass
class Week:
    start: datetime
    count: int


def expiry_timeline(now: datetime | None = None, weeks: int = WEEKS) -> list[Week]:
    """Certificates (not revoked) expiring in each of the next ``weeks`` weeks, from today."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bounds = [start + timedelta(weeks=i) for i in range(weeks + 1)]
    # One COUNT per week over a range of the not_after index (covering); the revoked ones are
    # sorted into weeks through the (revoked_at, not_after) index and taken off.
    every = [
        db.session.execute(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.not_after >= bounds[i], Certificate.not_after < bounds[i + 1])
        ).scalar_one()
        for i in range(weeks)
    ]
    bucket = case(
        (Certificate.not_after < bounds[0], -1),
        *[(Certificate.not_after < bounds[i + 1], i) for i in range(weeks)],
        else_=weeks,
    ).label("week")
    revoked = dict(
        db.session.execute(
            select(bucket, func.count()).where(Certificate.revoked_at.is_not(None)).group_by(bucket)
        ).all()
    )
    counts = {i: every[i] - revoked.get(i, 0) for i in range(weeks)}
    return [Week(bounds[i], int(counts.get(i, 0))) for i in range(weeks)]


def urgent(limit: int = 10, now: datetime | None = None) -> list[Certificate]:
    """The live certificates that expire next (expired in the last 30 days included)."""
    now = now or utcnow()
    return list(
        db.session.execute(
            select(Certificate)
            .options(defer(Certificate.pem), defer(Certificate.chain_pem))
            .where(
                Certificate.revoked_at.is_(None),
                Certificate.not_after >= now - timedelta(days=30),
                Certificate.is_ca.is_(False),
            )
            .order_by(Certificate.not_after.asc())
            .limit(limit)
        ).scalars()
    )


def recent_activity(limit: int = 10) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(~AuditEvent.action.startswith("auth."))
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        ).scalars()
    )


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
    for i, w in enumerate(weeks):
        h = round(plot_h * w.count / scale_max, 1)
        bars.append(
            {
                "x": round(left + i * slot + 2, 1),
                "y": round(top + plot_h - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "count": w.count,
                "start": w.start,
                "label": w.start.strftime("%d %b") if i % 4 == 0 else "",
                "tone": "bad" if i < 1 else "warn" if i < 5 else "ok",
            }
        )
    ticks = [
        {"y": round(top + plot_h - plot_h * v / scale_max, 1), "value": v}
        for v in sorted({0, scale_max // 2, scale_max})
    ]
    return Chart(width, height, bars, max_count, ticks)
