"""Find what an evaluation needs from one path: the model, its tokenizer, its run's config.

A path may be
    a run folder (runs/NAME)             newest complete checkpoint, RUN/tokenizer, RUN/config.yaml
    a checkpoints/ or step_* folder      that checkpoint; the run folder above it if there is one
    a Hugging Face BLOOM folder          config.json + weights; tokenizer.json if exported with one
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml


@dataclass
class LoadedModel:
    model: Any  # BloomForCausalLM, eval mode
    tokenizer: Any | None  # NumericUnigramTokenizer, or None when none was found
    source: Path
    kind: str  # "checkpoint" or "hf"
    checkpoint: Path | None = None  # the step folder loaded (kind == "checkpoint")
    step: int | None = None
    run_dir: Path | None = None
    run_config: dict[str, Any] | None = None  # RUN/config.yaml as written by pretraining
    tokenizer_dir: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "kind": self.kind,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "step": self.step,
            "tokenizer": str(self.tokenizer_dir) if self.tokenizer_dir else None,
            "parameters": self.model.num_parameters(),
            "max_seq_len": self.model.config.max_seq_len,
        }


def is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def load_for_evaluation(
    path: str | Path,
    tokenizer: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """The model at `path` in eval mode on `device` (default: cuda if available), with its tokenizer."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {path}: no such file or folder")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if is_hf_folder(path):
        from bloomberg_style.export.hf import load_hf_folder

        loaded = LoadedModel(load_hf_folder(path, dtype=dtype), None, path, "hf")
        candidates = [path]
    else:
        from bloomberg_style.export.checkpoint import load_checkpoint_model, resolve_checkpoint
        from bloomberg_style.training.checkpoint import read_trainer_state

        step_dir = resolve_checkpoint(path)
        run_dir = _run_dir_of(step_dir)
        config = None
        if run_dir is not None and (run_dir / "config.yaml").is_file():
            config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        loaded = LoadedModel(
            load_checkpoint_model(step_dir, dtype=dtype),
            None,
            path,
            "checkpoint",
            checkpoint=step_dir,
            step=int(read_trainer_state(step_dir).get("step", -1)),
            run_dir=run_dir,
            run_config=config,
        )
        candidates = [run_dir / "tokenizer"] if run_dir is not None else []
        if config and config.get("data", {}).get("tokenizer"):
            candidates.append(Path(config["data"]["tokenizer"]))
    loaded.model.to(device).eval()
    if tokenizer is not None:
        candidates = [Path(tokenizer)]
        if not (candidates[0] / "tokenizer.json").is_file() and not candidates[0].is_file():
            raise FileNotFoundError(f"--tokenizer {tokenizer}: no tokenizer.json there")
    for folder in candidates:
        if (folder / "tokenizer.json").is_file() or folder.is_file():
            from tokenizer import NumericUnigramTokenizer

            loaded.tokenizer = NumericUnigramTokenizer.load(folder)
            loaded.tokenizer_dir = folder
            break
    if loaded.tokenizer is not None and loaded.tokenizer.vocab_size > loaded.model.config.vocab_size:
        raise ValueError(
            f"tokenizer {loaded.tokenizer_dir} has {loaded.tokenizer.vocab_size} tokens but the model's "
            f"embedding has {loaded.model.config.vocab_size} rows: not the tokenizer this model was trained with"
        )
    return loaded


def _run_dir_of(step_dir: Path) -> Path | None:
    """RUN for RUN/checkpoints/step_N, if RUN looks like a run folder."""
    if step_dir.parent.name == "checkpoints":
        run = step_dir.parent.parent
        if (run / "config.yaml").is_file() or (run / "tokenizer").is_dir():
            return run
    return None
