from __future__ import annotations

from flask import Blueprint, render_template

from webapp.jobs import service as jobs
from webapp.security import rbac

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@rbac.require(rbac.READ)
def index():
    return render_template("dashboard/index.html", jobs=jobs.recent(5))
