"""A real ZeRO-3 run on 2 gloo ranks -> launch/export_hf.py -> transformers loads, agrees, generates."""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch

from bloomberg_style.artifacts import load_checkpoint_model, load_pretrained, resolve_checkpoint
from bloomberg_style.export.folder import export_hf
from bloomberg_style.model import BloomForCausalLM
from tests.conftest import REPO, run_launcher, tiny_run_config

transformers = pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory, small_data) -> Path:
    """Two ranks, ZeRO stage 3 (parameters, gradients and optimizer state sharded), 3 steps."""
    tmp = tmp_path_factory.mktemp("zero3")
    cfg = tiny_run_config(
        tmp,
        small_data,
        name="z3",
        train={"steps": 3, "zero_stage": 3, "save_interval": 3, "eval_interval": 3, "eval_samples": 8},
    )
    run_launcher(["--config", str(cfg)], ranks=2)
    return tmp / "runs" / "z3"


def export_cli(*args: str) -> None:
    argv = sys.argv
    sys.argv = ["export_hf.py", *args]
    try:
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(REPO / "launch" / "export_hf.py"), run_name="__main__")
        assert exit_.value.code == 0
    finally:
        sys.argv = argv


def sample_ids(run: Path) -> torch.Tensor:
    """Real text through the run's own tokenizer."""
    from tokenizer import NumericUnigramTokenizer

    tok = NumericUnigramTokenizer.load(run / "tokenizer")
    text = "Revenue rose 4.2% to $1,234 million in the third quarter, the company said."
    return torch.tensor([tok.encode(text)])


def test_zero3_checkpoint_exports_and_transformers_agrees(zero3_run, tmp_path) -> None:
    step = resolve_checkpoint(zero3_run)
    assert len(list(step.glob("zero_pp_rank_*_optim_states.pt"))) == 2  # really sharded
    out = tmp_path / "hf"
    export_cli("--checkpoint", str(zero3_run), "--output", str(out))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name

    ours = load_checkpoint_model(zero3_run)
    ids = sample_ids(zero3_run)
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    config = json.loads((out / "config.json").read_text())
    assert config["eos_token_id"] == 0 and config["vocab_size"] == ours.config.vocab_size
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=ids).logits, ours(ids), rtol=0, atol=1e-5)

    # The tokenizer ships with it and encodes as ours does.
    auto_tok = transformers.AutoTokenizer.from_pretrained(out)
    text = "Revenue rose 4.2% to $1,234 million in the third quarter, the company said."
    assert auto_tok(text)["input_ids"] == ids[0].tolist()

    # Greedy decoding, token for token.
    prompt = ids[:, :8]
    theirs = hf.generate(prompt, max_new_tokens=16, do_sample=False, attention_mask=torch.ones_like(prompt))
    mine = ours.generate(prompt, max_new_tokens=16, eos_token_id=config["eos_token_id"])
    assert torch.equal(mine, theirs), (mine, theirs)


def test_gathered_weights_are_the_trained_ones(zero3_run) -> None:
    """The shards reassemble into a model that learned: lower loss than the same seed's fresh init."""
    model = load_checkpoint_model(zero3_run)
    ids = sample_ids(zero3_run)
    torch.manual_seed(1234)
    fresh = BloomForCausalLM(model.config).eval()
    with torch.no_grad():
        trained_loss = model(ids[:, :-1], labels=ids[:, 1:]).item()
        fresh_loss = fresh(ids[:, :-1], labels=ids[:, 1:]).item()
    assert trained_loss < fresh_loss - 0.05, (trained_loss, fresh_loss)
    assert model.lm_head.weight is model.transformer.word_embeddings.weight
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_from_pretrained_takes_run_checkpoints_step_or_hf_folder(zero3_run, tmp_path) -> None:
    step = resolve_checkpoint(zero3_run)
    ids = sample_ids(zero3_run)[:, :12]
    hf_dir = export_hf(step, tmp_path / "hf")
    with torch.no_grad():
        reference = load_checkpoint_model(zero3_run)(ids)
        for path in (zero3_run, zero3_run / "checkpoints", step, hf_dir):
            model = load_pretrained(path)
            assert not model.training
            torch.testing.assert_close(model(ids), reference, rtol=0, atol=1e-6, msg=str(path))


def test_bf16_export(zero3_run, tmp_path) -> None:
    from safetensors import safe_open

    out = tmp_path / "bf16"
    export_cli("--checkpoint", str(zero3_run), "--output", str(out), "--dtype", "bfloat16")
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("transformer.ln_f.weight").dtype == torch.bfloat16
        assert f.metadata()["source_checkpoint"].endswith(resolve_checkpoint(zero3_run).name)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    model = load_pretrained(out)
    assert model.transformer.ln_f.weight.dtype == torch.bfloat16


def test_export_errors_name_the_problem(zero3_run, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        export_hf(tmp_path, tmp_path / "out")
    loose = tmp_path / "loose" / "step"
    shutil.copytree(resolve_checkpoint(zero3_run), loose)
    with pytest.raises(FileNotFoundError, match="--tokenizer"):
        export_hf(loose, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # failed before writing anything
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        export_hf(zero3_run, tmp_path / "out", tokenizer=tmp_path)
