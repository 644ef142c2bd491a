"""megatron-core's IndexedDataset files, written without importing megatron-core.

Prepare workers are fresh processes (spawned, one core each); importing
megatron-core costs each of them seconds, so they write the two files
themselves. The layout is megatron-core's (indexed_dataset.py, format version
1, one sequence per document):

    PREFIX.bin   the token arrays back to back
    PREFIX.idx   b"MMIDIDX\\x00\\x00", <Q version 1, <B dtype code, <Q sequences,
                 <Q document-index entries, int32 lengths, int64 byte pointers,
                 int64 document indices (0, 1, ..., n)

tests/test_prepare_parallel.py checks that the files are byte-identical to
megatron-core's IndexedDatasetBuilder output and that IndexedDataset reads them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

INDEX_HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int32): 4, np.dtype(np.int64): 5, np.dtype(np.uint16): 8}


class DocumentWriter:
    """Append documents (one token array each) to PREFIX.bin; `finalize` writes PREFIX.idx."""

    def __init__(self, bin_file: str | Path, dtype: type[np.number]):
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPE_CODES:
            raise ValueError(f"unsupported token dtype {self.dtype}")
        self.stream = open(bin_file, "wb")  # noqa: SIM115 - closed in finalize/close
        self.lengths: list[int] = []

    def add(self, ids: np.ndarray) -> None:
        self.stream.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
        self.lengths.append(int(ids.size))

    def close(self) -> None:
        self.stream.close()

    def finalize(self, idx_file: str | Path) -> None:
        self.stream.close()
        lengths = np.asarray(self.lengths, dtype=np.int64)
        pointers = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1] * self.dtype.itemsize, out=pointers[1:])
        documents = np.arange(len(lengths) + 1, dtype=np.int64)
        with open(idx_file, "wb") as out:
            out.write(INDEX_HEADER)
            out.write(struct.pack("<Q", 1))
            out.write(struct.pack("<B", DTYPE_CODES[self.dtype]))
            out.write(struct.pack("<Q", len(lengths)))
            out.write(struct.pack("<Q", len(documents)))
            out.write(lengths.astype(np.int32).tobytes())
            out.write(pointers.tobytes())
            out.write(documents.tobytes())
