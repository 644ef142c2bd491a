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
    base_out = run_launcher(["--config", str(base)], ranks=4)
    base_peak = peaks(base_out.stdout + base_out.stderr, "after build")

    big = tiny_run_config(tmp_path, small_data, name="big", train=TRAIN, model=MODEL)
    proc = run_launcher(["--config", str(big)], ranks=4)
    out = proc.stdout + proc.stderr
    assert "ZeRO-3 buffers (elements): reduce_bucket_size=262,144" in out  # hidden^2, printed at start
    params = int(re.search(r"model tiny: ([\d,]+) parameters", out).group(1).replace(",", ""))
    fp32_mib = 4 * params / 2**20
    build = peaks(out, "after build")
    assert len(build) == 4 and len(peaks(out, "after step 1")) == 4
    above = max(build) - max(base_peak)
    assert above < 0.5 * fp32_mib, f"{above:.0f} MiB above the small launch; FP32 model {fp32_mib:.0f} MiB"

    resumed = tiny_run_config(tmp_path, small_data, name="big", train={**TRAIN, "steps": 3}, model=MODEL)
    out = run_launcher(["--config", str(resumed)], ranks=4)
    assert "resumed from" in out.stdout + out.stderr
    assert len(peaks(out.stdout + out.stderr, "after build")) == 4
