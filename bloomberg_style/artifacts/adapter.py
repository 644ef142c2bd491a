"""Reading a LoRA adapter folder (peft's layout) onto its base model.

Training adapters (apply_lora, save_adapter) is SFT's job (sft/lora.py); loading one is
here because every command that takes a model path may be handed an adapter folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .layout import ADAPTER_WEIGHTS


def load_adapter(base_model: torch.nn.Module, adapter_dir: str | Path):
    """A base model with a saved adapter attached (not merged): LoRA, or a P-tuning v2 prefix."""
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config = PeftConfig.from_pretrained(str(adapter_dir))  # the subclass its peft_type names
    config.base_model_name_or_path = None  # the base is already loaded; peft would warn of a rename
    peft_model = get_peft_model(base_model, config)
    tensors = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    if config.is_prompt_learning:  # a P-tuning prefix: peft loads it into the prompt encoder itself
        if "prompt_embeddings" not in tensors:
            raise ValueError(f"{adapter_dir}: the prefix adapter has no prompt_embeddings tensor")
        set_peft_model_state_dict(peft_model, tensors)
        return peft_model
    result = set_peft_model_state_dict(peft_model, tensors)
    if result.unexpected_keys:
        raise ValueError(f"{adapter_dir}: adapter tensors the model lacks: {result.unexpected_keys[:3]}")
    missing = [k for k in result.missing_keys if ".lora_" in k]
    if missing:
        raise ValueError(f"{adapter_dir}: adapter lacks tensors {missing[:3]}")
    return peft_model


def merge(peft_model) -> torch.nn.Module:
    """W <- W + (alpha / r) B A in every target; returns the plain base model.

    A P-tuning prefix is no weight update and cannot be merged: that model comes back as is.
    """
    from .hf_base import HFCausalLM

    if isinstance(peft_model, HFCausalLM):  # a HF base behind our call: merge the model inside
        return HFCausalLM(merge(peft_model.hf))
    if (
        getattr(peft_model, "active_peft_config", None) is not None
        and peft_model.active_peft_config.is_prompt_learning
    ):
        return peft_model
    return peft_model.merge_and_unload()
