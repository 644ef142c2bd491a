"""The 8-rank rehearsal of issue 13 at 4 ranks and a quick size: ZeRO-3 bf16 through launch/pretrain.py.

Pass mark: no rank ever held the whole model. Each rank's peak host RSS when the run
prints `memory after build:` (engine built, checkpoint loaded, before the first step) may
exceed the same launch of a very small model by less than half the full FP32 model's bytes;
a rank that built the model unsharded needs at least the whole FP32 model. The run then
trains, checkpoints and exports; resuming a 4-rank ZeRO-3 bf16 checkpoint is
tests/test_reshard_zero3.py's job.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, launch_env, run_launcher, tiny_run_config

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

    check_streaming_export(tmp_path / "runs" / "big", tmp_path / "hf", params)


# Export in its own process; RSS is read before (after every import) and at the peak after.
MEASURE = """
import sys
import torch, transformers, safetensors.torch, deepspeed.utils.zero_to_fp32  # imported before the baseline
from bloomberg_style.export.folder import export_hf
from bloomberg_style.training.memory_report import peak_memory_bytes  # VmHWM: this process's own peak
page = __import__("os").sysconf("SC_PAGE_SIZE")
with open("/proc/self/statm") as f:
    now = int(f.read().split()[1]) * page
export_hf(sys.argv[1], sys.argv[2], torch.bfloat16, max_shard_bytes=int(sys.argv[3]))
print("export RSS growth bytes", peak_memory_bytes() - now)
"""


def check_streaming_export(run, out, params: int) -> None:
    """Issue 13, point 5: bf16 shards with an index, peak RSS growth < 1.5 x the exported bytes
    (gathering the FP32 model first needs 2 x for the FP32 copy alone), transformers agrees."""
    transformers = pytest.importorskip("transformers")
    from bloomberg_style.artifacts import load_checkpoint_model, load_pretrained

    exported = 2 * params
    cmd = [sys.executable, "-c", MEASURE, str(run), str(out), str(exported // 20)]  # 20 shards
    done = subprocess.run(cmd, capture_output=True, text=True, env=launch_env(), cwd=str(REPO), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    growth = int(re.search(r"export RSS growth bytes (-?\d+)", done.stdout).group(1))
    assert growth < 1.5 * exported, (
        f"export grew RSS by {growth / 2**20:.0f} MiB; bf16 model {exported / 2**20:.0f} MiB"
    )

    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) >= 10 and all((out / f).is_file() for f in files)
    assert not (out / "model.safetensors").exists()
    ours = load_checkpoint_model(run)  # FP32 master weights, gathered whole (small here)
    exported_model = load_pretrained(out)
    for name, tensor in exported_model.state_dict().items():
        assert torch.equal(tensor, ours.state_dict()[name].to(torch.bfloat16)), name
    ids = torch.randint(0, ours.config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(0))
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits, exported_model.float()(ids), rtol=0, atol=1e-4)
