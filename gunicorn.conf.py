"""gunicorn's settings for CertDesk, read from the current folder by `gunicorn wsgi:app` (see the
README): a worker that stops in order does what `certdesk serve` does at its stop. It pauses its
background jobs for the next start, gives the scheduler's lease up and closes its database
connections (on SQLite the write-ahead log goes back into certdesk.db)."""


def worker_exit(server, worker):
    app = getattr(worker, "wsgi", None)  # None when the app did not load
    if app is None or not hasattr(app, "extensions"):
        return
    from webapp import serving
    from webapp.jobs import service as jobs

    jobs.stop_pool(app)
    app.extensions["certdesk_scheduler"].shutdown()
    with app.app_context():
        serving.close_connections()
