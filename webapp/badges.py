"""How a status looks: one table of tones for every status CertDesk shows (Entrust orders,
domains, organizations, products, jobs), used by the ``status_badge`` template filter."""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup

OK, WARN, BAD, INFO, MUTED = "ok", "warn", "bad", "info", "muted"

TONES = {
    # Entrust certificate (order) statuses
    "ACTIVE": OK,
    "READY": OK,
    "APPROVED": INFO,
    "PENDING": INFO,
    "PENDING_QUORUM": INFO,
    "REISSUING": INFO,
    "RENEWING": INFO,
    "SUSPENDED": WARN,
    "REISSUED": MUTED,
    "RENEWED": MUTED,
    "EXPIRED": BAD,
    "REVOKED": BAD,
    "DECLINED": BAD,
    "DEACTIVATED": MUTED,
    "NA": MUTED,
    "UNKNOWN": MUTED,
    # domains and vetting
    "RE_VERIFICATION": OK,
    "EXPIRING": WARN,
    "INITIAL_VERIFICATION": INFO,
    "PENDING_FINAL_APPROVAL": INFO,
    "CANCELLED": MUTED,
    # CertDesk's own: jobs, orders not yet placed
    "succeeded": OK,
    "failed": BAD,
    "running": INFO,
    "queued": MUTED,
    "UNKNOWN_OUTCOME": WARN,
    "NOT_PLACED": WARN,
}

LABELS = {
    "succeeded": "Succeeded",
    "failed": "Failed",
    "running": "Running",
    "queued": "Queued",
    "UNKNOWN_OUTCOME": "Checking with Entrust",
    "NOT_PLACED": "Not placed",
}


def tone(status: str | None) -> str:
    return TONES.get(status or "", MUTED)


def label(status: str | None) -> str:
    return LABELS.get(status or "", status or "")


@lru_cache(maxsize=1024)
def html(status: str | None, text: str | None = None) -> Markup:
    """The badge for ``status`` (``text`` in place of its label), the templates' ``status_badge``
    filter: made once per status and kept (a list shows one per row)."""
    shown = text or label(status) or "—"
    return Markup('<span class="badge {}" data-status="{}">{}</span>').format(
        tone(status), status or "", shown
    )
