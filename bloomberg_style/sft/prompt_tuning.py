"""P-tuning v2 (Liu et al. 2022) through peft: trained key/value prefixes in every layer.

DoctorGLM tuned ChatGLM-6B this way (ChatGLM's ptuning: PRE_SEQ_LEN=128, LR 2e-2). The base
is frozen; only the prefix encoder trains: num_virtual_tokens x layers x 2 x hidden values,
optionally through a two-layer MLP (prefix_projection, as the paper's reparameterisation).
peft calls the method prefix tuning; with a prefix in every layer it is P-tuning v2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PrefixSpec:
    num_virtual_tokens: int = 128  # ChatGLM/DoctorGLM's PRE_SEQ_LEN
    prefix_projection: bool = False  # reparameterise the prefix through an MLP
    encoder_hidden_size: int = 0  # that MLP's width (0 = the model's hidden size)

    def validate(self) -> PrefixSpec:
        if self.num_virtual_tokens < 1:
            raise ValueError(f"prefix.num_virtual_tokens must be >= 1, got {self.num_virtual_tokens}")
        if self.encoder_hidden_size < 0:
            raise ValueError(f"prefix.encoder_hidden_size must be >= 0, got {self.encoder_hidden_size}")
        return self


def apply_prefix_tuning(model: torch.nn.Module, spec: PrefixSpec):
    """Wrap a HF causal LM in a peft prefix-tuning model: base frozen, prefix trainable."""
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    spec.validate()
    if not isinstance(getattr(getattr(model, "config", None), "model_type", None), str):
        raise ValueError(
            "P-tuning v2 needs a Hugging Face base (it feeds prefixes as past key/values); "
            "our BLOOM takes full or LoRA tuning"
        )
    hidden = int(getattr(model.config, "hidden_size", 0) or 0)
    config = PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=spec.num_virtual_tokens,
        prefix_projection=spec.prefix_projection,
        encoder_hidden_size=spec.encoder_hidden_size or hidden,
    )
    return get_peft_model(model, config)


def prompt_parameters(peft_model) -> dict[str, torch.nn.Parameter]:
    """The prefix encoder's parameters (the only ones that train)."""
    return {n: p for n, p in peft_model.named_parameters() if "prompt_encoder" in n}
