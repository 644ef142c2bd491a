"""Shared pieces of the SFT tests (a tiny base model, recipes, the launcher) and the demo data test."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests._fixtures import demo_tokenizer, demo_tokenizer_dir  # noqa: F401 (pytest fixtures)
from tests.conftest import run_script  # noqa: F401 (re-exported to the SFT tests)

REPO = Path(__file__).resolve().parents[1]
TINY = dict(vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, max_seq_len=256)


def make_tiny_base(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random tiny BloomForCausalLM saved as a HF folder with the tokenizer beside it."""
    import torch

    from bloomberg_style.artifacts.hf import save_hf_folder
    from bloomberg_style.model import BloomForCausalLM, ModelConfig

    torch.manual_seed(seed)
    model = BloomForCausalLM(ModelConfig(**TINY))
    save_hf_folder(model, out, eos_token_id=0)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(Path(tokenizer_dir) / name, out / name)
    return out


@pytest.fixture(scope="session")
def sft_base(tmp_path_factory, demo_tokenizer_dir) -> Path:  # noqa: F811
    return make_tiny_base(tmp_path_factory.mktemp("sft_base") / "base", demo_tokenizer_dir)


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def tiny_defaults(**changes) -> dict:
    """Stage defaults for tiny CPU runs (1 thread per rank, no wandb, short generations)."""
    base = {
        "epochs": 2,
        "lr": 3.0e-3,
        "warmup_ratio": 0.1,
        "global_batch_size": 8,
        "micro_batch_size": 4,
        "precision": "fp32",
        "zero_stage": 2,
        "log_interval": 1,
        "save_interval": 4,
        "torch_threads": 1,
        "data": {"max_length": 192, "valid_fraction": 0.15},
        "eval": {"max_records": 3, "max_new_tokens": 8},
    }
    return {**base, **changes}


def check(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return out


# ---- the built-in demo instruction set ----------------------------------------------------


def test_demo_data_is_deterministic_and_parses(tmp_path):
    from bloomberg_style.demo.instructions import FILES, finance_chat, finance_instructions, write_demo_data
    from bloomberg_style.sft.formats import load_examples

    assert finance_instructions(30, seed=5) == finance_instructions(30, seed=5)
    assert finance_instructions(30, seed=5) != finance_instructions(30, seed=6)
    paths = write_demo_data(tmp_path / "d", records=25, seed=1)
    assert [p.name for p in paths] == list(FILES)
    first = [p.read_bytes() for p in paths]
    write_demo_data(tmp_path / "d2", records=25, seed=1)
    assert [(tmp_path / "d2" / n).read_bytes() for n in FILES] == first

    alpaca, report = load_examples([str(paths[0])], "alpaca")
    assert len(alpaca) == 25 and report.malformed == 0
    kinds = {e.turns[0].content.split()[0] for e in alpaca}
    assert len(kinds) >= 4  # several task families, not one template
    qa, _ = load_examples([str(paths[1])], "qa", {"question": "patient", "answer": "doctor"})
    assert all(e.turns[0].content.startswith("Hi doctor") for e in qa)
    chat, report = load_examples([str(paths[2])], "auto")
    assert report.formats == {str(paths[2]): "conversation"}
    assert all(len(e.turns) == 4 for e in chat)
    # Answers follow from the question: the worked example uses the numbers it states.
    example = finance_chat(1, seed=3)[0]["messages"]
    assert example[1]["content"].startswith("The ")
