"""SFT recipes: a base model, then stages, each tuning the result of the one before.

    name: chatdoctor
    base: runs/my-run              # our run/checkpoint folder or any local HF causal-LM folder
    output_dir: runs/sft/chatdoctor
    template: alpaca
    defaults: {lr: 2.0e-5, epochs: 3, data: {max_length: 512}}   # merged into every stage
    stages:
      - name: alpaca
        data: {train: [data/alpaca_data.json], format: alpaca}
      - name: genmedgpt
        data: {train: [data/GenMedGPT-5k.json]}

Every key is a dataclass field below, so a typo is an error naming the file, the line
and the key. `--set stages.0.lr=1e-4`, `--set stages.alpaca.epochs=1` or
`--set stages.*.epochs=1` override values before validation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from bloomberg_style.config import ConfigError, LoggingSection, apply_override

from .prompt_tuning import PrefixSpec
from .templates import Template, get_template, template_from_dict

LORA_TARGETS = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]


class RecipeError(ConfigError):
    """A recipe file, key or value that cannot be used; the message names file, line and key."""


@dataclass
class DataSpec:
    train: list[str] = field(default_factory=list)  # files, folders or globs (.json/.jsonl[.gz])
    valid: list[str] = field(default_factory=list)  # held-out files; empty = split from train
    valid_fraction: float = 0.05  # share of train records held out when `valid` is empty
    max_valid_records: int = 200  # cap on the held-out split
    format: str = "auto"  # auto | alpaca | qa | conversation
    fields: dict[str, str] = field(default_factory=dict)  # e.g. {question: 问题, answer: 答案}
    bad_records: str = "error"  # error: stop at the first malformed record; skip: drop and count
    max_length: int = 512  # tokens per example (or per packed row)
    too_long: str = "truncate"  # truncate | drop
    packing: bool = False  # several examples per row (else one example, padded per micro-batch)
    limit: int = 0  # use only the first N training records (0 = all)


@dataclass
class LoraSpec:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    # "auto": our BLOOM's four linear layers, or peft's default for a HF base's family
    target_modules: list[str] = field(default_factory=lambda: ["auto"])
    merge: bool = True  # write the merged model (HF folder); the adapter is saved either way


@dataclass
class EvalSpec:
    max_records: int = 32  # held-out records answered by generation (0 = skip generation)
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0
    top_p: float = 1.0
    compare_base: bool = True  # also score the stage's starting model (before)
    bertscore_model: str = ""  # local folder of an encoder (e.g. roberta-large); never downloaded
    bertscore_layer: int = -1  # hidden layer whose embeddings are matched
    samples: int = 3  # example generations written to the report
    knowledge: str = ""  # JSONL knowledge base (id, title, text): answer with retrieved passages


@dataclass
class StageSpec:
    name: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    template: str = ""  # default: the recipe's template
    method: str = "full"  # full | lora | qlora (4-bit base, CUDA) | ptuning (P-tuning v2, HF bases)
    lora: LoraSpec = field(default_factory=LoraSpec)
    ptuning: PrefixSpec = field(default_factory=PrefixSpec)
    epochs: float = 3.0
    max_steps: int = 0  # 0 = from epochs
    lr: float = 2e-5
    min_lr: float = 0.0
    schedule: str = "cosine"  # cosine | linear | constant (after linear warm-up)
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    global_batch_size: int = 128
    micro_batch_size: int = 4
    zero_stage: int = 2
    precision: str = "bf16"  # fp32 | bf16
    activation_checkpointing: bool = False
    seed: int = 1234
    log_interval: int = 10
    eval_interval: int = 0  # held-out loss every N steps (0 = at the start and the end only)
    eval_samples: int = 0  # held-out rows for the loss (0 = all)
    save_interval: int = 200  # checkpoint every N steps (and at the end)
    keep_last: int = 2
    keep_checkpoints: bool = False  # keep DeepSpeed checkpoints once the stage is exported
    exit_at_step: int = 0  # stop this invocation at this step (with a checkpoint); 0 = finish
    torch_threads: int = 0
    output: str = ""  # folder under the recipe's output_dir; default: the stage name
    eval: EvalSpec = field(default_factory=EvalSpec)


@dataclass
class DemoDataSpec:
    dir: str = ""  # generate the built-in instruction set here when absent ("" = no demo data)
    records: int = 400  # per file
    seed: int = 1


@dataclass
class Recipe:
    name: str = ""
    base: str = ""  # our run/checkpoint folder or any local HF causal-LM folder
    trust_remote_code: bool = False  # a HF base with its own model code (auto_map): runs that code
    base_hint: str = ""  # shown when the base is missing (e.g. how to make it)
    tokenizer: str = ""  # default: the base's tokenizer
    output_dir: str = "runs/sft"
    template: str = "alpaca"
    templates: dict[str, dict[str, str]] = field(default_factory=dict)  # the recipe's own templates
    demo_data: DemoDataSpec = field(default_factory=DemoDataSpec)
    logging: LoggingSection = field(default_factory=LoggingSection)
    defaults: dict[str, Any] = field(default_factory=dict)  # merged into every stage
    stages: list[StageSpec] = field(default_factory=list)
    source: str = ""  # the file it came from (filled by load_recipe)

    def stage_dir(self, stage: StageSpec) -> Path:
        return Path(self.output_dir) / (stage.output or stage.name)

    def custom_templates(self) -> dict[str, Template]:
        return {n: template_from_dict(t, n) for n, t in self.templates.items()}

    def template_for(self, stage: StageSpec) -> Template:
        return get_template(stage.template or self.template, self.custom_templates())

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


# ---- loading ----------------------------------------------------------------------------


def load_recipe(path: str | Path, overrides: list[str] | None = None, base: str | None = None) -> Recipe:
    """Read a recipe YAML, merge `defaults` into each stage, apply overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: the top level must be a mapping (name, base, stages, ...)")
    if not isinstance(data.get("stages"), list) or not data["stages"]:
        raise RecipeError(f"{path}:{lines.get(('stages',), 1)}: stages: give a non-empty list of stages")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RecipeError(f"{path}:{lines.get(('defaults',), 1)}: defaults: expected a mapping")
    # Overrides first (so `defaults.x` reaches every stage), then stage i = defaults
    # deep-merged with the stage's own keys (the stage wins).
    for item in overrides or []:
        _apply_recipe_override(data, item)
    defaults = data.get("defaults") or {}
    data["stages"] = [_deep_merge(defaults, s) if isinstance(s, dict) else s for s in data["stages"]]
    if base:  # the user named the base: the recipe's hint about making its own base no longer applies
        data["base"] = base
        data.pop("base_hint", None)
    try:
        recipe = _build(Recipe, data, ())
        recipe.source = str(path)
        validate_recipe(recipe)
    except _FieldError as exc:
        line, note = _line_for(lines, exc.path)
        where = f"{path}:{line}" if line else f"{path} (--set)"
        raise RecipeError(f"{where}: {_dotted(exc.path)}{note}: {exc.message}") from None
    return recipe


def _apply_recipe_override(data: dict[str, Any], item: str) -> None:
    """`key=value` with `stages.NAME.` or `stages.*.` accepted besides `stages.N.`."""
    if "=" not in item:
        raise RecipeError(f"--set {item!r}: expected key=value, e.g. stages.0.lr=1e-4")
    dotted, value = item.split("=", 1)
    parts = dotted.split(".")
    if len(parts) > 2 and parts[0] == "stages" and not parts[1].isdigit():
        stages = data["stages"]
        if parts[1] == "*":
            targets = range(len(stages))
        else:
            targets = [i for i, s in enumerate(stages) if isinstance(s, dict) and s.get("name") == parts[1]]
            if not targets:
                names = [s.get("name") for s in stages if isinstance(s, dict)]
                raise RecipeError(f"--set {dotted}: no stage named {parts[1]!r}; stages: {names}")
        for i in targets:
            apply_override(data, f"stages.{i}.{'.'.join(parts[2:])}={value}")
        return
    try:
        apply_override(data, item)
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---- typed building with paths for error messages ---------------------------------------


class _FieldError(Exception):
    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def _build(cls: type, data: Any, path: tuple) -> Any:
    if not isinstance(data, dict):
        raise _FieldError(path, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _FieldError(path + (unknown[0],), f"unknown key {unknown[0]!r}; known keys: {sorted(known)}")
    return cls(**{k: _coerce(hints[k], v, path + (k,)) for k, v in data.items()})


def _coerce(hint: Any, value: Any, path: tuple) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin in (Union, types.UnionType):
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _FieldError(path, f"expected a list, got {value!r}")
        (item,) = get_args(hint)
        return [_coerce(item, v, path + (i,)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _FieldError(path, f"expected a mapping, got {value!r}")
        _, item = get_args(hint)
        return {str(k): _coerce(item, v, path + (k,)) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise _FieldError(path, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(path, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 2e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _FieldError(path, f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _FieldError(path, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _FieldError(path, f"expected a string, got {value!r}")
        return value
    return value


# ---- validation -------------------------------------------------------------------------


def validate_recipe(r: Recipe) -> Recipe:
    def need(ok: bool, path: tuple, message: str) -> None:
        if not ok:
            raise _FieldError(path, message)

    need(bool(r.name) and "/" not in r.name, ("name",), f"must be a non-empty name, got {r.name!r}")
    need(bool(r.base), ("base",), "give the base model: our run/checkpoint folder or a HF BLOOM folder")
    need(bool(r.output_dir), ("output_dir",), "must not be empty")
    for name, spec in r.templates.items():
        try:
            template_from_dict(spec, name)
        except ValueError as exc:
            raise _FieldError(("templates", name), str(exc)) from None
    custom = r.custom_templates()
    try:
        get_template(r.template, custom)
    except ValueError as exc:
        raise _FieldError(("template",), str(exc)) from None
    try:
        r.logging.validate()
    except ConfigError as exc:
        raise _FieldError(("logging",), str(exc)) from None
    need(r.demo_data.records >= 1, ("demo_data", "records"), "must be >= 1")
    need(bool(r.stages), ("stages",), "give at least one stage")
    seen_names, seen_dirs = set(), set()
    for i, s in enumerate(r.stages):
        p = ("stages", i)
        need(
            bool(s.name) and "/" not in s.name,
            p + ("name",),
            f"every stage needs a folder-safe name, got {s.name!r}",
        )
        need(s.name not in seen_names, p + ("name",), f"stage name {s.name!r} is used twice")
        seen_names.add(s.name)
        out = str(r.stage_dir(s))
        need(out not in seen_dirs, p + ("output",), f"output folder {out} is used by two stages")
        seen_dirs.add(out)
        _validate_stage(s, p, custom, need, hf_base=_is_hf_base(r.base))
    return r


METHODS = ("full", "lora", "qlora", "ptuning")


def _is_hf_base(base: str) -> bool:
    """An existing HF folder that is not our BLOOM (its layer names are not ours)."""
    path = Path(base)
    if not (path / "config.json").is_file():
        return False
    from .hf_base import HFBaseError, is_our_bloom

    try:
        return not is_our_bloom(path)
    except HFBaseError:
        return False


def _validate_stage(s: StageSpec, p: tuple, custom: dict[str, Template], need, hf_base: bool = False) -> None:
    d = s.data
    need(bool(d.train), p + ("data", "train"), "list the training files (files, folders or globs)")
    need(
        d.format in ("auto", "alpaca", "qa", "conversation"),
        p + ("data", "format"),
        f"must be auto, alpaca, qa or conversation, got {d.format!r}",
    )
    need(
        d.bad_records in ("error", "skip"),
        p + ("data", "bad_records"),
        f"must be error or skip, got {d.bad_records!r}",
    )
    need(
        d.too_long in ("truncate", "drop"),
        p + ("data", "too_long"),
        f"must be truncate or drop, got {d.too_long!r}",
    )
    need(d.max_length >= 8, p + ("data", "max_length"), f"must be >= 8, got {d.max_length}")
    need(
        0.0 < d.valid_fraction < 1.0,
        p + ("data", "valid_fraction"),
        f"must be in (0, 1), got {d.valid_fraction}",
    )
    need(d.max_valid_records >= 1, p + ("data", "max_valid_records"), "must be >= 1")
    need(d.limit >= 0, p + ("data", "limit"), "must be >= 0")
    if s.template:
        try:
            get_template(s.template, custom)
        except ValueError as exc:
            raise _FieldError(p + ("template",), str(exc)) from None
    need(
        s.method in METHODS,
        p + ("method",),
        f"must be one of {', '.join(METHODS)}, got {s.method!r}",
    )
    if s.method == "ptuning":
        need(
            s.ptuning.num_virtual_tokens >= 1,
            p + ("ptuning", "num_virtual_tokens"),
            f"must be >= 1, got {s.ptuning.num_virtual_tokens}",
        )
    if s.method in ("lora", "qlora"):
        lo = s.lora
        need(lo.rank >= 1, p + ("lora", "rank"), f"must be >= 1, got {lo.rank}")
        need(lo.alpha > 0, p + ("lora", "alpha"), f"must be > 0, got {lo.alpha}")
        need(0.0 <= lo.dropout < 1.0, p + ("lora", "dropout"), f"must be in [0, 1), got {lo.dropout}")
        bad = [m for m in lo.target_modules if m not in LORA_TARGETS]
        need(
            bool(lo.target_modules) and (not bad or lo.target_modules == ["auto"] or hf_base),
            p + ("lora", "target_modules"),
            f"choose from {LORA_TARGETS} (the model's linear layers) or auto, got {lo.target_modules} "
            "(a HF base's own layer names are checked against the model when it loads)",
        )
        need(
            s.zero_stage <= 2,
            p + ("zero_stage",),
            "LoRA stages use ZeRO 0-2 (a frozen base needs no sharding)",
        )
    need(s.epochs > 0 or s.max_steps > 0, p + ("epochs",), "give epochs > 0 or max_steps > 0")
    need(s.max_steps >= 0, p + ("max_steps",), "must be >= 0")
    need(s.lr > 0, p + ("lr",), f"must be > 0, got {s.lr}")
    need(0 <= s.min_lr <= s.lr, p + ("min_lr",), f"must be in [0, lr={s.lr}], got {s.min_lr}")
    need(
        s.schedule in ("cosine", "linear", "constant"),
        p + ("schedule",),
        f"must be cosine, linear or constant, got {s.schedule!r}",
    )
    need(0.0 <= s.warmup_ratio < 1.0, p + ("warmup_ratio",), f"must be in [0, 1), got {s.warmup_ratio}")
    need(s.weight_decay >= 0, p + ("weight_decay",), f"must be >= 0, got {s.weight_decay}")
    need(
        len(s.betas) == 2 and all(0 <= b < 1 for b in s.betas),
        p + ("betas",),
        f"must be two numbers in [0, 1), got {s.betas}",
    )
    need(s.grad_clip >= 0, p + ("grad_clip",), "must be >= 0 (0 disables)")
    for key in ("global_batch_size", "micro_batch_size", "log_interval", "save_interval", "keep_last"):
        need(getattr(s, key) >= 1, p + (key,), f"must be >= 1, got {getattr(s, key)}")
    need(
        s.global_batch_size % s.micro_batch_size == 0,
        p + ("global_batch_size",),
        f"{s.global_batch_size} is not divisible by micro_batch_size {s.micro_batch_size}",
    )
    need(s.zero_stage in (0, 1, 2, 3), p + ("zero_stage",), f"must be 0, 1, 2 or 3, got {s.zero_stage}")
    need(s.precision in ("fp32", "bf16"), p + ("precision",), f"must be fp32 or bf16, got {s.precision!r}")
    for key in ("eval_interval", "eval_samples", "exit_at_step", "torch_threads"):
        need(getattr(s, key) >= 0, p + (key,), f"must be >= 0, got {getattr(s, key)}")
    e = s.eval
    need(e.max_records >= 0, p + ("eval", "max_records"), "must be >= 0")
    need(e.max_new_tokens >= 1, p + ("eval", "max_new_tokens"), "must be >= 1")
    need(e.temperature >= 0, p + ("eval", "temperature"), "must be >= 0 (0 = greedy)")
    need(e.top_k >= 0, p + ("eval", "top_k"), "must be >= 0 (0 = off)")
    need(0 < e.top_p <= 1, p + ("eval", "top_p"), "must be in (0, 1]")


def stage_steps(stage: StageSpec, train_rows: int) -> int:
    """Optimizer steps of a stage: max_steps, or epochs over the rows (rounded up)."""
    if stage.max_steps:
        return stage.max_steps
    return max(1, math.ceil(stage.epochs * train_rows / stage.global_batch_size))


# ---- YAML line numbers --------------------------------------------------------------------


def _key_lines(node: yaml.Node | None, path: tuple = ()) -> dict[tuple, int]:
    """Path of every key/item in the document -> its 1-based line."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            lines[sub] = key.start_mark.line + 1
            lines.update(_key_lines(value, sub))
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            lines[path + (i,)] = value.start_mark.line + 1
            lines.update(_key_lines(value, path + (i,)))
    return lines


def _line_for(lines: dict[tuple, int], path: tuple) -> tuple[int | None, str]:
    """Line of the key, or of its nearest parent in the file, and a note when the value
    came from `defaults` (merged into every stage)."""
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]], ""
        if path[:1] == ("stages",) and n >= 3 and ("defaults",) + path[2:n] in lines:
            return lines[("defaults",) + path[2:n]], f" (from defaults.{'.'.join(map(str, path[2:n]))})"
    return None, ""


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "recipe"
