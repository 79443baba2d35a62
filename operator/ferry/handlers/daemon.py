"""The one per-resource loop every kind runs in its kopf daemon:

    reconcile (blocking, off the event loop) → Outcome → write status if it changed
    → post events → wait for a trigger (spec or Secret change, a worker's wake-up), a
    stop, or the Outcome's delay.

A pass that raises is logged and retried after ``ERROR_DELAY`` (``API_RETRY_DELAY`` when
the API server was unavailable: a restart, logged without a traceback): one bad pass
never ends the loop. The loop keeps its own copy of the status: the operator is its only
writer, and the watched body lags each write by a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import kopf

from ferry.api.meta import KindInfo
from ferry.clients import kube
from ferry.clients.kube import StatusCopy
from ferry.events import announce_all
from ferry.runtime import Runtime
from ferry.services.outcome import Outcome, unexpected_error

log = logging.getLogger("ferry.daemon")
ERROR_DELAY = 15.0
# A pass that could not reach the API server tries again sooner: it is back soon.
API_RETRY_DELAY = 3.0


class Reconciler(Protocol):
    def reconcile(self, body: dict[str, Any]) -> Outcome: ...

    def close(self) -> None: ...


def view(body: kopf.Body, status: dict[str, Any]) -> dict[str, Any]:
    """What a reconcile pass reads: metadata and spec as watched, our own status."""
    return {"metadata": dict(body.get("metadata") or {}), "spec": dict(body.get("spec") or {}),
            "status": status}


async def _wait(trigger: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    waiters = {asyncio.ensure_future(trigger.wait()),
               asyncio.ensure_future(_until(stopped))}
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


async def _until(stopped: kopf.DaemonStopped) -> None:
    await stopped.wait()


async def _report_unexpected(kind: KindInfo, body: kopf.Body, memo: Runtime,
                             current: StatusCopy, exc: Exception) -> StatusCopy:
    """The resource's status and one event say that a pass failed unexpectedly (never
    a silent wait); if even that cannot be written, the log is all there is."""
    meta = body.get("metadata") or {}
    outcome = unexpected_error(current.status, exc, meta.get("generation"), ERROR_DELAY)
    try:
        assert outcome.status is not None
        current = await memo.run(kube.write_status, kind, str(meta.get("namespace")),
                                 str(meta.get("name")), current, outcome.status)
        announce_all(body, outcome.events)
    except Exception as again:  # the loop must go on whatever happens
        log.warning("%s %s/%s: could not report the error in status either (%s)",
                    kind.kind, meta.get("namespace"), meta.get("name"),
                    type(again).__name__)
    return current


async def run(kind: KindInfo, body: kopf.Body, memo: Runtime, stopped: kopf.DaemonStopped,
              reconciler: Reconciler,
              on_wake: Callable[[Callable[[], None]], None] | None = None) -> None:
    """Drive one resource until kopf stops its daemon (deletion or shutdown).

    ``on_wake`` receives a thread-safe function that ends the current wait at once
    (worker threads use it to say "all work items are done")."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    trigger = memo.triggers.register(kind.kind, namespace, name)
    if on_wake is not None:
        loop = asyncio.get_running_loop()
        on_wake(lambda: loop.call_soon_threadsafe(trigger.set))
    current = StatusCopy(dict(body.get("status") or {}), meta.get("resourceVersion"))
    # Passes run on this resource's own thread: one that hangs on its cluster delays
    # no other resource (runtime.Runtime.lane).
    lane = memo.lane(f"{kind.kind.lower()}-{name}")
    try:
        while not stopped:
            trigger.clear()
            try:
                outcome = await memo.run(reconciler.reconcile, view(body, current.status),
                                         lane=lane)
                if outcome.status is not None:
                    current = await memo.run(kube.write_status, kind, namespace, name,
                                             current, outcome.status)
                announce_all(body, outcome.events)
                delay = outcome.delay
            except Exception as exc:
                where = {"object": {"kind": kind.kind, "namespace": namespace, "name": name}}
                if kube.api_unavailable(exc):
                    # Expected during an API server restart; the work itself goes on.
                    log.warning("%s %s/%s: the API server is unavailable (%s); trying "
                                "again", kind.kind, namespace, name, type(exc).__name__,
                                extra=where)
                    delay = API_RETRY_DELAY
                else:
                    log.exception("%s %s/%s: reconcile failed unexpectedly", kind.kind,
                                  namespace, name, extra=where)
                    delay = ERROR_DELAY
                    current = await _report_unexpected(kind, body, memo, current, exc)
            await _wait(trigger, stopped, delay)
    finally:
        memo.triggers.unregister(kind.kind, namespace, name)
        lane.shutdown(wait=False)
        await memo.run(reconciler.close)
