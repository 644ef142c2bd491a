"""What an evaluation needs from one path: the model, its tokenizer, its run's config.

The path may be anything `bloomberg_style.artifacts.resolve` takes (a run folder, checkpoints/,
a step_* folder, a Hugging Face folder, an adapter folder); this module only adds the checks
an evaluation wants (the tokenizer fits the embedding) and the summary it reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bloomberg_style.artifacts import load_model, load_tokenizer, resolve
from bloomberg_style.artifacts.layout import is_hf_folder

__all__ = ["LoadedModel", "is_hf_folder", "load_for_evaluation"]


@dataclass
class LoadedModel:
    model: Any  # BloomForCausalLM, eval mode
    tokenizer: Any | None  # NumericUnigramTokenizer, or None when none was found
    source: Path
    kind: str  # "checkpoint", "hf" or "adapter"
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


def load_for_evaluation(
    path: str | Path,
    tokenizer: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    build: Callable[[Any], Any] | None = None,
) -> LoadedModel:
    """The model at `path` in eval mode on `device` (default: cuda if available), with its tokenizer.

    `build(ref)` makes the model instead of load_model (evaluation/sharded.py: ZeRO-3 partitions)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {path}: no such file or folder")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ref = resolve(path)
    loaded = LoadedModel(
        build(ref) if build is not None else load_model(ref, dtype=dtype, device=device),
        None,
        path,
        ref.kind,
        checkpoint=ref.checkpoint,
        step=ref.step,
        run_dir=ref.run_dir,
        run_config=ref.run_config,
    )
    candidates = ref.tokenizer_candidates()
    if tokenizer is not None:
        candidates = [Path(tokenizer)]
        if not (candidates[0] / "tokenizer.json").is_file() and not candidates[0].is_file():
            raise FileNotFoundError(f"--tokenizer {tokenizer}: no tokenizer.json there")
    for folder in candidates:
        if (folder / "tokenizer.json").is_file() or folder.is_file():
            loaded.tokenizer = load_tokenizer(folder)
            loaded.tokenizer_dir = folder
            break
    if loaded.tokenizer is not None and loaded.tokenizer.vocab_size > loaded.model.config.vocab_size:
        raise ValueError(
            f"tokenizer {loaded.tokenizer_dir} has {loaded.tokenizer.vocab_size} tokens but the model's "
            f"embedding has {loaded.model.config.vocab_size} rows: not the tokenizer this model was trained with"
        )
    return loaded
