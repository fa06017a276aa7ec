import json
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.helpers import HTMX
from webapp.dbtypes import utcnow
from webapp.extensions import db
from webapp.jobs import service as jobs
from webapp.jobs.models import Job
from webapp.security import rbac


def counting_job(ctx, n):
    for i in range(n):
        ctx.progress(i + 1, total=n, message=f"step {i + 1}")
    return {"added": n, "message": "All counted."}


def failing_job(ctx):
    ctx.progress(1, total=3)
    raise jobs.JobError("Entrust refused the API key.")


def crashing_job(ctx):
    raise KeyError("internal detail")


def resumable_job(ctx, n):
    """Counts to n, remembering how far it got; a run that is cut short resumes from there."""
    start = ctx.checkpoint or 0
    for i in range(start, n):
        ctx.save_checkpoint(i + 1)
        ctx.progress(i + 1, total=n, message=f"attempt {ctx.attempt}")
    return {"counted_from": start}


jobs.register("test.count", counting_job)
jobs.register("test.fail", failing_job)
jobs.register("test.crash", crashing_job)
jobs.register("test.resume", resumable_job)
jobs.register("test.once", counting_job, resumable=False)

RELEASE = threading.Event()


def blocking_job(ctx):
    """Holds its worker until the test lets it go."""
    RELEASE.wait(30)
    return {}


jobs.register("test.block", blocking_job)

RAN: list[int] = []


def guarded_job(ctx, n, demote_after=None):
    """Counts to n; after ``demote_after`` steps an administrator makes its user an auditor."""
    from webapp.auth.models import User

    for i in range(n):
        RAN.append(i)
        if i == demote_after:
            db.session.execute(update(User).where(User.id == ctx.actor.id).values(role="auditor"))
            db.session.commit()
        ctx.progress(i + 1, total=n)
    return {"counted": n}


jobs.register("test.guarded", guarded_job, permission=rbac.CATALOG_SYNC)


def test_job_runs_and_reports(app, user):
    job = jobs.start("test.count", "Count things", actor=user["operator"], n=4)
    assert job.state == "succeeded" and job.progress == 4 and job.total == 4
    assert jobs.result_of(job) == {"added": 4}
    assert job.message == "All counted."


def test_job_errors_are_kept_in_words(app):
    job = jobs.start("test.fail", "Fail")
    assert job.state == "failed" and job.error == "Entrust refused the API key."
    crash = jobs.start("test.crash", "Crash")
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


def test_a_running_jobs_progress_bar_is_named_by_its_title_and_described_by_its_step(
    app, operator_client
):
    """A screen reader says which job a progress bar is about and how far it got, not only a
    bare percentage: the bar is labelled by the card's title and described by its step."""
    job = Job(kind="test", title="Import of Sandbox", state="running", progress=3, total=10)
    job.message = "reading orders"
    db.session.add(job)
    db.session.commit()
    body = operator_client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True)
    bar = re.search(r"<progress[^>]*>", body).group(0)
    named = re.search(r'aria-labelledby="([^"]+)"', bar).group(1)
    described = re.search(r'aria-describedby="([^"]+)"', bar).group(1)
    assert re.search(rf'<strong id="{named}">Import of Sandbox</strong>', body)
    step = re.search(rf'<small id="{described}">([^<]*)</small>', body).group(1)
    assert " ".join(step.split()) == "3 of 10 (30%) reading orders"


def test_a_running_jobs_card_is_busy_so_its_live_region_reads_it_once_it_ends(app, operator_client):
    """The card is swapped every 700 ms inside a polite live region (a sync's, an import's): busy
    while it runs, it is not read out again at each swap, and read once when it has ended."""
    job = Job(kind="test", title="Sync of Sandbox", state="running", progress=1, total=3)
    db.session.add(job)
    db.session.commit()
    card = re.search(r"<article[^>]*>", _fragment(operator_client, job)).group(0)
    assert 'aria-busy="true"' in card
    job.state, job.message = "succeeded", "Synced."
    db.session.commit()
    card = re.search(r"<article[^>]*>", _fragment(operator_client, job)).group(0)
    assert "aria-busy" not in card and 'class="job job-succeeded"' in card


def _fragment(client, job) -> str:
    return client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True)


def test_the_list_names_each_job_as_its_card_does_and_refreshes_while_one_runs(
    app, operator_client
):
    running = Job(kind="test", title="Long job", state="running", progress=3, total=10)
    failed = Job(kind="test", title="Broken job", state="failed", error="Refused.")
    db.session.add_all([running, failed])
    db.session.commit()
    page = operator_client.get("/jobs/").get_data(as_text=True)
    # The title opens the job (not only its number); the state is the card's badge.
    assert f'<a href="/jobs/{running.id}">Long job</a>' in page
    assert f'<a href="/jobs/{failed.id}">Broken job</a>' in page
    assert ">Running</span>" in page and ">Failed</span>" in page
    assert "3 / 10 (30%)" in page
    assert 'hx-get="/jobs/" hx-trigger="every 2s"' in page
    frag = operator_client.get("/jobs/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in frag and 'id="jobs-list"' in frag
    running.state = "succeeded"
    db.session.commit()
    frag = operator_client.get("/jobs/", headers=HTMX).get_data(as_text=True)
    assert "every 2s" not in frag and ">Succeeded</span>" in frag


def test_unknown_job_404(operator_client):
    assert operator_client.get("/jobs/424242").status_code == 404


def test_a_job_waiting_for_a_worker_does_not_start_once_its_user_is_disabled(
    app, user, monkeypatch
):
    RAN.clear()
    monkeypatch.setattr(jobs, "_submit", lambda job_id: None)  # every worker is busy
    job = jobs.start("test.guarded", "Guarded", actor=user["operator"], n=3)
    user["operator"].active = False  # an administrator disables the account meanwhile
    db.session.commit()
    jobs.run(job.id, "worker")
    db.session.refresh(job)
    assert job.state == "failed" and RAN == []
    assert job.error.startswith("Stopped: operator may no longer do this")


def test_a_running_job_stops_at_its_next_progress_once_its_user_loses_the_right(app, user):
    RAN.clear()
    job = jobs.start("test.guarded", "Guarded", actor=user["operator"], n=5, demote_after=1)
    assert job.state == "failed" and "operator may no longer do this" in job.error
    assert RAN == [0, 1] and job.progress == 2  # what was done before is kept
    # A job nobody started in person (the schedule) and a user who keeps the right: unchanged.
    assert jobs.start("test.guarded", "Guarded", n=2).state == "succeeded"
    assert jobs.start("test.guarded", "Guarded", actor=user["admin"], n=2).state == "succeeded"


def test_jobs_started_in_person_name_the_permission_they_run_under():
    from webapp.orders import importing, polling

    kinds = {k: jobs._KINDS[k].permission for k in ("catalog.sync", importing.JOB_KIND)}
    kinds[polling.CHECK_JOB] = jobs._KINDS[polling.CHECK_JOB].permission
    assert kinds == {
        "catalog.sync": rbac.CATALOG_SYNC,
        "orders.import": rbac.ORDERS_MANAGE,
        "orders.check": rbac.ORDERS_MANAGE,
    }


def test_job_keeps_its_parameters_and_actor(app, user):
    job = jobs.start("test.count", "Count", actor=user["admin"], n=2)
    assert json.loads(job.params) == {"n": 2} and job.started_by_id == user["admin"].id
    assert job.attempts == 1 and job.runner


def _stale(kind, params, checkpoint=None, attempts=1):
    old = utcnow() - timedelta(hours=1)
    job = Job(
        kind=kind,
        state="running",
        created_at=old,
        heartbeat_at=old,
        params=json.dumps(params),
        checkpoint=json.dumps(checkpoint) if checkpoint is not None else "",
        attempts=attempts,
        runner="dead-host:1:abc",
    )
    db.session.add(job)
    db.session.commit()
    return job


def test_an_interrupted_job_resumes_from_its_checkpoint(app):
    job = _stale("test.resume", {"n": 5}, checkpoint=3)
    fresh = Job(kind="test.resume", state="running", created_at=job.created_at)
    fresh.heartbeat_at = utcnow()
    db.session.add(fresh)
    db.session.commit()
    assert jobs.recover() == {"requeued": 1, "failed": 0}
    db.session.refresh(job)
    db.session.refresh(fresh)
    assert job.state == "succeeded" and job.attempts == 2 and job.progress == 5
    assert jobs.result_of(job) == {"counted_from": 3}
    assert fresh.state == "running"  # its process is alive: left alone


def test_jobs_that_cannot_resume_or_ran_too_often_fail_in_words(app):
    once = _stale("test.once", {"n": 1})
    worn = _stale("test.resume", {"n": 1}, attempts=jobs.MAX_ATTEMPTS)
    gone = _stale("test.unknown-kind", {})
    assert jobs.recover() == {"requeued": 0, "failed": 3}
    for job in (once, worn, gone):
        db.session.refresh(job)
        assert job.state == "failed" and "Interrupted" in job.error
    assert f"Interrupted {jobs.MAX_ATTEMPTS} times" in worn.error


def test_jobs_handed_back_at_an_orderly_stop_carry_on_at_the_next_start_at_once(app, admin_client):
    """CertDesk stopped in order moments after two jobs were started: both were handed back,
    and their cards say they carry on when CertDesk starts again. The next start's first
    recovery runs them, however young they are, the one that cannot resume too (it never ran),
    rather than leaving "Paused while CertDesk stopped" on a card while CertDesk runs."""
    ids = []
    for kind, params in (("test.resume", {"n": 2}), ("test.once", {"n": 1})):
        job = jobs.queue(kind, kind, **params)
        db.session.commit()
        ids.append(job.id)
    jobs._hand_back(Job.id.in_(ids))
    card = admin_client.get(f"/jobs/{ids[0]}", headers=HTMX).get_data(as_text=True)
    assert "Paused while CertDesk stopped; it carries on when CertDesk starts again." in card
    assert jobs.recover() == {"requeued": 2, "failed": 0}
    for job_id in ids:
        job = db.session.get(Job, job_id)
        db.session.refresh(job)
        assert job.state == "succeeded" and job.attempts == 1, job.error
    card = admin_client.get(f"/jobs/{ids[0]}", headers=HTMX).get_data(as_text=True)
    assert "Paused" not in card and "Succeeded" in card


def test_the_heartbeat_keeps_a_running_job_alive(app):
    job = _stale("test.resume", {"n": 1})
    jobs.heartbeat("dead-host:1:abc")
    assert jobs.recover() == {"requeued": 0, "failed": 0}
    db.session.refresh(job)
    assert job.state == "running"


def test_a_queued_job_of_a_dead_process_is_recovered_in_words(app):
    once = _stale("test.once", {"n": 1}, attempts=0)
    once.state = "queued"
    db.session.commit()
    assert jobs.recover() == {"requeued": 0, "failed": 1}
    db.session.refresh(once)
    assert once.state == "failed" and once.error.startswith("Not started")


def _wait_running(job_id):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(Job, job_id).state == "running":
            return
        time.sleep(0.05)
    raise AssertionError("the job did not start")


def _wait_finished(*job_ids):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        db.session.expire_all()
        if all(db.session.get(Job, i).finished for i in job_ids):
            return
        time.sleep(0.05)
    raise AssertionError("the jobs did not finish")


def test_a_job_waiting_for_a_busy_worker_is_not_taken_for_dead(app, user):
    """Jobs queued behind a busy worker for longer than the stale time, in a live process: its
    ticks keep them alive, so the one that cannot run again is not failed unrun and the one that
    can is not handed to the pool a second time; each runs once when the worker is free."""
    from webapp.settings import service as settings

    settings.save(user["admin"], {jobs.WORKERS: "1"})
    app.config["JOBS_RUN_INLINE"] = False
    RELEASE.clear()
    try:
        busy = jobs.start("test.block", "Holds the only worker").id
        once = jobs.start("test.once", "Bulk approve", n=1).id
        resume = jobs.start("test.resume", "Sync", n=1).id
        _wait_running(busy)  # its claim writes a heartbeat of its own: let it land first
        later = utcnow() + timedelta(seconds=app.config["JOBS_STALE_SECONDS"] * 3)
        jobs.heartbeat(app.extensions["certdesk_scheduler"].holder, later)  # this process's tick
        assert jobs.recover(now=later + timedelta(seconds=1)) == {"requeued": 0, "failed": 0}
    finally:
        RELEASE.set()
    _wait_finished(busy, once, resume)
    for job_id in (once, resume):
        job = db.session.get(Job, job_id)
        assert job.state == "succeeded" and job.attempts == 1, job.error


def test_a_job_that_ends_while_judged_dead_keeps_its_end(app):
    """The leader reads a job as dead, then the job's own last write commits before the leader's:
    the job stays succeeded, not failed over it."""
    job = _stale("test.once", {"n": 1})
    job_id = job.id
    written = threading.Event()

    def finish_late():
        with app.app_context():
            db.session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="succeeded", finished_at=utcnow(), heartbeat_at=utcnow())
            )
            written.set()
            time.sleep(1.5)  # meanwhile recover() reads the job as it was and waits to write
            db.session.commit()

    late = threading.Thread(target=finish_late)
    late.start()
    assert written.wait(10)
    counts = jobs.recover()
    late.join()
    db.session.refresh(job)
    assert job.state == "succeeded" and job.error == ""
    assert counts == {"requeued": 0, "failed": 0}


def test_the_number_of_workers_is_a_setting(app, user):
    from webapp.settings import service as settings

    settings.save(user["admin"], {jobs.WORKERS: "3"})
    assert jobs._executor(app)._max_workers == 3


@pytest.mark.parametrize("inline", [False])
def test_jobs_run_in_a_worker_thread(app, inline):
    import time

    app.config["JOBS_RUN_INLINE"] = inline
    job = jobs.start("test.count", "Count", n=3)
    job_id = job.id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(Job, job_id).finished:
            break
        time.sleep(0.05)
    assert db.session.get(Job, job_id).state == "succeeded"


def test_the_list_pages_through_every_job_and_keeps_its_page_while_refreshing(app, operator_client):
    import html
    import re

    db.session.add_all(Job(kind="test", title=f"Job {n}", state="succeeded") for n in range(60))
    db.session.commit()
    first = operator_client.get("/jobs/").get_data(as_text=True)
    assert "Job 59</a>" in first and "Job 10</a>" in first and "Job 9</a>" not in first
    assert "1–50 of 60" in first
    nxt = html.unescape(re.search(r'<a href="([^"]+)"[^>]*rel="next"', first).group(1))
    second = operator_client.get(nxt, headers=HTMX).get_data(as_text=True)
    assert "<html" not in second and "51–60 of 60" in second
    shown = re.findall(r">Job (\d+)</a>", second)
    assert shown == [str(n) for n in range(9, -1, -1)]
    # A job running on the page shown refreshes that page, not the first one.
    db.session.execute(update(Job).where(Job.title == "Job 3").values(state="running"))
    db.session.commit()
    again = operator_client.get(nxt, headers=HTMX).get_data(as_text=True)
    refresh = re.search(r'hx-get="([^"]+)" hx-trigger="every 2s"', again).group(1)
    assert html.unescape(refresh) == nxt


def test_finished_jobs_are_forgotten_after_the_kept_days_running_ones_never(app):
    now = utcnow()
    old = now - jobs.JOBS_KEPT - timedelta(hours=1)
    recent = now - jobs.JOBS_KEPT + timedelta(hours=1)
    for title, state, at in (
        ("old done", "succeeded", old),
        ("old failed", "failed", old),
        ("old running", "running", old),
        ("old queued", "queued", old),
        ("recent done", "succeeded", recent),
    ):
        db.session.add(Job(kind="test", title=title, state=state, created_at=at))
    db.session.commit()
    assert jobs.prune(now) == 2
    left = db.session.execute(db.select(Job.title).order_by(Job.title)).scalars().all()
    assert left == ["old queued", "old running", "recent done"]


@pytest.mark.parametrize(
    "query",
    [
        "endpoint=x",  # url_for's own argument: was a 500
        "_method=POST",  # a method the list does not answer: was a 500
        "_external=1&_scheme=javascript",  # was refreshed from javascript://localhost/jobs/
        "_anchor=x",
    ],
)
def test_the_refresh_of_a_running_list_is_built_from_its_place_only(operator_client, query):
    db.session.add(Job(kind="test", title="Long job", state="running"))
    db.session.commit()
    for headers in ({}, HTMX):
        resp = operator_client.get(f"/jobs/?{query}&per_page=100", headers=headers)
        assert resp.status_code == 200, (query, resp.status_code)
        page = resp.get_data(as_text=True)
        assert 'hx-get="/jobs/?per_page=100" hx-trigger="every 2s"' in page, query


def test_a_jobs_own_page_names_it_and_reads_its_outcome(app, operator_client):
    """/jobs/<id> says which job it is in its title and heading, and its card (replaced as it
    polls) sits in a live region that stays, as on the pages that start jobs."""
    job = Job(kind="test", title="Import existing orders of Sandbox", state="running")
    db.session.add(job)
    db.session.commit()
    page = operator_client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"<title>Job {job.id}: Import existing orders of Sandbox · CertDesk</title>" in page
    assert f"<h1>Job {job.id}: Import existing orders of Sandbox</h1>" in page
    live = re.search(r'<div id="job-live" aria-live="polite">\s*<article[^>]*>', page)
    assert live and f'id="job-{job.id}"' in live.group(0)
