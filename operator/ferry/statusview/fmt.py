"""How figures read in `ferry status`: durations, counts, sizes, rates, phases.

Everything a resource or an engine wrote is turned into ``rich.text.Text`` here or in
the views, never passed to rich as markup: an engine message such as ``failed to
parse field [price] of type [long]`` must keep its brackets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

# Phases that mean "fine" (green), "working" (cyan), "look at it" (yellow); any other
# phase (Failed, Unreachable, AuthenticationFailed, Invalid, ...) is red.
GOOD = {"Ready", "Completed", "Evaluated"}
WORKING = {"Running", "InProgress", "Verifying", "Planning", "MigratingMetadata", "Deleting"}
WARN = {"Paused", "Degraded", "PartiallyFailed", "CompletedWithErrors"}
HEALTH_STYLE = {"green": "green", "yellow": "yellow", "red": "red"}
NONE = "-"


def phase_style(phase: str | None) -> str:
    if phase is None or phase == "Pending":
        return "dim"
    if phase in GOOD:
        return "green"
    if phase in WORKING:
        return "cyan"
    return "yellow" if phase in WARN else "red"


def phase_text(phase: str | None) -> Text:
    return Text(phase or NONE, style=phase_style(phase))


def duration(seconds: float | None) -> str:
    """``45s``, ``3m07s``, ``1h02m``, ``2d03h``: the two largest units, like kubectl."""
    if seconds is None:
        return NONE
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def count(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def size(value: float | None) -> str:
    """Bytes in binary units with three significant figures: ``512B``, ``9.6KiB``."""
    if value is None:
        return NONE
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.3g}{unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f}%"


def bar(value: float | None, width: int = 12) -> str:
    """A text progress bar (plain characters, so it survives pipes and logs)."""
    if value is None:
        return NONE
    filled = round(min(max(value, 0.0), 100.0) / 100 * width)
    return "█" * filled + "░" * (width - filled)


def docs_rate(value: float | None) -> str:
    return f"{value:,.0f}/s" if value else NONE


def bytes_rate(value: float | None) -> str:
    return f"{size(value)}/s" if value else NONE


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """How long ago an RFC 3339 timestamp was (``12m03s``)."""
    if not timestamp:
        return NONE
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return duration(((now or datetime.now(UTC)) - then).total_seconds())


def get(obj: dict[str, Any], *path: str) -> Any:
    """A nested value or None, for statuses that are partly written."""
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
