"""One of our checkpoints -> a Hugging Face BLOOM folder that `transformers` loads as is.

    python launch/export_hf.py --checkpoint runs/NAME --output hf/NAME [--dtype bfloat16]

The folder holds config.json, model.safetensors and the tokenizer files copied from the
run (RUN/tokenizer/, or --tokenizer DIR), with eos/bos/pad ids taken from the tokenizer,
so `AutoTokenizer` and `AutoModelForCausalLM.from_pretrained(HF_DIR)` both work. ZeRO 1-3
checkpoints are gathered into the FP32 master weights first (checkpoint.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from bloomberg_style.artifacts.checkpoint import load_checkpoint_model
from bloomberg_style.artifacts.hf import save_hf_folder
from bloomberg_style.artifacts.layout import TOKENIZER_DIR, copy_tokenizer, resolve_checkpoint, run_folder_of
from bloomberg_style.artifacts.load import torch_dtype

DTYPE_NAMES = ("float32", "bfloat16", "float16")


@dataclass
class ExportOptions:
    """What `bloomberg-style export-hf` exports (its flags are these fields)."""

    checkpoint: str  # run folder, RUN/checkpoints or a step_* folder
    output: str  # folder to write (created)
    dtype: str | None = None  # one of DTYPE_NAMES; None: float32
    tokenizer: str | None = None  # None: RUN/tokenizer

    def run(self) -> Path:
        return export_hf(self.checkpoint, self.output, torch_dtype(self.dtype) if self.dtype else None,
                         self.tokenizer)  # fmt: skip


def find_tokenizer(step_dir: Path, tokenizer: str | Path | None = None) -> Path:
    """The tokenizer folder to ship: --tokenizer, else the run's own copy at RUN/tokenizer/."""
    if tokenizer is not None:
        folder = Path(tokenizer)
    else:
        run = run_folder_of(step_dir)
        if run is None:
            raise FileNotFoundError(
                f"{step_dir} is not inside a run folder (RUN/checkpoints/step_*): pass --tokenizer DIR"
            )
        folder = run / TOKENIZER_DIR
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer.json in {folder} (pass --tokenizer DIR)")
    return folder


def special_token_ids(tokenizer_dir: Path) -> dict[str, int]:
    """eos/bos token ids named in tokenizer_config.json, looked up in tokenizer.json; pad = eos."""
    from tokenizers import Tokenizer

    config_file = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    backend = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    ids: dict[str, int] = {}
    for role in ("eos", "bos"):
        token = config.get(f"{role}_token")
        if isinstance(token, dict):  # {"content": ..., "special": ...} form
            token = token.get("content")
        if token is not None:
            token_id = backend.token_to_id(token)
            if token_id is None:
                raise ValueError(f"{config_file}: {role}_token {token!r} is not in tokenizer.json")
            ids[f"{role}_token_id"] = token_id
    if "eos_token_id" in ids:
        ids["pad_token_id"] = ids["eos_token_id"]  # no pad token: generate pads finished rows with eos
    return ids


def export_hf(
    checkpoint: str | Path,
    output: str | Path,
    dtype: torch.dtype | None = None,
    tokenizer: str | Path | None = None,
) -> Path:
    """Write a Hugging Face BLOOM folder (weights, config, tokenizer) from one of our checkpoints."""
    step_dir = resolve_checkpoint(checkpoint)
    tokenizer_dir = find_tokenizer(step_dir, tokenizer)  # fail before gathering shards
    special = special_token_ids(tokenizer_dir)
    model = load_checkpoint_model(step_dir)
    if "eos_token_id" in special and special["eos_token_id"] >= model.config.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer_dir} has eos id {special['eos_token_id']} >= the model's "
            f"vocab_size {model.config.vocab_size}: wrong tokenizer for this checkpoint?"
        )
    out = save_hf_folder(
        model, output, dtype=dtype, metadata={"source_checkpoint": str(step_dir.resolve())}, **special
    )
    copy_tokenizer(tokenizer_dir, out)
    return out
