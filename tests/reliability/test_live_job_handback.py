"""`certdesk serve` stopped in order during a catalog sync, then started again at once: the sync
was handed back with a card that says it carries on when CertDesk starts again, and the new
start carries it on within seconds, not once the job has aged past the stale time."""

from __future__ import annotations

from tests.conftest import link_sandbox, make_app
from tests.live import signed_in, start_server, stop_server, wait_until
from webapp.extensions import db
from webapp.jobs.models import Job

# The scheduler ticks every second; the stale time stays as shipped (minutes).
FAST = {"CERTDESK_SCHEDULER_TICK_SECONDS": "1", "CERTDESK_SCHEDULER_LEASE_SECONDS": "2"}
PAUSED = "Paused while CertDesk stopped; it carries on when CertDesk starts again."


def _job(app, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        db.session.remove()
        return job


def test_a_sync_paused_by_an_orderly_stop_carries_on_as_soon_as_certdesk_starts_again(
    instance, sandbox, fast_clients
):
    sandbox.seed(certificates=3, seed=6)
    app = make_app(instance, instance / "certdesk.db")
    with app.app_context():
        from webapp.auth import service as auth

        user = {r: auth.by_username(r) for r in ("admin", "operator")}
        cred_id = link_sandbox(user, sandbox).id
        db.session.remove()

    first = start_server(instance, FAST)
    try:
        # Each of the sync's reads takes two seconds: the stop comes during the first one.
        sandbox.faults([{"kind": "latency", "method": "GET", "ms": 2000}])
        sandbox.clear_requests()
        resp = signed_in(first, "admin").post(
            first.url + "/entrust/manage/sync",
            data={"credential": cred_id, "kind": "all"},
            allow_redirects=False,
            timeout=30,
        )
        assert resp.status_code == 303, resp.text
        job_id = int(resp.headers["Location"].rsplit("=", 1)[1])
        wait_until("the sync's first read", lambda: sandbox.requests(), 30)
    finally:
        stop_server(first)
    paused = _job(app, job_id)
    assert (paused.state, paused.runner, paused.message) == ("queued", "", PAUSED)

    sandbox.clear_faults()
    second = start_server(instance, FAST)
    try:
        wait_until("the sync to carry on and end", lambda: _job(app, job_id).finished, 20)
        done = _job(app, job_id)
        assert done.state == "succeeded", done.error
        card = signed_in(second, "auditor").get(f"{second.url}/jobs/{job_id}", timeout=30).text
        assert "Succeeded" in card and "Paused" not in card
    finally:
        stop_server(second)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
