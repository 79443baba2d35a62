"""SnapshotService: register the repository, start or adopt the snapshot, follow it,
check it in the repository's own files, and delete it.

Free of kopf. Every call takes an open client and raises a classified FerryError; the
pure status rules live in ``snapshot_status``.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ferry.api.snapshot import Repository, SnapshotSpec
from ferry.clients.search import SearchConnection, classify
from ferry.errors import FerryError, InvalidSpec, SnapshotFailed
from ferry.repository import BlobNotFound, FsBlobStore, RepositoryError, S3BlobStore
from ferry.repository import read_repository as read_repository_files
from ferry.services.cluster.service import engine_of

log = logging.getLogger("ferry.snapshot")

# Snapshot metadata key naming the resource that started a snapshot. Deleting with
# deletionPolicy Delete only touches snapshots whose owner is the resource itself.
OWNER_KEY = "ferry.dev/owner"

# Repository settings that say where the data is: a difference there is always a
# conflict, even when one side leaves the setting out.
IDENTITY_SETTINGS = ("location", "bucket", "base_path", "endpoint")

# What each engine documents for an s3 repository body: its own repository settings
# plus the non-secure client settings that repository settings may override
# (Elasticsearch 7.x repository-s3 "Repository settings" / "Client settings";
# OpenSearch 2.x "Register repository: Amazon S3"). Secure settings (keys) never go in
# a body: they live in the node's keystore.
DOCUMENTED_S3_SETTINGS: dict[str, frozenset[str]] = {
    "elasticsearch": frozenset({
        "bucket", "client", "base_path", "chunk_size", "compress", "server_side_encryption",
        "buffer_size", "canned_acl", "storage_class", "max_restore_bytes_per_sec",
        "max_snapshot_bytes_per_sec", "readonly",
        "endpoint", "protocol", "region", "path_style_access", "disable_chunked_encoding",
        "read_timeout", "max_retries", "use_throttle_retries", "signer_override",
        "proxy.host", "proxy.port",
    }),
    "opensearch": frozenset({
        "bucket", "client", "base_path", "chunk_size", "compress", "server_side_encryption",
        "buffer_size", "canned_acl", "storage_class", "max_restore_bytes_per_sec",
        "max_snapshot_bytes_per_sec", "readonly", "disable_chunked_encoding",
        "endpoint", "protocol", "region", "path_style_access", "role_arn",
        "role_session_name", "read_timeout", "max_retries", "use_throttle_retries",
        "proxy.host", "proxy.port", "proxy.type",
    }),
}
DOCUMENTED_FS_SETTINGS = frozenset({
    "location", "compress", "chunk_size", "max_restore_bytes_per_sec",
    "max_snapshot_bytes_per_sec", "readonly",
})


# -- request bodies (pure) -------------------------------------------------------------


def repository_body(repo: Repository, engine: str, readonly: bool = False) -> dict[str, Any]:
    """The ``PUT _snapshot/<name>`` body for one engine. Raises InvalidSpec for a
    setting the engine cannot take. ``readonly`` registers it for restores only: two
    clusters writing one repository would corrupt it."""
    settings: dict[str, Any] = {"compress": repo.compress}
    if readonly:
        settings["readonly"] = True
    if repo.max_snapshot_bytes_per_sec:
        settings["max_snapshot_bytes_per_sec"] = repo.max_snapshot_bytes_per_sec
    if repo.max_restore_bytes_per_sec:
        settings["max_restore_bytes_per_sec"] = repo.max_restore_bytes_per_sec
    if repo.type == "fs":
        if repo.fs is None:
            raise InvalidSpec("repository.fs is required when type is fs")
        settings["location"] = repo.fs.location
        return {"type": "fs", "settings": settings}
    s3 = repo.s3
    if s3 is None:
        raise InvalidSpec("repository.s3 is required when type is s3")
    settings["bucket"] = s3.bucket
    if s3.base_path:
        settings["base_path"] = s3.base_path.strip("/")
    if s3.endpoint:
        # Both engines take the host in `endpoint` and the scheme in `protocol`.
        parts = urllib.parse.urlsplit(s3.endpoint if "://" in s3.endpoint
                                      else f"https://{s3.endpoint}")
        settings["endpoint"] = parts.netloc
        settings["protocol"] = parts.scheme
    if s3.region:
        settings["region"] = s3.region
    if s3.path_style_access:
        settings["path_style_access"] = True
    if s3.role_arn:
        if engine != "opensearch":
            raise InvalidSpec("repository.s3.roleArn: Elasticsearch's repository-s3 cannot "
                              "assume a role from repository settings; give the nodes "
                              "credentials (keystore or instance role) and leave roleArn out")
        settings["role_arn"] = s3.role_arn
    return {"type": "s3", "settings": settings}


def _normalized(settings: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in ("location", "base_path"):
            text = text.rstrip("/") or text
        out[key] = text
    return out


def repository_conflict(existing: dict[str, Any], desired: dict[str, Any],
                        readonly_ok: bool = False) -> str | None:
    """Why an already registered repository is not the one the spec asks for, or None.

    Settings set on both sides must agree; settings that say where the data is must
    agree even when one side leaves them out; a read-only repository cannot take a
    snapshot. A setting only one side has (e.g. a throttle someone left out) is not a
    conflict: the registered repository is used as it is, never overwritten.
    ``readonly_ok`` (a restore only reads) accepts the repository read-only or not.
    """
    if existing.get("type") != desired["type"]:
        return f"it is of type {existing.get('type')}, the spec asks for {desired['type']}"
    have = _normalized(existing.get("settings") or {})
    want = _normalized(desired["settings"])
    if readonly_ok:
        have.pop("readonly", None)
        want.pop("readonly", None)
    diffs = [f"{k}={have.get(k, '<unset>')!r} (spec: {want.get(k, '<unset>')!r})"
             for k in sorted(set(have) | set(want))
             if (k in IDENTITY_SETTINGS and have.get(k) != want.get(k))
             or (k in have and k in want and have[k] != want[k])]
    if have.get("readonly") == "true":
        diffs.append("readonly='true'")
    if diffs:
        return "its settings differ: " + ", ".join(diffs)
    return None


def index_expression(indices: list[str]) -> str:
    """The snapshot's ``indices`` for the spec's patterns: every user index when empty,
    and exclusions need something to exclude from."""
    if not indices:
        return "*,-.*"
    if all(p.startswith("-") for p in indices):
        return ",".join(["*", "-.*", *indices])
    return ",".join(indices)


def supports_snapshot_metadata(engine: str, version: str) -> bool:
    """Snapshot ``metadata`` exists since Elasticsearch 7.3 and in every OpenSearch."""
    if engine == "opensearch":
        return True
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (7, 3)


def snapshot_body(spec: SnapshotSpec, owner: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "indices": index_expression(list(spec.indices)),
        "include_global_state": spec.include_global_state,
        "partial": spec.partial,
        "ignore_unavailable": spec.ignore_unavailable,
    }
    if owner is not None:
        body["metadata"] = {OWNER_KEY: owner}
    return body


# -- what the engine reports -------------------------------------------------------------


@dataclass
class IndexProgress:
    name: str
    shards_total: int = 0
    shards_done: int = 0
    shards_failed: int = 0

    @property
    def state(self) -> str:
        if self.shards_total and self.shards_done == self.shards_total:
            return "DONE"
        if self.shards_failed and self.shards_done + self.shards_failed >= self.shards_total:
            return "FAILED"
        return "IN_PROGRESS"


@dataclass
class Progress:
    """Figures from ``_snapshot/<repo>/<snap>/_status``."""

    state: str
    shards_total: int
    shards_done: int
    shards_failed: int
    bytes_total: int  # incremental: what this snapshot copies
    bytes_done: int
    time_ms: int
    indices: list[IndexProgress] = field(default_factory=list)


@dataclass
class SnapshotInfo:
    """The answer to ``GET _snapshot/<repo>/<snap>``."""

    name: str
    uuid: str
    state: str  # IN_PROGRESS, SUCCESS, PARTIAL, FAILED, INCOMPATIBLE
    version: str | None
    indices: list[str]
    start_ms: int | None
    end_ms: int | None
    reason: str | None
    shards_total: int | None
    shards_failed: int | None
    shards_successful: int | None
    failures: list[dict[str, Any]]
    metadata: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.state != "IN_PROGRESS"

    @property
    def owner(self) -> str | None:
        value = (self.metadata or {}).get(OWNER_KEY)
        return str(value) if value is not None else None


def parse_snapshot_info(raw: dict[str, Any]) -> SnapshotInfo:
    shards = raw.get("shards") or {}
    return SnapshotInfo(
        name=raw["snapshot"], uuid=raw.get("uuid", ""), state=raw.get("state", "IN_PROGRESS"),
        version=raw.get("version"), indices=sorted(raw.get("indices") or []),
        start_ms=raw.get("start_time_in_millis"),
        end_ms=raw.get("end_time_in_millis") or None,
        reason=raw.get("reason"), shards_total=shards.get("total"),
        shards_failed=shards.get("failed"), shards_successful=shards.get("successful"),
        failures=list(raw.get("failures") or []), metadata=dict(raw.get("metadata") or {}),
    )


def parse_status(raw: dict[str, Any]) -> Progress:
    stats = raw.get("stats") or {}
    incremental = (stats.get("incremental") or {}).get("size_in_bytes", 0)
    # `processed` is only written while it differs from `incremental`.
    processed = (stats.get("processed") or {}).get("size_in_bytes", incremental)
    shards = raw.get("shards_stats") or {}
    indices = []
    for name, index in sorted((raw.get("indices") or {}).items()):
        s = index.get("shards_stats") or {}
        indices.append(IndexProgress(name=name, shards_total=s.get("total", 0),
                                     shards_done=s.get("done", 0),
                                     shards_failed=s.get("failed", 0)))
    return Progress(
        state=raw.get("state", ""), shards_total=shards.get("total", 0),
        shards_done=shards.get("done", 0), shards_failed=shards.get("failed", 0),
        bytes_total=int(incremental), bytes_done=int(processed),
        time_ms=int(stats.get("time_in_millis", 0)), indices=indices,
    )


@dataclass
class Observation:
    """One tick's findings about a snapshot."""

    info: SnapshotInfo
    progress: Progress | None
    engine: str
    # Set only by the tick that started or adopted the snapshot.
    started: bool = False
    adopted: bool | None = None
    documents: dict[str, int] | None = None
    repository_registered: bool = False


@dataclass
class Verification:
    status: str  # True | False | Unknown
    reason: str
    message: str


def _engine_reason(exc: os_exc.TransportError) -> str:
    """The engine's own error text (type and reason), for a status message."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        root = (error.get("root_cause") or [error])[0]
        return f"{root.get('type', exc.error)}: {root.get('reason', '')}".strip(": ")
    return str(exc.error)


def _status_code(exc: Exception) -> int:
    code = getattr(exc, "status_code", 0)
    return code if isinstance(code, int) else 0


class SnapshotService:
    """Talks to one cluster about one snapshot. Every method is blocking."""

    def __init__(self, conn: SearchConnection, client: OpenSearch | None = None) -> None:
        self.conn = conn
        self.client = client or conn.client()

    def close(self) -> None:
        self.client.close()

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: Any = None) -> Any:
        try:
            return self.client.transport.perform_request(method, path, params=params,
                                                         body=body)
        except os_exc.NotFoundError:
            raise
        except os_exc.TransportError as exc:
            if isinstance(exc, os_exc.ConnectionError):
                raise classify(exc, self.conn.url) from None
            status = _status_code(exc)
            if status in (401, 403):
                raise classify(exc, self.conn.url) from None
            raise FerryError(f"{self.conn.url} answered HTTP {exc.status_code} to {method} "
                             f"{path}: {_engine_reason(exc)}", code="EngineError",
                             retryable=status == 429 or status >= 500) from None
        except Exception as exc:
            raise classify(exc, self.conn.url) from None

    @staticmethod
    def _quote(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    # -- cluster facts --------------------------------------------------------------------

    def engine(self) -> tuple[str, str]:
        engine, _, version = engine_of(self._request("GET", "/"))
        return engine, version

    # -- repository -----------------------------------------------------------------------

    def ensure_repository(self, repo: Repository, engine: str, readonly: bool = False
                          ) -> bool:
        """Register the repository if it is missing, and verify it. True if registered.

        Raises FerryError RepositoryConflict (not retryable) when a repository of that
        name exists with other settings: it is never overwritten. ``readonly``: register
        it read-only (a restore target), and accept an existing one either way.
        """
        desired = repository_body(repo, engine, readonly)
        path = f"/_snapshot/{self._quote(repo.name)}"
        try:
            existing = self._request("GET", path).get(repo.name)
        except os_exc.NotFoundError:
            existing = None
        if existing is not None:
            conflict = repository_conflict(existing, desired, readonly_ok=readonly)
            if conflict:
                raise FerryError(
                    f"repository {repo.name} is already registered on the cluster and "
                    f"{conflict}; Ferry does not overwrite it. Use another repository name "
                    "or the same settings", code="RepositoryConflict", retryable=False)
            registered = False
        else:
            if repo.type == "s3" and repo.s3 is not None and repo.s3.create_bucket \
                    and not readonly:
                self.create_bucket(repo)
            try:
                self._request("PUT", path, body=desired)
            except os_exc.NotFoundError as exc:
                raise FerryError(f"cannot register repository {repo.name}: "
                                 f"{_engine_reason(exc)}", code="RepositoryInvalid",
                                 retryable=False) from None
            except FerryError as exc:
                if exc.code == "EngineError":
                    # e.g. an fs location outside path.repo, or no s3 plugin.
                    raise FerryError(f"cannot register repository {repo.name}: {exc.message}",
                                     code="RepositoryInvalid", retryable=False) from None
                raise
            registered = True
            log.info("registered snapshot repository %s (%s) on %s", repo.name, repo.type,
                     self.conn.url)
        try:
            self._request("POST", f"{path}/_verify")
        except (FerryError, os_exc.NotFoundError) as exc:
            message = exc.message if isinstance(exc, FerryError) else _engine_reason(exc)
            raise FerryError(f"repository {repo.name} failed verification: {message}",
                             code="RepositoryVerificationFailed") from None
        return registered

    @staticmethod
    def create_bucket(repo: Repository) -> bool:
        from ferry.clients.s3 import ensure_bucket, s3_client

        assert repo.s3 is not None
        s3 = repo.s3
        client = s3_client(s3.endpoint, s3.region, s3.path_style_access)
        created = ensure_bucket(client, s3.bucket, s3.region)
        if created:
            log.info("created S3 bucket %s for repository %s", s3.bucket, repo.name)
        return created

    # -- snapshot -------------------------------------------------------------------------

    def get(self, repo: str, snapshot: str) -> SnapshotInfo | None:
        path = f"/_snapshot/{self._quote(repo)}/{self._quote(snapshot)}"
        try:
            answer = self._request("GET", path)
        except os_exc.NotFoundError:
            return None
        snapshots = answer.get("snapshots") or []
        # ES 7.x answers 200 with per-repository failures for a missing snapshot when
        # several are asked for; one name gives 404. Both mean "not there".
        return parse_snapshot_info(snapshots[0]) if snapshots else None

    def status(self, repo: str, snapshot: str) -> Progress | None:
        path = f"/_snapshot/{self._quote(repo)}/{self._quote(snapshot)}/_status"
        try:
            answer = self._request("GET", path)
        except os_exc.NotFoundError:
            return None
        except FerryError as exc:
            if exc.retryable:
                raise
            return None  # e.g. a FAILED snapshot whose shard files were never written
        snapshots = answer.get("snapshots") or []
        return parse_status(snapshots[0]) if snapshots else None

    def count_documents(self, spec: SnapshotSpec) -> dict[str, int] | None:
        """Top-level documents per index as search sees them now, in one request.

        These are what a restore or a copy is verified against later. None if the
        cluster cannot tell (the snapshot goes on without them).
        """
        expression = index_expression(list(spec.indices))
        body = {"size": 0, "aggs": {"by_index": {"terms": {"field": "_index",
                                                             "size": 10000}}}}
        try:
            answer = self._request(
                "POST", f"/{self._quote_expression(expression)}/_search",
                params={"ignore_unavailable": "true", "allow_no_indices": "true"}, body=body)
        except (FerryError, os_exc.NotFoundError) as exc:
            log.warning("could not count documents before the snapshot: %s", exc)
            return None
        buckets = answer.get("aggregations", {}).get("by_index", {}).get("buckets", [])
        return {b["key"]: int(b["doc_count"]) for b in buckets}

    @staticmethod
    def _quote_expression(expression: str) -> str:
        return urllib.parse.quote(expression, safe=",*-")

    def start(self, spec: SnapshotSpec, snapshot: str, owner: str | None) -> bool:
        """Start the snapshot without waiting. False if one of that name already exists
        (the caller adopts it). Raises SnapshotFailed when the engine refuses it."""
        path = (f"/_snapshot/{self._quote(spec.repository.name)}/"
                f"{self._quote(snapshot)}")
        try:
            self._request("PUT", path, params={"wait_for_completion": "false"},
                          body=snapshot_body(spec, owner))
        except os_exc.NotFoundError as exc:
            raise SnapshotFailed(f"the engine refused the snapshot: {_engine_reason(exc)}"
                                 ) from None
        except FerryError as exc:
            text = exc.message
            if "already exists" in text or "already in-progress" in text \
                    or "already in progress" in text:
                return False
            if exc.code == "EngineError":
                raise SnapshotFailed(f"the engine refused the snapshot: {text}",
                                     retryable=exc.retryable
                                     and "concurrent" in text.lower()) from None
            raise
        return True

    def start_or_adopt(self, spec: SnapshotSpec, snapshot: str, owner: str,
                       ) -> Observation:
        """The first tick: repository, then a new snapshot or the existing one."""
        engine, version = self.engine()
        registered = self.ensure_repository(spec.repository, engine)
        repo = spec.repository.name
        existing = self.get(repo, snapshot)
        documents: dict[str, int] | None = None
        started = False
        if existing is None:
            documents = self.count_documents(spec)
            tag = owner if supports_snapshot_metadata(engine, version) else None
            started = self.start(spec, snapshot, tag)
            existing = self.get(repo, snapshot)
            if existing is None:
                raise FerryError(f"snapshot {snapshot} was accepted but {repo} does not "
                                 "list it", code="SnapshotMissing")
            if started:
                log.info("started snapshot %s/%s on %s", repo, snapshot, self.conn.url)
        # Ours if we just started it, or if an earlier start of ours left it (owner tag).
        adopted = not started and existing.owner != owner
        observation = self.observe(repo, snapshot, engine, info=existing)
        observation.started = started
        observation.adopted = adopted
        # Counts belong to a snapshot we started just after counting; an adopted one was
        # taken at a time we do not know.
        observation.documents = documents if started else None
        observation.repository_registered = registered
        return observation

    def observe(self, repo: str, snapshot: str, engine: str = "",
                info: SnapshotInfo | None = None) -> Observation:
        info = info or self.get(repo, snapshot)
        if info is None:
            raise FerryError(f"snapshot {snapshot} is no longer in repository {repo}: it "
                             "was deleted outside Ferry", code="SnapshotMissing",
                             retryable=False)
        progress = self.status(repo, snapshot)
        if progress is not None and info.state == "IN_PROGRESS" and progress.state in (
                "SUCCESS", "FAILED", "PARTIAL"):
            # It ended between the two requests: take the final answer.
            info = self.get(repo, snapshot) or info
        return Observation(info=info, progress=progress, engine=engine)

    # -- deletion -------------------------------------------------------------------------

    def delete(self, repo: str, snapshot: str, owner: str, adopted: bool | None,
               wait_seconds: float = 60.0) -> str:
        """Delete the snapshot if this resource owns it and wait until it is gone.

        Returns "Deleted", "NotFound" or "NotOwned". Raises a retryable FerryError when
        the cluster cannot be reached or the deletion does not finish in time.
        """
        info = self.get(repo, snapshot)
        if info is None:
            return "NotFound"
        if info.owner is not None and info.owner != owner:
            return "NotOwned"
        if info.owner is None and adopted is not False:
            return "NotOwned"
        try:
            self._request("DELETE", f"/_snapshot/{self._quote(repo)}/{self._quote(snapshot)}")
        except os_exc.NotFoundError:
            return "Deleted"
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.get(repo, snapshot) is None:
                log.info("deleted snapshot %s/%s on %s", repo, snapshot, self.conn.url)
                return "Deleted"
            time.sleep(1.0)
        raise FerryError(f"snapshot {snapshot} is still in repository {repo} after "
                         f"{wait_seconds:.0f}s", code="DeletionPending")


# -- the repository's own files ------------------------------------------------------------


def repository_store(repo: Repository) -> FsBlobStore | S3BlobStore | None:
    """Where the operator can read the repository, or None when it cannot know."""
    if repo.type == "fs" and repo.fs is not None:
        location = PurePosixPath(repo.fs.location)
        return FsBlobStore(str(location)) if location.is_absolute() else None
    if repo.type == "s3" and repo.s3 is not None:
        from ferry.clients.s3 import s3_client

        s3 = repo.s3
        return S3BlobStore(s3_client(s3.endpoint, s3.region, s3.path_style_access),
                           s3.bucket, s3.base_path)
    return None


def verify_in_repository(repo: Repository, info: SnapshotInfo) -> Verification:
    """Read the repository's index-N and confirm the snapshot and its indices are there."""
    store = repository_store(repo)
    if store is None:
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the fs location {repo.fs.location if repo.fs else ''} is "
                            "relative to the nodes' path.repo: the operator cannot read it")
    if isinstance(store, FsBlobStore) and not store.root.is_dir():
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the operator cannot read {store.location}: it is not mounted "
                            "in the operator's pod; the snapshot was not checked in the "
                            "repository's files")
    try:
        contents = read_repository_files(store)
    except (BlobNotFound, RepositoryError) as exc:
        return Verification("False", "NotInRepository", str(exc))
    except Exception as exc:  # botocore errors, permissions: the operator cannot look
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the operator cannot read {store.location}: "
                            f"{type(exc).__name__}: {exc}")
    entry = contents.snapshot(info.name)
    where = f"{store.location}/index-{contents.generation}"
    if entry is None or (info.uuid and entry.uuid != info.uuid):
        return Verification("False", "NotInRepository",
                            f"{where} does not list snapshot {info.name} ({info.uuid})")
    missing = sorted(set(info.indices) - set(entry.indices))
    if missing:
        return Verification("False", "IndicesMissing",
                            f"{where} lists snapshot {info.name} without indices "
                            f"{', '.join(missing[:10])}")
    return Verification("True", "FoundInRepository",
                        f"{where} lists snapshot {info.name} ({entry.uuid}) with its "
                        f"{len(info.indices)} indices, state {entry.state}")
