"""`ferry worker`: copy workers for one Backfill in their own process (the pods
executor). They share the Backfill's work items with every other worker through the
coordination index; the operator keeps planning, status and verification."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from ferry.api import Backfill
from ferry.api.backfill import BackfillSpec
from ferry.clients import kube
from ferry.clients.kube import ObjectReader
from ferry.errors import FerryError
from ferry.services.backfill.copy import BackfillService
from ferry.services.backfill.pool import WorkerPool
from ferry.services.backfill.reconciler import endpoints_for, lease_seconds
from ferry.services.backfill.status import TERMINAL

log = logging.getLogger("ferry.worker")


def run_worker(namespace: str, name: str, threads: int = 1, poll_seconds: float = 3.0,
               stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reader = ObjectReader()
    pool: WorkerPool | None = None
    service: BackfillService | None = None
    try:
        while not stop.is_set():
            obj: dict[str, Any] | None = kube.get_object(Backfill, namespace, name)
            if obj is None:
                log.info("Backfill %s/%s is gone; stopping", namespace, name)
                return 0
            phase = (obj.get("status") or {}).get("phase")
            if phase in TERMINAL:
                log.info("Backfill %s/%s is %s; stopping", namespace, name, phase)
                return 0
            spec = BackfillSpec.model_validate(obj["spec"])
            if phase in ("Running", "Paused"):
                try:
                    if service is None:
                        service = BackfillService(endpoints_for(namespace, spec, reader), spec,
                                                  obj["metadata"]["uid"], lease_seconds())
                        pool = WorkerPool(name, service.context())
                        log.info("worker for Backfill %s/%s started with %d thread(s)",
                                 namespace, name, threads)
                    assert pool is not None
                    pool.scale(threads, spec.paused or spec.workers == 0)
                    if service.store.all_done():
                        log.info("every work item of %s/%s is done", namespace, name)
                        return 0
                except FerryError as exc:
                    log.warning("Backfill %s/%s: %s", namespace, name, exc.message)
                    service = None
            stop.wait(poll_seconds)
        return 0
    finally:
        if pool is not None:
            pool.close()
