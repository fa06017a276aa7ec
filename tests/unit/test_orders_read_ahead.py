"""The import reads the CA's next pages while it stores one: same pages, in order, errors raised
in turn, and a reader that stops when the import does."""

from __future__ import annotations

import threading

import pytest

from webapp.orders.importing import read_ahead


def test_pages_come_in_order_and_an_error_comes_in_its_turn():
    def pages():
        yield from (1, 2, 3)
        raise RuntimeError("Entrust went away")

    got = []
    with pytest.raises(RuntimeError, match="went away"):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == [1, 2, 3]
    assert list(read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_the_reader_is_at_most_two_pages_ahead_and_stops_with_the_caller():
    read = []
    gate = threading.Event()

    def pages():
        for n in range(100):
            read.append(n)
            yield n

    ahead = read_ahead(pages())
    assert next(ahead) == 0
    gate.wait(0.5)  # give the reader time to run ahead
    assert len(read) <= 3
    ahead.close()  # the caller stops: so does the reader
    done = len(read)
    gate.wait(0.5)
    assert len(read) == done and not any(
        t.name == "order-pages" and t.is_alive() for t in threading.enumerate()
    )
