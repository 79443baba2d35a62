"""SnapshotService: register the repository, start or adopt the snapshot, follow it and
delete it; and the reading of the engine's answers about a snapshot.

Free of kopf. Every request goes through one :class:`~ferry.clients.engine.Engine` and
fails with a classified FerryError. Repository bodies, conflicts and verification in the
repository's own files are ``repository.py``; the pure status rules ``status.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ferry.api.snapshot import Repository, SnapshotSpec
from ferry.clients.engine import Engine, EngineInfo, Refused, quote, quote_expression
from ferry.conditions import from_millis
from ferry.errors import FerryError, SnapshotFailed
from ferry.services.snapshot.repository import repository_body, repository_conflict

log = logging.getLogger("ferry.snapshot")

# Snapshot metadata key naming the resource that started a snapshot. Deleting with
# deletionPolicy Delete only touches snapshots whose owner is the resource itself.
OWNER_KEY = "ferry.dev/owner"
# Snapshot ``metadata`` exists since Elasticsearch 7.3 and in every OpenSearch.
SNAPSHOT_METADATA_SINCE = (7, 3)


def index_expression(indices: list[str]) -> str:
    """The snapshot's ``indices`` for the spec's patterns: every user index when empty,
    and exclusions need something to exclude from."""
    if not indices:
        return "*,-.*"
    if all(p.startswith("-") for p in indices):
        return ",".join(["*", "-.*", *indices])
    return ",".join(indices)


def supports_snapshot_metadata(engine: str, version: str) -> bool:
    """Whether snapshots on this engine can carry ``metadata`` (the owner tag)."""
    return EngineInfo(engine, None, version).at_least(SNAPSHOT_METADATA_SINCE)


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
class SnapshotObservation:
    """One look's findings about a snapshot."""

    info: SnapshotInfo
    progress: Progress | None
    engine: str
    # Set only by the look that started or adopted the snapshot.
    started: bool = False
    adopted: bool | None = None
    documents: dict[str, int] | None = None
    repository_registered: bool = False


def same_snapshot(info: SnapshotInfo, uuid: str | None, start_time: str | None) -> bool:
    """Whether ``info`` is the snapshot recorded as (uuid, startTime); a record without
    either (a status from before they were kept) is taken to match, by name alone."""
    if uuid and info.uuid:
        return info.uuid == uuid
    if start_time and info.start_ms:
        return from_millis(info.start_ms) == start_time
    return True


def _refusal_reason(exc: FerryError) -> str:
    """What to say about a failed request: a 404 refusal by the engine's reason alone
    (the path says nothing a person needs), anything else by its whole message."""
    if isinstance(exc, Refused) and exc.status == 404:
        return exc.reason
    return exc.message


class SnapshotService:
    """Talks to one cluster about one snapshot. Every method is blocking. The Engine
    belongs to the caller, who closes it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- repository -----------------------------------------------------------------------

    def ensure_repository(self, repo: Repository, engine: str, readonly: bool = False
                          ) -> bool:
        """Register the repository if it is missing, and verify it. True if registered.

        Raises FerryError RepositoryConflict (not retryable) when a repository of that
        name exists with other settings: it is never overwritten. ``readonly``: register
        it read-only (a restore target), and accept an existing one either way.
        """
        desired = repository_body(repo, engine, readonly)
        path = f"/_snapshot/{quote(repo.name)}"
        existing = (self.engine.request("GET", path) or {}).get(repo.name)
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
                self.engine.request("PUT", path, body=desired, missing_ok=False)
            except FerryError as exc:
                if exc.code == "EngineError":
                    # e.g. an fs location outside path.repo, or no s3 plugin.
                    raise FerryError(f"cannot register repository {repo.name}: "
                                     f"{_refusal_reason(exc)}", code="RepositoryInvalid",
                                     retryable=False) from None
                raise
            registered = True
            log.info("registered snapshot repository %s (%s) on %s", repo.name, repo.type,
                     self.engine.url)
        try:
            self.engine.request("POST", f"{path}/_verify", missing_ok=False)
        except FerryError as exc:
            raise FerryError(f"repository {repo.name} failed verification: "
                             f"{_refusal_reason(exc)}",
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
        answer = self.engine.request("GET", f"/_snapshot/{quote(repo)}/{quote(snapshot)}")
        # ES 7.x answers 200 with per-repository failures for a missing snapshot when
        # several are asked for; one name gives 404. Both mean "not there".
        snapshots = (answer or {}).get("snapshots") or []
        return parse_snapshot_info(snapshots[0]) if snapshots else None

    def status(self, repo: str, snapshot: str) -> Progress | None:
        path = f"/_snapshot/{quote(repo)}/{quote(snapshot)}/_status"
        try:
            answer = self.engine.request("GET", path)
        except FerryError as exc:
            if exc.retryable:
                raise
            return None  # e.g. a FAILED snapshot whose shard files were never written
        snapshots = (answer or {}).get("snapshots") or []
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
            answer = self.engine.request(
                "POST", f"/{quote_expression(expression)}/_search",
                params={"ignore_unavailable": "true", "allow_no_indices": "true"}, body=body,
                missing_ok=False)
        except FerryError as exc:
            log.warning("could not count documents before the snapshot: %s", exc)
            return None
        buckets = answer.get("aggregations", {}).get("by_index", {}).get("buckets", [])
        return {b["key"]: int(b["doc_count"]) for b in buckets}

    def start(self, spec: SnapshotSpec, snapshot: str, owner: str | None) -> bool:
        """Start the snapshot without waiting. False if one of that name already exists
        (the caller adopts it). Raises SnapshotFailed when the engine refuses it."""
        path = f"/_snapshot/{quote(spec.repository.name)}/{quote(snapshot)}"
        try:
            self.engine.request("PUT", path, params={"wait_for_completion": "false"},
                                body=snapshot_body(spec, owner), missing_ok=False)
        except FerryError as exc:
            if isinstance(exc, Refused) and exc.status == 404:
                raise SnapshotFailed(f"the engine refused the snapshot: {exc.reason}"
                                     ) from None
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
                       ) -> SnapshotObservation:
        """The first look: repository, then a new snapshot or the existing one."""
        info = self.engine.info()
        registered = self.ensure_repository(spec.repository, info.engine)
        repo = spec.repository.name
        existing = self.get(repo, snapshot)
        documents: dict[str, int] | None = None
        started = False
        if existing is None:
            documents = self.count_documents(spec)
            tag = owner if info.at_least(SNAPSHOT_METADATA_SINCE) else None
            started = self.start(spec, snapshot, tag)
            existing = self.get(repo, snapshot)
            if existing is None:
                raise FerryError(f"snapshot {snapshot} was accepted but {repo} does not "
                                 "list it", code="SnapshotMissing")
            if started:
                log.info("started snapshot %s/%s on %s", repo, snapshot, self.engine.url)
        # Ours if we just started it, or if an earlier start of ours left it (owner tag).
        adopted = not started and existing.owner != owner
        observation = self.observe(repo, snapshot, info.engine, info=existing)
        observation.started = started
        observation.adopted = adopted
        # Counts belong to a snapshot we started just after counting; an adopted one was
        # taken at a time we do not know.
        observation.documents = documents if started else None
        observation.repository_registered = registered
        return observation

    def observe(self, repo: str, snapshot: str, engine: str = "",
                info: SnapshotInfo | None = None) -> SnapshotObservation:
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
        return SnapshotObservation(info=info, progress=progress, engine=engine)

    # -- deletion -------------------------------------------------------------------------

    def delete(self, repo: str, snapshot: str, owner: str, adopted: bool | None,
               wait_seconds: float = 60.0, started: tuple[str | None, str | None] = (None, None)
               ) -> str:
        """Delete the snapshot if this resource owns it and wait until it is gone.

        ``started``: the (uuid, startTime) the resource recorded of the snapshot it
        started. A snapshot without the owner tag (ES < 7.3) is its own only by that
        record: another snapshot taken under the same name since is not deleted.
        Returns "Deleted", "NotFound" or "NotOwned". Raises a retryable FerryError when
        the cluster cannot be reached or the deletion does not finish in time.
        """
        info = self.get(repo, snapshot)
        if info is None:
            return "NotFound"
        if info.owner is not None and info.owner != owner:
            return "NotOwned"
        if info.owner is None and (adopted is not False or not same_snapshot(info, *started)):
            return "NotOwned"
        if self.engine.request("DELETE", f"/_snapshot/{quote(repo)}/{quote(snapshot)}") \
                is None:
            return "Deleted"  # gone meanwhile
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.get(repo, snapshot) is None:
                log.info("deleted snapshot %s/%s on %s", repo, snapshot, self.engine.url)
                return "Deleted"
            time.sleep(1.0)
        raise FerryError(f"snapshot {snapshot} is still in repository {repo} after "
                         f"{wait_seconds:.0f}s", code="DeletionPending")
