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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from bloomberg_style.config import ConfigError, LoggingSection, OptimSection, TrainSection, apply_override
from bloomberg_style.configlib import coerce, dotted_parts, load_yaml

from .prompt_tuning import PrefixSpec
from .templates import TOKENIZER_TEMPLATE, Template, get_template, template_from_dict

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


# Stage keys that are pretraining's OptimSection / TrainSection fields: the same names, types
# and checks (via `optim_section()` / `train_section()`), with fine-tuning's defaults.
OPTIM_KEYS = ("lr", "min_lr", "weight_decay", "betas", "grad_clip")
TRAIN_KEYS = ("global_batch_size", "micro_batch_size", "zero_stage", "precision", "activation_checkpointing",
              "seed", "log_interval", "eval_interval", "eval_samples", "save_interval", "keep_last",
              "exit_at_step", "torch_threads")  # fmt: skip
SFT_DEFAULTS = {
    "lr": 2e-5,
    "min_lr": 0.0,
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "grad_clip": 1.0,
    "global_batch_size": 128,
    "micro_batch_size": 4,
    "log_interval": 10,
    "eval_interval": 0,  # held-out loss every N steps (0 = at the start and the end only)
    "save_interval": 200,  # checkpoint every N steps (and at the end)
    "keep_last": 2,
}


def _section_fields() -> list[tuple[str, Any, Any]]:
    out = []
    for section, names in ((OptimSection, OPTIM_KEYS), (TrainSection, TRAIN_KEYS)):
        hints, defaults = get_type_hints(section), {f.name: f.default for f in fields(section)}
        for name in names:
            default = SFT_DEFAULTS.get(name, defaults[name])
            if isinstance(default, list):  # YAML has no tuples: betas is a list in a recipe
                out.append((name, list[float], field(default_factory=lambda d=default: list(d))))
            else:
                out.append((name, hints[name], field(default=default)))
    return out


@dataclass
class StageKeys:
    """A stage's own keys; `StageSpec` adds the OptimSection / TrainSection ones."""

    name: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    template: str = ""  # default: the recipe's template; "tokenizer": a HF base's own chat template
    method: str = "full"  # full | lora | qlora (4-bit base, CUDA) | ptuning (P-tuning v2, HF bases)
    lora: LoraSpec = field(default_factory=LoraSpec)
    ptuning: PrefixSpec = field(default_factory=PrefixSpec)
    epochs: float = 3.0
    max_steps: int = 0  # 0 = from epochs
    schedule: str = "cosine"  # cosine | linear | constant (after linear warm-up)
    warmup_ratio: float = 0.03
    keep_checkpoints: bool = False  # keep DeepSpeed checkpoints once the stage is exported
    export: str = "best"  # best: the checkpoint with the lowest held-out loss | final: the last one
    output: str = ""  # folder under the recipe's output_dir; default: the stage name
    eval: EvalSpec = field(default_factory=EvalSpec)

    def optim_section(self) -> OptimSection:
        """The stage's optimizer keys as pretraining's section (warm-up is the SFT schedule's)."""
        kwargs = {k: getattr(self, k) for k in OPTIM_KEYS}
        return OptimSection(**{**kwargs, "betas": tuple(kwargs["betas"]), "warmup_steps": 0})

    def train_section(self, steps: int) -> TrainSection:
        """The stage's loop keys as pretraining's section, for `steps` optimizer steps."""
        kwargs = {k: getattr(self, k) for k in TRAIN_KEYS}
        return TrainSection(steps=steps, **{**kwargs, "eval_interval": self.eval_interval or steps})


StageSpec = dataclasses.make_dataclass(
    "StageSpec", _section_fields(), bases=(StageKeys,), namespace={"__module__": __name__}
)
StageSpec.__doc__ = "One SFT stage: its own keys plus the OptimSection / TrainSection keys, flat in YAML."


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
    source: str = field(default="", metadata={"internal": True})  # the file (filled by load_recipe)

    def stage_dir(self, stage: StageSpec) -> Path:
        return Path(self.output_dir) / (stage.output or stage.name)

    def custom_templates(self) -> dict[str, Template]:
        return {n: template_from_dict(t, n) for n, t in self.templates.items()}

    def template_for(self, stage: StageSpec) -> Template | None:
        """The stage's template; None means the tokenizer's own chat template (`tokenizer`)."""
        name = stage.template or self.template
        if name == TOKENIZER_TEMPLATE:
            return None
        return get_template(name, self.custom_templates())

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
    try:
        data, dotted = load_yaml(path, what="recipe")
    except ConfigError as exc:
        raise RecipeError(str(exc)) from None
    lines = {tuple(int(p) if p.isdigit() else p for p in key.split(".")): n for key, n in dotted.items()}
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
    """The config engine's typed coercion; its error becomes a path for the line lookup."""
    try:
        return coerce(cls, data, "")
    except ConfigError as exc:
        parts = tuple(int(p) if p.isdigit() else p for p in dotted_parts(exc.key))
        raise _FieldError(path + parts, exc.detail) from None


# ---- validation -------------------------------------------------------------------------


def validate_recipe(r: Recipe) -> Recipe:
    def need(ok: bool, path: tuple, message: str) -> None:
        if not ok:
            raise _FieldError(path, message)

    need(bool(r.name) and "/" not in r.name, ("name",), f"must be a non-empty name, got {r.name!r}")
    need(
        bool(r.base),
        ("base",),
        "give the base model: our run/checkpoint folder or a local Hugging Face causal-LM folder",
    )
    need(bool(r.output_dir), ("output_dir",), "must not be empty")
    for name, spec in r.templates.items():
        try:
            template_from_dict(spec, name)
        except ValueError as exc:
            raise _FieldError(("templates", name), str(exc)) from None
    custom = r.custom_templates()
    try:
        _check_template(r.template, custom)
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
        need(
            s.method != "ptuning" or i == len(r.stages) - 1,
            p + ("method",),
            "a P-tuning stage must be the last stage: its prefix cannot be merged into the weights, "
            "so no later stage can start from it",
        )
    return r


def _check_template(name: str, custom: dict[str, Template]) -> None:
    if name != TOKENIZER_TEMPLATE:  # the tokenizer's template is checked when the tokenizer loads
        get_template(name, custom)


METHODS = ("full", "lora", "qlora", "ptuning")


def _is_hf_base(base: str) -> bool:
    """An existing HF folder that is not our BLOOM (its layer names are not ours)."""
    path = Path(base)
    if not (path / "config.json").is_file():
        return False
    from bloomberg_style.artifacts.hf_base import HFBaseError, is_our_bloom

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
            _check_template(s.template, custom)
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
    if s.method == "qlora":
        need(
            s.zero_stage <= 2,
            p + ("zero_stage",),
            "QLoRA stages use ZeRO 0-2: its 4-bit base is already small, and DeepSpeed's ZeRO-3 "
            "cannot partition bitsandbytes' packed 4-bit weights",
        )
    need(
        s.export in ("best", "final"),
        p + ("export",),
        f"must be best (the checkpoint with the lowest held-out loss) or final, got {s.export!r}",
    )
    need(s.epochs > 0 or s.max_steps > 0, p + ("epochs",), "give epochs > 0 or max_steps > 0")
    need(s.max_steps >= 0, p + ("max_steps",), "must be >= 0")
    need(
        s.schedule in ("cosine", "linear", "constant"),
        p + ("schedule",),
        f"must be cosine, linear or constant, got {s.schedule!r}",
    )
    need(0.0 <= s.warmup_ratio < 1.0, p + ("warmup_ratio",), f"must be in [0, 1), got {s.warmup_ratio}")
    for section in (s.optim_section(), s.train_section(steps=1)):
        try:
            section.validate()
        except ConfigError as exc:  # "optim.lr must be > 0, got -1" -> stages[i].lr: must be > 0 ...
            key, _, detail = str(exc).partition(" ")
            raise _FieldError(p + (key.partition(".")[2],), detail) from None
    need(
        s.global_batch_size % s.micro_batch_size == 0,
        p + ("global_batch_size",),
        f"{s.global_batch_size} is not divisible by micro_batch_size {s.micro_batch_size}",
    )
    need(s.torch_threads >= 0, p + ("torch_threads",), f"must be >= 0, got {s.torch_threads}")
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
