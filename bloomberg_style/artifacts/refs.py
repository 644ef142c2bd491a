"""Any model path -> a typed reference saying what it is and where its parts are.

A model path is one of:
    HF folder       config.json + model.safetensors (a stage output, export_hf, any BLOOM)
    adapter folder  adapter_config.json + adapter_model.safetensors (a LoRA stage without
                    merge); its base is named in adapter_config.json
    our run         a pretraining run folder, its checkpoints/ or one step_* folder
The tokenizer comes from the folder itself (stage outputs carry a copy), else the run's
tokenizer/ copy, else the tokenizer the run's config.yaml names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from .layout import (
    ADAPTER_CONFIG,
    CONFIG_FILE,
    TOKENIZER_DIR,
    adapter_base,
    has_tokenizer,
    is_adapter_folder,
    is_hf_folder,
    read_trainer_state,
    resolve_checkpoint,
    run_folder_of,
)

Kind = Literal["hf", "adapter", "checkpoint"]


@dataclass(frozen=True)
class ModelRef:
    """What `resolve(path)` found. `weights` is the folder the weights are read from."""

    kind: Kind
    path: Path  # as given
    weights: Path  # the HF folder, the adapter folder or the step_* folder
    run_dir: Path | None = None  # RUN for a checkpoint inside one of our run folders
    base: ModelRef | None = None  # the base model of an adapter

    @property
    def checkpoint(self) -> Path | None:
        return self.weights if self.kind == "checkpoint" else None

    @property
    def step(self) -> int | None:
        if self.kind != "checkpoint":
            return None
        return int(read_trainer_state(self.weights).get("step", -1))

    @cached_property
    def run_config(self) -> dict[str, Any] | None:
        """RUN/config.yaml as pretraining wrote it, if there is one."""
        if self.run_dir is None or not (self.run_dir / CONFIG_FILE).is_file():
            return None
        return yaml.safe_load((self.run_dir / CONFIG_FILE).read_text(encoding="utf-8"))

    def tokenizer_candidates(self) -> list[Path]:
        """Folders that may hold this model's tokenizer, best first."""
        if has_tokenizer(self.path):
            return [self.path]
        if self.kind == "adapter" and self.base is not None:
            return self.base.tokenizer_candidates()
        if self.kind == "hf":
            return [self.path]
        found = [self.run_dir / TOKENIZER_DIR] if self.run_dir is not None else []
        named = ((self.run_config or {}).get("data") or {}).get("tokenizer")
        if named:
            found.append(Path(named))
        return found

    @property
    def tokenizer_dir(self) -> Path | None:
        """The first candidate that holds a tokenizer.json, or None."""
        return next(
            (
                p
                for p in self.tokenizer_candidates()
                if has_tokenizer(p) or p.is_file() or (p / "tokenizer_config.json").is_file()
            ),
            None,
        )


def resolve(path: str | Path, prefer_best: bool = True) -> ModelRef:
    """What `path` holds; FileNotFoundError naming the path when it holds no model.

    For a run or checkpoints/ folder the checkpoint is the best one (prefer_best), else the latest.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if is_hf_folder(path):
        return ModelRef("hf", path, path)
    if is_adapter_folder(path):
        return ModelRef("adapter", path, path, base=resolve(adapter_base(path)))
    try:
        step_dir = resolve_checkpoint(path, prefer_best=prefer_best)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{path} is neither a Hugging Face folder (no config.json), an adapter folder "
            f"(no {ADAPTER_CONFIG}) nor one of our checkpoints ({err})"
        ) from err
    return ModelRef("checkpoint", path, step_dir, run_dir=run_folder_of(step_dir))


def model_kind(path: str | Path) -> Kind:
    """ "hf", "adapter" or "checkpoint"; FileNotFoundError if the path holds none of them."""
    return resolve(path).kind


def tokenizer_dir(path: str | Path | ModelRef) -> Path:
    """Where the tokenizer of a model path lives; FileNotFoundError if nowhere."""
    ref = path if isinstance(path, ModelRef) else resolve(path)
    found = ref.tokenizer_dir
    if found is None:
        raise FileNotFoundError(
            f"no tokenizer.json in {ref.path} (or its run folder); pass the tokenizer folder"
        )
    return found
