"""Find and load a model for SFT or chat, and write a stage's model.

A model path is one of:
    HF folder       config.json + model.safetensors (a stage output, export_hf, any BLOOM)
    adapter folder  adapter_config.json + adapter_model.safetensors (a LoRA stage without
                    merge); its base is named in adapter_config.json
    our run         a pretraining run folder, its checkpoints/ or one step_* folder
    HF base         any other HF causal-LM folder (LLaMA, Qwen2, GLM ...): sft/hf_base.py
The tokenizer comes from the folder itself (stage outputs carry a copy) or the run's
tokenizer/ copy, unless one is given.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .lora import ADAPTER_CONFIG

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def model_kind(path: str | Path) -> str:
    """ "hf", "adapter" or "checkpoint"; FileNotFoundError if the path holds none of them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if (path / "config.json").is_file():
        return "hf"
    if (path / ADAPTER_CONFIG).is_file():
        return "adapter"
    from bloomberg_style.export.checkpoint import resolve_checkpoint

    resolve_checkpoint(path)  # raises with a clear message when there is no complete checkpoint
    return "checkpoint"


def adapter_base(path: str | Path) -> str:
    config = json.loads((Path(path) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{Path(path) / ADAPTER_CONFIG} does not name its base model")
    return base


def tokenizer_dir(path: str | Path) -> Path:
    """Where the tokenizer of a model path lives."""
    path = Path(path)
    if (path / "tokenizer.json").is_file():
        return path
    kind = model_kind(path)
    if kind == "hf" and (path / "tokenizer_config.json").is_file():  # e.g. a sentencepiece-only base
        return path
    if kind == "adapter":
        return tokenizer_dir(adapter_base(path))
    if kind == "checkpoint":
        from bloomberg_style.export.checkpoint import resolve_checkpoint, run_folder_of

        run = run_folder_of(resolve_checkpoint(path))  # RUN/checkpoints/step_N -> RUN
        if run is not None and (run / "tokenizer" / "tokenizer.json").is_file():
            return run / "tokenizer"
    raise FileNotFoundError(f"no tokenizer.json in {path} (or its run folder); pass the tokenizer folder")


def load_model(
    path: str | Path, dtype: torch.dtype = torch.float32, trust_remote_code: bool = False
) -> torch.nn.Module:
    """A plain BloomForCausalLM (adapters merged) in eval mode; any other HF base behind
    the same call (hf_base.HFCausalLM)."""
    kind = model_kind(path)
    if kind == "adapter":
        from .lora import load_adapter, merge

        base = load_model(adapter_base(path), dtype, trust_remote_code)
        inner = getattr(base, "hf", None)
        if inner is not None:  # a HF base: the adapter wraps the transformers model inside
            from .hf_base import HFCausalLM

            return HFCausalLM(merge(load_adapter(inner, path))).to(dtype).eval()
        model = merge(load_adapter(base, path))
    elif kind == "hf" and not _our_bloom(path):
        from .hf_base import HFCausalLM, load_hf_base

        model = HFCausalLM(load_hf_base(path, dtype, trust_remote_code).model)
    else:  # a HF folder or one of our checkpoints
        from bloomberg_style.model import BloomForCausalLM

        model = BloomForCausalLM.from_pretrained(path)
    return model.to(dtype).eval()


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """Our NumericUnigramTokenizer, or a HF base's own tokenizer (hf_base.HFTokenizer)."""
    from tokenizer import NumericUnigramTokenizer

    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if _our_tokenizer(path):
        try:
            return NumericUnigramTokenizer.load(path)
        except ValueError:  # a Unigram tokenizer that is not ours (a HF base's)
            if not (folder / "tokenizer_config.json").is_file():
                raise
    from .hf_base import load_hf_tokenizer

    return load_hf_tokenizer(folder, trust_remote_code)


def _our_bloom(path: str | Path) -> bool:
    from .hf_base import is_our_bloom

    return is_our_bloom(path)


def _our_tokenizer(path: str | Path) -> bool:
    """A tokenizer.json holding a Unigram model (ours); anything else is a HF base's."""
    file = Path(path)
    if file.is_dir():
        file = file / "tokenizer.json"
    if not file.is_file():
        return not (Path(path) / "tokenizer_config.json").is_file()  # let our loader name the missing file
    try:
        return json.loads(file.read_text(encoding="utf-8"))["model"]["type"] == "Unigram"
    except (json.JSONDecodeError, KeyError, TypeError):
        return True  # our loader reports the bad file


def copy_tokenizer(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def save_model(model: torch.nn.Module, out_dir: Path, tok_dir: Path, eos_id: int) -> Path:
    """HF folder (config.json + model.safetensors) plus the tokenizer files."""
    from bloomberg_style.export.hf import save_hf_folder

    save_hf_folder(model, out_dir, eos_token_id=eos_id, pad_token_id=eos_id)
    copy_tokenizer(Path(tok_dir), Path(out_dir))
    return Path(out_dir)
