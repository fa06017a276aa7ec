"""One request of a worker runs at a time (webapp.turns): the next waits for its turn, gets it
while the first waits outside the process, and never waits longer than WAIT_SECONDS."""

from __future__ import annotations

import threading
import time

import pytest

from webapp import turns


def _app(entered: threading.Event, leave: threading.Event, inside=None):
    def app(environ, start_response):
        entered.set()
        if inside is not None:
            with inside():
                assert leave.wait(30)
        else:
            assert leave.wait(30)
        return [b"done"]

    return turns.wsgi(app)


def _run(app) -> threading.Thread:
    thread = threading.Thread(target=app, args=({}, None), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def patient(monkeypatch):
    monkeypatch.setattr(turns, "WAIT_SECONDS", 30)


def test_the_next_request_waits_until_the_first_is_done(patient):
    first_in, first_leave = threading.Event(), threading.Event()
    second_in, second_leave = threading.Event(), threading.Event()
    first = _run(_app(first_in, first_leave))
    assert first_in.wait(10)
    second = _run(_app(second_in, second_leave))
    assert not second_in.wait(0.3)  # its turn has not come
    first_leave.set()
    assert second_in.wait(10)
    second_leave.set()
    first.join(10), second.join(10)


def test_a_request_waiting_outside_lets_the_next_one_run(patient):
    first_in, first_leave = threading.Event(), threading.Event()
    second_in, second_leave = threading.Event(), threading.Event()
    first = _run(_app(first_in, first_leave, inside=turns.outside))
    assert first_in.wait(10)
    second = _run(_app(second_in, second_leave))
    assert second_in.wait(10)  # while the first waits outside the process
    second_leave.set()
    first_leave.set()
    first.join(10), second.join(10)
    assert not first.is_alive() and not second.is_alive()


def test_the_first_takes_its_turn_back_before_it_goes_on(patient):
    order = []
    first_in, outside_now, second_in = threading.Event(), threading.Event(), threading.Event()
    second_leave = threading.Event()

    def first_app(environ, start_response):
        first_in.set()
        with turns.outside():
            outside_now.set()
            assert second_in.wait(10)
        order.append("first goes on")
        return []

    def second_app(environ, start_response):
        second_in.set()
        assert second_leave.wait(10)
        order.append("second done")
        return []

    first = _run(turns.wsgi(first_app))
    assert outside_now.wait(10)
    second = _run(turns.wsgi(second_app))
    assert second_in.wait(10)
    time.sleep(0.3)  # the first is back from outside by now, waiting for its turn
    assert order == []
    second_leave.set()
    first.join(10), second.join(10)
    assert order == ["second done", "first goes on"]


def test_no_request_waits_longer_than_the_limit(monkeypatch, caplog):
    monkeypatch.setattr(turns, "WAIT_SECONDS", 0.2)
    monkeypatch.setattr(turns, "_noted", [float("-inf")])
    first_in, first_leave = threading.Event(), threading.Event()
    second_in, second_leave = threading.Event(), threading.Event()
    first = _run(_app(first_in, first_leave))
    assert first_in.wait(10)
    second = _run(_app(second_in, second_leave))
    assert second_in.wait(10)  # beside the first, which still holds the turn
    second_leave.set()
    first_leave.set()
    first.join(10), second.join(10)
    noted = [r.getMessage() for r in caplog.records if r.name == "webapp.turns"]
    assert noted == [
        "a request waited 0.2 s for its turn in this worker and runs beside another "
        "(noted at most once a minute)"
    ]
    # Neither left the turn taken: the next request gets it at once.
    third_in, third_leave = threading.Event(), threading.Event()
    monkeypatch.setattr(turns, "WAIT_SECONDS", 30)
    third = _run(_app(third_in, third_leave))
    assert third_in.wait(5)
    third_leave.set()
    third.join(10)


def test_outside_a_request_it_does_nothing():
    with turns.outside():  # a job's thread holds no turn, and takes none
        pass
    assert turns._turn.acquire(blocking=False)
    turns._turn.release()


def test_the_pool_hands_out_the_connection_used_last(app):
    """With one request of a worker at a time, that is mostly the same connection, whose SQLite
    page cache is warm (a queue would hand out the one left longest, coldest)."""
    from webapp.extensions import db

    with app.app_context():
        engine = db.engine
        first, second = engine.raw_connection(), engine.raw_connection()
        ids = {id(first.dbapi_connection): "first", id(second.dbapi_connection): "second"}
        first.close()
        second.close()  # returned last
        again = engine.raw_connection()
        try:
            assert ids.get(id(again.dbapi_connection)) == "second"
        finally:
            again.close()


def test_a_request_made_from_within_a_request_runs_in_its_turn(patient):
    inner = turns.wsgi(lambda environ, start_response: [b"inner"])

    def outer_app(environ, start_response):
        return inner(environ, start_response) + [b"outer"]

    outer = turns.wsgi(outer_app)
    assert outer({}, None) == [b"inner", b"outer"]  # at once, not after WAIT_SECONDS
    assert turns._turn.acquire(blocking=False)  # and the turn is free again after
    turns._turn.release()
