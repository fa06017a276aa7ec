"""UTC times come back from the database as the aware datetimes that went in."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from webapp.dbtypes import UTCDateTime
from webapp.extensions import db

WHEN = [
    datetime(2026, 12, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
    datetime(1999, 1, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),  # stored as 10:00 UTC
]


@pytest.fixture
def times(app):
    meta = MetaData()
    table = Table(
        "dbtypes_probe", meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    with app.app_context():
        meta.create_all(db.engine)
        try:
            yield table
        finally:
            db.session.rollback()
            meta.drop_all(db.engine)


def test_times_come_back_aware_and_equal(app, times):
    with app.app_context():
        db.session.execute(insert(times), [{"at": w} for w in WHEN] + [{"at": None}])
        back = db.session.execute(select(times.c.at).order_by(times.c.id)).scalars().all()
    assert back[:-1] == WHEN
    assert all(b.tzinfo is not None and b.utcoffset() == timedelta(0) for b in back[:-1])
    assert back[-1] is None


def test_text_with_a_zone_of_its_own_is_read_by_its_zone(app, times):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("only SQLite keeps times as text")
        db.session.execute(
            text(
                "INSERT INTO dbtypes_probe (id, at) VALUES (1, '2026-06-01T12:00:00+02:00'),"
                " (2, '2026-06-01T10:00:00Z')"
            )
        )
        back = db.session.execute(select(times.c.at).order_by(times.c.id)).scalars().all()
    assert back == [datetime(2026, 6, 1, 10, tzinfo=UTC)] * 2
    assert all(b.utcoffset() == timedelta(0) for b in back)


def test_a_naive_time_is_refused(app, times):
    with app.app_context(), pytest.raises(Exception, match="naive datetime"):
        db.session.execute(insert(times), [{"at": datetime(2026, 1, 1)}])
