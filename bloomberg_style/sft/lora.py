"""LoRA on a frozen base through `peft` (Hu et al. 2021): W x + (alpha / r) B A x.

Only A [r, in] and B [out, r] train; B starts at zero, so the adapted model starts as
the base. The targets are our model's linear layers, named as in HF BLOOM:
query_key_value, dense (attention output), dense_h_to_4h, dense_4h_to_h.
FinGPT's recipe shrinks 6.17B trainable parameters to 3.67M this way.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bloomberg_style.artifacts.adapter import load_adapter, merge
from bloomberg_style.artifacts.layout import ADAPTER_CONFIG, ADAPTER_WEIGHTS

from .recipe import LoraSpec

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "adapter_state",
    "apply_lora",
    "describe_trainable",
    "load_adapter",
    "load_adapter_state",
    "merge",
    "save_adapter",
    "trainable_parameters",
]


def apply_lora(model: torch.nn.Module, spec: LoraSpec):
    """Wrap `model` in a peft LoRA model: base frozen, adapters trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
    )
    return get_peft_model(model, config)


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters, the tied embedding counted once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def describe_trainable(model: torch.nn.Module) -> str:
    trainable, total = trainable_parameters(model)
    return f"trainable parameters: {trainable:,} of {total:,} ({100.0 * trainable / total:.3f}%)"


def adapter_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LoRA tensors of a (peft-wrapped) state dict."""
    return {k: v for k, v in state_dict.items() if ".lora_A." in k or ".lora_B." in k}


def load_adapter_state(peft_model, adapter: dict[str, torch.Tensor]) -> None:
    """Put saved adapter tensors into a freshly wrapped model; every adapter must match."""
    if not adapter:
        raise ValueError("no LoRA tensors found (keys with .lora_A. / .lora_B.)")
    expected = set(adapter_state(peft_model.state_dict()))
    missing, unexpected = sorted(expected - set(adapter)), sorted(set(adapter) - expected)
    if missing or unexpected:
        raise ValueError(
            f"adapter does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    peft_model.load_state_dict(adapter, strict=False)


def save_adapter(peft_model, out_dir: Path, base_path: str) -> None:
    """peft's adapter folder (adapter_config.json + adapter_model.safetensors), naming its base.

    Written with peft's state-dict helpers rather than `save_pretrained`, which consults
    the Hub about the base model; nothing here touches the network.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = peft_model.peft_config["default"]
    config.base_model_name_or_path = str(base_path)
    config.save_pretrained(str(out_dir))
    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    state = {k: v.detach().float().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})
