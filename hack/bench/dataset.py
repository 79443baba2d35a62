"""The benchmark's data sets on the source node.

- ``larger``: the test bed's standard data set (web logs, orders routed by customer,
  users: text with a custom analyzer, nested, geo points; 6 shards over 3 indices).
- ``small``: one index of many small flat documents (≈ 300 bytes of JSON each), where
  per-document and per-request costs dominate; it also grows in place for the scale
  series (x1, x2, x4 documents).
- ``count-N``: the same small documents spread over N one-shard indices, for the
  index-count series.

Every contestant creates its target indices from the same ``IndexSpec`` bodies the
source indices were created with (same shards, replicas 0).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from testbed import datagen
from testbed.search import SearchNode

SMALL_INDEX = "events"
SMALL_SHARDS = 2
SERVICES = ["checkout", "search", "cart", "auth", "billing", "catalog", "shipping", "gateway"]
LEVELS = ["INFO"] * 8 + ["WARN", "ERROR"]
LOAD_BATCH, LOAD_BYTES = 5000, 16 * 2 ** 20

Doc = tuple[str, str | None, dict[str, Any]]


def small_mapping() -> dict[str, Any]:
    return {"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"},
        "service": {"type": "keyword"}, "level": {"type": "keyword"},
        "status": {"type": "short"}, "duration_ms": {"type": "float"},
        "bytes": {"type": "long"}, "trace_id": {"type": "keyword"},
        "user": {"type": "keyword"}, "message": {"type": "text"}}}


def small_index(name: str = SMALL_INDEX, shards: int = SMALL_SHARDS) -> datagen.IndexSpec:
    return datagen.IndexSpec(name, shards, {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0},
        "mappings": small_mapping()})


def small_docs(start: int, stop: int) -> Iterator[Doc]:
    """Documents ``start`` .. ``stop`` - 1; each is seeded by its number, so an index
    grown in steps holds the same documents as one loaded at once."""
    for i in range(start, stop):
        rnd = random.Random(i)
        yield f"ev-{i:09d}", None, {
            "@timestamp": (datagen.START + timedelta(milliseconds=i * 250)).isoformat(),
            "host": f"web-{rnd.randint(1, 64):03d}", "service": rnd.choice(SERVICES),
            "level": rnd.choice(LEVELS), "status": rnd.choice([200] * 9 + [404, 500]),
            "duration_ms": round(rnd.expovariate(1 / 30), 3),
            "bytes": rnd.randint(100, 90000), "trace_id": f"{rnd.getrandbits(128):032x}",
            "user": f"u{rnd.randint(1, 50000):06d}",
            "message": " ".join(rnd.choice(datagen.WORDS) for _ in range(rnd.randint(3, 8)))}


BIG_INDEX = "attachments"
# Bytes of each big document's payload: 10 MiB bulks of about 900 documents (below
# maxDocs 1,000, so maxBytes cuts them).
BIG_PAYLOAD = 11000


def big_index() -> datagen.IndexSpec:
    mapping = small_mapping()
    # Kept in _source only (not indexed): the target's cost stays per document, the
    # operator's memory per byte.
    mapping["properties"]["payload"] = {"type": "keyword", "index": False,
                                        "doc_values": False}
    return datagen.IndexSpec(BIG_INDEX, 2, {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0}, "mappings": mapping})


def big_docs(stop: int) -> Iterator[Doc]:
    """Small documents with a payload of BIG_PAYLOAD random hex bytes each."""
    for (doc_id, routing, source), i in zip(small_docs(0, stop), range(stop), strict=True):
        source["payload"] = random.Random(-1 - i).randbytes(BIG_PAYLOAD // 2).hex()
        yield doc_id, routing, source


def big(node: SearchNode, docs: int) -> DataSet:
    """One index of ``docs`` documents of about 11 KB: what fills 10 MiB bulks."""
    data = DataSet("big", [big_index()])
    node.request("PUT", f"/{BIG_INDEX}", data.specs[0].body)
    data.docs, data.source_bytes = load(node, ((BIG_INDEX, d) for d in big_docs(docs)))
    node.request("POST", f"/{BIG_INDEX}/_refresh")
    return data


@dataclass
class DataSet:
    """Source indices and the bodies their copies are created with."""

    name: str
    specs: list[datagen.IndexSpec]
    docs: int = 0
    source_bytes: int = 0  # the documents' _source as JSON, what a copier moves
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def indices(self) -> list[str]:
        return [s.name for s in self.specs]

    @property
    def shards(self) -> int:
        return sum(s.shards for s in self.specs)

    def describe(self) -> dict[str, Any]:
        return {"indices": len(self.specs), "shards": self.shards, "docs": self.docs,
                "source_mb": round(self.source_bytes / 1e6, 2),
                "avg_doc_bytes": round(self.source_bytes / max(1, self.docs)),
                "names": self.indices[:5], **self.extra}


def _bulk(node: SearchNode, lines: list[str], attempts: int = 30) -> None:
    """One bulk of ``lines`` (action and source per entry); items the node refused with
    429 (its write queue full, as while it auto-creates a thousand indices) are sent
    again after a pause, the rest must succeed."""
    for attempt in range(attempts):
        if not lines:
            return
        try:
            result = node.request("POST", "/_bulk?filter_path=errors,items.*.status,"
                                  "items.*.error.type", "".join(lines).encode(), timeout=600)
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
            continue
        if not result["errors"]:  # type: ignore[index]
            return
        outcomes = [next(iter(item.values())) for item in result["items"]]  # type: ignore[index]
        refused = [o for o in outcomes if o["status"] >= 300 and o["status"] != 429]
        if refused:
            raise RuntimeError(f"benchmark data did not load: {str(refused[:3])[:300]}")
        lines = [line for line, o in zip(lines, outcomes, strict=True) if o["status"] == 429]
        time.sleep(min(5.0, 0.2 * 2 ** attempt))
    raise RuntimeError(f"benchmark data did not load: {len(lines)} documents still refused "
                       f"with 429 after {attempts} attempts")


def load(node: SearchNode, routed: Iterator[tuple[str, Doc]]) -> tuple[int, int]:
    """Bulk-load (index, document) pairs; returns documents and _source bytes."""
    docs = size = pending = 0
    lines: list[str] = []
    for index, (doc_id, routing, source) in routed:
        action: dict[str, Any] = {"_index": index, "_id": doc_id}
        if routing:
            action["routing"] = routing
        body = json.dumps(source)
        lines.append(json.dumps({"index": action}) + "\n" + body + "\n")
        docs, size, pending = docs + 1, size + len(body), pending + len(body)
        if len(lines) >= LOAD_BATCH or pending >= LOAD_BYTES:
            _bulk(node, lines)
            lines, pending = [], 0
    _bulk(node, lines)
    return docs, size


def larger(node: SearchNode, docs: int) -> DataSet:
    """The standard data set: 60 % logs, 30 % orders, 10 % users."""
    parts = ((datagen.logs_index(), datagen.log_docs, 0.6),
             (datagen.orders_index(), datagen.order_docs, 0.3),
             (datagen.users_index(), datagen.user_docs, 0.1))
    data = DataSet("larger", [spec for spec, _, _ in parts])
    for spec, gen, share in parts:
        node.request("PUT", f"/{spec.name}", spec.body)
        n, size = load(node, ((spec.name, d) for d in gen(int(docs * share))))
        data.docs, data.source_bytes = data.docs + n, data.source_bytes + size
    node.request("POST", "/_refresh")
    return data


def small(node: SearchNode, docs: int) -> DataSet:
    data = DataSet("small", [small_index()])
    node.request("PUT", f"/{SMALL_INDEX}", data.specs[0].body)
    return grow(node, data, docs)


def grow(node: SearchNode, data: DataSet, docs: int) -> DataSet:
    """Add small documents to the one-index data set until it holds ``docs``."""
    n, size = load(node, ((SMALL_INDEX, d) for d in small_docs(data.docs, docs)))
    data.docs, data.source_bytes = data.docs + n, data.source_bytes + size
    node.request("POST", f"/{SMALL_INDEX}/_refresh")
    return data


def many(node: SearchNode, count: int, docs: int) -> DataSet:
    """``docs`` small documents over ``count`` one-shard indices ``count<N>-<i>``.

    The indices are created first, a few creations in flight (one bulk that auto-created
    a thousand of them outlasted any timeout: each is one cluster-state update on the
    master), then loaded.
    """
    prefix = f"count{count}-"
    names = [f"{prefix}{i:05d}" for i in range(count)]
    specs = [small_index(name, 1) for name in names]
    def create(spec: datagen.IndexSpec) -> None:
        accepted(node, "PUT", f"/{spec.name}?wait_for_active_shards=0", spec.body)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, specs))
    accepted(node, "GET", f"/_cluster/health/{prefix}*?wait_for_status=green&timeout=600s")
    # Index by index: a bulk that reached every one of a thousand shards outlasted the
    # loader's timeout on ES 7.10; this way each reaches a few dozen.
    n, size = load(node, ((names[i * count // docs], d)
                          for i, d in enumerate(small_docs(0, docs))))
    accepted(node, "POST", f"/{prefix}*/_refresh")
    return DataSet(f"count-{count}", specs, n, size, {"pattern": f"{prefix}*"})


def accepted(node: SearchNode, method: str, path: str, body: object | None = None,
             attempts: int = 30) -> object:
    """One request, sent again while the node answers 429: a 1 GiB node's circuit
    breaker trips for a moment while it creates, or refreshes, a thousand indices."""
    for attempt in range(attempts):
        try:
            return node.request(method, path, body, timeout=660)
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
    raise RuntimeError(f"{method} {path}: still refused with 429 after {attempts} attempts")
