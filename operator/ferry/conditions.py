"""Status bookkeeping shared by every kind: metav1.Conditions (a transition time
that moves only when the status does) and merge patches of status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # what Kubernetes writes: UTC, whole seconds


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(RFC3339)


def now() -> str:
    return rfc3339(datetime.now(UTC))


def from_millis(millis: int | None) -> str | None:
    """An engine's epoch milliseconds as a status timestamp (None for 0/None)."""
    return rfc3339(datetime.fromtimestamp(millis / 1000, UTC)) if millis else None


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, RFC3339).replace(tzinfo=UTC)


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool | str,
                  reason: str, message: str, generation: int | None) -> list[dict[str, Any]]:
    """Return a new list with ``type_`` set. lastTransitionTime moves only when the
    status changes, as the API conventions ask."""
    status_str = status if isinstance(status, str) else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = (previous["lastTransitionTime"]
                  if previous and previous.get("status") == status_str
                  and previous.get("lastTransitionTime") else now())
    condition = {"type": type_, "status": status_str, "reason": reason,
                 "message": message[:32768], "lastTransitionTime": transition}
    if generation is not None:
        condition["observedGeneration"] = generation
    others = [c for c in conditions if c.get("type") != type_]
    return sorted([*others, condition], key=lambda c: c["type"])


def get_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def remove_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type_]


def status_patch(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from previous to new: keys that vanished are set to
    None, at every depth (a merge patch merges nested objects, so a key left out of a
    nested object would otherwise stay)."""
    patch = dict(new)
    for key, old in previous.items():
        if key not in new:
            patch[key] = None
        elif isinstance(old, dict) and isinstance(new[key], dict):
            patch[key] = status_patch(old, new[key])
    return patch
