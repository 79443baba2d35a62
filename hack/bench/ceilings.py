"""The limits a live copier on shared cores cannot beat.

- W, the write-only ceiling: pre-built NDJSON ``_bulk`` bodies cut the way Ferry cuts
  its bulks (a page of at most ``batch.maxDocs`` documents, split at ``batch.maxBytes``,
  both Ferry's defaults), sent by 1, 2 or 4 keep-alive connections into indices created
  from the same bodies as every other contestant's; the index's refresh is included.
- R, the read-only ceiling: every document read by a plain scroll (``_doc`` order) with
  Ferry's page size, by 1, 2 or 4 connections (each index sliced into that many parts),
  nothing written.

Neither checks anything per document beyond what a careful client must (bulk errors,
hit counts), so each is an upper bound for its half of a copy.
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.dataset import DataSet
from testbed.search import SearchNode

SCROLL = "2m"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Bulks:
    bodies: list[bytes]
    docs: int

    @property
    def bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


class Connection:
    """One keep-alive HTTP connection; the bench's own client, independent of Ferry's."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)

    def post(self, path: str, body: bytes, ctype: str = "application/json") -> bytes:
        self.conn.request("POST", path, body, {"Content-Type": ctype})
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: HTTP {response.status}: {data[:300]!r}")
        return data

    def delete(self, path: str, body: bytes) -> None:
        self.conn.request("DELETE", path, body, JSON)
        self.conn.getresponse().read()

    def close(self) -> None:
        self.conn.close()


def run_parallel(url: str, jobs: list[Any], concurrency: int,
                 work: Callable[[Connection, Any], int]) -> int:
    """``work(connection, job)`` for every job on ``concurrency`` threads; the sum of
    what it returned. The first failure is raised once every thread has stopped."""
    todo: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    totals: list[int] = []
    errors: list[BaseException] = []

    def loop() -> None:
        conn, done = Connection(url), 0
        try:
            while not errors:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    break
                done += work(conn, job)
        except BaseException as exc:  # re-raised below, in the caller
            errors.append(exc)
        finally:
            conn.close()
            totals.append(done)

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(totals)


def scroll_pages(conn: Connection, index: str, size: int, part: int, parts: int
                 ) -> Any:
    """Yield each page of hits of one scroll over ``index`` (slice ``part`` of ``parts``)."""
    body: dict[str, Any] = {"size": size, "sort": ["_doc"]}
    if parts > 1:
        body["slice"] = {"id": part, "max": parts}
    page = orjson.loads(conn.post(f"/{index}/_search?scroll={SCROLL}", orjson.dumps(body)))
    try:
        while page["hits"]["hits"]:
            yield page["hits"]["hits"]
            page = orjson.loads(conn.post("/_search/scroll", orjson.dumps(
                {"scroll": SCROLL, "scroll_id": page["_scroll_id"]})))
    finally:
        conn.delete("/_search/scroll", orjson.dumps({"scroll_id": [page["_scroll_id"]]}))


def build_bulks(source: SearchNode, data: DataSet, targets: dict[str, str], max_docs: int,
                max_bytes: int) -> Bulks:
    """Every document of ``data`` as bulk bodies into ``targets[index]``: one page of
    ``max_docs`` documents per bulk, split where a body would pass ``max_bytes``."""
    bodies: list[bytes] = []
    conn = Connection(source.url)
    docs = 0
    try:
        for index in data.indices:
            for hits in scroll_pages(conn, index, max_docs, 0, 1):
                body = bytearray()
                for hit in hits:
                    action: dict[str, Any] = {"_index": targets[index], "_id": hit["_id"]}
                    if hit.get("_routing"):
                        action["routing"] = hit["_routing"]
                    line = orjson.dumps({"index": action}) + b"\n" + orjson.dumps(
                        hit["_source"]) + b"\n"
                    if body and len(body) + len(line) > max_bytes:
                        bodies.append(bytes(body))
                        body = bytearray()
                    body += line
                    docs += 1
                bodies.append(bytes(body))
    finally:
        conn.close()
    return Bulks(bodies, docs)


def create_indices(node: SearchNode, data: DataSet, targets: dict[str, str]) -> None:
    """The source's index bodies with refresh off: what Ferry's target tuning sets while
    it loads, so no contestant gets a cheaper index than another (each refreshes once at
    the end, inside its timing)."""
    for spec in data.specs:
        body = dict(spec.body)
        body["settings"] = {**body.get("settings", {}), "refresh_interval": "-1"}
        node.request("PUT", f"/{targets[spec.name]}", body)


def delete_indices(node: SearchNode, pattern: str) -> None:
    # A thousand indices go in one request, which can take minutes on one node.
    node.request("DELETE", f"/{pattern}?expand_wildcards=open,closed", timeout=600)


def target_count(node: SearchNode, pattern: str) -> int:
    node.request("POST", f"/{pattern}/_refresh")
    return int(node.request("GET", f"/{pattern}/_count")["count"])  # type: ignore[index]


def write_once(target: SearchNode, data: DataSet, targets: dict[str, str], bulks: Bulks,
               concurrency: int, pattern: str) -> float:
    """Seconds to send every body on ``concurrency`` connections, refresh included."""
    create_indices(target, data, targets)

    def send(conn: Connection, body: bytes) -> int:
        # Only failed items come back: what a client that reports every failure needs.
        reply = conn.post("/_bulk?filter_path=errors,items.*.error", body,
                          "application/x-ndjson")
        if b'"errors":false' not in reply[:64]:
            raise RuntimeError(f"bulk ceiling: the target rejected documents: {reply[:300]!r}")
        return 0

    start = time.monotonic()
    run_parallel(target.url, bulks.bodies, concurrency, send)
    target.request("POST", f"/{pattern}/_refresh")
    seconds = time.monotonic() - start
    if (got := target_count(target, pattern)) != data.docs:
        raise RuntimeError(f"bulk ceiling wrote {got} of {data.docs} documents")
    delete_indices(target, pattern)
    return seconds


def read_once(source: SearchNode, data: DataSet, page: int, concurrency: int) -> float:
    """Seconds to read every document of ``data`` on ``concurrency`` connections."""
    jobs = [(index, part) for index in data.indices for part in range(concurrency)]

    def read(conn: Connection, job: tuple[str, int]) -> int:
        return sum(len(hits) for hits in scroll_pages(conn, job[0], page, job[1],
                                                        concurrency))

    start = time.monotonic()
    got = run_parallel(source.url, jobs, concurrency, read)
    seconds = time.monotonic() - start
    if got != data.docs:
        raise RuntimeError(f"read ceiling read {got} of {data.docs} documents")
    return seconds
