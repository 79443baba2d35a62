"""The one request path to a search cluster, and the facts that differ by engine.

Every call Ferry makes to Elasticsearch or OpenSearch goes through :meth:`Engine.request`,
so every answer is read the same way (the idea of ECK's ``client/error.go``):

- 404 → ``None`` (or :class:`Refused` when the caller says a 404 is a refusal);
- a refusal (4xx other than 401/403/408/429, and the 500s engines send for deterministic
  refusals) → :class:`Refused`, not retryable, with the engine's own reason; a 409
  version conflict → :class:`Conflict`;
- everything else → :func:`classify`: unreachable, TLS, timeouts, credentials, and
  retryable busy answers (429, 5xx).

An Engine that knows its Cluster (namespace, name) counts that Cluster's 429 and 5xx
answers and times its bulk requests (``ferry.metrics``), here, where every request passes.

Nothing outside ``ferry.clients`` imports the opensearch-py client: services hold an
:class:`Engine`.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ferry import metrics
from ferry.errors import AuthenticationFailed, ClusterUnreachable, EngineError, FerryError

# Refusals some engine versions answer with HTTP 500: not transient, retrying cannot help.
DETERMINISTIC = frozenset({"illegal_state_exception", "illegal_argument_exception",
                           "mapper_parsing_exception", "invalid_alias_name_exception",
                           "invalid_index_name_exception", "invalid_index_template_exception",
                           "resource_already_exists_exception",
                           "snapshot_restore_exception"})


# -- engine and version facts ------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, ...]:
    """``"7.10.2"`` → (7, 10, 2); anything unparsable → (0,)."""
    parts = []
    for piece in re.split(r"[.-]", version)[:3]:
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts) or (0,)


def engine_name(engine: str) -> str:
    return "OpenSearch" if engine == "opensearch" else "Elasticsearch"


def guess_engine(version: str) -> str:
    """The engine behind a bare version (a snapshot's, when no Cluster says more):
    OpenSearch has versions 1 to 3, and Elasticsearch data that old (1.x-3.x) is neither
    restorable anywhere modern nor readable by Ferry's snapshot reader (Lucene 6+)."""
    return "opensearch" if version_tuple(version)[0] in (1, 2, 3) else "elasticsearch"


@dataclass(frozen=True)
class EngineInfo:
    """Who answers ``GET /``: engine (elasticsearch | opensearch), distribution, version."""

    engine: str
    distribution: str | None
    version: str

    @property
    def release(self) -> tuple[int, ...]:
        return version_tuple(self.version)

    @property
    def name(self) -> str:
        return engine_name(self.engine)

    def at_least(self, elasticsearch: tuple[int, ...], opensearch: tuple[int, ...] = (0,)
                 ) -> bool:
        """Whether this engine is at least the given Elasticsearch or OpenSearch version."""
        floor = opensearch if self.engine == "opensearch" else elasticsearch
        return self.release >= floor


def engine_of(info: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """(engine, distribution, version) from the answer to ``GET /``.

    Every version answers ``{"version": {"number": ...}, "tagline": ...}``. OpenSearch
    names itself in ``version.distribution`` and its tagline ("The OpenSearch Project");
    Elasticsearch 6.3+ names its build flavor (oss, default), 5.x nothing. An OpenSearch
    1.x/2.x node in compatibility mode (``compatibility.override_main_response_version``)
    reports version 7.10.2 and may drop ``distribution``: its tagline still tells, and
    :meth:`Engine.info` then asks the node for its real version."""
    version = info.get("version") or {}
    number = str(version.get("number", ""))
    if version.get("distribution") == "opensearch" or "opensearch" in str(
            info.get("tagline", "")).lower():
        return "opensearch", "opensearch", number
    return "elasticsearch", version.get("build_flavor"), number


# -- reading an engine's error answer ----------------------------------------------------------


def _error_body(exc: os_exc.TransportError) -> dict[str, Any] | None:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    return error if isinstance(error, dict) else None


def engine_reason(exc: os_exc.TransportError) -> str:
    """The most specific reason in an engine's error answer: the deepest caused_by."""
    error = _error_body(exc)
    if error is None:
        return str(exc.error)
    node, best = error, error
    while isinstance(node, dict):
        if node.get("reason"):
            best = node
        node = node.get("caused_by")
    root = (error.get("root_cause") or [{}])[0]
    text = f"{best.get('type', '')}: {best.get('reason', '')}".strip(": ")
    # A refusal of several settings names them in the top reason only.
    if root.get("reason") and "setting [" in str(root.get("reason")) \
            and "setting [" not in text:
        text = f"{root.get('type', '')}: {root['reason']}"
    return text


def error_type(exc: os_exc.TransportError) -> str:
    error = _error_body(exc)
    return str(error.get("type", "")) if error is not None else ""


def error_text(exc: os_exc.TransportError) -> str:
    """Every reason in the answer, for finding names (settings, aliases) in it."""
    return json.dumps(exc.info) if isinstance(exc.info, dict) else str(exc.error)


class Refused(FerryError):
    """A cluster refused a request (4xx, or a deterministic 500): what it said, and the
    whole answer. Caught where a refusal is an answer (an item the target rejects); one
    that escapes fails the resource with the engine's reason."""

    code = "EngineError"
    retryable = False

    def __init__(self, message: str, *, reason: str, text: str, status: int) -> None:
        super().__init__(message)
        self.reason, self.text, self.status = reason, text, status


class Conflict(Refused):
    """HTTP 409: a version conflict (``if_seq_no``) or an object that already exists."""


def _status(exc: Exception) -> int:
    code = getattr(exc, "status_code", 0)
    return code if isinstance(code, int) else 0


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
        status = _status(exc)
        return EngineError(f"{url} answered HTTP {exc.status_code}: {engine_reason(exc)}",
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


def quote(name: str) -> str:
    """One path segment: an index, repository, snapshot or template name."""
    return urllib.parse.quote(name, safe="")


def quote_expression(expression: str) -> str:
    """A multi-target expression (``a,b*,-c``) as one path segment."""
    return urllib.parse.quote(expression, safe=",*-")


# -- the request path --------------------------------------------------------------------------


# Set on a thread inside :meth:`Engine.request_raw`. One flag for every client, so a
# request retried on a renewed client (new credentials) is read raw as well.
_RAW = threading.local()


class _PassThrough:
    """The client's deserializer, except on a thread inside :meth:`Engine.request_raw`:
    there the answer's body is handed back as the client read it, unparsed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def loads(self, s: str, mimetype: str | None = None) -> Any:
        if getattr(_RAW, "raw", False):
            return s
        return self.inner.loads(s, mimetype)


_PASS_THROUGH = threading.Lock()


def _pass_through(client: OpenSearch) -> _PassThrough:
    """The client transport's deserializer, made a :class:`_PassThrough` once."""
    transport = client.transport
    with _PASS_THROUGH:
        current = transport.deserializer
        if not isinstance(current, _PassThrough):
            current = transport.deserializer = _PassThrough(current)
    return current


# Builds a client from the Cluster's credentials as they are now (its Secrets read
# again), or None when they are the ones in use.
Renew = Callable[[], OpenSearch | None]


class Engine:
    """One search cluster: the one way to send it a request. Blocking, thread-safe (the
    client's connection pool is), and never logs a request body.

    With ``renew``, a request the cluster refuses with 401/403 re-resolves the
    credentials once and, if they changed (a rotated Secret), is sent again on a client
    with the new ones, which every later request uses: a long copy outlives a rotation."""

    def __init__(self, client: OpenSearch, url: str,
                 cluster: tuple[str, str] | None = None, renew: Renew | None = None) -> None:
        self._client = client
        self.url = url
        # (namespace, name) of the Cluster resource, the label of its request metrics.
        self.cluster = cluster
        self._info: EngineInfo | None = None
        self._renew = renew
        self._renew_lock = threading.Lock()
        # Clients replaced by a renewal: other threads may still be reading an answer
        # from them, so they are closed with the Engine.
        self._replaced: list[OpenSearch] = []

    def close(self) -> None:
        for client in (self._client, *self._replaced):
            client.close()

    def _renewed(self, used: OpenSearch) -> bool:
        """After a 401/403 on ``used``: whether a client with other credentials is in
        place now (renewed here, or by another thread meanwhile)."""
        with self._renew_lock:
            if self._client is not used:
                return True
            if self._renew is None:
                return False
            try:
                fresh = self._renew()
            except Exception:
                # The Secret cannot be read now (gone, or the API server unavailable):
                # the 401 stands, and is what the caller sees.
                return False
            if fresh is None:
                return False
            _pass_through(fresh)
            self._replaced.append(self._client)
            self._client = fresh
            return True

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, headers: Mapping[str, str] | None = None,
                missing_ok: bool = True) -> Any:
        """One request. 404 → None (``missing_ok``) or Refused; refusals → Refused;
        the rest → a classified FerryError."""
        client = self._client
        try:
            return self._send(client, method, path, params, body, headers, missing_ok)
        except AuthenticationFailed:
            if not self._renewed(client):
                raise
        return self._send(self._client, method, path, params, body, headers, missing_ok)

    def _send(self, client: OpenSearch, method: str, path: str,
              params: Mapping[str, Any] | None, body: Any, headers: Mapping[str, str] | None,
              missing_ok: bool) -> Any:
        started, status = time.monotonic(), 0
        try:
            return client.transport.perform_request(
                method, path, params=dict(params) if params else None, body=body,
                headers=dict(headers) if headers else None)
        except os_exc.TransportError as exc:
            status = _status(exc)
            if missing_ok and status == 404:
                return None
            raise self._error(exc, method, path) from None
        except Exception as exc:
            raise classify(exc, self.url) from None
        finally:
            if self.cluster is not None:
                metrics.observe_request(self.cluster, path, status,
                                        time.monotonic() - started)

    def request_raw(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, headers: Mapping[str, str] | None = None,
                    missing_ok: bool = True) -> bytes | None:
        """:meth:`request` with the answer's body left unparsed: the bytes the engine
        sent, for answers too big to turn into Python objects (a page of documents).
        The same path, errors, 404s and metrics. (The client's connection hands a body
        over as text; encoding it back is one pass in C, no parse.)"""
        _pass_through(self._client)
        outer = getattr(_RAW, "raw", False)
        _RAW.raw = True
        try:
            answer = self.request(method, path, params=params, body=body, headers=headers,
                                  missing_ok=missing_ok)
        finally:
            _RAW.raw = outer
        if answer is None or isinstance(answer, bytes):
            return answer
        return str(answer).encode("utf-8", "surrogatepass")

    def _error(self, exc: os_exc.TransportError, method: str, path: str) -> FerryError:
        if isinstance(exc, os_exc.ConnectionError):
            return classify(exc, self.url)
        status = _status(exc)
        reason = engine_reason(exc)
        refused = (400 <= status < 500 and status not in (401, 403, 408, 429)) \
            or (status == 500 and error_type(exc) in DETERMINISTIC)
        message = f"{self.url} answered HTTP {status} to {method} {path}: {reason}"
        if refused:
            kind = Conflict if status == 409 else Refused
            return kind(message, reason=reason, text=error_text(exc), status=status)
        if status in (401, 403):
            return classify(exc, self.url)
        return EngineError(message, retryable=status in (0, 408, 429) or status >= 500)

    def exists(self, path: str) -> bool:
        """HEAD: whether the index (or other object) at ``path`` exists."""
        return bool(self.request("HEAD", path))

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters; 404 → None."""
        return self.request("GET", path, params=params or None)

    def info(self) -> EngineInfo:
        """``GET /``, asked once per Engine."""
        if self._info is None:
            engine, distribution, version = engine_of(self._main())
            if engine == "opensearch" and version_tuple(version) >= (7,):
                version = self._node_version() or version
            self._info = EngineInfo(engine, distribution, version)
        return self._info

    def _main(self) -> Mapping[str, Any]:
        """``GET /``, or its fields from the nodes API where a node does not serve it: on
        ES 8 the root endpoint lives in the rest-root module (a node built without it, or
        a proxy that blocks ``/``, answers 404/405 while every API Ferry uses works)."""
        try:
            return self.request("GET", "/") or {}
        except Refused as exc:
            if exc.status not in (404, 405):
                raise
        nodes = self.get("/_nodes/_local",
                         filter_path="nodes.*.version,nodes.*.build_flavor") or {}
        node = next(iter((nodes.get("nodes") or {}).values()), {})
        return {"version": {"number": node.get("version", ""),
                            "build_flavor": node.get("build_flavor")}}

    def _node_version(self) -> str | None:
        """The version a node reports of itself in the nodes API, which compatibility
        mode does not rewrite (OpenSearch's own versions are all below 7)."""
        nodes = self.get("/_nodes/_local", filter_path="nodes.*.version") or {}
        versions = [n.get("version") for n in (nodes.get("nodes") or {}).values()]
        return str(versions[0]) if versions and versions[0] else None
