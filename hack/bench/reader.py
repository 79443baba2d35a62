"""The snapshot reader alone: every live document of a snapshot read out of its fs
repository in this process, with the API ``ferry snapshot cat`` uses
(``ferry.repository.lucene.snapshot_documents``), nothing written anywhere.

Its CPU seconds per 1,000 documents are the share of the cores a Backfill from a
snapshot spends on reading (decompression, decoding, checksums) instead of on the
target; its docs/s is the most a Backfill from a snapshot could read on one core.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from ferry.repository import FsBlobStore, read_repository
from ferry.repository.lucene import snapshot_documents


def read_alone(location: Path, snapshot: str, indices: list[str], expected: int
               ) -> dict[str, Any]:
    """Read ``indices`` of ``snapshot`` once; wall and CPU seconds (this process's, by
    ``time.process_time``; user and system apart from ``getrusage``). The bench runs
    nothing else while it reads, so this process's CPU is the reader's."""
    store = FsBlobStore(location)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, start = time.process_time(), time.monotonic()
    contents = read_repository(store)
    entry = contents.snapshot(snapshot)
    if entry is None:
        raise RuntimeError(f"{location} holds no snapshot {snapshot}")
    docs = no_source = source_bytes = 0
    for doc in snapshot_documents(store, contents, entry, indices):
        if doc.source is None:
            no_source += 1
        else:
            docs += 1
            source_bytes += len(doc.source)
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    if docs + no_source != expected:
        raise RuntimeError(f"the reader found {docs + no_source} documents in snapshot "
                           f"{snapshot}, the source held {expected}")
    total = max(1, docs + no_source)
    return {"seconds": seconds, "docs": docs, "no_source": no_source,
            "docs_per_s": total / seconds, "source_mb": round(source_bytes / 1e6, 2),
            "cpu_seconds": cpu, "cpu_s_per_1k_docs": cpu / total * 1000,
            "user_seconds": after.ru_utime - usage.ru_utime,
            "system_seconds": after.ru_stime - usage.ru_stime}
