"""`ferry status`: every Ferry resource of a namespace on one screen, or one resource
in full (``ferry status backfill/x``), for people (rich text fitted to the terminal,
80 columns first) or scripts (``-o json|yaml``); the exit code is 1 when anything
shown is Failed, so CI can gate on it."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console, RenderableType

from ferry.api import GROUP, KINDS, KindInfo
from ferry.clients import kube
from ferry.statusview.detail import detail
from ferry.statusview.model import Data, any_failed, is_failed, kind_named, summaries, summary
from ferry.statusview.table import Overview

__all__ = ["NotFound", "Query", "gather", "look", "present", "render", "render_text", "show"]


class NotFound(LookupError):
    """The resource asked for does not exist (or names no Ferry kind)."""


@dataclass(frozen=True)
class Query:
    """What to show: a namespace (None: all of them) and optionally one ``KIND/NAME``."""

    namespace: str | None
    resource: str | None = None
    output: str | None = None  # None (text), "json" or "yaml"

    def target(self) -> tuple[KindInfo, str] | None:
        if self.resource is None:
            return None
        word, _, name = self.resource.partition("/")
        kind = kind_named(word)
        if kind is None or not name:
            kinds = ", ".join(k.singular for k in KINDS)
            raise NotFound(f"{self.resource!r}: expected KIND/NAME with KIND one of {kinds}")
        return kind, name


def gather(namespace: str | None) -> Data:
    """Every Cluster, Snapshot and Backfill of a namespace (None: all namespaces)."""
    return {kind.kind: kube.list_objects(kind, namespace) for kind in KINDS}


def render(data: Data, all_namespaces: bool = False,
           namespace: str | None = None) -> RenderableType:
    """The overview of ``data``; it fits itself to the console it is printed on."""
    return Overview(data, all_namespaces=all_namespaces, namespace=namespace)


def render_text(namespace: str | None, width: int = 160) -> str:
    """The overview of a namespace, read from the API server, as plain text."""
    console = Console(width=width, file=io.StringIO())
    console.print(render(gather(namespace), all_namespaces=namespace is None,
                         namespace=namespace))
    return console.file.getvalue()  # type: ignore[attr-defined]


def _one(query: Query, kind: KindInfo, name: str) -> dict[str, Any]:
    namespace = query.namespace or kube.current_namespace()
    obj = kube.get_object(kind, namespace, name)
    if obj is None:
        raise NotFound(f"{kind.singular} {namespace}/{name} not found "
                       f"({kind.plural}.{GROUP})")
    return obj


def present(output: str | None, data: Data | None = None,
            one: tuple[KindInfo, dict[str, Any]] | None = None, *,
            all_namespaces: bool = False, namespace: str | None = None
            ) -> tuple[RenderableType | str, bool]:
    """What to print for ``data`` (the overview) or ``one`` object (in full), and
    whether anything in it is Failed. Pure: the statuses come in as dicts."""
    if one is not None:
        kind, obj = one
        view: RenderableType = detail(kind, obj)
        doc: Any = summary(kind, obj, detail=True)
        failed = is_failed(obj)
    else:
        data = data or {}
        view = render(data, all_namespaces=all_namespaces, namespace=namespace)
        doc = {"items": summaries(data)}
        failed = any_failed(data)
    if output == "json":
        return json.dumps(doc, indent=2), failed
    if output == "yaml":
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), failed
    return view, failed


def look(query: Query) -> tuple[RenderableType | str, bool]:
    """One look at the API server: what to print and whether anything is Failed."""
    target = query.target()
    if target is not None:
        kind, name = target
        return present(query.output, one=(kind, _one(query, kind, name)))
    return present(query.output, gather(query.namespace),
                   all_namespaces=query.namespace is None, namespace=query.namespace)


def show(query: Query, watch: bool = False, interval: float = 2.0,
         console: Console | None = None) -> int:
    """Print the view (refreshed until Ctrl-C with ``watch``); 1 if anything shown is
    Failed (at the last refresh), else 0."""
    console = console or Console()
    if not watch:
        view, failed = look(query)
        _print(console, view)
        return 1 if failed else 0
    failed = False
    if query.output:  # scripts get a new document whenever something changed
        last = None
        try:
            while True:
                view, failed = look(query)
                if view != last:
                    _print(console, view)
                    last = view
                time.sleep(interval)
        except KeyboardInterrupt:
            return 1 if failed else 0
    from rich.live import Live

    with Live(console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                view, failed = look(query)
                live.update(view)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
    return 1 if failed else 0


def _print(console: Console, view: RenderableType | str) -> None:
    if isinstance(view, str):
        # Documents go out verbatim: no markup, no highlighting, no wrapping.
        console.file.write(view if view.endswith("\n") else view + "\n")
        console.file.flush()
    else:
        console.print(view)
