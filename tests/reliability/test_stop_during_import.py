"""CertDesk stopped in order (SIGTERM, as systemd and `make run` stop it) during a long import of
existing orders: it stops within seconds instead of waiting for the import to end (or being
killed), hands the import back without counting the stop as a failed run, and the next start
carries it on from its checkpoint to the end."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from tests.conftest import link_sandbox, make_app
from tests.live import signed_in, start_server, wait_until
from webapp.credentials import clients
from webapp.extensions import db
from webapp.jobs.models import Job
from webapp.orders import service as orders_settings
from webapp.settings import service as settings

FAST = {
    "CERTDESK_SCHEDULER_TICK_SECONDS": "1",
    "CERTDESK_SCHEDULER_LEASE_SECONDS": "2",
    "CERTDESK_JOBS_STALE_SECONDS": "2",
}


def _job(app) -> Job:
    with app.app_context():
        job = db.session.execute(select(Job).where(Job.kind == "orders.import")).scalar_one()
        db.session.expunge_all()
        db.session.remove()
        return job


def test_an_orderly_stop_pauses_the_import_and_the_next_start_finishes_it(
    instance, sandbox, fast_clients
):
    sandbox.seed(certificates=1200, seed=4)
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        cred_id = link_sandbox(user, sandbox).id
        settings.put(clients.REQUESTS_PER_MINUTE, 6000)
        settings.put(orders_settings.IMPORT_CONCURRENCY, 1)
        db.session.commit()
        db.session.remove()
    # Each certificate takes a while to come: the import's second step lasts about a minute.
    sandbox.faults(
        [{"kind": "latency", "method": "GET", "path": "/enterprise/v2/certificates/*", "ms": 60}]
    )

    server = start_server(instance, FAST)
    started = signed_in(server, "operator").post(
        server.url + "/entrust/import", data={"credential_id": cred_id}, timeout=30
    )
    assert started.status_code == 200, started.text

    def first_batch_stored():
        job = _job(app)
        return "step 2" in job.message and job.progress >= 200

    wait_until("the first batch of certificates", first_batch_stored, 120)
    time.sleep(4)  # about 60 certificates into the second batch
    stopping = time.monotonic()
    server.process.terminate()
    try:
        # A batch of 200 certificates takes 12 s here: the import stops part-way through one.
        server.process.wait(20)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert time.monotonic() - stopping < 6
    assert server.process.returncode == 0
    paused = _job(app)
    assert (paused.state, paused.runner, paused.attempts) == ("queued", "", 0), paused.message
    checkpoint = json.loads(paused.checkpoint)
    assert 200 < checkpoint["cert_done"] < 400, checkpoint  # what came of the second batch kept
    assert paused.progress == checkpoint["cert_done"] < paused.total  # the bar shows what is kept

    sandbox.clear_faults()
    server = start_server(instance, FAST)
    try:
        wait_until("the import to finish", lambda: _job(app).finished, 180)
    finally:
        server.process.terminate()
        server.process.wait(30)
    done = _job(app)
    assert done.state == "succeeded", done.error
    assert done.attempts == 1  # the pause did not count as a run
