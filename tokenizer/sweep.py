"""Vocabulary-size sweep: the paper's way of choosing V.

Each candidate V costs log2(V) bits per token, and a larger vocabulary needs
fewer tokens, so the encoded size of held-out text

    bits(V) = tokens(V) * log2(V)

has a minimum. BloombergGPT pruned one merged model to sizes from 25k to
550k, found the minimum near 125k on C4 and rounded to 2^17. Pruning a single
merged model (instead of training one model per size) is what makes the sweep
cheap: every point is just a prune and an encode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizer.merge import prune_unigram_model
from tokenizer.numeric_unigram import NumericUnigramTokenizer
from tokenizer.unigram import MIN_VOCAB_SIZE, UnigramModel, utf8_len


def parse_sweep(spec: str) -> tuple[int, int, int]:
    """ "LO:HI" or "LO:HI:POINTS" (default 12 points, spaced geometrically) -> (lo, hi, points)."""
    parts = spec.split(":")
    try:
        values = [int(p.replace("_", "")) for p in parts]
    except ValueError:
        raise ValueError(f"sweep {spec!r}: expected LO:HI or LO:HI:POINTS with integers") from None
    if len(values) not in (2, 3):
        raise ValueError(f"sweep {spec!r}: expected LO:HI or LO:HI:POINTS")
    lo, hi, points = (*values, 12) if len(values) == 2 else values
    if not MIN_VOCAB_SIZE <= lo <= hi:
        raise ValueError(f"sweep {spec!r}: need {MIN_VOCAB_SIZE} <= LO <= HI")
    if points < 1 or (points == 1 and lo != hi):
        raise ValueError(f"sweep {spec!r}: POINTS must be >= 2 when LO < HI (and >= 1)")
    return lo, hi, points


def sweep_sizes(lo: int, hi: int, points: int) -> list[int]:
    """``points`` sizes from lo to hi, evenly spaced in log V (distinct, ascending)."""
    if points == 1 or lo == hi:
        return [lo]
    ratio = (hi / lo) ** (1 / (points - 1))
    return sorted({round(lo * ratio**k) for k in range(points)})


def vocab_sweep(
    model: UnigramModel, texts: Sequence[str], sweep: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """Encoded size of texts for each swept V, pruning the one merged model each time.

    A V above the model's pieces + EOD cannot be reached; such points are
    reported once, at the largest size the model has (``capped``: true).
    """
    n_bytes = sum(utf8_len(t, f"held-out text {i}") for i, t in enumerate(texts))
    if n_bytes == 0:
        raise ValueError("vocab_sweep: the held-out texts are empty")
    largest = len(model.pieces) + 1  # + EOD
    rows: list[dict[str, Any]] = []
    for asked in sweep_sizes(*sweep):
        v = min(asked, largest)
        if rows and rows[-1]["vocab_size"] == v:
            continue
        tok = NumericUnigramTokenizer.from_model(prune_unigram_model(model, v))
        tokens = sum(len(ids) for ids in tok.encode_batch(list(texts)))
        bits = tokens * math.log2(tok.vocab_size)
        rows.append(
            {
                "vocab_size": tok.vocab_size,
                "capped": asked > largest,
                "tokens": tokens,
                "bytes_per_token": n_bytes / tokens,
                "bits": bits,
                "bits_per_byte": bits / n_bytes,
            }
        )
    return rows


def sweep_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of a sweep, the optimum marked with *."""
    best = min(rows, key=lambda r: r["bits"])["vocab_size"]
    lines = [f"{'V':>9} {'tokens':>12} {'bytes/token':>12} {'size (MB)':>10} {'bits/byte':>10}"]
    for r in rows:
        mark = " *" if r["vocab_size"] == best else ("  (all pieces)" if r["capped"] else "")
        lines.append(
            f"{r['vocab_size']:>9,} {r['tokens']:>12,} {r['bytes_per_token']:>12.3f} "
            f"{r['bits'] / 8e6:>10.4f} {r['bits_per_byte']:>10.4f}{mark}"
        )
    lines.append(f"optimum: V = {best:,} (smallest encoded size, tokens x log2 V)")
    return "\n".join(lines)


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """PNG of bits per byte against V (log axis), the optimum marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = min(rows, key=lambda r: r["bits"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot([r["vocab_size"] for r in rows], [r["bits_per_byte"] for r in rows], "o-", color="tab:blue")
    ax.plot([best["vocab_size"]], [best["bits_per_byte"]], "*", color="tab:red", markersize=14)
    ax.annotate(
        f"optimum V = {best['vocab_size']:,}",
        (best["vocab_size"], best["bits_per_byte"]),
        textcoords="offset points",
        xytext=(0, 12),
        ha="center",
    )
    ax.set_xscale("log")
    ax.set_xlabel("vocabulary size V")
    ax.set_ylabel("bits per byte = tokens x log2(V) / bytes")
    ax.set_title("Vocabulary sweep" + (f" ({title})" if title else ""))
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
