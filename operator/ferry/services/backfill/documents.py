"""The one seam for reading documents: every copy path reads through a
:class:`DocumentSource`, and shares the work items, leases, checkpoints and the writer.

A source is given a work item and its opaque checkpoint (an integer whose meaning is the
source's own) and returns the next page of :class:`Hit` — index, id, routing and
``_source`` as JSON bytes, ready for the bulk body — and the checkpoint that page
reaches. An empty page means the item is exhausted. Today's source reads a live
cluster's shard in ``_seq_no`` windows; readers for ES 5.6 (no ``_seq_no``) and for
snapshot files plug in beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ferry.clients.engine import Engine, quote
from ferry.services.backfill.workitems import OPEN_END, WorkItem

SEARCH_FILTER = "hits.hits._id,hits.hits._routing,hits.hits._source,hits.hits.sort"


@dataclass(frozen=True)
class Hit:
    """One document as the writer needs it. ``source`` is the document's JSON: it is
    data, never logged or written anywhere but the target."""

    index: str
    id: str
    routing: str | None
    source: bytes


class DocumentSource(Protocol):
    def read(self, item: WorkItem, checkpoint: int, size: int) -> tuple[list[Hit], int]:
        """The next page after ``checkpoint`` (at most ``size`` hits) and the checkpoint
        it reaches; an empty page: nothing left up to the item's end."""
        ...


def _hit(index: str, raw: dict[str, Any]) -> Hit:
    return Hit(index, raw["_id"], raw.get("_routing"), orjson.dumps(raw["_source"]))


class SeqNoWindows:
    """Reads one shard of a live source in ``_seq_no`` order (ES ≥ 6.0 and OpenSearch).

    The range is bounded to a window of ``_seq_no`` values just past the checkpoint, so
    each page costs the engine a scan of that window, not of the whole rest of the
    shard (``search_after`` alone would make a shard's copy quadratic). A window with
    fewer than ``size`` live documents is read whole and the checkpoint jumps to its
    end; empty windows (deleted or updated documents) are skipped the same way. The
    checkpoint is the last ``_seq_no`` read.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self, item: WorkItem, checkpoint: int, size: int) -> tuple[list[Hit], int]:
        while checkpoint + 1 < item.seq_to:
            upper = min(item.seq_to, checkpoint + 1 + 2 * size)
            body = {
                "size": size,
                "sort": [{"_seq_no": "asc"}],
                "query": {"range": {"_seq_no": {"gte": checkpoint + 1, "lt": upper}}},
                "track_total_hits": False,
            }
            result = self.engine.request(
                "POST", f"/{quote(item.index)}/_search", body=body, missing_ok=False,
                params={"preference": f"_shards:{item.shard}", "filter_path": SEARCH_FILTER})
            raw = (result.get("hits") or {}).get("hits") or []
            if len(raw) == size:
                return [_hit(item.index, h) for h in raw], int(raw[-1]["sort"][0])
            if raw or upper >= item.seq_to:
                return [_hit(item.index, h) for h in raw], upper - 1
            checkpoint = upper - 1
            if item.seq_to >= OPEN_END and checkpoint > self._max_seq_no(item):
                return [], checkpoint
        return [], checkpoint

    def _max_seq_no(self, item: WorkItem) -> int:
        """The shard's current highest _seq_no: where an open-ended item ends for now."""
        stats = self.engine.request("GET", f"/{quote(item.index)}/_stats/docs",
                                    params={"level": "shards"}, missing_ok=False)
        copies = stats["indices"][item.index]["shards"][str(item.shard)]
        return int(next(c for c in copies if c["routing"]["primary"])["seq_no"]["max_seq_no"])
