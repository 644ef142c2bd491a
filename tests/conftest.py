"""Shared fixtures: one small real data set (demo corpus -> tokenizer -> shards) per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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


def launch_env(env: dict | None = None) -> dict:
    return {**os.environ, "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(REPO), **(env or {})}


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
