"""A fault-injecting reverse proxy for an S3 server on loopback, for chaos tests.

Tests point boto3 (or a presigned URL, or ffmpeg) at the proxy instead of the S3 server,
then tell the proxy to answer some requests with 5xx errors or to sit on them for a while,
to prove that the code under test retries, times out, or gives up the way it should.
Everything else is forwarded unchanged: the Host header is kept as the client sent it, so
SigV4 signatures and presigned URLs computed for the proxy's address stay valid.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

BLOCK = 64 * 1024
UPSTREAM_TIMEOUT = 60.0
# Headers that describe one hop, not the message; never copied across the proxy.
# Expect is dropped because the proxy has already answered "100 Continue" and read the body.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "upgrade", "expect"})


@dataclass
class _Rule:
    """One armed fault: either the next `remaining` matching requests, or all until `until`."""

    kind: str  # "fail" or "stall"
    methods: frozenset[str] | None
    remaining: int | None = None
    until: float | None = None
    status: int = 500
    delay: float = 0.0

    def live(self, now: float) -> bool:
        if self.remaining is not None:
            return self.remaining > 0
        return self.until is not None and now < self.until

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods


def error_body(status: int) -> bytes:
    """An S3-shaped XML error, so SDKs parse it as a service error and apply their retry rules."""
    request_id = uuid.uuid4().hex[:16].upper()
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            f"<Message>injected</Message><Status>{status}</Status>"
            f"<RequestId>{request_id}</RequestId></Error>").encode()


class FaultProxy:
    """Reverse proxy to http://127.0.0.1:upstream_port that injects failures and stalls on demand.

    Fault rules are checked in the order they were armed; the first live rule that matches a
    request's method decides its fate (a count-limited rule is used up one request at a time).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.log: list[tuple[str, str, str]] = []
        self._requests = 0
        self._injected = 0
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind a free loopback port (port 0, so there is no race with other tests) and serve."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, and cut open client connections so stalled handlers cannot linger."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _shutdown_quietly(sock)
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The URL to give clients instead of the S3 server's."""
        return f"http://127.0.0.1:{self.port}"

    # -- fault controls ----------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, methods: Iterable[str] | None = None) -> None:
        """Answer the next n matching requests with `status` and an S3 error, without forwarding."""
        self._arm(_Rule("fail", _methods(methods), remaining=n, status=status))

    def stall_next(self, n: int, seconds: float, methods: Iterable[str] | None = None) -> None:
        """Hold the next n matching requests `seconds` before forwarding them (client timeouts)."""
        self._arm(_Rule("stall", _methods(methods), remaining=n, delay=seconds))

    def fail_for(self, seconds: float, status: int = 500, methods: Iterable[str] | None = None) -> None:
        """Fail every matching request from now for `seconds` (an outage window)."""
        self._arm(_Rule("fail", _methods(methods), until=time.monotonic() + seconds, status=status))

    def stall_for(self, seconds: float, delay: float, methods: Iterable[str] | None = None) -> None:
        """Hold every matching request arriving in the next `seconds` for `delay` seconds."""
        self._arm(_Rule("stall", _methods(methods), until=time.monotonic() + seconds, delay=delay))

    def clear(self) -> None:
        """Disarm every fault; the counters and the log are kept."""
        with self._lock:
            self._rules.clear()

    @property
    def requests(self) -> int:
        """Requests seen so far, faulted or not."""
        with self._lock:
            return self._requests

    @property
    def injected(self) -> int:
        """Faults injected so far (failures and stalls)."""
        with self._lock:
            return self._injected

    def outcomes(self, method: str | None = None) -> list[str]:
        """The outcomes logged so far, optionally for one method only (handy in assertions)."""
        with self._lock:
            return [outcome for m, _, outcome in self.log if method is None or m == method]

    # -- used by the handler -----------------------------------------------------------------

    def _arm(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _decide(self, method: str, path: str) -> _Rule | None:
        """Count the request and pick (and use up) the fault rule that applies to it, if any."""
        now = time.monotonic()
        with self._lock:
            self._requests += 1
            self._rules = [rule for rule in self._rules if rule.live(now)]
            for rule in self._rules:
                if rule.matches(method):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self._injected += 1
                    return rule
        return None

    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.append((method, path, outcome))

    def _track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._sockets.add if open_ else self._sockets.discard)(sock)


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.upper() for m in methods)


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to one proxy (the server builds a handler per connection)."""

    class Handler(_ProxyHandler):
        owner = proxy

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards one request at a time on a keep-alive HTTP/1.1 connection.

    Every response carries a correct Content-Length (or is chunked), so clients such as boto3's
    urllib3 pool and ffmpeg can reuse the connection.
    """

    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are dropped eventually

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.owner._track(self.connection, False)

    def handle(self) -> None:
        """Treat a client hanging up (mid-stall, mid-body) as normal, never as a server error."""
        try:
            super().handle()
        except OSError:  # BrokenPipe, ConnectionReset, socket timeouts
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the proxy's own log list is what tests look at."""

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        method, path = self.command, self.path
        body = self._read_body()
        rule = self.owner._decide(method, path)
        if rule is not None and rule.kind == "fail":
            self.owner._record(method, path, f"failed {rule.status}")
            self._send_error_xml(rule.status)
            return
        if rule is not None:
            self.owner._record(method, path, f"stalled {rule.delay:g}")
            time.sleep(rule.delay)
        else:
            self.owner._record(method, path, "forwarded")
        self._forward(body)

    def _read_body(self) -> bytes:
        """The whole request body: by Content-Length, or the raw chunked framing (incl. trailers).

        Reading it before any fault is applied keeps the keep-alive connection in sync even when
        the request is answered without forwarding; chunked framing is kept as sent so the
        upstream sees exactly what the client wrote (aws-chunked payloads included).
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_raw()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_raw(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            parts.append(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            parts.append(self.rfile.read(size + 2))  # data and its CRLF
        while True:  # trailers, ended by an empty line
            line = self.rfile.readline(65537)
            parts.append(line)
            if line in (b"\r\n", b"\n", b""):
                return b"".join(parts)

    def _send_error_xml(self, status: int) -> None:
        payload = error_body(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amz-request-id", "injected")
        self._end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _end_headers(self) -> None:
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            try:
                response = self._send_upstream(upstream, body)
            except (OSError, http.client.HTTPException):
                self.owner._record(self.command, self.path, "upstream error")
                self._send_error_xml(502)
                return
            self._relay(response)
        finally:
            upstream.close()

    def _send_upstream(self, upstream: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
        """Send the request with the client's own headers (Host included) and body, byte for byte."""
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        upstream.endheaders()
        if body:
            upstream.send(body)
        return upstream.getresponse()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """Copy status, headers and body back, streaming the body in blocks."""
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        chunked = not no_body and length is None
        if chunked and self.request_version != "HTTP/1.1":
            self.close_connection = True  # close-delimited body for an HTTP/1.0 client
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "transfer-encoding":
                self.send_header(name, value)
        if chunked and not self.close_connection:
            self.send_header("Transfer-Encoding", "chunked")
        self._end_headers()
        if no_body:
            return
        try:
            self._copy_body(response, chunked and not self.close_connection)
        except (OSError, http.client.HTTPException):
            # Either side went away mid-body: the framing promised to the client is broken,
            # so this connection cannot carry another request.
            self.close_connection = True

    def _copy_body(self, response: http.client.HTTPResponse, chunked: bool) -> None:
        while True:
            block = response.read(BLOCK)
            if not block:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
