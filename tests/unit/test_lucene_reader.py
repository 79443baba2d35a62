"""Documents read straight out of the real snapshot repositories in
../shared/fixtures/es-snapshots (written by ES 5.6, 6.8 and 7.10: Lucene 6, 7 and 8),
checked against the live documents their README lists; corrupt and truncated copies
fail naming the file; `ferry snapshot cat` prints JSON lines. Lucene 9/10 primitives
(little-endian bodies, the new stored-field ints, the ``.si`` has-blocks byte) on
files built byte by byte here."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib
from pathlib import Path

import cbor2
import pytest

from ferry.cli import main
from ferry.repository import FsBlobStore, read_repository
from ferry.repository.lucene import CorruptFile, Document, UnsupportedFormat, snapshot_documents
from ferry.repository.lucene.codec import LittleEndianInput
from ferry.repository.lucene.elastic import decode_id, source_json
from ferry.repository.lucene.fields import read_field_infos
from ferry.repository.lucene.livedocs import read_deleted
from ferry.repository.lucene.segments import SegmentCommit, read_segment_info
from ferry.repository.lucene.stored import _ints90
from ferry.repository.reader import decode_metadata_blob
from ferry.repository.shards import live_documents

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
MULTILINE = "This doc will not be changed\nIt has multiple lines of text\n"


def documents(repo: Path) -> list[Document]:
    store = FsBlobStore(repo)
    contents = read_repository(store, details=True)
    (entry,) = contents.snapshots
    return list(snapshot_documents(store, contents, entry))


def by_id(docs: list[Document]) -> dict[tuple[str, str], dict]:
    return {(d.index, d.id): {"type": d.type, "routing": d.routing,
                              **json.loads(d.source or b"null")} for d in docs}


def shard_metadata_counts(repo: Path) -> dict[str, int]:
    """Live documents per index folder, from the commit counts in the shard metadata."""
    return {blob.parent.parent.name: live_documents(decode_metadata_blob(
        blob.read_bytes())["files"]) or 0
        for blob in repo.glob("indices/*/*/snap-*.dat")}


def test_es_5_6_multi_type_updates_and_deletes() -> None:
    docs = by_id(documents(FIXTURES / "ES_5_6_Updates_Deletes"))
    assert set(docs) == {("test_updates_deletes", i)
                         for i in ("complexdoc", "updateddoc", "unchangeddoc")}
    complexdoc = docs["test_updates_deletes", "complexdoc"]
    assert complexdoc["type"] == "type1" and "Updated!" in complexdoc["title"]
    assert docs["test_updates_deletes", "updateddoc"] == {
        "type": "type2", "routing": None, "content": "Updated!"}
    unchanged = docs["test_updates_deletes", "unchangeddoc"]
    assert unchanged["type"] == "type2" and unchanged["content"].startswith(MULTILINE)


@pytest.mark.parametrize("name, type_", [("ES_6_8_Updates_Deletes_Native", "_doc"),
                                         ("ES_7_10_Updates_Deletes_w_Soft", None),
                                         ("ES_7_10_Updates_Deletes_wo_Soft", None)])
def test_updates_and_deletes_leave_the_latest_versions(name: str, type_: str | None) -> None:
    docs = by_id(documents(FIXTURES / name))
    assert set(docs) == {("test_updates_deletes", i)
                         for i in ("complexdoc", "updateddoc", "unchangeddoc")}
    assert {d["type"] for d in docs.values()} == {type_}
    assert docs["test_updates_deletes", "complexdoc"]["content"] == "Updated!"
    assert docs["test_updates_deletes", "updateddoc"]["content"] == "Updated!"
    assert docs["test_updates_deletes", "unchangeddoc"]["title"].startswith(MULTILINE)


def test_soft_deletes_hide_superseded_versions_and_tombstones() -> None:
    """The soft-deletes repository's segments still hold the old versions and the
    delete tombstone (6 Lucene documents): only the 3 live ones come out."""
    repo = FIXTURES / "ES_7_10_Updates_Deletes_w_Soft"
    (meta,) = repo.glob("indices/*/0/snap-*.dat")
    files = decode_metadata_blob(meta.read_bytes())["files"]
    assert any(f["physical_name"].endswith(".dvd") for f in files)  # soft-delete updates
    assert len(documents(repo)) == 3


@pytest.mark.parametrize("name, type_", [("ES_6_8_Single", "_doc"), ("ES_7_10_Single", None)])
def test_single_repositories_match_their_shard_metadata(name: str, type_: str | None) -> None:
    repo = FIXTURES / name
    docs = documents(repo)
    ids = read_repository(FsBlobStore(repo)).index_ids
    counts = shard_metadata_counts(repo)
    assert {i: sum(d.index == i for d in docs) for i in ids} == \
        {i: counts[ids[i]] for i in ids}
    assert {d.index for d in docs} == {"posts_2023_02_25", "posts_2024_01_01"}
    for doc in docs:
        source = json.loads(doc.source or b"")
        assert set(source) == {"contents", "author", "tags"} and doc.type == type_
        # posts_2024_01_01's documents came through an alias that routes to user123
        assert doc.routing == ("user123" if doc.index == "posts_2024_01_01" else None)


def test_bwc_check_reads_both_indices_and_the_empty_ones() -> None:
    repo = FIXTURES / "ES_7_10_BWC_Check"
    docs = documents(repo)
    assert sorted(d.index for d in docs) == ["bwc_index_1", "fwc_index_1"]
    titles = {d.index: json.loads(d.source or b"")["title"] for d in docs}
    assert "backwards compatible" in titles["bwc_index_1"]
    assert "forward compatible" in titles["fwc_index_1"]
    assert sum(shard_metadata_counts(repo).values()) == len(docs)


def _copy(name: str, tmp_path: Path) -> Path:
    repo = tmp_path / name
    shutil.copytree(FIXTURES / name, repo)
    for path in repo.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return repo


def _flip_inside_stored_fields(blob: Path) -> None:
    data = bytearray(blob.read_bytes())
    # Inside the first chunk, past the .fdt header (codec name, version, id, suffix).
    at = data.index(b"StoredFields") + 60
    data[at] ^= 0x01
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("name, physical, named", [
    ("ES_7_10_Updates_Deletes_wo_Soft", "_3.fdt", "_3.fdt"),  # a file of its own
    ("ES_5_6_Updates_Deletes", "_2.cfs", ":_2.fdt"),  # a sub-file of a compound file
])
def test_a_flipped_byte_in_stored_fields_fails_naming_the_file(
        name: str, physical: str, named: str, tmp_path: Path) -> None:
    repo = _copy(name, tmp_path)
    (meta,) = repo.glob("indices/*/0/snap-*.dat")
    files = decode_metadata_blob(meta.read_bytes())["files"]
    blob = next(f["name"] for f in files if f["physical_name"] == physical)
    _flip_inside_stored_fields(meta.parent / blob)
    with pytest.raises(CorruptFile, match="checksum mismatch") as failure:
        documents(repo)
    message = str(failure.value)
    assert physical in message and named in message and blob in message


def test_a_truncated_blob_fails_on_its_recorded_length(tmp_path: Path) -> None:
    repo = _copy("ES_6_8_Updates_Deletes_Native", tmp_path)
    (meta,) = repo.glob("indices/*/0/snap-*.dat")
    files = decode_metadata_blob(meta.read_bytes())["files"]
    entry = next(f for f in files if f["physical_name"] == "_2.cfs")
    blob = meta.parent / entry["name"]
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(CorruptFile, match=f"_2.cfs.*{entry['length'] - 100} bytes"):
        documents(repo)


def test_elasticsearch_id_encodings() -> None:
    assert decode_id(b"\xfe\x12\x3f") == "123"  # numeric, odd digit count
    assert decode_id(b"\xfe\x12\x34") == "1234"
    assert decode_id(b"\xff" + "ünïcode id".encode()) == "ünïcode id"
    # auto-generated ids are stored as the bytes their URL-safe base64 spells
    assert decode_id(base64.urlsafe_b64decode("AU0_Zo4B7T-S")) == "AU0_Zo4B7T-S"
    assert decode_id(b"\xfd\xfe\x01") == "_gE"  # escaped base64 with a magic first byte


def test_sources_in_other_content_types_become_json() -> None:
    assert json.loads(source_json(cbor2.dumps({"a": [1, "x"]}))) == {"a": [1, "x"]}
    assert json.loads(source_json(b"---\na: 1\nb: [x]\n")) == {"a": 1, "b": ["x"]}
    raw = b'\n{ "kept": "as is" }\n'
    assert source_json(raw) is raw


def test_snapshot_cat_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "cat", str(FIXTURES / "ES_5_6_Updates_Deletes")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(d["id"], d["type"]) for d in lines} == {
        ("complexdoc", "type1"), ("updateddoc", "type2"), ("unchangeddoc", "type2")}
    assert all(set(d) == {"index", "id", "type", "source"} for d in lines)
    assert main(["snapshot", "cat", str(FIXTURES / "ES_7_10_Single"),
                 "--snapshot", "global_state_snapshot", "--index", "posts_2024_01_01"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert all(d["routing"] == "user123" and "type" not in d for d in lines)


def test_snapshot_cat_names_an_unknown_index(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "cat", str(FIXTURES / "ES_7_10_Single"), "--index", "nope"]) == 1
    assert "no index nope" in capsys.readouterr().err


# Lucene 9/10 primitives on files built here byte by byte from the format descriptions
# (codec header big-endian, body little-endian, CRC32 footer); real Lucene 9.12 files
# are read in tests/integration/test_snapshot_reader.py.

SEGMENT_ID = bytes(range(16))


def lucene_file(codec: str, version: int, body: bytes, suffix: str = "") -> bytes:
    head = (struct.pack(">I", 0x3FD76C17) + bytes([len(codec)]) + codec.encode()
            + struct.pack(">i", version) + SEGMENT_ID + bytes([len(suffix)]) + suffix.encode())
    data = head + body + struct.pack(">Ii", 0xC02893E8, 0)
    return data + struct.pack(">q", zlib.crc32(data))


def test_lucene_9_live_docs_are_little_endian_longs() -> None:
    deleted = {1, 64, 69, 99}
    words = [0, 0]
    for doc in set(range(100)) - deleted:
        words[doc // 64] |= 1 << (doc % 64)
    data = lucene_file("Lucene90LiveDocs", 0, struct.pack("<2Q", *words), suffix="3")
    segment = SegmentCommit("_0", SEGMENT_ID, "Lucene912", 3, len(deleted), -1, 0)
    assert read_deleted(data, "_0_3.liv", segment, 100) == deleted


def _pack_ints(values: list[int], bits: int) -> bytes:
    """StoredFieldsInts as Lucene90CompressingStoredFieldsWriter writes it."""
    out, per_long = bytes([bits]), 64 // bits
    longs = 128 // per_long
    k = 0
    while len(values) - k >= 128:
        for i in range(longs):
            word = 0
            for j in range(per_long):
                word = word << bits | values[k + i + j * longs]
            out += struct.pack("<Q", word)
        k += 128
    return out + b"".join(struct.pack("<" + {8: "B", 16: "H", 32: "I"}[bits], v)
                          for v in values[k:])


@pytest.mark.parametrize("bits, top", [(8, 255), (16, 65535), (32, 1 << 31)])
def test_lucene_9_stored_fields_ints_blocks_and_rest(bits: int, top: int) -> None:
    values = [(n * 7919) % top for n in range(300)]  # two blocks of 128, then 44 more
    r = LittleEndianInput(_pack_ints(values, bits) + b"\x2a", "_0.fdt")
    assert _ints90(r, len(values)) == values
    assert r.byte() == 0x2A  # read exactly to the end
    assert _ints90(LittleEndianInput(b"\x00\x05", "_0.fdt"), 4) == [5, 5, 5, 5]


def _segment_info(version: tuple[int, int, int], has_blocks: bool | None) -> bytes:
    body = struct.pack("<3i", *version) + b"\x00" + struct.pack("<i", 42) + b"\x01"
    if has_blocks is not None:
        body += b"\x01" if has_blocks else b"\x00"
    body += b"\x00" + b"\x01\x06_0.cfs" + b"\x01\x01k\x01v" + b"\x00"  # maps, files, sort
    return lucene_file("Lucene90SegmentInfo", 0, body)


@pytest.mark.parametrize("version, has_blocks", [((9, 12, 0), True), ((10, 2, 1), False),
                                                 ((9, 8, 0), None)])
def test_lucene_9_segment_info_with_and_without_the_blocks_byte(
        version: tuple[int, int, int], has_blocks: bool | None) -> None:
    segment = SegmentCommit("_0", SEGMENT_ID, "Lucene912", -1, 0, -1, 0)
    info = read_segment_info(_segment_info(version, has_blocks), "_0.si", segment)
    assert (info.version, info.max_doc, info.compound) == (version, 42, True)
    assert (info.files, info.attributes) == (["_0.cfs"], {"k": "v"})


def test_a_lucene_11_segment_is_refused_naming_the_file() -> None:
    segment = SegmentCommit("_0", SEGMENT_ID, "Lucene110", -1, 0, -1, 0)
    with pytest.raises(UnsupportedFormat, match=r"_0\.si was written by Lucene 11"):
        read_segment_info(_segment_info((11, 0, 0), True), "_0.si", segment)


def _field(name: str, number: int, bits: int, dv_type: int, skip_index: int | None) -> bytes:
    out = bytes([len(name)]) + name.encode() + bytes([number, bits, 0, dv_type])
    if skip_index is not None:  # Lucene94FieldInfos format 2 (Lucene 10)
        out += bytes([skip_index])
    # no doc-values generation, no attributes, no points, no vectors (encoding, similarity)
    return out + struct.pack("<q", -1) + b"\x00" + b"\x00" + b"\x00" + b"\x00\x00"


@pytest.mark.parametrize("version", [1, 2])
def test_lucene_9_and_10_field_infos(version: int) -> None:
    skip = (lambda flag: flag) if version == 2 else (lambda flag: None)
    body = b"\x02" + _field("@timestamp", 0, 0, 5, skip(1)) + \
        _field("__soft_deletes", 1, 0x08, 1, skip(0))
    fields = read_field_infos(lucene_file("Lucene94FieldInfos", version, body), "_0.fnm",
                              SEGMENT_ID, "")
    assert [(f.name, f.dv_type, f.soft_deletes, f.skip_index) for f in fields.values()] == [
        ("@timestamp", 5, False, version == 2), ("__soft_deletes", 1, True, False)]
