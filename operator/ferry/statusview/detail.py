"""`ferry status KIND/NAME`: one resource in full — its figures, conditions, per-index
rows, and the latest failures grouped by reason with counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ferry.api import Backfill, Cluster, KindInfo, Snapshot
from ferry.statusview import fmt
from ferry.statusview.fmt import get
from ferry.statusview.model import failure_groups
from ferry.statusview.table import Column, Fitted

Facts = list[tuple[str, str | Text]]


def _when(status: dict[str, Any], key: str) -> str:
    value = status.get(key)
    return f"{value} ({fmt.age(value)} ago)" if value else fmt.NONE


def _progress(percent: float | None) -> str:
    return fmt.NONE if percent is None else f"{fmt.percent(percent)} {fmt.bar(percent, 20)}"


def _cluster_facts(spec: dict[str, Any], s: dict[str, Any]) -> Facts:
    totals, system = s.get("indices") or {}, s.get("systemIndices") or {}
    engine = " ".join(str(p) for p in (s.get("engine"), s.get("version"),
                                        s.get("distribution")) if p) or fmt.NONE
    return [
        ("Endpoint", spec.get("endpoint") or fmt.NONE),
        ("Engine", engine),
        ("Health", Text(s.get("health") or fmt.NONE,
                        style=fmt.HEALTH_STYLE.get(s.get("health") or "", "dim"))),
        ("Nodes", f"{fmt.count(s.get('nodes'))} ({fmt.count(s.get('dataNodes'))} data)"),
        ("Shards", f"{fmt.count(s.get('activeShards'))} active, "
                   f"{fmt.count(s.get('unassignedShards'))} unassigned"),
        ("Indices", f"{fmt.count(totals.get('count'))} indices, "
                    f"{fmt.count(totals.get('documents'))} docs, "
                    f"{fmt.size(totals.get('storeBytes'))}"),
        ("System", f"{fmt.count(system.get('count'))} indices, "
                   f"{fmt.size(system.get('storeBytes'))}"),
        ("Checked", _when(s, "lastCheckedTime")),
    ]


def _snapshot_facts(spec: dict[str, Any], s: dict[str, Any]) -> Facts:
    p = s.get("progress") or {}
    repo = spec.get("repository") or {}
    return [
        ("Cluster", get(spec, "clusterRef", "name") or fmt.NONE),
        ("Snapshot", " ".join(str(v) for v in (s.get("snapshotName"), s.get("snapshotUuid"))
                              if v) or fmt.NONE),
        ("Repository", f"{repo.get('name', fmt.NONE)} ({repo.get('type', fmt.NONE)})"),
        ("Progress", _progress(p.get("percent"))),
        ("Shards", f"{fmt.count(p.get('shardsDone'))}/{fmt.count(p.get('shardsTotal'))} "
                   f"done, {fmt.count(p.get('shardsFailed') or 0)} failed"),
        ("Bytes", f"{fmt.size(p.get('bytesDone'))}/{fmt.size(p.get('bytesTotal'))}, "
                  f"{fmt.bytes_rate(p.get('bytesPerSecond'))}, "
                  f"ETA {fmt.duration(p.get('etaSeconds'))}"),
        ("Documents", fmt.count(s.get("documents"))),
        ("Started", _when(s, "startTime")),
        ("Completed", _when(s, "completionTime")),
    ]


def _backfill_facts(spec: dict[str, Any], s: dict[str, Any]) -> Facts:
    p, items = s.get("progress") or {}, s.get("workItems") or {}
    route = f"{get(spec, 'sourceRef', 'name')} → {get(spec, 'targetRef', 'name')}"
    return [
        ("Source → Target", f"{route} (method {spec.get('method', 'copy')})"),
        ("Progress", _progress(p.get("percent"))),
        ("Documents", f"{fmt.count(p.get('docsMigrated'))}/{fmt.count(p.get('docsTotal'))} "
                      f"copied, {fmt.count(p.get('docsFailed') or 0)} failed"),
        ("Rate", f"{fmt.docs_rate(p.get('docsPerSecond'))}, "
                 f"ETA {fmt.duration(p.get('etaSeconds'))}"),
        ("Workers", f"{s.get('workers') or 0} of "
                    f"{s.get('desiredWorkers', spec.get('workers', fmt.NONE))}"),
        ("Work items", f"{items.get('completed', 0)}/{items.get('total', 0)} done, "
                       f"{items.get('inProgress', 0)} leased, {items.get('waiting', 0)} "
                       "waiting" if items else fmt.NONE),
        ("Started", _when(s, "startTime")),
        ("Completed", _when(s, "completionTime")),
    ]


FACTS = {Cluster.kind: _cluster_facts, Snapshot.kind: _snapshot_facts,
         Backfill.kind: _backfill_facts}

INDEX_COLUMNS: dict[str, list[Column]] = {
    Snapshot.kind: [
        Column("INDEX", lambda i: i.get("name") or fmt.NONE),
        Column("STATE", lambda i: i.get("state") or fmt.NONE),
        Column("SHARDS", lambda i: f"{fmt.count(i.get('shardsDone'))}/"
                                   f"{fmt.count(i.get('shardsTotal'))}", 0, "right"),
        Column("FAILED", lambda i: fmt.count(i.get("shardsFailed") or 0), 0, "right"),
        Column("DOCS", lambda i: fmt.count(i.get("documents")), 0, "right"),
    ],
    Backfill.kind: [
        Column("INDEX", lambda i: i.get("name") or fmt.NONE),
        Column("TARGET", lambda i: i.get("target") or fmt.NONE, 1),
        Column("DOCS", lambda i: f"{fmt.count(i.get('docsMigrated'))}/"
                                 f"{fmt.count(i.get('docsTotal'))}", 0, "right"),
        Column("ON TARGET", lambda i: fmt.count(i.get("targetCount")), 2, "right"),
        Column("VERIFIED", lambda i: {True: "yes", False: "NO"}.get(i.get("verified"),
                                                                    fmt.NONE)),
    ],
}

CONDITION_COLUMNS = [
    Column("TYPE", lambda c: c.get("type") or fmt.NONE),
    Column("STATUS", lambda c: c.get("status") or fmt.NONE),
    Column("REASON", lambda c: c.get("reason") or fmt.NONE),
    Column("AGE", lambda c: fmt.age(c.get("lastTransitionTime")), 0, "right"),
]


def _condition_notes(status: dict[str, Any]) -> Callable[[dict[str, Any]], Iterator[Text]]:
    """A condition's message under its row, unless the status message or a condition
    above already said the same (the operator often gives several the same words)."""
    said = {status.get("message")}

    def notes(condition: dict[str, Any]) -> Iterator[Text]:
        message = condition.get("message")
        if message and message not in said:
            said.add(message)
            yield Text(message)
    return notes


def _failures(failures: list[dict[str, Any]]) -> Iterator[RenderableType]:
    groups = failure_groups(failures)
    yield Text(f"Latest failures ({len(failures)} kept, by reason)",
               style="bold underline")
    for reason, n, where in groups:
        yield Padding(Text.assemble((f"{n:>4}  ", "bold"), (reason, "yellow")), (0, 0, 0, 2))
        if where:
            shown = ", ".join(where[:5]) + (f" (+{len(where) - 5} more)" if len(where) > 5
                                            else "")
            yield Padding(Text(f"at {shown}", style="dim"), (0, 0, 0, 6))


def detail(kind: KindInfo, obj: dict[str, Any]) -> Group:
    """The whole view of one object."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, \
        obj.get("status") or {}
    parts: list[RenderableType] = [Text.assemble(
        (f"{kind.kind} {meta.get('namespace')}/{meta.get('name')}  ", "bold"),
        fmt.phase_text(status.get("phase")))]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim", no_wrap=True)
    facts.add_column(overflow="fold")
    for key, value in FACTS[kind.kind](spec, status):
        facts.add_row(key, value if isinstance(value, Text) else Text(value))
    if message := status.get("message"):
        facts.add_row("Message", Text(message))
    parts += [facts, Text("")]
    if conditions := status.get("conditions"):
        parts += [Fitted("Conditions", CONDITION_COLUMNS, conditions,
                         _condition_notes(status)),
                  Text("")]
    if kind.kind in INDEX_COLUMNS and (indices := status.get("indices")):
        total = status.get("indicesTotal") or len(indices)
        parts += [Fitted(f"Indices ({total})", INDEX_COLUMNS[kind.kind], indices), Text("")]
    if failures := status.get("failures"):
        parts += list(_failures(failures))
    return Group(*parts)
