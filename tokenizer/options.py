"""Tokenizer training options: one dataclass for the split-and-merge trainer and its command's flags.

`bloomberg-style train-tokenizer` derives its flags from these fields, and a YAML of the
same keys reads through the config engine (`TokenizerOptions.load`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TokenizerOptions:
    vocab_size: int = 131072  # final vocabulary, EOD included
    chunks: int | None = None  # number of chunks in all (shared out by bytes per source)
    chunk_bytes: int | None = None  # bytes per chunk; None (with chunks None): 32 MiB
    chunk_vocab_size: int = 65536  # pieces learned per chunk
    workers: int | None = None  # parallel chunk trainers; None: all CPUs
    text_field: str = "text"  # JSON field / parquet column with the text
    trainer: str = "sentencepiece"  # per-chunk Unigram trainer
    max_piece_length: int = 16  # longest piece, in bytes
    sweep: tuple[int, int, int] | None = None  # (lo, hi, points): vocabulary sweep on held-out text
    heldout_every: int = 50  # with a sweep: hold out every Nth document
    heldout_max_bytes: int = 8 << 20  # with a sweep: at most this much held-out text
    keep_work: bool = False  # keep chunk and source models in the output folder
    show_progress: bool = True
    # Across nodes: "K/N" trains and saves only chunk K of N into OUTPUT/chunks/ (a Slurm array
    # task); merge_only merges the saved chunks into the tokenizer (the final job).
    chunk_only: str | None = None
    merge_only: bool = False

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> TokenizerOptions:
        from bloomberg_style.configlib import load_config

        return load_config(cls, path, overrides, what="tokenizer options")

    def train(self, inputs: list[str | Path], output_dir: str | Path) -> dict[str, Any]:
        """Train split-and-merge with these options (validated there, ValueError naming the field)."""
        from tokenizer import split_merge

        options = dataclasses.asdict(self)
        chunk_only, merge_only = options.pop("chunk_only"), options.pop("merge_only")
        if chunk_only is not None or merge_only:
            if chunk_only is not None and merge_only:
                raise ValueError("chunk_only and merge_only exclude each other (one job does one of them)")
            if self.sweep is not None:
                raise ValueError(
                    "sweep needs the single-machine run (its held-out sample streams with the chunks)"
                )
        if merge_only:
            return split_merge.merge_chunks(output_dir, vocab_size=self.vocab_size, keep_work=self.keep_work)
        if chunk_only is not None:
            return split_merge.train_chunk_only(
                inputs, output_dir, split_merge.parse_chunk_spec(chunk_only),
                chunks=self.chunks, chunk_bytes=self.chunk_bytes, chunk_vocab_size=self.chunk_vocab_size,
                text_field=self.text_field, trainer=self.trainer, max_piece_length=self.max_piece_length,
                show_progress=self.show_progress,
            )  # fmt: skip
        return split_merge.train_split_merge(inputs, output_dir, **options)
