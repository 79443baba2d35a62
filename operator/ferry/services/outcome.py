"""What one reconcile pass of any kind decided: the whole new status, the events to
post, and when to look again. The handlers' one loop (``handlers/daemon.py``) writes
the status (only when it changed), posts the events and waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ferry.conditions import get_condition, set_condition

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource (and log). Never holds a secret or a
    document's content."""

    type: EventType
    reason: str
    message: str

    @classmethod
    def normal(cls, reason: str, message: str) -> Event:
        return cls("Normal", reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> Event:
        return cls("Warning", reason, message)


@dataclass
class Outcome:
    """``status``: the whole new status (None: leave it as it is)."""

    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    delay: float = 5.0


UNEXPECTED = "ReconcileError"


def unexpected_error(status: dict[str, Any], exc: BaseException, generation: int | None,
                     retry_seconds: float) -> Outcome:
    """A pass that raised something no rule expected (a bug): the resource still says
    so — its phase kept (Pending if it had none), ``Ready=False`` with reason
    ReconcileError — and one Warning event, not one per retry. Only the exception's
    type is shown: its text may quote what a cluster answered."""
    message = (f"the operator hit an unexpected {type(exc).__name__} and tries again every "
               f"{retry_seconds:.0f}s; its log has the details")
    previous = status.get("conditions") or []
    again = (get_condition(previous, "Ready") or {}).get("reason") == UNEXPECTED
    new = {**status, "phase": status.get("phase") or "Pending", "message": message,
           "conditions": set_condition(previous, "Ready", False, UNEXPECTED, message,
                                       generation)}
    return Outcome(new, [] if again else [Event.warning(UNEXPECTED, message)],
                   retry_seconds)
