"""Every shared fixture and test helper: real data sets, tokenizers and tiny models, built once.

small_data          demo corpus -> 1,024-token tokenizer -> shards (session)
demo_tokenizer(_dir) a 512-token tokenizer trained on 40 + 40 demo documents (session)
sft_base            a random tiny BLOOM saved as a HF folder with that tokenizer (session)
one_thread          torch on one thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`)
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> dict:
    """Demo corpus (a few hundred documents per domain), a 1,024-token tokenizer, shards."""
    from bloomberg_style.config import DataSection, DomainSection
    from bloomberg_style.data.build import ensure_run_inputs

    root = tmp_path_factory.mktemp("small_data")
    data = {
        "demo_corpus": str(root / "corpus"),
        "demo_docs_per_domain": 300,
        "tokenizer": str(root / "tokenizer"),
        "tokenizer_vocab_size": 1024,
        "seq_len": 64,
        "valid_fraction": 0.05,
        "domains": [
            {
                "name": name,
                "inputs": [str(root / "corpus" / name)],
                "prefix": str(root / "shards" / name),
                "weight": weight,
            }
            for name, weight in (("financial", 0.6), ("general", 0.4))
        ],
    }
    section = DataSection(**{**data, "domains": [DomainSection(**d) for d in data["domains"]]})
    ensure_run_inputs(section, log=lambda *_: None)
    return data


def tiny_run_config(tmp_path: Path, data: dict, name: str = "t", **sections) -> Path:
    """A run YAML for a very small model on `small_data`; `sections` update the defaults."""
    cfg = {
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "model": {"preset": "tiny", "overrides": {"hidden_size": 64, "num_layers": 2, "num_heads": 4}},
        "data": dict(data),
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "grad_clip": 1.0},
        "train": {
            "steps": 8,
            "micro_batch_size": 2,
            "global_batch_size": 4,
            "precision": "fp32",
            "zero_stage": 2,
            "log_interval": 1,
            "eval_interval": 4,
            "eval_samples": 16,
            "save_interval": 4,
            "keep_last": 2,
            "torch_threads": 1,
        },
        "logging": {"wandb": "disabled", "progress": False},
    }
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def launch_command(script: str, args: list[str], ranks: int = 1) -> list[str]:
    """launch/<script> as users run it: plain python, or the deepspeed launcher with N ranks."""
    path = str(REPO / "launch" / script)
    if ranks == 1:
        return [sys.executable, path, *args]
    from bloomberg_style.training.distributed import free_port

    port = str(free_port())  # a fresh port per launch: a killed run's socket may linger
    return [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(ranks),
            "--master_port", port, path, *args]  # fmt: skip


# What a launcher hands its workers. A test that built an engine in this process (a world of
# one) left them in os.environ, and a child that inherits them joins that world's port
# instead of starting its own: EADDRINUSE for every single-rank launch after it.
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "CROSS_RANK", "CROSS_SIZE", "MASTER_ADDR", "MASTER_PORT")  # fmt: skip


def host_env() -> dict:
    """os.environ without the process-group variables an in-process test may have set."""
    return {
        k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS and not k.startswith("TORCHELASTIC_")
    }


def launch_env(env: dict | None = None) -> dict:
    return {**host_env(), "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(REPO), **(env or {})}


def run_script(script: str, args: list[str], ranks: int = 1, timeout: int = 300, env: dict | None = None):
    """Run a launch script to completion and return the CompletedProcess (not checked)."""
    cmd = launch_command(script, args, ranks)
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=launch_env(env), cwd=str(REPO)
    )


def run_launcher(args: list[str], ranks: int = 1, timeout: int = 300, env: dict | None = None):
    """Run launch/pretrain.py as users do; fail with its output if it fails."""
    proc = run_script("pretrain.py", args, ranks, timeout, env)
    cmd = proc.args
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def check(proc: subprocess.CompletedProcess) -> str:
    """stdout + stderr of a finished launch; fail with its tail if it failed."""
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny shapes run fastest on one thread, and far faster on a machine shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- a real tokenizer trained on the demo corpus ---------------------------------------------

TOKENIZER_DOCS_PER_DOMAIN = 40  # ~2 s of training on 2 cores
TOKENIZER_VOCAB = 512


@functools.cache
def _train_demo_tokenizer(base: Path) -> Path:
    from bloomberg_style.demo.corpus import generate_financial_documents, generate_general_documents
    from tokenizer import NumericUnigramTokenizer

    texts = generate_financial_documents(TOKENIZER_DOCS_PER_DOMAIN, seed=7) + generate_general_documents(
        TOKENIZER_DOCS_PER_DOMAIN, seed=7
    )
    return NumericUnigramTokenizer.train(texts, TOKENIZER_VOCAB).save(base / "demo_tokenizer")


@pytest.fixture(scope="session")
def demo_tokenizer_dir(tmp_path_factory) -> Path:
    """Folder of a 512-token tokenizer trained on 40 + 40 demo documents (seed 7)."""
    return _train_demo_tokenizer(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def demo_tokenizer(demo_tokenizer_dir):
    from tokenizer import NumericUnigramTokenizer

    return NumericUnigramTokenizer.load(demo_tokenizer_dir)


# ---- SFT: a tiny base model, recipes, records ---------------------------------------------------

TINY = dict(vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, max_seq_len=256)


def make_tiny_base(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random tiny BloomForCausalLM saved as a HF folder with the tokenizer beside it."""
    from bloomberg_style.artifacts.hf import save_hf_folder
    from bloomberg_style.model import BloomForCausalLM, ModelConfig

    torch.manual_seed(seed)
    model = BloomForCausalLM(ModelConfig(**TINY))
    save_hf_folder(model, out, eos_token_id=0)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(Path(tokenizer_dir) / name, out / name)
    return out


@pytest.fixture(scope="session")
def sft_base(tmp_path_factory, demo_tokenizer_dir) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("sft_base") / "base", demo_tokenizer_dir)


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def tiny_defaults(**changes) -> dict:
    """Stage defaults for tiny CPU runs (1 thread per rank, no wandb, short generations)."""
    base = {
        "epochs": 2,
        "lr": 3.0e-3,
        "warmup_ratio": 0.1,
        "global_batch_size": 8,
        "micro_batch_size": 4,
        "precision": "fp32",
        "zero_stage": 2,
        "log_interval": 1,
        "save_interval": 4,
        "torch_threads": 1,
        "data": {"max_length": 192, "valid_fraction": 0.15},
        "eval": {"max_records": 3, "max_new_tokens": 8},
    }
    return {**base, **changes}


# ---- tiny Hugging Face bases (issue 15; f-sft): built from config classes, random weights ----
# A byte-level BPE tokenizer trained here and wrapped as PreTrainedTokenizerFast. Nothing is
# downloaded. The three families differ where it matters: ChatML template (qwen2), a
# [INST] template with a BOS token (llama), and no chat template and no pad token (glm).

HF_TINY_FAMILIES = ("llama", "qwen2", "glm")

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
INST_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}<<SYS>>{{ m['content'] }}<</SYS>>"
    "{% elif m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
HF_TINY_TEXT = [
    "The patient has a fever and a cough. Rest and fluids help.",
    "Dividend yield is the annual dividend divided by the share price.",
    "A contract needs an offer, acceptance and consideration.",
    "Influenza spreads by droplets; vaccination lowers the risk.",
    "Hello! How can I help you today? Thank you, goodbye.",
] * 4


def build_tiny_hf_tokenizer(family: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )  # fmt: skip
    backend.train_from_iterator(HF_TINY_TEXT, trainer)
    if family == "qwen2":
        tok = PreTrainedTokenizerFast(
            tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
            additional_special_tokens=["<|im_start|>"],
        )  # fmt: skip
        tok.chat_template = CHATML_TEMPLATE
    elif family == "llama":
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")
        tok.chat_template = INST_TEMPLATE
    else:  # no chat template, no pad token: our templates and pad = eos
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")
    return tok


def build_tiny_hf_model(family: str, vocab_size: int):
    import torch
    import transformers

    small = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=None, bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    config_class, model_class = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "glm": (transformers.GlmConfig, transformers.GlmForCausalLM),
    }[family]
    extra = {"head_dim": 8} if family == "glm" else {}
    torch.manual_seed(0)
    return model_class(config_class(**small, **extra)).eval()


def save_tiny_hf_base(family: str, folder):
    """A HF folder (config.json, safetensors, tokenizer files) of a tiny `family` model."""
    tok = build_tiny_hf_tokenizer(family)
    model = build_tiny_hf_model(family, len(tok))
    model.config.eos_token_id = tok.eos_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session", params=HF_TINY_FAMILIES)
def tiny_hf_base(request, tmp_path_factory):
    """(family, folder) of a saved tiny HF base, once per family and session."""
    family = request.param
    return family, save_tiny_hf_base(family, tmp_path_factory.mktemp(f"hf-{family}"))


@pytest.fixture(scope="session")
def tiny_hf_base_factory(tmp_path_factory):
    """family -> folder of a saved tiny HF base (cached per session)."""
    made: dict = {}

    def make(family: str):
        if family not in made:
            made[family] = save_tiny_hf_base(family, tmp_path_factory.mktemp(f"hf-{family}"))
        return made[family]

    return make


# ---- end of tiny Hugging Face bases (f-sft) ----


# ---- tokenizer text: short finance and general lines (test_tokenizer*, split and merge) ----

_WORDS_TEXT = """the of and to in a is that for on with as was by at from it an be are this which or has have
market markets stock stocks share shares price prices bank banks bond bonds yield yields rate rates index
investor investors trading trader traders revenue revenues profit profits loss losses earnings quarter
quarterly annual fiscal year years month week day dollar dollars euro yen currency currencies inflation
interest central federal reserve policy economy economic growth recession forecast analyst analysts
company companies firm corporate board chief executive officer director report reported reports said says
rose fell climbed dropped gained slipped jumped declined rallied tumbled surged eased steady higher lower
percent billion million sales margin margins debt credit risk fund funds capital equity asset assets
weather city museum art river mountain school students teacher music film history science research team
season championship election government minister council village garden library hospital doctor water"""
WORDS = _WORDS_TEXT.split()


def synthetic_lines(n: int = 400, seed: int = 0) -> list[str]:
    """Short finance and general sentences with numbers, currency, punctuation and some non-ASCII."""
    rng = random.Random(seed)
    companies = [
        "Acme Corp",
        "Globex",
        "Initech",
        "Umbrella Holdings",
        "Stark Industries",
        "Wayne Enterprises",
    ]
    indexes = ["The Dow", "The S&P 500", "The Nasdaq", "The FTSE 100", "The Nikkei 225", "The DAX"]
    lines = []
    for _ in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        kind = rng.randrange(4)
        if kind == 0:
            lines.append(
                f"{rng.choice(indexes)} {words} {rng.uniform(0, 5):.2f}% to {rng.randint(1000, 40000):,}.\n"
            )
        elif kind == 1:
            lines.append(
                f"{rng.choice(companies)} {words}: ${rng.randint(1, 999)}.{rng.randint(0, 9)} billion "
                f"(Q{rng.randint(1, 4)} {rng.randint(1990, 2024)}), EPS ${rng.uniform(0, 9):.2f}.\n"
            )
        elif kind == 2:
            lines.append(
                f"{words.capitalize()} — €{rng.randint(10, 500)},{rng.randint(0, 99):02d}; 日本 ¥{rng.randint(1, 9)}\n"
            )
        else:
            lines.append(
                f"{words.capitalize()}, {rng.choice(WORDS)} {rng.choice(WORDS)} since {rng.randint(1900, 2020)}.\n"
            )
    return lines


def _tokenizer_samples() -> list[str]:
    """Round-trip samples: synthetic lines plus empty, non-ASCII, NUL, EOD inside text, spacing."""
    from tokenizer import EOD_TOKEN

    return synthetic_lines()[:20] + [
        "",
        "日本 😀 \x00",
        f"a{EOD_TOKEN}b",
        "  leading and trailing  ",
        "x , y . z",
    ]


TOKENIZER_SAMPLES = _tokenizer_samples()


# ---- torchrun launches (test_restart, test_watchdog) ----

COMMON = {"steps": 10, "save_interval": 3, "eval_interval": 100}


def losses(run_dir: Path) -> dict[int, float]:
    from bloomberg_style.training.metrics import read_jsonl

    return {r["step"]: r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r}


def stopped_at(run: Path, copy: Path, step: int) -> None:
    """`copy` becomes `run` as it was when it stopped after `step`'s checkpoint: later
    checkpoints and log lines dropped, `latest` pointing at it (what exit_at_step leaves)."""
    from bloomberg_style.artifacts.layout import LATEST_FILE, complete_checkpoints, tag_for_step
    from bloomberg_style.training.metrics import read_jsonl

    shutil.copytree(run, copy)
    tag = tag_for_step(step)
    for folder in complete_checkpoints(copy / "checkpoints"):
        if folder.name > tag:  # zero-padded tags sort by step
            shutil.rmtree(folder)
    (copy / "checkpoints" / LATEST_FILE).write_text(tag + "\n")
    for log in ("metrics.jsonl", "events.jsonl"):
        write_jsonl(copy / log, [r for r in read_jsonl(copy / log) if r.get("step", 0) <= step])


def torchrun(config: Path, env: dict | None = None, extra: list[str] = (), timeout: int = 400):
    """The documented single-node launch: torchrun --standalone ... --max-restarts 3."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--max-restarts", "3", str(REPO / "launch" / "pretrain.py"), "--config", str(config), *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                          env=launch_env({"OMP_NUM_THREADS": "1", **(env or {})}))  # fmt: skip
    assert proc.returncode == 0, (
        f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc
