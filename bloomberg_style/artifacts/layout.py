"""What our folders look like on disk: the one module that knows the names.

    RUN/                          a pretraining run (launch/pretrain.py --run-dir RUN)
        config.yaml               the resolved run config
        tokenizer/                a copy of the tokenizer the run trained with
        checkpoints/
            step_00000100/        DeepSpeed state + trainer_state.json (+ rng_rank{r}.json)
            .tmp-step_00000200/   a checkpoint being written: never complete
            latest                text file naming the newest complete checkpoint
    HF folder                     config.json + model.safetensors (or .bin / shard index)
    adapter folder                adapter_config.json + adapter_model.safetensors, base named inside

A checkpoint is complete once `trainer_state.json` is in it (written last, then renamed
into place); its `best_tag` names the step with the best validation loss so far.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
LATEST_FILE = "latest"
HF_CONFIG = "config.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_JSON = "tokenizer.json"
# Every file a tokenizer folder may hold that transformers reads; copied along with a model.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
_TAG = re.compile(r"^step_(\d{8})$")


def tag_for_step(step: int) -> str:
    return f"step_{step:08d}"


def is_hf_folder(path: Path) -> bool:
    return (Path(path) / HF_CONFIG).is_file()


def is_adapter_folder(path: Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def has_tokenizer(path: Path) -> bool:
    return (Path(path) / TOKENIZER_JSON).is_file()


def complete_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if _TAG.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def read_trainer_state(path: Path) -> dict[str, Any]:
    return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))


def find_resume_checkpoint(ckpt_dir: Path, log=print) -> Path | None:
    """The checkpoint to resume from: `latest` if it is complete, else the newest complete one."""
    latest = ckpt_dir / LATEST_FILE
    candidates = complete_checkpoints(ckpt_dir)
    if latest.is_file():
        tag = latest.read_text(encoding="utf-8").strip()
        path = ckpt_dir / tag
        try:
            read_trainer_state(path)
            return path
        except (OSError, ValueError) as exc:
            log(f"checkpoint {path} named by {latest} is missing or damaged ({exc}); falling back")
    if candidates:
        for path in reversed(candidates):
            try:
                read_trainer_state(path)
                return path
            except (OSError, ValueError) as exc:
                log(f"checkpoint {path} is damaged ({exc}); trying an older one")
    return None


def resolve_checkpoint(path: str | Path, prefer_best: bool = True) -> Path:
    """A run folder, its checkpoints/ folder or one step folder -> the step folder to load.

    For a run or checkpoints folder that is the checkpoint with the best validation loss
    (the controller keeps it and names it in trainer_state.json), else the latest one.
    """
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    for folder in (path / CHECKPOINTS_DIR, path):
        if (folder / LATEST_FILE).is_file() or folder.name == CHECKPOINTS_DIR:
            found = find_resume_checkpoint(folder, log=lambda *_: None)
            if found is not None:
                best = read_trainer_state(found).get("best_tag") if prefer_best else None
                if best and (folder / best / STATE_FILE).is_file():
                    return folder / best
                return found
    raise FileNotFoundError(
        f"no complete checkpoint in {path} (expected a run folder, checkpoints/ or step_* folder)"
    )


def run_folder_of(step_dir: Path) -> Path | None:
    """RUN for RUN/checkpoints/step_*, if RUN looks like one of our run folders."""
    step = Path(step_dir)
    if step.parent.name != CHECKPOINTS_DIR:  # "." or a relative name: look at the real path
        step = step.resolve()
    if step.parent.name != CHECKPOINTS_DIR:
        return None
    run = step.parent.parent
    return run if (run / CONFIG_FILE).is_file() or (run / TOKENIZER_DIR).is_dir() else None


def adapter_base(path: str | Path) -> str:
    """The base model an adapter folder names (peft's base_model_name_or_path)."""
    config = json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{Path(path) / ADAPTER_CONFIG} does not name its base model")
    return base


def copy_tokenizer(src: Path, dst: Path) -> None:
    """Copy the tokenizer files of folder `src` that exist into `dst` (created)."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
