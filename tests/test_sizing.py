"""Scaling-law calculator: the BloombergGPT section 3.2 numbers, reproduced from first principles."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bloomberg_style.sizing import (
    EPOCH,
    HOFFMANN,
    PAPER_RAMP,
    SizingInputs,
    choose_size,
    compute_budget,
    compute_optimal,
    data_mix,
    estimate_memory,
    fit_power_law,
    format_report,
    get_accelerator,
    levine_width,
    parse_batch_ramp,
    plan_training,
    result_to_dict,
    run_sizing,
    search_shape,
    shape_for_layers,
    steps_for_tokens,
)
from bloomberg_style.sizing.chinchilla import PF_DAY, table_fits
from bloomberg_style.sizing.chinchilla_data import APPROACH_3_TYPO_ROW, TABLE_A3_APPROACH_3
from bloomberg_style.sizing.flops import flops_per_token
from bloomberg_style.sizing.memory import layer_activation_bytes

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "launch" / "scaling_law.py"
PAPER_C = 1.3e6 * 3600 * 100e12 * 0.75
PAPER_PARAMS = 50_558_868_480


def close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * abs(b)


# ---- budget ----------------------------------------------------------------------------------


def test_paper_budget_is_3_51e23():
    b = compute_budget(1.3e6, "a100-40gb", tflops=100, recompute_factor=0.75, buffer=0.3)
    assert close(b.flops, 3.51e23, 1e-12)
    assert close(b.usable_flops, 0.7 * 3.51e23, 1e-12)
    # No rate given: the paper's 100/312 of peak, i.e. 100 TFLOP/s on an A100.
    assert close(compute_budget(1.3e6).flops, 3.51e23, 1e-12)
    # MFU counts model FLOPs only: hardware = mfu * peak / recompute factor.
    m = compute_budget(1.3e6, "a100-40gb", mfu=0.24)
    assert close(m.hardware_tflops, 0.24 * 312 / 0.75, 1e-12) and close(m.mfu, 0.24, 1e-12)
    assert close(compute_budget(10, "h100-sxm", hfu=0.5).hardware_tflops, 494.5, 1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gpu_hours=0), "gpu_hours must be > 0"),
        (dict(gpu_hours=-1e6), "gpu_hours must be > 0"),
        (dict(gpu_hours=float("inf")), "finite"),
        (dict(gpu_hours=1e6, gpu="v100"), "known GPUs: a100-40gb, a100-80gb, h100-sxm"),
        (dict(gpu_hours=1e6, buffer=1.0), "buffer"),
        (dict(gpu_hours=1e6, recompute_factor=0), "recompute_factor"),
        (dict(gpu_hours=1e6, tflops=400), "above the a100-40gb dense BF16 peak of 312"),
        (dict(gpu_hours=1e6, tflops=100, mfu=0.3), "at most one of"),
        (dict(gpu_hours=1e6, tflops=-3), "tflops must be > 0"),
    ],
)
def test_bad_budget(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_budget(**kwargs)


# ---- Chinchilla --------------------------------------------------------------------------------


def test_fit_recovers_an_exact_power_law():
    law = fit_power_law([1e20, 1e22, 1e24], [2 * (c**0.3) for c in (1e20, 1e22, 1e24)])
    assert close(law.slope, 0.3, 1e-12) and close(law.intercept, math.log10(2), 1e-12)
    with pytest.raises(ValueError):
        fit_power_law([1e20], [1.0])


def test_table_fits_reproduce_bloomberggpt_coefficients():
    (n1, d1), (n2, d2) = table_fits("1"), table_fits("2")
    got = [(round(law.slope, 3), round(law.intercept, 3)) for law in (n1, d1, n2, d2)]
    assert got == [(0.498, -1.004), (0.502, 0.229), (0.490, -0.839), (0.510, 0.062)]


def test_paper_compute_optimal_sizes():
    a1, a2 = compute_optimal("1", PAPER_C), compute_optimal("2", PAPER_C)
    assert close(a1.params, 52.99e9, 0.005) and close(a1.tokens, 1111e9, 0.005)
    assert close(a2.params, 49.75e9, 0.005) and close(a2.tokens, 1176e9, 0.005)
    # The printed digits themselves: the paper used the unrounded fits.
    assert (round(a1.params / 1e9, 2), round(a1.tokens / 1e9)) == (52.99, 1111)
    assert (round(a2.params / 1e9, 2), round(a2.tokens / 1e9)) == (49.75, 1176)


@pytest.mark.parametrize("law", [HOFFMANN, EPOCH])
def test_approach_3_closed_form_is_the_iso_flop_minimum(law):
    n, d = law.optimum(PAPER_C)
    assert close(6 * n * d, PAPER_C, 1e-12)
    best = law.loss(n, d)
    for scale in (0.8, 0.95, 1.05, 1.25):
        assert law.loss(n * scale, d / scale) > best


def test_approach_3_values_and_table_a3_slope():
    h, e = compute_optimal("3-hoffmann", PAPER_C), compute_optimal("3-epoch", PAPER_C)
    assert close(h.params, 25.74e9, 0.01) and close(e.params, 56.05e9, 0.01)
    assert 15 < e.tokens / e.params < 25  # Epoch's refit restores Chinchilla's ~20 tokens/parameter
    # Chinchilla Table 2: approach 3 has N ~ C^0.46, D ~ C^0.54; Table A3's approach-3 column agrees.
    rows = [r for i, r in enumerate(TABLE_A3_APPROACH_3) if i != APPROACH_3_TYPO_ROW]
    assert round(fit_power_law([c for _, c, _ in rows], [n for n, _, _ in rows]).slope, 2) == 0.46
    assert round(fit_power_law([c for _, c, _ in rows], [d for _, _, d in rows]).slope, 2) == 0.54


def test_kaplan_constant():
    assert close(compute_optimal("kaplan", PF_DAY).params, 1.3e9, 1e-12)
    assert close(compute_optimal("kaplan", 10 * PF_DAY).params, 1.3e9 * 10**0.73, 1e-12)
    with pytest.raises(ValueError, match="known approaches"):
        compute_optimal("4", PAPER_C)


# ---- data limit ----------------------------------------------------------------------------------


def test_paper_data_mix():
    mix = data_mix({"financial": 363e9, "public": 345e9}, {"financial": 0.5})
    assert mix.total == 708e9
    take = mix.take(708e9)
    assert close(take["financial"], 363e9, 1e-12) and close(take["financial"] / 708e9, 0.513, 0.001)


def test_min_share_and_epochs_limit_the_mix():
    short = data_mix({"domain": 100e9, "web": 500e9}, {"domain": 0.5})
    assert close(short.total, 200e9, 1e-12)  # domain must be half: 100B domain + 100B web
    assert all(close(v, 100e9, 1e-12) for v in short.take(200e9).values())
    twice = data_mix({"domain": 100e9, "web": 500e9}, {"domain": 0.5}, {"domain": 2})
    assert close(twice.total, 400e9, 1e-12)
    take = twice.take(300e9)  # below the maximum the shares still hold
    assert take["domain"] >= 150e9 - 1 and close(sum(take.values()), 300e9, 1e-12)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ({"financial": 0, "public": 1e9}, {"financial": 0.5}),
            "not enough data for any model: source 'financial'",
        ),
        (({"a": 0}, {}), "not enough data for any model: all sources"),
        (({"a": 1e9}, {"b": 0.5}), "unknown data source 'b'"),
        (({"a": 1e9, "b": 1e9}, {"a": 0.6, "b": 0.6}), "add up to 1.200 > 1"),
        (({"a": -1.0}, {}), r"tokens\[a\] must be >= 0"),
        (({}, {}), "no data sources"),
    ],
)
def test_bad_data(args, message):
    with pytest.raises(ValueError, match=message):
        data_mix(*args)


def test_paper_choice_is_data_limited_and_near_50b():
    c = choose_size(PAPER_C, 0.7 * PAPER_C, 708e9, "1")
    assert c.data_limited
    assert close(c.max_params, 0.7 * PAPER_C / (6 * 708e9), 1e-12)  # 57.8B sees all 708B within 70%
    assert close(c.params, 52.99e9, 0.005)  # capped at the compute-optimal size for the whole budget
    assert close(choose_size(PAPER_C, 0.7 * PAPER_C, 708e9, "2").params, 49.75e9, 0.005)
    largest = next(o for o in c.options if o.name.startswith("largest"))
    assert close(largest.share_of_budget, 0.7, 1e-9) and largest.loss_hoffmann < c.options[-1].loss_hoffmann


def test_plenty_of_data_gives_the_compute_optimal_pair():
    c = choose_size(PAPER_C, 0.7 * PAPER_C, 1e14, "1")
    held = compute_optimal("1", 0.7 * PAPER_C)
    assert not c.data_limited and close(c.params, held.params, 1e-12)


# ---- shape ---------------------------------------------------------------------------------------


def test_paper_shape():
    assert round(levine_width(70)) == 7510
    s = shape_for_layers(70)
    assert (s.hidden, s.heads, s.head_dim, s.ffn) == (7680, 40, 192, 30720)
    assert s.params == PAPER_PARAMS
    from bloomberg_style.model import ModelConfig

    assert ModelConfig.preset("bloomberggpt-50b").num_parameters() == s.params
    fixed_heads = shape_for_layers(70, heads=40)
    assert (fixed_heads.hidden, fixed_heads.heads) == (7680, 40)
    for layers in (1, 12, 40, 70, 90):
        t = shape_for_layers(layers)
        assert t.hidden % 128 == 0 and t.hidden % t.heads == 0 and t.head_dim == 192


def test_shape_params_equal_the_built_model():
    from bloomberg_style.model import BloomForCausalLM

    s = shape_for_layers(3, vocab_size=1000, head_dim=64)  # small enough to build for real on CPU
    model = BloomForCausalLM(s.model_config())
    assert model.num_parameters() == s.params
    assert sum(p.numel() for p in model.parameters()) == s.params


def test_layer_search():
    assert search_shape(52.99e9).layers == 70
    assert search_shape(49.75e9).layers == 70
    assert search_shape(57.8e9, max_params=57.8e9).params <= 57.8e9
    small = search_shape(1.3e9, vocab_size=50257, head_dim=128)
    assert close(small.params, 1.3e9, 0.2)
    with pytest.raises(ValueError, match="smallest"):
        search_shape(1e6, max_params=1e6)


# ---- plan ----------------------------------------------------------------------------------------


def test_paper_plan_569b_tokens_and_53_days():
    s = shape_for_layers(70)
    plan = plan_training(s, 139_200, gpus=512, tflops=102, ramp=PAPER_RAMP)
    assert close(plan.tokens, 569e9, 0.001)
    # 8N hardware FLOPs per token: the paper's count (6N model FLOPs / 0.75 recompute, attention left out).
    assert close(plan.flops_per_token, 8 * PAPER_PARAMS, 1e-12)
    assert plan.flops_per_token == flops_per_token(
        s.model_config(), s.params, 2048, recompute=True, include_attention=False
    )
    assert close(plan.phases[1].seconds_per_step, 32.5, 0.002)  # the paper's measured 32.5 s per step
    # Compute time for the 139,200 steps: 51.0 days, ~4% under the paper's ~53 days of wall clock
    # (which covered the 146,000 steps it trained and the rolled-back ones).
    assert close(plan.days, 51.0, 0.005) and close(plan.days, 53, 0.05)
    assert close(plan_training(s, 146_000, gpus=512, tflops=102).days, 53, 0.02)
    # The paper's total 2.36e23 FLOPs = 139,200 steps x 32.5 s x 512 GPUs x 102 TFLOP/s.
    assert close(139_200 * plan.phases[1].seconds_per_step * 512 * 102e12, 2.36e23, 0.005)


def test_steps_for_tokens_and_ramp_parsing():
    assert steps_for_tokens(7200 * 1024 * 2048, PAPER_RAMP, 2048) == 7200
    assert steps_for_tokens(7200 * 1024 * 2048 + 1, PAPER_RAMP, 2048) == 7201
    paper_tokens = 7200 * 1024 * 2048 + 132_000 * 2048 * 2048  # 568,747,622,400 at step 139,200
    assert steps_for_tokens(paper_tokens, PAPER_RAMP, 2048) == 139_200
    assert steps_for_tokens(paper_tokens + 1, PAPER_RAMP, 2048) == 139_201
    assert parse_batch_ramp("1024:7200,2048") == PAPER_RAMP
    for bad in ("", "1024,2048", "1024:7200,2048:10", "x:1,2", "0:5,1"):
        with pytest.raises(ValueError, match="batch ramp"):
            parse_batch_ramp(bad)


# ---- memory --------------------------------------------------------------------------------------


def test_memory_50b_on_a100_40gb():
    s, gpu = shape_for_layers(70), get_accelerator("a100-40gb")
    sharded = estimate_memory(s, gpu, zero_stage=3, shard_group=128, micro_batch=2, checkpointing=True)
    assert sharded.fits
    assert close(sharded.params + sharded.grads + sharded.optimizer, 16 * PAPER_PARAMS / 128, 1e-12)
    assert not estimate_memory(s, gpu, zero_stage=0, checkpointing=True).fits  # 16 bytes/param = 809 GB
    assert not estimate_memory(s, gpu, zero_stage=3, shard_group=128, checkpointing=False).fits
    assert not estimate_memory(s, gpu, zero_stage=2, shard_group=128, checkpointing=True).fits
    assert layer_activation_bytes(2048, 1, 7680, 40) == 34 * 2048 * 7680 + 5 * 40 * 2048**2


# ---- whole run, report, CLI ----------------------------------------------------------------------


def test_run_sizing_paper_defaults():
    r = run_sizing()
    assert (r.shape.layers, r.shape.hidden, r.shape.heads, r.shape.params) == (70, 7680, 40, PAPER_PARAMS)
    assert r.choice.data_limited and r.memory.fits and not r.notes
    assert close(r.shape_option.share_of_budget, 0.612, 0.01)  # leaves more than the 30% buffer
    text = format_report(r)
    for needle in ("3.510e+23", "52.99B", "1,111B", "49.75B", "1,176B", "50,558,868,480", "7,510", "fits"):
        assert needle in text
    json.dumps(result_to_dict(r))
    forced = run_sizing(SizingInputs(layers=72))
    assert forced.notes and "above the" in forced.notes[0]


def test_cli_default_prints_the_paper_table(capsys):
    import runpy

    module = runpy.run_path(str(CLI), run_name="scaling_law")
    assert module["main"]([]) == 0
    out = capsys.readouterr().out
    assert "52.99B" in out and "50,558,868,480" in out and "Memory per GPU" in out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_json_and_plot(tmp_path):
    png = tmp_path / "fig" / "sizing.png"
    done = run_cli("--steps", "139200", "--plan-tflops", "102", "--json", "--plot", str(png))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["shape"]["params"] == PAPER_PARAMS
    assert close(data["plan"]["tokens"], 569e9, 0.001)
    assert close(data["budget"]["flops"], 3.51e23, 1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpu-hours", "0"], "gpu_hours must be > 0"),
        (["--gpu-hours=-1e6"], "gpu_hours must be > 0"),
        (["--gpu", "v100"], "unknown GPU 'v100'; known GPUs: a100-40gb"),
        (
            ["--tokens", "financial=0", "--tokens", "public=1e9", "--min-share", "financial=0.5"],
            "not enough data for any model",
        ),
        (["--tokens", "tiny=1e4"], "not enough data for any model"),
        (["--gpu-hours", "0.001"], "budget too small for any model"),
        (["--tokens", "oops"], "--tokens expects NAME=NUMBER"),
        (["--tflops", "500"], "above the a100-40gb dense BF16 peak"),
    ],
)
def test_cli_bad_input(args, message):
    done = run_cli(*args)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
