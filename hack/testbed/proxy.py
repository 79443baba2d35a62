"""A small reverse proxy on loopback, for tests that need what the nodes lack:
authentication, TLS, SigV4 checks and injected faults. Test-only."""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from testbed.procs import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Header lookup ignoring case, as HTTP does."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Refusal:
    status: int
    body: bytes = b'{"error":"refused by test proxy"}'
    headers: dict[str, str] = field(default_factory=dict)


# A gate inspects a request and returns a Refusal to answer it without forwarding.
Gate = Callable[[Request], Refusal | None]


class ReverseProxy:
    def __init__(self, upstream: str, *, port: int | None = None,
                 tls: tuple[Path, Path] | None = None, client_ca: Path | None = None,
                 gate: Gate | None = None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.port = port or free_port()
        self.tls = tls
        self.client_ca = client_ca
        self.gate = gate
        self.seen: list[Request] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ReverseProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                proxy.seen.append(request)
                refusal = proxy.gate(request) if proxy.gate else None
                if refusal is not None:
                    self._reply(refusal.status, refusal.body,
                                {"Content-Type": "application/json", **refusal.headers})
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname,
                                                  proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in request.headers.items()
                           if k.lower() not in {"host", "authorization", "connection"}}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self._reply(resp.status, data,
                            {"Content-Type": resp.getheader("Content-Type", "application/json")})

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            if self.client_ca is not None:  # mutual TLS
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(str(self.client_ca))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                        name=f"proxy-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def basic_auth_gate(credentials: dict[str, str]) -> Gate:
    """Accepts requests whose basic-auth user/password is in ``credentials`` (mutable,
    so a test can rotate the password)."""
    import base64

    def gate(request: Request) -> Refusal | None:
        header = request.header("Authorization")
        if header and header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if credentials.get(user) == password:
                return None
        return Refusal(401, b'{"error":"unauthorized"}',
                       {"WWW-Authenticate": 'Basic realm="test"'})

    return gate


def sigv4_gate(access_key: str, secret_key: str, region: str, service: str,
               verified: list[bool]) -> Gate:
    """Recomputes each request's SigV4 signature with botocore for the known
    credentials and refuses a mismatch with 403. Appends each verdict to ``verified``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def gate(request: Request) -> Refusal | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            verified.append(False)
            return Refusal(403, b'{"error":"missing signature"}')
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        signed = parts["SignedHeaders"].split(";")
        url = f"http://{headers['host']}{request.path}"
        aws_request = AWSRequest(method=request.method, url=url, data=request.body,
                                 headers={h: headers[h] for h in signed if h in headers})
        aws_request.context["timestamp"] = headers["x-amz-date"]
        signer = SigV4Auth(Credentials(access_key, secret_key), service, region)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        ok = expected == parts["Signature"] and parts["Credential"].startswith(
            f"{access_key}/") and f"/{region}/{service}/" in parts["Credential"]
        verified.append(ok)
        return None if ok else Refusal(403, b'{"error":"signature mismatch"}')

    return gate
