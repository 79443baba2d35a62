"""Pure rules for a Backfill's status: progress figures, rate, phase conditions."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ferry.conditions import set_condition
from ferry.services.backfill.workitems import Summary

TERMINAL = ("Completed", "CompletedWithErrors", "Failed", "Evaluated")


def resumes(phase: str, status: dict[str, Any], generation: int | None) -> bool:
    """An end phase that a spec change continues: Evaluated evaluates again, or goes on
    to migrate once spec.metadata.mode is Create. Every spec change bumps the generation,
    and status.observedGeneration says which one was evaluated."""
    return phase == "Evaluated" and generation is not None \
        and generation != status.get("observedGeneration")
RATE_WINDOW_SECONDS = 60.0


class RateTracker:
    """Documents per second as a moving average over the last minute."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, docs: int, at: float | None = None) -> float | None:
        now = time.monotonic() if at is None else at
        self._samples.append((now, docs))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 1.0:
            return None
        return max(0.0, (d1 - d0) / (t1 - t0))


def progress(docs_total: int, summary: Summary, rate: float | None) -> dict[str, Any]:
    done = summary.docs_done
    percent = 100.0 if docs_total == 0 else min(100.0, 100.0 * done / docs_total)
    out: dict[str, Any] = {
        "docsTotal": docs_total, "docsMigrated": done, "docsFailed": summary.docs_failed,
        "bytesMigrated": summary.bytes_done, "percent": round(percent, 1),
    }
    if rate is not None:
        out["docsPerSecond"] = round(rate, 1)
        remaining = max(0, docs_total - done)
        if rate > 0:
            out["etaSeconds"] = int(remaining / rate)
    return out


def work_items(summary: Summary) -> dict[str, int]:
    return {"total": summary.total, "completed": summary.completed,
            "inProgress": summary.in_progress, "waiting": summary.waiting}


def index_rows(plan_indices: list[dict[str, Any]], summary: Summary,
               verified: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    checked = {row["name"]: row for row in verified or []}
    rows = []
    for index in plan_indices[:100]:
        row = {"name": index["source"], "target": index["target"],
               "docsTotal": index["docs"],
               "docsMigrated": summary.per_index.get(index["source"], {}).get("docs", 0)}
        if index["source"] in checked:
            row["targetCount"] = checked[index["source"]]["targetCount"]
            row["verified"] = checked[index["source"]]["verified"]
        rows.append(row)
    return rows


def conditions_for(previous: list[dict[str, Any]], phase: str, reason: str, message: str,
                   generation: int | None) -> list[dict[str, Any]]:
    """Ready / Progressing / Failed for a phase (Verified is set by verification)."""
    running = phase in ("Pending", "Planning", "MigratingMetadata", "Running", "Verifying")
    conds = set_condition(previous, "Progressing", running,
                          reason if running else phase, message, generation)
    conds = set_condition(conds, "Ready", phase in ("Completed", "CompletedWithErrors"),
                          reason, message, generation)
    return set_condition(conds, "Failed", phase == "Failed", reason, message, generation)
