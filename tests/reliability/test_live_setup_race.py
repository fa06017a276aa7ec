"""The one-time setup link, raced against a real `certdesk serve`: twelve browsers post it at
once with the same token, and exactly one administrator comes out of it."""

from __future__ import annotations

import re
import sqlite3
import threading

import requests

from tests.live import csrf_token

BROWSERS = 12


def test_twelve_parallel_setups_with_one_token_make_one_administrator(fresh_server):
    line = fresh_server.wait_for_line("/setup?token=")
    setup_url = re.search(r"(http://\S+/setup\?token=\S+)", line).group(1)
    token = setup_url.split("token=")[1]
    browsers = []
    for _ in range(BROWSERS):
        http = requests.Session()
        browsers.append((http, csrf_token(http, setup_url)))
    start = threading.Barrier(BROWSERS)
    answers: list = [None] * BROWSERS

    def post(i: int) -> None:
        http, csrf = browsers[i]
        start.wait()
        answers[i] = http.post(
            fresh_server.url + "/setup",
            data={
                "csrf_token": csrf,
                "token": token,
                "username": f"admin{i}",
                "password": "a long enough password",
                "password2": "a long enough password",
            },
            allow_redirects=False,
            timeout=120,
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(BROWSERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert all(a is not None for a in answers), "a setup request got no answer"
    statuses = sorted(a.status_code for a in answers)
    winners = [a for a in answers if a.status_code == 302 and a.headers["Location"] == "/"]
    assert len(winners) == 1, statuses
    for loser in answers:
        if loser is winners[0]:
            continue
        # Refused in words, or sent to sign in (an administrator exists by then).
        refused = loser.status_code in (403, 422) and "no longer valid" in loser.text
        assert refused or loser.headers.get("Location") == "/login", (
            loser.status_code,
            loser.text[:200],
        )
    with sqlite3.connect(fresh_server.database) as conn:
        assert conn.execute("SELECT count(*) FROM user").fetchone() == (1,)
        events = dict(
            conn.execute(
                "SELECT action || ' ' || outcome, count(*) FROM audit_event "
                "WHERE action IN ('user.create', 'access.denied') GROUP BY 1"
            ).fetchall()
        )
    # Each refusal is audited: one lost in the claim as a refused creation, one that came after
    # the token was gone as a refused request.
    assert events.pop("user.create success") == 1
    assert events == {
        k: v
        for k, v in {
            "user.create failure": sum(a.status_code == 422 for a in answers),
            "access.denied refused": sum(a.status_code == 403 for a in answers),
        }.items()
        if v
    }, events
    assert not any("Traceback" in line for line in fresh_server.lines)


def test_parallel_setups_on_postgresql_make_one_administrator(postgres_url, tmp_path):
    import psycopg

    from tests.conftest import make_app
    from webapp import _init_secretbox, paths
    from webapp.auth import service as auth
    from webapp.extensions import db

    admin_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS certdesk_setup_race")
        conn.execute("CREATE DATABASE certdesk_setup_race")
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    app = make_app(
        instance,
        instance / "unused.db",
        SQLALCHEMY_DATABASE_URI=postgres_url.rsplit("/", 1)[0] + "/certdesk_setup_race",
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(paths.MIGRATIONS_DIR))
        _init_secretbox(app)
        token = auth.issue_setup_token()
        db.session.remove()
    start = threading.Barrier(8)
    outcomes: list = [None] * 8

    def claim(i: int) -> None:
        with app.app_context():
            start.wait()
            try:
                auth.complete_setup(
                    token, f"admin{i}", "a long enough password", "a long enough password"
                )
                outcomes[i] = "created"
            except auth.UserError as exc:
                outcomes[i] = str(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == ["This setup link is no longer valid."] * 7 + ["created"]
    with app.app_context():
        assert len(db.session.execute(auth.users_query()).scalars().all()) == 1
        db.session.remove()
        db.engine.dispose()
