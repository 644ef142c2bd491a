"""What one evaluation may cost: a cap on the tokens it scores, and its share of wall time.

BloombergGPT scored the whole validation set every 300 steps. At 0.5% of ~700B tokens that
is ~3.5B tokens per evaluation, about 70% more compute than the 300 training steps between
evaluations. `train.eval_tokens` caps the tokens one evaluation scores (split evenly over
the domains); the samples scored are the first ones of each domain's validation dataset,
which megatron shuffled with the run's seed, so every evaluation (and every resume) scores
the same documents and differences between evaluations are the model's.

Cost model: a training token costs 3 forward passes' worth of compute (forward + backward),
4 with activation checkpointing (the forward runs again); an evaluated token costs 1.
"""

from __future__ import annotations

from bloomberg_style.config import RunConfig


def eval_samples_per_domain(cfg: RunConfig, available: int, domains: int) -> int:
    """Validation rows one evaluation scores in a domain that has `available` of them."""
    n = available
    if cfg.train.eval_samples:
        n = min(n, cfg.train.eval_samples)
    if cfg.train.eval_tokens:
        n = min(n, max(1, cfg.train.eval_tokens // (max(domains, 1) * cfg.data.seq_len)))
    return n


def eval_overhead(cfg: RunConfig, valid_rows: dict[str, int] | None = None) -> dict[str, float]:
    """Evaluation compute as a fraction of training compute over the whole run.

    `valid_rows` (domain -> validation rows) sharpens the estimate when the shards are at
    hand; without it every domain is assumed to fill its share of the cap. Returns
    fraction=inf when nothing bounds an evaluation (no cap and no shards to count).
    """
    t, seq_len = cfg.train, cfg.data.seq_len
    names = [d.name for d in cfg.data.domains] or ["total"]
    unbounded = 10**18
    rows = [
        eval_samples_per_domain(cfg, (valid_rows or {}).get(name, unbounded), len(names)) for name in names
    ]
    eval_tokens = sum(rows) * seq_len
    evaluations = t.steps // t.eval_interval + 1  # one at step 0 too
    train_tokens = t.samples_before(t.steps) * seq_len
    passes = 4 if t.activation_checkpointing else 3
    bounded = eval_tokens < unbounded
    fraction = evaluations * eval_tokens / (passes * train_tokens) if bounded else float("inf")
    return {
        "fraction": fraction,
        "tokens_per_evaluation": eval_tokens if bounded else float("inf"),
        "evaluations": evaluations,
        "train_passes_per_token": passes,
    }


def describe(cfg: RunConfig, valid_rows: dict[str, int] | None = None) -> str:
    """The --dry-run line: evaluation's estimated share of training time."""
    o = eval_overhead(cfg, valid_rows)
    if o["fraction"] == float("inf"):
        return (
            "evaluation: no bound on its cost (train.eval_tokens = 0 and train.eval_samples = 0 score "
            "the whole validation split every evaluation); set train.eval_tokens"
        )
    return (
        f"evaluation: ~{100 * o['fraction']:.1f}% of training time ({o['tokens_per_evaluation']:,.0f} tokens "
        f"per evaluation, {o['evaluations']:,} evaluations every {cfg.train.eval_interval} steps; a training "
        f"token costs {o['train_passes_per_token']} forward passes, an evaluated one 1)"
    )
