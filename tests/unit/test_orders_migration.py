"""Migration 0006: certificate.tracking_id becomes a link to an order row where it can."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from webapp import paths
from webapp.extensions import db

BEFORE = "0004_job_params"


def _insert(table_name: str, **values) -> int:
    """A row with the given values and a harmless value in every other NOT NULL column."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=db.engine)
    row = {}
    for col in table.columns:
        if col.name in values or col.nullable or col.primary_key:
            continue
        try:
            kind = col.type.python_type
        except NotImplementedError:
            kind = str
        row[col.name] = {
            bool: False,
            int: 0,
            datetime: datetime(2026, 1, 1, tzinfo=UTC),
        }.get(kind, "")
    row.update(values)
    with db.engine.begin() as conn:
        return conn.execute(table.insert().values(**row)).inserted_primary_key[0]


def _rows(sql: str) -> list:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def _certificate(n: int, tracking_id) -> int:
    return _insert(
        "certificate",
        fingerprint_sha256=f"{n:064x}",
        serial_hex=f"{n:x}",
        common_name=f"host{n}.example.com",
        sans=f"host{n}.example.com",
        public_key_id=f"{n:064x}",
        pem="-",
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
        tracking_id=tracking_id,
    )


def test_tracking_ids_become_orders_of_the_only_credential_and_come_back(empty_app):
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision=BEFORE)
    cred = _insert("ecs_credential", name="Only", api_user="u")
    a = _certificate(1, 5000001)
    b = _certificate(2, 5000001)  # a reissue kept under the same number
    c = _certificate(3, None)
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    orders = _rows("SELECT id, credential_id, ca_order_id, placement, phase FROM ca_order")
    assert len(orders) == 1
    order_id, cred_id, ca_id, placement, phase = orders[0]
    assert (cred_id, ca_id, placement, phase) == (cred, "5000001", "placed", "unknown")
    links = dict(_rows("SELECT id, order_id FROM certificate"))
    assert links == {a: order_id, b: order_id, c: None}
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision=BEFORE)
    assert dict(_rows("SELECT id, tracking_id FROM certificate")) == {
        a: 5000001,
        b: 5000001,
        c: None,
    }


def test_tracking_ids_without_a_single_credential_are_dropped(empty_app):
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision=BEFORE)
    _insert("ecs_credential", name="One", api_user="u")
    _insert("ecs_credential", name="Two", api_user="v")
    cert = _certificate(1, 42)
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    assert _rows("SELECT id FROM ca_order") == []
    assert _rows("SELECT id, order_id FROM certificate") == [(cert, None)]
