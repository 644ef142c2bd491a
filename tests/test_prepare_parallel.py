"""Parallel, resumable prepare_data: real worker processes, a real SIGKILL, megatron-core's readers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bloomberg_style.data.index_file import DocumentWriter, merge_documents, read_index
from bloomberg_style.data.prepare import KILL_AFTER_ENV, PrepareError, finalize, manifest_parts, prepare
from bloomberg_style.data.shards import import_megatron_datasets, read_token_shard, write_token_shard
from bloomberg_style.demo.corpus import write_demo_corpus
from tests.conftest import host_env

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prep_corpus")
    write_demo_corpus(root, seed=5, docs_per_domain=48, docs_per_file=8)  # 6 files per domain
    return root


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**host_env(), "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "launch" / "prepare_data.py"), *args, "--no-progress"],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(prefix: Path) -> tuple[bytes, bytes]:
    return Path(f"{prefix}.bin").read_bytes(), Path(f"{prefix}.idx").read_bytes()


def test_index_writer_matches_megatron_builder(tmp_path):
    builder_cls = import_megatron_datasets().indexed_dataset.IndexedDatasetBuilder
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 500, size=n) for n in (3, 1, 17, 8)]
    for dtype in (np.uint16, np.int32):
        ours = DocumentWriter(tmp_path / f"ours{dtype.__name__}.bin", dtype)
        ref = builder_cls(str(tmp_path / f"ref{dtype.__name__}.bin"), dtype=dtype)
        for d in docs:
            ours.add(d)
            ref.add_document(d.astype(dtype), [d.size])
        ours.finalize(tmp_path / f"ours{dtype.__name__}.idx")
        ref.finalize(str(tmp_path / f"ref{dtype.__name__}.idx"))
        assert _files(tmp_path / f"ours{dtype.__name__}") == _files(tmp_path / f"ref{dtype.__name__}")
        got_dtype, lengths, doc_index = read_index(tmp_path / f"ours{dtype.__name__}.idx")
        assert (
            got_dtype == dtype and lengths.tolist() == [3, 1, 17, 8] and doc_index.tolist() == [0, 1, 2, 3, 4]
        )
        # merging two copies = megatron's add_index of both
        merge_documents(
            [tmp_path / f"ours{dtype.__name__}"] * 2, tmp_path / "m.bin", tmp_path / "m.idx", dtype
        )
        both = builder_cls(str(tmp_path / "r.bin"), dtype=dtype)
        for _ in range(2):
            both.add_index(str(tmp_path / f"ref{dtype.__name__}"))
        both.finalize(str(tmp_path / "r.idx"))
        assert _files(tmp_path / "m") == _files(tmp_path / "r")


@pytest.mark.slow
def test_sigkill_midway_then_rerun_redoes_only_unfinished_parts(corpus, demo_tokenizer_dir, tmp_path):  # noqa: F811
    args = ["--input", str(corpus / "financial"), "--tokenizer", str(demo_tokenizer_dir), "--workers", "2"]
    args += ["--parts", "6"]
    whole = _cli([*args, "--output", str(tmp_path / "whole" / "fin")])
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed" / "fin"
    killed = _cli([*args, "--output", str(out)], env={KILL_AFTER_ENV: "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert not manifest["complete"] and len(manifest["finished"]) == 2
    assert not Path(f"{out}.bin").exists()  # the merged shard comes only after every part
    finished_mtimes = {n: Path(f"{out}.parts/{n}.bin").stat().st_mtime_ns for n in manifest["finished"]}

    rerun = _cli([*args, "--output", str(out)])
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["complete"] and report["last_run"]["parts_reused"] >= 2
    assert report["last_run"]["parts_reused"] + report["last_run"]["parts_encoded"] == 6
    for name, mtime in finished_mtimes.items():  # finished parts were not written again
        assert Path(f"{out}.parts/{name}.bin").stat().st_mtime_ns == mtime
    assert _files(out) == _files(tmp_path / "whole" / "fin")
    for name in finished_mtimes:
        assert _files(Path(f"{out}.parts/{name}")) == _files(tmp_path / "whole" / "fin.parts" / name)

    # and equal to the single-writer shard of the same inputs
    reference = write_token_shard(
        [corpus / "financial"], demo_tokenizer_dir, tmp_path / "ref", progress=False
    )
    assert _files(out) == _files(tmp_path / "ref") and report["tokens"] == reference.tokens

    again = _cli([*args, "--output", str(out)])  # complete: nothing to do, nothing rewritten
    assert again.returncode == 0 and "already complete" in again.stderr


@pytest.mark.slow  # worker processes
def test_changed_inputs_or_tokenizer_are_refused(corpus, demo_tokenizer_dir, tmp_path):  # noqa: F811
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in sorted((corpus / "general").iterdir())[:3]:
        (inputs / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out" / "gen"
    first = prepare(
        [str(inputs)], demo_tokenizer_dir, out, workers=1, num_parts=3, progress=False, log=lambda m: 0
    )
    assert first["complete"] and len(manifest_parts(out)) == 3

    victim = sorted(inputs.iterdir())[1]
    victim.write_text(victim.read_text() + '{"text": "one more"}\n')
    with pytest.raises(PrepareError, match=rf"input .*{victim.name} changed.*--overwrite"):
        prepare([str(inputs)], demo_tokenizer_dir, out, num_parts=3, progress=False, log=lambda m: 0)

    other_tok = tmp_path / "tok2"
    other_tok.mkdir()
    spec = json.loads((demo_tokenizer_dir / "tokenizer.json").read_text())
    spec["model"]["vocab"][-1][1] -= 0.5  # a different model: another sha256
    (other_tok / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(PrepareError, match="the tokenizer changed"):
        prepare([str(inputs)], other_tok, out, progress=False, log=lambda m: 0)

    redone = prepare([str(inputs)], demo_tokenizer_dir, out, num_parts=3, overwrite=True, progress=False,
                     log=lambda m: 0)  # fmt: skip
    assert redone["totals"]["documents"] == first["totals"]["documents"] + 1


def test_existing_output_and_folder_output_are_refused(corpus, demo_tokenizer_dir, tmp_path):  # noqa: F811
    args = ["--input", str(corpus / "general"), "--tokenizer", str(demo_tokenizer_dir)]
    (tmp_path / "shards").mkdir()
    folder = _cli([*args, "--output", str(tmp_path / "shards") + "/"])
    assert folder.returncode == 2 and "is a folder; give a prefix inside it" in folder.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "shards"]  # no shards.bin beside the folder
    assert "Traceback" not in folder.stderr

    write_token_shard([corpus / "general"], demo_tokenizer_dir, tmp_path / "shards" / "old", progress=False)
    before = _files(tmp_path / "shards" / "old")
    clash = _cli([*args, "--output", str(tmp_path / "shards" / "old")])
    assert clash.returncode == 2 and "--overwrite" in clash.stderr
    assert _files(tmp_path / "shards" / "old") == before


@pytest.mark.slow  # worker processes
def test_dedup_exact_drops_repeats_across_parts(demo_tokenizer_dir, tmp_path):  # noqa: F811
    inputs = tmp_path / "in"
    inputs.mkdir()
    docs = [f"Document {i}: revenue rose {i}.5% to $1,{i:03d}M." for i in range(12)]
    for k in range(4):  # each file repeats two documents of the one before, with other whitespace
        chosen = docs[3 * k : 3 * k + 3] + ([docs[3 * k - 1].replace(" ", "  \n"), docs[0]] if k else [])
        (inputs / f"f{k}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in chosen))
    out = tmp_path / "out" / "d"
    manifest = prepare([str(inputs)], demo_tokenizer_dir, out, workers=2, num_parts=4, dedup="exact",
                       progress=False, log=lambda m: 0)  # fmt: skip
    assert manifest["totals"]["documents"] == 12 and manifest["totals"]["duplicates_dropped"] == 6
    from tokenizer import NumericUnigramTokenizer

    tok = NumericUnigramTokenizer.load(demo_tokenizer_dir)
    shard = read_token_shard(out)
    assert [tok.decode(shard[i][:-1].tolist()) for i in range(len(shard))] == docs  # first copies, in order
    assert json.loads(Path(f"{out}.stats.json").read_text())["duplicates_dropped"] == 6


@pytest.mark.slow
def test_slurm_array_slices_then_finalize(corpus, demo_tokenizer_dir, tmp_path):  # noqa: F811
    """Array tasks as separate processes with SLURM_ARRAY_TASK_ID, as the sbatch script runs them."""
    out = tmp_path / "arr" / "all"
    script = REPO / "launch" / "slurm" / "prepare_data.sbatch"
    env = {**host_env(), "PYTHONPATH": str(REPO), "SLURM_ARRAY_TASK_COUNT": "3", "PREPARE_WORKERS": "1",
           "PREPARE_INPUTS": str(corpus), "PREPARE_TOKENIZER": str(demo_tokenizer_dir), "PREPARE_OUTPUT": str(out),
           "PREPARE_EXTRA": "--parts 6 --no-progress"}  # fmt: skip
    early = subprocess.run(["bash", str(script), "finalize"], env=env, capture_output=True, text=True)
    assert early.returncode == 2 and "no manifest" in early.stderr
    tasks = [
        subprocess.Popen(
            ["bash", str(script)],
            env={**env, "SLURM_ARRAY_TASK_ID": str(k)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for k in (0, 2)
    ]
    assert all(t.wait(timeout=300) == 0 for t in tasks), [t.stderr.read() for t in tasks]
    missing = subprocess.run(["bash", str(script), "finalize"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "2 of 6 parts unfinished" in missing.stderr  # slice 1 never ran
    one = subprocess.run(["bash", str(script)], env={**env, "SLURM_ARRAY_TASK_ID": "1"}, capture_output=True,
                         text=True)  # fmt: skip
    assert one.returncode == 0, one.stderr
    done = subprocess.run(["bash", str(script), "finalize"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["complete"] and sorted(manifest["finished"]) == [f"part-{i:05d}" for i in range(6)]
    write_token_shard([corpus], demo_tokenizer_dir, tmp_path / "ref", progress=False)
    assert _files(out) == _files(tmp_path / "ref")
    assert finalize(out, log=lambda m: 0)["totals"]["tokens"] == manifest["totals"]["tokens"]


@pytest.mark.slow  # worker processes
def test_multi_rank_run_with_large_raw_inputs_asks_for_prepare_data_first(
    corpus,
    demo_tokenizer_dir,  # noqa: F811
    tmp_path,
):
    from bloomberg_style.config import ConfigError, DataSection, DomainSection
    from bloomberg_style.data.prepare import check_inline_preparation

    data = DataSection(
        domains=[
            DomainSection(
                name="fin", prefix=str(tmp_path / "shards" / "fin"), inputs=[str(corpus / "financial")]
            )
        ],
        tokenizer=str(demo_tokenizer_dir),
    )
    size = sum(f.stat().st_size for f in (corpus / "financial").iterdir())
    check_inline_preparation(
        data, world_size=1, limit_bytes=1
    )  # one process: built in the run, no collective
    check_inline_preparation(data, world_size=8, limit_bytes=size)  # small enough to build in the run
    with pytest.raises(
        ConfigError, match=r"8-rank run .*\n  python launch/prepare_data.py --input .*financial"
    ):
        check_inline_preparation(data, world_size=8, limit_bytes=size - 1)
    prepare([str(corpus / "financial")], demo_tokenizer_dir, tmp_path / "shards" / "fin", progress=False,
            log=lambda m: 0)  # fmt: skip
    check_inline_preparation(data, world_size=8, limit_bytes=1)  # shards exist: nothing to tokenize
