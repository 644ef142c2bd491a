"""Training one Unigram model over byte-level pieces.

A ``UnigramModel`` is a probability distribution over text pieces plus the
number of UTF-8 bytes it was trained on; that byte count is the weight a
split-and-merge run gives it (see ``merge.py``). It holds no special tokens:
``<|endoftext|>`` never comes out of segmenting text, so it has no probability,
and ``NumericUnigramTokenizer.from_model`` adds it at a fixed id.

Vocabulary sizes in this package always count the final tokenizer, EOD
included: ``train_unigram(texts, V)`` learns at most ``V - 1`` pieces.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, models, trainers

from tokenizer.pretokenize import BYTE_SYMBOLS, build_pre_tokenizer

MIN_VOCAB_SIZE = 257  # 256 byte symbols + <|endoftext|>
UNSEEN_BYTE_PENALTY = 10.0  # a byte never seen in training gets log p = (least likely piece) - this


@dataclass
class UnigramModel:
    pieces: list[tuple[str, float]]  # (byte-level piece, log probability), most probable first
    bytes_seen: int  # UTF-8 bytes of training text: this model's weight in a merge

    def probabilities(self) -> dict[str, float]:
        """piece -> probability, normalised to sum to 1."""
        log_z = logsumexp([lp for _, lp in self.pieces])
        return {p: math.exp(lp - log_z) for p, lp in self.pieces}

    def save(self, path: str | Path) -> None:
        """JSON file; chunk models of a split-and-merge run are passed around this way."""
        data = {"bytes_seen": self.bytes_seen, "pieces": self.pieces}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> UnigramModel:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            pieces = [(str(p), float(lp)) for p, lp in data["pieces"]]
            return cls(pieces=pieces, bytes_seen=int(data["bytes_seen"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a UnigramModel file (need 'pieces' and 'bytes_seen'): {e}") from e


def logsumexp(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def normalised(pieces: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Shift log probs so the probabilities sum to 1; most probable first (ties by piece)."""
    log_z = logsumexp([lp for _, lp in pieces])
    return sorted(((p, lp - log_z) for p, lp in pieces), key=lambda x: (-x[1], x[0]))


def utf8_len(text: str, where: str) -> int:
    """Bytes of text in UTF-8; a clear error for what cannot be encoded (lone surrogates)."""
    if not isinstance(text, str):
        raise TypeError(f"{where}: expected str, got {type(text).__name__}")
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{where}: lone surrogate U+{ord(text[e.start]):04X} at index {e.start} cannot be UTF-8 "
            "encoded (decode input bytes with errors='replace', not 'surrogateescape')"
        ) from None


def train_unigram(
    texts: Iterable[str], vocab_size: int, *, max_piece_length: int = 16, show_progress: bool = False
) -> UnigramModel:
    """Fit a Unigram model (EM + pruning, tokenizers' UnigramTrainer) on raw texts, pretokenized inside.

    Learns at most ``vocab_size - 1`` pieces (one id is left for EOD); all 256
    byte symbols are always among them, so any string can be segmented.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    if max_piece_length < 1:
        raise ValueError(f"max_piece_length={max_piece_length} must be at least 1")

    n_bytes = 0

    def counted() -> Iterator[str]:
        nonlocal n_bytes
        for i, text in enumerate(texts):
            n_bytes += utf8_len(text, f"document {i}")
            yield text

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = build_pre_tokenizer()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 1,
        initial_alphabet=BYTE_SYMBOLS,
        max_piece_length=max_piece_length,
        show_progress=show_progress,
    )
    tok.train_from_iterator(counted(), trainer)
    if n_bytes == 0:
        raise ValueError("no text to train on: every document was empty")

    pieces: list[tuple[str, float]] = json.loads(tok.to_str())["model"]["vocab"]
    # The trainer keeps its initial alphabet; make sure anyway (bytes 0xC0, 0xC1, 0xF5-0xFF never
    # occur in UTF-8, so nothing else would put them there).
    present = {p for p, _ in pieces}
    floor = min(lp for _, lp in pieces) - UNSEEN_BYTE_PENALTY
    pieces += [(s, floor) for s in BYTE_SYMBOLS if s not in present]
    return UnigramModel(pieces=normalised(most_probable(pieces, vocab_size - 1)), bytes_seen=n_bytes)


def most_probable(pieces: list[tuple[str, float]], n: int) -> list[tuple[str, float]]:
    """All 256 byte symbols plus the n - 256 most probable other pieces (ties by piece)."""
    byte_set = set(BYTE_SYMBOLS)
    bytes_ = [(p, lp) for p, lp in pieces if p in byte_set]
    missing = byte_set - {p for p, _ in bytes_}
    if missing:
        raise ValueError(f"model lacks {len(missing)} of the 256 byte symbols, e.g. {sorted(missing)[:5]}")
    others = sorted(((p, lp) for p, lp in pieces if p not in byte_set), key=lambda x: (-x[1], x[0]))
    return bytes_ + others[: max(n - len(bytes_), 0)]
