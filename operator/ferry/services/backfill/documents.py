"""The one seam for reading documents: every copy path reads through a
:class:`DocumentSource`, and shares the work items, leases, checkpoints and the writer.

A source is given a work item and its opaque checkpoint (an integer whose meaning is the
source's own) and returns the next page of :class:`Hit` — index, id, routing and
``_source`` as JSON bytes, ready for the bulk body — and the checkpoint that page
reaches. An empty page means the item is exhausted. Today's source reads a live
cluster's shard in ``_seq_no`` windows; Elasticsearch 5.6 (no ``_seq_no``) is read by
``_uid`` (:class:`UidCursor`, its checkpoint a string), snapshot files by
``snapshot_source``. :func:`by_uid` is the one place that decides between the live two.

A search answer is parsed once, by msgspec, into the few fields the writer needs; each
``_source`` stays the bytes of the answer (:func:`parse_page`) and goes into the bulk
body as it came, never decoded into Python objects and encoded again.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import msgspec

from ferry.clients.engine import Engine, Refused, quote
from ferry.errors import FerryError
from ferry.services.backfill.workitems import WorkItem

# Sorting a window costs the engine every live document in it: windows are sized to hold
# twice the documents asked for, and a few more (small pages see the most variance), at
# the density seen so far.
WINDOW_SLACK, WINDOW_EXTRA = 2, 8
# A window read in runs of consecutive doc ids (see SeqNoWindows) is sized to hold at
# most a page: the whole window, at the density seen so far, with some room.
RUN_FILL = 0.9
# Past this many runs one sorted search costs less than the requests.
MAX_RUNS = 8
# index.max_result_window's default (from + size).
RESULT_WINDOW = 10_000


class Hit(msgspec.Struct, frozen=True, gc=False):
    """One document as the writer needs it. ``source`` is the document's JSON: it is
    data, never logged or written anywhere but the target. (A Struct, not a dataclass:
    a page makes ten thousand of them, and a frozen dataclass costs 30 times more to
    build; ``gc=False``: it holds no containers, so no cycle can pass through it.)"""

    index: str
    id: str
    routing: str | None
    source: bytes


class DocumentSource(Protocol):
    def read(self, item: WorkItem, checkpoint: Any, size: int) -> tuple[list[Hit], Any]:
        """The next page after ``checkpoint`` (at most ``size`` hits) and the checkpoint
        it reaches; an empty page: nothing left up to the item's end."""
        ...


# -- a search answer, parsed once ------------------------------------------------------------


# Sort values: a _seq_no (int) for SeqNoWindows, a _uid (str) for UidCursor.
_Sort = TypeVar("_Sort", int, str)


class _RawHit(msgspec.Struct, Generic[_Sort], gc=False):
    id: str = msgspec.field(name="_id")
    source: msgspec.Raw = msgspec.field(name="_source")
    routing: str | None = msgspec.field(default=None, name="_routing")
    sort: list[_Sort] = msgspec.field(default_factory=list)
    seq_no: int = msgspec.field(default=-1, name="_seq_no")


class _Position(msgspec.Struct, gc=False):
    """A hit of a search that fetched nothing: its ``_doc`` and ``_seq_no``."""

    sort: list[int]
    seq_no: int = msgspec.field(name="_seq_no")


class _Positions(msgspec.Struct, gc=False):
    hits: list[_Position] = msgspec.field(default_factory=list)


class _PositionAnswer(msgspec.Struct, gc=False):
    hits: _Positions = msgspec.field(default_factory=_Positions)


class _Hits(msgspec.Struct, Generic[_Sort]):
    hits: list[_RawHit[_Sort]] = msgspec.field(default_factory=list)


class _Answer(msgspec.Struct, Generic[_Sort]):
    hits: _Hits[_Sort] = msgspec.field(default_factory=_Hits)


_ANSWER = msgspec.json.Decoder(_Answer[int])
_UID_ANSWER = msgspec.json.Decoder(_Answer[str])
_POSITIONS = msgspec.json.Decoder(_PositionAnswer)


def _decode(decoder: msgspec.json.Decoder[Any], index: str, body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # also a ValidationError: it names a path, no value
        raise FerryError(f"the search answer from {index} could not be read: {exc}",
                         code="UnreadableAnswer", retryable=False) from None


def _one_line(hits: list[Hit], body: bytes) -> list[Hit]:
    """``hits`` with every line break dropped from their sources (see
    :func:`parse_page`); one scan of the answer when it holds none, which is the rule."""
    if b"\n" not in body:
        return hits
    return [Hit(h.index, h.id, h.routing, h.source.replace(b"\n", b""))
            if b"\n" in h.source else h for h in hits]


def parse_page(index: str, body: bytes) -> tuple[list[Hit], list[int]]:
    """The hits of a search answer and each one's first sort value (``_seq_no``; -1
    without one). Fields other than ``_id``, ``_routing``, ``_source`` and ``sort`` are
    skipped, never built into objects.

    An engine sends a stored ``_source`` on as the client wrote it, so it can hold line
    breaks (pretty-printed JSON), which would end a bulk line early. In valid JSON a raw
    line break is only ever whitespace between tokens (inside strings it must be
    escaped, and UTF-8 never uses the byte elsewhere), so dropping it is the one edit
    the bytes may need, and it needs no parse."""
    raws = _decode(_ANSWER, index, body).hits.hits
    hits = [Hit(index, raw.id, raw.routing, bytes(raw.source)) for raw in raws]
    return _one_line(hits, body), [raw.sort[0] if raw.sort else -1 for raw in raws]


def parse_positioned_page(index: str, body: bytes
                          ) -> tuple[list[Hit], list[tuple[int, int]]]:
    """The hits of a search sorted by ``_doc`` with ``seq_no_primary_term``, and each
    one's ``(doc, seq_no)``."""
    raws = _decode(_ANSWER, index, body).hits.hits
    hits = [Hit(index, raw.id, raw.routing, bytes(raw.source)) for raw in raws]
    return _one_line(hits, body), [(raw.sort[0] if raw.sort else -1, raw.seq_no)
                                   for raw in raws]


def parse_uid_page(index: str, body: bytes, fold_types: bool) -> tuple[list[Hit], str | None]:
    """The hits of a search sorted on ``_uid`` and the last one's ``_uid`` (None: no
    hits). With ``fold_types`` each hit's id is its ``_uid`` (``type#id``), so documents
    of two types with the same ``_id`` stay two documents in a typeless target."""
    raws = _decode(_UID_ANSWER, index, body).hits.hits
    hits = [Hit(index, raw.sort[0] if fold_types else raw.id, raw.routing,
                bytes(raw.source)) for raw in raws]
    return _one_line(hits, body), (raws[-1].sort[0] if raws else None)


# -- the live-cluster reader ---------------------------------------------------------------


class SeqNoWindows:
    """Reads one shard of a live source in ``_seq_no`` order (ES ≥ 6.0 and OpenSearch).

    Each search is bounded to a window of ``_seq_no`` values just past the checkpoint, so
    it costs the engine a scan of that window, not of the whole rest of the shard
    (``search_after`` alone would make a shard's copy quadratic on engines that cannot
    skip ahead in a sort). Windows follow the density of live documents: on a shard
    whose documents were updated many times most ``_seq_no`` values belong to replaced
    versions, and a window sized for the page is widened by what the last one found.
    A window that comes back short is read whole and the page goes on in the next one;
    one that comes back empty is followed by a single search over the rest of the item,
    which jumps straight to the next live document (or finds the item exhausted). So a
    page costs one search, a few more where the density changes, never one per empty
    window: searches stay near documents / page size. An item planned with at most half
    a page is one window to its end.

    The checkpoint is exact: the ``_seq_no`` of the last hit of a full page, else the
    end of the last range read whole. The density is only a hint, kept per item.

    How a window is read decides most of the source's cost. Engines load a page's
    ``_source`` block by compressed block; when the page's documents are one run of
    consecutive doc ids they decompress each block once (Elasticsearch 7.10 and the
    OpenSearch releases built from it use a sequential stored-fields reader then),
    otherwise once per document. A ``_seq_no`` window spans a few segments, so its
    documents are a few runs: read as one search sorted by ``_seq_no``, it cost the
    source node about five times the CPU per document of the same documents read in
    runs (measured on ES 7.10, 100k documents of 300 bytes, same run). So a window
    sized to hold at most a page is first listed without loading anything (its
    documents' ``_doc`` and ``_seq_no``: no stored field read), then fetched run by
    run (``search_after`` the run's first ``_doc``, ``size`` its length), each answer
    checked against the list: doc ids only hold still between refreshes and merges, and
    a run that came back different makes the window be read the sorted way. Windows
    that hold more than a page or fall into many runs (an update-heavy shard), and
    engines that refuse the requests, are read with one sorted search, as before.
    Most windows of a shard that is appended to are one run (a segment's documents are
    consecutive, in _seq_no order): after a window that was one run, a window of at
    most a page of _seq_no values (at most a page of documents) is read in one search
    sorted by ``_doc`` without a listing (:meth:`_direct`), which halves the requests
    and the source's CPU per page; one that turns out to be several runs sends the
    item's next windows to the listing until one is a single run again.
    (Engines refuse a custom preference string beside ``_shards:``, so with replicas a
    listing and its fetches may reach two copies of the shard, whose doc ids differ:
    the check then sends that window the sorted way.)
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._density: dict[str, float] = {}
        # Items whose last window was one run of doc ids: their next window is read in
        # one search (see _direct), until a window falls into several runs.
        self._one_run: dict[str, bool] = {}
        self._runs = True  # windows read by runs until the engine refuses a request

    def read(self, item: WorkItem, checkpoint: int, size: int) -> tuple[list[Hit], int]:
        hits: list[Hit] = []
        # Live documents per _seq_no: 1.0 (no updates) until this item shows otherwise.
        density = self._density.get(item.id, 1.0)
        while checkpoint + 1 < item.seq_to and len(hits) < size:
            lo, ask = checkpoint + 1, size - len(hits)
            # An item planned with at most half a page (the many small indices of a
            # logging cluster) is read in one window to its end: one listing, not one
            # per window and one more to find the rest empty.
            upper = item.seq_to if 2 * item.docs_estimate <= ask else \
                min(item.seq_to, lo + self._width(ask, density))
            got, seqs = self._window(item, lo, upper, ask)
            start = lo
            if not got and upper < item.seq_to:
                # Nothing live in the window: search the rest of the item once, which
                # finds the next live documents wherever they are, or none.
                upper = item.seq_to
                got, seqs = self._window(item, lo, upper, ask)
                start = seqs[0] if got else lo
            hits += got
            if len(got) == ask:  # the page is full: it ends at its last hit
                density = ask / (seqs[-1] - start + 1)
                checkpoint = seqs[-1]
            else:  # the range was read whole: the page goes on past it
                density = max(len(got), 1) / (upper - lo)
                checkpoint = upper - 1
        if checkpoint + 1 >= item.seq_to:
            self._density.pop(item.id, None)
            self._one_run.pop(item.id, None)
        else:
            self._density[item.id] = density
        return hits, checkpoint

    def _width(self, ask: int, density: float) -> int:
        """_seq_no values to search for ``ask`` documents at ``density``. Each value
        holds at most one live document, so at density 1 a window of ``ask`` values
        holds at most a page."""
        if not self._runs or ask >= RESULT_WINDOW:
            return max(1, int((WINDOW_SLACK * ask + WINDOW_EXTRA) / density))
        return max(1, int(ask if density >= 1.0 else RUN_FILL * ask / density))

    def _window(self, item: WorkItem, lo: int, upper: int, size: int
                ) -> tuple[list[Hit], list[int]]:
        """Up to ``size`` live documents with ``lo <= _seq_no < upper``, in order: in
        runs of doc ids where the window holds at most ``size``, else sorted."""
        if self._runs and size < RESULT_WINDOW:
            query = {"range": {"_seq_no": {"gte": lo, "lt": upper}}}
            try:
                if upper - lo <= size and self._one_run.get(item.id, True):
                    return self._direct(item, query, size)
                found = self._by_runs(item, query, size)
            except Refused:
                self._runs = False  # an engine without these requests: sorted from now
                found = None
            if found is not None:
                return found
        return self._search(item, lo, upper, size)

    def _by_runs(self, item: WorkItem, query: dict[str, Any], size: int
                 ) -> tuple[list[Hit], list[int]] | None:
        """The whole window read run by run; None where it is read the sorted way."""
        listed = _decode(_POSITIONS, item.index, self._post(item, {
            "size": size + 1, "sort": ["_doc"], "stored_fields": "_none_",
            "seq_no_primary_term": True, "track_total_hits": False, "query": query,
        })).hits.hits
        if len(listed) > size:
            return None  # more than a page: only a sorted search can cut it
        runs = doc_runs([(p.sort[0], p.seq_no) for p in listed])
        self._one_run[item.id] = len(runs) <= 1
        if len(runs) > MAX_RUNS:
            return None
        hits: list[Hit] = []
        seqs: list[int] = []
        for run in runs:
            body: dict[str, Any] = {"size": len(run), "sort": ["_doc"],
                                    "seq_no_primary_term": True,
                                    "track_total_hits": False, "query": query}
            if run[0][0] > 0:
                body["search_after"] = [run[0][0] - 1]
            got, fetched = parse_positioned_page(item.index, self._post(item, body))
            if fetched != run:
                return None  # doc ids moved (a refresh or merge) since the listing
            hits += got
            seqs += [seq for _, seq in run]
        order = sorted(range(len(hits)), key=seqs.__getitem__)
        return [hits[i] for i in order], [seqs[i] for i in order]

    def _direct(self, item: WorkItem, query: dict[str, Any], size: int
                ) -> tuple[list[Hit], list[int]]:
        """A window of at most ``size`` _seq_no values, so of at most ``size``
        documents, read whole in one search sorted by ``_doc``: no listing first. One
        search sees one view of the shard, so nothing can move between its hits. Read
        this way a window that is one run costs what one run fetch does; one of several
        runs loads its documents one by one (the cost the listing avoids), and the
        item's next windows are listed again until one is a single run."""
        got, positions = parse_positioned_page(item.index, self._post(item, {
            "size": size, "sort": ["_doc"], "seq_no_primary_term": True,
            "track_total_hits": False, "query": query}))
        self._one_run[item.id] = len(doc_runs(positions)) <= 1
        order = sorted(range(len(got)), key=lambda i: positions[i][1])
        return [got[i] for i in order], [positions[i][1] for i in order]

    def _search(self, item: WorkItem, lo: int, upper: int, size: int
                ) -> tuple[list[Hit], list[int]]:
        """Up to ``size`` live documents with ``lo <= _seq_no < upper``, in order, in
        one search sorted by ``_seq_no``."""
        return parse_page(item.index, self._post(item, {
            "size": size,
            "sort": [{"_seq_no": "asc"}],
            "query": {"range": {"_seq_no": {"gte": lo, "lt": upper}}},
            "track_total_hits": False,
        }))

    def _post(self, item: WorkItem, body: dict[str, Any]) -> bytes:
        # No filter_path: with one, the engine parses and re-writes every _source to
        # filter the answer; without, it streams the stored bytes.
        raw = self.engine.request_raw(
            "POST", f"/{quote(item.index)}/_search", body=body, missing_ok=False,
            params={"preference": f"_shards:{item.shard}"})
        return raw or b"{}"


def doc_runs(positions: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """``(doc, seq_no)`` pairs in doc order, cut where the doc ids stop being
    consecutive."""
    runs: list[list[tuple[int, int]]] = []
    for position in positions:
        if runs and position[0] == runs[-1][-1][0] + 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    return runs


# -- Elasticsearch 5.6: no _seq_no -----------------------------------------------------------


def by_uid(engine: Engine) -> bool:
    """Whether a live source is read by ``_uid`` (:class:`UidCursor`) rather than in
    ``_seq_no`` windows: Elasticsearch before 6.0 keeps no ``_seq_no`` on documents."""
    return not engine.info().at_least((6, 0))


class UidCursor:
    """Reads one shard of an Elasticsearch 5.x source in ``_uid`` order (``type#id``,
    unique per document and the tie-breaker the 5.x docs give for ``search_after``):
    each page is ``search_after`` the last ``_uid`` handed over, which is the checkpoint
    ("" before the first page). Resuming needs nothing but that string: no scroll
    context to lose, and a page re-read after a crash starts exactly after the last
    document whose bulk was checkpointed. Documents written behind the cursor after it
    passed are not copied (as with any live read); each is copied at most once per pass.

    The cost is the engine's: 5.x cannot range-query ``_uid`` (it answers "does not
    support range queries"), so every page passes over the whole shard, comparing each
    document's ``_uid`` (fielddata, held on the heap) with the cursor: a shard costs
    documents times pages comparisons, and large pages keep that bearable. Items are
    whole shards: ``_uid`` has no ranges known in advance to split a shard by.

    ``fold_types``: the indices (several mapping types merged, ``multiTypeMappings:
    Merge``) whose documents take their ``_uid`` as target ``_id``.
    """

    def __init__(self, engine: Engine, fold_types: frozenset[str] = frozenset()) -> None:
        self.engine = engine
        self.fold_types = fold_types

    def read(self, item: WorkItem, checkpoint: str, size: int) -> tuple[list[Hit], str]:
        body: dict[str, Any] = {"size": size, "sort": [{"_uid": "asc"}]}
        if checkpoint:
            body["search_after"] = [checkpoint]
        raw = self.engine.request_raw(
            "POST", f"/{quote(item.index)}/_search", body=body, missing_ok=False,
            params={"preference": f"_shards:{item.shard}"})
        hits, last = parse_uid_page(item.index, raw or b"{}",
                                    item.index in self.fold_types)
        return hits, last if last is not None else checkpoint
