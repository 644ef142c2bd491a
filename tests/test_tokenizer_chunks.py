"""Split-and-merge across nodes: `--chunk-only K/N` jobs, then `--merge-only`, equal the single-machine run.

Each chunk job runs as its own process (as a Slurm array task would, with the array index
in the environment through launch/slurm/train_tokenizer.sbatch's arithmetic), then one
process merges. The tokenizer.json and merged_model.json must equal, byte for byte, what
train_split_merge writes on one machine with the same chunking.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import host_env, synthetic_lines
from tokenizer import train_split_merge

REPO = Path(__file__).resolve().parents[1]
N = 3


def write_sources(root: Path) -> list[str]:
    fin = synthetic_lines(240, seed=5)
    gen = synthetic_lines(120, seed=6)
    (root / "fin").mkdir(parents=True)
    (root / "gen").mkdir(parents=True)
    docs = ["".join(fin[i : i + 6]) for i in range(0, len(fin), 6)]
    (root / "fin" / "a.jsonl").write_text(
        "".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8"
    )
    for k in range(0, len(gen), 10):
        (root / "gen" / f"doc{k:03d}.txt").write_text("".join(gen[k : k + 10]), encoding="utf-8")
    return [str(root / "fin"), str(root / "gen")]


def array_task(task: str | int, count: int, sources: list[str], output: Path, extra: list[str]):
    """launch/slurm/train_tokenizer.sbatch as one array task (or the merge job) would run it."""

    env = {**host_env(), "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "TOKENIZER_INPUTS": " ".join(sources),
           "TOKENIZER_OUTPUT": str(output), "TOKENIZER_EXTRA": " ".join(extra)}  # fmt: skip
    args = ["merge"] if task == "merge" else []
    if task != "merge":
        env.update(SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_COUNT=str(count), SLURM_ARRAY_TASK_MIN="0")
    return subprocess.run(["bash", str(REPO / "launch/slurm/train_tokenizer.sbatch"), *args], env=env,
                          capture_output=True, text=True, cwd=str(REPO), timeout=300)  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bloomberg_style.cli.main", "train-tokenizer", *args],
        capture_output=True, text=True, cwd=str(REPO), timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_chunk_jobs_then_merge_equal_the_single_machine_tokenizer(tmp_path):
    sources = write_sources(tmp_path / "corpus")
    options = ["--vocab-size", "600", "--chunk-vocab-size", "500", "--quiet"]
    single = tmp_path / "single"
    train_split_merge(sources, single, vocab_size=600, chunks=N, chunk_vocab_size=500, workers=1,
                      show_progress=False)  # fmt: skip

    split = tmp_path / "split"
    for k in reversed(range(N)):  # any order: each array task is its own process
        proc = array_task(k, N, sources, split, options)
        assert proc.returncode == 0, proc.stderr
        assert f"chunk {k}/{N} written" in proc.stdout
    assert not (split / "tokenizer.json").exists()
    assert len(list((split / "chunks").glob("chunk-*.model.json"))) == N

    (split / "chunks" / "chunk-001-00000.stats.json").rename(split / "held-back.json")
    proc = cli("--output", str(split), "--merge-only", *options)
    assert proc.returncode == 2 and "missing [2]" in proc.stderr and "Traceback" not in proc.stderr
    (split / "held-back.json").rename(split / "chunks" / "chunk-001-00000.stats.json")

    proc = array_task("merge", N, sources, split, options)
    assert proc.returncode == 0, proc.stderr
    for name in ("tokenizer.json", "merged_model.json"):
        assert (split / name).read_bytes() == (single / name).read_bytes(), name
    stats = json.loads((split / "training_stats.json").read_text())
    assert [c["chunk"] for c in stats["chunks"]] == list(range(N)) and stats["mode"] == "merge-only"
    assert not (split / "chunks").exists()  # the work files go once merged (unless --keep-work)


@pytest.mark.slow
def test_chunk_spec_is_checked(tmp_path):
    sources = write_sources(tmp_path / "corpus")
    proc = cli("--input", *sources, "--output", str(tmp_path / "o"), "--chunk-only", "3/3")
    assert proc.returncode == 2 and "need 0 <= K < N" in proc.stderr
    proc = cli("--input", *sources, "--output", str(tmp_path / "o"), "--chunk-only", "0/3", "--chunks", "4")
    assert proc.returncode == 2 and "give the same N" in proc.stderr
    proc = cli("--input", *sources, "--output", str(tmp_path / "o"), "--merge-only")
    assert proc.returncode == 2 and "give no --input" in proc.stderr
    proc = cli("--output", str(tmp_path / "o"), "--merge-only")
    assert proc.returncode == 2 and "no chunk plan" in proc.stderr
