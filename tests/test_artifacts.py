"""resolve(path) on every folder kind, from files laid out as our runs write them (no model needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bloomberg_style.artifacts import ModelRef, model_kind, resolve, run_folder_of, tokenizer_dir
from bloomberg_style.artifacts.layout import find_resume_checkpoint, tag_for_step


def _checkpoint(ckpt_dir, step: int, **state) -> None:
    folder = ckpt_dir / tag_for_step(step)
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"step": step, **state}))


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "runs" / "demo"
    ckpt = run / "checkpoints"
    (run / "tokenizer").mkdir(parents=True)
    (run / "tokenizer" / "tokenizer.json").write_text("{}")
    (run / "config.yaml").write_text("data:\n  tokenizer: elsewhere/tok\n")
    _checkpoint(ckpt, 1)
    _checkpoint(ckpt, 2, best_tag=tag_for_step(1))
    (ckpt / ".tmp-step_00000003").mkdir()  # a save cut short: never complete
    (ckpt / "latest").write_text(tag_for_step(2) + "\n")
    return run


def test_a_run_folder_resolves_to_its_best_checkpoint(run) -> None:
    ref = resolve(run)
    assert isinstance(ref, ModelRef) and ref.kind == "checkpoint"
    assert ref.weights == run / "checkpoints" / tag_for_step(1) and ref.step == 1
    assert resolve(run, prefer_best=False).step == 2
    assert resolve(run / "checkpoints").weights == ref.weights
    assert ref.run_dir == run and ref.run_config == {"data": {"tokenizer": "elsewhere/tok"}}
    assert ref.tokenizer_candidates() == [run / "tokenizer", Path("elsewhere/tok")]  # as config.yaml names it
    assert tokenizer_dir(run) == run / "tokenizer"


def test_a_step_folder_knows_its_run_even_when_relative(run, monkeypatch) -> None:
    step = run / "checkpoints" / tag_for_step(2)
    assert resolve(step).weights == step and resolve(step).run_dir == run
    monkeypatch.chdir(step)
    assert run_folder_of(step.relative_to(step)).resolve() == run.resolve()  # "." -> the real path
    loose = run.parent / "loose" / tag_for_step(2)
    loose.parent.mkdir()
    os.rename(step, loose)
    assert run_folder_of(loose) is None  # not inside RUN/checkpoints/


def test_latest_naming_a_missing_checkpoint_falls_back(run) -> None:
    ckpt = run / "checkpoints"
    (ckpt / "latest").write_text(tag_for_step(9) + "\n")
    seen = []
    assert find_resume_checkpoint(ckpt, log=seen.append) == ckpt / tag_for_step(2)
    assert "missing or damaged" in seen[0]


def test_hf_and_adapter_folders(tmp_path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "tokenizer.json").write_text("{}")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(hf)}))
    assert model_kind(hf) == "hf" and resolve(hf).checkpoint is None and resolve(hf).step is None
    ref = resolve(adapter)
    assert ref.kind == "adapter" and ref.base == resolve(hf)
    assert tokenizer_dir(adapter) == hf  # an adapter uses its base's tokenizer
    (hf / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        tokenizer_dir(adapter)


def test_paths_that_hold_no_model_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="neither a Hugging Face folder.*no complete checkpoint"):
        resolve(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="does not name its base model"):
        resolve(bad)
