"""`ferry worker`: copy workers for one Backfill in their own process (the pods
executor). They share the Backfill's work items with every other worker through the
coordination index; the operator keeps planning, status and verification. A worker serves
the same /metrics as the operator (``settings.metrics_port``; its bulk latency and its
clusters' busy answers), which the chart's PodMonitor scrapes."""

from __future__ import annotations

import logging
import signal
import threading

from ferry import allocator, metrics
from ferry.api.phases import BackfillPhases as P
from ferry.clients.kube import ObjectReader
from ferry.errors import FerryError
from ferry.services.backfill.copy import CopyService
from ferry.services.backfill.pool import WorkerPool
from ferry.services.references import References
from ferry.settings import OperatorOptions

log = logging.getLogger("ferry.worker")


def run_worker(namespace: str, name: str, options: OperatorOptions, threads: int = 1,
               poll_seconds: float = 3.0, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    allocator.release_big_buffers()
    metrics.serve(options.metrics_port, options.bind_address)
    references = References(namespace, ObjectReader())
    pool: WorkerPool | None = None
    service: CopyService | None = None
    try:
        while not stop.is_set():
            try:
                found = references.backfill(name)
                if found is None:
                    log.info("Backfill %s/%s is gone; stopping", namespace, name)
                    return 0
                obj, spec = found
                phase = (obj.get("status") or {}).get("phase")
                if phase in P.TERMINAL:
                    log.info("Backfill %s/%s is %s; stopping", namespace, name, phase)
                    return 0
                if phase in (P.RUNNING, P.PAUSED):
                    if service is None:
                        service = CopyService(references.endpoints(spec), spec,
                                              obj["metadata"]["uid"], options.lease_seconds)
                        pool = WorkerPool(name, service.context())
                        log.info("worker for Backfill %s/%s started with %d thread(s)",
                                 namespace, name, threads)
                    assert pool is not None
                    # Re-read every poll: throttle, batch and onConflict apply live.
                    service.configure(pool, spec)
                    pool.scale(threads, spec.paused or spec.workers == 0)
                    if service.store.all_done():
                        log.info("every work item of %s/%s is done", namespace, name)
                        return 0
            except FerryError as exc:
                log.warning("Backfill %s/%s: %s", namespace, name, exc.message)
                if pool is not None:
                    pool.close()
                pool = service = None
            stop.wait(poll_seconds)
        return 0
    finally:
        if pool is not None:
            pool.close()
