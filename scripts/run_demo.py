#!/usr/bin/env python3
"""`make run`: the Entrust ECS sandbox and CertDesk side by side, until Ctrl-C stops both.

The sandbox serves plain HTTP on loopback, keeps its state in the instance folder
(instance/sandbox/), and is seeded with a few hundred existing orders the first time. CertDesk is
told where it is (CERTDESK_DEMO_SANDBOX_URL, _USER, _KEY), so its empty Credentials tab offers
"Add the sandbox credential". Set SANDBOX=0 to start CertDesk alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

SEED_ORDERS = 300
API_USER = "certdesk-demo"


def _wait_for(url: str, auth: tuple[str, str] | None, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} stopped (exit code {proc.returncode}); see the output above.")
        try:
            if requests.get(url, auth=auth, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start within 60 s.")


def _default_sigint() -> None:
    """In the children: Ctrl-C stops them too (Python then raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _api_key(folder: Path) -> str:
    path = folder / "api-key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8080")
    sandbox_port = os.environ.get("SANDBOX_PORT", "8443")
    instance = Path(os.environ.get("CERTDESK_INSTANCE", "instance")).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CERTDESK_INSTANCE=str(instance), PYTHONUNBUFFERED="1")
    python = sys.executable
    procs: list[tuple[str, subprocess.Popen]] = []

    def stop() -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _name, proc in reversed(procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def interrupt(*_args):
        raise KeyboardInterrupt

    # Ctrl-C (SIGINT) or SIGTERM stops both, even when started with SIGINT ignored (nohup, &).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if os.environ.get("SANDBOX", "1") != "0":
            folder = instance / "sandbox"
            folder.mkdir(exist_ok=True)
            state = folder / "state.db"
            key = _api_key(folder)
            cmd = [python, "-m", "webapp", "sandbox", "--http", "--host", "127.0.0.1"]
            cmd += ["--port", sandbox_port, "--state", str(state)]
            cmd += ["--api-user", API_USER, "--api-key", key]
            if not state.exists():
                cmd += ["--seed", str(SEED_ORDERS), "--seed-value", "demo"]
            sandbox = subprocess.Popen(cmd, env=env, preexec_fn=_default_sigint)
            procs.append(("sandbox", sandbox))
            base = f"http://127.0.0.1:{sandbox_port}/enterprise/v2/"
            _wait_for(base + "application/version", (API_USER, key), sandbox, "The sandbox")
            env.update(
                CERTDESK_DEMO_SANDBOX_URL=base,
                CERTDESK_DEMO_SANDBOX_USER=API_USER,
                CERTDESK_DEMO_SANDBOX_KEY=key,
            )
        portal = subprocess.Popen(
            [python, "-m", "webapp", "serve", "--host", host, "--port", port],
            env=env,
            preexec_fn=_default_sigint,
        )
        procs.append(("portal", portal))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        _wait_for(f"http://{shown}:{port}/healthz", None, portal, "CertDesk")
        if "CERTDESK_DEMO_SANDBOX_URL" in env:
            print(
                "\n"
                "=== Demo: an Entrust sandbox runs beside CertDesk ===\n"
                f"  1. Open http://{shown}:{port}/ and sign in (first start: use the setup link "
                "above to create the administrator).\n"
                "  2. Go to SSL > Entrust > Manage and click 'Add the sandbox credential'.\n"
                "     (Or 'Add credential' with: Credential Name 'Entrust sandbox', "
                f"User Name '{API_USER}',\n      API Key '{env['CERTDESK_DEMO_SANDBOX_KEY']}', "
                f"Base URL '{env['CERTDESK_DEMO_SANDBOX_URL']}'.)\n"
                "  3. Watch the sync finish, then open the Organizations, Domains and Products "
                "tabs.\n"
                "Press Ctrl-C to stop CertDesk and the sandbox.\n",
                flush=True,
            )
        while all(p.poll() is None for _n, p in procs):
            time.sleep(0.5)
        for name, p in procs:
            if p.poll() is not None:
                print(f"{name} stopped (exit code {p.returncode}); stopping the rest.", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
