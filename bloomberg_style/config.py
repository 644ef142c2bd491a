"""Run configuration: typed sections, YAML in and out, `--set` overrides, validation.

Every field a user can write in a run YAML is a dataclass field here, so a typo is an
error naming the key instead of a silently ignored setting. `validate()` runs before any
compute is spent; the resolved config (after overrides) is saved in the run folder and
its hash goes into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bloomberg_style.configlib import ConfigError, apply_override, from_dict, load_config, to_plain

__all__ = ["ConfigError", "RunConfig", "apply_override"]


# Longest data.seq_len accepted. The paper trains at 2,048; eager attention holds
# micro_batch x heads x seq_len^2 scores per layer (100,000 tokens, 40 heads: 1.6 TB in FP32),
# so a longer context is almost always a typo. Raise it here if you mean it.
MAX_SEQ_LEN = 32_768


@dataclass
class ModelOverrides:
    """Fields of model/config.py's ModelConfig that a run sets over its preset; None = the preset's.

    Typed here (config sits below model/ and cannot import it) so a typo or a wrong type is a
    file:line error at load; tests/test_config.py checks these are exactly ModelConfig's fields.
    Checks across fields (hidden_size divisible by num_heads...) run when ModelConfig.from_run
    builds the model config, still before any compute.
    """

    vocab_size: int | None = None  # set by the run (the tokenizer), not here
    hidden_size: int | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    max_seq_len: int | None = None  # set by the run (data.seq_len), not here
    layer_norm_eps: float | None = None
    init_std: float | None = None
    hidden_dropout: float | None = None
    attention_dropout: float | None = None
    attention_impl: str | None = None
    query_key_layer_scaling: bool | None = None
    activation_checkpointing: bool | None = None  # set by the run (train.activation_checkpointing)
    activation_checkpointing_impl: str | None = None
    compile_blocks: bool | None = None
    compile_backend: str | None = None

    SET_BY_RUN = ("vocab_size", "max_seq_len", "activation_checkpointing")

    def given(self) -> dict[str, Any]:
        """The fields the YAML set (what config.yaml shows and the config hash covers)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class ModelSection:
    """Which model to build: a preset plus typed field overrides (ModelConfig.from_run builds it)."""

    preset: str = "tiny"
    overrides: ModelOverrides = field(default_factory=ModelOverrides)
    pad_vocab_to: int = 128  # vocab rows rounded up to a multiple of this (tokenizer size + padding)
    # Continued pretraining: a Hugging Face BLOOM folder or one of our run/checkpoint folders whose
    # weights (and shape, vocabulary rows included) the run starts from; "" = random init.
    # The preset and pad_vocab_to are then not used; see docs/continued_pretraining.md.
    init_from: str = ""

    def validate(self) -> None:
        if self.pad_vocab_to < 1:
            raise ConfigError(f"model.pad_vocab_to must be >= 1, got {self.pad_vocab_to}")
        for key in ModelOverrides.SET_BY_RUN:
            if getattr(self.overrides, key) is not None:
                raise ConfigError(
                    f"model.overrides.{key} is set by the run (tokenizer / data.seq_len / train.*)"
                )
        if not isinstance(self.init_from, str):
            raise ConfigError(f"model.init_from must be a path (string), got {self.init_from!r}")


@dataclass
class DomainSection:
    """One data domain: raw inputs and/or a prepared token shard, and its mixture weight.

    `weight` is a token probability: the chance that a training token comes from this
    domain (weights are normalised over the domains).
    """

    name: str = ""
    # megatron IndexedDataset prefix (PREFIX.bin / PREFIX.idx), a prepare_data output, or a glob
    prefix: str = ""
    prefixes: list[str] = field(default_factory=list)  # more shards/manifests/globs under the same weight
    inputs: list[str] = field(default_factory=list)  # raw files/folders/globs; shards built if absent
    weight: float = 1.0

    def validate(self, where: str) -> None:
        if not self.name:
            raise ConfigError(f"{where}.name is empty: every domain needs a name")
        if not self.prefix and not self.prefixes:
            raise ConfigError(f"{where}.prefix is empty: give the token shard prefix of domain {self.name!r}")
        if self.inputs and (self.prefixes or set(self.prefix) & set("*?[")):
            raise ConfigError(
                f"{where}: raw inputs need one output prefix to build; a glob or a prefixes list names "
                "shards made by launch/prepare_data.py"
            )
        if not all(isinstance(p, str) and p for p in self.prefixes):
            raise ConfigError(f"{where}.prefixes must be a list of non-empty strings, got {self.prefixes!r}")
        if not self.weight > 0:
            raise ConfigError(f"{where}.weight must be > 0, got {self.weight}")


@dataclass
class DataSection:
    domains: list[DomainSection] = field(default_factory=list)
    # Folder with tokenizer.json; trained from the domains' inputs if absent. Our numeric Unigram
    # tokenizer, or any Hugging Face tokenizer folder (its eos token ends documents), e.g. the
    # tokenizer of the model named by model.init_from.
    tokenizer: str = ""
    tokenizer_vocab_size: int = 131072  # only used when the tokenizer has to be trained
    demo_corpus: str = ""  # if set, generate the built-in demo corpus here when absent
    demo_docs_per_domain: int = 0  # 0 = the generator's default
    text_field: str = "text"
    seq_len: int = 2048
    valid_fraction: float = 0.02  # share of each domain's documents held out for validation
    # Seed of the draw of each shard's validation documents (data/mixture.py split_documents). Separate
    # from train.seed, which shuffles rows and seeds rollback reshuffles: changing train.seed, a resume or
    # a rollback must never move documents between training and validation.
    valid_seed: int = 1234
    cache_dir: str = ""  # megatron index cache; default: RUN/index_cache (the run folder)
    trust_index_cache: bool = False  # load cache .npy files that would unpickle (only caches you wrote)

    def validate(self) -> None:
        if not self.domains:
            raise ConfigError("data.domains is empty: list at least one domain")
        names = [d.name for d in self.domains]
        for i, d in enumerate(self.domains):
            d.validate(f"data.domains[{i}]")
        if len(set(names)) != len(names):
            raise ConfigError(f"data.domains has repeated names: {names}")
        if not self.tokenizer:
            raise ConfigError("data.tokenizer is empty: give the tokenizer folder")
        if not 8 <= self.seq_len <= MAX_SEQ_LEN:
            raise ConfigError(
                f"data.seq_len must be in [8, {MAX_SEQ_LEN}], got {self.seq_len} (attention memory grows "
                f"with seq_len^2; the paper used 2048; config.MAX_SEQ_LEN is the cap)"
            )
        if not 0.0 < self.valid_fraction < 0.5:
            raise ConfigError(f"data.valid_fraction must be in (0, 0.5), got {self.valid_fraction}")
        if isinstance(self.valid_seed, bool) or not isinstance(self.valid_seed, int) or self.valid_seed < 0:
            raise ConfigError(f"data.valid_seed must be an integer >= 0, got {self.valid_seed!r}")
        if not 300 <= self.tokenizer_vocab_size <= 1 << 24:
            raise ConfigError(
                f"data.tokenizer_vocab_size must be in [300, 2^24] (256 bytes + specials), got {self.tokenizer_vocab_size}"
            )


@dataclass
class OptimSection:
    """AdamW and the warm-up + cosine schedule (the paper's values are the defaults)."""

    lr: float = 6e-5
    min_lr: float = 6e-6
    warmup_steps: int = 1800
    decay_steps: int = 0  # cosine length after warm-up; 0 = until train.steps
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 0.3

    def validate(self) -> None:
        if not 0 < self.lr <= 1:
            raise ConfigError(f"optim.lr must be > 0 and at most 1, got {self.lr} (the paper: 6e-5)")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"optim.min_lr must be in [0, optim.lr={self.lr}], got {self.min_lr}")
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ConfigError("optim.warmup_steps and optim.decay_steps must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 < self.eps < 1:
            raise ConfigError(f"optim.eps must be in (0, 1), got {self.eps}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be >= 0 (0 disables), got {self.grad_clip}")


# Regional compile under ZeRO-3, measured: on torch 2.11 the compiled blocks' parameters get no
# gradient (a block weight moved 5e-5 in a step, weight decay alone, where eager moved it 3e-3;
# dynamo's "eager" backend too, so dynamo, not inductor); on 2.12.1 the gradients are right but
# dynamo traces one graph per block (4 for 4 layers), so past its recompile limit (8) the other
# blocks run uncompiled; on 2.13 one graph serves every block and the losses equal eager's
# (tests/test_compile_trainer.py). ZeRO 0-2: one graph, right on all three. regional_compile
# checks it too.
ZERO3_COMPILE_MIN_TORCH = (2, 13)


def installed_torch_version() -> str:
    """torch's version, from its package metadata when it has any (no torch import needed)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # a source tree on PYTHONPATH
        import torch

        return torch.__version__


def zero3_compile_problem(version: str | None = None) -> str | None:
    """Why `train.compile` cannot run under ZeRO-3 with this torch, or None if it can."""
    version = version or installed_torch_version()
    major, minor = (int(part) for part in version.split("+")[0].split(".")[:2])
    if (major, minor) >= ZERO3_COMPILE_MIN_TORCH:
        return None
    need = ".".join(map(str, ZERO3_COMPILE_MIN_TORCH))
    return (
        f"train.compile with zero_stage 3 needs torch >= {need} (this is {version}): under ZeRO-3 "
        "torch 2.11 gives the compiled blocks' parameters no gradient and 2.12 compiles one graph "
        "per block (past dynamo's recompile limit the rest run uncompiled); use zero_stage 0-2, "
        "train.compile: false, or a newer torch"
    )


@dataclass
class TrainSection:
    steps: int = 1000
    micro_batch_size: int = 1  # sequences per rank per forward pass
    global_batch_size: int = 8  # sequences per optimizer step, all ranks together
    precision: str = "bf16"  # "fp32" | "bf16" (bf16 compute, FP32 master weights)
    zero_stage: int = 2
    # ZeRO-3 hierarchical sharding group (the paper: 128 GPUs, 4 replicas on 512); 0 = all ranks.
    # DeepSpeed with MiCS gets mics_shard_size; releases that removed MiCS (0.19+) get ZeRO++'s
    # hierarchical partition (zero_hpz_partition_size), its supported successor.
    shard_group_size: int = 0
    activation_checkpointing: bool = False
    seed: int = 1234
    log_interval: int = 5
    eval_interval: int = 300
    eval_samples: int = 0  # per domain; 0 = the whole validation split
    # Tokens one evaluation scores, all domains together (split evenly); 0 = no cap. The same
    # samples every time (see training/eval_budget.py). 2^24 tokens cost about one paper step.
    eval_tokens: int = 16_777_216
    save_interval: int = 500
    keep_last: int = 3
    torch_threads: int = 0  # intra-op threads per rank on CPU; 0 = cores / ranks
    exit_at_step: int = 0  # end this invocation (with a checkpoint) at this step; 0 = at `steps`
    # Batch-size ramp: [[step, global_batch], ...]; from `step` on the global batch is that size
    # (reached through gradient accumulation at a fixed micro batch). Empty = global_batch_size.
    batch_ramp: list[list[int]] = field(default_factory=list)
    deepspeed_json: str = ""  # extra DeepSpeed settings (e.g. MiCS), merged into the derived config
    peak_tflops: float = 0.0  # per-device peak for MFU; 0 = look the device up in the table
    # Regional compile: every transformer block through torch.compile (one graph, reused by all
    # layers); the first steps pay the compile time (training/regional_compile.py).
    compile: bool = False

    def validate(self) -> None:
        for name in (
            "steps",
            "micro_batch_size",
            "global_batch_size",
            "log_interval",
            "eval_interval",
            "save_interval",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"train.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"train.zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.shard_group_size < 0 or (self.shard_group_size and self.zero_stage != 3):
            raise ConfigError(
                f"train.shard_group_size={self.shard_group_size} needs zero_stage 3 and must be >= 0"
            )
        if self.keep_last < 1:
            raise ConfigError(f"train.keep_last must be >= 1, got {self.keep_last}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"train.compile must be true or false, got {self.compile!r}")
        if self.compile and self.zero_stage == 3 and (problem := zero3_compile_problem()):
            raise ConfigError(problem)
        if self.exit_at_step < 0:
            raise ConfigError(f"train.exit_at_step must be >= 0, got {self.exit_at_step}")
        if self.eval_samples < 0:
            raise ConfigError(f"train.eval_samples must be >= 0, got {self.eval_samples}")
        if self.peak_tflops < 0:
            raise ConfigError(
                f"train.peak_tflops must be >= 0 (0 = look the device up), got {self.peak_tflops}"
            )
        if self.torch_threads < 0:
            raise ConfigError(
                f"train.torch_threads must be >= 0 (0 = cores / ranks), got {self.torch_threads}"
            )
        if self.eval_tokens < 0:
            raise ConfigError(f"train.eval_tokens must be >= 0 (0 = no cap), got {self.eval_tokens}")
        last = -1
        for i, entry in enumerate(self.batch_ramp):
            if len(entry) != 2 or entry[0] <= last or entry[1] < 1:
                raise ConfigError(
                    f"train.batch_ramp[{i}] = {entry}: entries are [step, global_batch] with increasing "
                    "steps and a positive batch"
                )
            last = entry[0]
        if self.batch_ramp and self.batch_ramp[0][0] != 0:
            self.batch_ramp.insert(0, [0, self.global_batch_size])

    def global_batch_at(self, step: int) -> int:
        """Global batch (sequences) used by optimizer step `step` (0-based)."""
        batch = self.global_batch_size
        for start, size in self.batch_ramp:
            if step >= start:
                batch = size
        return batch

    def samples_before(self, step: int) -> int:
        """Sequences consumed by steps [0, step): the data position, exact across ramps."""
        total, prev_start, prev_batch = 0, 0, self.global_batch_at(0)
        for start, size in self.batch_ramp:
            if start >= step:
                break
            total += (start - prev_start) * prev_batch
            prev_start, prev_batch = start, size
        return total + (step - prev_start) * prev_batch

    def grad_accumulation(self, world_size: int, global_batch: int | None = None) -> int:
        """Micro-batches per rank per step; the batch arithmetic is checked once, here."""
        per_step = self.micro_batch_size * world_size
        batches = (
            [global_batch] if global_batch else [self.global_batch_size] + [b for _, b in self.batch_ramp]
        )
        for batch in batches:
            if batch % per_step:
                raise ConfigError(
                    f"global batch {batch} (train.global_batch_size / train.batch_ramp) is not divisible by "
                    f"micro_batch_size ({self.micro_batch_size}) x ranks ({world_size})"
                )
        return (global_batch or self.global_batch_size) // per_step


@dataclass
class FaultsSection:
    """What to do about non-finite steps and loss spikes (OPT/BLOOM logbooks, by policy)."""

    spike_window: int = 50  # moving window of recent train losses
    spike_sigma: float = 6.0  # a spike: loss > mean + sigma * std of the window ...
    spike_min_ratio: float = 1.2  # ... and loss > ratio * mean (guards a very flat window); 0 = off
    max_consecutive_skips: int = 3  # this many non-finite (skipped) steps in a row -> rollback
    rollback: bool = True  # roll back to the last good checkpoint and skip the data window
    max_rollbacks: int = 5  # give up (stop with an error) after this many rollbacks
    # Hang watchdog (training/watchdog.py): a step over the limit dumps every rank's stacks to
    # RUN/hangs/ and exits with 124 for torchrun --max-restarts to restart.
    hang_watchdog: bool = True
    hang_timeout_s: float = 0.0  # seconds a step may take; 0 = derived from the median step time:
    hang_factor: float = 10.0  # ... max(hang_floor_s, hang_factor x median step time) ...
    hang_floor_s: float = 300.0
    hang_warmup_steps: int = 5  # ... once this many steps are timed; before that, hang_startup_s
    hang_startup_s: float = 1800.0

    def validate(self) -> None:
        if self.spike_window < 2:
            raise ConfigError(f"faults.spike_window must be >= 2, got {self.spike_window}")
        if not self.spike_sigma > 0:
            raise ConfigError(f"faults.spike_sigma must be > 0, got {self.spike_sigma}")
        if self.spike_min_ratio < 0:
            raise ConfigError(f"faults.spike_min_ratio must be >= 0, got {self.spike_min_ratio}")
        if self.max_consecutive_skips < 1 or self.max_rollbacks < 0:
            raise ConfigError("faults.max_consecutive_skips must be >= 1 and faults.max_rollbacks >= 0")
        for name in ("hang_timeout_s", "hang_factor", "hang_floor_s", "hang_startup_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"faults.{name} must be a finite number >= 0, got {value!r}")
        if self.hang_warmup_steps < 1:
            raise ConfigError(f"faults.hang_warmup_steps must be >= 1, got {self.hang_warmup_steps}")


@dataclass
class ControllerAction:
    """One intervention. Applied in list order, one per detected plateau (or at `step`)."""

    lr_factor: float = 1.0  # multiply peak and floor LR
    attention_dropout: float | None = None
    hidden_dropout: float | None = None
    weight_decay: float | None = None
    rollback: bool = False  # back to the checkpoint at the plateau's start; reshuffle unseen data
    stop: bool = False  # end the run here
    step: int = 0  # scripted mode: the step to apply it at
    label: str = ""

    def validate(self, where: str) -> None:
        if not self.lr_factor > 0:
            raise ConfigError(f"{where}.lr_factor must be > 0, got {self.lr_factor}")
        for name in ("attention_dropout", "hidden_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"{where}.{name} must be in [0, 1), got {value}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay must be >= 0, got {self.weight_decay}")
        if self.step < 0:
            raise ConfigError(f"{where}.step must be >= 0, got {self.step}")


def paper_actions() -> list[ControllerAction]:
    """BloombergGPT's interventions: LR x2/3 (with rollback), x1/2 with dropout 0.1, x1/2."""
    return [
        ControllerAction(lr_factor=2 / 3, rollback=True, label="LR x2/3"),
        ControllerAction(
            lr_factor=0.5, attention_dropout=0.1, hidden_dropout=0.1, label="LR x1/2, dropout 0.1"
        ),
        ControllerAction(lr_factor=0.5, label="LR x1/2"),
    ]


@dataclass
class ControllerSection:
    """LR drops on a validation plateau (or at scripted steps), best-checkpoint choice."""

    mode: str = "off"  # "off" | "plateau" | "scripted"
    metric: str = "total"  # "total" (weighted over domains) or a domain name
    weights: dict[str, float] = field(default_factory=dict)  # for "total"; default: mixture weights
    patience: int = 3000  # no improvement within this many steps (or tokens) = plateau
    patience_unit: str = "steps"  # "steps" | "tokens"
    threshold: float = 0.0  # flat = within this of the best smoothed value (absolute, nats)
    # Exponential moving average of the metric: weight `smoothing` per `smoothing_unit`
    # ("steps": the newest eval weighs 1 - (1 - smoothing) ** steps since the last eval;
    # "evals": `smoothing` per evaluation; "tokens": per token). The paper: 0.001 per step.
    smoothing: float = 0.0  # 0 = none
    smoothing_unit: str = "steps"  # "steps" | "evals" | "tokens"
    actions: list[ControllerAction] = field(default_factory=paper_actions)
    stop_when_exhausted: bool = True
    scale: float = 1.0  # scripted mode: multiply every action's step (replay the paper smaller)
    stop_step: int = 0  # scripted mode: stop here (after scaling); 0 = none

    def validate(self) -> None:
        if self.mode not in ("off", "plateau", "scripted"):
            raise ConfigError(f"controller.mode must be off, plateau or scripted, got {self.mode!r}")
        if self.patience < 1:
            raise ConfigError(f"controller.patience must be >= 1, got {self.patience}")
        if self.patience_unit not in ("steps", "tokens"):
            raise ConfigError(f"controller.patience_unit must be steps or tokens, got {self.patience_unit!r}")
        if self.threshold < 0:
            raise ConfigError(f"controller.threshold must be >= 0, got {self.threshold}")
        if not 0 <= self.smoothing < 1:
            raise ConfigError(f"controller.smoothing must be in [0, 1), got {self.smoothing}")
        if self.smoothing_unit not in ("steps", "evals", "tokens"):
            raise ConfigError(
                f"controller.smoothing_unit must be steps, evals or tokens, got {self.smoothing_unit!r}"
            )
        if not self.scale > 0:
            raise ConfigError(f"controller.scale must be > 0, got {self.scale}")
        for i, action in enumerate(self.actions):
            action.validate(f"controller.actions[{i}]")
        if self.mode == "scripted":
            steps = [a.step for a in self.actions]
            if any(s <= 0 for s in steps) or steps != sorted(steps):
                raise ConfigError(
                    f"controller.actions: scripted mode needs increasing steps > 0, got {steps}"
                )


@dataclass
class LoggingSection:
    # "auto": online only when WANDB_API_KEY is set, else offline (sync later with `wandb sync`)
    wandb: str = "auto"  # "auto" | "offline" | "online" | "disabled"
    wandb_project: str = "bloomberg-style"
    progress: bool = True  # tqdm bar on rank 0
    tensorboard: bool = False  # also write RUN/tensorboard/ (needs the tensorboard package)

    def validate(self) -> None:
        if self.wandb not in ("auto", "offline", "online", "disabled"):
            raise ConfigError(f"logging.wandb must be auto, offline, online or disabled, got {self.wandb!r}")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("logging.tensorboard is true but the tensorboard package is not installed")


@dataclass
class EvalSection:
    """Task files scored during pretraining (evaluation/in_loop.py); none by default."""

    tasks: list[str] = field(default_factory=list)  # task files (.jsonl), e.g. converted with --convert
    task_interval: int = 0  # score them every N steps (0 = never)
    task_limit: int = 0  # first N test examples per task (0 = all)
    task_shots: int | None = None  # None: each task's own

    def validate(self) -> None:
        if self.task_interval < 0 or self.task_limit < 0:
            raise ConfigError(
                f"eval.task_interval and eval.task_limit must be >= 0, got {self.task_interval}, {self.task_limit}"
            )
        if self.task_shots is not None and self.task_shots < 0:
            raise ConfigError(f"eval.task_shots must be >= 0, got {self.task_shots}")
        if self.tasks and not self.task_interval:
            raise ConfigError("eval.tasks is set but eval.task_interval is 0: say how often to score them")
        missing = [t for t in self.tasks if not Path(t).is_file()]
        if missing:
            raise ConfigError(f"eval.tasks: no such file(s) {missing}")


def check_run_name(name: str) -> None:
    """`name` must be one folder inside output_dir: `..`, `a/b` or an absolute path would write elsewhere."""
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\")) or "\0" in name:
        raise ConfigError(f"name must be a plain folder name inside output_dir, got {name!r}")


RUNTIME_ONLY = (("train", "exit_at_step"), ("train", "torch_threads"), ("logging", "progress"),
                *(("faults", f"hang_{k}") for k in ("watchdog", "timeout_s", "factor", "floor_s",
                                                   "warmup_steps", "startup_s")))  # fmt: skip


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    faults: FaultsSection = field(default_factory=FaultsSection)
    controller: ControllerSection = field(default_factory=ControllerSection)
    eval: EvalSection = field(default_factory=EvalSection)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def validate(self) -> RunConfig:
        check_run_name(self.name)
        for section in (
            self.model,
            self.data,
            self.optim,
            self.train,
            self.logging,
            self.faults,
            self.controller,
            self.eval,
        ):
            section.validate()
        c = self.controller
        if c.metric != "total" and c.metric not in {d.name for d in self.data.domains}:
            raise ConfigError(f"controller.metric {c.metric!r} is neither 'total' nor a domain name")
        unknown = set(c.weights) - {d.name for d in self.data.domains}
        if unknown:
            raise ConfigError(f"controller.weights names unknown domains {sorted(unknown)}")
        return self

    # ---- YAML in and out ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = to_plain(dataclasses.asdict(self))
        data["model"]["overrides"] = self.model.overrides.given()  # as written: same YAML and hash as before
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self) -> str:
        """Hash of the resolved config, stored in checkpoints to detect a changed run.

        Settings that only steer this invocation (where to stop, progress bar) are left out.
        """
        data = self.to_dict()
        for section, key in RUNTIME_ONLY:
            data[section].pop(key, None)
        if data["eval"] == to_plain(dataclasses.asdict(EvalSection())):
            data.pop("eval")  # runs from before the eval section keep their hash
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> RunConfig:
        return from_dict(cls, data, where)

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        """Read a run YAML, apply `key=value` overrides, validate."""
        return load_config(cls, path, overrides)
