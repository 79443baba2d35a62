"""Reading snapshot repositories from their files: the SMILE decoder, every layout of
repository data, and `ferry snapshot ls` on the real repositories in
../shared/fixtures/es-snapshots (read-only; copied before anything changes them)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ferry.repository import FsBlobStore, RepositoryError, read_repository, smile
from ferry.repository.reader import decode_metadata_blob, version_from_id

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
FERRY = Path(sys.executable).parent / "ferry"


def ferry_ls(*args: str) -> dict:
    out = subprocess.run([str(FERRY), "snapshot", "ls", "--json", *args], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_smile_decodes_values_and_back_references() -> None:
    # {"a": "xy", "list": [1, -3, true, null, 1234567], "a2": "xy"} with shared keys
    # and values on: the second "xy" is a back-reference to shared value #0.
    data = (b":)\n\x03" + b"\xfa"
            + b"\x80a" + b"\x41xy"
            + b"\x83list" + b"\xf8" + b"\xc2" + b"\xc5" + b"\x23" + b"\x21"
            + b"\x24" + b"\x02\x2d\x34\x8e" + b"\xf9"
            + b"\x81a2" + b"\x01"
            + b"\xfb")
    assert smile.loads(data) == {"a": "xy", "list": [1, -3, True, None, 1234567], "a2": "xy"}
    with pytest.raises(smile.SmileError):
        smile.loads(b"{}")


def test_version_ids() -> None:
    assert version_from_id(5061699) == "5.6.16"
    assert version_from_id(7100299) == "7.10.2"
    assert version_from_id(2190699 ^ 0x08000000) == "2.19.6"


def test_metadata_blob_compressed_or_not() -> None:
    payload = b":)\n\x01\xfa\x83name\x41ab\xfb"
    header = struct.pack(">I", 0x3FD76C17) + b"\x08snapshot" + struct.pack(">i", 1)
    footer = b"\xc0\x28\x93\xe8" + b"\x00" * 12
    assert decode_metadata_blob(header + payload + footer) == {"name": "ab"}
    deflate = zlib.compressobj(wbits=-15)
    packed = b"DFL\x00" + deflate.compress(payload) + deflate.flush()
    assert decode_metadata_blob(header + packed + footer) == {"name": "ab"}


EXPECTED = {
    "ES_5_6_Updates_Deletes": ("rfs_snapshot", "5.6.16", ["test_updates_deletes"]),
    "ES_6_8_Single": ("global_state_snapshot", "6.8.24",
                      ["posts_2023_02_25", "posts_2024_01_01"]),
    "ES_6_8_Updates_Deletes_Native": ("rfs_snapshot", "6.8.23", ["test_updates_deletes"]),
    "ES_7_10_BWC_Check": ("rfs-snapshot", "7.10.2",
                          ["bwc_index_1", "empty_mappings_no_docs", "fwc_index_1",
                           "no_mappings_no_docs"]),
    "ES_7_10_Single": ("global_state_snapshot", "7.10.2",
                       ["posts_2023_02_25", "posts_2024_01_01"]),
    "ES_7_10_Updates_Deletes_w_Soft": ("rfs_snapshot", "7.10.2", ["test_updates_deletes"]),
    "ES_7_10_Updates_Deletes_wo_Soft": ("rfs_snapshot", "7.10.2", ["test_updates_deletes"]),
}


def test_every_fixture_repository_is_covered() -> None:
    assert sorted(p.name for p in FIXTURES.glob("ES_*")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_snapshot_ls_on_fixture_repositories(name: str, tmp_path: Path) -> None:
    snap, version, indices = EXPECTED[name]
    listed = ferry_ls(str(FIXTURES / name))
    [entry] = listed["snapshots"]
    assert (entry["name"], entry["version"], entry["indices"]) == (snap, version, indices)
    assert entry["state"] == "SUCCESS" and entry["uuid"]
    assert entry["shardsTotal"] == len(indices) and entry["shardsFailed"] == 0
    assert entry["startTime"] <= entry["endTime"]
    table = subprocess.run([str(FERRY), "snapshot", "ls", str(FIXTURES / name)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "UUID", "STATE", "VERSION", "INDICES"]
    assert table[1].split()[:5] == [snap, entry["uuid"], "SUCCESS", version,
                                    f"{len(indices)}:"]
    # Without index.latest the newest index-N is found by listing.
    copy = tmp_path / name
    shutil.copytree(FIXTURES / name, copy)
    copy.chmod(0o700)  # the fixtures are read-only, and so is their copy
    (copy / "index.latest").unlink()
    assert read_repository(FsBlobStore(copy)).snapshots[0].uuid == entry["uuid"]


def test_older_layouts_take_state_and_version_from_the_snapshot_blob(tmp_path: Path) -> None:
    # ES 5.0-5.4 wrote index-N entries without state; very old ones plain names.
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "ES_5_6_Updates_Deletes", repo)
    for p in repo.rglob("*"):
        p.chmod(0o700 if p.is_dir() else 0o600)
    data = json.loads((repo / "index-0").read_text())
    for entry in data["snapshots"]:
        entry.pop("state")
    (repo / "index-0").write_text(json.dumps(data))
    [entry] = read_repository(FsBlobStore(repo)).snapshots
    assert (entry.state, entry.version) == ("SUCCESS", "5.6.16")
    (repo / "index-0").write_text(json.dumps({"snapshots": ["old-one"], "indices": {}}))
    [entry] = read_repository(FsBlobStore(repo)).snapshots
    assert (entry.name, entry.uuid, entry.state) == ("old-one", "old-one", None)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no repository data"):
        read_repository(FsBlobStore(tmp_path))
    out = subprocess.run([str(FERRY), "snapshot", "ls", str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode == 1 and "no repository data" in out.stderr
