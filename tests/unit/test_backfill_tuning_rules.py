"""Pure rules of target tuning: what an index gets for the load, what puts it back, how
requests are batched, and what status.tuning reports."""

from __future__ import annotations

from ferry.api.backfill import BackfillSpec, BackfillStatus
from ferry.api.common import dump_status
from ferry.services.backfill import tuning as t
from ferry.services.indices import META_KEY


def test_originals_keep_only_set_values_and_the_uuid() -> None:
    got = t.originals({
        "a": {"settings": {"index.uuid": "u1", "index.refresh_interval": "7s",
                           "index.number_of_replicas": "2"}},
        "b": {"settings": {"index.uuid": "u2", "index.number_of_replicas": "1",
                           "index.auto_expand_replicas": "0-1",
                           "index.translog.durability": "request"}}})
    assert got == {
        "a": {"uuid": "u1", "original": {"index.refresh_interval": "7s",
                                         "index.number_of_replicas": "2"}},
        "b": {"uuid": "u2", "original": {"index.number_of_replicas": "1",
                                         "index.auto_expand_replicas": "0-1",
                                         "index.translog.durability": "request"}}}


def test_load_settings_touch_the_translog_only_when_allowed() -> None:
    assert t.load_settings({}, False) == {"index.refresh_interval": "-1",
                                          "index.number_of_replicas": "0"}
    assert t.load_settings({}, True)["index.translog.durability"] == "async"
    # Auto-expansion would add the replicas back: turned off, but only where it is on.
    assert t.load_settings({"index.auto_expand_replicas": "0-1"}, False)[
        "index.auto_expand_replicas"] == "false"
    assert "index.auto_expand_replicas" not in t.load_settings(
        {"index.auto_expand_replicas": "false"}, False)


def test_restore_puts_back_values_and_resets_what_was_unset() -> None:
    original = {"index.refresh_interval": "7s", "index.auto_expand_replicas": "0-1"}
    assert t.restore_settings(original, True) == {
        "index.refresh_interval": "7s", "index.number_of_replicas": None,
        "index.auto_expand_replicas": "0-1", "index.translog.durability": None}
    # What the load did not change is left alone (e.g. a durability set meanwhile).
    assert "index.translog.durability" not in t.restore_settings(original, False)


def test_batches_share_requests_by_body_and_keep_request_lines_short() -> None:
    names = [f"logs-app-2026.01.{d:03d}-{'x' * 40}" for d in range(200)]
    bodies = {n: {"index.refresh_interval": "-1"} for n in names}
    bodies["other"] = {"index.refresh_interval": "5s"}
    got = t.batches(bodies)
    assert ({"index.refresh_interval": "5s"}, ["other"]) in got
    same = [group for body, group in got if body == {"index.refresh_interval": "-1"}]
    assert len(same) > 1 and sorted(n for g in same for n in g) == sorted(names)
    assert all(len(",".join(g)) <= 2048 for g in same)


def test_owned_indices_carry_this_backfills_mark() -> None:
    answer = {"mine": {"mappings": {"_meta": {META_KEY: "uid-1"}}},
              "theirs": {"mappings": {"_meta": {META_KEY: "uid-2"}}},
              "users": {"mappings": {}}}
    assert t.owned(answer, "uid-1") == ["mine"]


def test_status_is_bounded_validates_and_says_whether_restored() -> None:
    record = {"state": "tuned", "translog_async": False, "tuned_at": 1_700_000_000_000,
              "missing": [],
              "indices": {f"i{n:03d}": {"uuid": str(n),
                                        "original": {"index.refresh_interval": "7s"}}
                          for n in range(150)}}
    shown = t.status_of(record)
    assert shown is not None
    assert shown["state"] == "Tuned" and shown["indicesTuned"] == 150
    assert shown["settings"] == ["index.number_of_replicas=0", "index.refresh_interval=-1"]
    assert len(shown["originals"]) == 20
    assert "restoredTime" not in shown
    assert t.pending({"tuning": shown})
    restored = t.status_of({**record, "state": "restored", "restored_at": 1_700_000_001_000,
                            "missing": [f"i{n:03d}" for n in range(30)]})
    assert restored is not None and restored["state"] == "Restored"
    assert len(restored["indicesMissing"]) == 20 and restored["restoredTime"]
    assert not t.pending({"tuning": restored})
    dumped = dump_status(BackfillStatus, {"phase": "Paused", "tuning": restored})
    assert dumped["tuning"]["originals"][0] == {"name": "i000", "settings": {
        "index.refresh_interval": "7s"}}
    # Nothing tuned (every target existed before): nothing to report.
    assert t.status_of({**record, "indices": {}}) is None
    assert t.status_of(None) is None


def test_tuning_is_on_by_default_and_the_translog_is_not() -> None:
    spec = BackfillSpec.model_validate({"sourceRef": {"name": "a"},
                                        "targetRef": {"name": "b"}})
    assert spec.target_tuning.enabled is True
    assert spec.target_tuning.translog_async is False
    off = BackfillSpec.model_validate({"sourceRef": {"name": "a"}, "targetRef": {"name": "b"},
                                       "targetTuning": {"enabled": False,
                                                        "translogAsync": True}})
    assert off.target_tuning.enabled is False and off.target_tuning.translog_async
