"""One small error hierarchy for everything Ferry reports.

Each error has a stable ``code`` (it becomes a condition's ``reason``) and says whether
retrying can help. Messages are written for the person reading ``kubectl describe``
and never contain a secret value.
"""

from __future__ import annotations


class FerryError(Exception):
    code: str = "InternalError"
    retryable: bool = True

    def __init__(self, message: str, *, code: str | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable


class InvalidSpec(FerryError):
    code = "InvalidSpec"
    retryable = False


class ReferenceNotFound(FerryError):
    """A referenced object (Secret, ConfigMap, Cluster, Snapshot) does not exist yet.
    Retryable: it may be created later, and a watch re-checks when it is."""

    code = "ReferenceNotFound"


class SecretNotFound(ReferenceNotFound):
    code = "SecretNotFound"


class ClusterUnreachable(FerryError):
    """No HTTP answer: refused, unresolvable, timed out, or TLS failed."""

    code = "ClusterUnreachable"


class AuthenticationFailed(FerryError):
    """The cluster answered 401 or 403. Retrying with the same credentials cannot help;
    a change to the Secret triggers a new check."""

    code = "AuthenticationFailed"
    retryable = False


class EngineError(FerryError):
    """The engine answered with an error we did not expect."""

    code = "EngineError"


class TargetRejected(FerryError):
    """The target refused what Ferry must write (an index, work items)."""

    code = "TargetRejected"
    retryable = False


class SnapshotFailed(FerryError):
    code = "SnapshotFailed"
    retryable = False
