"""The search client factory: from a Cluster spec and its Secrets to an :class:`Engine`
(an opensearch-py client behind Ferry's one request path), for Elasticsearch and
OpenSearch alike. Every auth and TLS mode lives here; requests live in ``engine``."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import urllib3
from opensearchpy import OpenSearch

from ferry.api.cluster import ClusterSpec
from ferry.clients.engine import Engine
from ferry.clients.kube import ObjectReader
from ferry.errors import FerryError

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
    # (namespace, name) of the Cluster resource: the label of its request metrics.
    cluster: tuple[str, str] | None = None
    # The same connection resolved again, its Secrets read afresh (connection_for).
    resolve: Callable[[], SearchConnection] | None = field(default=None, repr=False)

    def credentials(self) -> tuple[Any, dict[str, str]]:
        return self.http_auth, self.headers

    def engine(self, **overrides: Any) -> Engine:
        """A new Engine on this connection (``overrides``: client options, e.g. the
        connection pool size). It renews its client when the cluster refuses the
        credentials and the Secrets hold other ones by then (a rotation)."""
        current = [self]

        def renew() -> OpenSearch | None:
            if current[0].resolve is None:
                return None
            fresh = current[0].resolve()
            if fresh.credentials() == current[0].credentials():
                return None
            current[0] = fresh
            return fresh._client(**overrides)

        return Engine(self._client(**overrides), self.url, self.cluster, renew)

    def _client(self, **overrides: Any) -> OpenSearch:
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


def _secret_names(spec: ClusterSpec) -> set[str]:
    """The Secrets holding a Cluster's credentials."""
    auth = spec.auth
    if auth is None:
        return set()
    names = {auth.basic.secret_name if auth.basic else None,
             auth.api_key.secret_ref.name if auth.api_key else None,
             auth.sigv4.credentials_secret_name if auth.sigv4 else None}
    return {n for n in names if n}


def connection_for(spec: ClusterSpec, namespace: str, reader: ObjectReader,
                   name: str | None = None) -> SearchConnection:
    """Resolve a Cluster spec into a connection (``name``: the Cluster's, for metrics).
    Raises SecretNotFound and friends."""

    def resolve() -> SearchConnection:
        # Past the reader's cache: a worker process has no Secret watch to clear it.
        for secret in _secret_names(spec):
            reader.invalidate(namespace, secret)
        return connection_for(spec, namespace, reader, name)

    conn = SearchConnection(url=spec.endpoint.rstrip("/"),
                            timeout=spec.connection.timeout_seconds,
                            max_retries=spec.connection.max_retries,
                            cluster=(namespace, name) if name else None, resolve=resolve)
    auth = spec.auth
    if auth is not None and auth.basic is not None:
        b = auth.basic
        conn.http_auth = (reader.secret_key(namespace, b.secret_name, b.username_key),
                          reader.secret_key(namespace, b.secret_name, b.password_key))
    elif auth is not None and auth.api_key is not None:
        ref = auth.api_key.secret_ref
        conn.headers["Authorization"] = f"ApiKey {reader.secret_key(namespace, ref.name, ref.key)}"
    elif auth is not None and auth.sigv4 is not None:
        conn.http_auth = _sigv4_auth(spec, namespace, reader)
    if conn.url.startswith("https://"):
        conn.ssl_context = _ssl_context(spec, namespace, reader)
    return conn
