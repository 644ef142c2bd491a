"""Held-out loss per domain: nats per token, perplexity and bits per byte.

What is scored. A domain's documents (each already followed by <|endoftext|> in a shard,
or encoded from raw text and given one) are joined into one stream with an extra
<|endoftext|> in front, so the first token of every document is predicted too, as in
training where documents follow an EOD. The stream is cut into rows of seq_len targets
(`scoring.target_nats`) and every token after the leading EOD is scored exactly once.
The EOD after each document is scored as well (knowing where a document ends is part
of modelling it), as the trainer's validation loss does.

Which documents. For a token shard, split="valid" scores the documents that pretraining
held out: the same seeded draw that data/mixture.py's `split_documents` gives the
validation part (`valid_fraction` and `valid_seed`, read from the run's config.yaml when
the checkpoint has one), in shard order. split="all" scores the whole shard (a dedicated
test shard). The trainer's own validation loss covers the same documents but in
megatron's shuffled row order, so the two agree closely, not bit for bit.

Bytes. Bits per byte = total nats / (ln 2 * bytes). For raw text the bytes are the
UTF-8 bytes of the documents' text. For shards the text is gone, so every scored token
is charged the number of bytes it decodes to: the tokenizer is byte-level, each id maps
to a fixed byte string (EOD to none), and a document's tokens add up to exactly its UTF-8
bytes (tested). Without the tokenizer, a shard's .stats.json average bytes per non-EOD
token is used instead, and the result says bytes_exact: false.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloomberg_style.evaluation.metrics import LossTally


@dataclass
class DomainResult:
    """One domain's held-out numbers (loss in nats per token)."""

    name: str
    source: str  # shard prefix or the input paths
    split: str  # "valid", "all" or "text"
    documents: int
    tokens: int  # scored tokens (EOD included)
    bytes: int  # UTF-8 bytes of the scored text
    loss: float
    perplexity: float
    bits_per_byte: float
    bytes_exact: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_byte_lengths(tokenizer) -> np.ndarray:
    """bytes[id] = UTF-8 bytes that token id stands for (0 for EOD), for a byte-level tokenizer."""
    from tokenizer.pretokenize import SYMBOL_TO_BYTE

    n = tokenizer.vocab_size
    lengths = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if i == tokenizer.eod_id:
            continue
        piece = tokenizer.id_to_token(i)
        if piece is None or any(c not in SYMBOL_TO_BYTE for c in piece):
            raise ValueError(
                f"token {i} ({piece!r}) is not made of byte-level symbols: cannot count its bytes"
            )
        lengths[i] = len(piece)  # one byte-level symbol per byte
    return lengths


def split_indices(n_documents: int, split: str, valid_fraction: float, valid_seed: int = 1234) -> np.ndarray:
    """Ids of the documents a split scores, in shard order: the run's validation draw, or all."""
    if split == "all":
        return np.arange(n_documents)
    if split != "valid":
        raise ValueError(f"split must be 'valid' or 'all', got {split!r}")
    from bloomberg_style.data.mixture import split_documents, split_string

    _, valid = split_documents(n_documents, split_string(valid_fraction), valid_seed)
    if len(valid) == 0:
        raise ValueError(
            f"valid_fraction {valid_fraction} leaves no validation documents out of {n_documents}; "
            "use split='all' for a dedicated evaluation shard"
        )
    return valid


def _tally(nats: np.ndarray, targets: np.ndarray, nbytes: int) -> LossTally:
    tally = LossTally()
    tally.add(float(nats.sum()), len(targets), nbytes)
    return tally


def _result(name, source, split, documents, tally, exact, start) -> DomainResult:
    return DomainResult(
        name=name,
        source=source,
        split=split,
        documents=documents,
        tokens=tally.tokens,
        bytes=tally.bytes,
        loss=tally.loss,
        perplexity=tally.perplexity,
        bits_per_byte=tally.bits_per_byte,
        bytes_exact=exact,
        seconds=round(time.perf_counter() - start, 3),
    )


def evaluate_shard(
    model,
    prefix: str | Path,
    *,
    name: str | None = None,
    tokenizer=None,
    split: str = "valid",
    valid_fraction: float = 0.02,
    valid_seed: int = 1234,  # the run's data.valid_seed
    seq_len: int | None = None,
    batch_size: int = 8,
    max_tokens: int = 0,
) -> DomainResult:
    """Loss, perplexity and bits per byte of `model` on a token shard's split (see module doc).

    max_tokens > 0 scores only the first max_tokens tokens of the split (a quick look).
    """
    from bloomberg_style.data.shards import ShardStats, read_token_shard, stats_path

    start_time = time.perf_counter()
    prefix = Path(prefix)
    shard = read_token_shard(prefix)
    stats = ShardStats.load(prefix) if stats_path(prefix).is_file() else None
    vocab = model.config.vocab_size
    if stats is not None and stats.vocab_size > vocab:
        raise ValueError(
            f"shard {prefix} was written with a {stats.vocab_size}-token tokenizer, "
            f"larger than the model's vocabulary ({vocab})"
        )
    if tokenizer is not None and stats is not None and stats.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"shard {prefix} was written with a {stats.vocab_size}-token tokenizer, "
            f"not the given one ({tokenizer.vocab_size} tokens)"
        )
    eod = tokenizer.eod_id if tokenizer is not None else (stats.eod_id if stats is not None else None)
    if eod is None:
        raise ValueError(f"shard {prefix}: no .stats.json and no tokenizer, so the EOD id is unknown")
    docs = [
        np.asarray(shard[int(i)], dtype=np.int64)
        for i in split_indices(len(shard), split, valid_fraction, valid_seed)
    ]
    stream = np.concatenate([[eod], *docs])
    if max_tokens:
        stream = stream[: max_tokens + 1]
    targets = stream[1:]
    if targets.max() >= vocab:
        raise ValueError(
            f"shard {prefix} holds id {int(targets.max())}, outside the model's vocabulary {vocab}"
        )
    from bloomberg_style.evaluation.scoring import target_nats  # torch: imported when scoring

    nats = target_nats(model, stream, seq_len or model.config.max_seq_len, batch_size)
    if tokenizer is not None:
        nbytes, exact = int(token_byte_lengths(tokenizer)[targets].sum()), True
    else:
        per_token = stats.bytes / max(1, stats.tokens - stats.documents)  # EODs carry no bytes
        nbytes, exact = int(round(per_token * int((targets != eod).sum()))), False
    documents = int((targets == eod).sum())
    return _result(
        name or prefix.name, str(prefix), split, documents, _tally(nats, targets, nbytes), exact, start_time
    )


def evaluate_texts(
    model,
    tokenizer,
    paths: Sequence[str | Path],
    *,
    name: str,
    text_field: str = "text",
    seq_len: int | None = None,
    batch_size: int = 8,
    max_documents: int = 0,
) -> DomainResult:
    """Loss, perplexity and bits per byte on raw documents (.txt/.jsonl/.json/.parquet inputs)."""
    from bloomberg_style.corpus import iter_documents

    start_time = time.perf_counter()
    texts = []
    for doc in iter_documents(paths, text_field):
        texts.append(doc.text)
        if max_documents and len(texts) >= max_documents:
            break
    if not texts:
        raise ValueError(f"--text {name}: no non-empty documents in {list(map(str, paths))}")
    eod = tokenizer.eod_id
    encoded = tokenizer.encode_batch(texts)
    stream = np.asarray([eod] + [t for ids in encoded for t in (*ids, eod)], dtype=np.int64)
    if stream.max() >= model.config.vocab_size:
        raise ValueError(f"tokenizer gives id {int(stream.max())}, outside the model's vocabulary")
    from bloomberg_style.evaluation.scoring import target_nats

    nats = target_nats(model, stream, seq_len or model.config.max_seq_len, batch_size)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    source = ", ".join(str(p) for p in paths)
    return _result(name, source, "text", len(texts), _tally(nats, stream[1:], nbytes), True, start_time)
