"""The migrations build exactly the schema the models describe, and come apart again."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from webapp import paths
from webapp.extensions import db


def _drift() -> list:
    with db.engine.connect() as conn:
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
