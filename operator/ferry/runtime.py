"""What the handlers share inside one operator process (kopf's memo)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
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
    # Short blocking calls (status writes, deletion steps). A resource's reconcile pass
    # runs on a lane of its own (``lane``), never here: a Cluster that accepts TCP and
    # never answers holds its pass for timeout x retries, and 32 of them would
    # otherwise hold every thread while the other resources wait.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=32,
                                                   thread_name_prefix="ferry-io"))
    triggers: Triggers = field(default_factory=Triggers)
    # Backfill uid -> its reconciler: the worker pools live as long as their daemon, and
    # the delete handler stops them.
    backfill_reconcilers: dict[str, Any] = field(default_factory=dict)

    async def run(self, fn: Callable[..., T], *args: Any, lane: Executor | None = None) -> T:
        """Run blocking client code off the event loop: on ``lane`` if given, else on the
        shared pool."""
        return await asyncio.get_running_loop().run_in_executor(lane or self.executor, fn,
                                                                *args)

    @staticmethod
    def lane(label: str) -> ThreadPoolExecutor:
        """One thread for one resource's passes, so however long a pass waits on its
        cluster, no other resource waits for a thread. The caller shuts it down
        (``wait=False``: a pass still waiting ends at its request timeout)."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ferry-{label}"[:40])
