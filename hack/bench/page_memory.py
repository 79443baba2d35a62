"""Python memory held per page of documents: the parsed path the reader used to take
(the whole search answer turned into Python objects by the client's JSON
deserializer, every ``_source`` encoded again) against the raw path (the answer's
bytes parsed once by msgspec, each ``_source`` sliced out as it came).

    python -m bench.page_memory [--docs 1000 5000] [--json build/bench/page_memory.json]

No test bed: the answer is built in the engines' own shape (the envelope and the hit
fields of a real Elasticsearch/OpenSearch answer) from the benchmark's generated
documents. Measured with tracemalloc: ``peak`` is the most Python memory alive at once
while a page is read (beyond the answer's body, which both paths receive), ``held``
what the page of hits keeps once read. Both start from the text the client's
connection hands over, as in the operator. (Most of what the parsed path holds is
orjson's: every bytes object it returns keeps 4 KB or more behind it — 16 KB for
1.5 KB of JSON, in orjson 3.13.)
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ferry.services.backfill.documents import Hit, parse_page
from testbed import datagen
from testbed.paths import BUILD


def answer(docs: int) -> str:
    """A search answer as an engine sends it, as the client's connection decodes it."""
    hits = []
    for n, (doc_id, routing, source) in enumerate(datagen.log_docs(docs)):
        hit: dict[str, Any] = {"_index": "web-logs", "_type": "_doc", "_id": doc_id,
                               "_score": None}
        if routing:
            hit["_routing"] = routing
        hits.append({**hit, "_source": source, "sort": [n]})
    body = {"took": 12, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"max_score": None, "hits": hits}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def parsed_path(text: str) -> list[Hit]:
    """What the reader did before: json.loads (opensearch-py's deserializer), then one
    orjson.dumps per ``_source``."""
    result = json.loads(text)
    return [Hit("web-logs", h["_id"], h.get("_routing"), orjson.dumps(h["_source"]))
            for h in result["hits"]["hits"]]


def raw_path(text: str) -> list[Hit]:
    """What it does now: Engine.request_raw's bytes, parse_page."""
    hits, _ = parse_page("web-logs", text.encode("utf-8", "surrogatepass"))
    return hits


def measure(path: Callable[[str], list[Hit]], text: str) -> dict[str, int]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    hits = path(text)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    source = sum(len(h.source) for h in hits)
    del hits
    return {"peak_bytes": peak - base, "held_bytes": current - base, "source_bytes": source}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[1000, 5000],
                        help="documents per page (one run per value)")
    parser.add_argument("--json", type=Path, default=BUILD / "bench" / "page_memory.json")
    args = parser.parse_args()
    rows = []
    print(f"{'docs':>7} {'answer':>10} {'path':>7} {'peak':>11} {'held':>11} "
          f"{'peak/doc':>9} {'held/doc':>9}")
    for docs in args.docs:
        text = answer(docs)
        size = len(text.encode())
        for name, path in (("parsed", parsed_path), ("raw", raw_path)):
            got = measure(path, text)
            rows.append({"docs": docs, "answer_bytes": size, "path": name, **got})
            print(f"{docs:>7} {size:>10,} {name:>7} {got['peak_bytes']:>11,} "
                  f"{got['held_bytes']:>11,} {got['peak_bytes'] // docs:>9,} "
                  f"{got['held_bytes'] // docs:>9,}")
    for docs in args.docs:
        old, new = (next(r for r in rows if r["docs"] == docs and r["path"] == p)
                    for p in ("parsed", "raw"))
        print(f"{docs} docs: raw/parsed peak {new['peak_bytes'] / old['peak_bytes']:.2f}, "
              f"held {new['held_bytes'] / old['held_bytes']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"pages": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
