"""Continued pretraining: a Hugging Face BLOOM with its own BPE tokenizer as the starting point.

A tiny random BLOOM (transformers' BloomConfig) is saved with a byte-level BPE tokenizer
trained here; prepare_data encodes a corpus with that tokenizer (its eos token ends each
document), and launch/pretrain.py continues training it on 2 gloo ranks. Step 0's training
loss must equal transformers' loss on the same rows, and the loss must fall.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import yaml

from bloomberg_style.config import ConfigError, RunConfig
from tests.conftest import run_launcher, run_script

EOS = "<|endoftext|>"
WORDS = [
    "the",
    "bank",
    "raised",
    "its",
    "rate",
    "by",
    "basis",
    "points",
    "while",
    "bond",
    "yields",
    "fell",
    "and",
    "the",
    "market",
    "rallied",
]


def corpus_text(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + f" {rng.randint(1, 99)}%."
        for _ in range(n)
    ]


def save_bpe_bloom(folder: Path, vocab_rows: int = 384) -> tuple[Path, int]:
    """A random tiny transformers BLOOM + its trained BPE tokenizer; the embedding padded to vocab_rows."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS, "<pad>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    backend.train_from_iterator(corpus_text(200, seed=1), trainer)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, pad_token="<pad>")
    assert len(tok) <= vocab_rows
    torch.manual_seed(0)
    config = transformers.BloomConfig(
        vocab_size=vocab_rows, hidden_size=32, n_layer=2, n_head=4, hidden_dropout=0.0, attention_dropout=0.0,
        eos_token_id=tok.eos_token_id, bos_token_id=None, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    model = transformers.BloomForCausalLM(config).eval()
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder, len(tok)


@pytest.fixture(scope="module")
def bpe_bloom(tmp_path_factory) -> tuple[Path, int]:
    return save_bpe_bloom(tmp_path_factory.mktemp("bpe-bloom"))


def write_corpus(folder: Path, n: int = 160) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus_text(n, seed=2)), encoding="utf-8")
    return path


def run_yaml(tmp_path: Path, base: Path, prefix: str, **train) -> Path:
    cfg = {
        "name": "continued",
        "output_dir": str(tmp_path / "runs"),
        "model": {"init_from": str(base), "overrides": {"attention_impl": "eager"}},
        "data": {"tokenizer": str(base), "seq_len": 32, "valid_fraction": 0.1,
                 "domains": [{"name": "finance", "prefix": prefix}]},
        "optim": {"lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 0, "grad_clip": 1.0, "weight_decay": 0.0},
        "train": {"steps": 6, "micro_batch_size": 2, "global_batch_size": 4, "precision": "fp32",
                  "zero_stage": 2, "log_interval": 1, "eval_interval": 6, "eval_samples": 8,
                  "save_interval": 6, "keep_last": 1, "torch_threads": 1, **train},
        "logging": {"wandb": "disabled", "progress": False},
    }  # fmt: skip
    path = tmp_path / "continued.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def transformers_step0_loss(cfg: RunConfig, base: Path, eod_id: int, vocab_rows: int) -> float:
    """transformers' loss on the rows step 0 reads (2 ranks x 1 micro-batch of 2), averaged as the trainer does."""
    import transformers

    from bloomberg_style.training.data_order import DataOrder
    from bloomberg_style.training.pretrain import pretraining_task

    task, _ = pretraining_task(cfg, eod_id, vocab_rows)
    order = DataOrder(len(task.train))
    model = transformers.BloomForCausalLM.from_pretrained(str(base), dtype=torch.float32).eval()
    losses = []
    for rank in range(2):
        batch = task.collate([task.train[order.index(p)] for p in (2 * rank, 2 * rank + 1)])
        with torch.no_grad():
            logits = model(input_ids=batch["tokens"].long()).logits
        per_token = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), batch["labels"].long().flatten(), reduction="none"
        )
        mask = batch["loss_mask"].flatten().float()
        losses.append(float((per_token * mask).sum() / mask.sum()))
    return sum(losses) / len(losses)


@pytest.mark.slow
def test_continue_pretraining_a_bpe_bloom_on_two_ranks(tmp_path, bpe_bloom):
    from bloomberg_style.data.prepare import prepare
    from bloomberg_style.data.shards import ShardStats, load_run_tokenizer
    from bloomberg_style.training.metrics import read_jsonl

    base, tokens = bpe_bloom
    tok = load_run_tokenizer(base)
    assert tok.vocab_size == tokens and tok.eod_id == tok.backend.token_to_id(EOS)
    prefix = tmp_path / "shards" / "finance"
    prepare(
        [str(write_corpus(tmp_path / "corpus"))], base, prefix, workers=1, progress=False, log=lambda *_: None
    )
    stats = ShardStats.load(prefix)
    assert stats.vocab_size == tokens and stats.eod_id == tok.eod_id and stats.tokenizer_sha256

    config = run_yaml(tmp_path, base, str(prefix))
    proc = run_launcher(["--config", str(config)], ranks=2, timeout=600)
    assert "starting weights from model.init_from" in proc.stdout + proc.stderr
    run = tmp_path / "runs" / "continued"
    train = {r["step"]: r["loss"] for r in read_jsonl(run / "metrics.jsonl") if "loss" in r}
    assert sorted(train) == list(range(1, 7))

    cfg = RunConfig.load(config)
    expected = transformers_step0_loss(cfg, base, tok.eod_id, 384)
    print(f"step-0 loss: trainer {train[1]:.6f}, transformers {expected:.6f}; step 6: {train[6]:.4f}")
    assert train[1] == pytest.approx(expected, abs=1e-4)  # the step-0 batch, before any update
    assert train[6] < train[1] - 0.3
    state = json.loads((run / "checkpoints" / "step_00000006" / "trainer_state.json").read_text())
    assert state["model_shape"]["vocab_size"] == 384  # the checkpoint's rows, not the tokenizer's 300-odd

    # Rerun with more steps: it resumes from its own checkpoint, not from init_from again.
    proc = run_launcher(["--config", str(config), "--set", "train.steps=7"], ranks=1, timeout=600)
    out = proc.stdout + proc.stderr
    assert "resumed from" in out and "starting weights from model.init_from" not in out


ZERO3_SCRIPT = """
import sys, torch, deepspeed
from bloomberg_style.training.distributed import init_distributed
from bloomberg_style.training.init_from import init_model_config, load_initial_weights, read_initial_state
from bloomberg_style.training.init_from import resolve_init_from
from bloomberg_style.model import BloomForCausalLM

dist = init_distributed(1)
ref = resolve_init_from(sys.argv[-1])
cfg = init_model_config(ref, {}, 1, max_seq_len=32)
with deepspeed.zero.Init(config_dict_or_path={"train_micro_batch_size_per_gpu": 1,
                                              "zero_optimization": {"stage": 3}}):
    model = BloomForCausalLM(cfg)  # built partitioned: each rank holds a shard of every parameter
params = dict(model.named_parameters())
assert all(hasattr(p, "ds_id") for p in params.values())
shard = max(p.ds_tensor.numel() for p in params.values())
full = max(p.ds_numel for p in params.values())
filled = load_initial_weights(model, ref, dist.rank)
want = read_initial_state(ref)
differ = []
for name, p in params.items():
    with deepspeed.zero.GatheredParameters([p]):
        if not torch.equal(p.data, want[name].to(p.dtype)):
            differ.append(name)
print(f"rank {dist.rank}: {filled} filled, {len(differ)} differ, largest shard {shard} of {full}", flush=True)
torch.distributed.barrier()
torch.distributed.destroy_process_group()  # no gloo thread left to abort at exit ("terminate called")
sys.exit(1 if differ else 0)
"""


@pytest.mark.slow
def test_zero3_partitioned_model_is_filled_per_parameter(tmp_path, bpe_bloom):
    """A model built under deepspeed.zero.Init gets init_from's weights via GatheredParameters."""
    import subprocess
    import sys

    from bloomberg_style.training.distributed import free_port
    from tests.conftest import launch_env

    base, _ = bpe_bloom
    script = tmp_path / "zero3_fill.py"
    script.write_text(ZERO3_SCRIPT, encoding="utf-8")
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port",
           str(free_port()), str(script), str(base)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=launch_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    import re

    for rank in (0, 1):
        found = re.search(rf"rank {rank}: (\d+) filled, (\d+) differ, largest shard (\d+) of (\d+)", out)
        assert found, out[-4000:]
        filled, differ, shard, full = (int(g) for g in found.groups())
        assert filled > 0 and differ == 0, found.group(0)
        assert shard < full  # really partitioned: no rank held the whole model while it was filled


def test_larger_tokenizer_than_the_embedding_is_refused(tmp_path, bpe_bloom):
    from bloomberg_style.training.init_from import init_model_config, resolve_init_from

    base, tokens = bpe_bloom
    ref = resolve_init_from(str(base))
    cfg = init_model_config(ref, {}, tokens, max_seq_len=32)
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads) == (384, 32, 2, 4)
    with pytest.raises(ConfigError, match="385 tokens but model.init_from .* embedding of 384 rows"):
        init_model_config(ref, {}, 385, max_seq_len=32)
    with pytest.raises(ConfigError, match=r"model.overrides \['hidden_size'\]"):
        init_model_config(ref, {"hidden_size": 64}, tokens, max_seq_len=32)
    with pytest.raises(ConfigError, match="model.init_from: model path .* does not exist"):
        resolve_init_from(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_shards_of_another_tokenizer_are_refused(tmp_path, bpe_bloom, demo_tokenizer_dir):
    """check_shard_tokenizer: the trainer's refusal, before any process group (exit 2, no traceback)."""
    from bloomberg_style.data.shards import ShardTokenizerMismatch, check_shard_tokenizer, write_token_shard

    base, _ = bpe_bloom
    prefix = tmp_path / "shards" / "finance"
    write_token_shard(
        [str(write_corpus(tmp_path / "corpus", n=20))], demo_tokenizer_dir, prefix, progress=False
    )
    check_shard_tokenizer(prefix, demo_tokenizer_dir)  # its own tokenizer: fine
    with pytest.raises(ShardTokenizerMismatch, match="was made with another tokenizer"):
        check_shard_tokenizer(prefix, base)

    proc = run_script("pretrain.py", ["--config", str(run_yaml(tmp_path, base, str(prefix)))])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "data.domains[0] (finance):" in proc.stderr and "made with another tokenizer" in proc.stderr
    assert "Traceback" not in proc.stderr
