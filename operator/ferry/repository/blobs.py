"""Where a repository's blobs live: a directory, or a prefix in an S3 bucket."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any, Protocol


class BlobNotFound(Exception):
    """The named blob does not exist in the repository."""


class BlobStore(Protocol):
    """The few reads the repository reader needs."""

    @property
    def location(self) -> str:
        """Where the repository is, for messages (never contains credentials)."""
        ...

    def read(self, name: str) -> bytes:
        """The blob's bytes; raises BlobNotFound."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Names of the root blobs that start with prefix."""
        ...

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the blob's end); raises BlobNotFound."""
        ...

    def size(self, name: str) -> int:
        """The blob's length in bytes; raises BlobNotFound."""
        ...


class FsBlobStore:
    """A shared-filesystem (``type: fs``) repository, read from a local path."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(f"{self.root / name} does not exist") from None

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        try:
            with (self.root / name).open("rb") as blob:
                blob.seek(offset)
                return blob.read(length)
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(f"{self.root / name} does not exist") from None

    def size(self, name: str) -> int:
        try:
            return (self.root / name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(f"{self.root / name} does not exist") from None

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            raise BlobNotFound(f"{self.root} is not a directory")
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_file() and p.name.startswith(prefix))


class S3BlobStore:
    """An S3 repository: the blobs under ``base_path`` in a bucket."""

    def __init__(self, client: Any, bucket: str, base_path: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.base_path = (base_path or "").strip("/")

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.base_path}".rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self.base_path}/{name}" if self.base_path else name

    def _get(self, name: str, **extra: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name), **extra)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(f"{self.location}/{name} does not exist") from None
            if code == "InvalidRange":  # a range that starts at or past the end
                return None
            raise

    def read(self, name: str) -> bytes:
        body: bytes = self._get(name)["Body"].read()
        return body

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        # A ranged GET: only the bytes asked for cross the network.
        response = self._get(name, Range=f"bytes={offset}-{offset + length - 1}")
        if response is None:
            return b""
        body: bytes = response["Body"].read()
        return body

    def size(self, name: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(f"{self.location}/{name} does not exist") from None
            raise
        return int(head["ContentLength"])

    def list(self, prefix: str = "") -> list[str]:
        root = f"{self.base_path}/" if self.base_path else ""
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix, Delimiter="/"):
            names += [obj["Key"][len(root):] for obj in page.get("Contents", [])]
        return sorted(names)


def open_store(url: str, *, endpoint_url: str | None = None, region: str | None = None,
               path_style: bool = False) -> BlobStore:
    """A store for a local path or an ``s3://bucket/prefix`` URL.

    S3 credentials come from boto3's default chain (environment, profile, web identity,
    instance role); the endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``.
    """
    if url.startswith("s3://"):
        from ferry.clients.s3 import s3_client

        parts = urllib.parse.urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"{url}: an s3 URL needs a bucket: s3://bucket/prefix")
        client = s3_client(endpoint=endpoint_url, region=region, path_style=path_style)
        return S3BlobStore(client, parts.netloc, parts.path)
    return FsBlobStore(Path(url))
