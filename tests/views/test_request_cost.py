"""What every signed-in page costs before its own work: the statements its session check runs."""

import gc

from sqlalchemy import event

from webapp.extensions import db


def _statements_of(app, client, url: str) -> list[str]:
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()))

    db.session.remove()  # the request starts from an empty identity map, as in a server
    gc.collect()
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        resp = client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert resp.status_code == 200, resp.status_code
    return seen


def test_a_signed_in_page_reads_its_user_once_with_the_session(app, admin_client):
    admin_client.get("/jobs/")  # the session's once-a-minute activity note is behind us
    statements = _statements_of(app, admin_client, "/jobs/")
    with_session = [s for s in statements if "FROM user_session" in s]
    assert len(with_session) == 1
    assert "JOIN user AS" in with_session[0].replace('"', "")  # the user comes with its session
    user_reads = [s for s in statements if "FROM user " in s.replace('"', "") + " "]
    assert user_reads == [], user_reads
