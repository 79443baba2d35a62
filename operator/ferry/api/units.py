"""Figures as people read them: the short status strings beside the numbers
(``progress.eta`` "1h02m" beside ``etaSeconds``), because printer columns cannot
format a number — ``kubectl get`` shows what the status holds, as it holds it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("", "k", "M", "G", "T")


def duration(seconds: float) -> str:
    """1h02m, 5m03s, 42s; 2d03h from a day on (two units, as kubectl's AGE)."""
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _scaled(value: float, step: float, units: tuple[str, ...]) -> str:
    """One decimal below 10 of a unit, none from there on: 1.5KiB, 12MiB, 340k."""
    index = 0
    # step - 0.5 and not step: 999.7 shows as 1k, not as 1000.
    while abs(value) >= step - 0.5 and index < len(units) - 1:
        value /= step
        index += 1
    text = f"{value:.1f}" if index and abs(value) < 10 else f"{value:.0f}"
    return text.removesuffix(".0") + units[index]


def size(num_bytes: float) -> str:
    """Bytes in binary units: 512B, 1.5KiB, 12MiB, 1.2GiB."""
    return _scaled(num_bytes, 1024, _BINARY)


def percent(value: float) -> str:
    """A percentage with its unit: 42.5%, 100%."""
    return f"{round(value, 1):g}%"


def count_rate(per_second: float) -> str:
    """A count per second: 850/s, 1.2k/s, 34k/s."""
    return f"{_scaled(per_second, 1000, _DECIMAL)}/s"


def byte_rate(per_second: float) -> str:
    """Bytes per second: 12MiB/s."""
    return f"{size(per_second)}/s"


# text field -> (the figure it shows, how)
Texts = Mapping[str, tuple[str, Callable[[float], str]]]


def with_texts(figures: dict[str, Any], texts: Texts) -> dict[str, Any]:
    """``figures`` with each text field set from its figure; a text whose figure is
    gone goes too, so the two never disagree."""
    out = {k: v for k, v in figures.items() if k not in texts}
    for key, (figure, text) in texts.items():
        if out.get(figure) is not None:
            out[key] = text(out[figure])
    return out
