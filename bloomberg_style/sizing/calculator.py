"""One call from inputs to every answer: budget, optimal sizes, data limit, shape, plan, memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from .budget import ComputeBudget
from .chinchilla import Optimum, all_optima
from .data_limit import DataMix, SizeChoice, SizeOption, choose_size
from .inputs import SizingInputs
from .memory import MemoryEstimate, estimate_memory, memory_table
from .plan import TrainingPlan, plan_training, steps_for_tokens
from .shape import Shape, search_shape, shape_for_layers


@dataclass
class SizingResult:
    inputs: SizingInputs
    budget: ComputeBudget
    optima: list[Optimum]
    data: DataMix
    choice: SizeChoice
    shape: Shape
    shape_option: SizeOption  # the chosen shape on its tokens
    plan: TrainingPlan
    memory: MemoryEstimate  # at the requested ZeRO stage
    memory_table: list[MemoryEstimate]
    notes: list[str] = field(default_factory=list)


def run_sizing(inputs: SizingInputs | None = None) -> SizingResult:
    """Validate everything first (ValueError naming the field), then size, shape, plan and fit the run."""
    inputs = inputs or SizingInputs()
    budget, mix = inputs.validate()
    notes: list[str] = []
    choice = choose_size(
        budget.flops, budget.usable_flops, mix.total, inputs.approach, inputs.min_tokens_per_param
    )

    shape_kwargs = dict(
        vocab_size=inputs.vocab_size, seq_len=inputs.seq_len, head_dim=inputs.head_dim, heads=inputs.heads
    )
    if inputs.layers is not None:
        shape = shape_for_layers(inputs.layers, **shape_kwargs)
        if shape.params > choice.max_params:
            notes.append(
                f"{inputs.layers} layers give {shape.params / 1e9:.2f}B parameters, above the "
                f"{choice.max_params / 1e9:.2f}B cap: it cannot see all the data within the budget "
                f"less the buffer"
            )
    else:
        smallest = shape_for_layers(1, **shape_kwargs)
        if smallest.params > choice.max_params:
            floor = choice.data_tokens / inputs.min_tokens_per_param
            reason = (
                f"not enough data for any model: {choice.data_tokens:,.0f} tokens at >= "
                f"{inputs.min_tokens_per_param:g} tokens per parameter"
                if floor <= choice.max_params * (1 + 1e-9)
                else "budget too small for any model: the budget less the buffer"
            )
            raise ValueError(
                f"{reason} allows at most {choice.max_params:,.0f} parameters, but the smallest "
                f"shape (1 layer, hidden {smallest.hidden}, vocab {smallest.vocab_size:,}) has "
                f"{smallest.params:,}"
            )
        shape = search_shape(choice.params, max_params=choice.max_params, **shape_kwargs)
    shape_option = choice.option(f"chosen shape ({shape.layers} layers)", shape.params)

    steps = inputs.steps or steps_for_tokens(shape_option.tokens, inputs.batch_ramp, inputs.seq_len)
    plan = plan_training(
        shape,
        steps,
        gpus=inputs.gpus,
        tflops=inputs.plan_tflops or budget.hardware_tflops,
        ramp=inputs.batch_ramp,
        recompute_factor=budget.recompute_factor,
        include_attention=inputs.attention_flops,
    )
    if plan.gpu_hours > budget.gpu_hours * (1 - budget.buffer):
        notes.append(
            f"the plan uses {plan.gpu_hours:,.0f} GPU-hours, more than the "
            f"{budget.gpu_hours * (1 - budget.buffer):,.0f} left after the buffer"
        )
    for phase in inputs.batch_ramp:
        per_gpu, rest = divmod(phase.sequences, inputs.gpus)
        if rest or per_gpu % inputs.micro_batch:
            notes.append(
                f"a global batch of {phase.sequences} sequences does not split into micro batches "
                f"of {inputs.micro_batch} on {inputs.gpus} GPUs"
            )

    memory_kwargs = dict(
        shard_group=inputs.shard_group, micro_batch=inputs.micro_batch, headroom=inputs.memory_headroom
    )
    memory = estimate_memory(
        shape, budget.gpu, zero_stage=inputs.zero_stage, checkpointing=inputs.checkpointing, **memory_kwargs
    )
    if not memory.fits:
        notes.append(
            f"ZeRO stage {inputs.zero_stage} needs {memory.total / 2**30:.1f} GiB per GPU, more than "
            f"the {memory.usable / 2**30:.1f} GiB usable on {budget.gpu.name}"
        )
    return SizingResult(
        inputs,
        budget,
        all_optima(budget.flops),
        mix,
        choice,
        shape,
        shape_option,
        plan,
        memory,
        memory_table(shape, budget.gpu, **memory_kwargs),
        notes,
    )
