"""Operator-wide settings, applied once at start-up."""

from __future__ import annotations

import logging
from typing import Any

import kopf

FINALIZER = "ferry.dev/finalizer"
ANNOTATION_PREFIX = "ferry.dev"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Handler progress and the last-handled spec live in our own annotations, not in
    # status, so a status written by the operator never races kopf's bookkeeping.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
    # Only events we post explicitly (kopf.event), never every log line.
    settings.posting.loggers = False
    settings.posting.reporting_component = "ferry"
    # Re-establish watches before load balancers drop idle connections.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    settings.execution.max_workers = 16
    # Each resource's daemon gets this long to finish its current step on shutdown.
    settings.background.instant_exit_timeout = 5
    # The client logs every failed request with a traceback; our own messages already
    # say what failed, once per transition.
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
