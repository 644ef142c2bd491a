"""Load what a `ModelRef` points at: one model loader and one tokenizer loader for every command."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .layout import copy_tokenizer, has_tokenizer
from .refs import ModelRef, resolve, tokenizer_dir


def _ref(ref: ModelRef | str | Path) -> ModelRef:
    return ref if isinstance(ref, ModelRef) else resolve(ref)


# Names people write for a weights dtype (config `precision`, --dtype flags): one table for all.
TORCH_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
                "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}  # fmt: skip


def torch_dtype(name: str) -> torch.dtype:
    """torch.bfloat16 for "bf16" or "bfloat16" (and so on); ValueError naming the choices."""
    if name not in TORCH_DTYPES:
        raise ValueError(f"unknown dtype {name!r}; one of {sorted(TORCH_DTYPES)}")
    return TORCH_DTYPES[name]


def load_model(
    ref: ModelRef | str | Path,
    dtype: torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
) -> torch.nn.Module:
    """A plain BloomForCausalLM (adapters merged) in eval mode; dtype None keeps the stored one.

    Any other Hugging Face causal LM (LLaMA, Qwen2, GLM ...) comes behind the same call as an
    `hf_base.HFCausalLM`; its remote code runs only with trust_remote_code.
    """
    ref = _ref(ref)
    if ref.kind == "adapter":
        from .adapter import load_adapter, merge

        base = load_model(ref.base, dtype, trust_remote_code=trust_remote_code)
        inner = getattr(base, "hf", None)
        if inner is not None:  # a HF base: the adapter wraps the transformers model inside
            from .hf_base import HFCausalLM

            model = HFCausalLM(merge(load_adapter(inner, ref.weights)))
        else:
            model = merge(load_adapter(base, ref.weights))
    elif ref.kind == "hf" and not _our_bloom(ref.weights):
        from .hf_base import HFCausalLM, load_hf_base

        model = HFCausalLM(load_hf_base(ref.weights, dtype, trust_remote_code).model)
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


def load_tokenizer(ref: ModelRef | str | Path, trust_remote_code: bool = False):
    """The tokenizer of a model (ModelRef or model path) or of a tokenizer folder: our
    NumericUnigramTokenizer, or a HF base's own tokenizer (hf_base.HFTokenizer)."""
    from tokenizer import NumericUnigramTokenizer

    given = not isinstance(ref, ModelRef) and (
        has_tokenizer(Path(ref)) or Path(ref).is_file() or (Path(ref) / HF_TOKENIZER_CONFIG).is_file()
    )
    path = Path(ref) if given else tokenizer_dir(_ref(ref))
    folder = path if path.is_dir() else path.parent
    if _our_tokenizer(path):
        try:
            return NumericUnigramTokenizer.load(path)
        except ValueError:  # a Unigram tokenizer that is not ours (a HF base's)
            if not (folder / HF_TOKENIZER_CONFIG).is_file():
                raise
    from .hf_base import load_hf_tokenizer

    return load_hf_tokenizer(folder, trust_remote_code)


HF_TOKENIZER_CONFIG = "tokenizer_config.json"


def _our_bloom(path: Path) -> bool:
    from .hf_base import is_our_bloom

    return is_our_bloom(path)


def _our_tokenizer(path: Path) -> bool:
    """A tokenizer.json holding a Unigram model (ours); anything else is a HF base's."""
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        return not (path / HF_TOKENIZER_CONFIG).is_file()  # let our loader name the missing file
    try:
        return json.loads(file.read_text(encoding="utf-8"))["model"]["type"] == "Unigram"
    except (json.JSONDecodeError, KeyError, TypeError):
        return True  # our loader reports the bad file


def save_model(model: torch.nn.Module, out_dir: Path, tok_dir: Path, eos_id: int) -> Path:
    """HF folder (config.json + model.safetensors) plus the tokenizer files."""
    from .hf import save_hf_folder

    save_hf_folder(model, out_dir, eos_token_id=eos_id, pad_token_id=eos_id)
    copy_tokenizer(Path(tok_dir), Path(out_dir))
    return Path(out_dir)
