"""What the handlers share inside one operator process (kopf's memo)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ferry.clients.kube import ObjectReader
from ferry.settings import OperatorOptions

T = TypeVar("T")


class Triggers:
    """Wake-up calls for per-resource loops: a Secret or spec change pokes one, and it
    re-checks at once instead of waiting out its interval."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str, str], asyncio.Event] = {}

    def register(self, kind: str, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((kind, namespace, name), asyncio.Event())

    def unregister(self, kind: str, namespace: str, name: str) -> None:
        self._events.pop((kind, namespace, name), None)

    def poke(self, kind: str, namespace: str, name: str) -> None:
        event = self._events.get((kind, namespace, name))
        if event is not None:
            event.set()


@dataclass
class Runtime:
    options: OperatorOptions = field(default_factory=OperatorOptions)
    reader: ObjectReader = field(default_factory=ObjectReader)
    # Bounded: every request has a timeout, so a hanging cluster holds one thread for
    # at most timeout x retries, and the others go on.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32,
                                                   thread_name_prefix="ferry-io"))
    triggers: Triggers = field(default_factory=Triggers)
    # Backfill uid -> its reconciler: the worker pools live as long as their daemon, and
    # the delete handler stops them.
    backfill_reconcilers: dict[str, Any] = field(default_factory=dict)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking client code off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
