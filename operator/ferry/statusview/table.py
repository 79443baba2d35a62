"""The overview: one section per kind, one line per object, its message on the line
under it.

Designed for 80 columns first (a default terminal, and `make demo` piped): each kind
has a few columns that are always shown and more that appear when the terminal is
wide enough, the least important dropped first. Columns are as wide as their widest
cell and never truncated; a line that still does not fit wraps rather than lose a
character, and messages wrap under their row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
from rich.text import Text

from ferry.api import KINDS, Backfill, Cluster, KindInfo, Snapshot
from ferry.statusview import fmt
from ferry.statusview.fmt import get
from ferry.statusview.model import Data, failure_groups

GAP = "  "
Cell = Callable[[dict[str, Any]], "str | Text"]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    # 0: always shown; otherwise dropped (highest first) when the line is too wide.
    priority: int = 0
    justify: Literal["left", "right"] = "left"


def _status(obj: dict[str, Any], *path: str) -> Any:
    return get(obj, "status", *path)


def _phase(obj: dict[str, Any]) -> Text:
    return fmt.phase_text(_status(obj, "phase"))


def _engine(obj: dict[str, Any]) -> str:
    engine, version = _status(obj, "engine"), _status(obj, "version")
    return " ".join(p for p in (engine, version) if p) or fmt.NONE


def _health(obj: dict[str, Any]) -> Text:
    health = _status(obj, "health")
    return Text(health or fmt.NONE, style=fmt.HEALTH_STYLE.get(health or "", "dim"))


def _of(done: Any, total: Any) -> str:
    if done is None and total is None:
        return fmt.NONE
    return f"{fmt.count(done)}/{fmt.count(total)}"


def _progress(obj: dict[str, Any], key: str) -> Any:
    return _status(obj, "progress", key)


def _route(obj: dict[str, Any]) -> str:
    return f"{get(obj, 'spec', 'sourceRef', 'name')} → {get(obj, 'spec', 'targetRef', 'name')}"


def _workers(obj: dict[str, Any]) -> str:
    desired = _status(obj, "desiredWorkers")
    if desired is None:
        desired = get(obj, "spec", "workers")
    return f"{_status(obj, 'workers') or 0}/{fmt.NONE if desired is None else desired}"


COLUMNS: dict[str, tuple[Column, ...]] = {
    Cluster.kind: (
        Column("ENGINE", _engine),
        Column("HEALTH", _health, 2),
        Column("PHASE", _phase),
        Column("INDICES", lambda o: fmt.count(_status(o, "indices", "count")), 3, "right"),
        Column("DOCS", lambda o: fmt.count(_status(o, "indices", "documents")), 1, "right"),
        Column("SIZE", lambda o: fmt.size(_status(o, "indices", "storeBytes")), 4, "right"),
        Column("NODES", lambda o: fmt.count(_status(o, "nodes")), 5, "right"),
        Column("ENDPOINT", lambda o: get(o, "spec", "endpoint") or fmt.NONE, 6),
    ),
    Snapshot.kind: (
        Column("CLUSTER", lambda o: get(o, "spec", "clusterRef", "name") or fmt.NONE, 1),
        Column("PHASE", _phase),
        Column("PROGRESS", lambda o: fmt.percent(_progress(o, "percent")), 0, "right"),
        Column("", lambda o: fmt.bar(_progress(o, "percent")), 5),
        Column("SHARDS", lambda o: _of(_progress(o, "shardsDone"), _progress(o, "shardsTotal")),
               2, "right"),
        Column("SIZE", lambda o: fmt.size(_progress(o, "bytesTotal")), 3, "right"),
        Column("RATE", lambda o: fmt.bytes_rate(_progress(o, "bytesPerSecond")), 4, "right"),
        Column("ETA", lambda o: fmt.duration(_progress(o, "etaSeconds")), 1, "right"),
        Column("SNAPSHOT", lambda o: _status(o, "snapshotName") or fmt.NONE, 6),
    ),
    Backfill.kind: (
        Column("SOURCE → TARGET", _route, 1),
        Column("PHASE", _phase),
        Column("PROGRESS", lambda o: fmt.percent(_progress(o, "percent")), 0, "right"),
        Column("", lambda o: fmt.bar(_progress(o, "percent")), 5),
        Column("DOCS", lambda o: _of(_progress(o, "docsMigrated"), _progress(o, "docsTotal")),
               1, "right"),
        Column("FAILED", lambda o: fmt.count(_progress(o, "docsFailed") or 0), 3, "right"),
        Column("RATE", lambda o: fmt.docs_rate(_progress(o, "docsPerSecond")), 4, "right"),
        Column("ETA", lambda o: fmt.duration(_progress(o, "etaSeconds")), 2, "right"),
        Column("WORKERS", _workers, 6, "right"),
    ),
}


def widths(columns: list[Column], cells: list[list[Text]]) -> list[int]:
    """Each column as wide as its header or its widest cell."""
    return [max([row[i].cell_len for row in cells] + [len(c.header)])
            for i, c in enumerate(columns)]


def fit(columns: list[Column], full: list[int], width: int) -> list[int]:
    """Indices of the columns to show: all of them if they fit in ``width``, else
    drop the highest priority (the rightmost first among equals) until they do or
    only the always-shown ones are left."""
    shown = list(range(len(columns)))

    def line_width() -> int:
        return sum(full[i] for i in shown) + len(GAP) * (len(shown) - 1)

    while line_width() > width:
        droppable = [i for i in shown if columns[i].priority > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].priority, i)))
    return shown


def _line(texts: list[Text], sizes: list[int], justify: list[str]) -> Text:
    line = Text(no_wrap=False, overflow="fold")
    for n, (text, w, how) in enumerate(zip(texts, sizes, justify, strict=True)):
        if n:
            line.append(GAP)
        pad = " " * (w - text.cell_len)
        last = n == len(texts) - 1
        if how == "right":
            line.append(pad)
        line.append_text(text)
        if how == "left" and not last:
            line.append(pad)
    return line


def _as_text(value: str | Text) -> Text:
    # A plain Text, never markup: names and engine messages keep their brackets.
    return value if isinstance(value, Text) else Text(value)


Notes = Callable[[dict[str, Any]], Iterator[Text]]


class Fitted:
    """A titled list of rows fitted to the console width at render time (so a Live
    view follows a resized terminal), each row followed by its notes, indented."""

    def __init__(self, title: str, columns: list[Column], items: list[dict[str, Any]],
                 notes: Notes | None = None) -> None:
        self.title, self.columns, self.items, self.notes = title, columns, items, notes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        columns = self.columns
        cells = [[_as_text(c.cell(item)) for c in columns] for item in self.items]
        full = widths(columns, cells)
        shown = fit(columns, full, options.max_width)
        sizes = [full[i] for i in shown]
        justify = [columns[i].justify for i in shown]
        yield Text(self.title, style="bold underline")
        yield _line([Text(columns[i].header, style="dim") for i in shown], sizes, justify)
        for item, row in zip(self.items, cells, strict=True):
            yield _line([row[i] for i in shown], sizes, justify)
            for note in self.notes(item) if self.notes else ():
                yield Padding(note, (0, 0, 0, 4))


def _notes(kind: KindInfo, obj: dict[str, Any]) -> Iterator[Text]:
    """The lines under a row: the status message, then the commonest failure."""
    phase = _status(obj, "phase")
    style = "dim" if phase in fmt.GOOD else fmt.phase_style(phase)
    if message := _status(obj, "message"):
        yield Text(message, style=style)
    groups = failure_groups(_status(obj, "failures") or [])
    if groups:
        reason, n, _ = groups[0]
        others = len(groups) - 1
        more = f" (and {others} more reason{'s' if others > 1 else ''})" if others else ""
        name = get(obj, "metadata", "name")
        yield Text(f"latest failures ({n}): {reason}{more} — ferry status "
                   f"{kind.singular}/{name}", style="yellow")


class Overview:
    """Every object of ``data``, one section per kind, fitted to the console width."""

    def __init__(self, data: Data, all_namespaces: bool = False,
                 namespace: str | None = None) -> None:
        self.data = data
        self.all_namespaces = all_namespaces
        self.namespace = namespace

    def _name(self, obj: dict[str, Any]) -> Text:
        meta = obj.get("metadata") or {}
        name = f"{meta.get('namespace')}/{meta.get('name')}" if self.all_namespaces \
            else str(meta.get("name"))
        return Text(name, style="bold")

    def section(self, kind: KindInfo, objs: list[dict[str, Any]]) -> Fitted:
        return Fitted(f"{kind.plural.title()} ({len(objs)})",
                      [Column("NAME", self._name), *COLUMNS[kind.kind]], objs,
                      lambda obj: _notes(kind, obj))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        empty = True
        for kind in KINDS:
            objs = self.data.get(kind.kind) or []
            if not objs:
                continue
            if not empty:
                yield Text("")
            empty = False
            yield self.section(kind, objs)
        if empty:
            where = "any namespace" if self.all_namespaces else \
                f"namespace {self.namespace}" if self.namespace else "this namespace"
            yield Text(f"No Ferry resources (Clusters, Snapshots, Backfills) in {where}.")
