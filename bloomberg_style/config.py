"""Run configuration: typed sections, YAML in and out, `--set` overrides, validation.

Every field a user can write in a run YAML is a dataclass field here, so a typo is an
error naming the key instead of a silently ignored setting. `validate()` runs before any
compute is spent; the resolved config (after overrides) is saved in the run folder and
its hash goes into every checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml


class ConfigError(ValueError):
    """A config file, field or value that cannot be used; the message names it."""


@dataclass
class ModelSection:
    """Which model to build: a preset plus field overrides (see `ModelConfig`)."""

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    pad_vocab_to: int = 128  # vocab rows rounded up to a multiple of this (tokenizer size + padding)

    def validate(self) -> None:
        if self.pad_vocab_to < 1:
            raise ConfigError(f"model.pad_vocab_to must be >= 1, got {self.pad_vocab_to}")


@dataclass
class DomainSection:
    """One data domain: raw inputs and/or a prepared token shard, and its mixture weight.

    `weight` is a token probability: the chance that a training token comes from this
    domain (weights are normalised over the domains).
    """

    name: str = ""
    prefix: str = ""  # megatron IndexedDataset prefix (PREFIX.bin / PREFIX.idx)
    inputs: list[str] = field(default_factory=list)  # raw files/folders/globs; shards built if absent
    weight: float = 1.0

    def validate(self, where: str) -> None:
        if not self.name:
            raise ConfigError(f"{where}.name is empty: every domain needs a name")
        if not self.prefix:
            raise ConfigError(f"{where}.prefix is empty: give the token shard prefix of domain {self.name!r}")
        if not self.weight > 0:
            raise ConfigError(f"{where}.weight must be > 0, got {self.weight}")


@dataclass
class DataSection:
    domains: list[DomainSection] = field(default_factory=list)
    tokenizer: str = ""  # folder with tokenizer.json; trained from the domains' inputs if absent
    tokenizer_vocab_size: int = 131072  # only used when the tokenizer has to be trained
    demo_corpus: str = ""  # if set, generate the built-in demo corpus here when absent
    demo_docs_per_domain: int = 0  # 0 = the generator's default
    text_field: str = "text"
    seq_len: int = 2048
    valid_fraction: float = 0.02  # share of each domain's documents held out for validation
    cache_dir: str = ""  # megatron index cache; default: next to the shards

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
        if self.seq_len < 8:
            raise ConfigError(f"data.seq_len must be >= 8, got {self.seq_len}")
        if not 0.0 < self.valid_fraction < 0.5:
            raise ConfigError(f"data.valid_fraction must be in (0, 0.5), got {self.valid_fraction}")
        if self.tokenizer_vocab_size < 300:
            raise ConfigError(
                f"data.tokenizer_vocab_size must be >= 300 (256 bytes + specials), got {self.tokenizer_vocab_size}"
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
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"optim.min_lr must be in [0, optim.lr={self.lr}], got {self.min_lr}")
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ConfigError("optim.warmup_steps and optim.decay_steps must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be >= 0 (0 disables), got {self.grad_clip}")


@dataclass
class TrainSection:
    steps: int = 1000
    micro_batch_size: int = 1  # sequences per rank per forward pass
    global_batch_size: int = 8  # sequences per optimizer step, all ranks together
    precision: str = "bf16"  # "fp32" | "bf16" (bf16 compute, FP32 master weights)
    zero_stage: int = 2
    activation_checkpointing: bool = False
    seed: int = 1234
    log_interval: int = 5
    eval_interval: int = 300
    eval_samples: int = 0  # per domain; 0 = the whole validation split
    save_interval: int = 500
    keep_last: int = 3
    torch_threads: int = 0  # intra-op threads per rank on CPU; 0 = cores / ranks
    exit_at_step: int = 0  # end this invocation (with a checkpoint) at this step; 0 = at `steps`

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
        if self.keep_last < 1:
            raise ConfigError(f"train.keep_last must be >= 1, got {self.keep_last}")
        if self.exit_at_step < 0:
            raise ConfigError(f"train.exit_at_step must be >= 0, got {self.exit_at_step}")
        if self.eval_samples < 0:
            raise ConfigError(f"train.eval_samples must be >= 0, got {self.eval_samples}")

    def grad_accumulation(self, world_size: int) -> int:
        """Micro-batches per rank per step; the batch arithmetic is checked once, here."""
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ConfigError(
                f"train.global_batch_size={self.global_batch_size} is not divisible by "
                f"micro_batch_size ({self.micro_batch_size}) x ranks ({world_size})"
            )
        return self.global_batch_size // per_step


@dataclass
class LoggingSection:
    # "auto": online only when WANDB_API_KEY is set, else offline (sync later with `wandb sync`)
    wandb: str = "auto"  # "auto" | "offline" | "online" | "disabled"
    wandb_project: str = "bloomberg-style"
    progress: bool = True  # tqdm bar on rank 0

    def validate(self) -> None:
        if self.wandb not in ("auto", "offline", "online", "disabled"):
            raise ConfigError(f"logging.wandb must be auto, offline, online or disabled, got {self.wandb!r}")


RUNTIME_ONLY = (("train", "exit_at_step"), ("train", "torch_threads"), ("logging", "progress"))


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def validate(self) -> RunConfig:
        if not self.name or "/" in self.name:
            raise ConfigError(f"name must be a non-empty folder name, got {self.name!r}")
        for section in (self.model, self.data, self.optim, self.train, self.logging):
            section.validate()
        return self

    # ---- YAML in and out ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self) -> str:
        """Hash of the resolved config, stored in checkpoints to detect a changed run.

        Settings that only steer this invocation (where to stop, progress bar) are left out.
        """
        data = self.to_dict()
        for section, key in RUNTIME_ONLY:
            data[section].pop(key, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> RunConfig:
        return _from_dict(cls, data, where)

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        """Read a run YAML, apply `key=value` overrides, validate."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data, where=str(path)).validate()


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `section.key=value` override (value parsed as YAML) to a nested dict."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = data
    for key in keys[:-1]:
        if isinstance(node, list):
            node = node[_list_index(node, key, dotted)]
            continue
        node = node.setdefault(key, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
    value = yaml.safe_load(raw)
    if isinstance(node, list):
        node[_list_index(node, keys[-1], dotted)] = value
    else:
        node[keys[-1]] = value


def _list_index(node: list, key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"--set {dotted}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = hint.__args__
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(t, v, where) for t, v in zip(hint.__args__, value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 6e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value
