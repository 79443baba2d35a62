"""Backfill's pace: the size of its bulks, how many each worker keeps in flight, and a
limit on the copy rate (what ``services/backfill/copier.py`` honours)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import ApiModel


class BatchSettings(ApiModel):
    """Size of each bulk request, and how many each worker has in flight."""

    max_docs: int = Field(
        default=1000, ge=1, le=100000,
        description="Documents per page read from the source and per bulk, at most (reads "
        "stop at 10000, the engines' default result window). Pages are sized to fill a "
        "bulk of maxBytes within this bound; raising it makes bigger bulks of small "
        "documents at the cost of operator memory (a page is held while it is written).")
    max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024,
        description="Bytes per bulk request body.",
    )
    bulks_in_flight: int = Field(
        default=4, ge=1, le=16,
        description="Bulk requests each worker has in flight at once, while it reads the "
        "next page ahead. Engines index the bulks of one connection one after the other, "
        "so a few in flight keep the target's write threads busy; more than the target "
        "has write threads to spare only queue there. Each one holds its body (up to "
        "maxBytes) in the worker's memory: lower it where memory matters more than speed. "
        "A change applies from each worker's next work item.")


class Throttle(ApiModel):
    """Limits on the copy rate."""

    max_docs_per_second: int | None = Field(
        default=None, ge=1,
        description="Documents per second over all workers of this Backfill together (every "
        "worker process takes an equal share, re-counted as processes come and go); a change "
        "applies from each worker's next page; unset: no limit.",
    )
