"""Documents straight out of snapshot files: a reader of Lucene 6-10 segments.

Hand-written because no Python library reads Lucene segments: the formats here were
written from Lucene's own file-format documentation and sources (SegmentInfos,
Lucene50/90CompoundFormat, Lucene60/90/94FieldInfosFormat, Lucene50/87/90StoredFieldsFormat
with CompressingStoredFieldsWriter and Lucene90CompressingStoredFieldsReader,
Lucene62-99SegmentInfoFormat, Lucene50/90LiveDocsFormat, Lucene80/90DocValuesFormat).
Decompression is left to well-kept libraries: ``lz4`` (block decompression with a
dictionary) and ``zlib`` (raw DEFLATE with ``zdict``).

One module per concern: :mod:`store` (a shard's files by range over its blobs),
:mod:`codec` (headers, footers, CRC32, Lucene's DataInput), :mod:`segments`
(``segments_N``, ``.si``), :mod:`compound` (``.cfs``/``.cfe``), :mod:`fields` (``.fnm``),
:mod:`stored` (``.fdt``/``.fdm``), :mod:`livedocs` (``.liv``), :mod:`docvalues` (the
``__soft_deletes`` field), :mod:`elastic` (``_id``/``_uid`` and ``_source`` encodings) and
:mod:`shard` (the live documents of a snapshot, shard by shard).

Covered: Lucene 6.x to 9.x (Elasticsearch 5.x-7.x, OpenSearch 1.x/2.x; proven on
snapshots of ES 5.6/6.8/7.10 and OpenSearch 2.19), and Lucene 10 (OpenSearch 3.x) as its
formats are documented (unproven on real files). Lucene 9 changed the byte order of
every file body but ``segments_N`` to little-endian; the formats are otherwise the
Lucene 8 ones under new names, with the differences each module lists. Not covered,
each raising :class:`UnsupportedFormat` naming the file: Lucene 5 segments (indices
created by Elasticsearch 2.x), formats of the engines' own rather than Lucene's (such as
zstd-compressed stored fields or a soft-deletes field kept in non-Lucene doc values),
Lucene 10.5+'s doc-values versions, and Lucene 11.
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
