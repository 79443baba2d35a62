"""Documents straight out of snapshot files: a reader of Lucene 6-8 segments.

Hand-written because no Python library reads Lucene segments: the formats here were
written from Lucene's own file-format documentation (the javadocs of SegmentInfos,
Lucene50CompoundFormat, Lucene60FieldInfosFormat, Lucene50StoredFieldsFormat and
Lucene87StoredFieldsFormat, CompressingStoredFieldsWriter, Lucene50LiveDocsFormat and
Lucene80DocValuesFormat). Decompression is left to well-kept libraries: ``lz4`` (block
decompression with a dictionary) and ``zlib`` (raw DEFLATE with ``zdict``).

One module per concern: :mod:`store` (a shard's files by range over its blobs),
:mod:`codec` (headers, footers, CRC32, Lucene's DataInput), :mod:`segments`
(``segments_N``, ``.si``), :mod:`compound` (``.cfs``/``.cfe``), :mod:`fields` (``.fnm``),
:mod:`stored` (``.fdt``/``.fdm``), :mod:`livedocs` (``.liv``), :mod:`docvalues` (the
``__soft_deletes`` field), :mod:`elastic` (``_id``/``_uid`` and ``_source`` encodings) and
:mod:`shard` (the live documents of a snapshot, shard by shard).

Covered: Lucene 6.x, 7.x and 8.x (Elasticsearch 5.x-7.x, OpenSearch 1.x). Lucene 9+
(Elasticsearch 8+, OpenSearch 2.x/3.x) and Lucene 5 segments (indices created by
Elasticsearch 2.x) raise :class:`UnsupportedFormat` naming the file.
"""

from ferry.repository.lucene.codec import CorruptFile, LuceneError, UnsupportedFormat
from ferry.repository.lucene.shard import (
    Document,
    IndexFacts,
    index_facts,
    shard_documents,
    shard_files,
    snapshot_documents,
)

__all__ = [
    "CorruptFile",
    "Document",
    "IndexFacts",
    "LuceneError",
    "UnsupportedFormat",
    "index_facts",
    "shard_documents",
    "shard_files",
    "snapshot_documents",
]
