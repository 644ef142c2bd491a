"""Optimal parameters and tokens against FLOPs, with known models: BloombergGPT's Figure 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .calculator import SizingResult
from .chinchilla import APPROACHES, compute_optimal

# (name, parameters, training tokens), as BloombergGPT's Figure 1 lists them; FLOPs = 6ND.
KNOWN_MODELS: tuple[tuple[str, float, float], ...] = (
    ("BloombergGPT", 50.6e9, 569e9),
    ("GPT-NeoX", 20e9, 472e9),
    ("OPT", 66e9, 300e9),
    ("BLOOM", 176e9, 366e9),
    ("GPT-3", 175e9, 300e9),
    ("Chinchilla", 70e9, 1.4e12),
    ("Gopher", 280e9, 300e9),
)

# Label placement (points; negative x puts the label left of the dot) for the params and tokens panels.
_LABEL_OFFSETS = {
    "GPT-3": ((-6, -12), (-6, -12)),
    "GPT-NeoX": ((-6, 4), (-6, 4)),
    "BloombergGPT": ((4, -14), (-6, 5)),
    "Gopher": ((6, 4), (6, -10)),
    "BLOOM": ((6, -4), (6, 5)),
}
_STYLES = {"1": "-", "2": "--", "3-hoffmann": "-.", "3-epoch": ":", "kaplan": (0, (5, 1, 1, 1, 1, 1))}


def plot_scaling(result: SizingResult, path: str | Path) -> Path:
    """Write a two-panel log-log PNG: optimal N and D vs C, known models, the budget, the pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = result.budget.flops
    flops = np.logspace(21, 25, 41)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    panels = ((axes[0], "params", "parameters"), (axes[1], "tokens", "training tokens"))
    for panel, (ax, key, ylabel) in enumerate(panels):
        for approach, label in APPROACHES.items():
            values = [getattr(compute_optimal(approach, c), key) for c in flops]
            ax.plot(flops, values, linestyle=_STYLES[approach], linewidth=1.6, label=label)
        for name, n, d in KNOWN_MODELS:
            value = n if key == "params" else d
            ax.scatter([6 * n * d], [value], s=28, color="black", zorder=3)
            dx, dy = _LABEL_OFFSETS.get(name, ((6, 4), (6, 4)))[panel]
            ax.annotate(
                name,
                (6 * n * d, value),
                textcoords="offset points",
                xytext=(dx, dy),
                fontsize=8,
                ha="right" if dx < 0 else "left",
            )
        pick = result.shape_option
        ax.scatter(
            [pick.flops],
            [getattr(pick, key)],
            marker="*",
            s=220,
            color="crimson",
            zorder=4,
            label=f"this plan: {pick.params / 1e9:.1f}B on {pick.tokens / 1e9:,.0f}B tokens",
        )
        ax.axvline(budget, color="gray", linewidth=1, linestyle="--")
        ax.text(
            budget,
            0.02,
            f"budget C = {budget:.2e} ",
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=8,
            color="gray",
            transform=ax.get_xaxis_transform(),
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training FLOPs (6ND)")
        ax.set_ylabel(f"compute-optimal {ylabel}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left", framealpha=0.9)
    axes[0].set_title("Optimal parameters vs compute")
    axes[1].set_title("Optimal tokens vs compute")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
