"""loss.png: training and per-domain validation loss, with a marker at every run event."""

from __future__ import annotations

from pathlib import Path

from bloomberg_style.training.metrics import read_jsonl

# Events worth a marker on the loss plot (checkpoints are too frequent to draw).
MARKED_EVENTS = {
    "lr_drop",
    "rollback",
    "dropout",
    "stop",
    "skip_step",
    "loss_spike",
    "resume",
    "weight_decay",
}


def plot_losses(run_dir: Path, out: Path | None = None) -> Path | None:
    """Draw RUN/loss.png from metrics.jsonl and events.jsonl; returns the path or None if empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(run_dir / "metrics.jsonl")
    events = [e for e in read_jsonl(run_dir / "events.jsonl") if e.get("event") in MARKED_EVENTS]
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    if not train:
        return None
    valid: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for key, value in r.items():
            if key.startswith("valid/") and key.endswith("/loss"):
                valid.setdefault(key[len("valid/") : -len("/loss")], []).append((r["step"], value))

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.plot(*zip(*train), lw=1, alpha=0.8, label="train")
    for domain, points in sorted(valid.items()):
        ax.plot(*zip(*points), marker="o", ms=3, lw=1.5, label=f"valid: {domain}")
    for event in events:
        ax.axvline(event["step"], color="grey", ls="--", lw=0.8)
        label = event.get("label") or event["event"]
        ax.annotate(
            label,
            (event["step"], 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color="dimgrey",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title(run_dir.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = out or run_dir / "loss.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
