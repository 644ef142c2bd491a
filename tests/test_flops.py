"""FLOPs per token, the paper's 102 TFLOP/s, MFU, and the size ladder's depth-width rule."""

from __future__ import annotations

import math
import runpy
import sys

import pytest
import torch

from bloomberg_style.model import BloomForCausalLM, ModelConfig
from bloomberg_style.sizing.flops import (
    PEAK_TFLOPS,
    achieved_tflops,
    detect_peak_tflops,
    flops_per_token,
    mfu,
    model_flops_utilization,
    peak_tflops,
)
from bloomberg_style.sizing.ladder import (
    LADDER_TARGETS,
    format_table,
    ladder_table,
    levine_width,
    rule_shape,
    shape_for_parameters,
)
from tests.conftest import REPO

PAPER = ModelConfig.preset("bloomberggpt-50b")
N_50B = 50_558_868_480
STEP_TOKENS = 2048 * 2048  # 2,048 sequences of 2,048 tokens
STEP_SECONDS, GPUS = 32.5, 512


# ---- FLOPs and the paper's 102 TFLOP/s ------------------------------------------------------


def test_paper_102_tflops_is_the_plain_8n_count() -> None:
    """8N FLOPs per token (forward, backward, recompute; no attention term) gives the paper's ~102."""
    fpt = flops_per_token(PAPER, N_50B, 2048, recompute=True, include_attention=False)
    assert fpt == 8 * N_50B
    tflops = achieved_tflops(fpt, STEP_TOKENS, STEP_SECONDS, GPUS)
    assert tflops == pytest.approx(101.95, abs=0.01)
    assert round(tflops) == 102


def test_paper_throughput_with_the_attention_term() -> None:
    """Counting attention (16*L*s*D with recompute) gives more than the paper quoted: 106.4."""
    attention = 16 * 70 * 2048 * 7680
    fpt = flops_per_token(PAPER, N_50B, 2048, recompute=True)
    assert fpt == 8 * N_50B + attention
    assert achieved_tflops(fpt, STEP_TOKENS, STEP_SECONDS, GPUS) == pytest.approx(106.39, abs=0.01)
    # Model FLOPs (no recompute): 6N + 12*L*s*D -> 79.8 TFLOP/s, an MFU of 25.6% on A100's 312.
    model = flops_per_token(PAPER, N_50B, 2048)
    assert model == 6 * N_50B + 12 * 70 * 2048 * 7680
    model_tflops = achieved_tflops(model, STEP_TOKENS, STEP_SECONDS, GPUS)
    assert model_tflops == pytest.approx(79.79, abs=0.01)
    assert mfu(model_tflops, peak_tflops("a100-40gb")) == pytest.approx(0.2557, abs=1e-4)
    tokens_per_s = STEP_TOKENS / STEP_SECONDS
    assert model_flops_utilization(PAPER, N_50B, 2048, tokens_per_s, 312.0, devices=GPUS) == pytest.approx(
        model_tflops / 312.0
    )


def test_flops_per_token_matches_a_count_of_the_matmuls() -> None:
    """Forward FLOPs of every matmul in one token's pass, counted from the shapes, times 3 (fwd+bwd)."""
    cfg = ModelConfig(vocab_size=1000, hidden_size=64, num_layers=3, num_heads=4)
    s, d, v = 128, cfg.hidden_size, cfg.vocab_size
    per_layer = 2 * (d * 3 * d + d * d + d * 4 * d + 4 * d * d) + 2 * (s * d) * 2  # linears + q.k, p.v
    forward = cfg.num_layers * per_layer + 2 * d * v  # + tied LM head
    bias_and_norm = cfg.num_parameters() - cfg.num_layers * 12 * d * d - v * d  # not matmul weights
    fpt = flops_per_token(cfg, cfg.num_parameters(), s)
    assert fpt - 3 * forward == 6 * bias_and_norm  # 2N counts biases/LayerNorms as if multiplied: tiny
    assert bias_and_norm / cfg.num_parameters() < 0.02


def test_flops_and_mfu_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="seq_len"):
        flops_per_token(PAPER, N_50B, 0)
    with pytest.raises(ValueError, match="devices"):
        achieved_tflops(1.0, 1.0, 1.0, 0)
    with pytest.raises(ValueError, match="peak_tflops"):
        mfu(100.0, 0.0)
    with pytest.raises(ValueError, match="known: a100-40gb"):
        peak_tflops("tpu-v9")


# ---- device peaks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, peak",
    [
        ("a100-40gb", 312.0),
        ("NVIDIA A100-SXM4-40GB", 312.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("h200", 989.0),
    ],
)
def test_peak_table(name: str, peak: float) -> None:
    assert peak_tflops(name) == peak


def test_peak_table_agrees_with_the_planner() -> None:
    """The sizing planner keeps its own accelerator table; the two must not drift apart."""
    accelerators = pytest.importorskip("bloomberg_style.sizing.accelerators")
    for name, acc in accelerators.ACCELERATORS.items():
        if name in PEAK_TFLOPS:
            assert PEAK_TFLOPS[name] == acc.peak_bf16_tflops, name


def test_detect_peak_on_this_machine() -> None:
    peak = detect_peak_tflops()
    assert peak is None if not torch.cuda.is_available() else peak is None or peak > 0


# ---- the ladder -----------------------------------------------------------------------------


def test_levine_rule_gives_the_paper_shape() -> None:
    assert levine_width(70) == pytest.approx(7510, abs=1)
    cfg = rule_shape(70)
    assert (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.head_dim) == (70, 7680, 40, 192)
    assert shape_for_parameters(50e9).to_dict() == {**PAPER.to_dict()}


@pytest.mark.parametrize("name", sorted(LADDER_TARGETS))
def test_ladder_presets_follow_the_rule(name: str) -> None:
    """Each rung is the rule's shape nearest its target size: hidden a multiple of 128 and of the head size."""
    cfg = ModelConfig.preset(name)
    assert cfg.to_dict() == shape_for_parameters(LADDER_TARGETS[name]).to_dict()
    assert cfg.vocab_size == 131072 and cfg.max_seq_len == 2048
    assert cfg.hidden_size % 128 == 0 and cfg.hidden_size % cfg.num_heads == 0
    assert cfg.head_dim in (64, 128, 192)
    assert abs(math.log(cfg.num_parameters() / LADDER_TARGETS[name])) < 0.15  # rungs of 128 wide
    assert abs(cfg.hidden_size - levine_width(cfg.num_layers)) <= math.lcm(128, cfg.head_dim) / 2


def test_ladder_agrees_with_the_planners_rule() -> None:
    shape = pytest.importorskip("bloomberg_style.sizing.shape")
    for layers in (1, 20, 41, 70, 100):
        assert shape.levine_width(layers) == pytest.approx(levine_width(layers), rel=1e-12)


@pytest.mark.slow
def test_ladder_sizes_grow_and_count_on_meta() -> None:
    rows = ladder_table(list(LADDER_TARGETS))
    params = [r.parameters for r in rows]
    assert params == sorted(params)
    assert rows[-1].parameters == N_50B and rows[-1].name == "bloomberggpt-50b"
    for row in rows:
        cfg = ModelConfig.preset(row.name)
        assert row.parameters == cfg.num_parameters()
        assert row.flops_per_token == flops_per_token(cfg, row.parameters, 2048)
        assert row.flops_per_token_recompute > row.flops_per_token
    text = format_table(rows, 2048)
    assert "50,558,868,480" in text and all(name in text for name in LADDER_TARGETS)


def test_ladder_cli(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["model_ladder.py", "--preset", "tiny", "--preset", "bloomberggpt-50b"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "launch" / "model_ladder.py"), run_name="__main__")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "50,558,868,480" in out and "316.57" in out  # 50B GFLOP/token, no recompute
    assert "422.09" in out  # with recompute
    monkeypatch.setattr(sys, "argv", ["model_ladder.py", "--preset", "gpt-9"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "launch" / "model_ladder.py"), run_name="__main__")
    assert exit_.value.code == 2 and "gpt-9" in capsys.readouterr().err


@pytest.mark.slow
def test_meta_device_50b_builds_without_memory() -> None:
    with torch.device("meta"):
        model = BloomForCausalLM(PAPER)
    assert model.num_parameters() == N_50B
    assert all(p.is_meta for p in model.parameters())
