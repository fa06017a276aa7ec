#!/usr/bin/env python3
"""`make run`: the Entrust ECS sandbox and CertDesk side by side, until Ctrl-C stops both.

The sandbox serves plain HTTP on loopback, keeps its state in the instance folder
(instance/sandbox/, owner-only), and is seeded with a few hundred existing orders the first time.
Its API key is generated once into instance/sandbox/api-key and handed over in that file, never on
a command line. CertDesk is told where the sandbox is (CERTDESK_DEMO_SANDBOX_URL, _USER, _KEY), so
its empty Credentials tab offers "Add the sandbox credential". Set SANDBOX=0 to start CertDesk
alone; HOST, PORT, SANDBOX_PORT and CERTDESK_INSTANCE change where things are.

Both children's output comes through here (the portal's setup link is held back), and once both
answer, one block at the end says what to open: CertDesk's URL, the setup link while there is no
user yet, and the sandbox credential: how to add it, or, when the portal says at start that a
credential already reaches the sandbox, that it is linked. Ctrl-C reaches only this script (the
children ignore SIGINT); it stops the children with SIGTERM, which they treat as a quiet, orderly
stop: CertDesk first (it pauses a running import while the sandbox still answers), then the
sandbox.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SEED_ORDERS = 300
API_USER = "certdesk-demo"
CREDENTIAL_NAME = "Entrust sandbox"  # what "Add the sandbox credential" names it
START_TIMEOUT = 60
STOP_TIMEOUT = 10

SETUP_LINK = re.compile(r"(https?://\S+/setup\?token=\S+)")
CREATE_ADMIN = re.compile(r"^\(or run: (.+ create-admin USERNAME)\)$")
DEMO_STATE = re.compile(r"^Demo sandbox: (.+)$")
LINKED = re.compile(r"^linked as the credential (.+)$")
MOVED = re.compile(r"^moved from (\S+) in the credential (.+)$")


class Children:
    """The child processes, with their merged stdout/stderr read (and echoed) here."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._open: dict[int, tuple[str, bytearray]] = {}
        self.setup_link: str | None = None
        self.create_admin: str | None = None
        self.demo_state: str | None = None  # the portal's "Demo sandbox: ..." line

    def start(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint,
        )
        self.procs.append((name, proc))
        self._open[proc.stdout.fileno()] = (name, bytearray())
        return proc

    def pump(self, timeout: float) -> None:
        """Echo what the children wrote, waiting up to `timeout` seconds for something."""
        if not self._open:
            time.sleep(timeout)
            return
        ready, _, _ = select.select(list(self._open), [], [], timeout)
        for fd in ready:
            name, pending = self._open[fd]
            chunk = os.read(fd, 65536)
            if not chunk:
                del self._open[fd]
                if pending:
                    self._line(name, pending.decode(errors="replace"))
                continue
            pending += chunk
            *lines, rest = pending.split(b"\n")
            pending[:] = rest
            for line in lines:
                self._line(name, line.decode(errors="replace"))

    def drain(self) -> None:
        """Echo everything the children have written so far (without waiting for more)."""
        while self._open and select.select(list(self._open), [], [], 0)[0]:
            self.pump(0)

    def _line(self, name: str, line: str) -> None:
        if name == "sandbox" and line.startswith("Press Ctrl+C"):
            return  # the block at the end says how to stop both
        if name == "portal":
            # The first-run lines go into the block at the end instead.
            if line.startswith("No users yet."):
                return
            if (link := SETUP_LINK.search(line)) is not None:
                self.setup_link = link.group(1)
                return
            if (command := CREATE_ADMIN.match(line)) is not None:
                self.create_admin = command.group(1)
                return
            if (state := DEMO_STATE.match(line)) is not None:
                self.demo_state = state.group(1)
                return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def wait_until_up(self, url: str, auth, proc: subprocess.Popen, what: str) -> None:
        import requests  # here: a Ctrl-C right at the start finds the handler already set

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.drain()
                raise SystemExit(f"{what} stopped (exit code {proc.returncode}); see above.")
            try:
                if requests.get(url, auth=auth, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            self.pump(0.2)
        raise SystemExit(f"{what} did not start within {START_TIMEOUT} s.")

    def stop(self) -> None:
        """SIGTERM to each child still running, the last started first, each once the one
        before has stopped: the portal pauses its jobs while the sandbox still answers them."""
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                self.pump(0.1)
            if proc.poll() is None:
                print(f"{name} did not stop within {STOP_TIMEOUT} s; killing it.", flush=True)
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + 2
        while self._open and time.monotonic() < deadline:  # all exited: their pipes end
            self.pump(0.2)


def _refuse_a_port_in_use(host: str, port: str, setting: str, what: str) -> None:
    """Stop before starting ``what`` when its port is taken: another server answering there
    would be taken for it (its /healthz), and the block would send the user to that one."""
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return  # not an address or a port: the server itself says so
    family, _type, _proto, _name, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(address)
        except OSError as exc:
            raise SystemExit(
                f"{what} cannot listen on {host}:{port}: {exc.strerror}. Another program (another "
                f"make run?) uses it: stop it, or choose another port, e.g. "
                f"{setting}={int(port) + 10} make run"
            ) from None


def _ignore_sigint() -> None:
    """In the children: Ctrl-C at the terminal is for this script, which then stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupt(*_args):
    # Stop once; a second Ctrl-C while the children shut down changes nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _api_key(folder: Path) -> Path:
    """The file with the sandbox API key: made once (0600), then reused."""
    path = folder / "api-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    return path


def _create_admin_hint(command: str | None, instance: Path) -> str:
    """The portal's `certdesk create-admin` hint, with the instance folder when not the default."""
    command = command or "certdesk create-admin USERNAME"
    if instance != Path("instance").resolve():
        command = f"CERTDESK_INSTANCE={shlex.quote(str(instance))} {command}"
    return command


def _shown(path: Path) -> str:
    """A path as a shell takes it: quoted when it holds a space (a clone in "My projects"), so it
    can be copied into `cat` as it is."""
    return shlex.quote(str(path))


def _sandbox_lines(state: str | None, sandbox: dict) -> list[str]:
    """What to do with the sandbox, from the portal's word on its credentials: open the orders
    when a credential already reaches it; else add one (in one click on an empty Credentials tab,
    where CertDesk offers it; else by hand)."""
    linked = LINKED.match(state or "")
    if linked is not None:
        return [
            f"An Entrust sandbox runs beside it, linked as the credential '{linked.group(1)}'.",
            "In CertDesk open SSL > Entrust for its orders (Import Existing Orders brings in",
            "those not there yet), or SSL > Entrust > Manage for its organizations, domains",
            "and products.",
        ]
    moved = MOVED.match(state or "")
    if moved is not None:
        # Another SANDBOX_PORT than before: the credential keeps the old address (a second one
        # for the same sandbox user, or of the same name, is not the way).
        before, name = moved.groups()
        return [
            "An Entrust sandbox runs beside it, at another port than the credential",
            f"'{name}' has ({before}).",
            f"In CertDesk open SSL > Entrust > Manage, click '{name}' and enter:",
            f"  Base URL         {sandbox['url']}",
            f"  API Key          the line in {_shown(sandbox['key_file'])}"
            " (asked again for a new address)",
            "Then Save, and click Sync in its row.",
        ]
    if state in (None, "no credentials yet"):
        first = [
            "An Entrust sandbox runs beside it. In CertDesk open SSL > Entrust > Manage and click",
            "'Add the sandbox credential', or 'Add Credential' and enter:",
        ]
    else:
        first = [
            "An Entrust sandbox runs beside it. In CertDesk open SSL > Entrust > Manage, click",
            "'Add Credential' and enter:",
        ]
    return [
        *first,
        f"  Credential Name  {CREDENTIAL_NAME}",
        f"  User Name        {sandbox['user']}",
        f"  API Key          the line in {_shown(sandbox['key_file'])} (kept out of this output)",
        f"  Base URL         {sandbox['url']}",
        "Then watch the sync finish and open the Organizations, Domains and Products tabs.",
    ]


def _final_block(url: str, children: Children, instance: Path, sandbox: dict | None) -> str:
    lines = ["", "=== CertDesk is running ===", f"CertDesk:  {url}"]
    if children.setup_link:
        hint = _create_admin_hint(children.create_admin, instance)
        lines += [
            "No users yet. Create the first administrator with this one-time link:",
            f"  {children.setup_link}",
            f"  (or run: {hint})",
        ]
    else:
        lines.append("Sign in with your CertDesk account.")
    if sandbox is not None:
        lines += ["", *_sandbox_lines(children.demo_state, sandbox)]
    lines += ["", "Press Ctrl-C to stop CertDesk" + (" and the sandbox." if sandbox else "."), ""]
    return "\n".join(lines)


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8080")
    sandbox_port = os.environ.get("SANDBOX_PORT", "8443")
    instance = Path(os.environ.get("CERTDESK_INSTANCE", "instance")).resolve()
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as CertDesk keeps it
    env = dict(os.environ, CERTDESK_INSTANCE=str(instance), PYTHONUNBUFFERED="1")
    if host in ("127.0.0.1", "localhost"):
        # Served to this machine only: CertDesk answers no other name, so no web page opened
        # here can point its own name at it (DNS rebinding) and use it from this browser.
        env.setdefault("CERTDESK_TRUSTED_HOSTS", json.dumps(["127.0.0.1", "localhost"]))
    python = sys.executable
    children = Children()
    sandbox = None

    # Ctrl-C (SIGINT) or SIGTERM stops both, even when started with SIGINT ignored (nohup, &).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if os.environ.get("SANDBOX", "1") != "0":
            folder = instance / "sandbox"
            folder.mkdir(mode=0o700, exist_ok=True)
            state = folder / "state.db"
            key_file = _api_key(folder)
            key = key_file.read_text().strip()
            cmd = [python, "-m", "webapp", "sandbox", "--http", "--host", "127.0.0.1"]
            cmd += ["--port", sandbox_port, "--state", str(state)]
            cmd += ["--api-user", API_USER, "--api-key-file", str(key_file)]
            if not state.exists():
                cmd += ["--seed", str(SEED_ORDERS), "--seed-value", "demo"]
            _refuse_a_port_in_use("127.0.0.1", sandbox_port, "SANDBOX_PORT", "The sandbox")
            proc = children.start("sandbox", cmd, env)
            base = f"http://127.0.0.1:{sandbox_port}/enterprise/v2/"
            children.wait_until_up(base + "application/version", (API_USER, key), proc, "Sandbox")
            sandbox = {"url": base, "user": API_USER, "key_file": key_file}
            env.update(
                CERTDESK_DEMO_SANDBOX_URL=base,
                CERTDESK_DEMO_SANDBOX_USER=API_USER,
                CERTDESK_DEMO_SANDBOX_KEY=key,
                CERTDESK_DEMO_SANDBOX_KEY_FILE=str(key_file),
            )
        cmd = [python, "-m", "webapp", "serve", "--host", host, "--port", port]
        _refuse_a_port_in_use(host, port, "PORT", "CertDesk")
        portal = children.start("portal", cmd, env)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        shown = f"[{shown}]" if ":" in shown else shown
        url = f"http://{shown}:{port}/"
        children.wait_until_up(url + "healthz", None, portal, "CertDesk")
        # The portal wrote its first-run lines before it began to answer: they are in the pipe.
        children.drain()
        sys.stdout.write(_final_block(url, children, instance, sandbox) + "\n")
        sys.stdout.flush()
        while all(p.poll() is None for _n, p in children.procs):
            children.pump(0.5)
        children.drain()
        for name, p in children.procs:
            if p.poll() is not None:
                print(f"{name} stopped (exit code {p.returncode}); stopping the rest.", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop()


if __name__ == "__main__":
    sys.exit(main())
