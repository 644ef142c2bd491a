"""megatron-core's IndexedDataset files, written without importing megatron-core.

Prepare workers are fresh processes (spawned, one core each), and importing
megatron-core (torch with it) costs each of them seconds of CPU; so the workers
write the two files, and prepare_data checks and merges them, with this module. The layout is megatron-core's (indexed_dataset.py, format version
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


def read_index(idx_file: str | Path) -> tuple[np.dtype, np.ndarray, np.ndarray]:
    """(token dtype, sequence lengths, document indices) of a version-1 megatron .idx file."""
    raw = Path(idx_file).read_bytes()
    if raw[: len(INDEX_HEADER)] != INDEX_HEADER:
        raise ValueError(f"{idx_file}: not a megatron-core index (bad header)")
    at = len(INDEX_HEADER)
    version, code = struct.unpack_from("<QB", raw, at)
    if version != 1:
        raise ValueError(f"{idx_file}: index version {version}, expected 1")
    sequences, documents = struct.unpack_from("<QQ", raw, at + 9)
    at += 9 + 16
    dtype = {v: k for k, v in DTYPE_CODES.items()}.get(code)
    if dtype is None:
        raise ValueError(f"{idx_file}: unsupported dtype code {code}")
    lengths = np.frombuffer(raw, dtype=np.int32, count=sequences, offset=at)
    doc_index = np.frombuffer(raw, dtype=np.int64, count=documents, offset=at + 12 * sequences)
    return dtype, lengths.copy(), doc_index.copy()


def merge_documents(prefixes: list[str | Path], bin_file: str | Path, idx_file: str | Path, dtype) -> None:
    """Concatenate one-document-per-sequence shards, in order, into one (what IndexedDatasetBuilder.add_index does)."""
    writer = DocumentWriter(bin_file, dtype)
    try:
        for prefix in prefixes:
            part_dtype, lengths, _ = read_index(f"{prefix}.idx")
            if part_dtype != writer.dtype:
                raise ValueError(f"{prefix}: tokens are {part_dtype}, the merged shard {writer.dtype}")
            with open(f"{prefix}.bin", "rb") as part:
                while chunk := part.read(1 << 24):
                    writer.stream.write(chunk)
            writer.lengths.extend(lengths.tolist())
        writer.finalize(idx_file)
    except BaseException:
        writer.close()
        raise
