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

import io
import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, models, trainers

from tokenizer.pretokenize import BYTE_SYMBOLS, build_pre_tokenizer, count_pretokens

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


TRAINERS = ("sentencepiece", "tokenizers")
SP_MAX_SENTENCE_SYMBOLS = 2048  # longer pieces are cut: SentencePiece skips "sentences" over 4192 bytes


def train_unigram(
    texts: Iterable[str],
    vocab_size: int,
    *,
    max_piece_length: int = 16,
    trainer: str = "sentencepiece",
    num_threads: int = 1,
    show_progress: bool = False,
    tmp_dir: str | Path | None = None,
) -> UnigramModel:
    """Fit a Unigram model (EM + pruning) on raw texts, pretokenized inside.

    Learns at most ``vocab_size - 1`` pieces (one id is left for EOD); all 256
    byte symbols are always among them, so any string can be segmented.
    ``trainer`` picks the implementation: "sentencepiece" (C++, fed the
    pretokenized pieces with their counts; ~4x less CPU and ~2x less memory
    than the other in docs/tokenizer.md's measurements) or "tokenizers" (Rust
    UnigramTrainer on the texts). SentencePiece reads its input from a file
    in ``tmp_dir`` (default: the system's temporary folder).
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    if max_piece_length < 1:
        raise ValueError(f"max_piece_length={max_piece_length} must be at least 1")
    if trainer not in TRAINERS:
        raise ValueError(f"trainer={trainer!r}; expected one of {TRAINERS}")

    n_bytes = 0

    def counted() -> Iterator[str]:
        nonlocal n_bytes
        for i, text in enumerate(texts):
            n_bytes += utf8_len(text, f"document {i}")
            yield text

    if trainer == "sentencepiece":
        counts = count_pretokens(counted())
        if n_bytes == 0:
            raise ValueError("no text to train on: every document was empty")
        pieces = _train_sentencepiece(counts, vocab_size, max_piece_length, num_threads, tmp_dir)
    else:
        trained = _train_tokenizers(counted(), vocab_size, max_piece_length, show_progress)
        if n_bytes == 0:
            raise ValueError("no text to train on: every document was empty")
        pieces = [(str(p), float(lp)) for p, lp in json.loads(trained.to_str())["model"]["vocab"]]

    # Both trainers keep every symbol they saw; bytes 0xC0, 0xC1, 0xF5-0xFF never occur in UTF-8
    # (and a small chunk misses many more), so unseen byte symbols get a floor probability.
    present = {p for p, _ in pieces}
    floor = min(lp for _, lp in pieces) - UNSEEN_BYTE_PENALTY
    pieces += [(s, floor) for s in BYTE_SYMBOLS if s not in present]
    return UnigramModel(pieces=normalised(most_probable(pieces, vocab_size - 1)), bytes_seen=n_bytes)


def _train_tokenizers(
    texts: Iterable[str], vocab_size: int, max_piece_length: int, show_progress: bool
) -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = build_pre_tokenizer()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 1,
        initial_alphabet=BYTE_SYMBOLS,
        max_piece_length=max_piece_length,
        show_progress=show_progress,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _train_sentencepiece(
    counts: Counter[str], vocab_size: int, max_piece_length: int, num_threads: int, tmp_dir: str | Path | None
) -> list[tuple[str, float]]:
    """SentencePiece's Unigram trainer on "piece<TAB>count" lines of byte-level pieces.

    Byte-level pieces hold no whitespace, so each line is one "word" and no
    piece can cross a pretoken boundary; normalisation is off so symbols
    are taken as they are. Its <unk> is dropped from the result.
    """
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="unigram-", dir=tmp_dir) as tmp:
        tsv = Path(tmp) / "pieces.tsv"
        with open(tsv, "w", encoding="utf-8") as f:
            for piece, n in counts.items():
                for i in range(0, len(piece), SP_MAX_SENTENCE_SYMBOLS):
                    f.write(f"{piece[i : i + SP_MAX_SENTENCE_SYMBOLS]}\t{n}\n")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(tsv),
            input_format="tsv",
            model_writer=model,
            model_type="unigram",
            vocab_size=vocab_size,  # vocab_size - 1 pieces + <unk>
            hard_vocab_limit=False,  # a small chunk may support fewer pieces
            character_coverage=1.0,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_by_unicode_script=False,
            split_by_number=False,
            split_digits=True,
            max_sentencepiece_length=max_piece_length,
            max_sentence_length=4 * SP_MAX_SENTENCE_SYMBOLS,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=max(1, num_threads),
            minloglevel=2,
        )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size()) if not sp.is_unknown(i)]


def most_probable(pieces: list[tuple[str, float]], n: int) -> list[tuple[str, float]]:
    """All 256 byte symbols plus the n - 256 most probable other pieces (ties by piece)."""
    byte_set = set(BYTE_SYMBOLS)
    bytes_ = [(p, lp) for p, lp in pieces if p in byte_set]
    missing = byte_set - {p for p, _ in bytes_}
    if missing:
        raise ValueError(f"model lacks {len(missing)} of the 256 byte symbols, e.g. {sorted(missing)[:5]}")
    others = sorted(((p, lp) for p, lp in pieces if p not in byte_set), key=lambda x: (-x[1], x[0]))
    return bytes_ + others[: max(n - len(bytes_), 0)]
