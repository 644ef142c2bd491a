"""ZeRO-3 builds the model partitioned from birth (deepspeed.zero.Init), with the paper's init.

The test launches this file on 2 gloo ranks with the deepspeed launcher; each rank builds
the model through training/engine_build.py, and rank 0 compares the gathered weights with
an unsharded build from the same seed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import launch_env

SHAPE = dict(vocab_size=512, hidden_size=64, num_layers=3, num_heads=4, max_seq_len=32)


def ds_config(stage: int, bf16: bool) -> dict:
    return {
        "train_batch_size": 2,
        "train_micro_batch_size_per_gpu": 1,
        "zero_optimization": {"stage": stage},
        "bf16": {"enabled": bf16},
    }


def _worker(out: Path) -> None:
    """Runs on every rank (see test_zero3_build_matches_unsharded)."""
    import deepspeed
    import torch

    from bloomberg_style.model import BloomForCausalLM, ModelConfig
    from bloomberg_style.training.engine_build import build_model
    from bloomberg_style.training.memory_report import peak_memory_bytes

    deepspeed.init_distributed(dist_backend="gloo")
    rank = torch.distributed.get_rank()
    cfg = ModelConfig.preset("tiny", **SHAPE)
    report: dict = {}
    for bf16 in (False, True):
        dtype = torch.bfloat16 if bf16 else torch.float32
        torch.manual_seed(1234)
        model = build_model(cfg, ds_config(3, bf16))
        params = dict(model.named_parameters())
        local = {n: p.ds_tensor.numel() for n, p in params.items()}
        full = {n: p.ds_numel for n, p in params.items()}
        with deepspeed.zero.GatheredParameters(list(params.values())):
            gathered = {n: p.detach().clone() for n, p in params.items()}
        torch.manual_seed(1234)
        plain = BloomForCausalLM(cfg)  # the unsharded build stages 0-2 use
        reference = {n: p.detach().to(dtype) for n, p in plain.named_parameters()}
        report[str(dtype)] = {
            "dtypes": sorted({str(t.dtype) for t in gathered.values()}),
            "identical": all(torch.equal(gathered[n], reference[n]) for n in reference),
            "names_match": sorted(gathered) == sorted(reference),
            "local_fraction": sum(local.values()) / sum(full.values()),
            "stats": {n: [t.float().mean().item(), t.float().std().item()] for n, t in gathered.items()},
            "reference_stats": {
                n: [t.float().mean().item(), t.float().std().item()] for n, t in reference.items()
            },
        }
    report["peak_rss"] = peak_memory_bytes()
    if rank == 0:
        out.write_text(json.dumps(report), encoding="utf-8")


@pytest.mark.slow
def test_zero3_build_matches_unsharded(tmp_path):
    from bloomberg_style.training.distributed import free_port

    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2",
           "--master_port", str(free_port()), __file__, str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=launch_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = json.loads(out.read_text())
    std = math.sqrt(1 / (3 * SHAPE["hidden_size"]))
    out_std = std / math.sqrt(2 * SHAPE["num_layers"])
    for dtype in ("torch.float32", "torch.bfloat16"):
        r = report[dtype]
        assert r["names_match"]
        assert r["dtypes"] == [dtype]  # built in the engine's dtype
        assert abs(r["local_fraction"] - 0.5) < 0.01  # each of 2 ranks holds half
        # Same RNG stream as the unsharded build: identical gathered weights, bit for bit.
        assert r["identical"]
        for name, (mean, sd) in r["stats"].items():
            ref_mean, ref_sd = r["reference_stats"][name]
            assert mean == pytest.approx(ref_mean, abs=1e-6) and sd == pytest.approx(ref_sd, abs=1e-6)
            if name.endswith(("self_attention.dense.weight", "dense_4h_to_h.weight")):
                assert sd == pytest.approx(out_std, rel=0.05), name
            elif name.endswith(("layernorm.weight", "ln_f.weight")):
                assert (mean, sd) == (1.0, 0.0), name
            elif name.endswith("bias"):
                assert (mean, sd) == (0.0, 0.0), name
            else:
                assert sd == pytest.approx(std, rel=0.05) and abs(mean) < 3 * std / 64, name


def test_zero3_buffer_sizes_follow_the_model():
    from bloomberg_style.training.deepspeed_config import zero3_buffer_sizes

    small = zero3_buffer_sizes(hidden=768, layers=30, vocab=8192)
    big = zero3_buffer_sizes(hidden=7680, layers=70, vocab=131072)
    assert small["reduce_bucket_size"] == 768**2 and big["reduce_bucket_size"] == 7680**2
    assert small["stage3_param_persistence_threshold"] == 7680
    # Live parameters: room for the embedding or two blocks, far below DeepSpeed's 1e9 for small models.
    assert small["stage3_max_live_parameters"] == 2 * (12 * 768**2 + 13 * 768)
    assert big["stage3_max_live_parameters"] == max(131072 * 7680, 2 * (12 * 7680**2 + 13 * 7680))
    assert small["stage3_max_live_parameters"] < 1e8


def test_zero3_config_carries_buffers_and_json_overrides(tmp_path):
    from bloomberg_style.config import RunConfig
    from bloomberg_style.training.deepspeed_config import build_deepspeed_config

    cfg = RunConfig.from_dict(
        {"model": {"preset": "tiny"}, "train": {"zero_stage": 3, "global_batch_size": 2}}
    )
    zero = build_deepspeed_config(cfg, 2, "cpu")["zero_optimization"]
    assert zero["reduce_bucket_size"] == 256**2
    extra = tmp_path / "ds.json"
    extra.write_text(json.dumps({"zero_optimization": {"reduce_bucket_size": 1000}}))
    cfg.train.deepspeed_json = str(extra)
    zero = build_deepspeed_config(cfg, 2, "cpu")["zero_optimization"]
    assert zero["reduce_bucket_size"] == 1000 and zero["stage3_prefetch_bucket_size"] == int(0.9 * 256**2)
    cfg.train.zero_stage, cfg.train.deepspeed_json = 2, ""  # stages 0-2 unchanged: no ZeRO-3 buffers
    assert "reduce_bucket_size" not in build_deepspeed_config(cfg, 2, "cpu")["zero_optimization"]


if __name__ == "__main__":
    _worker(Path(sys.argv[-1]))
