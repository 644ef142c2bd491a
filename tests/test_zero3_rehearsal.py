"""The 8-rank rehearsal of issue 13 at 4 ranks and a quick size: ZeRO-3 bf16 through launch/pretrain.py.

Pass mark: no rank ever held the whole model. Each rank's peak host RSS when the run
prints `memory after build:` (engine built, checkpoint loaded, before the first step) may
exceed the same launch of a very small model by less than half the full FP32 model's bytes;
a rank that built the model unsharded needs at least the whole FP32 model. The run then
trains, checkpoints, and resumes.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_launcher, tiny_run_config

pytestmark = pytest.mark.slow

TRAIN = {"steps": 2, "save_interval": 2, "eval_interval": 100, "micro_batch_size": 1,
         "global_batch_size": 4, "precision": "bf16", "zero_stage": 3}  # fmt: skip
# 6 layers of hidden 512 with the 1,024-token test vocabulary: about 19M parameters (76 MB in FP32).
MODEL = {"preset": "tiny", "overrides": {"hidden_size": 512, "num_layers": 6, "num_heads": 8}}


def peaks(output: str, label: str) -> list[float]:
    match = re.search(rf"memory {label}: peak host RSS MiB per rank \[([\d ]+)\]", output)
    assert match, f"no 'memory {label}:' line in:\n{output[-3000:]}"
    return [float(x) for x in match.group(1).split()]


def test_zero3_four_rank_rehearsal(tmp_path, small_data):
    base = tiny_run_config(tmp_path, small_data, name="base", train=TRAIN)
    base_out = run_launcher(["--config", str(base)], ranks=4, timeout=900)
    base_peak = peaks(base_out.stdout + base_out.stderr, "after build")

    big = tiny_run_config(tmp_path, small_data, name="big", train=TRAIN, model=MODEL)
    proc = run_launcher(["--config", str(big)], ranks=4, timeout=900)
    out = proc.stdout + proc.stderr
    assert "ZeRO-3 buffers (elements): reduce_bucket_size=262,144" in out  # hidden^2, printed at start
    params = int(re.search(r"model tiny: ([\d,]+) parameters", out).group(1).replace(",", ""))
    fp32_mib = 4 * params / 2**20
    build = peaks(out, "after build")
    assert len(build) == 4 and len(peaks(out, "after step 1")) == 4
    above = max(build) - max(base_peak)
    # Issue 13's mark at 8 ranks is 0.5 x; DeepSpeed's own ZeRO-3 states at build (bf16
    # partition, FP32 master, FP32 gradient partition: 10 bytes/param / ranks) are 0.63 x
    # the FP32 model at 4 ranks, so 4 ranks get 0.75 x, still far below the 1 x any
    # unsharded build needs.
    assert above < 0.75 * fp32_mib, f"{above:.0f} MiB above the small launch; FP32 model {fp32_mib:.0f} MiB"

    resumed = tiny_run_config(tmp_path, small_data, name="big", train={**TRAIN, "steps": 3}, model=MODEL)
    out = run_launcher(["--config", str(resumed)], ranks=4, timeout=900)
    assert "resumed from" in out.stdout + out.stderr
    assert len(peaks(out.stdout + out.stderr, "after build")) == 4
