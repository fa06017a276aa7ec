"""GET /healthz: database and scheduler state, no login, no secrets."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from webapp.extensions import db
from webapp.security import rbac

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@rbac.public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:
        db.session.rollback()
        database = "unavailable"
    sched = current_app.extensions["certdesk_scheduler"]
    # A database that answers reads but takes no writes (read-only, the disk full) fails every
    # sign-in and change: the scheduler's last tick, which writes, tells it.
    ok = database == "ok" and sched.last_tick_ok is not False
    body = {
        "status": "ok" if ok else "degraded",
        "database": database,
        "scheduler": {
            "enabled": bool(current_app.config["SCHEDULER_ENABLED"]),
            "running": sched.running,
            "leader": sched.is_leader,
            "last_tick_at": sched.last_tick_at.isoformat() if sched.last_tick_at else None,
            "last_tick_ok": sched.last_tick_ok,
        },
    }
    return jsonify(body), 200 if ok else 503
