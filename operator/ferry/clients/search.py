"""The search client factory: from a Cluster spec and its Secrets to an opensearch-py
client, for Elasticsearch and OpenSearch alike. Every auth and TLS mode lives here."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3
from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ferry.api.cluster import ClusterSpec
from ferry.clients.kube import ObjectReader
from ferry.errors import AuthenticationFailed, ClusterUnreachable, EngineError, FerryError

# Only the operator's own messages about a cluster are useful; the client's request
# lines at INFO would repeat every health check.
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


@dataclass
class SearchConnection:
    """Everything needed to open a client. Holds credentials: never log or print it."""

    url: str
    http_auth: Any = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    timeout: int = 30
    max_retries: int = 3
    insecure: bool = False
    auth_method: str = "none"

    def client(self, **overrides: Any) -> OpenSearch:
        kwargs: dict[str, Any] = {
            "hosts": [self.url],
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "retry_on_timeout": True,
            "http_auth": self.http_auth,
            "headers": self.headers or None,
            "http_compress": False,
        }
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        kwargs.update(overrides)
        return OpenSearch(**kwargs)


def _ssl_context(spec: ClusterSpec, namespace: str, reader: ObjectReader) -> ssl.SSLContext:
    tls = spec.tls
    ca_pem: str | None = None
    if tls.ca_secret_ref is not None:
        ca_pem = reader.secret_key(namespace, tls.ca_secret_ref.name, tls.ca_secret_ref.key)
    elif tls.ca_config_map_ref is not None:
        ref = tls.ca_config_map_ref
        ca_pem = reader.config_map_key(namespace, ref.name, ref.key)
    if tls.insecure_skip_verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        try:
            ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else \
                ssl.create_default_context()
        except ssl.SSLError as exc:
            raise FerryError(f"the CA bundle is not valid PEM: {exc.reason}", code="InvalidCA",
                             retryable=False) from None
    if tls.client_certificate is not None:
        cc = tls.client_certificate
        cert = reader.secret_key(namespace, cc.secret_name, cc.cert_key)
        key = reader.secret_key(namespace, cc.secret_name, cc.key_key)
        with _pem_files(cert, key) as (cert_path, key_path):
            try:
                ctx.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise FerryError(
                    f"the client certificate in Secret {cc.secret_name} is not a valid PEM "
                    f"certificate and key: {exc.reason}", code="InvalidClientCertificate",
                    retryable=False) from None
    return ctx


@contextlib.contextmanager
def _pem_files(cert: str, key: str) -> Iterator[tuple[str, str]]:
    """ssl can only load a chain from files: write both 0600 and remove them at once."""
    with tempfile.TemporaryDirectory(prefix="ferry-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(data)
        yield cert_path, key_path


def _sigv4_auth(spec: ClusterSpec, namespace: str, reader: ObjectReader) -> Any:
    import boto3
    from botocore.credentials import Credentials
    from opensearchpy import Urllib3AWSV4SignerAuth

    sig = spec.auth.sigv4  # type: ignore[union-attr]
    assert sig is not None
    if sig.credentials_secret_name:
        name = sig.credentials_secret_name
        token = (reader.secret_key(namespace, name, sig.session_token_key)
                 if sig.session_token_key else None)
        credentials = Credentials(reader.secret_key(namespace, name, sig.access_key_id_key),
                                  reader.secret_key(namespace, name, sig.secret_access_key_key),
                                  token)
    else:
        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise FerryError("sigv4: no AWS credentials in the default chain (environment, "
                             "web identity, instance profile); set credentialsSecretName",
                             code="CredentialsNotFound")
    return Urllib3AWSV4SignerAuth(credentials, sig.region, sig.service)


def connection_for(spec: ClusterSpec, namespace: str, reader: ObjectReader) -> SearchConnection:
    """Resolve a Cluster spec into a connection. Raises SecretNotFound and friends."""
    conn = SearchConnection(url=spec.endpoint.rstrip("/"),
                            timeout=spec.connection.timeout_seconds,
                            max_retries=spec.connection.max_retries,
                            insecure=spec.tls.insecure_skip_verify)
    auth = spec.auth
    if auth is not None and auth.basic is not None:
        b = auth.basic
        conn.http_auth = (reader.secret_key(namespace, b.secret_name, b.username_key),
                          reader.secret_key(namespace, b.secret_name, b.password_key))
        conn.auth_method = "basic"
    elif auth is not None and auth.api_key is not None:
        ref = auth.api_key.secret_ref
        conn.headers["Authorization"] = f"ApiKey {reader.secret_key(namespace, ref.name, ref.key)}"
        conn.auth_method = "apiKey"
    elif auth is not None and auth.sigv4 is not None:
        conn.http_auth = _sigv4_auth(spec, namespace, reader)
        conn.auth_method = "sigv4"
    if conn.url.startswith("https://"):
        conn.ssl_context = _ssl_context(spec, namespace, reader)
    return conn


def classify(exc: BaseException, url: str) -> FerryError:
    """Turn a client exception into a FerryError with a reason a person can act on."""
    if isinstance(exc, FerryError):
        return exc
    if isinstance(exc, os_exc.SSLError) or _caused_by(exc, ssl.SSLError):
        detail = _root_message(exc)
        return ClusterUnreachable(f"TLS handshake with {url} failed: {detail}", code="TLSError")
    if isinstance(exc, os_exc.ConnectionTimeout):
        return ClusterUnreachable(f"{url} did not answer in time", code="Timeout")
    if isinstance(exc, os_exc.ConnectionError):
        text = _root_message(exc)
        if _caused_by(exc, ConnectionRefusedError) or "refused" in text.lower():
            return ClusterUnreachable(f"connection to {url} refused", code="ConnectionRefused")
        if "resolve" in text.lower() or "name or service not known" in text.lower():
            return ClusterUnreachable(f"cannot resolve the host of {url}", code="DNSFailure")
        if "timed out" in text.lower():
            return ClusterUnreachable(f"{url} did not answer in time", code="Timeout")
        return ClusterUnreachable(f"cannot connect to {url}: {text}", code="ConnectionFailed")
    if isinstance(exc, os_exc.AuthenticationException):
        return AuthenticationFailed(f"{url} rejected the credentials (HTTP 401)")
    if isinstance(exc, os_exc.AuthorizationException):
        return AuthenticationFailed(f"{url} denied access (HTTP 403): the user lacks a "
                                    "needed privilege", code="AuthorizationFailed")
    if isinstance(exc, os_exc.TransportError):
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        return EngineError(f"{url} answered HTTP {exc.status_code}: {exc.error}",
                           retryable=status == 429 or status >= 500)
    return FerryError(f"unexpected error talking to {url}: {type(exc).__name__}: {exc}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [e.__cause__, e.__context__]
        info = getattr(e, "info", None)
        if isinstance(info, BaseException):
            stack.append(info)
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(e, kind) for e in _chain(exc))


def _root_message(exc: BaseException) -> str:
    messages = [str(e) for e in _chain(exc) if str(e)]
    return messages[-1] if messages else type(exc).__name__
