"""Backfill handlers: one daemon per Backfill drives it through its phases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Backfill
from ferry.api.backfill import BackfillSpec
from ferry.clients import kube
from ferry.errors import FerryError
from ferry.events import announce
from ferry.runtime import Runtime
from ferry.services.backfill.copy import BackfillService
from ferry.services.backfill.reconciler import BackfillController, endpoints_for, lease_seconds

log = logging.getLogger("ferry.backfill")
DELETE_RETRIES = 5


def _merge(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = {**status, **patch}
    return {k: v for k, v in merged.items() if v is not None}


@kopf.on.update(GROUP, VERSION, Backfill.plural, field="spec")
def spec_changed(namespace: str, name: str, memo: Runtime, **_: Any) -> None:
    memo.backfill_triggers.poke(namespace, name)


@kopf.daemon(GROUP, VERSION, Backfill.plural, cancellation_timeout=90.0)
async def drive(namespace: str, name: str, uid: str, body: kopf.Body, memo: Runtime,
                **_: Any) -> None:
    controller = memo.backfills.get(uid)
    if controller is None:
        controller = memo.backfills[uid] = BackfillController(namespace, name, uid,
                                                              memo.reader)
    trigger = memo.backfill_triggers.register(namespace, name)
    loop = asyncio.get_running_loop()
    controller.wake = lambda: loop.call_soon_threadsafe(trigger.set)
    # The operator is the only writer of status: after the first read, our own copy is
    # fresher than the watched body, which lags each patch by a moment.
    status = dict(body.get("status") or {})
    try:
        while True:
            trigger.clear()
            view = {"metadata": dict(body["metadata"]), "spec": dict(body["spec"]),
                    "status": status}
            try:
                outcome = await memo.run(controller.step, view)
                if outcome.status:
                    await memo.run(kube.patch_status, Backfill, namespace, name,
                                   outcome.status)
                    status = _merge(status, outcome.status)
                for event_type, reason, message in outcome.events:
                    announce(body, event_type, reason, message)
                delay = outcome.delay
            except Exception:  # one bad step never ends the loop
                log.exception("Backfill %s/%s: step failed unexpectedly", namespace, name)
                delay = 15.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(trigger.wait(), timeout=delay)
    finally:
        memo.backfill_triggers.unregister(namespace, name)
        # Shutdown or deletion: workers finish their batch and release their items.
        await memo.run(controller.stop_workers)


@kopf.on.delete(GROUP, VERSION, Backfill.plural)
def cleanup(namespace: str, name: str, uid: str, spec: kopf.Spec, body: kopf.Body,
            memo: Runtime, retry: int, **_: Any) -> None:
    """Stop the workers and remove the coordination index — never the copied data."""
    controller = memo.backfills.pop(uid, None)
    if controller is not None:
        controller.stop_workers()
    parsed = BackfillSpec.model_validate(dict(spec))
    if parsed.executor == "pods":
        kube.delete_deployment(namespace, f"ferry-worker-{name}"[:63])
    if not (body.get("status") or {}).get("coordinationIndex"):
        return  # never got as far as creating one: nothing on the target to remove
    try:
        service = BackfillService(endpoints_for(namespace, parsed, memo.reader), parsed, uid,
                                  lease_seconds())
        service.cleanup()
    except FerryError as exc:
        if exc.retryable and retry < DELETE_RETRIES:
            raise kopf.TemporaryError(f"cannot remove the coordination index yet: "
                                      f"{exc.message}", delay=min(60, 5 * 2 ** retry)) from None
        message = (f"released without removing the coordination index "
                   f".ferry-backfill-{uid} from the target: {exc.message}")
        announce(body, "Warning", "CleanupSkipped", message)
