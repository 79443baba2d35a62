"""The report of a metadata run: one Item per template, index and alias, with what was
done to it and why, counted and bounded for ``status.metadata``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.conditions import now

MAX_ITEMS = 100  # status.metadata.items bound

LEGACY, COMPONENT, COMPOSABLE, INDEX, ALIAS = ("LegacyTemplate", "ComponentTemplate",
                                               "IndexTemplate", "Index", "Alias")
# Report order when the list is cut: problems, then changes, then the rest.
ACTION_RANK = {"TargetRejected": 0, "Incompatible": 1, "Created": 2, "WouldCreate": 2,
               "AlreadyExists": 3, "Skipped": 4}


@dataclass
class Item:
    kind: str
    name: str
    action: str
    reason: str | None = None
    target: str | None = None
    removed: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.kind, self.name, self.target

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.target is not None:
            out["target"] = self.target
        if self.reason:
            out["reason"] = self.reason[:1024]
        if self.removed:
            out["removedSettings"] = self.removed[:20]
        return out


# The reason code of a closed source index (the Backfill's failure reason too).
INDEX_CLOSED = "IndexClosed"


def closed_items(names: list[str], policy: str) -> list[Item]:
    """The report's rows for closed source indices the spec selects: Skipped with
    spec.closedIndices Skip; otherwise (only Evaluate mode gets this far) Incompatible,
    saying what Create would do."""
    if policy == "Skip":
        return [Item(INDEX, name, "Skipped", f"{INDEX_CLOSED}: the source index is closed; "
                     "left out (spec.closedIndices: Skip)") for name in names]
    return [Item(INDEX, name, "Incompatible", f"{INDEX_CLOSED}: the source index is closed "
                 "and cannot be read; Create fails unless it is opened, left out of "
                 "spec.indices, or spec.closedIndices is Skip") for name in names]


@dataclass
class MetadataResult:
    mode: str
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> Item:
        self.items.append(item)
        return item

    def counts(self) -> dict[str, int]:
        names = {"Created": "created", "WouldCreate": "wouldCreate",
                 "AlreadyExists": "alreadyExists", "Skipped": "skipped",
                 "Incompatible": "incompatible", "TargetRejected": "targetRejected"}
        out = dict.fromkeys(names.values(), 0)
        for item in self.items:
            out[names[item.action]] += 1
        return out

    def blocking(self) -> list[Item]:
        """Index items that keep the Backfill from copying."""
        return [i for i in self.items if i.kind == INDEX
                and i.action in ("Incompatible", "TargetRejected")]

    def summary(self) -> str:
        counts = self.counts()
        words = {"created": "created", "wouldCreate": "would be created",
                 "alreadyExists": "already exist", "skipped": "skipped",
                 "incompatible": "incompatible", "targetRejected": "rejected by the target"}
        parts = [f"{n} {words[k]}" for k, n in counts.items() if n]
        removed = sum(len(i.removed) for i in self.items)
        if removed:
            parts.append(f"{removed} rejected settings removed")
        return ", ".join(parts) or "nothing to migrate"

    def report(self) -> dict[str, Any]:
        items = self.items
        if len(items) > MAX_ITEMS:
            order = {id(item): n for n, item in enumerate(items)}
            items = sorted(items, key=lambda i: (ACTION_RANK[i.action], order[id(i)]))
            items = items[:MAX_ITEMS]
        return {"mode": self.mode, "time": now(), "counts": self.counts(),
                "itemsTotal": len(self.items), "items": [i.to_wire() for i in items]}
