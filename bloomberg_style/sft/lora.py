"""LoRA on a frozen base through `peft` (Hu et al. 2021): W x + (alpha / r) B A x.

Only A [r, in] and B [out, r] train; B starts at zero, so the adapted model starts as
the base. On our BLOOM the targets are its linear layers, named as in HF BLOOM:
query_key_value, dense (attention output), dense_h_to_4h, dense_4h_to_h. On a HF base
they default to peft's choice for its family (transformers' model_type: q_proj and v_proj
for LLaMA/Qwen2/Mistral, query_key_value for ChatGLM/GPT-NeoX), and can be named.
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


# Attention projections by the names families use, for a model_type peft has no default for.
_ATTENTION_NAMES = ("query_key_value", "qkv_proj", "c_attn", "Wqkv", "q_proj", "v_proj")


def linear_names(model: torch.nn.Module) -> set[str]:
    """Last name component of every nn.Linear (what peft's target_modules match)."""
    return {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def default_lora_targets(model: torch.nn.Module) -> list[str]:
    """peft's default targets for the model's family; our BLOOM's four linear layers."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if not isinstance(model_type, str):  # our BloomForCausalLM (its config is ours, not transformers')
        from .recipe import LORA_TARGETS

        return list(LORA_TARGETS)
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    names = linear_names(model)
    chosen = [t for t in PEFT_DEFAULTS.get(model_type) or () if t in names]
    if not chosen:  # a family peft does not list (e.g. glm): its attention projections
        chosen = [t for t in _ATTENTION_NAMES if t in names]
        if "qkv_proj" in chosen or "query_key_value" in chosen:
            chosen = [t for t in chosen if t not in ("q_proj", "v_proj")]
    if not chosen:
        raise ValueError(
            f"no default LoRA targets for model type {model_type!r}; name them in lora.target_modules "
            f"(its linear layers: {sorted(names)})"
        )
    return chosen


def resolve_lora_targets(model: torch.nn.Module, requested: list[str] | None) -> list[str]:
    """`requested` checked against the model's linear layers; None, [] or ["auto"] = the default."""
    if not requested or list(requested) == ["auto"]:
        return default_lora_targets(model)
    names = linear_names(model)
    bad = [t for t in requested if t not in names]
    if bad:
        raise ValueError(
            f"lora.target_modules {bad} are not linear layers of this model; choose from {sorted(names)}"
        )
    return list(requested)


def apply_lora(model: torch.nn.Module, spec: LoraSpec, targets: list[str] | None = None):
    """Wrap `model` in a peft LoRA model: base frozen, adapters trainable.

    `targets` overrides spec.target_modules; ["auto"] picks the family's default. A HF base
    behind our call (hf_base.HFCausalLM) keeps that call: the transformers model inside it
    is wrapped, and the HFCausalLM is returned.
    """
    from peft import LoraConfig, get_peft_model

    from bloomberg_style.artifacts.hf_base import HFCausalLM

    if isinstance(model, HFCausalLM):
        model.hf = apply_lora(model.hf, spec, targets)
        return model

    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=resolve_lora_targets(model, targets if targets is not None else spec.target_modules),
        bias="none",
    )
    return get_peft_model(model, config)


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters, the tied embedding counted once (ZeRO-3 shards at full size)."""
    numel = lambda p: int(getattr(p, "ds_numel", p.numel()))  # noqa: E731  (a partitioned p is empty)
    trainable = sum(numel(p) for p in model.parameters() if p.requires_grad)
    total = sum(numel(p) for p in model.parameters())
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


def peft_of(model):
    """The peft model itself (inside an HFCausalLM for a HF base)."""
    from bloomberg_style.artifacts.hf_base import HFCausalLM

    return model.hf if isinstance(model, HFCausalLM) else model


def save_adapter(peft_model, out_dir: Path, base_path: str) -> None:
    """peft's adapter folder (adapter_config.json + adapter_model.safetensors), naming its base.

    Written with peft's state-dict helpers rather than `save_pretrained`, which consults
    the Hub about the base model; nothing here touches the network.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    peft_model = peft_of(peft_model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = peft_model.peft_config["default"]
    config.base_model_name_or_path = str(base_path)
    config.save_pretrained(str(out_dir))
    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    state = {k: v.detach().float().contiguous().cpu() for k, v in state.items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})


def export_merged_hf(peft_model, tokenizer, out_dir: Path) -> Path:
    """Merge the adapters of a LoRA-wrapped HF base and write a HF folder load_hf_base reads."""
    from bloomberg_style.artifacts.hf_base import save_hf_model

    return save_hf_model(merge(peft_of(peft_model)), tokenizer, out_dir)
