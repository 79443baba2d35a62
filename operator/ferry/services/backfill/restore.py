"""Method restore: a Completed Snapshot of the source restored into the target.

The Snapshot's repository is registered on the target read-only (same settings; two
clusters writing one repository would corrupt it), the selected indices are restored
under their target names (rename pattern), recovery (``_recovery``) is followed into the
same progress block the copy method fills, and the restored indices are verified
against the per-index document counts the Snapshot recorded when it was taken.

Free of kopf; every request goes through the target's :class:`Engine`.
``restore_refusal`` (the :data:`RESTORES` table of version pairs) and ``rename_groups``
are pure and unit-tested.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from ferry.api import Cluster
from ferry.api.backfill import BackfillSpec, TargetNaming
from ferry.api.snapshot import Repository
from ferry.clients import kube
from ferry.clients.engine import (
    Engine,
    Refused,
    engine_name,
    guess_engine,
    quote,
    version_tuple,
)
from ferry.errors import FerryError, InvalidSpec
from ferry.services import indices as idx
from ferry.services.references import Endpoints, References
from ferry.services.snapshot.service import SnapshotService

log = logging.getLogger("ferry.restore")

COPY_HINT = ("Use method copy instead: it reads documents from the live source and writes "
             "them through the bulk API, which works across these versions.")


# -- pure pieces ---------------------------------------------------------------------------


# The one table of restore pairs: (target engine, target major) → the (engine, major)
# of the indices its snapshots may hold, from what each engine documents. Elasticsearch
# reads its own and the previous major; OpenSearch forked from Elasticsearch 7.10.2 and
# reads what that version's Lucene (8) reads at 1.x (ES 6 and 7), Lucene 9 at 2.x (ES 7,
# OpenSearch 1 and 2), Lucene 10 at 3.x (OpenSearch 2 and 3). A target major not listed
# is refused: Ferry does not guess what a version it does not know can read.
RESTORES: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {
    ("elasticsearch", 5): (("elasticsearch", 2), ("elasticsearch", 5)),
    ("elasticsearch", 6): (("elasticsearch", 5), ("elasticsearch", 6)),
    ("elasticsearch", 7): (("elasticsearch", 6), ("elasticsearch", 7)),
    ("elasticsearch", 8): (("elasticsearch", 7), ("elasticsearch", 8)),
    ("elasticsearch", 9): (("elasticsearch", 8), ("elasticsearch", 9)),
    ("opensearch", 1): (("elasticsearch", 6), ("elasticsearch", 7), ("opensearch", 1)),
    ("opensearch", 2): (("elasticsearch", 7), ("opensearch", 1), ("opensearch", 2)),
    ("opensearch", 3): (("opensearch", 2), ("opensearch", 3)),
}
# The last Elasticsearch version OpenSearch forked from: no OpenSearch reads a later one.
FORK = (7, 10, 2)


def _readable(reads: tuple[tuple[str, int], ...]) -> str:
    """``Elasticsearch 6.x, Elasticsearch 7.x and OpenSearch 1.x`` for a table row."""
    words = [f"{engine_name(engine)} {major}.x" for engine, major in reads]
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def restore_refusal(src_engine: str, src_version: str, tgt_engine: str, tgt_version: str
                    ) -> str | None:
    """Why a snapshot written by one engine version cannot be restored into another, or
    None when the pair can restore: the :data:`RESTORES` row of the target, plus two
    rules no row can say — no engine restores a snapshot of a newer version of itself,
    and no OpenSearch reads Elasticsearch after 7.10.2."""
    src, tgt = version_tuple(src_version), version_tuple(tgt_version)
    why = f"a snapshot written by {engine_name(src_engine)} {src_version} cannot be " \
        f"restored into {engine_name(tgt_engine)} {tgt_version}: "
    if src_engine == tgt_engine and src > tgt:
        return why + "an engine never restores a snapshot of a newer version"
    if src_engine == "elasticsearch" and tgt_engine == "opensearch" and src > FORK:
        return why + "OpenSearch forked from Elasticsearch 7.10.2 and cannot read later " \
            "Elasticsearch snapshots"
    reads = RESTORES.get((tgt_engine, tgt[0]))
    if reads is None:
        return why + f"Ferry does not know which snapshots {engine_name(tgt_engine)} " \
            f"{tgt[0]} restores"
    if (src_engine, src[0]) in reads:
        return None
    if src_engine == "opensearch" and tgt_engine == "elasticsearch":
        return why + "Elasticsearch does not read OpenSearch snapshots"
    return why + f"{engine_name(tgt_engine)} {tgt[0]} restores indices created by " \
        f"{_readable(reads)} only"


def _java_replacement(text: str) -> str:
    """A literal in a Java regex replacement: $ and \\ are special there."""
    return text.replace("\\", "\\\\").replace("$", "\\$")


def rename_groups(sources: list[str], naming: TargetNaming
                  ) -> list[tuple[list[str], str | None, str | None]]:
    """Restore requests for the target names: (indices, rename_pattern,
    rename_replacement). A restore takes one pattern, so prefix/suffix share one request
    and every explicitly mapped index gets its own."""
    groups: list[tuple[list[str], str | None, str | None]] = []
    rest = [s for s in sources if s not in naming.map]
    if rest:
        if naming.prefix or naming.suffix:
            groups.append((rest, "^(.+)$", _java_replacement(naming.prefix) + "$1"
                           + _java_replacement(naming.suffix)))
        else:
            groups.append((rest, None, None))
    for source in sources:
        if source in naming.map:
            groups.append(([source], f"^{re.escape(source)}$",
                           _java_replacement(naming.map[source])))
    return groups


def restore_body(indices: list[str], pattern: str | None, replacement: str | None,
                 spec: BackfillSpec, global_state: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "indices": ",".join(indices), "ignore_unavailable": False,
        "include_global_state": global_state,
        "include_aliases": spec.restore.include_aliases,
    }
    if pattern is not None:
        body["rename_pattern"], body["rename_replacement"] = pattern, replacement
    if spec.metadata.target_replicas is not None:
        body["index_settings"] = {"index.number_of_replicas": spec.metadata.target_replicas}
    return body


# -- what is restored --------------------------------------------------------------------------


@dataclass
class SnapshotSource:
    """A Completed Snapshot resource, as a restore needs it."""

    resource: str
    snapshot: str
    repository: Repository
    engine: str
    version: str
    indices: list[str]
    documents: dict[str, int]


@dataclass
class RestoreIndex:
    source: str
    target: str
    docs: int | None


@dataclass
class IndexRecovery:
    shards_total: int = 0
    shards_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0

    @property
    def done(self) -> bool:
        return self.shards_total > 0 and self.shards_done == self.shards_total


@dataclass
class RestoreProgress:
    per_index: dict[str, IndexRecovery] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # target indices not there yet
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def shards_total(self) -> int:
        return sum(r.shards_total for r in self.per_index.values())

    @property
    def shards_done(self) -> int:
        return sum(r.shards_done for r in self.per_index.values())

    @property
    def bytes_total(self) -> int:
        return sum(r.bytes_total for r in self.per_index.values())

    @property
    def bytes_done(self) -> int:
        return sum(r.bytes_done for r in self.per_index.values())

    @property
    def done(self) -> bool:
        return not self.missing and all(r.done for r in self.per_index.values())

    def docs_done(self, plan: list[RestoreIndex]) -> int:
        """Documents restored so far: an index's recorded count once every shard is done,
        before that its share by bytes (recovery reports bytes, not documents)."""
        total = 0
        for index in plan:
            rec = self.per_index.get(index.target)
            if rec is None or not index.docs:
                continue
            if rec.done:
                total += index.docs
            elif rec.bytes_total:
                total += int(index.docs * min(rec.bytes_done, rec.bytes_total)
                             / rec.bytes_total)
        return total


def snapshot_source(references: References, spec: BackfillSpec, source: Engine
                    ) -> SnapshotSource:
    """Read the referenced Snapshot resource. Waits (retryable) while it is not yet
    Completed; refuses one that failed. The source cluster is asked for the index list
    only when the Snapshot's status list is cut short."""
    ref = spec.source.snapshot_ref
    if ref is None:
        raise InvalidSpec("method restore needs source.snapshotRef")
    obj, snap_spec = references.completed_snapshot(ref.name, "restores take only")
    status = obj.get("status") or {}
    version = str(status.get("engineVersion") or "")
    cluster = kube.get_object(Cluster, references.namespace, snap_spec.cluster_ref.name) or {}
    engine = (cluster.get("status") or {}).get("engine") or guess_engine(version)
    rows = status.get("indices") or []
    names = [r["name"] for r in rows]
    total = status.get("indicesTotal") or len(names)
    if total > len(names):
        # The status list is bounded: ask the cluster that took it for the whole list.
        repo = quote(snap_spec.repository.name)
        name = quote(str(status.get("snapshotName") or ref.name))
        got = source.request("GET", f"/_snapshot/{repo}/{name}", missing_ok=False)
        names = sorted((got.get("snapshots") or [{}])[0].get("indices") or names)
    return SnapshotSource(
        resource=ref.name, snapshot=str(status.get("snapshotName") or
                                        snap_spec.snapshot_name or ref.name),
        repository=snap_spec.repository, engine=engine, version=version, indices=names,
        documents={r["name"]: int(r["documents"]) for r in rows
                   if r.get("documents") is not None})


class RestoreService:
    """Talks to the target about one restore. Every method is blocking."""

    def __init__(self, endpoints: Endpoints, spec: BackfillSpec, snap: SnapshotSource
                 ) -> None:
        self.ep = endpoints
        self.spec = spec
        self.snap = snap
        self.target = endpoints.target

    def target_engine(self) -> tuple[str, str]:
        """(engine, version) of the target."""
        info = self.target.info()
        return info.engine, info.version

    # -- before anything is written --------------------------------------------------------

    def check_versions(self) -> None:
        engine, version = self.target_engine()
        if not self.snap.version:
            raise InvalidSpec(f"Snapshot {self.snap.resource} does not record the engine "
                              "version that wrote it, so Ferry cannot tell whether the "
                              f"target can restore it. {COPY_HINT}", code="IncompatibleVersions")
        refusal = restore_refusal(self.snap.engine, self.snap.version, engine, version)
        if refusal:
            raise InvalidSpec(f"cannot restore Snapshot {self.snap.resource}: {refusal}. "
                              f"{COPY_HINT}", code="IncompatibleVersions")

    def plan(self) -> list[RestoreIndex]:
        names = idx.select(self.snap.indices, list(self.spec.indices))
        if not names:
            raise InvalidSpec(f"no index of snapshot {self.snap.snapshot} matches "
                              f"{self.spec.indices or ['*']}", code="NoIndicesMatched")
        return [RestoreIndex(n, idx.target_name(n, self.spec.target_naming),
                             self.snap.documents.get(n)) for n in names]

    def restored_by_us(self, plan: list[RestoreIndex]) -> set[str]:
        """Target indices that exist, each checked: restored from this very snapshot
        (e.g. before an operator restart) is ours; anything else is refused, because a
        restore cannot write into an existing index."""
        ours: set[str] = set()
        for index in plan:
            got = self.target.request("GET", f"/{quote(index.target)}/_recovery")
            if got is None:
                continue
            shards = (got.get(index.target) or {}).get("shards") or []
            sources = {(s.get("source") or {}).get("snapshot") for s in shards
                       if s.get("type") == "SNAPSHOT"}
            repos = {(s.get("source") or {}).get("repository") for s in shards
                     if s.get("type") == "SNAPSHOT"}
            if shards and sources == {self.snap.snapshot} and \
                    repos == {self.snap.repository.name}:
                ours.add(index.target)
                continue
            raise InvalidSpec(f"target index {index.target} already exists, and a restore "
                              "cannot write into an existing index: choose other target "
                              "names (targetNaming) or delete it", code="TargetIndexExists")
        return ours

    # -- the restore -------------------------------------------------------------------------

    def register_repository(self) -> bool:
        info = self.target.info()
        return SnapshotService(self.target).ensure_repository(self.snap.repository,
                                                              info.engine, readonly=True)

    def start(self, plan: list[RestoreIndex]) -> int:
        """Start restoring what is not restored yet; returns the number of requests."""
        ours = self.restored_by_us(plan)
        todo = [i.source for i in plan if i.target not in ours]
        repo = quote(self.snap.repository.name)
        name = quote(self.snap.snapshot)
        global_state = self.spec.restore.include_global_state and not ours
        started = 0
        for names, pattern, replacement in rename_groups(todo, self.spec.target_naming):
            body = restore_body(names, pattern, replacement, self.spec, global_state)
            global_state = False  # the cluster state is restored once
            try:
                self.target.request("POST", f"/_snapshot/{repo}/{name}/_restore",
                                    params={"wait_for_completion": "false"}, body=body)
            except Refused as exc:
                # A refused restore: HTTP 4xx, or 500 with snapshot_restore_exception.
                raise FerryError(f"the target refused to restore {', '.join(names[:5])} from "
                                 f"snapshot {self.snap.snapshot}: {exc.message}. {COPY_HINT}",
                                 code="RestoreFailed", retryable=False) from None
            started += 1
            log.info("restoring %d indices of snapshot %s on %s", len(names),
                     self.snap.snapshot, self.target.url)
        return started

    def progress(self, plan: list[RestoreIndex]) -> RestoreProgress:
        out = RestoreProgress()
        for chunk in idx.name_groups(i.target for i in plan):
            expression = idx.path_expression(chunk)
            got = self.target.request("GET", f"/{expression}/_recovery",
                                      params={"ignore_unavailable": "true"}) or {}
            for target in chunk:
                shards = [s for s in (got.get(target) or {}).get("shards") or []
                          if s.get("primary")]
                if not shards:
                    out.missing.append(target)
                    continue
                rec = out.per_index[target] = IndexRecovery()
                for shard in shards:
                    size = (shard.get("index") or {}).get("size") or {}
                    total = int(size.get("total_in_bytes") or 0)
                    done = int(size.get("recovered_in_bytes") or 0) + \
                        int(size.get("reused_in_bytes") or 0)
                    rec.shards_total += 1
                    rec.bytes_total += total
                    if shard.get("stage") == "DONE":
                        rec.shards_done += 1
                        rec.bytes_done += total
                    else:
                        rec.bytes_done += min(done, total)
            rows = self.target.request("GET", f"/_cat/shards/{expression}", params={
                "format": "json", "h": "index,shard,prirep,state,unassigned.reason,"
                "unassigned.details"}) or []
            for row in rows:
                if row.get("prirep") == "p" and row.get("state") == "UNASSIGNED" and \
                        row.get("unassigned.reason") == "ALLOCATION_FAILED":
                    out.failures.append({"index": row.get("index", ""),
                                         "id": f"shard {row.get('shard')}",
                                         "reason": str(row.get("unassigned.details")
                                                       or "restore of the shard failed")})
        return out

    def verify(self, plan: list[RestoreIndex]) -> list[dict[str, Any]]:
        """Per index: documents on the target against the count the Snapshot recorded."""
        for group in idx.name_groups(i.target for i in plan):
            self.target.request("POST", f"/{idx.path_expression(group)}/_refresh")
        rows = []
        for index in plan:
            got = self.target.request("GET", f"/{quote(index.target)}/_count")
            count = int((got or {}).get("count", 0))
            row: dict[str, Any] = {"name": index.source, "target": index.target,
                                   "targetCount": count}
            if index.docs is not None:
                row["docsTotal"] = index.docs
                row["verified"] = count == index.docs
            rows.append(row)
        return rows
