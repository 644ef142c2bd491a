"""Load what a `ModelRef` points at: one model loader and one tokenizer loader for every command."""

from __future__ import annotations

from pathlib import Path

import torch

from .layout import copy_tokenizer, has_tokenizer
from .refs import ModelRef, resolve, tokenizer_dir


def _ref(ref: ModelRef | str | Path) -> ModelRef:
    return ref if isinstance(ref, ModelRef) else resolve(ref)


def load_model(
    ref: ModelRef | str | Path,
    dtype: torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
) -> torch.nn.Module:
    """A plain BloomForCausalLM (adapters merged) in eval mode; dtype None keeps the stored one."""
    ref = _ref(ref)
    if ref.kind == "adapter":
        from .adapter import load_adapter, merge

        model = merge(load_adapter(load_model(ref.base), ref.weights))
    elif ref.kind == "hf":
        from .hf import load_hf_folder

        model = load_hf_folder(ref.weights)
    else:
        from .checkpoint import load_checkpoint_model

        model = load_checkpoint_model(ref.weights)
    if dtype is not None:
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_pretrained(path: str | Path, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Any model path -> our model in eval mode, weights in the dtype they were stored in."""
    return load_model(resolve(path), dtype=dtype)


def load_tokenizer(ref: ModelRef | str | Path):
    """The NumericUnigramTokenizer of a model (ModelRef or model path) or of a tokenizer folder."""
    from tokenizer import NumericUnigramTokenizer

    if not isinstance(ref, ModelRef) and (has_tokenizer(Path(ref)) or Path(ref).is_file()):
        return NumericUnigramTokenizer.load(ref)
    return NumericUnigramTokenizer.load(tokenizer_dir(_ref(ref)))


def save_model(model: torch.nn.Module, out_dir: Path, tok_dir: Path, eos_id: int) -> Path:
    """HF folder (config.json + model.safetensors) plus the tokenizer files."""
    from .hf import save_hf_folder

    save_hf_folder(model, out_dir, eos_token_id=eos_id, pad_token_id=eos_id)
    copy_tokenizer(Path(tok_dir), Path(out_dir))
    return Path(out_dir)
