"""The CERTDESK_* settings the README names: one of the wrong kind stops the start with its name
and what it takes, instead of a traceback later or a value read as something else."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.live import run_certdesk


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("IDLE_TIMEOUT_MINUTES", "abc", "must be a whole number of at least 1, not 'abc'"),
        ("IDLE_TIMEOUT_MINUTES", "0", "must be a whole number of at least 1, not 0"),
        ("MAX_CONTENT_LENGTH", "-5", "must be a whole number of at least 1, not -5"),
        ("ORDERS_SETTLE_MARGIN_SECONDS", "1m", "must be a number of at least 0, not '1m'"),
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
