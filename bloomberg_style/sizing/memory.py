"""Memory per GPU: model states under ZeRO stages 0-3, activations, and whether it fits.

Model states for P parameters in mixed precision with Adam (Rajbhandari et al. 2020, ZeRO):
bf16 parameters 2P, bf16 gradients 2P, optimizer 12P (fp32 master copy + Adam m + v).
Stage 1 shards the optimizer over the shard group of G_s GPUs, stage 2 also the gradients,
stage 3 also the parameters: 16P, 4P + 12P/G_s, 2P + 14P/G_s, 16P/G_s. MiCS (Zhang et al.
2022) shards within a group and replicates across groups: BloombergGPT sharded over 128 GPUs
with 4 replicas on 512. Stage 3 also gathers full bf16 parameters as it goes: counted as two
of the largest units (a layer or the embedding: the one in use and the prefetched one) plus
that unit's full bf16 gradient before it is reduce-scattered.

Activations per layer (Korthikanti et al. 2022, eq. 1; 16-bit, no tensor parallelism) for
sequence s, micro batch b, hidden h, heads a: s*b*h*(34 + 5*a*s/h) = 34sbh + 5as^2b bytes.
Checkpointing every layer keeps only each layer's 16-bit input (2sbh per layer) plus one
layer's full set while it is recomputed. The LM head's loss is chunked (model/loss.py): one
chunk of FP32 logits (CHUNK_LOGIT_BYTES, 256 MiB) and its 16-bit matmul output at a time,
never s*b*V, plus the FP32 gradient of its input (4sbh).

What DeepSpeed adds on top of the textbook states, measured on CPU ranks
(benchmarks/zero3_memory.py, docs/cluster.md), for stages 1-3: an FP32 gradient partition
the optimizer steps on (4P/G_s; stage 3 keeps two such buffers, 8P/G_s) and, during the
optimizer step only, temporaries of about three FP32 partitions (12P/G_s). The step runs
after backward has freed the activations, so the peak is the model states plus the larger
of (activations + logits + gathered layers) and those step temporaries.
"""

from __future__ import annotations

from dataclasses import dataclass

from .accelerators import Accelerator
from .shape import Shape

GIB = 2**30
PARAM_BYTES, GRAD_BYTES, OPTIMIZER_BYTES = 2, 2, 12
CHUNK_LOGIT_BYTES = 256 * 2**20  # model/loss.py's chunk of FP32 logits
FP32_GRAD_PARTITIONS = {0: 0, 1: 1, 2: 1, 3: 2}  # DeepSpeed's FP32 gradient buffers of P/G_s each
STEP_TEMPORARY_BYTES = 12  # per parameter of the partition, while the optimizer steps


def layer_activation_bytes(seq_len: int, micro_batch: int, hidden: int, heads: int) -> float:
    """Korthikanti et al. eq. 1: 34sbh + 5as^2b bytes for one layer without recomputation."""
    s, b, h, a = seq_len, micro_batch, hidden, heads
    return 34 * s * b * h + 5 * a * s * s * b


# The per-component fields of MemoryEstimate, in the order reports print them.
COMPONENTS = ("params", "grads", "optimizer", "gathered", "activations", "logits", "deepspeed_buffers",
              "step_temporaries")  # fmt: skip


@dataclass(frozen=True)
class MemoryEstimate:
    zero_stage: int
    shard_group: int
    micro_batch: int
    checkpointing: bool
    params: float  # bytes per GPU, each field
    grads: float
    optimizer: float
    gathered: float  # stage 3 working copies of full layers
    activations: float
    logits: float  # the chunked loss: one FP32 chunk + its 16-bit output + the input's gradient
    deepspeed_buffers: float  # DeepSpeed's FP32 gradient partition(s)
    step_temporaries: float  # transient, during the optimizer step (activations freed by then)
    gpu: Accelerator
    headroom: float  # share of the GPU kept free (CUDA context, NCCL buffers, fragmentation)

    def components(self) -> dict[str, float]:
        """Bytes per GPU of each component (COMPONENTS order)."""
        return {name: getattr(self, name) for name in COMPONENTS}

    @property
    def states(self) -> float:
        return self.params + self.grads + self.optimizer + self.deepspeed_buffers

    @property
    def total(self) -> float:
        """The peak: states, plus forward/backward's working set or the step's, whichever is larger."""
        return self.states + max(self.gathered + self.activations + self.logits, self.step_temporaries)

    @property
    def usable(self) -> float:
        return self.gpu.memory_gib * GIB * (1 - self.headroom)

    @property
    def fits(self) -> bool:
        return self.total <= self.usable


def estimate_memory(
    shape: Shape,
    gpu: Accelerator,
    *,
    zero_stage: int = 3,
    shard_group: int = 128,
    micro_batch: int = 2,
    checkpointing: bool = True,
    headroom: float = 0.1,
) -> MemoryEstimate:
    """Bytes per GPU for training `shape` on `gpu` with a ZeRO stage over a shard group."""
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if shard_group <= 0 or micro_batch <= 0:
        raise ValueError(f"shard_group and micro_batch must be > 0, got {shard_group}, {micro_batch}")
    n = shape.params
    group = shard_group if zero_stage > 0 else 1
    params = PARAM_BYTES * n / (group if zero_stage >= 3 else 1)
    grads = GRAD_BYTES * n / (group if zero_stage >= 2 else 1)
    optimizer = OPTIMIZER_BYTES * n / group
    gathered = 0.0
    if zero_stage == 3 and group > 1:
        largest_unit = max(12 * shape.hidden**2 + 13 * shape.hidden, shape.vocab_size * shape.hidden)
        gathered = (2 * PARAM_BYTES + GRAD_BYTES) * largest_unit

    s, b, h = shape.seq_len, micro_batch, shape.hidden
    one_layer = layer_activation_bytes(s, b, h, shape.heads)
    activations = shape.layers * 2 * s * b * h + one_layer if checkpointing else shape.layers * one_layer
    logits = 1.5 * min(CHUNK_LOGIT_BYTES, 4 * s * b * shape.vocab_size) + 4 * s * b * h
    partition = n / group
    deepspeed_buffers = 4 * FP32_GRAD_PARTITIONS[zero_stage] * partition if zero_stage else 0.0
    step_temporaries = STEP_TEMPORARY_BYTES * partition if zero_stage else 0.0
    return MemoryEstimate(
        zero_stage,
        group,
        micro_batch,
        checkpointing,
        params,
        grads,
        optimizer,
        gathered,
        activations,
        logits,
        deepspeed_buffers,
        step_temporaries,
        gpu,
        headroom,
    )


def memory_table(
    shape: Shape, gpu: Accelerator, *, shard_group: int = 128, micro_batch: int = 2, headroom: float = 0.1
) -> list[MemoryEstimate]:
    """Every ZeRO stage, with and without activation checkpointing."""
    return [
        estimate_memory(
            shape,
            gpu,
            zero_stage=stage,
            shard_group=shard_group,
            micro_batch=micro_batch,
            checkpointing=ckpt,
            headroom=headroom,
        )
        for stage in (0, 1, 2, 3)
        for ckpt in (True, False)
    ]
