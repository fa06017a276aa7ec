"""The sandbox's HTTP(S) server: werkzeug's threaded server with TLS and connection faults.

The request handler puts the TLS peer certificate (DER) and itself into the WSGI environ, so the
API can authenticate mTLS users and the fault middleware can drop a connection. Client
certificates are requested but optional (`CERT_OPTIONAL`), with the sandbox root and
intermediate as trust anchors; a certificate that does not chain to them fails the handshake.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import tempfile
import threading

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .auth import PEER_CERT
from .traffic import reset_socket


class SandboxRequestHandler(WSGIRequestHandler):
    """Adds `sandbox.peer_cert` and `sandbox.handler` to the environ."""

    quiet = False

    def make_environ(self):
        """Build the WSGI environ with the TLS peer certificate attached."""
        environ = super().make_environ()
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

    def log_request(self, code="-", size="-"):
        """Log like werkzeug unless the server runs quiet (tests and benchmarks)."""
        if not self.server.quiet:
            super().log_request(code, size)

    def connection_dropped(self, error, environ=None):
        """A dropped connection is expected when a fault asks for it; say nothing."""


class SandboxServer(ThreadedWSGIServer):
    """Threaded WSGI server that can close a connection with a TCP reset on request."""

    def __init__(self, host, port, app, ssl_context=None, quiet=False):
        self.quiet = quiet
        self._reset_lock = threading.Lock()
        self._to_reset: set[int] = set()
        super().__init__(host, port, app, handler=SandboxRequestHandler, ssl_context=ssl_context)

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


def make_ssl_context(store) -> ssl.SSLContext:
    """A server-side TLS context: a 127.0.0.1/localhost certificate from the sandbox CA."""
    chain_pem, key_pem = store.ca.issue_tls_server(store.clock.now())
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
    context = make_ssl_context(store) if https else None
    return SandboxServer(host, port, app, ssl_context=context, quiet=quiet)
