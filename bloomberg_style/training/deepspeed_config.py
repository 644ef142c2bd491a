"""The DeepSpeed JSON a run gets, derived from the run config (one source of truth).

The LR is not DeepSpeed's business here: the trainer writes the schedule's value into
the optimizer's param groups every step, so no DeepSpeed scheduler can override it.
"""

from __future__ import annotations

from typing import Any

from bloomberg_style.config import RunConfig


def build_deepspeed_config(cfg: RunConfig, world_size: int, accelerator: str) -> dict[str, Any]:
    t, o = cfg.train, cfg.optim
    accum = t.grad_accumulation(world_size)
    zero: dict[str, Any] = {"stage": t.zero_stage}
    if t.zero_stage >= 2:
        zero.update(overlap_comm=accelerator == "cuda", contiguous_gradients=True, reduce_scatter=True)
    if t.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=False)
    return {
        "train_batch_size": t.global_batch_size,
        "train_micro_batch_size_per_gpu": t.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": o.grad_clip,
        "zero_optimization": zero,
        # bf16 compute with FP32 master weights and optimizer states (ZeRO keeps them).
        "bf16": {"enabled": t.precision == "bf16"},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": o.lr,
                "betas": list(o.betas),
                "eps": o.eps,
                "weight_decay": o.weight_decay,
                # No fused CUDA Adam without CUDA; on GPUs DeepSpeed picks its fused kernel.
                "torch_adam": accelerator != "cuda",
            },
        },
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
        "seed": t.seed,
    }
