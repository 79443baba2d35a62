"""Records the search answers tests/unit/test_backfill_pages.py replays: real bytes from
a real Elasticsearch 7.10 and OpenSearch 2.19 node of the test bed.

    .venv/bin/python tests/unit/data/search_pages/record.py

Per engine, one shard of an update-heavy index (120 documents written 2,400 times in
all, some with routing, non-ASCII text, one document sent pretty-printed) and, written
beside this file under the engine's name:

- ``all.json``: every live document, ``sort`` on ``_seq_no`` and no ``filter_path``, as
  the reader asks;
- ``empty.json``: a range past the last ``_seq_no``;
- ``pretty.json`` / ``pretty-filtered.json``: the pretty-printed document without and
  with ``filter_path``;
- ``expected.json``: what was written (id → source, routing) and the shard's max_seq_no.

Test-bed code only (urllib), nothing of Ferry's, so the recording is no oracle of the
code under test.
"""

from __future__ import annotations

import json
import random
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "hack"))

from testbed.search import SearchNode  # noqa: E402

INDEX, DOCS, WRITES = "updates", 120, 2400
PRETTY_ID = "pretty"


def raw(node: SearchNode, path: str, body: object) -> bytes:
    req = urllib.request.Request(f"{node.url}{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def load(node: SearchNode) -> dict[str, object]:
    node.request("PUT", f"/{INDEX}", {"settings": {"number_of_shards": 1,
                                                   "number_of_replicas": 0}})
    rnd = random.Random(14)
    writes = list(range(DOCS)) + [rnd.randrange(DOCS) for _ in range(WRITES - DOCS)]
    docs: dict[str, dict[str, object]] = {}
    lines = []
    for n, i in enumerate(writes):
        doc_id = f"d{i}"
        docs[doc_id] = {"n": i, "version": n, "text": f"caf\u00e9 \u65e5\u672c {n % 13}",
                        "tags": ["a", str(i % 5)], "score": round(n / 7, 3)}
        action: dict[str, object] = {"_index": INDEX, "_id": doc_id}
        if i % 4 == 0:
            action["routing"] = f"r{i % 3}"
        # Half as UTF-8, half with \u escapes: clients send both; either stays as sent.
        lines += [json.dumps({"index": action}),
                  json.dumps(docs[doc_id], ensure_ascii=n % 2 == 1)]
    result = node.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode())
    assert result["errors"] is False  # type: ignore[index]
    # One document as a client may send it: pretty-printed, line breaks and all.
    pretty = {"n": -1, "text": "line one\nline two", "nested": {"k": [1, 2]}}
    req = urllib.request.Request(f"{node.url}/{INDEX}/_doc/{PRETTY_ID}",
                                 data=json.dumps(pretty, indent=2).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()
    docs[PRETTY_ID] = pretty
    node.request("POST", f"/{INDEX}/_refresh")
    stats = node.request("GET", f"/{INDEX}/_stats/docs?level=shards")
    shard = stats["indices"][INDEX]["shards"]["0"][0]  # type: ignore[index]
    routing = {f"d{i}": f"r{i % 3}" for i in range(DOCS) if i % 4 == 0}
    return {"docs": docs, "routing": routing, "max_seq_no": shard["seq_no"]["max_seq_no"]}


def record(engine: str) -> None:
    node = SearchNode(engine).start()
    try:
        expected = load(node)
        out = HERE / f"{engine}-{node.number}"
        out.mkdir(exist_ok=True)
        search = f"/{INDEX}/_search?preference=_shards:0"
        sort = [{"_seq_no": "asc"}]
        (out / "all.json").write_bytes(raw(node, search, {
            "size": 1000, "sort": sort, "track_total_hits": False,
            "query": {"range": {"_seq_no": {"gte": 0, "lt": 2 ** 62}}}}))
        (out / "empty.json").write_bytes(raw(node, search, {
            "size": 10, "sort": sort, "track_total_hits": False,
            "query": {"range": {"_seq_no": {"gte": expected["max_seq_no"] + 1,
                                            "lt": 2 ** 62}}}}))
        one = {"query": {"ids": {"values": [PRETTY_ID]}}, "sort": sort}
        (out / "pretty.json").write_bytes(raw(node, search, one))
        (out / "pretty-filtered.json").write_bytes(raw(
            node, search + "&filter_path=hits.hits._id,hits.hits._source,hits.hits.sort",
            one))
        (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True)
                                           + "\n")
        print(f"recorded {engine} {node.number} into {out}")
    finally:
        node.stop()


if __name__ == "__main__":
    for name in sys.argv[1:] or ["elasticsearch", "opensearch"]:
        record(name)
