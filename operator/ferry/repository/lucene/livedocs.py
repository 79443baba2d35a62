"""Hard deletes: a segment's live-docs bitset (``_<seg>_<gen>.liv``).

One bit per document, set when the document is live, as longs (document ``d`` is bit
``d % 64`` of long ``d // 64``): big-endian in Lucene50LiveDocs (Lucene 5-8),
little-endian in Lucene90LiveDocs (Lucene 9-10). The number of clear bits must equal the
deleted count the commit recorded.
"""

from __future__ import annotations

import struct

from ferry.repository.lucene.codec import DataInput, base36, codec_name
from ferry.repository.lucene.segments import SegmentCommit


def read_deleted(data: bytes, name: str, segment: SegmentCommit, max_doc: int) -> set[int]:
    """The hard-deleted documents of a segment, from its (footer-verified) ``.liv``."""
    r = DataInput(data, name)
    codec = "Lucene90LiveDocs" if codec_name(data) == "Lucene90LiveDocs" else "Lucene50LiveDocs"
    r.index_header(codec, range(0, 1), segment.id, base36(segment.del_gen))
    words = -(-max_doc // 64)
    order = "<" if codec == "Lucene90LiveDocs" else ">"
    longs = struct.unpack(f"{order}{words}Q", r.take(8 * words))
    r.at_footer()
    deleted = set()
    for index, word in enumerate(longs):
        if word == 0xFFFFFFFFFFFFFFFF:
            continue
        base = index * 64
        for bit in range(min(64, max_doc - base)):
            if not word >> bit & 1:
                deleted.add(base + bit)
    if len(deleted) != segment.del_count:
        raise r.corrupt(f"{len(deleted)} documents deleted, the commit recorded "
                        f"{segment.del_count}")
    return deleted
