"""What one reconcile pass of any kind decided: the whole new status, the events to
post, and when to look again. The handlers' one loop (``handlers/daemon.py``) writes
the status (only when it changed), posts the events and waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
