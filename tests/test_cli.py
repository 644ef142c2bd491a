"""The `bloomberg-style` command: dispatch, the demo dry-run, flags derived from the config
dataclasses, thin launch shims, and a non-editable `pip install --target` that runs the demo's
dry-run from an unrelated folder (package data, no repository lookups)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bloomberg_style.cli.main import COMMANDS, main
from bloomberg_style.configlib import from_flags, packaged
from tests.conftest import host_env

REPO = Path(__file__).resolve().parents[1]


def test_no_command_prints_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("pretrain", "train-tokenizer", "prepare-data", "sft", "evaluate", "export-hf", "chat",
                 "scaling-law", "model-ladder"):  # fmt: skip
        assert f"  {name} " in out
    assert main(["pretrian"]) == 2 and "unknown command 'pretrian'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert f"usage: bloomberg-style {name}" in capsys.readouterr().out or name in (
        "export-hf",
        "model-ladder",
    )


def test_pretrain_dry_run_prints_the_demo_config(capsys):
    assert main(["pretrain", "--dry-run", "--set", "train.steps=7"]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out.split("\n{")[0])
    assert resolved["name"] == "demo" and resolved["train"]["steps"] == 7
    assert '"config_hash"' in out and '"total_tokens": 14336' in out  # 7 x 8 x 256


def test_demo_files_are_package_data_and_configs_folder_still_works():
    assert packaged("pretrain/demo.yaml").read_bytes() == (REPO / "configs/pretrain/demo.yaml").read_bytes()
    for name in ("sft/demo.yaml", "eval/fpb_demo.jsonl", "eval/headline_demo.jsonl"):
        assert packaged(name).is_file(), name
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "bloomberg_style").rglob("*.py")
        if "parents[2]" in p.read_text(encoding="utf-8")
    ]
    assert offenders == [], f"repository lookups left in the package: {offenders}"


def test_bad_config_error_names_file_line_and_key(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    text = packaged("pretrain/demo.yaml").read_text(encoding="utf-8")
    cfg.write_text(text.replace("precision: fp32", "precision: fp16"), encoding="utf-8")
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if "precision: fp16" in t)
    assert main(["pretrain", "--config", str(cfg), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:{line}: train.precision must be 'fp32' or 'bf16'" in err and "Traceback" not in err
    cfg.write_text(text.replace("  seq_len: 256", "  seq_len: 256\n  seq_lne: 3"), encoding="utf-8")
    assert main(["pretrain", "--config", str(cfg), "--dry-run"]) == 2
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if "seq_lne" in t)
    assert f"{cfg}:{line}: data.seq_lne: unknown key(s) ['seq_lne']" in capsys.readouterr().err
    assert main(["pretrain", "--dry-run", "--set", "train.zero_stage=7"]) == 2
    assert "(from --set train.zero_stage)" in capsys.readouterr().err


def test_flag_defaults_are_the_dataclass_defaults():
    """The commands' flags come from the dataclasses: parsing no flags gives the defaults."""
    from bloomberg_style.cli import evaluate, scaling_law, train_tokenizer
    from bloomberg_style.evaluation.run import EvalOptions
    from bloomberg_style.sizing import SizingInputs
    from tokenizer.options import TokenizerOptions
    from tokenizer.split_merge import train_split_merge

    sizing = scaling_law.inputs_from_args(scaling_law.build_parser().parse_args([]))
    assert sizing == SizingInputs()
    changed = scaling_law.inputs_from_args(
        scaling_law.build_parser().parse_args(["--no-checkpointing", "--layers", "40", "--epochs", "2"])
    )
    assert (changed.checkpointing, changed.layers, changed.epochs) == (False, 40, 2.0)
    args = evaluate.build_parser().parse_args(["--checkpoint", "x", "--valid-fraction", "0.1"])
    assert from_flags(EvalOptions, args) == EvalOptions(checkpoint="x", valid_fraction=0.1)
    args = train_tokenizer.build_parser().parse_args(["--input", "a", "--output", "b"])
    assert from_flags(TokenizerOptions, args) == TokenizerOptions()
    # The options dataclass and the trainer agree on every keyword and default.
    params = inspect.signature(train_split_merge).parameters
    modes = {"chunk_only", "merge_only"}  # which job runs (one chunk, the merge), not trainer options
    fields = {f.name: f.default for f in dataclasses.fields(TokenizerOptions) if f.name not in modes}
    assert fields == {n: p.default for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


def test_tokenizer_options_yaml_names_the_line(tmp_path):
    from bloomberg_style.configlib import ConfigError
    from tokenizer.options import TokenizerOptions

    path = tmp_path / "tok.yaml"
    path.write_text("vocab_size: 4000\nsweep: [300, 900, 3]\nworkers: two\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:3: workers: expected an integer, got 'two'"):
        TokenizerOptions.load(path)
    assert TokenizerOptions.load(path, ["workers=2"]).sweep == (300, 900, 3)


def test_launch_scripts_are_thin_shims():
    for script in sorted((REPO / "launch").glob("*.py")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        code = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        lines = {i for n in code for i in range(n.lineno, n.end_lineno + 1)}
        assert len(lines) <= 40, f"{script.name}: {len(lines)} lines of code"
        imported = [n.module for n in code if isinstance(n, ast.ImportFrom)]
        assert any(m and m.startswith("bloomberg_style.cli.") for m in imported), script.name


@pytest.mark.slow
def test_non_editable_install_runs_the_demo_dry_run(tmp_path):
    """`pip install --no-deps --target DIR .`, then DIR/bin/bloomberg-style from an unrelated folder."""
    source, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    anywhere = shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", ".*_cache")
    top_only = {"runs", "data", "wandb", "build"}  # a user's outputs; bloomberg_style/data is code

    def skip(folder: str, names: list[str]) -> set[str]:
        return anywhere(folder, names) | (top_only & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    done = subprocess.run([*pip, str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    elsewhere.mkdir()
    env = {**host_env(), "PYTHONPATH": str(target), "DS_ACCELERATOR": "cpu"}
    script = [str(target / "bin" / "bloomberg-style")]  # run as installed: its own shebang
    where = subprocess.run([sys.executable, "-c", "import bloomberg_style; print(bloomberg_style.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(target))
    done = subprocess.run([*script, "pretrain", "--dry-run"], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout.split("\n{")[0])["name"] == "demo"
    done = subprocess.run([*script, "sft", "--dry-run"], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "stage finance-chat" in done.stdout, done.stderr
    assert not (elsewhere / "runs").exists()  # a dry run writes nothing


def test_scaling_law_reads_its_inputs_from_yaml(tmp_path, capsys):
    import json

    from bloomberg_style.sizing import SizingInputs, result_to_dict, run_sizing
    from bloomberg_style.sizing.plan import BatchPhase

    path = tmp_path / "sizing.yaml"
    path.write_text("gpu_hours: 2.0e5\ngpu: h100-sxm\ntokens: {legal: 120e9, web: 900e9}\n"
                    "batch_ramp: [{sequences: 512, steps: 1000}, {sequences: 1024, steps: null}]\n")  # fmt: skip
    assert main(["scaling-law", "--config", str(path), "--gpu-hours", "1e5", "--json"]) == 0
    expected = SizingInputs(gpu_hours=1e5, gpu="h100-sxm", tokens={"legal": 120e9, "web": 900e9}, min_share={},
                            batch_ramp=(BatchPhase(512, 1000), BatchPhase(1024, None)))  # fmt: skip
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result_to_dict(run_sizing(expected))))
    path.write_text("gpu: h100-sxm\nbuffer: 1.5\n")
    assert main(["scaling-law", "--config", str(path)]) == 2
    assert f"{path}:2: buffer" in capsys.readouterr().err


def test_sft_stage_keys_are_the_pretraining_sections():
    from bloomberg_style.config import OptimSection, TrainSection
    from bloomberg_style.sft.recipe import OPTIM_KEYS, TRAIN_KEYS, StageSpec

    optim, train = (
        {f.name for f in dataclasses.fields(OptimSection)},
        {f.name for f in dataclasses.fields(TrainSection)},
    )
    assert set(OPTIM_KEYS) <= optim and set(TRAIN_KEYS) <= train
    stage = StageSpec(name="s", lr=1e-4, betas=[0.9, 0.95], global_batch_size=16, eval_interval=0)
    assert stage.optim_section() == OptimSection(lr=1e-4, min_lr=0.0, warmup_steps=0, betas=(0.9, 0.95),
                                                 weight_decay=0.0, grad_clip=1.0)  # fmt: skip
    built = stage.train_section(steps=40)
    assert (built.steps, built.global_batch_size, built.eval_interval, built.log_interval) == (40, 16, 40, 10)


def test_prepare_data_and_export_hf_flags_are_the_dataclass_fields():
    """prepare-data and export-hf flags come from PrepareOptions / ExportOptions like the other commands."""
    from bloomberg_style.cli import export_hf, prepare_data
    from bloomberg_style.data.prepare import PrepareOptions, prepare
    from bloomberg_style.export.folder import ExportOptions

    parser = prepare_data.build_parser()
    assert from_flags(PrepareOptions, parser.parse_args(["--output", "x"])) == PrepareOptions()
    args = parser.parse_args(
        ["--output", "x", "--parts", "3", "--no-merge", "--dedup", "exact", "--no-progress"]
    )
    assert from_flags(PrepareOptions, args) == PrepareOptions(
        num_parts=3, merge=False, dedup="exact", progress=False
    )
    # The options and prepare() agree on every keyword and default (slice and log are per call).
    params = inspect.signature(prepare).parameters
    fields = {f.name: f.default for f in dataclasses.fields(PrepareOptions)}
    keywords = {n: p.default for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert fields == {n: d for n, d in keywords.items() if n not in ("slice_spec", "log")}
    with pytest.raises(SystemExit):
        export_hf.main(["--output", "y"])  # --checkpoint is required
    assert [f.name for f in dataclasses.fields(ExportOptions)] == [
        "checkpoint",
        "output",
        "dtype",
        "tokenizer",
        "overwrite",
        "max_shard_size",
    ]
    assert export_hf.main(["--checkpoint", "/nonexistent/run", "--output", "/tmp/never-written"]) == 2
