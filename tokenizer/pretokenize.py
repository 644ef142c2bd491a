"""BloombergGPT pretokenization: the regex split, then bytes as printable symbols.

The paper splits text greedily with ``[ A-Za-z]+|[0-9]|[^A-Za-z0-9]+``: spaces
join letters (so Unigram can learn multi-word pieces such as "of the "), every
digit stands alone (numbers are always spelled digit by digit, so 1,234 and
1,235 share all their tokens), and everything else (punctuation, newlines,
non-ASCII) forms runs. Each piece is then written as UTF-8 bytes, each byte as
one printable character (GPT-2's byte-level alphabet), so 256 symbols cover
every string and no unknown token is ever needed.

``pretokenize`` and ``to_byte_level`` are the pure-Python reference; the
encoder uses the identical Rust pre-tokenizer from ``build_pre_tokenizer``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, pre_tokenizers

PRETOKENIZE_PATTERN = r"[ A-Za-z]+|[0-9]|[^A-Za-z0-9]+"
_PRETOKENIZE_RE = re.compile(PRETOKENIZE_PATTERN)


def pretokenize(text: str) -> list[str]:
    """Split text into the paper's pieces; their concatenation is the text."""
    return _PRETOKENIZE_RE.findall(text)


def _byte_symbols() -> list[str]:
    """The character standing for each byte 0..255 (GPT-2 / tokenizers ByteLevel).

    Printable Latin-1 bytes stand for themselves; the other 68 (controls,
    space, DEL, NBSP, soft hyphen) are shifted to U+0100 onwards in byte order,
    so every symbol is visible and none is whitespace (space is "Ġ").
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols: list[str] = []
    shifted = 0
    for b in range(256):
        if b in printable:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


BYTE_SYMBOLS: list[str] = _byte_symbols()  # BYTE_SYMBOLS[b] is the symbol of byte b
SYMBOL_TO_BYTE: dict[str, int] = {s: b for b, s in enumerate(BYTE_SYMBOLS)}


_LATIN1_TO_SYMBOL = str.maketrans({chr(b): s for b, s in enumerate(BYTE_SYMBOLS)})


def to_byte_level(text: str) -> str:
    """UTF-8 bytes of text, each written as its byte symbol."""
    return text.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_SYMBOL)


def from_byte_level(symbols: str) -> bytes:
    """Inverse of ``to_byte_level`` (before UTF-8 decoding)."""
    return bytes(SYMBOL_TO_BYTE[s] for s in symbols)


def count_pretokens(texts: Iterable[str], counts: Counter[str] | None = None) -> Counter[str]:
    """How often each byte-level piece occurs in texts: what a Unigram trainer needs of a corpus.

    Counting raw pieces first and converting only the distinct ones keeps this
    fast (the regex and Counter run in C); equal to counting the Rust
    pre-tokenizer's output.
    """
    raw: Counter[str] = Counter()
    for text in texts:
        raw.update(_PRETOKENIZE_RE.findall(text))
    counts = counts if counts is not None else Counter()
    for piece, n in raw.items():
        counts[to_byte_level(piece)] += n
    return counts


def build_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Rust pre-tokenizer equal to ``to_byte_level`` applied to each ``pretokenize`` piece."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
