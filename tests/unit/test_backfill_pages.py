"""The copy path's reader on real search answers: ``_source`` passed through as the
answer's bytes (parse_page), and the _seq_no reader (SeqNoWindows) on an update-heavy
shard — every live document exactly once, exact checkpoints, and about one search per
page, not one per empty window.

The answers were recorded from the test bed's Elasticsearch 7.10 and OpenSearch 2.19
nodes by ``data/search_pages/record.py``. The shard the reader walks is replayed from
the recorded answer: its real hits, in their real envelope, cut to the range and size
each search asks for.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from ferry.clients.engine import Engine, Refused
from ferry.clients.search import SearchConnection
from ferry.errors import EngineError, FerryError
from ferry.services.backfill.copier import CopySettings, bulk_bodies, ends_within
from ferry.services.backfill.documents import Hit, SeqNoWindows, parse_page
from ferry.services.backfill.workitems import OPEN_END, WorkItem

DATA = Path(__file__).parent / "data" / "search_pages"
ENGINES = sorted(p for p in DATA.iterdir() if p.is_dir())


def recorded(engine: Path, name: str) -> bytes:
    return (engine / name).read_bytes()


def expected(engine: Path) -> dict[str, Any]:
    return json.loads(recorded(engine, "expected.json"))


def test_both_engines_were_recorded() -> None:
    assert [p.name.split("-")[0] for p in ENGINES] == ["elasticsearch", "opensearch"]


# -- parse_page ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_each_source_is_the_answers_own_bytes(engine: Path) -> None:
    body = recorded(engine, "all.json")
    want = expected(engine)
    hits, seqs = parse_page("updates", body)
    assert len(hits) == len(want["docs"]) == 121
    assert seqs == sorted(seqs) and seqs[-1] == want["max_seq_no"]
    for hit in hits:
        assert hit.index == "updates"
        assert orjson.loads(hit.source) == want["docs"][hit.id]
        assert hit.routing == want["routing"].get(hit.id)
        if hit.id != "pretty":  # the engine's bytes, not a re-encoding of them
            assert b'"_source":' + hit.source + b"," in body
    # Sources stay as the client sent them: UTF-8 text, or \\u escapes.
    assert any("café 日本".encode() in h.source for h in hits)
    assert any(b"caf\\u00e9" in h.source for h in hits)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_a_pretty_printed_source_becomes_one_bulk_line(engine: Path) -> None:
    raw, filtered = recorded(engine, "pretty.json"), recorded(engine, "pretty-filtered.json")
    # Without filter_path the engine streams the stored bytes (line breaks and all);
    # with one, it parses and re-writes every _source.
    assert b'"_source":{\n' in raw
    assert b"\n" not in filtered
    (hit,), _ = parse_page("updates", raw)
    assert b"\n" not in hit.source
    assert orjson.loads(hit.source) == expected(engine)["docs"]["pretty"]
    assert b"line one\\nline two" in hit.source  # an escaped break in a string stays
    body = bulk_bodies([hit], "t", CopySettings())[0][1]
    assert body.count(b"\n") == 2 and body.endswith(hit.source + b"\n")


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_an_empty_answer_is_no_hits(engine: Path) -> None:
    assert parse_page("updates", recorded(engine, "empty.json")) == ([], [])
    assert parse_page("updates", b"{}") == ([], [])


def test_an_unreadable_answer_is_a_clear_error_without_content() -> None:
    with pytest.raises(FerryError, match=r"updates could not be read.*\$\.hits\.hits\[0\]"):
        parse_page("updates", b'{"hits":{"hits":[{"_id":7,"_source":{"secret":1}}]}}')
    with pytest.raises(FerryError) as truncated:
        parse_page("updates", b'{"hits":{"hits":[{"_id":"x","_source":{"secret":')
    assert "secret" not in str(truncated.value)
    assert truncated.value.code == "UnreadableAnswer" and not truncated.value.retryable


def test_bulk_lines_carry_the_source_bytes_untouched() -> None:
    source = b'{"b":1.50,"a":"caf\xc3\xa9"}'  # key order and number text kept as sent
    hits = [Hit("i", "1", "r", source), Hit("i", "2", None, source)]
    (ids, body), = bulk_bodies(hits, "t", CopySettings(op_type="create"))
    assert ids == ["1", "2"]
    assert body == (b'{"create":{"_index":"t","_id":"1","routing":"r"}}\n' + source + b"\n"
                    b'{"create":{"_index":"t","_id":"2"}}\n' + source + b"\n")


# -- SeqNoWindows on a replayed shard ----------------------------------------------------------


class RecordedShard:
    """Answers the reader's searches from one recorded answer of the whole shard.

    Sorted by ``_seq_no``: the recorded hits cut to the range and size asked for. Sorted
    by ``_doc`` (the listing and the run fetches): the shard is laid out as segments do
    it, in runs of ``run`` documents in _seq_no order taken in turn by ``segments``
    segments, each segment's documents consecutive doc ids; a listing answers each
    hit's doc id and _seq_no only, a fetch the hits after ``search_after`` in doc order.
    A fetch over another range than the last listing's is a window read whole in one
    search (``direct``): a window scan, counted with the searches.
    ``moved``: doc ids shift by one between a listing and its fetches (a merge)."""

    def __init__(self, body: bytes, segments: int = 3, run: int = 40) -> None:
        start = body.index(b'"hits":[') + len(b'"hits":[')
        end = body.rindex(b"]")
        self.head, self.tail = body[:start], body[end:]
        raws = msgspec.json.decode(body[start - 1:end + 1], type=list[msgspec.Raw])
        self.hits = [(orjson.loads(h)["sort"][0], h) for h in map(bytes, raws)]
        assert b",".join(h for _, h in self.hits) == body[start:end]
        layout = sorted(range(len(self.hits)), key=lambda i: ((i // run) % segments, i))
        self.doc_of = {self.hits[i][0]: doc for doc, i in enumerate(layout)}
        self.searches: list[dict[str, Any]] = []
        self.fetches: list[dict[str, Any]] = []
        self.directs: list[dict[str, Any]] = []
        self.returned: dict[str, int] = {"sorted": 0, "listed": 0, "fetched": 0, "direct": 0}
        self.moved = False
        self._listed: dict[str, int] | None = None

    def request_raw(self, method: str, path: str, *, body: dict[str, Any],
                    params: dict[str, str], missing_ok: bool) -> bytes:
        assert (method, path, params) == ("POST", "/updates/_search",
                                          {"preference": "_shards:0"})
        assert not missing_ok
        bounds = body["query"]["range"]["_seq_no"]
        found = [(seq, h) for seq, h in self.hits if bounds["gte"] <= seq < bounds["lt"]]
        if body["sort"] == [{"_seq_no": "asc"}]:
            self.searches.append(body)
            self.returned["sorted"] += len(found[:body["size"]])
            return self.head + b",".join(h for _, h in found[:body["size"]]) + self.tail
        assert body["sort"] == ["_doc"] and body["seq_no_primary_term"] is True
        listing = body.get("stored_fields") == "_none_"
        direct = not listing and bounds != self._listed
        if listing:
            self._listed = bounds
        kind = "listed" if listing else "direct" if direct else "fetched"
        if direct:
            self.directs.append(body)
        (self.searches if listing or direct else self.fetches).append(body)
        after = body.get("search_after", [-1])[0]
        shift = 1 if self.moved and kind == "fetched" else 0
        by_doc = sorted((self.doc_of[seq] + shift, seq, h) for seq, h in found)
        out = []
        for doc, seq, h in [d for d in by_doc if d[0] > after][:body["size"]]:
            hit = {"_seq_no": seq, "sort": [doc]}
            if not listing:
                hit |= {k: v for k, v in orjson.loads(h).items() if k != "sort"}
            out.append(orjson.dumps(hit))
        self.returned[kind] += len(out)
        return self.head + b",".join(out) + self.tail


def item(seq_from: int = 0, seq_to: int = OPEN_END, name: str = "updates/0/0",
         docs_estimate: int = 100_000) -> WorkItem:
    """An item planned with many documents (read window by window) unless told."""
    return WorkItem(id=name, index="updates", target="t", shard=0, seq_from=seq_from,
                    seq_to=seq_to, checkpoint=seq_from - 1, docs_estimate=docs_estimate)


def reader_of(shard: RecordedShard, runs: bool) -> SeqNoWindows:
    reader = SeqNoWindows(shard)  # type: ignore[arg-type]
    reader._runs = runs
    return reader


def copy_all(reader: SeqNoWindows, work: WorkItem, size: int) -> Iterator[tuple[list[Hit], int]]:
    checkpoint = work.checkpoint
    while True:
        hits, reached = reader.read(work, checkpoint, size)
        assert reached >= checkpoint
        yield hits, reached
        if not hits:
            return
        checkpoint = reached


RUNS = pytest.mark.parametrize("runs", [True, False], ids=["by-runs", "sorted"])


@RUNS
@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
@pytest.mark.parametrize("size", [1, 7, 20, 50, 500])
def test_every_document_once_with_exact_checkpoints_in_few_searches(
        engine: Path, size: int, runs: bool) -> None:
    shard = RecordedShard(recorded(engine, "all.json"))
    live = sorted(shard.hits)
    docs, max_seq_no = len(live), expected(engine)["max_seq_no"]
    assert max_seq_no + 1 > 15 * docs  # update-heavy: most _seq_nos hold no document
    reader = reader_of(shard, runs)
    pages = list(copy_all(reader, item(), size))
    read = [h.id for hits, _ in pages for h in hits]
    assert read == [orjson.loads(h)["_id"] for _, h in live]
    seq_of = {orjson.loads(h)["_id"]: seq for seq, h in live}
    # Full pages until the last one: short windows are read on, not returned.
    assert [len(hits) for hits, _ in pages[:-2]] == [size] * (len(pages) - 2)
    assert 0 < len(pages[-2][0]) <= size and pages[-1][0] == []
    before = -1
    for hits, reached in pages:
        # A checkpoint covers exactly the documents read up to it: none unread below.
        assert all(before < seq_of[h.id] <= reached for h in hits)
        assert not [seq for seq, _ in live if before < seq <= reached
                    and seq not in {seq_of[h.id] for h in hits}]
        before = reached
    # Searches: about one per page (a few more where the density changes, most with
    # one-document pages), where a search per window of 2 x size _seq_nos (the reader
    # before) would need max_seq_no / (2 x size).
    # Read by runs, a window holds at most a page (0.9 of one past density 1), so a
    # page takes about two listings, and a jump over an empty window lists the rest of
    # the item before it searches it sorted; the fetches are a few runs each.
    pages_needed = -(-docs // size)
    bound = (2 * pages_needed + pages_needed // 2 if runs else pages_needed + pages_needed // 8) + 6
    assert len(shard.searches) <= bound, len(shard.searches)
    if size <= 20:
        assert max_seq_no // (2 * size) > 2 * bound
    # (One-document pages are one run each, and a page as big as the shard is found
    # by the jump over the empty first window: neither fetches runs.)
    if runs and 1 < size < docs:
        assert shard.fetches, "no window was read by runs"
        assert len(shard.fetches) <= 4 * len(shard.searches)
    elif not runs:
        assert shard.fetches == []


@RUNS
@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_an_item_planned_with_half_a_page_is_one_window_to_its_end(
        engine: Path, runs: bool) -> None:
    shard = RecordedShard(recorded(engine, "all.json"))
    docs = len(shard.hits)
    pages = list(copy_all(reader_of(shard, runs), item(docs_estimate=docs), 2 * docs))
    assert [len(hits) for hits, _ in pages] == [docs, 0]
    assert pages[0][1] == OPEN_END - 1  # the whole item, read
    # One search over the whole item (by runs: the listing, then its few runs), none
    # per window nor one more to find the rest empty.
    assert len(shard.searches) == 1, shard.searches
    assert 0 < len(shard.fetches) <= 8 if runs else shard.fetches == []


def dense(body: bytes) -> bytes:
    """The recorded answer as a shard that was never updated: its hits, in order, hold
    the _seq_nos 0, 1, 2, ... (one live document per _seq_no)."""
    answer = orjson.loads(body)
    for seq, hit in enumerate(answer["hits"]["hits"]):
        hit["sort"] = [seq]
    return orjson.dumps(answer)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_windows_of_one_run_are_read_in_one_search_each(engine: Path) -> None:
    """A shard never updated, in one segment: every window is one run of doc ids and
    is read in one search, with no listing before it; only past the item's last
    document are windows listed."""
    shard = RecordedShard(dense(recorded(engine, "all.json")), segments=1)
    docs, size = len(shard.hits), 20
    pages = list(copy_all(reader_of(shard, True), item(), size))
    assert [h.id for hits, _ in pages for h in hits] == [
        orjson.loads(h)["_id"] for _, h in sorted(shard.hits)]
    assert docs % size
    # Full pages end at their last document; the short last page read on to the end.
    assert [reached for _, reached in pages] == [
        n + size - 1 for n in range(0, docs - size, size)] + [OPEN_END - 1] * 2
    assert shard.fetches == []
    # Each page one search. The last one's window held one document: at that density
    # the next window is wider than a page, so it is listed (empty), and so is the
    # rest of the item.
    assert len(shard.directs) == -(-docs // size)
    assert len(shard.searches) - len(shard.directs) == 2


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_a_window_of_several_runs_sends_the_next_one_to_the_listing(engine: Path) -> None:
    """Read in one search, a window that falls into two runs loaded its documents one
    by one: the item's next window is listed and fetched by runs, and once a listing
    shows one run the windows after it are read in one search again."""
    shard = RecordedShard(dense(recorded(engine, "all.json")), segments=2, run=30)
    pages = list(copy_all(reader_of(shard, True), item(), 20))
    assert [h.id for hits, _ in pages for h in hits] == [
        orjson.loads(h)["_id"] for _, h in sorted(shard.hits)]
    kinds = ["direct" if any(b is d for d in shard.directs) else "listing"
             for b in shard.searches]
    ranges = [(b["query"]["range"]["_seq_no"]["gte"], b["query"]["range"]["_seq_no"]["lt"])
              for b in shard.searches]
    # Runs of 30 _seq_nos alternate between the segments: [0, 20) is one run, [20, 40)
    # two, so [40, 60) is listed (one run: 30-59), and [60, 80) is read in one search.
    assert list(zip(kinds, ranges, strict=True))[:4] == [
        ("direct", (0, 20)), ("direct", (20, 40)), ("listing", (40, 60)), ("direct", (60, 80))]
    assert sum(shard.returned[k] for k in ("fetched", "sorted", "direct")) == len(shard.hits)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_doc_ids_that_moved_since_the_listing_are_read_sorted(engine: Path) -> None:
    """A merge between a window's listing and its fetches renumbers doc ids: the
    fetched run is not the listed one, and the window is read the sorted way."""
    shard = RecordedShard(recorded(engine, "all.json"))
    shard.moved = True
    read = [h.id for hits, _ in copy_all(reader_of(shard, True), item(), 50)
            for h in hits]
    assert read == [orjson.loads(h)["_id"] for _, h in sorted(shard.hits)]
    sorted_searches = [b for b in shard.searches if b["sort"] == [{"_seq_no": "asc"}]]
    assert shard.fetches and sorted_searches


@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_windows_read_by_runs_load_each_document_once(engine: Path) -> None:
    """Listings load no document; each run fetch answers exactly its run; and no
    document is loaded twice (by a fetch and by a sorted search)."""
    shard = RecordedShard(recorded(engine, "all.json"), segments=2, run=30)
    pages = list(copy_all(reader_of(shard, True), item(), 20))
    assert [h.id for hits, _ in pages for h in hits] == [
        orjson.loads(h)["_id"] for _, h in sorted(shard.hits)]
    assert shard.returned["fetched"] == sum(b["size"] for b in shard.fetches) > 0
    assert sum(shard.returned[k] for k in ("fetched", "sorted", "direct")) == len(shard.hits)


@RUNS
@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_resuming_from_any_checkpoint_skips_and_repeats_nothing(engine: Path,
                                                                runs: bool) -> None:
    shard = RecordedShard(recorded(engine, "all.json"))
    live = [(seq, orjson.loads(h)["_id"]) for seq, h in sorted(shard.hits)]
    reader = reader_of(shard, runs)
    checkpoints = [reached for _, reached in copy_all(reader, item(), 13)]
    assert len(checkpoints) > 5
    for checkpoint in checkpoints:
        resumed = item()
        resumed.checkpoint = checkpoint
        fresh = reader_of(shard, runs)  # a restarted worker
        rest = [h.id for hits, _ in copy_all(fresh, resumed, 13) for h in hits]
        assert rest == [doc_id for seq, doc_id in live if seq > checkpoint]


@RUNS
@pytest.mark.parametrize("engine", ENGINES, ids=lambda p: p.name)
def test_split_items_together_read_the_shard_once(engine: Path, runs: bool) -> None:
    shard = RecordedShard(recorded(engine, "all.json"))
    max_seq_no = expected(engine)["max_seq_no"]
    step = max_seq_no // 3 + 1
    items = [item(i * step, (i + 1) * step if i < 2 else OPEN_END, f"updates/0/{i}")
             for i in range(3)]
    reader = reader_of(shard, runs)
    read = [h.id for work in items for hits, _ in copy_all(reader, work, 10) for h in hits]
    assert read == [orjson.loads(h)["_id"] for _, h in sorted(shard.hits)]
    assert reader._density == {}  # hints of finished items are dropped


# -- Engine.request_raw on a real HTTP connection ----------------------------------------------


@pytest.fixture
def answering() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    """A loopback HTTP server answering each path with a canned status and body."""
    answers: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = answers[self.path.split("?")[0]]
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", answers
    finally:
        server.shutdown()


def test_request_raw_returns_the_bytes_sent_and_classifies_errors_as_request(
        answering: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
    url, answers = answering
    body = recorded(ENGINES[0], "all.json")
    answers["/page"] = (200, body)
    answers["/gone"] = (404, b'{"error":{"type":"index_not_found_exception"},"status":404}')
    answers["/bad"] = (400, b'{"error":{"type":"parsing_exception","reason":"no"},'
                            b'"status":400}')
    answers["/busy"] = (503, b'{"error":"unavailable","status":503}')
    engine: Engine = SearchConnection(url=url, max_retries=0).engine()
    with engine:
        assert engine.request_raw("POST", "/page", body={"size": 1}) == body
        # The same client, on the same thread, still parses for request().
        assert engine.request("POST", "/page", body={})["hits"]["hits"][0]["_id"]
        assert engine.request_raw("POST", "/gone") is None
        with pytest.raises(Refused, match="parsing_exception") as refused:
            engine.request_raw("POST", "/bad", missing_ok=False)
        with pytest.raises(Refused):
            engine.request("POST", "/bad")
        assert refused.value.status == 400
        with pytest.raises(EngineError) as busy:
            engine.request_raw("POST", "/busy")
        assert busy.value.retryable


def test_the_end_is_near_only_at_the_pace_written_so_far() -> None:
    # 2,000 written in 10 s is 200 a second: 400 left take 2 s, 401 more.
    assert ends_within(400, 2000, 10.0, 2.0)
    assert not ends_within(401, 2000, 10.0, 2.0)
    # Nothing written yet (the first pages are read ahead of any answer): no pace.
    assert not ends_within(0, 0, 3.0, 2.0)
    assert not ends_within(10, 100, 0.0, 2.0)
