"""Bad input, tried as a new user would (issue 14 point 6): one table, one row per case.

Every command-line row runs `bloomberg-style ...` in-process (bloomberg_style.cli.main.main
with argv, stderr captured) and must end with exit code 2, a message naming the file, field
or value, and no traceback. Library rows (decode, loading) must raise a ValueError naming
it (the commands' @command wrapper turns those into exit 2). A few rows run the launch/
shims as subprocesses (slow) to show they share the wrapper.

Real files throughout: a tokenizer trained here, shards encoded with it and with a second,
smaller tokenizer, then damaged copies of them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, launch_env

DOCS = 24


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_tokenizer_dir) -> dict[str, Path]:
    """Tokenizers, shards and a run YAML that passes --dry-run; each row breaks one thing."""
    from bloomberg_style.data.shards import write_token_shard
    from bloomberg_style.demo.corpus import generate_financial_documents
    from tokenizer import NumericUnigramTokenizer

    root = tmp_path_factory.mktemp("bad_input")
    texts = generate_financial_documents(DOCS, seed=3)
    docs = root / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    tok = root / "tok"
    shutil.copytree(demo_tokenizer_dir, tok)
    other = NumericUnigramTokenizer.train(texts[:8], 300).save(root / "other_tok")  # smaller vocabulary
    shards = root / "shards"
    shards.mkdir()
    write_token_shard([docs], tok, shards / "fin")
    write_token_shard([docs], other, shards / "other")  # same text, another tokenizer
    # An older shard whose stats predate tokenizer_sha256 (vocab size / EOD id are compared).
    for name in ("bin", "idx", "stats.json"):
        shutil.copy(shards / f"other.{name}", shards / f"old.{name}")
    stats = json.loads((shards / "old.stats.json").read_text())
    stats.pop("tokenizer_sha256")
    (shards / "old.stats.json").write_text(json.dumps(stats))
    # Damaged copies: cut short as by a full disk or an interrupted copy.
    for name, cut in (("short_idx", "idx"), ("short_bin", "bin")):
        for ext in ("bin", "idx", "stats.json"):
            shutil.copy(shards / f"fin.{ext}", shards / f"{name}.{ext}")
        data = (shards / f"{name}.{cut}").read_bytes()
        (shards / f"{name}.{cut}").write_bytes(data[: len(data) // 2])
    cut_tok = root / "cut_tok"
    shutil.copytree(tok, cut_tok)
    raw = (cut_tok / "tokenizer.json").read_bytes()
    (cut_tok / "tokenizer.json").write_bytes(raw[: len(raw) // 2])
    ds = root / "ds"
    ds.mkdir()
    (ds / "bad.json").write_text('{"zero_optimization": ', encoding="utf-8")
    (ds / "clash.json").write_text('{"train_batch_size": 64}', encoding="utf-8")
    config = {
        "name": "t",
        "output_dir": str(root / "runs"),
        "model": {"preset": "tiny", "overrides": {"hidden_size": 64, "num_layers": 2, "num_heads": 4}},
        "data": {
            "tokenizer": str(tok),
            "seq_len": 64,
            "valid_fraction": 0.1,
            "domains": [{"name": "fin", "prefix": str(shards / "fin"), "weight": 1.0}],
        },
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2},
        "train": {"steps": 4, "micro_batch_size": 2, "global_batch_size": 4, "precision": "fp32"},
        "logging": {"wandb": "disabled", "progress": False},
    }
    run_yaml = root / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(config), encoding="utf-8")
    existing = root / "existing"  # someone's earlier output
    existing.mkdir()
    (existing / "tokenizer.json").write_text("{}", encoding="utf-8")
    (existing / "config.json").write_text("{}", encoding="utf-8")
    return {"root": root, "tok": tok, "cut_tok": cut_tok, "shards": shards, "docs": docs,
            "run": run_yaml, "ds": ds, "existing": existing}  # fmt: skip


def pretrain(*sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["pretrain", "--config", "{run}", "--dry-run", *extra]
    for s in sets:
        args += ["--set", s]
    return args


# (id, argv with {placeholders} from `world`, substring the message must hold, env)
ROWS = [
    # ---- numbers: finite and in range ------------------------------------------------
    ("lr-inf", pretrain("optim.lr=.inf"), "optim.lr: expected a finite number, got inf", {}),
    ("lr-nan", pretrain("optim.lr=.nan"), "optim.lr: expected a finite number", {}),
    ("lr-huge", pretrain("optim.lr=5"), "optim.lr must be > 0 and at most 1", {}),
    ("lr-negative", pretrain("optim.lr=-1e-4"), "optim.lr must be > 0 and at most 1", {}),
    ("min-lr-above-lr", pretrain("optim.min_lr=1"), "optim.min_lr", {}),
    ("weight-inf", pretrain("data.domains.0.weight=.inf"), "data.domains[0].weight: expected a finite", {}),
    ("weight-zero", pretrain("data.domains.0.weight=0"), "data.domains[0].weight must be > 0", {}),
    ("betas-three", pretrain("optim.betas=[0.9,0.95,0.99]"), "optim.betas: expected exactly 2 values", {}),
    ("betas-one", pretrain("optim.betas=[0.9]"), "optim.betas: expected exactly 2 values", {}),
    ("betas-range", pretrain("optim.betas=[0.9,1.5]"), "optim.betas must be two numbers in [0, 1)", {}),
    ("eps-zero", pretrain("optim.eps=0"), "optim.eps must be in (0, 1)", {}),
    ("grad-clip-inf", pretrain("optim.grad_clip=.inf"), "optim.grad_clip: expected a finite", {}),
    ("seq-len-huge", pretrain("data.seq_len=100000"), "data.seq_len must be in [8, 32768]", {}),
    ("seq-len-tiny", pretrain("data.seq_len=2"), "data.seq_len must be in [8, 32768]", {}),
    ("steps-zero", pretrain("train.steps=0"), "train.steps must be >= 1", {}),
    ("steps-float", pretrain("train.steps=2.5"), "train.steps: expected an integer", {}),
    ("spike-sigma-inf", pretrain("faults.spike_sigma=.inf"), "faults.spike_sigma: expected a finite", {}),
    ("threshold-nan", pretrain("controller.threshold=.nan"), "controller.threshold: expected a finite", {}),
    ("smoothing-one", pretrain("controller.smoothing=1"), "controller.smoothing must be in [0, 1)", {}),
    ("lr-factor-inf", pretrain("controller.actions=[lr_factor: .inf]"), "lr_factor: expected a finite", {}),
    ("valid-fraction", pretrain("data.valid_fraction=0.7"), "data.valid_fraction must be in (0, 0.5)", {}),
    ("peak-tflops", pretrain("train.peak_tflops=-1"), "train.peak_tflops must be >= 0", {}),
    ("pad-vocab-zero", pretrain("model.pad_vocab_to=0"), "model.pad_vocab_to must be >= 1", {}),
    # ---- names and keys ----------------------------------------------------------------
    ("name-dotdot", pretrain("name=.."), "name must be a plain folder name inside output_dir, got '..'", {}),
    ("name-slash", pretrain("name=../elsewhere"), "name must be a plain folder name", {}),
    ("name-dot", pretrain("name=."), "name must be a plain folder name", {}),
    ("name-none", pretrain("name="), "name: expected a string, got None", {}),
    ("name-empty", pretrain("name=''"), "name must be a plain folder name", {}),
    ("name-absolute", pretrain("name=/etc"), "name must be a plain folder name", {}),
    ("unknown-key", pretrain("optim.learning_rate=1e-4"), "unknown key(s) ['learning_rate']", {}),
    ("unknown-section", pretrain("optimizer.lr=1e-4"), "unknown key(s) ['optimizer']", {}),
    ("set-no-equals", pretrain("optim.lr"), "expected section.key=value", {}),
    ("config-missing", ["pretrain", "--config", "{root}/nope.yaml", "--dry-run"], "nope.yaml", {}),
    ("precision-typo", pretrain("train.precision=fp16"), "train.precision must be 'fp32' or 'bf16'", {}),
    # ---- --dry-run checks that need no process group -----------------------------------
    ("preset-unknown", pretrain("model.preset=tiny-typo"), "unknown model preset 'tiny-typo'", {}),
    ("override-unknown", pretrain("model.overrides.hidden=64"), "model.overrides.hidden: unknown key", {}),
    ("override-owned", pretrain("model.overrides.vocab_size=64"), "model.overrides.vocab_size", {}),
    (
        "batch-indivisible",
        pretrain("train.global_batch_size=6", "train.micro_batch_size=4"),
        "global batch 6",
        {},
    ),  # fmt: skip
    ("world-size-flag", pretrain(extra=("--world-size", "3")), "ranks (3)", {}),
    ("world-size-env", pretrain(), "ranks (3)", {"WORLD_SIZE": "3"}),
    ("world-size-zero", pretrain(extra=("--world-size", "0")), "--world-size must be >= 1", {}),
    (
        "ramp-indivisible",
        pretrain("train.batch_ramp=[[0,4],[2,6]]", extra=("--world-size", "2")),
        "global batch 6",
        {},
    ),  # fmt: skip
    ("shard-group", pretrain("train.shard_group_size=2"), "train.shard_group_size=2 needs zero_stage 3", {}),
    (
        "deepspeed-json-missing",
        pretrain("train.deepspeed_json={root}/no.json"),
        "deepspeed_json: file not found",
        {},
    ),
    ("deepspeed-json-bad", pretrain("train.deepspeed_json={ds}/bad.json"), "bad.json is not valid JSON", {}),
    (
        "deepspeed-json-clash",
        pretrain("train.deepspeed_json={ds}/clash.json"),
        "clash.json: train_batch_size=64 contradicts the run config",
        {},
    ),  # fmt: skip
    (
        "shard-missing",
        pretrain("data.domains.0.prefix={root}/nowhere/fin", extra=("--world-size", "1")),
        "no token shard at {root}/nowhere/fin",
        {},
    ),  # fmt: skip
    (
        "shard-missing-env",
        pretrain("data.domains.0.prefix={root}/nowhere/fin"),
        "no token shard at",
        {"WORLD_SIZE": "1"},
    ),
    (
        "shard-other-tokenizer",
        pretrain("data.domains.0.prefix={shards}/other"),
        "other.stats.json: shard",
        {},
    ),  # fmt: skip
    (
        "shard-old-stats-other-vocab",
        pretrain("data.domains.0.prefix={shards}/old"),
        "was made with a 300-token tokenizer",
        {},
    ),  # fmt: skip
    ("shard-idx-truncated", pretrain("data.domains.0.prefix={shards}/short_idx"), "short_idx.idx", {}),
    ("shard-bin-truncated", pretrain("data.domains.0.prefix={shards}/short_bin"), "short_bin.bin", {}),
    ("tokenizer-truncated", pretrain("data.tokenizer={cut_tok}"), "cut_tok/tokenizer.json", {}),
    ("tokenizer-missing-shards-exist", pretrain("data.tokenizer={root}/no_tok"), "data.tokenizer", {}),
    ("metric-unknown", pretrain("controller.metric=legal"), "controller.metric 'legal'", {}),
    # ---- evaluate -----------------------------------------------------------------------
    (
        "eval-seq-len-zero",
        ["evaluate", "--checkpoint", "{root}", "--text", "a={docs}", "--seq-len", "0"],
        "--seq-len must be in [2, 32768]",
        {},
    ),  # fmt: skip
    (
        "eval-seq-len-huge",
        ["evaluate", "--checkpoint", "{root}", "--text", "a={docs}", "--seq-len", "10000000"],
        "--seq-len must be in",
        {},
    ),  # fmt: skip
    (
        "eval-batch-zero",
        ["evaluate", "--checkpoint", "{root}", "--text", "a={docs}", "--batch-size", "0"],
        "--batch-size must be >= 1",
        {},
    ),  # fmt: skip
    (
        "eval-checkpoint-missing",
        ["evaluate", "--checkpoint", "{root}/nope", "--text", "a={docs}"],
        "--checkpoint {root}/nope",
        {},
    ),  # fmt: skip
    ("eval-data-missing", ["evaluate", "--checkpoint", "{root}", "--data", "a={root}/nope"], "--data a=", {}),
    (
        "eval-text-missing",
        ["evaluate", "--checkpoint", "{root}", "--text", "a={root}/nope.jsonl"],
        "nope.jsonl",
        {},
    ),
    (
        "eval-text-no-name",
        ["evaluate", "--checkpoint", "{root}", "--text", "{docs}"],
        "expected NAME=PATH",
        {},
    ),
    ("eval-dtype", ["evaluate", "--checkpoint", "{root}", "--dtype", "fp8"], "invalid choice: 'fp8'", {}),
    # ---- scaling-law ----------------------------------------------------------------------
    (
        "sizing-gpu-hours-1e300",
        ["scaling-law", "--gpu-hours", "1e300"],
        "gpu_hours must be in (0, 1e+10]",
        {},
    ),
    (
        "sizing-gpu-hours-inf",
        ["scaling-law", "--gpu-hours", "inf"],
        "--gpu-hours: expected a finite number",
        {},
    ),
    (
        "sizing-gpu-hours-nan",
        ["scaling-law", "--gpu-hours", "nan"],
        "--gpu-hours: expected a finite number",
        {},
    ),
    ("sizing-layers-100000", ["scaling-law", "--layers", "100000"], "layers must be <= 1,000", {}),
    ("sizing-heads-huge", ["scaling-law", "--heads", "10000000"], "heads must be <=", {}),
    ("sizing-tokens-1e300", ["scaling-law", "--tokens", "a=1e300"], "tokens[a] must be in", {}),
    ("sizing-mfu-above-1", ["scaling-law", "--mfu", "1.5"], "mfu must be in", {}),
    ("sizing-seq-len-zero", ["scaling-law", "--seq-len", "0"], "seq_len must be a positive integer", {}),
    ("sizing-gpu-unknown", ["scaling-law", "--gpu", "a100-typo"], "a100-typo", {}),
    # ---- nothing overwritten unasked -------------------------------------------------------
    (
        "export-existing-output",
        ["export-hf", "--checkpoint", "{root}", "--output", "{existing}"],
        "exists and is not empty: pass --overwrite",
        {},
    ),  # fmt: skip
    (
        "export-shard-size-words",
        ["export-hf", "--checkpoint", "{root}", "--output", "{root}/hf", "--max-shard-size", "lots"],
        "max shard size 'lots'",
        {},
    ),  # fmt: skip
    (
        "export-checkpoint-missing",
        ["export-hf", "--checkpoint", "{root}/nope", "--output", "{root}/hf"],
        "{root}/nope",
        {},
    ),  # fmt: skip
    (
        "export-output-is-file",
        ["export-hf", "--checkpoint", "{root}", "--output", "{docs}"],
        "is an existing file",
        {},
    ),  # fmt: skip
    (
        "tokenizer-existing-output",
        ["train-tokenizer", "--input", "{docs}", "--output", "{existing}"],
        "tokenizer.json exists: pass --overwrite",
        {},
    ),  # fmt: skip
    (
        "prepare-existing-shard",
        ["prepare-data", "--input", "{docs}", "--tokenizer", "{tok}", "--output", "{shards}/fin"],
        "rerun with --overwrite",
        {},
    ),  # fmt: skip
    (
        "prepare-output-folder",
        ["prepare-data", "--input", "{docs}", "--tokenizer", "{tok}", "--output", "{shards}/"],
        "is a folder",
        {},
    ),  # fmt: skip
    (
        "prepare-tokenizer-truncated",
        ["prepare-data", "--input", "{docs}", "--tokenizer", "{cut_tok}", "--output", "{root}/new/fin"],
        "cut_tok/tokenizer.json",
        {},
    ),  # fmt: skip
    # ---- the other commands' numbers and paths --------------------------------------------
    (
        "sft-lr-inf",
        ["sft", "--dry-run", "--set", "stages.0.lr=.inf"],
        "expected a finite number, got inf",
        {},
    ),
    ("sft-recipe-missing", ["sft", "--recipe", "{root}/nope.yaml", "--dry-run"], "{root}/nope.yaml", {}),
    (
        "chat-temperature-nan",
        ["chat", "--model", "{root}", "--temperature", "nan"],
        "--temperature: expected a finite number",
        {},
    ),  # fmt: skip
    (
        "chat-model-missing",
        ["chat", "--model", "{root}/nope", "--prompt", "hi"],
        "{root}/nope does not exist",
        {},
    ),
    (
        "eval-valid-fraction-nan",
        ["evaluate", "--checkpoint", "{root}", "--valid-fraction", "nan"],
        "--valid-fraction: expected a finite number",
        {},
    ),  # fmt: skip
    ("ladder-seq-len-zero", ["model-ladder", "--seq-len", "0"], "--seq-len must be positive", {}),
    ("ladder-preset-unknown", ["model-ladder", "--preset", "nope"], "unknown preset 'nope'", {}),
    ("unknown-command", ["pretrian"], "unknown command 'pretrian'", {}),
]


def fill(argv: list[str], world: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in world.items()}) for a in argv]


def run_main(argv: list[str]) -> int:
    from bloomberg_style.cli.main import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit 2 through SystemExit
        return exc.code


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_command_row(row, world, capsys, monkeypatch):
    _, argv, message, env = row
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("BLOOMBERG_STYLE_DEBUG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = run_main(fill(argv, world))
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert fill([message], world)[0] in err, err
    assert "Traceback" not in err


def test_dry_run_without_a_world_size_is_a_plan(world, capsys, monkeypatch):
    """No --world-size / WORLD_SIZE (the paper config checked on a laptop): absent shards warn."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    argv = fill(pretrain("data.domains.0.prefix={root}/nowhere/fin"), world)
    assert run_main(argv) == 0
    captured = capsys.readouterr()
    assert "warning: data.domains[fin].prefix: no token shard at" in captured.err
    assert "give --world-size N or WORLD_SIZE" in captured.out


def test_the_valid_config_passes_dry_run(world, capsys, monkeypatch):
    """The rows above break one thing each in a config that is otherwise fine."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert run_main(fill(pretrain(extra=("--world-size", "2")), world)) == 0
    out = capsys.readouterr().out
    assert "checked batch: 4 sequences = 2 x 2 ranks x 1 accumulation" in out
    assert "made with" in out


# ---- library rows: the same checks where a program calls us ---------------------------------
API_ROWS = [
    ("decode-float", lambda w: _tok(w["tok"]).decode([3.5]), "token id 3.5 is not an integer"),
    ("decode-str", lambda w: _tok(w["tok"]).decode(["3"]), "token id '3' is not an integer"),
    ("decode-bool", lambda w: _tok(w["tok"]).decode([True]), "token id True is not an integer"),
    ("decode-out-of-range", lambda w: _tok(w["tok"]).decode([10**6]), "outside the vocabulary"),
    ("tokenizer-load-truncated", lambda w: _tok(w["cut_tok"]), "cut_tok/tokenizer.json: not a readable"),
    ("read-shard-idx-truncated", lambda w: _read(w["shards"] / "short_idx"), "short_idx.idx"),
    ("read-shard-bin-truncated", lambda w: _read(w["shards"] / "short_bin"), "short_bin.bin: "),
    (
        "export-tokenizer-truncated",
        lambda w: _special_ids(w["cut_tok"]),
        "cut_tok/tokenizer.json: not a readable",
    ),
    ("trainer-shard-other-tokenizer", lambda w: _trainer_check(w, "other"), "made with another tokenizer"),
    ("trainer-shard-old-stats", lambda w: _trainer_check(w, "old"), "300-token tokenizer"),
]


def _tok(folder):
    from tokenizer import NumericUnigramTokenizer

    return NumericUnigramTokenizer.load(folder)


def _special_ids(folder):
    from bloomberg_style.export.folder import special_token_ids

    return special_token_ids(folder)


def _read(prefix):
    from bloomberg_style.data.shards import read_token_shard

    return read_token_shard(prefix)


def _trainer_check(world, shard):
    """What every training rank runs before building the datasets (data/build.py)."""
    from bloomberg_style.config import RunConfig
    from bloomberg_style.data.build import check_run_inputs

    cfg = RunConfig.load(world["run"], [f"data.domains.0.prefix={world['shards'] / shard}"])
    check_run_inputs(cfg.data)


@pytest.mark.parametrize("row", API_ROWS, ids=[r[0] for r in API_ROWS])
def test_library_row(row, world):
    _, call, message = row
    with pytest.raises(ValueError) as info:
        call(world)
    assert message in str(info.value)


def test_decode_still_takes_integer_types(world):
    import numpy as np
    import torch

    tok = _tok(world["tok"])
    ids = tok.encode("Revenue rose 12.5% to $3.1bn.")
    text = tok.decode(ids)
    assert tok.decode(np.array(ids)) == text == tok.decode(torch.tensor(ids))


def test_old_stats_with_the_same_vocabulary_only_warn(world):
    from bloomberg_style.data.shards import check_shard_tokenizer

    shards = world["shards"]
    for ext in ("bin", "idx", "stats.json"):
        shutil.copy(shards / f"fin.{ext}", shards / f"fin_old.{ext}")
    stats = json.loads((shards / "fin_old.stats.json").read_text())
    stats.pop("tokenizer_sha256")
    (shards / "fin_old.stats.json").write_text(json.dumps(stats))
    warnings: list[str] = []
    check_shard_tokenizer(shards / "fin_old", world["tok"], log=warnings.append)
    assert len(warnings) == 1 and "predates tokenizer hashes" in warnings[0]
    check_shard_tokenizer(shards / "fin", world["tok"], log=warnings.append)  # hashed: silent
    assert len(warnings) == 1


def test_debug_shows_the_traceback(world, capsys, monkeypatch):
    """--debug (or BLOOMBERG_STYLE_DEBUG=1) lets the exception through, traceback and all."""
    from bloomberg_style.configlib import ConfigError

    monkeypatch.setenv("BLOOMBERG_STYLE_DEBUG", "0")  # restored after the test: --debug sets it to 1
    with pytest.raises(ConfigError, match="optim.lr"):
        run_main(fill(pretrain("optim.lr=.inf", extra=("--debug",)), world))
    monkeypatch.setenv("BLOOMBERG_STYLE_DEBUG", "1")
    with pytest.raises(ConfigError, match="optim.lr"):
        run_main(fill(pretrain("optim.lr=.inf"), world))


def test_a_crash_is_one_line_and_exit_1(capsys, monkeypatch):
    """Not a user's mistake (a bug): still no traceback unless asked, and not exit 2."""
    from bloomberg_style.cli.errors import command

    monkeypatch.delenv("BLOOMBERG_STYLE_DEBUG", raising=False)

    @command
    def broken(argv=None, prog=None):
        raise KeyError("boom")

    assert broken([], "demo") == 1
    err = capsys.readouterr().err
    assert "demo: internal error: KeyError" in err and "--debug" in err and "Traceback" not in err


def test_repeated_text_flags_are_all_scored(world, sft_base, tmp_path, capsys):
    """`evaluate --text a=X --text b=Y` scores both domains (it used to keep only b)."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    lines = world["docs"].read_text().splitlines()
    a.write_text("\n".join(lines[:3]) + "\n")
    b.write_text("\n".join(lines[3:6]) + "\n")
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(sft_base), "--text", f"a={a}", "--text", f"b={b}",
            "--output", str(out), "--device", "cpu", "--seq-len", "64"]  # fmt: skip
    assert run_main(argv) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert {"a", "b"} <= set(json.dumps(results).replace('"', " ").split()), results


# ---- the launch shims go through the same wrapper ------------------------------------------
SHIM_ROWS = [
    ("pretrain.py", pretrain("optim.lr=.inf")[1:], "optim.lr: expected a finite number"),
    ("export_hf.py", ["--checkpoint", "{root}", "--output", "{existing}"], "pass --overwrite"),
    ("scaling_law.py", ["--gpu-hours", "1e300"], "gpu_hours must be in"),
]


@pytest.mark.slow
@pytest.mark.parametrize("row", SHIM_ROWS, ids=[r[0] for r in SHIM_ROWS])
def test_launch_shim_row(row, world):
    script, argv, message = row
    env = launch_env()
    env.pop("BLOOMBERG_STYLE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, str(REPO / "launch" / script), *fill(argv, world)],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(REPO),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
