"""deepspeed --num_gpus 2 on gloo: a ZeRO-3 SFT stage of our BLOOM, built partitioned, lowers the held-out loss."""

from __future__ import annotations

import json
import re

import pytest

from bloomberg_style.demo.instructions import finance_instructions
from tests.conftest import check, run_script, tiny_defaults, write_jsonl, write_recipe

pytestmark = pytest.mark.slow


def test_two_rank_sft_lowers_heldout_loss(tmp_path, sft_base):
    fin = write_jsonl(tmp_path / "fin.jsonl", finance_instructions(64, seed=11))
    out = tmp_path / "out"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        {
            "name": "two-rank",
            "base": str(sft_base),
            "output_dir": str(out),
            "template": "qa",
            "logging": {"wandb": "disabled", "progress": False},
            "defaults": tiny_defaults(
                epochs=2, zero_stage=3, eval={"max_records": 2, "max_new_tokens": 4, "compare_base": False}
            ),
            "stages": [{"name": "full", "data": {"train": [str(fin)], "format": "alpaca"}}],
        },
    )
    log = check(run_script("sft.py", ["--recipe", str(recipe)], ranks=2))
    assert "2 rank(s) x 4 x 1 accumulation" in log and "ZeRO 3" in log
    # Built inside zero.Init and filled tensor by tensor from rank 0: never whole on a rank.
    built = re.search(r"ZeRO-3: ([\d,]+) of ([\d,]+) parameters built partitioned", log)
    assert built and built.group(1) == built.group(2), log[-3000:]
    report = json.loads((out / "full" / "eval.json").read_text())
    assert report["after"]["loss"] < report["before"]["loss"] - 1.0, report
    # The exported FP32 model (gathered from both ranks' ZeRO-3 shards) scores what the engine scored.
    assert report["after"]["loss_exported_fp32"] == pytest.approx(report["after"]["loss"], rel=1e-4)
    assert (out / "full" / "COMPLETE").is_file() and (out / "full" / "model.safetensors").is_file()
