"""Logged values cannot forge a log line: control characters are escaped in every record."""

from __future__ import annotations

import io
import logging

import flask
import pytest

from webapp import create_app, errors, logsafe

FORGED = "prod\r\n2026-01-01 00:00:00 INFO webapp.auth: admin signed in\x1b[2K\x1b[31m\u2028x"


@pytest.fixture
def root_output(tmp_path):
    """The root logger's output as CertDesk configures it (create_app), into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SCHEDULER_ENABLED": False})
    assert len(root.handlers) == 1
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    yield buffer
    root.handlers, root.level = saved
    logging.getLogger().setLevel(saved[1])


def test_a_forged_line_stays_inside_its_record(root_output):
    logging.getLogger("webapp.credentials.service").info("credential %s (%s) created", 7, FORGED)
    logging.getLogger("waitress").warning(FORGED)  # not CertDesk's own logger: escaped too
    lines = root_output.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "credential 7 (prod\\r\\n2026-01-01 00:00:00 INFO webapp.auth: admin signed in"
        "\\x1b[2K\\x1b[31m\\u2028x) created"
    )
    assert "\x1b" not in root_output.getvalue() and "\r" not in root_output.getvalue()


def test_tracebacks_keep_their_lines_but_cannot_start_a_record(root_output):
    try:
        raise ValueError(FORGED)
    except ValueError:
        logging.getLogger("webapp.errors").exception("unhandled error")
    first, *rest = root_output.getvalue().splitlines()
    assert first.endswith("ERROR webapp.errors: unhandled error")
    assert rest and all(line.startswith("    ") for line in rest)
    # The exception's own line break stays one (it is the traceback's), indented like the rest.
    assert any(line.endswith("ValueError: prod\\r") for line in rest)
    assert any(line.startswith("    2026-01-01 00:00:00 INFO webapp.auth") for line in rest)


def test_every_record_is_escaped_whatever_handler_takes_it(app, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything").info("name=%s", "a\nb\x00c")
    assert caplog.records[-1].getMessage() == "name=a\\nb\\x00c"


def test_escape():
    assert logsafe.escape("plain text, ünïcödé") == "plain text, ünïcödé"
    assert logsafe.escape("\t\x7f\x85\u2029") == "\\t\\x7f\\x85\\u2029"


def test_a_line_logged_while_a_request_is_handled_names_the_request(root_output, tmp_path):
    """Every line a request logs (an unhandled error's among them) ends with the id its answer
    carries in X-Request-Id; a line logged outside a request has none."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SCHEDULER_ENABLED": False})
    with app.test_request_context("/certificates/"):
        app.preprocess_request()
        request_id = flask.g.request_id
        body, status, _headers = errors.handle_500(ValueError("broken"))  # logs it
        answer = app.process_response(app.response_class(body, status))
    logging.getLogger("webapp.scheduler").info("tick")
    during, *trace, outside = root_output.getvalue().splitlines()
    assert len(request_id) == 12 and answer.headers["X-Request-Id"] == request_id
    assert during.endswith(f"unhandled error: GET /certificates/ [request {request_id}]")
    assert trace[-1].endswith("ValueError: broken")
    # The error page gives the id as its reference, for the administrator to find its lines.
    assert f"The error was logged (reference {request_id}," in answer.get_data(as_text=True)
    assert outside.endswith("INFO webapp.scheduler: tick")
