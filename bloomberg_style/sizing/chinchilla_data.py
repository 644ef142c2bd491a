"""Hoffmann et al. 2022 (Chinchilla, arXiv 2203.15556): Tables 3 and A3 as printed.

Each row is (parameters, FLOPs, tokens): the paper's projection of the compute-optimal
training FLOPs and tokens for a model size. Table 3 holds Approach 1 (training-curve
envelope); Table A3 holds Approach 2 (IsoFLOP profiles) and Approach 3 (parametric loss).
BloombergGPT fit straight lines in log-log space to these rows (Approach 1 from Table 3,
Approach 2 from Table A3); `chinchilla.fit_power_law` does the same.

Typed from the paper (cross-checked against the arXiv LaTeX as rendered by ar5iv).
"""

from __future__ import annotations

# Table 3: Approach 1.
TABLE_3_APPROACH_1: tuple[tuple[float, float, float], ...] = (
    (400e6, 1.92e19, 8.0e9),
    (1e9, 1.21e20, 20.2e9),
    (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12),
    (280e9, 9.90e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12),
    (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
)

# Table A3, left columns: Approach 2.
TABLE_A3_APPROACH_2: tuple[tuple[float, float, float], ...] = (
    (400e6, 1.84e19, 7.7e9),
    (1e9, 1.20e20, 20.0e9),
    (10e9, 1.32e22, 219.5e9),
    (67e9, 6.88e23, 1.7e12),
    (175e9, 4.54e24, 4.3e12),
    (280e9, 1.18e25, 7.1e12),
    (520e9, 4.19e25, 13.4e12),
    (1e12, 1.59e26, 26.5e12),
    (10e12, 1.75e28, 292.0e12),
)

# Table A3, right columns: Approach 3. Shipped for completeness; the planner computes
# Approach 3 in closed form from the loss coefficients instead. The 175B row prints
# 1.26e+24 FLOPs, but 6 * 175e9 * 12.0e12 = 1.26e25 (the neighbours follow 6ND), so the
# printed exponent is a typo; it is kept as printed and `APPROACH_3_TYPO_ROW` marks it.
TABLE_A3_APPROACH_3: tuple[tuple[float, float, float], ...] = (
    (400e6, 2.21e19, 9.2e9),
    (1e9, 1.62e20, 27.1e9),
    (10e9, 2.46e22, 410.1e9),
    (67e9, 1.71e24, 4.1e12),
    (175e9, 1.26e24, 12.0e12),
    (280e9, 3.52e25, 20.1e12),
    (520e9, 1.36e26, 43.5e12),
    (1e12, 5.65e26, 94.1e12),
    (10e12, 8.55e28, 1425.5e12),
)
APPROACH_3_TYPO_ROW = 4
