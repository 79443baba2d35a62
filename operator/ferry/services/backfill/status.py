"""Pure rules for a Backfill's status: progress figures (and their text for printer
columns), rate, rows, phase conditions (Ferry's and kstatus' Reconciling/Stalled), the
worker pods' selector and the verification verdict — for both methods (copy and
restore)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ferry.api import units
from ferry.api.common import MAX_STATUS_LIST
from ferry.api.phases import BackfillPhases as P
from ferry.api.phases import Conditions
from ferry.conditions import set_condition
from ferry.services.backfill.workitems import Summary

TERMINAL = P.TERMINAL
MAX_INDEX_ROWS = MAX_STATUS_LIST * 5
RATE_WINDOW_SECONDS = 60.0


def resumes(phase: str, status: dict[str, Any], generation: int | None) -> bool:
    """An end phase that a spec change continues: Evaluated evaluates again, or goes on
    to migrate once spec.metadata.mode is Create. Every spec change bumps the generation,
    and status.observedGeneration says which one was evaluated."""
    return phase == P.EVALUATED and generation is not None \
        and generation != status.get("observedGeneration")


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


def _with_rate(out: dict[str, Any], docs_total: int, docs_done: int, rate: float | None
               ) -> dict[str, Any]:
    if rate is not None:
        out["docsPerSecond"] = round(rate, 1)
        if rate > 0:
            out["etaSeconds"] = int(max(0, docs_total - docs_done) / rate)
    return shown(out)


# The progress figures as text too, as printer columns show them.
TEXTS: units.Texts = {"completion": ("percent", units.percent),
                      "rate": ("docsPerSecond", units.count_rate),
                      "eta": ("etaSeconds", units.duration)}


def shown(progress: dict[str, Any]) -> dict[str, Any]:
    """The progress block with its TEXTS set from the figures."""
    return units.with_texts(progress, TEXTS)


def planned_progress(docs_total: int) -> dict[str, Any]:
    """progress before any document moved."""
    return shown({"docsTotal": docs_total, "docsMigrated": 0, "percent": 0.0})


# The labels of the worker pods (services/backfill/deployment.py puts them on the pod
# template; a unit test keeps the two the same).
WORKER_APP = "ferry-worker"
BACKFILL_LABEL = "ferry.dev/backfill"


def worker_selector(name: str) -> str:
    """status.selector: the scale subresource's label selector, in the string form
    HPA and KEDA read (kubectl's -l syntax)."""
    return f"app.kubernetes.io/name={WORKER_APP},{BACKFILL_LABEL}={name}"


def progress(docs_total: int, summary: Summary, rate: float | None) -> dict[str, Any]:
    done = summary.docs_done
    percent = 100.0 if docs_total == 0 else min(100.0, 100.0 * done / docs_total)
    return _with_rate({
        "docsTotal": docs_total, "docsMigrated": done, "docsFailed": summary.docs_failed,
        "bytesMigrated": summary.bytes_done, "percent": round(percent, 1),
    }, docs_total, done, rate)


def restore_progress(docs_total: int, docs_done: int, done: bool, rate: float | None,
                     bytes_done: int, shards_done: int, shards_total: int
                     ) -> dict[str, Any]:
    """The copy method's progress block, for a restore: documents are the recorded
    counts of finished indices plus a byte-share estimate of those in recovery."""
    if docs_total:
        percent = 100.0 * docs_done / docs_total
    else:
        percent = 100.0 * shards_done / shards_total if shards_total else 0.0
    percent = 100.0 if done else min(percent, 99.9)  # never 100 before the engine is done
    return _with_rate({"docsTotal": docs_total, "docsMigrated": docs_done, "docsFailed": 0,
                       "bytesMigrated": bytes_done, "percent": round(percent, 1)},
                      docs_total, docs_done, rate)


def work_items(summary: Summary) -> dict[str, int]:
    return {"total": summary.total, "completed": summary.completed,
            "inProgress": summary.in_progress, "waiting": summary.waiting}


def planned_rows(plan: list[tuple[str, str, int | None]]) -> list[dict[str, Any]]:
    """status.indices before any document moved: (source, target, documents)."""
    rows = []
    for source, target, docs in plan[:MAX_INDEX_ROWS]:
        row: dict[str, Any] = {"name": source, "target": target}
        if docs is not None:
            row["docsTotal"] = docs
        rows.append(row)
    return rows


def index_rows(plan_indices: list[dict[str, Any]], summary: Summary,
               verified: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    checked = {row["name"]: row for row in verified or []}
    rows = []
    for index in plan_indices[:MAX_INDEX_ROWS]:
        row = {"name": index["source"], "target": index["target"],
               "docsTotal": index["docs"],
               "docsMigrated": summary.per_index.get(index["source"], {}).get("docs", 0)}
        if index["source"] in checked:
            # Verified: the source's count then, not the plan's (documents written to
            # the source during the copy show as the difference they make).
            row["docsTotal"] = checked[index["source"]].get("docsTotal", index["docs"])
            row["targetCount"] = checked[index["source"]]["targetCount"]
            row["verified"] = checked[index["source"]]["verified"]
        rows.append(row)
    return rows


def conditions_for(previous: list[dict[str, Any]], phase: str, reason: str, message: str,
                   generation: int | None) -> list[dict[str, Any]]:
    """Ready / Progressing / Failed for a phase (Verified is set by verification), and
    kstatus' pair: Reconciling=True in the active phases (like Progressing), Stalled=True
    when Failed (every Failed is final: retryable errors keep the phase). Paused and
    Evaluated wait for a person by design, so they are neither: kstatus reads them as
    InProgress from Ready=False."""
    running, failed = phase in P.ACTIVE, phase == P.FAILED
    conds = set_condition(previous, Conditions.PROGRESSING, running,
                          reason if running else phase, message, generation)
    conds = set_condition(conds, Conditions.RECONCILING, running,
                          reason if running else phase, message, generation)
    conds = set_condition(conds, Conditions.READY, phase in P.DONE, reason, message,
                          generation)
    conds = set_condition(conds, Conditions.STALLED, failed, reason if failed else phase,
                          message, generation)
    return set_condition(conds, Conditions.FAILED, failed, reason, message, generation)


def verification(rows: list[dict[str, Any]], mismatch: Callable[[dict[str, Any]], str],
                 matched: Callable[[int], str], unchecked: str | None = None
                 ) -> tuple[str, str, str]:
    """The Verified condition (status, reason, message) from per-index rows, for both
    methods: no rows (verify.counts off) → Unknown; rows without a verdict only (no
    recorded counts) → Unknown with ``unchecked``; any mismatch → False naming up to
    ten indices; else True."""
    if not rows:
        return "Unknown", "NotChecked", "verify.counts is off"
    checked = [r for r in rows if "verified" in r]
    if not checked and unchecked is not None:
        return "Unknown", "NoSnapshotCounts", unchecked
    bad = [r for r in checked if not r["verified"]]
    if bad:
        return "False", "Mismatch", "; ".join(mismatch(r) for r in bad[:10])
    return "True", "CountsMatch", matched(len(checked))


def verdict(docs_failed: int, mismatched: int, done_message: str) -> tuple[str, str, str]:
    """The end phase, its reason and message once verification ran."""
    if docs_failed:
        return (P.COMPLETED_WITH_ERRORS, "DocumentsRejected",
                f"done; the target rejected {docs_failed} documents (see failures)")
    if mismatched:
        return (P.COMPLETED_WITH_ERRORS, "VerificationFailed",
                f"done, but {mismatched} indices did not verify (see Verified)")
    return P.COMPLETED, "Completed", done_message
