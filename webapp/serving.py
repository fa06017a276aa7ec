"""Several worker processes on one listening socket: `certdesk serve --workers N`.

One waitress process runs Python on one core at a time (the GIL). With ``--workers N`` the
``serve`` command, once it has migrated the database and printed its notices, binds the socket
itself and forks N children; each serves that same socket with its own waitress, its own
database connections and its own scheduler (the lease row lets exactly one of them run periodic
tasks). The parent only supervises:

- SIGTERM or Ctrl-C (SIGINT) on the parent: every worker gets SIGTERM, finishes the requests it
  is answering, stops its scheduler (giving up the lease) and exits; the parent exits after them
  (workers still running after ``STOP_GRACE_SECONDS`` are killed).
- A worker that dies by itself (killed, out of memory) is replaced by a new one, so the server
  keeps its capacity. A worker that dies within ``QUICK_DEATH_SECONDS`` of starting means
  something is wrong that a restart will not mend (the database went away, a port problem):
  after ``MAX_QUICK_DEATHS`` such deaths in a row the server stops with a message rather than
  forking in a loop.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import time

STOP_GRACE_SECONDS = 30
QUICK_DEATH_SECONDS = 10
MAX_QUICK_DEATHS = 5


# A page makes tens of thousands of short-lived objects (ORM rows, template output). With
# Python's default gen-0 threshold of 700 the collector runs several times per page, and its
# older generations walk everything imported at start (Flask, SQLAlchemy, the compiled templates):
# about 0.8 ms of every page at the 100,000-row benchmark's mix. Freezing the start-up heap takes
# it out of every later collection (and, before a fork, keeps those pages shared with the
# workers); a gen-0 threshold of 20,000 makes collections rare. Together: 0.2 ms per page.
GC_THRESHOLD = (20_000, 20, 20)

# What waitress is given beside the app. Its defaults hold at most 100 connections and leave an
# idle or unfinished one open for 120 s: 100 connections that send part of a request and then a
# byte now and then kept every user out. So: many more connections (polled, since select() stops
# at 1,024 descriptors), and one that sends nothing for 30 s is closed (a request being served is
# not). A reverse proxy in front remains the place to limit clients.
WAITRESS_OPTIONS = {
    "ident": "CertDesk",
    "connection_limit": 1000,
    "channel_timeout": 30,
    "cleanup_interval": 10,
    "asyncore_use_poll": True,
    # waitress drops every X-Forwarded-* header unless told which proxy to trust. CertDesk reads
    # them itself, from the proxies Admin › Settings names (auth.service.client_address): they
    # are handed on, and ignored from anyone else.
    "clear_untrusted_proxy_headers": False,
}

# waitress reads a request's whole body (into a temporary file past 512 KiB) before the app sees
# it, and by default takes bodies of up to 1 GiB: a few dozen unsigned-in uploads at once held
# the disk's free space, only for the app to refuse each as larger than MAX_CONTENT_LENGTH. A
# body up to this many times the app's limit is still read, so that the app says in its own page
# that the upload is too large; a larger one gets waitress's 413 at once, before its body is read.
BODY_LIMIT_FACTOR = 4


def waitress_options(app) -> dict:
    """What waitress is given beside the app: WAITRESS_OPTIONS and the app's body limit."""
    limit = app.config.get("MAX_CONTENT_LENGTH")
    if not limit:  # no upload limit configured: waitress's own
        return dict(WAITRESS_OPTIONS)
    return {**WAITRESS_OPTIONS, "max_request_body_size": int(limit) * BODY_LIMIT_FACTOR}


def tune_gc() -> None:
    """Collect once, freeze what survives (the server's start-up state), raise the threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket every worker serves (IPv4 or IPv6, as the host is written). An IPv6
    one takes IPv6 only, as waitress's own socket does with one worker: `--host ::` serves the
    same clients whatever the number of workers."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def supervise(app, sock: socket.socket, workers: int, threads: int, echo=print) -> int:
    """Run ``workers`` children serving ``sock`` until SIGTERM/SIGINT; returns the exit status."""
    # No connection opened here may be shared with a child: each child opens its own.
    close_connections()
    sys.stdout.flush()
    sys.stderr.flush()
    tune_gc()  # before the fork, so the children share the frozen pages

    # Ctrl-C counts unless whoever started us ignores it (nohup, `&`, a launcher of its own).
    watched = {signal.SIGTERM, signal.SIGCHLD}
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        watched.add(signal.SIGINT)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    # SIGCHLD's default is to discard it; a handler (never run while blocked) makes it pending.
    old_chld = signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started at)

    def start(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                # The worker's own handlers are in place before any signal can reach it.
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
                signal.signal(signal.SIGTERM, _stop_child)
                signal.signal(signal.SIGCHLD, old_chld)
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                _serve_child(app, sock, threads)
                status = 0
            except SystemExit:  # SIGTERM while it was still starting
                status = 0
            except BaseException:  # noqa: BLE001 - a child never returns into the parent's code
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        children[pid] = (slot, time.monotonic())

    quick_deaths = 0
    status = 0
    try:
        for slot in range(workers):
            start(slot)
        while True:
            info = signal.sigtimedwait(watched, 1.0)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                break
            failed = False
            for pid, code, (slot, started) in _reaped(children):
                quick = time.monotonic() - started < QUICK_DEATH_SECONDS
                quick_deaths = quick_deaths + 1 if quick else 0
                failed = quick_deaths >= MAX_QUICK_DEATHS
                then = "" if failed else "; starting another"
                echo(f"CertDesk worker {slot + 1} (pid {pid}) {_describe(code)}{then}.")
                if failed:
                    break
                start(slot)
            if failed:
                echo(
                    f"CertDesk stopped: {MAX_QUICK_DEATHS} workers in a row ended within "
                    f"{QUICK_DEATH_SECONDS} s of starting; see the messages above."
                )
                status = 1
                break
    finally:
        _stop_all(children)
        sock.close()
        signal.signal(signal.SIGCHLD, old_chld)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return status


def _reaped(children: dict) -> list[tuple[int, int, tuple]]:
    """The children that have ended, taken out of ``children``: (pid, wait status, their entry)."""
    ended = []
    for pid in list(children):
        try:
            done, code = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
            done, code = pid, 0
        if done:
            ended.append((pid, code, children.pop(pid)))
    return ended


def _describe(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"was ended by signal {signal.Signals(os.WTERMSIG(code)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(code)}"


def _stop_all(children: dict) -> None:
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while children and time.monotonic() < deadline:
        _reaped(children)
        if children:
            time.sleep(0.05)
    for pid in children:
        _signal(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _serve_child(app, sock: socket.socket, threads: int) -> None:
    """One worker: its own connections, its own scheduler identity, waitress on ``sock``."""
    import waitress

    from webapp.extensions import db
    from webapp.jobs import service as jobs

    for engine in db.engines.values():
        engine.dispose(close=False)  # inherited pool entries (none are expected) stay the parent's
    app.extensions.pop("certdesk_jobs", None)  # this process's own job pool, made when needed
    scheduler = app.extensions["certdesk_scheduler"]
    scheduler.new_identity()
    if app.config["SCHEDULER_ENABLED"]:
        scheduler.start()
    try:
        server = waitress.create_server(
            app, sockets=[sock], threads=threads, **waitress_options(app)
        )
        server.run()
    finally:
        jobs.stop_pool(app)
        scheduler.shutdown()
        close_connections()


def close_connections() -> None:
    """Close this process's database connections as it stops. On SQLite the last one to close
    writes the write-ahead log back into the database file and removes it, so a copy of
    certdesk.db taken while CertDesk is stopped holds everything."""
    from webapp.extensions import db

    db.session.remove()
    for engine in db.engines.values():
        engine.dispose()


def _stop_child(_signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)
