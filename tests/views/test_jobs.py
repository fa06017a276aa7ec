import pytest

from tests.helpers import HTMX
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import Job


def counting_job(ctx, n):
    for i in range(n):
        ctx.progress(i + 1, total=n, message=f"step {i + 1}")
    return {"added": n, "message": "All counted."}


def failing_job(ctx):
    ctx.progress(1, total=3)
    raise jobs.JobError("Entrust refused the API key.")


def crashing_job(ctx):
    raise KeyError("internal detail")


def test_job_runs_and_reports(app, user):
    job = jobs.start("test.count", "Count things", counting_job, actor=user["operator"], n=4)
    assert job.state == "succeeded" and job.progress == 4 and job.total == 4
    assert jobs.result_of(job) == {"added": 4}
    assert job.message == "All counted."


def test_job_errors_are_kept_in_words(app):
    job = jobs.start("test.fail", "Fail", failing_job)
    assert job.state == "failed" and job.error == "Entrust refused the API key."
    crash = jobs.start("test.crash", "Crash", crashing_job)
    assert crash.state == "failed" and "internal detail" not in crash.error


def test_fragment_polls_while_running_and_stops_when_done(app, operator_client):
    job = Job(kind="test", title="Long job", state="running", progress=3, total=10)
    db.session.add(job)
    db.session.commit()
    frag = operator_client.get(f"/jobs/{job.id}", headers=HTMX)
    body = frag.get_data(as_text=True)
    assert "<html" not in body and 'hx-trigger="load delay:700ms"' in body
    assert 'value="3" max="10"' in body and "HX-Trigger" not in frag.headers
    job.state, job.message, job.result = "succeeded", "Synced.", '{"added": 2, "gone": 1}'
    db.session.commit()
    done = operator_client.get(f"/jobs/{job.id}", headers=HTMX)
    body = done.get_data(as_text=True)
    assert "hx-trigger" not in body and "Synced." in body and "gone" in body
    assert done.headers["HX-Trigger"] == "job-finished"
    page = operator_client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "<html" in page


def test_unknown_job_404(operator_client):
    assert operator_client.get("/jobs/424242").status_code == 404


def test_stale_jobs_are_failed(app):
    from datetime import timedelta

    from webapp.dbtypes import utcnow

    old = utcnow() - timedelta(hours=1)
    job = Job(kind="test", state="running", created_at=old, heartbeat_at=old)
    fresh = Job(kind="test", state="running", created_at=old, heartbeat_at=utcnow())
    db.session.add_all([job, fresh])
    db.session.commit()
    assert jobs.fail_stale() == 1
    db.session.refresh(job)
    db.session.refresh(fresh)
    assert job.state == "failed" and "Interrupted" in job.error and fresh.state == "running"


@pytest.mark.parametrize("inline", [False])
def test_jobs_run_in_a_worker_thread(app, inline):
    import time

    app.config["JOBS_RUN_INLINE"] = inline
    job = jobs.start("test.count", "Count", counting_job, n=3)
    job_id = job.id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(Job, job_id).finished:
            break
        time.sleep(0.05)
    assert db.session.get(Job, job_id).state == "succeeded"
