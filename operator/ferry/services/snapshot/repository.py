"""The snapshot repository: the body that registers it on a cluster, whether an already
registered one is the one the spec asks for, and verification of a snapshot in the
repository's own files (read by the operator, without the cluster).

Pure but for :func:`repository_store` and :func:`verify_in_repository`, which read the
repository (a mounted filesystem or S3).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ferry.api.snapshot import Repository
from ferry.errors import InvalidSpec
from ferry.repository import BlobNotFound, FsBlobStore, RepositoryError, S3BlobStore
from ferry.repository import read_repository as read_repository_files

if TYPE_CHECKING:
    from ferry.services.snapshot.service import SnapshotInfo

# Repository settings that say where the data is: a difference there is always a
# conflict, even when one side leaves the setting out.
IDENTITY_SETTINGS = ("location", "bucket", "base_path", "endpoint")

# What each engine documents for an s3 repository body: its own repository settings
# plus the non-secure client settings that repository settings may override
# (Elasticsearch 7.x repository-s3 "Repository settings" / "Client settings";
# OpenSearch 2.x "Register repository: Amazon S3"). Secure settings (keys) never go in
# a body: they live in the node's keystore.
DOCUMENTED_S3_SETTINGS: dict[str, frozenset[str]] = {
    "elasticsearch": frozenset({
        "bucket", "client", "base_path", "chunk_size", "compress", "server_side_encryption",
        "buffer_size", "canned_acl", "storage_class", "max_restore_bytes_per_sec",
        "max_snapshot_bytes_per_sec", "readonly",
        "endpoint", "protocol", "region", "path_style_access", "disable_chunked_encoding",
        "read_timeout", "max_retries", "use_throttle_retries", "signer_override",
        "proxy.host", "proxy.port",
    }),
    "opensearch": frozenset({
        "bucket", "client", "base_path", "chunk_size", "compress", "server_side_encryption",
        "buffer_size", "canned_acl", "storage_class", "max_restore_bytes_per_sec",
        "max_snapshot_bytes_per_sec", "readonly", "disable_chunked_encoding",
        "endpoint", "protocol", "region", "path_style_access", "role_arn",
        "role_session_name", "read_timeout", "max_retries", "use_throttle_retries",
        "proxy.host", "proxy.port", "proxy.type",
    }),
}
DOCUMENTED_FS_SETTINGS = frozenset({
    "location", "compress", "chunk_size", "max_restore_bytes_per_sec",
    "max_snapshot_bytes_per_sec", "readonly",
})


def repository_body(repo: Repository, engine: str, readonly: bool = False) -> dict[str, Any]:
    """The ``PUT _snapshot/<name>`` body for one engine. Raises InvalidSpec for a
    setting the engine cannot take. ``readonly`` registers it for restores only: two
    clusters writing one repository would corrupt it."""
    settings: dict[str, Any] = {"compress": repo.compress}
    if readonly:
        settings["readonly"] = True
    if repo.max_snapshot_bytes_per_sec:
        settings["max_snapshot_bytes_per_sec"] = repo.max_snapshot_bytes_per_sec
    if repo.max_restore_bytes_per_sec:
        settings["max_restore_bytes_per_sec"] = repo.max_restore_bytes_per_sec
    if repo.type == "fs":
        if repo.fs is None:
            raise InvalidSpec("repository.fs is required when type is fs")
        settings["location"] = repo.fs.location
        return {"type": "fs", "settings": settings}
    s3 = repo.s3
    if s3 is None:
        raise InvalidSpec("repository.s3 is required when type is s3")
    settings["bucket"] = s3.bucket
    if s3.base_path:
        settings["base_path"] = s3.base_path.strip("/")
    if s3.endpoint:
        # Both engines take the host in `endpoint` and the scheme in `protocol`.
        parts = urllib.parse.urlsplit(s3.endpoint if "://" in s3.endpoint
                                      else f"https://{s3.endpoint}")
        settings["endpoint"] = parts.netloc
        settings["protocol"] = parts.scheme
    if s3.region:
        settings["region"] = s3.region
    if s3.path_style_access:
        settings["path_style_access"] = True
    if s3.role_arn:
        if engine != "opensearch":
            raise InvalidSpec("repository.s3.roleArn: Elasticsearch's repository-s3 cannot "
                              "assume a role from repository settings; give the nodes "
                              "credentials (keystore or instance role) and leave roleArn out")
        settings["role_arn"] = s3.role_arn
    return {"type": "s3", "settings": settings}


def _normalized(settings: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in ("location", "base_path"):
            text = text.rstrip("/") or text
        out[key] = text
    return out


def repository_conflict(existing: dict[str, Any], desired: dict[str, Any],
                        readonly_ok: bool = False) -> str | None:
    """Why an already registered repository is not the one the spec asks for, or None.

    Settings set on both sides must agree; settings that say where the data is must
    agree even when one side leaves them out; a read-only repository cannot take a
    snapshot. A setting only one side has (e.g. a throttle someone left out) is not a
    conflict: the registered repository is used as it is, never overwritten.
    ``readonly_ok`` (a restore only reads) accepts the repository read-only or not.
    """
    if existing.get("type") != desired["type"]:
        return f"it is of type {existing.get('type')}, the spec asks for {desired['type']}"
    have = _normalized(existing.get("settings") or {})
    want = _normalized(desired["settings"])
    if readonly_ok:
        have.pop("readonly", None)
        want.pop("readonly", None)
    diffs = [f"{k}={have.get(k, '<unset>')!r} (spec: {want.get(k, '<unset>')!r})"
             for k in sorted(set(have) | set(want))
             if (k in IDENTITY_SETTINGS and have.get(k) != want.get(k))
             or (k in have and k in want and have[k] != want[k])]
    if have.get("readonly") == "true":
        diffs.append("readonly='true'")
    if diffs:
        return "its settings differ: " + ", ".join(diffs)
    return None


@dataclass
class Verification:
    status: str  # True | False | Unknown
    reason: str
    message: str


def repository_store(repo: Repository) -> FsBlobStore | S3BlobStore | None:
    """Where the operator can read the repository, or None when it cannot know."""
    if repo.type == "fs" and repo.fs is not None:
        location = PurePosixPath(repo.fs.location)
        return FsBlobStore(str(location)) if location.is_absolute() else None
    if repo.type == "s3" and repo.s3 is not None:
        from ferry.clients.s3 import s3_client

        s3 = repo.s3
        return S3BlobStore(s3_client(s3.endpoint, s3.region, s3.path_style_access),
                           s3.bucket, s3.base_path)
    return None


def verify_in_repository(repo: Repository, info: SnapshotInfo) -> Verification:
    """Read the repository's index-N and confirm the snapshot and its indices are there."""
    store = repository_store(repo)
    if store is None:
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the fs location {repo.fs.location if repo.fs else ''} is "
                            "relative to the nodes' path.repo: the operator cannot read it")
    if isinstance(store, FsBlobStore) and not store.root.is_dir():
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the operator cannot read {store.location}: it is not mounted "
                            "in the operator's pod; the snapshot was not checked in the "
                            "repository's files")
    try:
        contents = read_repository_files(store)
    except (BlobNotFound, RepositoryError) as exc:
        return Verification("False", "NotInRepository", str(exc))
    except Exception as exc:  # botocore errors, permissions: the operator cannot look
        return Verification("Unknown", "RepositoryNotReachable",
                            f"the operator cannot read {store.location}: "
                            f"{type(exc).__name__}: {exc}")
    entry = contents.snapshot(info.name)
    where = f"{store.location}/index-{contents.generation}"
    if entry is None or (info.uuid and entry.uuid != info.uuid):
        return Verification("False", "NotInRepository",
                            f"{where} does not list snapshot {info.name} ({info.uuid})")
    missing = sorted(set(info.indices) - set(entry.indices))
    if missing:
        return Verification("False", "IndicesMissing",
                            f"{where} lists snapshot {info.name} without indices "
                            f"{', '.join(missing[:10])}")
    return Verification("True", "FoundInRepository",
                        f"{where} lists snapshot {info.name} ({entry.uuid}) with its "
                        f"{len(info.indices)} indices, state {entry.state}")
