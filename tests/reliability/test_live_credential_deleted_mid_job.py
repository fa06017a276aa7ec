"""Through `certdesk serve`: a credential deleted while its first sync waits on Entrust's
answers keeps none of what that sync read (its job ends saying why), rather than having it
written afterwards as current under the deleted credential."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.live import add_credential, served, signed_in, wait_until
from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct
from webapp.credentials.models import EcsCredential
from webapp.extensions import db
from webapp.jobs.models import Job


def _delete(http, server, cred_id: int) -> None:
    resp = http.post(
        f"{server.url}/entrust/manage/credentials/{cred_id}/delete",
        data={"confirm": "1"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303, resp.text


def _ended(app, newest_job) -> tuple[str, str] | None:
    """(state, error) of the job ``newest_job`` selects once it has finished, else None."""
    with app.app_context():
        job = db.session.scalars(newest_job).first()
        ended = (job.state, job.error) if job.finished else None
        db.session.remove()
    return ended


def test_a_credential_deleted_while_its_sync_reads_keeps_nothing(instance, sandbox, fast_clients):
    sandbox.seed(certificates=3, seed=7)
    with served(instance, sandbox) as (app, server):
        http = signed_in(server, "admin")
        # The sync's last read (the products) waits three seconds: time to delete meanwhile.
        sandbox.faults([{"kind": "latency", "ms": 3000, "path": "/enterprise/v2/inventories"}])
        sandbox.clear_requests()
        add_credential(http, server, sandbox, "Leaving")
        wait_until(
            "the sync's read of the products",
            lambda: any(r["path"].endswith("/inventories") for r in sandbox.requests()),
            30,
        )
        with app.app_context():
            cred_id = db.session.scalar(
                select(EcsCredential.id).where(EcsCredential.name == "Leaving")
            )
        _delete(http, server, cred_id)

        def sync_job():
            return _ended(app, select(Job).order_by(Job.id.desc()))

        wait_until("the sync to end", sync_job, 60)
        state, error = sync_job()
        assert (
            state == "failed" and "Leaving was deleted while it synced; nothing was kept." in error
        )
        with app.app_context():
            for model in (CatalogOrganization, CatalogDomain, CatalogProduct):
                current = db.session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.credential_id == cred_id, model.gone.is_(False))
                )
                assert current == 0, model.__name__


def test_an_import_stops_when_its_credential_is_deleted(instance, sandbox, fast_clients):
    """The import fetching certificates when the credential is deleted: it stores no more and
    ends saying why; the orders it read before stay."""
    from tests.conftest import link_sandbox
    from webapp.auth import service as auth
    from webapp.certificates.models import Certificate
    from webapp.orders import service as orders_settings
    from webapp.orders.models import Order
    from webapp.settings import service as settings

    sandbox.seed(certificates=210, seed=21)
    linked = []

    def prepare(app):
        with app.app_context():
            linked.append(link_sandbox({"admin": auth.by_username("admin")}, sandbox).id)
            settings.put(orders_settings.IMPORT_CONCURRENCY, 1)
            db.session.commit()
            db.session.remove()
        path = "/enterprise/v2/certificates/*"
        sandbox.faults([{"kind": "latency", "ms": 25, "method": "GET", "path": path}])
        sandbox.clear_requests()

    with served(instance, sandbox, prepare) as (app, server):
        (cred_id,) = linked
        http = signed_in(server, "admin")
        started = http.post(server.url + "/entrust/import", data={"credential_id": cred_id})
        assert started.status_code == 200, started.text

        def fetches() -> int:
            return sum(
                1
                for r in sandbox.requests()
                if r["method"] == "GET" and r["path"].rstrip("/").split("/")[-1].isdigit()
            )

        wait_until("the import's certificate fetches", lambda: fetches() >= 5, 60)
        _delete(http, server, cred_id)
        with app.app_context():
            stored_then = db.session.scalar(select(func.count()).select_from(Certificate))
            db.session.remove()

        def import_job():
            return _ended(
                app, select(Job).where(Job.kind == "orders.import").order_by(Job.id.desc())
            )

        wait_until("the import to end", import_job, 60)
        state, error = import_job()
        assert state == "failed"
        assert "Import of Sandbox stopped: the credential was deleted while it ran." in error
        with app.app_context():
            stored = db.session.scalar(select(func.count()).select_from(Certificate))
            assert stored == stored_then
            orders = select(func.count()).select_from(Order).where(Order.credential_id == cred_id)
            assert db.session.scalar(orders) > 0
