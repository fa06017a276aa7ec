"""WSGI entry point: ``gunicorn wsgi:app`` (the scheduler's lease keeps one leader)."""

from webapp import create_app

app = create_app()
if app.config["SCHEDULER_ENABLED"]:
    app.extensions["certdesk_scheduler"].start()
