"""The sandbox's HTTP(S) server: werkzeug's threaded server with TLS and connection faults.

The request handler puts the TLS peer certificate (DER) and itself into the WSGI environ, so the
API can authenticate mTLS users and the fault middleware can drop a connection. Client
certificates are requested but optional (`CERT_OPTIONAL`), with the sandbox root and
intermediate as trust anchors; a certificate that does not chain to them fails the handshake.

Connections persist, as the live API's do: an HTTP/1.1 request whose body is delimited by
Content-Length (or absent) is answered without "Connection: close", what the app left of its
body is read off, and the connection waits for the next request, up to `IDLE_SECONDS`. A client
that asks to close, an HTTP/1.0 client, a chunked request body and a fault that drops or cuts
short its answer still close the connection after the answer.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import threading

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .auth import PEER_CERT
from .traffic import reset_socket

# How long a kept-alive connection may wait for its next request before the server closes it.
IDLE_SECONDS = 60.0
# How long a new connection may take over its TLS handshake.
HANDSHAKE_SECONDS = 10.0
# The most of an unread request body read off to keep its connection; past it, close instead.
_DRAIN_LIMIT = 1 << 20


class _Body(io.RawIOBase):
    """A request body of known length, read from the connection's stream and never past its
    end, so the next request on the connection stays where it is."""

    def __init__(self, stream, length: int):
        self._stream = stream
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[: self.left]
        data = self._stream.read(len(view))
        view[: len(data)] = data
        self.left -= len(data)
        if not data:
            self.left = 0  # the client went away mid-body: nothing more will come
        return len(data)

    def read_off(self) -> bool:
        """Read and drop what the app left unread; False when too much is left to be worth it
        or the client stopped sending."""
        if self.left > _DRAIN_LIMIT:
            return False
        while self.left > 0:
            data = self._stream.read(min(self.left, 65536))
            if not data:
                return False
            self.left -= len(data)
        return True


class _NothingMore:
    """Stands in for the connection's stream while werkzeug runs a kept-alive request: werkzeug
    reads whatever arrives in the 10 ms after an answer (it expects to close), which would be
    the client's next request."""

    @staticmethod
    def read(size=-1) -> bytes:
        return b""


class SandboxRequestHandler(WSGIRequestHandler):
    """Adds `sandbox.peer_cert` and `sandbox.handler` to the environ; keeps connections alive."""

    quiet = False
    _body: _Body | None = None

    def setup(self):
        """Start a connection on its own thread: the TLS handshake, bounded, then the wait for
        each request, bounded by the server's `idle_seconds`."""
        # An answer goes out as its head, then its body; on a connection that stays open,
        # Nagle's algorithm would hold the body back until the client's delayed ACK (40 ms).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            # Not in accept(): there, a client that connects and says nothing would hold up
            # every other connection.
            self.request.settimeout(HANDSHAKE_SECONDS)
            self.request.do_handshake()
        self.timeout = self.server.idle_seconds
        super().setup()
        self.server.opened(self.connection)

    def finish(self):
        """Forget the connection once its last request is answered."""
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def _body_length(self) -> int | None:
        """The request body's length when Content-Length alone delimits it (0 when absent)."""
        if "Transfer-Encoding" in self.headers:
            return None
        value = self.headers.get("Content-Length")
        if value is None:
            return 0
        value = value.strip()
        return int(value) if value.isascii() and value.isdigit() else None

    def run_wsgi(self):
        """Run the request; keep the connection open after it when its framing allows."""
        length = self._body_length()
        if length is None or self.request_version != "HTTP/1.1" or self.close_connection:
            self.close_connection = True
            return super().run_wsgi()
        stream, self.rfile = self.rfile, _NothingMore()
        self._body = body = _Body(stream, length)
        try:
            super().run_wsgi()
        finally:
            self.rfile, self._body = stream, None
        if not self.close_connection and not body.read_off():
            self.close_connection = True

    def send_header(self, keyword, value):
        """Leave out werkzeug's "Connection: close" on a connection that stays open."""
        if (
            self._body is not None
            and not self.close_connection
            and keyword.lower() == "connection"
            and value.lower() == "close"
        ):
            return
        super().send_header(keyword, value)

    def make_environ(self):
        """Build the WSGI environ with the TLS peer certificate attached, and the body read
        from the connection no further than its Content-Length."""
        environ = super().make_environ()
        if self._body is not None:
            environ["wsgi.input"] = self._body
        peer = None
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                peer = self.connection.getpeercert(binary_form=True)
            except (ValueError, ssl.SSLError):
                peer = None
        environ[PEER_CERT] = peer
        environ["sandbox.handler"] = self
        return environ

    def handle_expect_100(self):
        """Send no "100 Continue" here: werkzeug sends one when it runs the request, and a
        client that sent "Expect: 100-continue" (.NET's HttpWebRequest does on every POST, PUT
        and PATCH) should see one interim answer, not two."""
        return True

    def send_error(self, code, message=None, explain=None):
        """Answer what the server refuses before the app sees it (a request line or a header
        too long, too many headers, a request line that is no HTTP) in the ECS error envelope,
        as every other error is answered, rather than http.server's HTML page."""
        try:
            reason = self.responses[code][0]
        except KeyError:
            reason = "Error"
        if not self.server.quiet:
            self.log_error("code %d, message %s", code, message or reason)
        # A request line that could not be read leaves http.server at HTTP/0.9, which answers
        # with neither a status line nor headers: answer it as to any HTTP/1 client.
        self.request_version = "HTTP/1.0"
        self.send_response(code, reason)
        self.send_header("Connection", "close")
        body = b""
        if code >= 200 and code not in (204, 205, 304):
            envelope = {"status": code, "errors": [{"message": message or reason}]}
            body = json.dumps(envelope).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def log_error(self, format, *args):
        """Say nothing when a kept-alive connection's wait for its next request runs out."""
        if format.startswith("Request timed out"):
            return
        super().log_error(format, *args)

    def log_request(self, code="-", size="-"):
        """Log like werkzeug unless the server runs quiet (tests and benchmarks)."""
        if not self.server.quiet:
            super().log_request(code, size)

    def connection_dropped(self, error, environ=None):
        """A dropped connection is expected when a fault asks for it; say nothing."""


class SandboxServer(ThreadedWSGIServer):
    """Threaded WSGI server that can close a connection with a TCP reset on request."""

    def __init__(self, host, port, app, ssl_context=None, quiet=False, idle_seconds=IDLE_SECONDS):
        self.quiet = quiet
        self.idle_seconds = idle_seconds
        self._reset_lock = threading.Lock()
        self._to_reset: set[int] = set()
        self._open: set = set()
        super().__init__(host, port, app, handler=SandboxRequestHandler)
        if ssl_context is not None:
            # The handshake waits for the handler's thread (SandboxRequestHandler.setup).
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
            self.ssl_context = ssl_context

    def opened(self, connection) -> None:
        """Note a connection a handler serves, so that closing the server can end it."""
        with self._reset_lock:
            self._open.add(connection)

    def closed(self, connection) -> None:
        with self._reset_lock:
            self._open.discard(connection)

    def server_close(self):
        """Stop listening, and end the connections kept alive: a client of a stopped sandbox
        finds no server, as before connections persisted."""
        super().server_close()
        with self._reset_lock:
            still_open = list(self._open)
        for connection in still_open:
            # Below TLS: the handler's read sees the end of the stream and returns.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def mark_for_reset(self, connection) -> None:
        """Close this connection with a reset once the handler is done with it."""
        with self._reset_lock:
            self._to_reset.add(id(connection))

    def shutdown_request(self, request):
        """Close the connection; a reset one skips the orderly shutdown so the peer sees RST."""
        with self._reset_lock:
            reset = id(request) in self._to_reset
            self._to_reset.discard(id(request))
        if reset:
            reset_socket(request)
            return
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        """Ignore errors from clients that went away; log the rest."""
        logging.getLogger("entrust_sandbox").debug(
            "error serving %s", client_address, exc_info=True
        )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Where a datagram socket is pointed (nothing is sent) to learn the address of the default
# route: documentation addresses, never anyone's host.
_ROUTE_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def served_hosts(host: str) -> list[str]:
    """The names and addresses the server certificate names: loopback, and the host served on,
    so that a client on another machine verifies the address it connects to. A wildcard host
    (0.0.0.0, ::) adds this machine's names and the addresses found without the network."""
    hosts = list(LOOPBACK_HOSTS)
    host = host.strip().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names = [host]
    else:
        if not address.is_unspecified:
            return _add_hosts(hosts, [str(address)])
        names = [socket.gethostname(), socket.getfqdn()]
        names += _addresses_of(names) + _route_addresses()
    return _add_hosts(hosts, names)


def _add_hosts(hosts: list[str], more) -> list[str]:
    """``hosts`` and those of ``more`` that a certificate can name (an IP address, or a name in
    ASCII), each once; no link-local address, which means nothing without its interface."""
    for name in more:
        name = (name or "").strip().rstrip(".").lower()
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            if not name or not name.isascii():
                continue
        else:
            if address.is_unspecified or address.is_link_local:
                continue
            name = str(address)
        if name not in hosts:
            hosts.append(name)
    return hosts


def _addresses_of(names: list[str]) -> list[str]:
    """The addresses the machine's own names resolve to (its hosts file, mostly)."""
    found = []
    for name in dict.fromkeys(names):
        with contextlib.suppress(OSError, UnicodeError):
            for *_, sockaddr in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP):
                found.append(sockaddr[0].split("%")[0])
    return found


def _route_addresses() -> list[str]:
    """This machine's address on its default route, for IPv4 and IPv6: connecting a datagram
    socket picks the source address and sends nothing."""
    found = []
    for family, probe in _ROUTE_PROBES:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.connect((probe, 9))
            found.append(probe_socket.getsockname()[0].split("%")[0])
    return found


def make_ssl_context(store, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server-side TLS context with a certificate from the sandbox CA for loopback and ``host``
    (see `served_hosts`), issued at each start, so a new host is always named."""
    chain_pem, key_pem = store.ca.issue_tls_server(store.clock.now(), served_hosts(host))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain needs files; keep them only as long as loading takes.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file = os.path.join(tmp, "server.pem")
        key_file = os.path.join(tmp, "server.key")
        with open(cert_file, "w") as fh:
            fh.write(chain_pem)
        with open(key_file, "w") as fh:
            fh.write(key_pem)
        context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cadata=store.ca.root_pem + store.ca.intermediate_pem)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def make_server(app, store, host="127.0.0.1", port=0, https=True, quiet=False) -> SandboxServer:
    """Bind a sandbox server for `app` (port 0 picks a free port)."""
    context = make_ssl_context(store, host) if https else None
    return SandboxServer(host, port, app, ssl_context=context, quiet=quiet)
