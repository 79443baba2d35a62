"""The version matrix: every engine version the test bed runs, and one pool of nodes
for a whole test run.

A node starts on first use and stays up for the tests after it; at most ``limit``
(three) are alive at once, so memory stays bounded on a 2-core, 24 GB machine: asking
for a fourth stops the least recently used one. Test modules are ordered by node so
that each starts once. Pinned nodes (the suite's session ``opensearch`` and
``elasticsearch`` fixtures) are never stopped by the pool before the end of the run.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from testbed.search import SearchNode, find_install, java_major_for, release

# (engine, version) of every node the test bed installs (hack/fetch-search-engines.sh).
MATRIX: tuple[tuple[str, str], ...] = (
    ("elasticsearch", "5.6.16"),
    ("elasticsearch", "6.8.23"),
    ("elasticsearch", "7.10.2"),
    ("elasticsearch", "8.15.5"),
    ("opensearch", "1.3.20"),
    ("opensearch", "2.19"),
    ("opensearch", "3.3.2"),
)


@dataclass(frozen=True)
class NodeKey:
    engine: str
    version: str  # the installed version, e.g. "2.19.6"
    security: bool | None = None

    @property
    def label(self) -> str:
        off = "-insecure" if self.security is False else ""
        return f"{self.engine}-{self.version}{off}"


def resolve(engine: str, version: str | None, security: bool | None = None) -> NodeKey:
    """The key of the install ``SearchNode(engine, version)`` would run."""
    home = find_install(engine, version)
    installed = home.name[len(engine) + 1:]
    # Security only means something on ES 8+; elsewhere every request is the same node.
    secure = security if engine == "elasticsearch" and release(installed)[0] >= 8 else None
    return NodeKey(engine, installed, secure)


class NodePool:
    """Lazily started nodes, at most ``limit`` alive, the least recently used stopped
    first. ``repo_dirs`` go into every node's path.repo (a shared fs repository)."""

    def __init__(self, limit: int = 3, repo_dirs: tuple[Path, ...] = (),
                 heap: str = "512m") -> None:
        self.limit = limit
        self.repo_dirs = repo_dirs
        self.heap = heap
        self._alive: OrderedDict[NodeKey, SearchNode] = OrderedDict()
        self._pinned: set[NodeKey] = set()
        # label -> "version (Java N)" of every node this pool started, for the summary.
        self.started: dict[str, str] = {}

    def get(self, engine: str, version: str | None = None, *,
            security: bool | None = None) -> SearchNode:
        key = resolve(engine, version, security)
        node = self._alive.get(key)
        if node is not None and node.running:
            self._alive.move_to_end(key)
            return node
        self._alive.pop(key, None)
        self._make_room()
        node = SearchNode(engine, key.version, heap=self.heap, repo_dirs=self.repo_dirs,
                          security=key.security)
        self._alive[key] = node
        try:
            node.start()
        except BaseException:
            self._alive.pop(key, None)
            node.stop()
            raise
        self.started[key.label] = (f"{node.number} (Java "
                                   f"{java_major_for(engine, key.version)})")
        return node

    def pin(self, node: SearchNode) -> None:
        """Adopt a node started elsewhere (a session fixture): the pool hands it out
        and never stops it before :meth:`stop_all`."""
        key = resolve(node.engine, node.installed_version, node.security)
        self._alive[key] = node
        self._pinned.add(key)

    def release(self, engine: str, version: str | None = None, *,
                security: bool | None = None) -> None:
        """Stop a node now (a module that knows no later test needs it)."""
        key = resolve(engine, version, security)
        if key in self._pinned:
            return
        node = self._alive.pop(key, None)
        if node is not None:
            node.stop()

    def alive(self) -> list[str]:
        return [k.label for k, n in self._alive.items() if n.running]

    def _make_room(self) -> None:
        while len(self._alive) >= self.limit:
            victim = next((k for k in self._alive if k not in self._pinned), None)
            if victim is None:
                return  # every slot pinned: the pinned nodes are the bound
            self._alive.pop(victim).stop()

    def stop_all(self) -> None:
        for node in self._alive.values():
            with contextlib.suppress(Exception):
                node.stop()
        self._alive.clear()
        self._pinned.clear()

