"""The vocabulary of every kind's status in one table: phases and condition types as
named constants (the Literal types in each kind's module are what the CRD enumerates;
a unit test keeps the two the same). Reasons are FerryError codes (``errors.py``) or
the phase-specific words the status rules set; README's tables list them."""

from __future__ import annotations


class Conditions:
    READY = "Ready"
    PROGRESSING = "Progressing"
    FAILED = "Failed"
    VERIFIED = "Verified"
    INSECURE_TLS = "InsecureTLS"
    # kstatus (Flux, kpt, cli-utils): Reconciling=True while the operator is still on
    # its way; Stalled=True when it failed and nothing but a person can move it on.
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class ClusterPhases:
    PENDING = "Pending"
    READY = "Ready"
    DEGRADED = "Degraded"
    UNREACHABLE = "Unreachable"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    INVALID = "Invalid"


class SnapshotPhases:
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    PARTIALLY_FAILED = "PartiallyFailed"
    FAILED = "Failed"
    DELETING = "Deleting"
    TERMINAL = frozenset({COMPLETED, PARTIALLY_FAILED, FAILED})


class BackfillPhases:
    PENDING = "Pending"
    PLANNING = "Planning"
    MIGRATING_METADATA = "MigratingMetadata"
    RUNNING = "Running"
    PAUSED = "Paused"
    VERIFYING = "Verifying"
    EVALUATED = "Evaluated"
    COMPLETED = "Completed"
    COMPLETED_WITH_ERRORS = "CompletedWithErrors"
    FAILED = "Failed"
    # Phases the daemon no longer works in (Evaluated resumes on a spec change).
    TERMINAL = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, FAILED, EVALUATED})
    # Phases in which the Backfill is still on its way (Progressing=True).
    ACTIVE = frozenset({PENDING, PLANNING, MIGRATING_METADATA, RUNNING, VERIFYING})
    DONE = frozenset({COMPLETED, COMPLETED_WITH_ERRORS})


def phase_names(table: type) -> set[str]:
    """Every phase a table names (for the test against the CRD's enumeration)."""
    return {v for k, v in vars(table).items() if k.isupper() and isinstance(v, str)}
