"""The numeric-aware byte-level Unigram tokenizer: build, save, load, encode, decode.

Id layout (fixed, so tools can rely on it):
    0          <|endoftext|> (EOD), the document separator
    1 + b      the byte symbol of byte b, for b in 0..255
    257 ...    learned pieces, most probable first

EOD is a vocabulary entry but not an "added token": the encoder never splits
it out of text. A literal "<|endoftext|>" inside a document is encoded as
ordinary pieces ("<|", "endoftext", "|>"), can never become id 0 (the regex
always cuts between punctuation and letters), and decodes back to the same
text. Only code that means a document boundary writes ``eod_id``, so a
document quoting the string cannot inject fake boundaries. ``decode(
[eod_id])`` gives "<|endoftext|>" so boundaries stay visible.

Strings with lone surrogates (U+D800-U+DFFF alone, e.g. from bytes decoded
with errors="surrogateescape" or a JSON "\udc80" escape) have no UTF-8 form.
``encode`` writes each as the three bytes Python's "surrogatepass" gives it
(ED A0-BF 80-BF, a sequence valid UTF-8 never contains) using byte tokens, and
``decode`` turns exactly those sequences back into the surrogate, so
``decode(encode(x)) == x`` for every Python string. Any other invalid byte
sequence (ids cut inside a character) decodes to U+FFFD as in tokenizers.
Training (``train_unigram``) still rejects such text, naming the document.
"""

from __future__ import annotations

import codecs
import json
import math
import operator
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models
from tqdm.auto import tqdm

from tokenizer.merge import prune_unigram_model
from tokenizer.pretokenize import (
    BYTE_SYMBOLS,
    PRETOKENIZE_PATTERN,
    SYMBOL_TO_BYTE,
    build_pre_tokenizer,
    from_byte_level,
)
from tokenizer.unigram import MIN_VOCAB_SIZE, UnigramModel, train_unigram

EOD_TOKEN = "<|endoftext|>"
EOD_ID = 0
DIGITS = frozenset("0123456789")
_SURROGATES = re.compile("([\ud800-\udfff]+)")
_SURROGATE_ERRORS = "numeric_unigram.surrogates"


def _surrogate_or_replace(err: UnicodeError) -> tuple[str, int]:
    """Decode error handler: a surrogatepass sequence gives its surrogate back, anything else U+FFFD."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    seq = err.object[err.start : err.start + 3]
    if len(seq) == 3 and seq[0] == 0xED and 0xA0 <= seq[1] <= 0xBF and 0x80 <= seq[2] <= 0xBF:
        return seq.decode("utf-8", "surrogatepass"), err.start + 3
    return "\ufffd", err.end


codecs.register_error(_SURROGATE_ERRORS, _surrogate_or_replace)


def check_model(model: UnigramModel) -> None:
    """Reject pieces the numeric byte-level tokenizer must not have, naming the piece."""
    seen: set[str] = set()
    for piece, lp in model.pieces:
        if not piece:
            raise ValueError("empty piece in model")
        if piece in seen:
            raise ValueError(f"duplicate piece {piece!r}")
        seen.add(piece)
        if piece == EOD_TOKEN:
            raise ValueError(f"{EOD_TOKEN} must not be a model piece; from_model adds it at id {EOD_ID}")
        if not math.isfinite(lp):
            raise ValueError(f"piece {piece!r} has log probability {lp}")
        bad = [c for c in piece if c not in SYMBOL_TO_BYTE]
        if bad:
            raise ValueError(f"piece {piece!r} has {bad[0]!r}, not a byte-level symbol")
        if len(piece) > 1 and DIGITS.intersection(piece):
            raise ValueError(f"piece {piece!r} joins a digit with other bytes; digits must stand alone")
    missing = [b for b, s in enumerate(BYTE_SYMBOLS) if s not in seen]
    if missing:
        raise ValueError(f"model lacks {len(missing)} byte symbols, e.g. bytes {missing[:5]}")


def _token_id(value: Any) -> int:
    """An id as int; int(3.5) would quietly read id 3, so only integer types pass (no bools)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"token id {value!r} is not an integer ({type(value).__name__})") from None


class NumericUnigramTokenizer:
    """A ``tokenizers.Tokenizer`` (Unigram, paper regex, ByteLevel) with the EOD conventions above."""

    def __init__(self, backend: Tokenizer):
        if backend.token_to_id(EOD_TOKEN) != EOD_ID:
            raise ValueError(f"{EOD_TOKEN} must have id {EOD_ID}, got {backend.token_to_id(EOD_TOKEN)}")
        backend.encode_special_tokens = True  # never split EOD out of text, even if marked special
        self.backend = backend
        self._bytes_of_id: list[bytes] | None = None

    def __reduce__(self):
        """Pickle (for worker processes) through __init__, which re-applies the settings above."""
        return (type(self), (self.backend,))

    @classmethod
    def from_model(cls, model: UnigramModel) -> NumericUnigramTokenizer:
        """Tokenizer with the model's pieces and scores in the fixed id layout (EOD, bytes, learned)."""
        check_model(model)
        byte_set = set(BYTE_SYMBOLS)
        scores = dict(model.pieces)
        learned = sorted(
            ((p, lp) for p, lp in model.pieces if p not in byte_set), key=lambda x: (-x[1], x[0])
        )
        eod_score = min(scores.values())  # never used: no pretokenized text can match EOD
        vocab = [(EOD_TOKEN, eod_score)] + [(s, scores[s]) for s in BYTE_SYMBOLS] + learned
        backend = Tokenizer(models.Unigram(vocab, unk_id=None, byte_fallback=False))
        backend.pre_tokenizer = build_pre_tokenizer()
        backend.decoder = decoders.ByteLevel()
        return cls(backend)

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        max_piece_length: int = 16,
        trainer: str = "sentencepiece",
        show_progress: bool = False,
    ) -> NumericUnigramTokenizer:
        """One Unigram model on all texts in this process (no split and merge), at most ``vocab_size`` tokens.

        Fine for small corpora (tests, the demo); ``train_split_merge`` scales.
        """
        model = train_unigram(
            texts, vocab_size, max_piece_length=max_piece_length, trainer=trainer, show_progress=show_progress
        )
        return cls.from_model(prune_unigram_model(model, vocab_size))

    def save(self, directory: str | Path) -> Path:
        """tokenizer.json plus the configs that ``transformers.AutoTokenizer`` reads."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(out / "tokenizer.json"))
        special = {"bos_token": EOD_TOKEN, "eos_token": EOD_TOKEN}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special,
            # transformers registers eos as a special token; keep literal text literal, as encode() does
            "split_special_tokens": True,
            "clean_up_tokenization_spaces": False,  # decode must not touch spaces before punctuation
        }
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path) -> NumericUnigramTokenizer:
        """From a directory written by ``save`` or a tokenizer.json file."""
        file = Path(path)
        if file.is_dir():
            file = file / "tokenizer.json"
        if not file.is_file():
            raise FileNotFoundError(f"no tokenizer file at {file}")
        try:
            backend = Tokenizer.from_file(str(file))
        except Exception as err:  # tokenizers raises a bare Exception ("EOF while parsing ...")
            raise ValueError(
                f"{file}: not a readable tokenizer.json ({err}); truncated or not a tokenizer?"
            ) from None
        spec = json.loads(backend.to_str())
        if spec["model"]["type"] != "Unigram":
            raise ValueError(f"{file}: model is {spec['model']['type']}, expected Unigram")
        if spec["pre_tokenizer"] != json.loads(build_pre_tokenizer().__getstate__()):
            raise ValueError(f"{file}: pre_tokenizer is not the paper's regex + ByteLevel one")
        if (spec.get("decoder") or {}).get("type") != "ByteLevel":
            raise ValueError(f"{file}: decoder is not ByteLevel, so decode would not give text back")
        return cls(backend)

    @property
    def eod_id(self) -> int:
        return EOD_ID

    @property
    def vocab_size(self) -> int:
        """True number of ids (not rounded up; the model config pads its embedding separately)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of text; no special tokens added."""
        try:
            return self.backend.encode(text, add_special_tokens=False).ids
        except TypeError:
            if not isinstance(text, str):
                raise TypeError(f"text: expected str, got {type(text).__name__}") from None
            return self._encode_with_surrogates(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` of each text, in parallel Rust threads."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}]: expected str, got {type(t).__name__}")
        try:
            return [e.ids for e in self.backend.encode_batch_fast(texts, add_special_tokens=False)]
        except TypeError:  # some text holds a lone surrogate
            return [self.encode(t) for t in texts]

    def _encode_with_surrogates(self, text: str) -> list[int]:
        """Valid stretches through the backend; each lone surrogate as its surrogatepass byte tokens."""
        ids: list[int] = []
        for part in _SURROGATES.split(text):
            if not part:
                continue
            if _SURROGATES.fullmatch(part):
                ids.extend(1 + b for b in part.encode("utf-8", "surrogatepass"))
            else:
                ids.extend(self.backend.encode(part, add_special_tokens=False).ids)
        return ids

    def decode(self, ids: Iterable[int], lone_surrogates: bool = True) -> str:
        """Text of ids; EOD appears as "<|endoftext|>". A cut inside a UTF-8 character gives U+FFFD.

        ``lone_surrogates=False`` gives tokenizers' decode exactly (U+FFFD for
        the byte form of a lone surrogate too): use it for model output that
        will be printed, since a str holding a surrogate cannot be written as UTF-8.
        """
        ids = [_token_id(i) for i in ids]
        if ids and not (min(ids) >= 0 and max(ids) < self.vocab_size):
            bad = next(i for i in ids if not 0 <= i < self.vocab_size)
            raise ValueError(f"token id {bad} outside the vocabulary [0, {self.vocab_size})")
        text = self.backend.decode(ids, skip_special_tokens=False)
        if not lone_surrogates or "\ufffd" not in text:
            return text
        # Rare path: the bytes may hold encoded lone surrogates (see the module docstring).
        data = b"".join(self._id_bytes()[i] for i in ids)
        return data.decode("utf-8", errors=_SURROGATE_ERRORS)

    def _id_bytes(self) -> list[bytes]:
        """The bytes each id stands for (EOD: its literal text), built on first use."""
        if self._bytes_of_id is None:
            table = [from_byte_level(self.backend.id_to_token(i)) for i in range(1, self.vocab_size)]
            self._bytes_of_id = [EOD_TOKEN.encode("utf-8"), *table]
        return self._bytes_of_id

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, id_: int) -> str | None:
        return self.backend.id_to_token(id_)


def train_from_texts(
    texts: Iterable[str],
    output_dir: str | Path,
    vocab_size: int = 131072,
    *,
    max_piece_length: int = 16,
    trainer: str = "sentencepiece",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train one tokenizer on texts in this process, save it with training_stats.json; return the stats.

    For corpora that do not fit one trainer, use ``train_split_merge``.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)  # fail on permissions before reading any data

    n_docs = 0

    def counted() -> Iterator[str]:
        nonlocal n_docs
        for text in tqdm(texts, desc="reading documents", unit=" docs", disable=not show_progress):
            n_docs += 1
            yield text

    start = time.perf_counter()
    model = train_unigram(
        counted(), vocab_size, max_piece_length=max_piece_length, trainer=trainer, show_progress=show_progress
    )
    tok = NumericUnigramTokenizer.from_model(prune_unigram_model(model, vocab_size))
    tok.save(out)
    stats = {
        "documents": n_docs,
        "bytes": model.bytes_seen,
        "vocab_size": tok.vocab_size,
        "requested_vocab_size": vocab_size,
        "eod_id": tok.eod_id,
        "max_piece_length": max_piece_length,
        "trainer": trainer,
        "pretokenize_pattern": PRETOKENIZE_PATTERN,
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
    (out / "training_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats
