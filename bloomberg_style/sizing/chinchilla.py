"""Compute-optimal model size and tokens for a FLOP budget C, by every method.

Approaches 1 and 2 (Hoffmann et al. 2022) are straight lines in log-log space,
    N_opt = 10^(a * log10 C + b),   D_opt = 10^(a' * log10 C + b'),
fitted here by least squares to the paper's own projections (Tables 3 and A3), as
BloombergGPT did. Approach 3 is the parametric loss
    L(N, D) = E + A / N^alpha + B / D^beta
minimised under C = 6 N D, which has the closed form
    N_opt = G * (C/6)^(beta/(alpha+beta)),  D_opt = (C/6)^(alpha/(alpha+beta)) / G,
    G = (alpha A / (beta B))^(1/(alpha+beta)).
Kaplan et al. 2020 (Figure 14) is shown for contrast: N_opt = 1.3e9 * C_min^0.73 with C in
PF-days (their N excludes embeddings), tokens then follow from D = C / (6 N).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from .chinchilla_data import TABLE_3_APPROACH_1, TABLE_A3_APPROACH_2

PF_DAY = 1e15 * 86400  # FLOPs in one petaFLOP/s-day, Kaplan's compute unit
KAPLAN_COEFFICIENT = 1.3e9  # parameters at 1 PF-day
KAPLAN_EXPONENT = 0.73


@dataclass(frozen=True)
class PowerLaw:
    """y = 10^(slope * log10(C) + intercept)."""

    slope: float
    intercept: float

    def __call__(self, flops: float) -> float:
        return 10 ** (self.slope * math.log10(flops) + self.intercept)

    def formula(self, name: str) -> str:
        sign = "-" if self.intercept < 0 else "+"
        return f"{name} = 10^({self.slope:.3f} log10 C {sign} {abs(self.intercept):.3f})"


def fit_power_law(flops: Sequence[float], values: Sequence[float]) -> PowerLaw:
    """Ordinary least squares of log10(values) on log10(flops)."""
    if len(flops) != len(values) or len(flops) < 2:
        raise ValueError(
            f"need at least 2 (flops, value) pairs of equal length, got {len(flops)}, {len(values)}"
        )
    x = [math.log10(c) for c in flops]
    y = [math.log10(v) for v in values]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((xi - mx) ** 2 for xi in x)
    sxy = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y))
    slope = sxy / sxx
    return PowerLaw(slope, my - slope * mx)


@cache
def table_fits(approach: str) -> tuple[PowerLaw, PowerLaw]:
    """(params law, tokens law) fitted to Chinchilla's Table 3 (approach "1") or A3 ("2")."""
    rows = {"1": TABLE_3_APPROACH_1, "2": TABLE_A3_APPROACH_2}[approach]
    flops = [c for _, c, _ in rows]
    return fit_power_law(flops, [n for n, _, _ in rows]), fit_power_law(flops, [d for _, _, d in rows])


@dataclass(frozen=True)
class LossLaw:
    """Chinchilla's parametric loss L(N, D) = E + A/N^alpha + B/D^beta (nats per token)."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def loss(self, params: float, tokens: float) -> float:
        return self.E + self.A / params**self.alpha + self.B / tokens**self.beta

    def optimum(self, flops: float) -> tuple[float, float]:
        """(N_opt, D_opt) minimising the loss on the curve 6 N D = flops."""
        a, b = self.alpha, self.beta
        g = (a * self.A / (b * self.B)) ** (1 / (a + b))
        params = g * (flops / 6) ** (b / (a + b))
        return params, flops / (6 * params)


HOFFMANN = LossLaw("3-hoffmann", 1.69, 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. 2022, eq. 10")
EPOCH = LossLaw("3-epoch", 1.817, 482.01, 2085.43, 0.3478, 0.3658, "Besiroglu et al. 2024 (Epoch AI) refit")
LOSS_LAWS = {law.name: law for law in (HOFFMANN, EPOCH)}

APPROACHES: dict[str, str] = {
    "1": "Chinchilla approach 1 (Table 3 fit)",
    "2": "Chinchilla approach 2 (Table A3 fit)",
    "3-hoffmann": "Chinchilla approach 3 (Hoffmann coefficients)",
    "3-epoch": "Chinchilla approach 3 (Epoch AI refit)",
    "kaplan": "Kaplan et al. 2020 (N = 1.3e9 C_pfd^0.73)",
}


@dataclass(frozen=True)
class Optimum:
    approach: str
    flops: float
    params: float
    tokens: float
    formula: str

    @property
    def label(self) -> str:
        return APPROACHES[self.approach]


def compute_optimal(approach: str, flops: float) -> Optimum:
    """Compute-optimal (params, tokens) for `flops` by one approach (a key of APPROACHES)."""
    if approach not in APPROACHES:
        raise ValueError(f"unknown approach {approach!r}; known approaches: {', '.join(APPROACHES)}")
    if not flops > 0:
        raise ValueError(f"FLOP budget must be > 0, got {flops!r}")
    if approach in ("1", "2"):
        params_law, tokens_law = table_fits(approach)
        formula = f"{params_law.formula('N')}; {tokens_law.formula('D')}"
        return Optimum(approach, flops, params_law(flops), tokens_law(flops), formula)
    if approach in LOSS_LAWS:
        law = LOSS_LAWS[approach]
        params, tokens = law.optimum(flops)
        a, b = law.alpha, law.beta
        formula = f"N = G (C/6)^{b / (a + b):.3f}, D = (C/6)^{a / (a + b):.3f} / G"
        return Optimum(approach, flops, params, tokens, formula)
    params = KAPLAN_COEFFICIENT * (flops / PF_DAY) ** KAPLAN_EXPONENT
    return Optimum(approach, flops, params, flops / (6 * params), "N = 1.3e9 (C / PF-day)^0.73, D = C / 6N")


def all_optima(flops: float) -> list[Optimum]:
    return [compute_optimal(name, flops) for name in APPROACHES]
