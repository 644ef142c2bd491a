"""QLoRA's base (Dettmers et al. 2023): the frozen base in 4-bit NormalFloat, double-quantised.

Weights are stored as NF4 with a second quantisation of the block scales; matmuls run in
the compute dtype (bf16). Only bitsandbytes on a CUDA device implements it, so the check
below runs before any weight is read, and CPU installs never need bitsandbytes.
"""

from __future__ import annotations

import importlib.util

import torch


class QLoraUnavailable(RuntimeError):
    """QLoRA asked for where it cannot run."""


def check_qlora_supported(where: str = "qlora") -> None:
    if not torch.cuda.is_available():
        raise QLoraUnavailable(
            f"{where}: QLoRA loads the base in 4-bit with bitsandbytes, which needs a CUDA GPU; "
            "none is visible here. Use method: lora (16-bit base) on this machine."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QLoraUnavailable(
            f"{where}: QLoRA needs the bitsandbytes package: pip install 'bitsandbytes>=0.43'"
        )


def qlora_config(compute_dtype: torch.dtype = torch.bfloat16):
    """transformers' BitsAndBytesConfig for QLoRA's NF4 + double quantisation."""
    from transformers import BitsAndBytesConfig

    if compute_dtype == torch.float32:
        compute_dtype = torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def prepare_for_kbit(model: torch.nn.Module, gradient_checkpointing: bool = True) -> torch.nn.Module:
    """peft's preparation of a quantised base (norms in fp32, input grads on)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
