"""Reading an Elasticsearch/OpenSearch snapshot repository straight from its files.

No cluster is needed: the repository's own root blobs say which snapshots it holds
(``index.latest`` points at the newest ``index-N``, JSON) and each snapshot's
``snap-<uuid>.dat`` (SMILE behind a Lucene codec header) says its version, state and
indices. Works on a filesystem path or an S3 prefix, for repositories written by
Elasticsearch 5.x to 7.x and OpenSearch 1.x/2.x.
"""

from ferry.repository.blobs import BlobNotFound, BlobStore, FsBlobStore, S3BlobStore, open_store
from ferry.repository.reader import (
    RepositoryContents,
    RepositoryError,
    SnapshotEntry,
    read_repository,
)

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "FsBlobStore",
    "RepositoryContents",
    "RepositoryError",
    "S3BlobStore",
    "SnapshotEntry",
    "open_store",
    "read_repository",
]
