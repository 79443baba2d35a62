"""Target tuning during a copy (method copy).

While documents load, the target indices this Backfill created get
``refresh_interval: -1`` and ``number_of_replicas: 0`` (auto-expansion off, or the engine
would add the replicas back), and ``translog.durability: async`` only when
``spec.targetTuning.translogAsync`` allows it — what Elastic's and OpenSearch's tuning
guides advise for a bulk load. An index that existed before the Backfill (no mark of
this Backfill in its mapping ``_meta``) is never touched.

The original values are written to the coordination index *before* any setting
changes, so an operator that crashes mid-copy finds them and restores them later. A
restore puts back exactly what was set (a setting that was unset is reset to the
engine's default), refreshes the indices once so every copied document is visible, is
idempotent, and skips an index deleted or replaced (another uuid) meanwhile. It runs
before verification, on pause, when tuning is turned off, on failure and when the
Backfill is deleted. ``status.tuning`` is a bounded view of the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferry.api.common import MAX_STATUS_LIST
from ferry.clients.engine import Engine
from ferry.conditions import from_millis
from ferry.errors import FerryError
from ferry.services import indices as idx
from ferry.services.backfill.workitems import WorkItemStore, now_ms
from ferry.services.indices import META_KEY
from ferry.services.outcome import Event

if TYPE_CHECKING:
    from ferry.api.backfill import BackfillSpec
    from ferry.services.backfill.copy import CopyService

REFRESH = "index.refresh_interval"
REPLICAS = "index.number_of_replicas"
AUTO_EXPAND = "index.auto_expand_replicas"
DURABILITY = "index.translog.durability"
UUID = "index.uuid"
TUNED_KEYS = (REFRESH, REPLICAS, AUTO_EXPAND, DURABILITY)
TUNED, RESTORED = "Tuned", "Restored"


# -- pure rules ------------------------------------------------------------------------


def originals(response: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per index of ``GET /<indices>/_settings/<keys>?flat_settings=true``: its uuid
    and the values of the tuned settings that are set."""
    out: dict[str, dict[str, Any]] = {}
    for name, entry in response.items():
        flat = entry.get("settings") or {}
        out[name] = {"uuid": flat.get(UUID),
                     "original": {k: str(flat[k]) for k in TUNED_KEYS if k in flat}}
    return out


def load_settings(original: Mapping[str, str], translog_async: bool) -> dict[str, str]:
    """What an index gets for the load, given its original values."""
    out = {REFRESH: "-1", REPLICAS: "0"}
    if original.get(AUTO_EXPAND, "false") != "false":
        out[AUTO_EXPAND] = "false"
    if translog_async:
        out[DURABILITY] = "async"
    return out


def restore_settings(original: Mapping[str, str], translog_async: bool
                     ) -> dict[str, str | None]:
    """What puts an index back: every setting the load changed, to its original value,
    or None (reset to the engine's default) where it was unset."""
    return {k: original.get(k) for k in load_settings(original, translog_async)}


def batches(bodies: Mapping[str, Mapping[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Indices that get the same settings body share requests: one per body and name
    group (a request line stays short however many indices there are)."""
    by_body: dict[tuple[tuple[str, Any], ...], list[str]] = defaultdict(list)
    for name in sorted(bodies):
        by_body[tuple(sorted(bodies[name].items()))].append(name)
    return [(dict(key), group) for key, names in by_body.items()
            for group in idx.name_groups(names)]


def owned(mappings: Mapping[str, Any], uid: str) -> list[str]:
    """The indices of a ``GET /<indices>/_mapping`` answer that this Backfill created."""
    return sorted(name for name, entry in mappings.items()
                  if ((entry.get("mappings") or {}).get("_meta") or {}).get(META_KEY) == uid)


def status_of(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """status.tuning from the record: None while nothing was tuned."""
    if not record or not record.get("indices"):
        return None
    indices: Mapping[str, Any] = record["indices"]
    applied = sorted({f"{k}={v}" for i in indices.values()
                      for k, v in load_settings(i["original"], record["translog_async"]).items()})
    out: dict[str, Any] = {
        "state": TUNED if record["state"] == "tuned" else RESTORED,
        "settings": applied, "indicesTuned": len(indices),
        "indicesMissing": list(record.get("missing") or [])[:MAX_STATUS_LIST],
        "originals": [{"name": n, "settings": indices[n]["original"]}
                      for n in sorted(indices)[:MAX_STATUS_LIST]],
        "tunedTime": from_millis(record.get("tuned_at")),
        "restoredTime": from_millis(record.get("restored_at")),
    }
    return {k: v for k, v in out.items() if v is not None}


def pending(status: Mapping[str, Any]) -> bool:
    """Whether status says the target still carries the load settings."""
    return (status.get("tuning") or {}).get("state") == TUNED


# -- the target ------------------------------------------------------------------------


class TargetTuner:
    """Tunes and restores the target indices of one Backfill; the record lives in its
    coordination index. Every request goes through the target's Engine."""

    def __init__(self, target: Engine, store: WorkItemStore, uid: str) -> None:
        self.target, self.store, self.uid = target, store, uid

    def tune(self, translog_async: bool, min_docs: int = 0
             ) -> tuple[dict[str, Any] | None, bool]:
        """The planned target indices this Backfill created with at least ``min_docs``
        documents planned, tuned; idempotent. Returns the record (None without a plan)
        and whether settings changed now."""
        record = self.store.tuning()
        if record is not None and record.get("early"):
            return record, False  # restored for the last items: the load is ending
        if record is not None and record["state"] == "tuned":
            if record["translog_async"] == translog_async:
                return record, False
            self.restore(record)  # translogAsync changed mid-copy: start from the originals
        plan = self.store.planned()
        if plan is None:
            return record, False
        worth = (i["target"] for i in plan["indices"] if i.get("docs", 0) >= min_docs)
        mine = [n for group in idx.name_groups(worth)
                for n in owned(self.target.get(
                    f"/{idx.path_expression(group)}/_mapping", ignore_unavailable="true",
                    filter_path="*.mappings._meta") or {}, self.uid)]
        found = self._read(mine)
        record = {"state": "tuned", "translog_async": translog_async, "tuned_at": now_ms(),
                  "indices": found, "missing": []}
        self.store.write_tuning(record)  # first: a crash from here on knows the originals
        self._put({n: load_settings(i["original"], translog_async)
                   for n, i in found.items()})
        return record, bool(found)

    def restore(self, record: dict[str, Any] | None = None, refresh: bool = True,
                early: bool = False) -> tuple[dict[str, Any] | None, bool]:
        """The original values back, then one refresh (unless the caller refreshes
        next anyway, as verification does); idempotent. Returns the record (None when
        nothing was ever tuned) and whether settings changed now.

        ``early``: while the last work items are copied. With refresh off, the refresh
        after a load writes everything loaded as one segment, about a second per 200k
        small documents; with the refresh interval back for the load's last seconds,
        the node refreshes as they arrive and the final one is short. No refresh now
        (more documents are coming), and the load is not tuned again; the refresh a
        later restore asks for is still made."""
        record = record if record is not None else self.store.tuning()
        if record is not None and record.get("early") and refresh and not early:
            self._refresh(sorted(set(record["indices"]) - set(record["missing"])))
            record = {**record, "early": False}
            self.store.write_tuning(record)
            return record, False
        if record is None or record["state"] != "tuned":
            return record, False
        tuned: dict[str, Any] = record["indices"]
        current = self._read(list(tuned))
        here = {n: i for n, i in tuned.items()
                if n in current and current[n]["uuid"] == i["uuid"]}
        self._put({n: restore_settings(i["original"], record["translog_async"])
                   for n, i in here.items()})
        if refresh and not early:
            self._refresh(sorted(here))
        record = {**record, "state": "restored", "restored_at": now_ms(),
                  "missing": sorted(set(tuned) - set(here)), "early": early}
        self.store.write_tuning(record)
        return record, True

    def _refresh(self, names: list[str]) -> None:
        for group in idx.name_groups(names):
            self.target.request("POST", f"/{idx.path_expression(group)}/_refresh",
                                params={"ignore_unavailable": "true"})

    def _read(self, names: list[str]) -> dict[str, dict[str, Any]]:
        keys = ",".join((UUID, *TUNED_KEYS))
        found: dict[str, dict[str, Any]] = {}
        for group in idx.name_groups(sorted(names)):
            found.update(originals(self.target.get(
                f"/{idx.path_expression(group)}/_settings/{keys}", flat_settings="true",
                ignore_unavailable="true") or {}))
        wanted = set(names)
        return {n: i for n, i in found.items() if n in wanted}

    def _put(self, bodies: Mapping[str, Mapping[str, Any]]) -> None:
        for body, group in batches(bodies):
            self.target.request("PUT", f"/{idx.path_expression(group)}/_settings",
                                body=body, params={"ignore_unavailable": "true"})


# -- what the Backfill's steps call ---------------------------------------------------


@dataclass
class TuningStep:
    """Status changes (``tuning``) and events of one tuning step; ``done`` is False when
    a restore could not be made yet."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    done: bool = True


def tuner(svc: CopyService) -> TargetTuner:
    return TargetTuner(svc.ep.target, svc.store, svc.uid)


def _step(record: dict[str, Any] | None, events: list[Event]) -> TuningStep:
    shown = status_of(record)
    return TuningStep({"tuning": shown} if shown else {}, events if shown else [])


def _restored_early(record: dict[str, Any] | None, said: Mapping[str, Any] | None
                    ) -> list[Event]:
    """The event for a restore a worker made while the last items ran, once: when
    status still says Tuned."""
    if not (record and record.get("early") and said is not None and pending(said)):
        return []
    restored = len(record["indices"]) - len(record["missing"])
    return [Event.normal("TuningRestored", f"original settings restored on {restored} "
                         "target indices while the last work items were copied, so that "
                         "the refresh before verification is short")]


def during_copy(svc: CopyService, spec: BackfillSpec, said: Mapping[str, Any] | None = None
                ) -> TuningStep:
    """Each pass of phase Running or Paused: the load settings while workers copy; the
    originals back while paused or once tuning is turned off. ``said``: the status
    before this pass."""
    if spec.paused or not spec.target_tuning.enabled:
        return restore(svc, said=said)
    record, changed = tuner(svc).tune(spec.target_tuning.translog_async,
                                      spec.target_tuning.min_documents)
    if not changed or record is None:
        return _step(record, _restored_early(record, said))
    applied = ", ".join(status_of(record)["settings"])  # type: ignore[index]
    return _step(record, [Event.normal(
        "TargetTuned", f"{applied} on {len(record['indices'])} target indices for the "
        "load; their original values are recorded and restored before verification")])


def restore_for_the_last_items(target: Engine, store: WorkItemStore) -> bool:
    """What a worker calls when its item ends within seconds and nothing is left to
    claim (see :meth:`TargetTuner.restore`, ``early``); True when settings changed.
    Only restores, so it needs neither the Backfill's uid nor the reconciler's lock."""
    return TargetTuner(target, store, uid="").restore(refresh=False, early=True)[1]


def restore(svc: CopyService, refresh: bool = True, said: Mapping[str, Any] | None = None
            ) -> TuningStep:
    """The original settings back (before verification, on pause, on deletion).
    ``said``: the status before this step."""
    before = svc.store.tuning() if said is not None else None
    record, changed = tuner(svc).restore(refresh=refresh)
    if record is None or not changed:
        return _step(record, _restored_early(before, said))
    restored = len(record["indices"]) - len(record["missing"])
    message = f"original settings restored on {restored} target indices"
    if not record["missing"]:
        return _step(record, [Event.normal("TuningRestored", message)])
    names = ", ".join(record["missing"][:5])
    return _step(record, [Event.warning(
        "TuningRestored", f"{message}; {len(record['missing'])} tuned indices were deleted "
        f"or replaced meanwhile and skipped: {names}")])


def restore_or_report(svc: CopyService) -> TuningStep:
    """restore, for steps that must not raise (failure, a settled Backfill): an error
    becomes a warning, and ``done`` False asks for another try."""
    try:
        return restore(svc)
    except FerryError as exc:
        return TuningStep({}, [Event.warning(
            "TuningNotRestored", "the original settings of the tuned target indices are "
            f"not restored yet: {exc.message}")], done=False)
