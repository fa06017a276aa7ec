"""`certdesk sandbox`: run the ECS sandbox from the command line.

The portal's CLI adds the click command `sandbox` from this module. It serves the API under
/enterprise/v2 over HTTPS (server certificate from the sandbox CA; the root is written next to
the state file, or to a temporary file, and its path is printed) or, with --http, plain HTTP.

API user: with --api-user and --api-key that user is created (or replaced) as an administrator.
Without them a default administrator `sandbox-admin` is used; its generated key is stored in the
state, so with --state it stays the same across restarts (in memory it is new each start).
"""

from __future__ import annotations

import os
import secrets
import tempfile

import click

from .app import Sandbox, create_app
from .auth import create_user
from .seed import seed_account
from .server import make_server

DEFAULT_USER = "sandbox-admin"


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=int, help="Port to listen on.")
@click.option("--http", "plain_http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option("--seed", "seed_count", type=int, default=None, help="Seed N certificates at start.")
@click.option("--seed-value", default="1", show_default=True, help="Seed value for the data.")
@click.option("--state", "state_path", default=None, help="SQLite file kept across restarts.")
@click.option("--api-user", default=None, help="API username to create (administrator).")
@click.option("--api-key", default=None, help="API key (password) of --api-user.")
def sandbox(host, port, plain_http, seed_count, seed_value, state_path, api_user, api_key):
    """Run the Entrust ECS API v2 sandbox until interrupted."""
    if bool(api_user) != bool(api_key):
        raise click.UsageError("--api-user and --api-key go together")
    box = Sandbox(state_path)
    if api_user:
        create_user(box, api_user, api_key, "administrator", False)
    else:
        api_user = DEFAULT_USER
        stored = box.store.get_meta("default_api_key")
        api_key = stored or secrets.token_urlsafe(24)
        box.store.set_meta("default_api_key", api_key)
        create_user(box, api_user, api_key, "administrator", False)
    box.keep_users = [api_user]
    if seed_count is not None:
        summary = seed_account(box.store, seed_count, seed_value)
        click.echo(f"Seeded {summary['certificates']} certificates (seed {seed_value}).")
    server = make_server(create_app(box), box.store, host, port, https=not plain_http)
    scheme = "http" if plain_http else "https"
    shown_host = f"[{host}]" if ":" in host else host
    base = f"{scheme}://{shown_host}:{server.server_port}"
    click.echo(f"Entrust ECS sandbox: {base}/enterprise/v2/")
    click.echo(f"Control API:         {base}/_sandbox/")
    click.echo(f"API user: {api_user}")
    click.echo(f"API key:  {api_key}")
    if not plain_http:
        ca_path = (state_path + ".ca.pem") if state_path else _temp_ca_path()
        with open(ca_path, "w") as fh:
            fh.write(box.store.ca.root_pem)
        click.echo(f"Root CA (verify with it): {ca_path}")
    click.echo("Press Ctrl+C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        box.stop_event.set()
        server.server_close()
        box.store.close()


def _temp_ca_path() -> str:
    handle, path = tempfile.mkstemp(prefix="entrust-sandbox-root-", suffix=".pem")
    os.close(handle)
    return path


if __name__ == "__main__":  # pragma: no cover - manual use: python -m entrust_sandbox.cli
    sandbox()
