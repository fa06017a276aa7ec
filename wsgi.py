"""WSGI entry point: ``gunicorn wsgi:app`` (the scheduler's lease keeps one leader)."""

import os

from webapp import create_app

os.umask(0o077)  # whatever CertDesk writes in its instance folder is its owner's alone
app = create_app()
if app.config["SCHEDULER_ENABLED"]:
    app.extensions["certdesk_scheduler"].start()
