"""The CERTDESK_* settings the README names: one of the wrong kind stops the start with its name
and what it takes, instead of a traceback later or a value read as something else."""

from __future__ import annotations

import pytest
from flask_wtf.csrf import generate_csrf

from tests.conftest import make_app
from tests.live import run_certdesk
from webapp import create_app


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("IDLE_TIMEOUT_MINUTES", "abc", "must be a whole number from 1 to 10,080, not 'abc'"),
        ("IDLE_TIMEOUT_MINUTES", "0", "must be a whole number from 1 to 10,080, not 0"),
        ("MAX_CONTENT_LENGTH", "-5", "must be a whole number from 1 to 1,073,741,824, not -5"),
        ("ORDERS_SETTLE_MARGIN_SECONDS", "1m", "must be a number from 0 to 86,400, not '1m'"),
        # Numbers to JSON, and too large for a date: each failed later, in every order or tick.
        ("ORDERS_SETTLE_MARGIN_SECONDS", "Infinity", "must be a number from 0 to 86,400, not inf"),
        ("SCHEDULER_LEASE_SECONDS", "NaN", "must be a number from 1 to 86,400, not nan"),
        ("SESSION_MAX_HOURS", "99999999999999999", "must be a whole number from 1 to 8,784"),
        ("LOGIN_FREE_FAILURES", "abc", "must be a whole number from 1 to 1,000,000, not 'abc'"),
        ("SCHEDULER_ENABLED", "nope", "must be true or false, not 'nope'"),
        ("SESSION_COOKIE_SECURE", "maybe", "must be true or false, not 'maybe'"),
        ("TRUSTED_HOSTS", "a.example, localhost", "must be a JSON list of host names"),
        ("LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
@pytest.mark.parametrize("command", [["audit", "verify"], ["serve"]])
def test_a_wrong_kind_of_setting_stops_the_start_naming_it(tmp_path, name, value, said, command):
    ran = run_certdesk(tmp_path / "instance", *command, **{f"CERTDESK_{name}": value})
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert f"CertDesk cannot start: CERTDESK_{name} {said}" in ran.stderr, ran.stderr


def test_only_certdesks_own_settings_are_read_from_the_environment(tmp_path, monkeypatch):
    """A CERTDESK_ variable that is not a setting (of another tool, or a Flask setting's name)
    changes nothing: CSRF protection cannot be switched off from the environment."""
    monkeypatch.setenv("CERTDESK_WTF_CSRF_ENABLED", "false")
    monkeypatch.setenv("CERTDESK_ADMIN_PASSWORD", "not a setting")
    monkeypatch.setenv("CERTDESK_IDLE_TIMEOUT_MINUTES", "45")
    app = make_app(tmp_path / "instance", tmp_path / "instance" / "certdesk.db")
    assert app.config["IDLE_TIMEOUT_MINUTES"] == 45
    assert "ADMIN_PASSWORD" not in app.config and app.config.get("WTF_CSRF_ENABLED", True)
    with app.test_client() as client:
        assert client.post("/login", data={"username": "a", "password": "b"}).status_code == 400


@pytest.mark.parametrize("off", ["False", "false", "no", "off", "0"])
def test_secure_cookie_off_in_words_is_off(tmp_path, monkeypatch, off):
    """CERTDESK_SESSION_COOKIE_SECURE=False: the session cookie is sent without the Secure flag
    (with it, a browser on plain http:// keeps no session and no one signs in)."""
    monkeypatch.setenv("CERTDESK_SESSION_COOKIE_SECURE", off)
    app = make_app(tmp_path / "instance", tmp_path / "instance" / "certdesk.db")
    assert app.config["SESSION_COOKIE_SECURE"] is False
    with app.test_client() as client:
        cookie = client.get("/login").headers.get("Set-Cookie", "")
    assert "certdesk_session=" in cookie and "Secure" not in cookie, cookie


@pytest.mark.parametrize("on", ["True", "true", "yes", "1"])
def test_secure_cookie_on_in_words_is_on(tmp_path, monkeypatch, on):
    monkeypatch.setenv("CERTDESK_SESSION_COOKIE_SECURE", on)
    app = make_app(tmp_path / "instance", tmp_path / "instance" / "certdesk.db")
    with app.test_client() as client:
        cookie = client.get("/login").headers.get("Set-Cookie", "")
    assert "certdesk_session=" in cookie and "Secure" in cookie, cookie


def test_one_trusted_host_as_plain_text_is_a_list_of_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CERTDESK_TRUSTED_HOSTS", "certdesk.example.com")
    app = make_app(tmp_path / "instance", tmp_path / "instance" / "certdesk.db")
    assert app.config["TRUSTED_HOSTS"] == ["certdesk.example.com"]
    with app.test_client() as client:
        assert client.get("/healthz", base_url="http://certdesk.example.com").status_code == 200
        assert client.get("/healthz", base_url="http://evil.example").status_code == 400


def test_a_log_level_in_lower_case_is_taken(tmp_path):
    """CERTDESK_LOG_LEVEL=warning quiets the INFO lines (the migrations' among them)."""
    ran = run_certdesk(
        tmp_path / "instance", "db", "upgrade", timeout=120, CERTDESK_LOG_LEVEL="warning"
    )
    assert ran.returncode == 0, ran
    assert "Traceback" not in ran.stderr and " INFO " not in ran.stderr, ran.stderr


def test_a_command_with_nothing_to_migrate_logs_nothing_at_info(tmp_path):
    """A daily `certdesk audit verify` (or any start) writes no line of Alembic's about the
    dialect and its DDL (the latter untrue on SQLite, whose upgrade is one transaction); the
    migrations that run are still named, one line each."""
    instance = tmp_path / "instance"
    made = run_certdesk(instance, "db", "upgrade", timeout=120)
    assert made.returncode == 0, made
    assert "Running upgrade  -> 0001_foundation" in made.stderr, made.stderr
    assert "Context impl" not in made.stderr and "DDL" not in made.stderr, made.stderr
    ran = run_certdesk(instance, "audit", "verify")
    assert ran.returncode == 0, ran
    assert ran.stderr == "", ran.stderr
    assert ran.stdout == "Audit trail intact: 0 events verified.\n"


@pytest.mark.parametrize("command", [["serve"], ["audit", "verify"]])
def test_a_short_session_key_in_the_environment_stops_the_start_in_a_line(tmp_path, command):
    """CERTDESK_SECRET_KEY=dev would sign every session and CSRF token with a guessable key: it
    is held to the length of the key file CertDesk makes, and the start stops, saying what to
    do, without making a key file or a database."""
    instance = tmp_path / "instance"
    ran = run_certdesk(instance, *command, CERTDESK_SECRET_KEY="dev-secret", timeout=30)
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "CertDesk cannot start: CERTDESK_SECRET_KEY holds 10 characters, not a key of at least 32"
    ), ran.stderr
    assert "dev-secret" not in ran.stderr  # the key itself is never said
    assert not (instance / "secret_key").exists() and not (instance / "certdesk.db").exists()


def test_a_long_session_key_of_digits_alone_signs_sessions_as_text(tmp_path, monkeypatch):
    """A key of digits alone is still a key: kept as the text given, not read as a number."""
    key = "1234567890" * 4
    monkeypatch.setenv("CERTDESK_SECRET_KEY", key)
    instance = tmp_path / "instance"
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'c.db'}",
        }
    )
    assert app.config["SECRET_KEY"] == key
    with app.test_request_context():
        assert generate_csrf()  # a CSRF token is signed with it
