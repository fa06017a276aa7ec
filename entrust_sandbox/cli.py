"""`certdesk sandbox`: run the ECS sandbox from the command line.

The portal's CLI adds the click command `sandbox` from this module. It serves the API under
/enterprise/v2 over HTTPS (server certificate from the sandbox CA for loopback and --host, made at
each start; the root is written next to the state file, or to a temporary file, and its path is
printed) or, with --http, plain HTTP.

API user: with --api-user and an API key that user is created (or replaced) as an administrator.
The key comes from --api-key-file (first line), else --api-key or the SANDBOX_API_KEY environment
variable; the file and the variable keep it off the command line, where `ps` shows it to everyone.
Without --api-user a default administrator `sandbox-admin` is used; its generated key is stored in
the state, so with --state it stays the same across restarts (in memory it is new each start).
With --client-cert FILE the API user must also present a client certificate (mutual TLS, as the
API users of Ansible's modules and Entrust's Go client do): the sandbox issues one from its CA at
each start and writes it and its key to FILE, which requests (`cert=FILE`) and curl (`--cert
FILE`) take as it is.

Files the sandbox writes (the --state database with its -wal and -shm files, the root CA beside it)
are readable by their owner only. Requests are not logged unless --log-requests is given; SIGTERM
stops the sandbox as Ctrl-C does.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import sqlite3
import tempfile

import click

from .app import Sandbox, create_app
from .auth import create_user
from .control import MAX_SEED_CERTIFICATES
from .seed import seed_account
from .server import make_server

DEFAULT_USER = "sandbox-admin"
API_KEY_ENV = "SANDBOX_API_KEY"


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8443,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option("--http", "plain_http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option(
    "--seed",
    "seed_count",
    type=click.IntRange(0, MAX_SEED_CERTIFICATES),
    default=None,
    help="Seed N certificates at start.",
)
@click.option("--seed-value", default="1", show_default=True, help="Seed value for the data.")
@click.option("--state", "state_path", default=None, help="SQLite file kept across restarts.")
@click.option("--api-user", default=None, help="API username to create (administrator).")
@click.option(
    "--api-key",
    envvar=API_KEY_ENV,
    show_envvar=True,
    default=None,
    help="API key (password) of --api-user. On the command line it shows in `ps`.",
)
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Read the API key of --api-user from the first line of this file.",
)
@click.option(
    "--client-cert",
    "client_cert_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="The API user must present a client certificate: issue one and write it with its key "
    "to this file (PEM, owner only). HTTPS only.",
)
@click.option("--log-requests", is_flag=True, help="Log every request to the console.")
def sandbox(
    host,
    port,
    plain_http,
    seed_count,
    seed_value,
    state_path,
    api_user,
    api_key,
    api_key_file,
    client_cert_path,
    log_requests,
):
    """Run the Entrust ECS API v2 sandbox until interrupted (Ctrl-C or SIGTERM)."""
    from_env = click.get_current_context().get_parameter_source("api_key") is (
        click.core.ParameterSource.ENVIRONMENT
    )
    key_source = API_KEY_ENV if from_env else "--api-key"
    if api_key_file:  # the file wins over SANDBOX_API_KEY, not over --api-key
        if api_key and not from_env:
            raise click.UsageError("give either --api-key or --api-key-file, not both")
        api_key = _read_key_file(api_key_file)
        key_source = api_key_file
    if client_cert_path and plain_http:
        raise click.UsageError("--client-cert needs HTTPS: leave out --http")
    if bool(api_user) != bool(api_key):
        raise click.UsageError(
            f"--api-user and an API key (--api-key, --api-key-file or {API_KEY_ENV}) go together"
        )
    previous_umask = os.umask(0o077)  # the state and CA files: owner only
    previous_handlers = _stop_on_signals()
    box = server = None
    try:
        try:
            box = Sandbox(state_path)
        except sqlite3.DatabaseError as exc:  # no such folder, no access, not a database
            raise click.ClickException(
                f"cannot open the state file {state_path}: {exc}; give --state a writable path "
                "to an SQLite file the sandbox made (or a new one)"
            ) from None
        if state_path:
            _owner_only(state_path)  # a state file made before files were kept private
        if api_user:
            shown_key = api_key if key_source == "--api-key" else f"(from {key_source})"
        else:
            api_user = DEFAULT_USER
            stored = box.store.get_meta("default_api_key")
            api_key = stored or secrets.token_urlsafe(24)
            box.store.set_meta("default_api_key", api_key)
            shown_key = api_key
        user = create_user(box, api_user, api_key, "administrator", bool(client_cert_path))
        if client_cert_path:
            _write_private(client_cert_path, user["clientCert"] + user["clientKey"])
        box.keep_users = [api_user]
        if seed_count is not None:
            summary = seed_account(box.store, seed_count, seed_value)
            click.echo(f"Seeded {summary['certificates']} certificates (seed {seed_value}).")
        app = create_app(box)
        server = make_server(
            app, box.store, host, port, https=not plain_http, quiet=not log_requests
        )
        scheme = "http" if plain_http else "https"
        base = f"{scheme}://{_shown_host(host)}:{server.server_port}"
        click.echo(f"Entrust ECS sandbox: {base}/enterprise/v2/")
        click.echo(f"Control API:         {base}/_sandbox/")
        click.echo(f"API user: {api_user}")
        click.echo(f"API key:  {shown_key}")
        if client_cert_path:
            click.echo(f"Client certificate and key (required): {client_cert_path}")
        if not plain_http:
            ca_path = (state_path + ".ca.pem") if state_path else _temp_ca_path()
            with open(ca_path, "w") as fh:
                fh.write(box.store.ca.root_pem)
            _owner_only(ca_path)
            click.echo(f"Root CA (verify with it): {ca_path}")
        if _is_wildcard(host):
            click.echo(f"Listening on every address of this machine ({host}).")
        click.echo("Press Ctrl+C to stop.")
        server.serve_forever()  # returns on KeyboardInterrupt
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM, also while starting: stop without a traceback
    finally:
        if box is not None:
            box.stop_event.set()
        if server is not None:
            server.server_close()
        if box is not None:
            box.store.close()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        os.umask(previous_umask)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _shown_host(host: str) -> str:
    """The host of the printed address: one a client can connect to, so a wildcard (0.0.0.0,
    ::) is shown as this machine's name, which the TLS certificate names too."""
    if _is_wildcard(host):
        host = socket.gethostname() or "localhost"
    return f"[{host}]" if ":" in host else host


def _stop_on_signals() -> dict:
    """Ctrl-C and SIGTERM both stop the sandbox; a signal ignored by the parent stays ignored."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _interrupt)
    return previous


def _interrupt(_signum, _frame):
    """Stop at the first signal; ignore any more so that shutting down is not interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _read_key_file(path: str) -> str:
    with open(path) as fh:
        key = fh.readline().strip()
    if not key:
        raise click.UsageError(f"--api-key-file {path} is empty")
    return key


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the start."""
    if os.path.exists(path):
        os.chmod(path, 0o600)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as fh:
        fh.write(text)


def _owner_only(path: str) -> None:
    """chmod 600 `path` (and SQLite's -wal and -shm beside it) where they exist."""
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            os.chmod(name, 0o600)


def _temp_ca_path() -> str:
    handle, path = tempfile.mkstemp(prefix="entrust-sandbox-root-", suffix=".pem")
    os.close(handle)
    return path


if __name__ == "__main__":  # pragma: no cover - manual use: python -m entrust_sandbox.cli
    sandbox()
