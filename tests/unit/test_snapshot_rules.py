"""Snapshot rules without a cluster: request bodies, conflicts, status and events."""

from __future__ import annotations

from typing import Any

import pytest

from ferry.api.snapshot import Repository, SnapshotSpec, SnapshotStatus
from ferry.errors import ClusterUnreachable, FerryError, InvalidSpec
from ferry.services.snapshot.service import (
    DOCUMENTED_FS_SETTINGS,
    DOCUMENTED_S3_SETTINGS,
    IndexProgress,
    Observation,
    Progress,
    SnapshotInfo,
    Verification,
    index_expression,
    parse_snapshot_info,
    parse_status,
    repository_body,
    repository_conflict,
    snapshot_body,
    supports_snapshot_metadata,
)
from ferry.services.snapshot.status import (
    build_status,
    needs_verification,
    percent_done,
    poll_delay,
    settled,
    transition_events,
    with_verification,
)

S3_FULL = {"name": "backups", "type": "s3", "compress": True,
           "maxSnapshotBytesPerSec": "40mb",
           "s3": {"bucket": "my-bucket", "basePath": "/ferry/prod/", "region": "eu-west-1",
                  "endpoint": "http://minio.storage:9000", "pathStyleAccess": True}}


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_s3_body_uses_only_documented_settings(engine: str) -> None:
    body = repository_body(Repository.model_validate(S3_FULL), engine)
    assert body["type"] == "s3"
    settings = body["settings"]
    assert set(settings) <= DOCUMENTED_S3_SETTINGS[engine]
    assert settings == {
        "bucket": "my-bucket", "base_path": "ferry/prod", "region": "eu-west-1",
        # endpoint is the host; the scheme goes in protocol (both engines' client settings)
        "endpoint": "minio.storage:9000", "protocol": "http", "path_style_access": True,
        "compress": True, "max_snapshot_bytes_per_sec": "40mb",
    }
    # No credentials ever: they live in the nodes' keystores.
    assert not {"access_key", "secret_key", "session_token"} & set(settings)


def test_s3_body_minimal_and_https_default() -> None:
    repo = Repository.model_validate({"name": "r", "type": "s3",
                                      "s3": {"bucket": "b-1", "endpoint": "s3.example.com"}})
    settings = repository_body(repo, "opensearch")["settings"]
    assert settings == {"bucket": "b-1", "endpoint": "s3.example.com", "protocol": "https",
                        "compress": True}


def test_role_arn_is_opensearch_only() -> None:
    spec = {**S3_FULL, "s3": {**S3_FULL["s3"], "roleArn": "arn:aws:iam::1:role/snap"}}
    repo = Repository.model_validate(spec)
    assert repository_body(repo, "opensearch")["settings"]["role_arn"] == \
        "arn:aws:iam::1:role/snap"
    with pytest.raises(InvalidSpec, match="roleArn"):
        repository_body(repo, "elasticsearch")


def test_fs_body() -> None:
    repo = Repository.model_validate({"name": "r", "type": "fs", "compress": False,
                                      "fs": {"location": "/mnt/snap"},
                                      "maxRestoreBytesPerSec": "1gb"})
    body = repository_body(repo, "elasticsearch")
    assert body == {"type": "fs", "settings": {"location": "/mnt/snap", "compress": False,
                                               "max_restore_bytes_per_sec": "1gb"}}
    assert set(body["settings"]) <= DOCUMENTED_FS_SETTINGS


def test_repository_conflict_rules() -> None:
    desired = {"type": "fs", "settings": {"location": "/r/a", "compress": True,
                                          "max_snapshot_bytes_per_sec": "40mb"}}
    # The engine answers with strings; a trailing slash is the same place.
    same = {"type": "fs", "settings": {"location": "/r/a/", "compress": "true",
                                       "max_snapshot_bytes_per_sec": "40mb"}}
    assert repository_conflict(same, desired) is None
    # Settings only one side has are not a conflict: the registered one is used as is.
    assert repository_conflict({"type": "fs", "settings": {"location": "/r/a"}},
                               desired) is None
    moved = {"type": "fs", "settings": {"location": "/r/b"}}
    assert "location='/r/b'" in (repository_conflict(moved, desired) or "")
    throttled = {"type": "fs", "settings": {"location": "/r/a",
                                            "max_snapshot_bytes_per_sec": "1mb"}}
    assert "max_snapshot_bytes_per_sec" in (repository_conflict(throttled, desired) or "")
    assert "type" in (repository_conflict({"type": "s3", "settings": {}}, desired) or "")
    read_only = {"type": "fs", "settings": {"location": "/r/a", "readonly": "true"}}
    assert "readonly" in (repository_conflict(read_only, desired) or "")
    s3 = {"type": "s3", "settings": {"bucket": "b"}}
    assert "base_path" in (repository_conflict(
        s3, {"type": "s3", "settings": {"bucket": "b", "base_path": "x"}}) or "")


def test_index_expression() -> None:
    assert index_expression([]) == "*,-.*"
    assert index_expression(["logs-*", "-logs-debug-*"]) == "logs-*,-logs-debug-*"
    assert index_expression(["-secret"]) == "*,-.*,-secret"


def test_snapshot_body_and_owner_tag() -> None:
    spec = SnapshotSpec.model_validate({"clusterRef": {"name": "c"}, "partial": True,
                                        "repository": {"name": "r", "type": "fs",
                                                       "fs": {"location": "/r"}}})
    body = snapshot_body(spec, "ns/snap")
    assert body == {"indices": "*,-.*", "include_global_state": False, "partial": True,
                    "ignore_unavailable": False, "metadata": {"ferry.dev/owner": "ns/snap"}}
    assert "metadata" not in snapshot_body(spec, None)
    assert supports_snapshot_metadata("opensearch", "1.0.0")
    assert supports_snapshot_metadata("elasticsearch", "7.10.2")
    assert not supports_snapshot_metadata("elasticsearch", "6.8.23")


def info(state: str = "IN_PROGRESS", **kw: Any) -> SnapshotInfo:
    base: dict[str, Any] = dict(
        name="s", uuid="u1", state=state, version="7.10.2", indices=["a", "b"],
        start_ms=1_700_000_000_000, end_ms=None, reason=None, shards_total=None,
        shards_failed=None, shards_successful=None, failures=[], metadata={})
    base.update(kw)
    return SnapshotInfo(**base)


def progress(done: int, total: int, shards_done: int = 1, time_ms: int = 2000) -> Progress:
    return Progress(state="STARTED", shards_total=3, shards_done=shards_done, shards_failed=0,
                    bytes_total=total, bytes_done=done, time_ms=time_ms,
                    indices=[IndexProgress("a", 2, 1), IndexProgress("b", 1, 0)])


def test_percent_by_bytes_else_shards_never_100_before_the_end() -> None:
    assert percent_done(info(), progress(500, 1000)) == 50.0
    assert percent_done(info(), progress(1000, 1000)) == 99.9
    assert percent_done(info(), progress(0, 0, shards_done=1)) == 33.3
    assert percent_done(info("SUCCESS"), None) == 100.0
    assert percent_done(info(), None) is None


def test_in_progress_status_with_rate_eta_and_counts() -> None:
    obs = Observation(info=info(), progress=progress(400, 1000), engine="elasticsearch",
                      started=True, adopted=False, documents={"a": 5})
    status = build_status({}, 3, "s", obs)
    assert status["phase"] == "InProgress"
    assert status["observedGeneration"] == 3
    assert status["adopted"] is False
    assert status["progress"] == {"percent": 40.0, "shardsTotal": 3, "shardsDone": 1,
                                  "shardsFailed": 0, "bytesTotal": 1000, "bytesDone": 400,
                                  "bytesPerSecond": 200.0, "etaSeconds": 3}
    assert status["indices"] == [
        {"name": "a", "state": "IN_PROGRESS", "shardsTotal": 2, "shardsDone": 1,
         "shardsFailed": 0, "documents": 5},
        {"name": "b", "state": "IN_PROGRESS", "shardsTotal": 1, "shardsDone": 0,
         "shardsFailed": 0, "documents": 0}]
    assert status["documents"] == 5
    assert status["startTime"] == "2023-11-14T22:13:20Z"
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"Ready": ("False", "InProgress"),
                          "Progressing": ("True", "InProgress"),
                          "Failed": ("False", "InProgress")}
    SnapshotStatus.model_validate(status)  # the CRD's schema comes from this model
    events = transition_events({}, status, obs, "repo")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Started")]
    # The next poll: counts are kept, no event.
    later = Observation(info=info(), progress=progress(800, 1000), engine="elasticsearch")
    again = build_status(status, 3, "s", later)
    assert again["indices"][0]["documents"] == 5 and again["documents"] == 5
    assert transition_events(status, again, later, "repo") == []


def test_completed_then_verified_then_settled() -> None:
    running = build_status({}, 1, "s", Observation(
        info=info(), progress=progress(1, 2), engine="opensearch", started=True,
        adopted=False, repository_registered=True))
    done_info = info("SUCCESS", end_ms=1_700_000_060_000, shards_total=3,
                     shards_successful=3, shards_failed=0)
    done = build_status(running, 1, "s", Observation(info=done_info, progress=None,
                                                     engine="opensearch"))
    assert done["phase"] == "Completed"
    assert done["completionTime"] == "2023-11-14T22:14:20Z"
    assert done["progress"]["percent"] == 100.0
    assert (done["progress"]["shardsDone"], done["progress"]["shardsTotal"]) == (3, 3)
    assert needs_verification(done) and not settled(done)
    ready = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Completed")
    verified = with_verification(done, Verification("True", "FoundInRepository", "ok"), 1)
    assert settled(verified) and not needs_verification(verified)
    events = transition_events(running, verified, Observation(done_info, None, "opensearch"),
                               "repo")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Completed"),
                                                   ("Normal", "FoundInRepository")]
    SnapshotStatus.model_validate(verified)


def test_partial_lists_bounded_failures() -> None:
    failures = [{"index": f"i{n}", "shard_id": n, "reason": "primary shard is not allocated",
                 "status": "INTERNAL_SERVER_ERROR"} for n in range(30)]
    partial = info("PARTIAL", shards_total=32, shards_successful=2, shards_failed=30,
                   failures=failures)
    status = build_status({}, 1, "s", Observation(partial, None, "elasticsearch",
                                                  adopted=False))
    assert status["phase"] == "PartiallyFailed"
    assert len(status["failures"]) == 20
    assert status["failures"][0] == {"index": "i0", "id": "shard 0",
                                     "reason": "primary shard is not allocated"}
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "PartiallyFailed")
    assert "30 shards failed" in failed["message"]
    SnapshotStatus.model_validate(status)


def test_failed_snapshot_keeps_the_engines_reason() -> None:
    status = build_status({}, 1, "s", Observation(
        info("FAILED", reason="Indices don't have primary shards [x]"), None, "opensearch",
        adopted=False))
    assert status["phase"] == "Failed"
    assert "Indices don't have primary shards [x]" in status["message"]
    assert settled(status)  # nothing to verify for a failed snapshot


def test_errors_before_and_after_the_start() -> None:
    unreachable = ClusterUnreachable("connection to http://x refused", code="ConnectionRefused")
    pending = build_status({}, 1, "s", unreachable)
    assert pending["phase"] == "Pending"
    assert not settled(pending)
    conflict = FerryError("repository r is already registered ...", code="RepositoryConflict",
                          retryable=False)
    failed = build_status({}, 1, "s", conflict)
    assert failed["phase"] == "Failed"
    assert not settled(failed)  # retried slowly: the conflict may be resolved on the cluster
    assert [(e.type, e.reason) for e in transition_events(pending, failed, conflict, "r")] \
        == [("Warning", "RepositoryConflict")]
    # Once started, an unreachable cluster does not stop the snapshot inside it.
    running = build_status({}, 1, "s", Observation(info(), progress(1, 2), "opensearch",
                                                   started=True, adopted=False))
    blip = build_status(running, 1, "s", unreachable)
    assert blip["phase"] == "InProgress"
    assert blip["progress"] == running["progress"]
    progressing = next(c for c in blip["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "ConnectionRefused")


def test_poll_backs_off_from_2_to_30_seconds() -> None:
    delays = [poll_delay(n) for n in range(12)]
    assert delays[0] == 2.0 and delays[1] == 3.0
    assert delays == sorted(delays) and delays[-1] == 30.0


def test_parse_engine_answers() -> None:
    raw = {"snapshot": "s", "uuid": "u", "version": "2.19.6", "indices": ["b", "a"],
           "state": "PARTIAL", "start_time_in_millis": 1, "end_time_in_millis": 2,
           "failures": [{"index": "a", "shard_id": 0, "reason": "r"}],
           "shards": {"total": 2, "failed": 1, "successful": 1},
           "metadata": {"ferry.dev/owner": "ns/s"}}
    parsed = parse_snapshot_info(raw)
    assert parsed.indices == ["a", "b"] and parsed.owner == "ns/s" and parsed.terminal
    status = parse_status({"state": "STARTED",
                           "shards_stats": {"total": 2, "done": 1, "failed": 0},
                           "stats": {"incremental": {"size_in_bytes": 100},
                                     "processed": {"size_in_bytes": 40},
                                     "time_in_millis": 10},
                           "indices": {"a": {"shards_stats": {"total": 2, "done": 1}}}})
    assert (status.bytes_total, status.bytes_done, status.shards_done) == (100, 40, 1)
    # `processed` is left out once it equals `incremental`.
    done = parse_status({"stats": {"incremental": {"size_in_bytes": 100}}})
    assert done.bytes_done == 100
