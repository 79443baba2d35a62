"""The Kubernetes client factory, Secret/ConfigMap reads, and status patches."""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ferry.api.common import dump_status
from ferry.api.meta import GROUP, VERSION, KindInfo
from ferry.conditions import status_patch
from ferry.errors import ReferenceNotFound, SecretNotFound

_lock = threading.Lock()
_api_client: client.ApiClient | None = None


def kubeconfig_path(kubeconfig: str | None = None) -> str:
    """The kubeconfig the client reads: the given file, else KUBECONFIG (read now,
    not when the library was imported; it may list several files), else the default."""
    return kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


def in_pod() -> bool:
    """Whether the process runs in a pod (in-cluster config comes first there)."""
    return "KUBERNETES_SERVICE_HOST" in os.environ


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """The process's one ApiClient: in-cluster config in a pod, else the kubeconfig.

    With ``kubeconfig`` or ``context`` (``ferry status --kubeconfig/--context``) the
    client is built from that file and context instead, and kept as the process's one
    client for every later call."""
    global _api_client
    with _lock:
        if kubeconfig is not None or context is not None:
            _api_client = config.new_client_from_config(
                config_file=kubeconfig_path(kubeconfig), context=context)
        elif _api_client is None:
            try:
                config.load_incluster_config()
                _api_client = client.ApiClient()
            except config.ConfigException:
                _api_client = config.new_client_from_config(config_file=kubeconfig_path())
        return _api_client


def api_unavailable(exc: BaseException) -> bool:
    """Whether a call failed because the API server is not there or not serving yet
    (a restart, an upgrade): it answers again soon, and nothing is wrong with the call."""
    if isinstance(exc, ApiException):
        return exc.status in (0, 429, 502, 503, 504)
    return isinstance(exc, urllib3.exceptions.HTTPError)


def reset() -> None:
    """Forget the cached client (tests point the process at another API server)."""
    global _api_client
    with _lock:
        _api_client = None


class ObjectReader:
    """Reads keys of Secrets and ConfigMaps, with a short-lived cache.

    The operator watches Secrets and calls :meth:`invalidate` on every change, so the
    cache never serves a rotated value there; the TTL bounds staleness elsewhere
    (e.g. in a worker process that has no watch).
    """

    def __init__(self, ttl_seconds: float = 300.0) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, str]]] = {}
        self._cache_lock = threading.Lock()

    def invalidate(self, namespace: str, name: str) -> None:
        with self._cache_lock:
            for kind in ("Secret", "ConfigMap"):
                self._cache.pop((kind, namespace, name), None)

    def _data(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        key = (kind, namespace, name)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
        core = client.CoreV1Api(api_client())
        try:
            if kind == "Secret":
                obj = core.read_namespaced_secret(name, namespace)
                data = {k: base64.b64decode(v).decode() for k, v in (obj.data or {}).items()}
            else:
                obj = core.read_namespaced_config_map(name, namespace)
                data = dict(obj.data or {})
        except ApiException as exc:
            if exc.status == 404:
                error = SecretNotFound if kind == "Secret" else ReferenceNotFound
                raise error(f"{kind} {namespace}/{name} not found") from None
            raise
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), data)
        return data

    def secret_key(self, namespace: str, name: str, key: str) -> str:
        data = self._data("Secret", namespace, name)
        if key not in data:
            raise SecretNotFound(f"Secret {namespace}/{name} has no key {key!r}")
        return data[key]

    def config_map_key(self, namespace: str, name: str, key: str) -> str:
        data = self._data("ConfigMap", namespace, name)
        if key not in data:
            raise ReferenceNotFound(f"ConfigMap {namespace}/{name} has no key {key!r}")
        return data[key]


def get_object(kind: KindInfo, namespace: str, name: str) -> dict[str, Any] | None:
    api = client.CustomObjectsApi(api_client())
    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_status(kind: KindInfo, namespace: str, name: str, status: dict[str, Any],
                 resource_version: str | None = None) -> dict[str, Any]:
    """A JSON merge patch of the status subresource (None values delete keys). With a
    resourceVersion the API server refuses it (409) if the object changed since."""
    api = client.CustomObjectsApi(api_client())
    body: dict[str, Any] = {"status": status}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    return api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, kind.plural, name, body,
        _content_type="application/merge-patch+json")


@dataclass
class StatusCopy:
    """The status as last written (or read) and the resourceVersion it was read at."""

    status: dict[str, Any]
    resource_version: str | None = None


STATUS_WRITE_ATTEMPTS = 10


def write_status(kind: KindInfo, namespace: str, name: str, current: StatusCopy,
                 new: dict[str, Any]) -> StatusCopy:
    """The one status writer: ``new`` (the whole status, validated and dumped through
    the kind's status model) replaces ``current`` if it differs. The patch carries
    ``current``'s resourceVersion; when another writer (a delete handler, a second
    operator replica) changed the object meanwhile, the API server answers 409, and this
    writer's changes (what ``new`` changes in ``current``) are applied again to what is
    there now: what the other writer wrote stays wherever this one changed nothing, so
    neither loses an update (a field both change ends as the later writer set it).
    Returns what was written; the object being gone is not an error."""
    wanted = dump_status(kind.status, new)
    ours = _changes(current.status, wanted)
    for attempt in range(STATUS_WRITE_ATTEMPTS):
        if attempt:
            # Writers that collided would collide again in step.
            time.sleep(random.uniform(0, 0.02 * attempt))
        if wanted == current.status:
            return current
        patch = status_patch(current.status, wanted)
        try:
            result = patch_status(kind, namespace, name, patch, current.resource_version)
        except ApiException as exc:
            if exc.status == 404:
                return current
            if exc.status != 409:
                raise
            # Re-read with list: the permission the operator's watches already need
            # (its RBAC grants no get on every kind).
            fresh = find_object(kind, namespace, name)
            if fresh is None:
                return current
            current = StatusCopy(dict(fresh.get("status") or {}),
                                 fresh["metadata"].get("resourceVersion"))
            wanted = dump_status(kind.status, _merged(current.status, ours))
            continue
        return StatusCopy(dict(result.get("status") or wanted),
                          result.get("metadata", {}).get("resourceVersion"))
    raise ApiException(status=409, reason=f"status of {kind.kind} {namespace}/{name} kept "
                       "changing under the operator")


def _changes(base: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """What ``wanted`` changes in ``base``, as the smallest merge patch: only the keys
    whose values differ (nested objects key by key; lists whole)."""
    patch: dict[str, Any] = {}
    for key in base.keys() | wanted.keys():
        old, new = base.get(key), wanted.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            patch[key] = _changes(old, new)
        else:
            patch[key] = new
    return patch


def _merged(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` applied to ``status`` as a merge patch (RFC 7386) applies."""
    out = dict(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def find_object(kind: KindInfo, namespace: str, name: str) -> dict[str, Any] | None:
    """One object read with list and a name field selector: the list permission the
    operator's watches need already covers it, so no extra get grant is asked for."""
    api = client.CustomObjectsApi(api_client())
    items = api.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural,
                                              field_selector=f"metadata.name={name}")["items"]
    return items[0] if items else None


def list_objects(kind: KindInfo, namespace: str | None) -> list[dict[str, Any]]:
    """Objects of a kind in one namespace, or in all namespaces for None."""
    api = client.CustomObjectsApi(api_client())
    if namespace is None:
        return api.list_cluster_custom_object(GROUP, VERSION, kind.plural)["items"]
    return api.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural)["items"]


def current_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The kubeconfig context's namespace (in a pod: the pod's), else default."""
    if kubeconfig is None and context is None:
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip()
        except OSError:
            pass
    try:
        contexts, active = config.list_kube_config_contexts(
            config_file=kubeconfig_path(kubeconfig))
        if context is not None:
            active = next((c for c in contexts if c.get("name") == context), {})
        return str(active.get("context", {}).get("namespace") or "default")
    except (config.ConfigException, OSError, TypeError):
        return "default"


def apply_deployment(namespace: str, body: dict[str, Any]) -> None:
    """Create the Deployment, or patch it to the given spec if it exists."""
    apps = client.AppsV1Api(api_client())
    name = body["metadata"]["name"]
    try:
        apps.create_namespaced_deployment(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        apps.patch_namespaced_deployment(name, namespace, body)


def delete_deployment(namespace: str, name: str) -> None:
    apps = client.AppsV1Api(api_client())
    try:
        apps.delete_namespaced_deployment(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
