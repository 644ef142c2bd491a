"""How many tokens the data allows, and the model size when data, not compute, is short.

Allowed tokens: source i offers U_i = tokens_i * epochs_i; a minimum share s_i means source i
must supply at least s_i of every token trained on. The most tokens D any mix can reach is
    D_all = min( sum_i U_i,  min_{s_i > 0} U_i / s_i ),
since d_i >= s_i D and d_i <= U_i. (BloombergGPT: FinPile 363B with share >= 1/2 allows up to
726B, public 345B: all 708B usable, 51% financial.)

Size choice, with C the budget and C' = (1 - buffer) C what the plan may spend:
- data not short (D_all >= D_opt(C')): the compute-optimal pair for C'.
- data short: train on all D_all tokens. The largest model that does so within C' is
  N_cap = C' / (6 D_all); the target is min(N_cap, N_opt(C)): never above the compute-optimal
  size for the whole budget (a bigger model buys little loss and costs more to serve).
  BloombergGPT: N_cap = 57.8B, N_opt(C) = 53.0B (approach 1) or 49.8B (approach 2): ~50B on
  708B tokens, using 61% of C, so more than the 30% buffer stays unspent.
Either way no model is planned with fewer than `min_tokens_per_param` tokens per parameter.
The options table puts the Approach 3 loss L(N, D) next to each candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chinchilla import EPOCH, HOFFMANN, compute_optimal


@dataclass(frozen=True)
class DataMix:
    tokens: dict[str, float]  # available per source, one pass
    epochs: dict[str, float]
    min_share: dict[str, float]

    @property
    def usable(self) -> dict[str, float]:
        return {name: t * self.epochs[name] for name, t in self.tokens.items()}

    @property
    def total(self) -> float:
        """D_all: the most tokens a mix obeying the shares and epochs can reach."""
        usable = self.usable
        limits = [sum(usable.values())]
        limits += [usable[name] / s for name, s in self.min_share.items() if s > 0]
        return min(limits)

    def take(self, tokens: float) -> dict[str, float]:
        """Tokens per source for a run of `tokens` (<= total): shares first, the rest by spare room."""
        usable, shares = self.usable, self.min_share
        base = {name: shares.get(name, 0.0) * tokens for name in usable}
        spare = {name: usable[name] - base[name] for name in usable}
        free = tokens - sum(base.values())
        room = sum(spare.values())
        return {name: base[name] + (free * spare[name] / room if room > 0 else 0.0) for name in usable}


def data_mix(
    tokens: dict[str, float],
    min_share: dict[str, float] | None = None,
    epochs: dict[str, float] | float = 1.0,
) -> DataMix:
    """Validate the sources and build the mix; raises ValueError naming the bad source/value."""
    from .budget import check_number

    if not tokens:
        raise ValueError("no data sources given (tokens per source, e.g. financial=363e9)")
    tokens = {str(k): check_number(f"tokens[{k}]", v, low_open=False) for k, v in tokens.items()}
    min_share = dict(min_share or {})
    per_source = epochs if isinstance(epochs, dict) else {}
    default_epochs = 1.0 if isinstance(epochs, dict) else epochs
    for name in list(min_share) + list(per_source):
        if name not in tokens:
            raise ValueError(f"unknown data source {name!r}; sources given: {', '.join(tokens)}")
    shares = {k: check_number(f"min_share[{k}]", v, low_open=False, high=1.0) for k, v in min_share.items()}
    if sum(shares.values()) > 1 + 1e-12:
        raise ValueError(f"minimum shares add up to {sum(shares.values()):.3f} > 1: {shares}")
    eps = {k: check_number(f"epochs[{k}]", per_source.get(k, default_epochs)) for k in tokens}
    mix = DataMix(tokens, eps, shares)
    if mix.total <= 0:
        short = [k for k, s in shares.items() if s > 0 and mix.usable[k] == 0]
        why = (
            f"source {short[0]!r} has 0 tokens but must be at least {shares[short[0]]:.0%} of the mix"
            if short
            else "all sources have 0 tokens"
        )
        raise ValueError(f"not enough data for any model: {why}")
    return mix


@dataclass(frozen=True)
class SizeOption:
    name: str
    params: float
    tokens: float
    flops: float  # 6 N D
    budget_flops: float  # C
    data_ok: bool  # tokens <= D_all

    @property
    def share_of_budget(self) -> float:
        return self.flops / self.budget_flops

    @property
    def loss_hoffmann(self) -> float:
        return HOFFMANN.loss(self.params, self.tokens)

    @property
    def loss_epoch(self) -> float:
        return EPOCH.loss(self.params, self.tokens)


@dataclass(frozen=True)
class SizeChoice:
    approach: str
    budget_flops: float  # C
    usable_flops: float  # C' = (1 - buffer) C
    data_tokens: float  # D_all
    min_tokens_per_param: float
    data_limited: bool
    params: float  # target N, before a shape rounds it
    max_params: float  # no shape above this: sees all data within C' (if data-limited), enough tokens/param
    options: list[SizeOption]

    def tokens_for(self, params: float) -> float:
        """Tokens a model of `params` trains on: all the data, or what C' pays for if less."""
        return min(self.data_tokens, self.usable_flops / (6 * params))

    def option(self, name: str, params: float, tokens: float | None = None) -> SizeOption:
        tokens = self.tokens_for(params) if tokens is None else tokens
        data_ok = tokens <= self.data_tokens * (1 + 1e-9)
        return SizeOption(name, params, tokens, 6 * params * tokens, self.budget_flops, data_ok)


def choose_size(
    budget_flops: float,
    usable_flops: float,
    data_tokens: float,
    approach: str = "1",
    min_tokens_per_param: float = 1.0,
) -> SizeChoice:
    """Target parameters under the budget, the buffer and the data limit, with the options compared."""
    full = compute_optimal(approach, budget_flops)
    held = compute_optimal(approach, usable_flops)
    data_limited = data_tokens < held.tokens
    if data_limited:  # train on all the data; the model grows into the compute it frees
        all_data_cap = usable_flops / (6 * data_tokens)
        max_params = min(all_data_cap, data_tokens / min_tokens_per_param)
        target = min(full.params, max_params)
    else:  # N tokens/param >= r with D = C'/(6N) means N <= sqrt(C' / (6r))
        max_params = (usable_flops / (6 * min_tokens_per_param)) ** 0.5
        target = min(held.params, max_params)
    choice = SizeChoice(
        approach,
        budget_flops,
        usable_flops,
        data_tokens,
        min_tokens_per_param,
        data_limited,
        params=target,
        max_params=max_params,
        options=[],
    )
    choice.options.append(choice.option("compute-optimal, whole budget", full.params, full.tokens))
    choice.options.append(choice.option("compute-optimal, buffer kept", held.params, held.tokens))
    if data_limited:
        choice.options.append(choice.option("largest on all data, buffer kept", all_data_cap, data_tokens))
    choice.options.append(choice.option("target", target))
    return choice
