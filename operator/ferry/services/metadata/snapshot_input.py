"""Metadata with the source gone: a snapshot's own index and global metadata, handed
to :class:`MetadataService` in the shapes a live source answers with, so the same
transforms (typed → typeless, settings the engine owns, allowlists, rejected settings)
apply to both paths.

A snapshot keeps each index's metadata in ``indices/<id>/meta-<uuid>.dat`` — flat
settings, mappings as a list of ``{type: mapping}`` (or compressed JSON), aliases by
name — and, when it was taken with the global state, the templates in the root
``meta-<uuid>.dat``. Without the global state the templates are reported Skipped with
the reason.
"""

from __future__ import annotations

import json
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from ferry.api.backfill import BackfillSpec
from ferry.clients.engine import Engine, EngineInfo, guess_engine
from ferry.repository.blobs import BlobNotFound, BlobStore
from ferry.repository.reader import (
    DEFLATE_HEADER,
    RepositoryContents,
    SnapshotEntry,
    decode_metadata_blob,
)
from ferry.services.metadata.report import COMPONENT, COMPOSABLE, LEGACY, Item, MetadataResult
from ferry.services.metadata.service import MetadataService

NO_GLOBAL_STATE = ("the snapshot was taken without the global state "
                   "(includeGlobalState: false), so it holds no templates")


def _json(value: Any) -> Any:
    """A metadata value a snapshot may keep as (compressed) JSON bytes."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if raw.startswith(DEFLATE_HEADER):
            raw = zlib.decompress(raw[len(DEFLATE_HEADER):], -zlib.MAX_WBITS)
        return json.loads(raw)
    return value


def mappings_of(value: Any) -> dict[str, Any]:
    """Mappings as a live source shows them: ``{type: mapping}`` (typed) or a typeless
    mapping, from the snapshot's list of per-type entries."""
    value = _json(value)
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for entry in value:
            entry = _json(entry)
            if isinstance(entry, Mapping):
                merged.update(entry)
        return merged
    return dict(value) if isinstance(value, Mapping) else {}


def aliases_of(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, body in (value or {}).items():
        body = dict(body or {})
        if "filter" in body:
            body["filter"] = _json(body["filter"])
        out[name] = body
    return out


def _template(body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if "mappings" in out:
        out["mappings"] = mappings_of(out["mappings"])
    if "aliases" in out:
        out["aliases"] = aliases_of(out["aliases"])
    if isinstance(out.get("template"), Mapping):
        out["template"] = _template(out["template"])
    return out


class SnapshotMetadata:
    """Answers the reads :class:`MetadataService` makes of its source from a snapshot."""

    def __init__(self, store: BlobStore, contents: RepositoryContents,
                 entry: SnapshotEntry) -> None:
        self.store, self.contents, self.entry = store, contents, entry
        self._global: dict[str, Any] | None = None
        self.has_global_state = self._read_global()

    def _read_global(self) -> bool:
        try:
            info = decode_metadata_blob(self.store.read(f"snap-{self.entry.uuid}.dat"))
            snap = info.get("snapshot", info) if isinstance(info, dict) else {}
            if snap.get("include_global_state") is False:
                return False
            meta = decode_metadata_blob(self.store.read(f"meta-{self.entry.uuid}.dat"))
        except BlobNotFound:
            return False
        self._global = (meta.get("meta-data") or meta) if isinstance(meta, dict) else {}
        return True

    def info(self) -> EngineInfo:
        """The engine and version that wrote the snapshot, as a live source's ``GET /``
        would say (the version-specific transforms depend on it)."""
        version = self.entry.version or "0"
        return EngineInfo(guess_engine(version), None, version)

    def index(self, name: str) -> dict[str, Any]:
        index_id = self.contents.index_ids.get(name, name)
        meta = decode_metadata_blob(self.store.read(self.entry.index_metadata_blob(index_id)))
        body = meta.get(name, next(iter(meta.values()), {})) if isinstance(meta, dict) else {}
        return {"settings": dict(body.get("settings") or {}),
                "mappings": mappings_of(body.get("mappings")),
                "aliases": aliases_of(body.get("aliases"))}

    def _section(self, key: str) -> dict[str, Any]:
        section = (self._global or {}).get(key) or {}
        # Component and composable templates sit one level deeper, under their own key.
        inner = section.get(key, section) if isinstance(section, Mapping) else {}
        return {name: _template(body) for name, body in (inner or {}).items()}

    def request(self, method: str, path: str, **_: Any) -> Any:
        """GET of one index, its aliases, or a kind of template, answered as a live
        source would; None (a 404) for an index the snapshot does not hold."""
        if method != "GET":
            raise ValueError(f"a snapshot is read only ({method} {path})")
        if path == "/_template":
            return self._section("templates")
        if path == "/_component_template":
            return {"component_templates": [
                {"name": n, "component_template": b}
                for n, b in self._section("component_template").items()]}
        if path == "/_index_template":
            return {"index_templates": [
                {"name": n, "index_template": b}
                for n, b in self._section("index_template").items()]}
        parts = path.strip("/").split("/")
        name = urllib.parse.unquote(parts[0])
        if name not in self.entry.indices:
            return None
        body = self.index(name)
        if parts[1:] == ["_alias"]:
            return {name: {"aliases": body["aliases"]}}
        if len(parts) == 1:
            return {name: body}
        raise ValueError(f"a snapshot cannot answer GET {path}")


class SnapshotMetadataService(MetadataService):
    """MetadataService whose source is a snapshot's files."""

    def __init__(self, snapshot: SnapshotMetadata, target: Engine, spec: BackfillSpec,
                 uid: str) -> None:
        # The source is read only through ``request``, which the snapshot answers.
        super().__init__(snapshot, target, spec, uid)  # type: ignore[arg-type]
        self.snapshot = snapshot

    def run(self, mode: str, indices: Iterable[tuple[str, str]], *,
            templates: bool = True, method: str = "copy") -> MetadataResult:
        # The same mapping of reader and S3 errors as the documents' reads.
        from ferry.services.backfill.snapshot_source import reading

        with reading(f"metadata of snapshot {self.snapshot.entry.name}"):
            if self.snapshot.has_global_state or not templates:
                return super().run(mode, indices, templates=templates, method=method)
            result = super().run(mode, indices, templates=False, method=method)
        if mode != "Skip":
            for kind in (LEGACY, COMPONENT, COMPOSABLE):
                result.add(Item(kind, "*", "Skipped", NO_GLOBAL_STATE))
        return result
