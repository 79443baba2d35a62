"""What `ferry status` knows about a resource, as plain data: the kinds and their
names on the command line, one summary per object (what ``-o json|yaml`` prints), the
Failed test behind the exit code, and failures grouped by reason."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ferry.api import KINDS, Backfill, Cluster, KindInfo, Snapshot
from ferry.api.phases import Conditions
from ferry.statusview.fmt import get

Data = dict[str, list[dict[str, Any]]]


def kind_named(word: str) -> KindInfo | None:
    """The kind a word names as kubectl would take it: ``backfill``, ``backfills``,
    ``bf``, ``backfills.ferry.dev`` (any case)."""
    word = word.lower().removesuffix(".ferry.dev")
    for kind in KINDS:
        if word in (kind.singular, kind.plural, *kind.short_names):
            return kind
    return None


def is_failed(obj: dict[str, Any]) -> bool:
    """Phase Failed, or a Failed condition that is True: what makes the exit code 1."""
    status = obj.get("status") or {}
    if status.get("phase") == "Failed":
        return True
    return any(c.get("type") == Conditions.FAILED and c.get("status") == "True"
               for c in status.get("conditions") or [])


def any_failed(data: Data) -> bool:
    return any(is_failed(obj) for objs in data.values() for obj in objs)


def failure_groups(failures: list[dict[str, Any]]) -> list[tuple[str, int, list[str]]]:
    """``(reason, count, where)`` most frequent first; ``where`` lists ``index/id`` of
    the failures with that reason (the status keeps only the latest few)."""
    counts = Counter(f.get("reason") or "" for f in failures)
    where: dict[str, list[str]] = {}
    for f in failures:
        place = "/".join(str(p) for p in (f.get("index"), f.get("id")) if p)
        if place:
            where.setdefault(f.get("reason") or "", []).append(place)
    return [(reason, n, where.get(reason, [])) for reason, n in counts.most_common()]


def summary(kind: KindInfo, obj: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    """One object for scripts: names, phase, progress and conditions (with ``detail``
    also per-index rows and failures grouped by reason)."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    item: dict[str, Any] = {
        "kind": kind.kind, "namespace": get(obj, "metadata", "namespace"),
        "name": get(obj, "metadata", "name"), "phase": status.get("phase"),
        "message": status.get("message"), "failed": is_failed(obj),
    }
    if kind is Cluster:
        item.update(endpoint=spec.get("endpoint"), engine=status.get("engine"),
                    version=status.get("version"), health=status.get("health"),
                    indices=status.get("indices"))
    elif kind is Snapshot:
        item.update(cluster=get(spec, "clusterRef", "name"),
                    snapshotName=status.get("snapshotName"),
                    progress=status.get("progress"))
    elif kind is Backfill:
        item.update(source=get(spec, "sourceRef", "name"),
                    target=get(spec, "targetRef", "name"),
                    progress=status.get("progress"), workers=status.get("workers"),
                    desiredWorkers=status.get("desiredWorkers", spec.get("workers")))
    item["conditions"] = status.get("conditions") or []
    if detail and kind is not Cluster:
        item["indices"] = status.get("indices") or []
        item["failureReasons"] = [{"reason": r, "count": n, "where": w}
                                  for r, n, w in failure_groups(status.get("failures") or [])]
    return item


def summaries(data: Data) -> list[dict[str, Any]]:
    return [summary(kind, obj) for kind in KINDS for obj in data.get(kind.kind, [])]
