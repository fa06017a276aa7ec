"""Migrations and a smoke flow against a real PostgreSQL (must run, not skip, under CI=true)."""

from datetime import timedelta

from flask_migrate import upgrade
from sqlalchemy import inspect, text

from tests.conftest import Client
from tests.unit.certs import factory
from tests.unit.certs.factory import MiniPki
from webapp import _init_secretbox, create_app, paths
from webapp.audit import service as audit
from webapp.auth import service as auth
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.scheduler import Scheduler


def _count(ctx, n):
    for i in range(n):
        ctx.progress(i + 1, total=n)
    return {"counted": n}


def test_migrations_and_smoke_flow_on_postgresql(postgres_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "pg",
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "SCHEDULER_ENABLED": False,
            "JOBS_RUN_INLINE": True,
        }
    )
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        tables = set(inspect(db.engine).get_table_names())
        assert {"user", "audit_event", "job", "setting", "scheduler_lease"} <= tables
        assert db.session.execute(text("select version_num from alembic_version")).scalar()

        admin = auth.create_user(None, "pgadmin", "postgres password", "admin")
        app.test_client_class = Client
        c = app.test_client()
        assert c.login("pgadmin", "postgres password").status_code == 302
        assert (
            c.post(
                "/admin/users/new",
                data={"username": "pgop", "role": "operator", "password": "operator password"},
            ).status_code
            == 303
        )
        assert c.get("/admin/audit/?action=user.create").status_code == 200

        jobs.register("smoke", _count)
        job = jobs.start("smoke", "Smoke", actor=admin, n=3)
        assert job.state == "succeeded" and job.progress == 3

        assert audit.verify().ok
        event = audit.record("smoke.test", actor="test")
        db.session.commit()
        assert event.at.tzinfo is not None and abs(event.at - utcnow()) < timedelta(minutes=1)

        s = Scheduler()
        s.init_app(app)
        other = Scheduler()
        other.init_app(app)
        s.tick()
        other.tick()
        assert s.is_leader and not other.is_leader
        assert c.get("/healthz").get_json()["database"] == "ok"

        # The repository's search (a prefix range on names) and filters, and the Entrust
        # Manage tabs, as PostgreSQL runs them.
        from webapp.certificates import service as certificates

        pki = MiniPki()
        key, leaf = pki.leaf("shop.example.com", sans=["shop.example.com", "api.example.com"])
        cert, created = certificates.add_certificate(
            factory.pem(leaf), [factory.pem(pki.intermediate)], source="imported", actor=admin
        )
        assert created and cert.id
        for query, found in [("api.", True), ("example.com", True), ("nomatch", False)]:
            page = c.get(f"/certificates/?q={query}").get_data(as_text=True)
            assert ("shop.example.com" in page) is found, query
        assert c.get("/certificates/?expiring=30&has_key=no").status_code == 200
        assert c.get("/certificates/export.csv").status_code == 200
        assert c.get("/").status_code == 200
        for tab in ("", "organizations", "domains", "products"):
            assert c.get(f"/entrust/manage/{tab}?q=x&sort=name").status_code == 200, tab
        db.session.remove()
        db.engine.dispose()
