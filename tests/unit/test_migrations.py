"""The migrations build exactly the schema the models describe, and come apart again."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from webapp import paths
from webapp.extensions import db


def _drift() -> list:
    # SQLite's reflection skips an index on an expression (the credential name's, on lower(name))
    # and says so; the migration test of 0015 checks that index itself.
    with warnings.catch_warnings(), db.engine.connect() as conn:
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping .* expression-based index")
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        return compare_metadata(context, db.metadata)


def test_migrated_schema_matches_the_models(app):
    assert _drift() == []


def test_every_migration_downgrades_and_upgrades_again(app):
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="base")
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    assert _drift() == []


def fill_before_0007_and_upgrade() -> None:
    """Rows written under the schema before 0007_scaling, then the upgrade: what 0007 adds is
    filled in from them (search keys, the gone flag, CSR names, the per-day expiry counts)."""
    import sqlalchemy as sa

    from webapp.dbtypes import UTCDateTime, utcnow

    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0004_job_params")
    now = utcnow()

    def table(name, *columns):
        cols = [c if isinstance(c, sa.ColumnClause) else sa.column(c) for c in columns]
        return sa.table(name, *cols)

    def when(name):
        return sa.column(name, UTCDateTime())

    with db.engine.begin() as conn:
        conn.execute(
            table(
                "ecs_credential",
                "id",
                "name",
                "api_user",
                "api_key_sealed",
                "base_url",
                "proxy",
                "client_cert_pem",
                "client_key_sealed",
                "client_cert_subject",
                "ca_bundle_pem",
                "is_admin",
                "admin_note",
                "enabled",
                "last_test_message",
                "last_sync_error",
                when("created_at"),
                when("updated_at"),
            ).insert(),
            [
                {
                    "id": 1,
                    "name": "C",
                    "api_user": "u",
                    "api_key_sealed": "",
                    "base_url": "x",
                    "proxy": "",
                    "client_cert_pem": "",
                    "client_key_sealed": "",
                    "client_cert_subject": "",
                    "ca_bundle_pem": "",
                    "is_admin": True,
                    "admin_note": "",
                    "enabled": False,
                    "last_test_message": "",
                    "last_sync_error": "",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        mirrored = {"first_seen_at": now, "updated_at": now, "seen_at": now}

        def stamps():
            return [when("first_seen_at"), when("updated_at"), when("seen_at"), when("gone_at")]

        conn.execute(
            table(
                "catalog_domain",
                "credential_id",
                "client_id",
                "client_name",
                "name",
                "verification_status",
                "verification_method",
                "ov_eligible",
                "ev_eligible",
                *stamps(),
            ).insert(),
            [
                {
                    "credential_id": 1,
                    "client_id": 1,
                    "client_name": "A",
                    "name": name,
                    "verification_status": "APPROVED",
                    "verification_method": "DNS",
                    "ov_eligible": True,
                    "ev_eligible": False,
                    "gone_at": gone,
                    **mirrored,
                }
                for name, gone in (("www.example.com", None), ("old.example.org", now))
            ],
        )
        conn.execute(
            table(
                "catalog_organization",
                "credential_id",
                "kind",
                "client_id",
                "client_name",
                "name",
                "verification_status",
                "ev_status",
                *stamps(),
            ).insert(),
            [
                {
                    "credential_id": 1,
                    "kind": "organization",
                    "client_id": 1,
                    "client_name": "Big Client",
                    "name": "ACME Widgets",
                    "verification_status": "",
                    "ev_status": "",
                    "gone_at": None,
                    **mirrored,
                }
            ],
        )
        conn.execute(
            table(
                "csr",
                "id",
                "common_name",
                "subject",
                "sans",
                "key_label",
                "signature_algorithm",
                "public_key_id",
                "pem",
                "source",
                when("created_at"),
            ).insert(),
            [
                {
                    "id": 7,
                    "common_name": "Portal.Example.com",
                    "subject": "",
                    "key_label": "",
                    "sans": "portal.example.com,api.example.com,10.0.0.5",
                    "pem": "",
                    "source": "x",
                    "signature_algorithm": "",
                    "public_key_id": "k",
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            table(
                "certificate",
                "fingerprint_sha256",
                "fingerprint_sha1",
                "serial_hex",
                "common_name",
                "subject",
                "sans",
                "issuer",
                "issuer_cn",
                when("not_before"),
                when("not_after"),
                "key_type",
                "key_label",
                "signature_algorithm",
                "public_key_id",
                "is_ca",
                "source",
                "pem",
                "chain_pem",
                when("revoked_at"),
                when("created_at"),
            ).insert(),
            [
                {
                    "fingerprint_sha256": f"{i:064x}",
                    "fingerprint_sha1": "",
                    "serial_hex": str(i),
                    "common_name": "c",
                    "subject": "",
                    "sans": "",
                    "issuer": "",
                    "issuer_cn": "",
                    "not_before": now,
                    "not_after": now + timedelta(days=days),
                    "key_type": "",
                    "key_label": "",
                    "signature_algorithm": "",
                    "public_key_id": "",
                    "is_ca": False,
                    "source": "imported",
                    "pem": "",
                    "chain_pem": "",
                    "revoked_at": revoked,
                    "created_at": now,
                }
                for i, (days, revoked) in enumerate([(3, None), (3, None), (3, now), (40, None)])
            ],
        )
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT name, name_reversed, gone FROM catalog_domain ORDER BY name")
        ).all()
        assert [(r[0], r[1], bool(r[2])) for r in rows] == [
            ("old.example.org", "gro.elpmaxe.dlo", True),
            ("www.example.com", "moc.elpmaxe.www", False),
        ]
        org = conn.execute(sa.text("SELECT name_key, client_key FROM catalog_organization")).one()
        assert tuple(org) == ("acme widgets", "big client")
        names = conn.execute(sa.text("SELECT value, reversed FROM csr_name ORDER BY value")).all()
        assert [n[0] for n in names] == ["10.0.0.5", "api.example.com", "portal.example.com"]
        assert all(r == v[::-1] for v, r in names)
        days = conn.execute(
            sa.text("SELECT live, revoked FROM certificate_expiry_day ORDER BY day")
        ).all()
        assert [tuple(d) for d in days] == [(2, 1), (1, 0)]


def test_the_scaling_migration_fills_what_it_adds_from_existing_rows(app):
    fill_before_0007_and_upgrade()
    assert _drift() == []


def test_the_order_list_migration_fills_the_search_names_of_existing_orders(app):
    import sqlalchemy as sa

    from tests.helpers import make_order

    make_order(
        "5001234",
        common_name="www.example.com",
        sans="www.example.com,Example.com",
        requester_name="Omar  Haddad",
        serial="0A1B",
    )
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0008_order_actions")
    with db.engine.connect() as conn:
        # Before 0009 the list searched the texts joined by spaces.
        text = conn.execute(sa.text("SELECT search_text FROM ca_order")).scalar_one()
        assert text == "5001234 www.example.com example.com omar haddad 0a1b"
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        text = conn.execute(sa.text("SELECT search_text FROM ca_order")).scalar_one()
        names = conn.execute(sa.text("SELECT value, reversed FROM ca_order_name ORDER BY id")).all()
    expected = ["5001234", "www.example.com", "example.com", "omar haddad", "0a1b"]
    assert text.split("\n") == expected
    assert [tuple(n) for n in names] == [(v, v[::-1]) for v in expected]
    assert _drift() == []


def _census() -> dict:
    """Rows per table, and the references to certificates, CSRs, keys and orders that are set."""
    import sqlalchemy as sa

    rebuilt = {"certificate", "csr", "private_key", "ca_order"}
    seen = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            seen[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for column in table.columns:
                if any(fk.column.table.name in rebuilt for fk in column.foreign_keys):
                    seen[f"{table.name}.{column.name}"] = conn.execute(
                        sa.select(sa.func.count()).where(column.is_not(None))
                    ).scalar()
    return seen


def test_rebuilding_the_tables_for_ids_never_reused_keeps_every_row_and_reference(app):
    """0011 rebuilds four tables on SQLite. Every row, of them and of the tables that refer to
    them (names, events, links, successors), must come through a downgrade and an upgrade."""
    import sqlalchemy as sa

    from tests.populate import fill
    from webapp.certificates.models import Certificate
    from webapp.csrs.models import Csr
    from webapp.dbtypes import utcnow
    from webapp.keys.models import PrivateKey
    from webapp.orders.models import Order, OrderEvent

    fill(40, quiet=True)
    first = {
        m: db.session.execute(sa.select(sa.func.min(m.id))).scalar()
        for m in (Certificate, Csr, PrivateKey, Order)
    }
    # What the filler leaves out: a successor, an order's CSR and key, a certificate's order and
    # CSR, an order's history.
    db.session.execute(
        sa.update(Order)
        .where(Order.id == first[Order] + 1)
        .values(parent_id=first[Order], csr_id=first[Csr], private_key_id=first[PrivateKey])
    )
    db.session.execute(
        sa.update(Certificate)
        .where(Certificate.id == first[Certificate])
        .values(order_id=first[Order], csr_id=first[Csr])
    )
    db.session.execute(
        sa.insert(OrderEvent),
        [{"order_id": first[Order], "kind": k, "at": utcnow(), "message": ""} for k in "ab"],
    )
    db.session.commit()
    db.session.remove()
    before = _census()
    assert all(
        before[k] for k in ("ca_order_event", "csr_name", "ca_order_name", "ca_order.csr_id")
    )
    assert before["ca_order.parent_id"] and before["certificate.order_id"]
    assert before["certificate_name"] and before["certificate.private_key_id"]
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0010_dashboard_orders")
    assert _census() == before
    assert _analyzed() >= {"certificate", "csr", "private_key", "ca_order"}
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    assert _census() == before
    assert _drift() == []
    # The planner's statistics (the filler ran ANALYZE) come through the rebuilds too.
    assert _analyzed() >= {"certificate", "csr", "private_key", "ca_order"}


def _analyzed() -> set:
    """The tables SQLite's planner has statistics for (PostgreSQL: taken as all of them)."""
    from tests.helpers import analyzed_tables

    with db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return {t.name for t in db.metadata.sorted_tables}
        return analyzed_tables(conn.connection.driver_connection)


def test_a_deleted_rows_id_is_never_given_again(app):
    """The newest certificate or order deleted: the next one gets a new id. And ids the audit
    trail names from before the upgrade (rows deleted then) are not handed out either."""

    from tests.helpers import make_order
    from webapp.audit import service as audit
    from webapp.certificates.models import Certificate
    from webapp.dbtypes import utcnow

    made = iter(range(1, 100))

    def certificate() -> int:
        i = next(made)
        row = Certificate(
            fingerprint_sha256=f"{i:064x}",
            serial_hex=f"{i:x}",
            issuer_cn="Test CA",
            not_before=utcnow(),
            not_after=utcnow() + timedelta(days=30),
            public_key_id=f"{i:064x}",
            pem="(test)",
        )
        db.session.add(row)
        db.session.commit()
        return row.id

    certificate()
    newest = certificate()
    db.session.delete(db.session.get(Certificate, newest))
    db.session.commit()
    assert certificate() == newest + 1

    order = make_order("5000001")
    gone = order.id
    db.session.delete(order)
    db.session.commit()
    assert make_order("5000002").id == gone + 1

    # A database upgraded from before 0011 whose newest rows were deleted then: their ids are
    # in the audit trail, and the counters start after them.
    audit.record(
        "certificate.delete", object_type="certificate", object_id=newest + 50, actor="cli"
    )
    db.session.commit()
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0010_dashboard_orders")
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    if db.engine.dialect.name == "sqlite":
        assert certificate() == newest + 51
    else:  # a sequence: past every id it gave, whatever the audit trail says
        assert certificate() == newest + 2


def test_references_are_checked_after_a_migration_and_not_at_every_start(app):
    """`certdesk serve` upgrades at every start: with nothing to apply, it must not read every
    row (SQLite's foreign key check takes a second at 100,000 rows); after a step it must."""
    from sqlalchemy import event

    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        upgrade(directory=str(paths.MIGRATIONS_DIR))  # already at the head
        assert seen and not any("foreign_key_check" in s for s in seen)
        downgrade(directory=str(paths.MIGRATIONS_DIR), revision="-1")
        seen.clear()
        upgrade(directory=str(paths.MIGRATIONS_DIR))
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    checked = any("foreign_key_check" in s for s in seen)
    assert checked == (db.engine.dialect.name == "sqlite")
    assert _drift() == []


def test_credentials_named_alike_in_another_case_are_told_apart_by_the_upgrade(app, capsys):
    import sqlalchemy as sa

    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0014_placed_again")
    from webapp.credentials.models import EcsCredential
    from webapp.dbtypes import utcnow

    # Today's table, less the columns added after 0014 (0021's and 0024's).
    later = {"login_changed_at", "last_sync_failed_at", "last_sync_failed_kinds"}
    later.add("last_test_refused")  # 0024's
    then = sa.Table(
        "ecs_credential",
        sa.MetaData(),
        *(c._copy() for c in EcsCredential.__table__.c if c.name not in later),
    )
    with db.engine.begin() as conn:
        for name, deleted in [("Prod", None), ("PROD", utcnow()), ("prod", None)]:
            conn.execute(
                sa.insert(then).values(
                    name=name, api_user="u", base_url="http://x/", deleted_at=deleted
                )
            )
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        names = conn.execute(sa.text("SELECT id, name FROM ecs_credential ORDER BY id")).all()
        assert [tuple(n) for n in names] == [(1, "Prod"), (2, "PROD"), (3, "prod (#3)")]
        assert "'prod' is renamed 'prod (#3)'" in capsys.readouterr().out
        with pytest.raises(sa.exc.IntegrityError):  # the index now ignores case
            conn.execute(sa.text("UPDATE ecs_credential SET name = 'PROD' WHERE id = 3"))


def test_a_database_a_newer_version_migrated_is_named_with_what_to_do(app):
    from sqlalchemy import text

    from webapp.cli import create_admin

    with db.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '0099_from_the_future'"))
    result = app.test_cli_runner().invoke(
        create_admin, ["zed"], env={"CERTDESK_ADMIN_PASSWORD": "a long enough password"}
    )
    assert result.exit_code == 1
    assert "database is at migration 0099_from_the_future" in result.output
    assert "restore the backup made before the upgrade" in result.output
    with db.engine.connect() as conn:  # nothing was changed or added
        assert conn.execute(text("select version_num from alembic_version")).scalar() == (
            "0099_from_the_future"
        )
        assert (
            conn.execute(text("select count(*) from \"user\" where username = 'zed'")).scalar() == 0
        )


def test_orders_placed_with_a_csr_before_0019_refer_to_its_key(app, user):
    """0019 gives each order that names a CSR, and no key, the key of that CSR: the key outlives
    the CSR being deleted while the order waits for its certificate."""
    import sqlalchemy as sa

    from tests.helpers import make_order
    from webapp.csrs import service as csrs

    csr = csrs.create_csr(user["operator"], "p256", {"CN": "www.example.com"}, "")
    bare = csrs.create_csr(user["operator"], "p256", {"CN": "bare.example.com"}, "")
    key_id = csr.private_key_id
    db.session.delete(bare.private_key)
    db.session.commit()
    placed = make_order("5001234", phase="pending", status="PENDING", csr_id=csr.id)
    without_key = make_order("5001235", csr_id=bare.id)
    no_csr = make_order("5001236")
    ids = (placed.id, without_key.id, no_csr.id)
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0018_certificate_suspended")
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT id, private_key_id FROM ca_order")).all())
    assert [keys[i] for i in ids] == [key_id, None, None]
    assert _drift() == []


def test_every_revision_id_fits_the_version_table():
    """Alembic keeps the revision in alembic_version.version_num, VARCHAR(32): PostgreSQL refuses
    a longer id at the upgrade (SQLite does not check the length, so a SQLite run alone would
    not tell)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(paths.MIGRATIONS_DIR))
    too_long = [r.revision for r in script.walk_revisions() if len(r.revision) > 32]
    assert too_long == []


def test_entrust_pickup_links_kept_before_0020_are_removed(app):
    """0020 takes Entrust's pickupUrl (a link that hands over the certificate) out of the fields
    each order keeps, and leaves every other field, and the orders without one, as they were."""
    import json

    import sqlalchemy as sa

    from tests.helpers import make_order

    link = "https://www.entrust.net/ssl/certpickup.cfm?id=5001234-0C227220A9C946A995B7E412C4264F5F"
    with_link = make_order("5001234", details=json.dumps({"pickupUrl": link, "trackingId": 1}))
    without = make_order("5001235", details=json.dumps({"trackingId": 2, "org": "pickupUrl Ltd"}))
    ids = (with_link.id, without.id)
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0019_order_keeps_csr_key")
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        kept = dict(conn.execute(sa.text("SELECT id, details FROM ca_order")).all())
    assert [json.loads(kept[i]) for i in ids] == [
        {"trackingId": 1},
        {"trackingId": 2, "org": "pickupUrl Ltd"},
    ]
    assert _drift() == []


def test_an_upgrade_cut_short_leaves_the_schema_as_it_was(app):
    """A step that fails part-way through a migration (as one stopped or killed would) undoes the
    steps before it, on SQLite as on PostgreSQL: the next start finds the schema of the version
    before, not one between two versions that no migration can take further."""
    import sqlalchemy as sa

    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0020_no_pickup_links")
    with db.engine.begin() as conn:  # 0021's third step will fail: its first two have run then
        conn.execute(sa.text("ALTER TABLE ecs_credential ADD COLUMN last_sync_failed_kinds TEXT"))
    with pytest.raises(sa.exc.DBAPIError, match="last_sync_failed_kinds"):
        upgrade(directory=str(paths.MIGRATIONS_DIR))
    db.engine.dispose()
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("ecs_credential")}
    assert "login_changed_at" not in columns and "last_sync_failed_at" not in columns
    with db.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            "0020_no_pickup_links"
        )
        conn.execute(sa.text("ALTER TABLE ecs_credential DROP COLUMN last_sync_failed_kinds"))
    upgrade(directory=str(paths.MIGRATIONS_DIR))  # the cause put right, the upgrade goes through
    assert _drift() == []


def test_credentials_showing_login_failed_before_0024_are_taken_as_refused(app):
    """0024 notes whether a credential's failed login was Entrust refusing it: a row showing
    Login failed before is taken as refused (the scheduled import left it out, and still does);
    the others are not. The downgrade takes the column out again."""
    import sqlalchemy as sa

    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0023_order_unread_action")
    with db.engine.begin() as conn:
        for name, ok in [("Failed", False), ("Works", True), ("Untested", None)]:
            conn.execute(
                sa.text(
                    "INSERT INTO ecs_credential (name, api_user, api_key_sealed, base_url, proxy,"
                    " client_cert_pem, client_key_sealed, client_cert_subject, ca_bundle_pem,"
                    " is_admin, admin_note, enabled, last_test_ok, last_test_message,"
                    " last_sync_error, last_sync_failed_kinds, created_at, updated_at)"
                    " VALUES (:name, 'u', '', 'http://x/', '', '', '', '', '', :t, '', :t, :ok,"
                    " '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ).bindparams(sa.bindparam("t", True), sa.bindparam("ok", ok, sa.Boolean())),
                {"name": name},
            )
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    with db.engine.connect() as conn:
        refused = dict(
            conn.execute(sa.text("SELECT name, last_test_refused FROM ecs_credential")).all()
        )
    assert {name: bool(r) for name, r in refused.items()} == {
        "Failed": True,
        "Works": False,
        "Untested": False,
    }
    assert _drift() == []
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0023_order_unread_action")
    db.engine.dispose()
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("ecs_credential")}
    assert "last_test_refused" not in columns and "last_test_ok" in columns
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    assert _drift() == []


def test_certificates_of_orders_suspended_before_0018_are_marked_suspended(app, user):
    """0018 added ``suspended_at`` but marked no existing certificate: one whose order was
    suspended before stayed valid on every page, and no status check changed it. 0025 marks the
    certificates of suspended orders (not revoked ones) and moves them to the suspended count of
    their expiry day; the others stay as they were."""
    import sqlalchemy as sa

    from tests.helpers import make_order
    from tests.unit.certs.factory import MiniPki
    from webapp.certificates import service as certificates
    from webapp.certificates.models import Certificate
    from webapp.dbtypes import utcnow

    pki = MiniPki()
    rows = {}
    for name, status in [("held", "SUSPENDED"), ("live", "ACTIVE"), ("revoked", "SUSPENDED")]:
        order = make_order(f"50099{len(rows)}", status=status, phase="issued")
        cert, _ = certificates.add_certificate(
            pki.leaf(f"{name}.example.com")[1], [], source="entrust", actor=user["admin"]
        )
        cert.order_id = order.id
        if name == "revoked":
            cert.revoked_at = utcnow()
        rows[name] = cert.id
    db.session.commit()
    db.session.remove()
    downgrade(directory=str(paths.MIGRATIONS_DIR), revision="0024_credential_login_refused")
    # As 0018 left them: no certificate marked, every one counted live (or revoked).
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE certificate SET suspended_at = NULL"))
    certificates.recount_expiry_days()
    db.session.remove()
    upgrade(directory=str(paths.MIGRATIONS_DIR))
    marked = {
        cid: suspended is not None
        for cid, suspended in db.session.execute(
            sa.select(Certificate.id, Certificate.suspended_at)
        )
    }
    assert marked == {rows["held"]: True, rows["live"]: False, rows["revoked"]: False}
    with db.engine.connect() as conn:
        counted = conn.execute(
            sa.text("SELECT sum(live), sum(suspended), sum(revoked) FROM certificate_expiry_day")
        ).one()
    assert tuple(counted) == (1, 1, 1)
    assert _drift() == []
