"""Backfill's target tuning: the switch in its spec and the report in its status
(what ``services/backfill/tuning.py`` does)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from ferry.api.common import MAX_STATUS_LIST, ApiModel


class TargetTuning(ApiModel):
    """Settings of the target indices Ferry creates, changed for the copy and restored
    before verification."""

    enabled: bool = Field(
        default=True,
        description="While documents are copied, set refresh_interval -1 and "
        "number_of_replicas 0 (auto_expand_replicas off) on the target indices this "
        "Backfill created (never on indices that existed before), and restore their "
        "original values before verification, on pause, on failure and on deletion. "
        "False leaves the target's settings as they are.")
    translog_async: bool = Field(
        default=False,
        description="Also set index.translog.durability async during the copy: faster "
        "bulks, but a node crash can lose the last seconds of acknowledged writes (a "
        "resumed Backfill re-copies from its checkpoints, the verification counts "
        "catch the rest). Only with enabled.")
    min_documents: int = Field(
        default=10000, ge=0,
        description="Only target indices planned with at least this many documents are "
        "tuned: one that a few bulks fill gains nothing from the load settings, and "
        "each tuned index costs two settings updates on the target's master (minutes "
        "over thousands of small indices). 0 tunes every index this Backfill created.")



class TunedIndex(ApiModel):
    """One tuned target index and the values its settings had before."""

    name: str = Field(description="Target index.")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="The original values of the tuned settings that were set; a tuned "
        "setting not listed was unset and is reset to the engine's default.")


class TargetTuningStatus(ApiModel):
    """What was tuned on the target for the copy, and whether it was restored."""

    state: Literal["Tuned", "Restored"] | None = Field(
        default=None, description="Tuned: the load settings are in place. Restored: the "
        "original values are back.")
    settings: list[str] = Field(
        default_factory=list, max_length=8,
        description="The settings applied during the load, as name=value.")
    indices_tuned: int | None = Field(default=None, description="Target indices tuned.")
    indices_missing: list[str] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST,
        description="Tuned indices not found when restoring (deleted or replaced "
        "meanwhile): skipped (bounded).")
    originals: list[TunedIndex] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST,
        description="Original values per index (bounded; all of them are kept in the "
        "coordination index).")
    tuned_time: datetime | None = Field(default=None, description="When they were tuned.")
    restored_time: datetime | None = Field(default=None,
                                           description="When the originals were restored.")
