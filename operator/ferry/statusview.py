"""`ferry status`: every Ferry resource of a namespace on one screen."""

from __future__ import annotations

import io
import time
from typing import Any

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ferry.api import Backfill, Cluster, Snapshot
from ferry.clients import kube

PHASE_STYLE = {"Ready": "green", "Completed": "green", "Running": "cyan",
               "InProgress": "cyan", "Verifying": "cyan", "Planning": "cyan",
               "MigratingMetadata": "cyan", "Evaluated": "green",
               "Paused": "yellow", "Degraded": "yellow", "PartiallyFailed": "yellow",
               "CompletedWithErrors": "yellow", "Pending": "dim"}


def gather(namespace: str | None) -> dict[str, list[dict[str, Any]]]:
    return {kind.kind: kube.list_objects(kind, namespace) for kind in
            (Cluster, Snapshot, Backfill)}


def _phase(status: dict[str, Any]) -> Text:
    phase = status.get("phase") or "-"
    return Text(phase, style=PHASE_STYLE.get(phase, "red"))


def _bar(percent: float | None) -> Any:
    if percent is None:
        return Text("-")
    return Group(ProgressBar(total=100, completed=percent, width=24),
                 Text(f"{percent:.1f}%"))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _name(obj: dict[str, Any], all_namespaces: bool) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if all_namespaces else meta["name"]


def render(data: dict[str, list[dict[str, Any]]], all_namespaces: bool = False) -> Group:
    clusters = Table(title="Clusters", title_justify="left", expand=True)
    for col in ("Name", "Engine", "Version", "Health", "Phase", "Indices", "Docs", "Message"):
        clusters.add_column(col)
    for obj in data["Cluster"]:
        s = obj.get("status") or {}
        indices = s.get("indices") or {}
        health = s.get("health") or "-"
        clusters.add_row(_name(obj, all_namespaces), s.get("engine", "-"),
                         s.get("version", "-"),
                         Text(health, style={"green": "green", "yellow": "yellow"}.get(
                             health, "red")), _phase(s), str(indices.get("count", "-")),
                         str(indices.get("documents", "-")), s.get("message", ""))

    snapshots = Table(title="Snapshots", title_justify="left", expand=True)
    for col in ("Name", "Cluster", "Phase", "Progress", "Shards", "Rate", "ETA", "Message"):
        snapshots.add_column(col)
    for obj in data["Snapshot"]:
        s = obj.get("status") or {}
        p = s.get("progress") or {}
        shards = f"{p.get('shardsDone', '-')}/{p.get('shardsTotal', '-')}"
        rate = p.get("bytesPerSecond")
        snapshots.add_row(_name(obj, all_namespaces), obj["spec"]["clusterRef"]["name"],
                          _phase(s), _bar(p.get("percent")), shards,
                          f"{rate / 1e6:.1f} MB/s" if rate else "-",
                          _duration(p.get("etaSeconds")), s.get("message", ""))

    backfills = Table(title="Backfills", title_justify="left", expand=True)
    for col in ("Name", "Source → Target", "Phase", "Progress", "Docs", "Rate", "ETA",
                "Workers", "Failures"):
        backfills.add_column(col)
    latest: list[tuple[str, dict[str, Any]]] = []
    for obj in data["Backfill"]:
        s = obj.get("status") or {}
        p = s.get("progress") or {}
        spec = obj["spec"]
        docs = f"{p.get('docsMigrated', 0):,}/{p.get('docsTotal', 0):,}"
        rate = p.get("docsPerSecond")
        backfills.add_row(
            _name(obj, all_namespaces),
            f"{spec['sourceRef']['name']} → {spec['targetRef']['name']}", _phase(s),
            _bar(p.get("percent")), docs, f"{rate:,.0f}/s" if rate else "-",
            _duration(p.get("etaSeconds")),
            f"{s.get('workers', 0)}/{s.get('desiredWorkers', spec.get('workers', '-'))}",
            str(p.get("docsFailed") or 0))
        latest += [(obj["metadata"]["name"], f) for f in (s.get("failures") or [])[:3]]

    parts: list[Any] = [clusters, snapshots, backfills]
    if latest:
        failures = Table(title="Latest failures", title_justify="left", expand=True)
        for col in ("Backfill", "Index", "Id", "Reason"):
            failures.add_column(col)
        for name, f in latest:
            failures.add_row(name, f.get("index", "-"), f.get("id", "-"), f.get("reason", ""))
        parts.append(failures)
    return Group(*parts)


def render_text(namespace: str | None, width: int = 160) -> str:
    """The view as plain text (tests, logs, pipes)."""
    console = Console(width=width, file=io.StringIO())
    console.print(render(gather(namespace), all_namespaces=namespace is None))
    return console.file.getvalue()  # type: ignore[attr-defined]


def show(namespace: str | None, watch: bool, interval: float) -> int:
    console = Console()
    if not watch:
        console.print(render(gather(namespace), all_namespaces=namespace is None))
        return 0
    from rich.live import Live

    with Live(console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                live.update(render(gather(namespace), all_namespaces=namespace is None))
                time.sleep(interval)
        except KeyboardInterrupt:
            return 0
