"""One of our checkpoints -> a Hugging Face BLOOM folder that `transformers` loads as is.

    python launch/export_hf.py --checkpoint runs/NAME --output hf/NAME [--dtype bfloat16]

The folder holds config.json, the weights (model.safetensors, or shards of at most
--max-shard-size with model.safetensors.index.json) and the tokenizer files copied from the
run (RUN/tokenizer/, or --tokenizer DIR), with eos/bos/pad ids taken from the tokenizer,
so `AutoTokenizer` and `AutoModelForCausalLM.from_pretrained(HF_DIR)` both work. The FP32
master weights are written tensor by tensor; from a ZeRO-3 checkpoint each tensor is
assembled from its ranks' slices as it is written, so a 50B export needs memory for about
one shard, not the model (artifacts/hf_shards.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from bloomberg_style.artifacts.checkpoint import checkpoint_model_config, open_checkpoint_weights
from bloomberg_style.artifacts.hf import LM_HEAD, hf_weight_shapes, strip_wrappers, write_hf_config
from bloomberg_style.artifacts.hf_shards import (
    DEFAULT_MAX_SHARD_BYTES,
    parse_size,
    remove_stale_weights,
    write_safetensors_shards,
)
from bloomberg_style.artifacts.layout import TOKENIZER_DIR, copy_tokenizer, resolve_checkpoint, run_folder_of
from bloomberg_style.artifacts.load import torch_dtype
from bloomberg_style.model import ModelConfig

DTYPE_NAMES = ("float32", "bfloat16", "float16")
# A ZeRO-3 checkpoint's memory-mapped files are reopened after this many bytes read (hf_shards.py):
# at 512 ranks a reopen parses 512 pickles, so about 200 of them for a 50B model's 200 GB.
REOPEN_BYTES = 2**30


@dataclass
class ExportOptions:
    """What `bloomberg-style export-hf` exports (its flags are these fields)."""

    checkpoint: str  # run folder, RUN/checkpoints or a step_* folder
    output: str  # folder to write (created)
    dtype: str | None = None  # one of DTYPE_NAMES; None: float32
    tokenizer: str | None = None  # None: RUN/tokenizer
    overwrite: bool = False  # write into an existing, non-empty output folder
    max_shard_size: str = "5GB"  # largest safetensors file (transformers' default); e.g. 2GB, 500MB

    def run(self) -> Path:
        return export_hf(self.checkpoint, self.output, torch_dtype(self.dtype) if self.dtype else None,
                         self.tokenizer, self.overwrite, parse_size(self.max_shard_size))  # fmt: skip


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


def check_output(output: str | Path, overwrite: bool) -> None:
    """Refuse to write into an existing file, or a non-empty folder unless `overwrite`."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--output {out} is an existing file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"--output {out} exists and is not empty: pass --overwrite to replace its files"
        )


def special_token_ids(tokenizer_dir: Path) -> dict[str, int]:
    """eos/bos token ids named in tokenizer_config.json, looked up in tokenizer.json; pad = eos."""
    from tokenizers import Tokenizer

    config_file = tokenizer_dir / "tokenizer_config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err})") from None
    try:
        backend = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    except Exception as err:  # tokenizers raises a bare Exception ("EOF while parsing ...")
        raise ValueError(f"{tokenizer_dir / 'tokenizer.json'}: not a readable tokenizer ({err})") from None
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
    overwrite: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write a Hugging Face BLOOM folder (weights, config, tokenizer) from one of our checkpoints.

    Streams tensor by tensor into safetensors shards (hf_shards.py): a ZeRO-3 checkpoint's
    FP32 model is never held whole. dtype None: FP32. An existing non-empty `output` is
    refused unless `overwrite` (someone's earlier export).
    """
    check_output(output, overwrite)
    step_dir = resolve_checkpoint(checkpoint)
    tokenizer_dir = find_tokenizer(step_dir, tokenizer)  # fail before reading shards
    special = special_token_ids(tokenizer_dir)
    cfg = ModelConfig.from_dict(checkpoint_model_config(step_dir))
    if "eos_token_id" in special and special["eos_token_id"] >= cfg.vocab_size:
        raise ValueError(
            f"tokenizer {tokenizer_dir} has eos id {special['eos_token_id']} >= the model's "
            f"vocab_size {cfg.vocab_size}: wrong tokenizer for this checkpoint?"
        )
    shapes = hf_weight_shapes(cfg)
    weights, lazy = open_checkpoint_weights(step_dir)
    names = {strip_wrappers(k) for k in weights} - {LM_HEAD}
    if names != set(shapes):
        raise ValueError(f"{step_dir}: missing tensors {sorted(set(shapes) - names)[:5]}, "
                         f"unexpected tensors {sorted(names - set(shapes))[:5]}")  # fmt: skip
    first = [weights]
    del weights

    def open_weights() -> dict:
        opened = first.pop() if first else open_checkpoint_weights(step_dir, quiet=True)[0]
        return {strip_wrappers(k): v for k, v in opened.items()}

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_weights(out)
    dtype = dtype or torch.float32
    reopen = min(max_shard_bytes, REOPEN_BYTES) if lazy else 0
    write_safetensors_shards(out, shapes, open_weights, dtype, max_shard_bytes,
                             {"source_checkpoint": str(step_dir.resolve())}, reopen)  # fmt: skip
    write_hf_config(cfg, out, dtype, **special)
    copy_tokenizer(tokenizer_dir, out)
    return out
