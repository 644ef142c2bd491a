"""Parallel, resumable token-shard preparation: many part shards under one manifest.

    OUTPUT.manifest.json        inputs (size, mtime), tokenizer sha256, the plan, parts finished
    OUTPUT.parts/part-NNNNN.*   one megatron-core IndexedDataset per part (.bin .idx .stats.json)
    OUTPUT.bin / .idx / .stats.json   the parts concatenated in order (unless --no-merge)

The inputs (sorted, as `corpus.resolve_inputs` gives them) are cut into
contiguous parts of about equal bytes; the plan is fixed when the manifest is
first written, so a part's content depends only on its files and the
tokenizer. Each part is encoded by one worker process on one core (the
tokenizer's Rust thread pool is switched off in the worker), written under
temporary names and renamed, and its stats file is written last: a part with a
stats file is finished. Rerunning the same command after a crash or a kill
redoes only the unfinished parts, and the result is byte-identical to an
uninterrupted run. Changed inputs or a changed tokenizer are refused unless
`--overwrite` asks to start over.

`--slice K/N` prepares only the K-th of N disjoint blocks of parts (a Slurm
array task, see launch/slurm/prepare_data.sbatch); `--finalize` checks that
every input is in exactly one finished part and the token counts add up, then
merges. `--dedup exact` drops documents whose normalised text (NFC, runs of
whitespace as one space, stripped) was seen earlier in corpus order, across all
parts: a first pass hashes every document, in the same workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloomberg_style.atomic import atomic_write_text
from bloomberg_style.corpus import CorpusError, _read_file, resolve_inputs
from bloomberg_style.data.index_file import DocumentWriter, merge_documents, read_index
from bloomberg_style.data.shards import (
    ShardStats,
    bin_path,
    idx_path,
    stats_path,
    token_dtype,
)

FORMAT = "bloomberg_style.prepare/1"
KILL_AFTER_ENV = "BLOOMBERG_STYLE_PREPARE_KILL_AFTER"  # tests: SIGKILL this process after K parts
DEFAULT_PART_BYTES = 1 << 30  # resume granularity: at most ~1 GiB of text per part


class PrepareError(ValueError):
    """A refusal before or during preparation; the message says what to do."""


# ---------------------------------------------------------------- paths


def manifest_path(output: str | Path) -> Path:
    return Path(f"{output}.manifest.json")


def parts_dir(output: str | Path) -> Path:
    return Path(f"{output}.parts")


def part_prefix(output: str | Path, name: str) -> Path:
    return parts_dir(output) / name


def check_output_prefix(output: str | Path) -> Path:
    """The output prefix, refused if it is a folder or ends in .bin/.idx."""
    text = str(output)
    prefix = Path(text)
    if text.endswith(("/", os.sep)) or prefix.is_dir():
        raise PrepareError(
            f"--output {text!r} is a folder; give a prefix inside it, e.g. {prefix / 'financial'} "
            f"(writes {prefix / 'financial'}.bin, .idx, .manifest.json and .parts/)"
        )
    if prefix.name in ("", ".", ".."):
        raise PrepareError(f"--output {text!r} needs a file name part, e.g. shards/financial")
    if prefix.suffix in (".bin", ".idx"):
        raise PrepareError(
            f"--output {text!r} ends in {prefix.suffix}; give it without: {prefix.with_suffix('')}"
        )
    return prefix


def manifest_parts(output: str | Path) -> list[Path]:
    """The part prefixes a finished manifest lists, in order (what a domain expands to)."""
    manifest = load_manifest(output)
    if manifest is None:
        raise FileNotFoundError(f"no manifest at {manifest_path(output)}")
    return [part_prefix(output, p["name"]) for p in manifest["parts"]]


# ---------------------------------------------------------------- identity and plan


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tokenizer_identity(folder: str | Path) -> dict[str, Any]:
    """sha256 of tokenizer.json, its vocabulary size and end-of-document id."""
    from bloomberg_style.data.shards import TokenizerFolderError, load_run_tokenizer

    file = Path(folder)
    file = file / "tokenizer.json" if file.is_dir() else file
    if not file.is_file():
        raise PrepareError(f"--tokenizer {folder}: no tokenizer.json there (run launch/train_tokenizer.py)")
    try:  # ours, or any Hugging Face tokenizer folder (its eos token ends each document)
        tok = load_run_tokenizer(file)  # loading starts no Rust threads; encoding would
    except TokenizerFolderError as exc:
        raise PrepareError(f"--tokenizer {folder}: {exc}") from None
    vocab, eod = int(tok.vocab_size), int(tok.eod_id)
    return {
        "path": str(file.resolve()),
        "sha256": file_sha256(file),
        "vocab_size": vocab,
        "eod_id": eod,
        "dtype": np.dtype(token_dtype(vocab)).name,
    }


def input_records(files: list[Path]) -> list[dict[str, Any]]:
    records = []
    for f in files:
        st = f.stat()
        records.append({"path": str(f.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return records


def plan_parts(sizes: list[int], num_parts: int) -> list[list[int]]:
    """Contiguous groups of input indices with about equal bytes, none empty."""
    num_parts = max(1, min(num_parts, len(sizes)))
    total = max(1, sum(sizes))
    groups: list[list[int]] = [[]]
    done = 0
    for i, size in enumerate(sizes):
        remaining_files = len(sizes) - i
        remaining_groups = num_parts - len(groups)
        if (
            groups[-1]
            and (done >= len(groups) * total / num_parts or remaining_files <= remaining_groups)
            and len(groups) < num_parts
        ):
            groups.append([])
        groups[-1].append(i)
        done += size
    return groups


def slice_bounds(k: int, n: int, num_parts: int) -> range:
    """Parts of slice k of n: a contiguous block, the blocks disjoint and covering all parts."""
    return range(k * num_parts // n, (k + 1) * num_parts // n)


def parse_slice(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise PrepareError(f"--slice {text!r}: expected K/N, e.g. 0/8") from None
    if not (n >= 1 and 0 <= k < n):
        raise PrepareError(f"--slice {text!r}: need 0 <= K < N")
    return k, n


def new_manifest(
    files: list[Path], tokenizer: dict[str, Any], *, text_field: str, dedup: str, num_parts: int
) -> dict[str, Any]:
    inputs = input_records(files)
    groups = plan_parts([r["size"] for r in inputs], num_parts)
    return {
        "format": FORMAT,
        "tokenizer": tokenizer,
        "text_field": text_field,
        "dedup": dedup,
        "inputs": inputs,
        "parts": [
            {"name": f"part-{i:05d}", "inputs": g, "bytes": sum(inputs[j]["size"] for j in g)}
            for i, g in enumerate(groups)
        ],
        "finished": {},
        "complete": False,
    }


def load_manifest(output: str | Path) -> dict[str, Any] | None:
    path = manifest_path(output)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PrepareError(f"{path}: not valid JSON ({err}); remove it or rerun with --overwrite") from None
    if manifest.get("format") != FORMAT:
        raise PrepareError(f"{path}: not a prepare_data manifest (format {manifest.get('format')!r})")
    return manifest


def save_manifest(output: str | Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(manifest_path(output), json.dumps(manifest, indent=1) + "\n")


def manifest_mismatch(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a stored manifest does not describe the current inputs and tokenizer (None if it does)."""
    if old["tokenizer"]["sha256"] != new["tokenizer"]["sha256"]:
        return (
            f"the tokenizer changed: {new['tokenizer']['path']} has sha256 {new['tokenizer']['sha256'][:12]}…, "
            f"the manifest was written with {old['tokenizer']['sha256'][:12]}… ({old['tokenizer']['path']})"
        )
    for key in ("text_field", "dedup"):
        if old[key] != new[key]:
            raise_text = f"--{key.replace('_', '-')} changed: {old[key]!r} in the manifest, {new[key]!r} now"
            return raise_text
    old_inputs = {r["path"]: r for r in old["inputs"]}
    new_inputs = {r["path"]: r for r in new["inputs"]}
    added = sorted(set(new_inputs) - set(old_inputs))
    removed = sorted(set(old_inputs) - set(new_inputs))
    if added or removed:
        what = [f"new input {p}" for p in added[:3]] + [f"input gone {p}" for p in removed[:3]]
        more = len(added) + len(removed) - len(what)
        return "the inputs changed: " + ", ".join(what) + (f" and {more} more" if more > 0 else "")
    for path, rec in new_inputs.items():
        was = old_inputs[path]
        if (was["size"], was["mtime_ns"]) != (rec["size"], rec["mtime_ns"]):
            return f"input {path} changed since the manifest was written (size {was['size']} → {rec['size']})"
    return None


# ---------------------------------------------------------------- workers


_WORKER_TOKENIZER: Any = None


def _single_core_environment() -> None:
    """A worker is one core: the tokenizers library's Rust thread pool off."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"


def _worker_init(tokenizer_path: str) -> None:
    global _WORKER_TOKENIZER
    _single_core_environment()  # before the tokenizer is used in this process
    from bloomberg_style.data.shards import load_run_tokenizer

    _WORKER_TOKENIZER = load_run_tokenizer(tokenizer_path)


def normalised_text(text: str) -> str:
    """What exact dedup compares: NFC, whitespace runs as one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _documents(files: list[str], text_field: str, counts: dict[str, int]) -> Iterator[str]:
    """The non-empty documents of `files`, in order, with corpus.iter_documents' checks."""
    for name in files:
        for doc in _read_file(Path(name), text_field):
            if not doc.text.strip():
                counts["empty"] += 1
                continue
            try:
                counts["bytes"] += len(doc.text.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise CorpusError(
                    f"{doc.source}:{doc.record}: lone surrogate U+{ord(doc.text[exc.start]):04X} at character "
                    f"{exc.start}: not valid Unicode text"
                ) from None
            yield doc.text


def _hash_part(task: dict[str, Any]) -> tuple[str, np.ndarray]:
    """16-byte blake2b digests of the part's normalised documents, as (n, 2) uint64."""
    counts = {"empty": 0, "bytes": 0}
    digests = [
        hashlib.blake2b(normalised_text(t).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        for t in _documents(task["files"], task["text_field"], counts)
    ]
    array = np.frombuffer(b"".join(digests), dtype=np.uint64).reshape(-1, 2)
    return task["name"], array


def _encode_part(task: dict[str, Any]) -> dict[str, Any]:
    """Encode one part into its IndexedDataset; the stats file, written last, marks it finished."""
    tok = _WORKER_TOKENIZER
    prefix = Path(task["prefix"])
    dtype = np.dtype(task["dtype"]).type
    vocab, eod, drop = task["vocab_size"], task["eod_id"], set(task["drop"])
    tag = f"tmp-{os.getpid()}"
    tmp_bin, tmp_idx = (
        prefix.with_name(f"{prefix.name}.bin.{tag}"),
        prefix.with_name(f"{prefix.name}.idx.{tag}"),
    )
    start = time.perf_counter()
    counts = {"empty": 0, "bytes": 0}
    documents = tokens = dropped = kept_bytes = 0
    builder = DocumentWriter(tmp_bin, dtype)
    try:
        batch: list[str] = []

        def flush() -> None:
            nonlocal documents, tokens
            for ids in tok.encode_batch(batch):
                row = np.asarray(ids + [eod], dtype=np.int64)
                if row.max() >= vocab or row.min() < 0:
                    raise ValueError(
                        f"tokenizer produced id {int(row.max())} outside its vocabulary of {vocab}"
                    )
                builder.add(row)
                tokens += row.size
            documents += len(batch)
            batch.clear()

        for position, text in enumerate(_documents(task["files"], task["text_field"], counts)):
            if position in drop:
                dropped += 1
            else:
                batch.append(text)
                kept_bytes += len(text.encode("utf-8"))
                if len(batch) == task["batch_size"]:
                    flush()
        if batch:
            flush()
        builder.finalize(tmp_idx)
    except BaseException:
        builder.close()
        for tmp in (tmp_bin, tmp_idx):
            tmp.unlink(missing_ok=True)
        raise
    tmp_bin.replace(bin_path(prefix))
    tmp_idx.replace(idx_path(prefix))
    stats = ShardStats(
        prefix=str(prefix),
        documents=documents,
        tokens=tokens,
        bytes=kept_bytes,
        bytes_per_token=round(kept_bytes / tokens, 4) if tokens else 0.0,
        empty_documents_skipped=counts["empty"],
        vocab_size=vocab,
        eod_id=eod,
        dtype=np.dtype(dtype).name,
        tokenizer=task["tokenizer"],
        inputs=list(task["files"]),
        seconds=round(time.perf_counter() - start, 3),
        duplicates_dropped=dropped,
        tokenizer_sha256=task["tokenizer_sha256"],
    )
    stats.save(stats_path(prefix))
    return {"name": task["name"], **_finished_entry(stats)}


def _finished_entry(stats: ShardStats) -> dict[str, Any]:
    return {
        "documents": stats.documents,
        "tokens": stats.tokens,
        "bytes": stats.bytes,
        "empty_documents_skipped": stats.empty_documents_skipped,
        "duplicates_dropped": stats.duplicates_dropped,
        "seconds": stats.seconds,
    }


def _pool(workers: int, tokenizer_path: str):
    """Spawned workers: fresh processes, the tokenizer's thread pool off before it is imported.

    Not forked: this process may hold threads (torch's, the tokenizer's) that a
    fork would copy in an undefined state. Workers import numpy and tokenizers
    only (index_file writes megatron's format), so they start in well under a second.
    """
    saved = {k: os.environ.get(k) for k in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS")}
    _single_core_environment()  # inherited by the spawned workers from their first instruction
    try:
        return multiprocessing.get_context("spawn").Pool(workers, _worker_init, (tokenizer_path,))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------- driver


def _part_finished(output: Path, manifest: dict[str, Any], part: dict[str, Any]) -> ShardStats | None:
    prefix = part_prefix(output, part["name"])
    if not (stats_path(prefix).is_file() and bin_path(prefix).is_file() and idx_path(prefix).is_file()):
        return None
    stats = ShardStats.load(prefix)
    files = [manifest["inputs"][i]["path"] for i in part["inputs"]]
    if stats.inputs != files or stats.tokenizer_sha256 != manifest["tokenizer"]["sha256"]:
        return None
    return stats


def _dedup_drops(
    output: Path, manifest: dict[str, Any], tasks: list[dict[str, Any]], pool, progress: bool
) -> dict[str, list[int]]:
    """Per part, the document positions whose normalised text occurred earlier in corpus order."""
    from tqdm.auto import tqdm

    hashes: dict[str, np.ndarray] = {}
    cached = {t["name"]: Path(f"{t['prefix']}.hashes.npy") for t in tasks}
    todo = []
    for t in tasks:
        if cached[t["name"]].is_file():
            hashes[t["name"]] = np.load(cached[t["name"]], allow_pickle=False)
        else:
            todo.append(t)
    with tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        desc="dedup: hashing",
        unit=" parts",
        disable=not progress,
    ) as bar:
        for name, array in pool.imap_unordered(_hash_part, todo):
            tmp = cached[name].with_name(f"{cached[name].name}.tmp-{os.getpid()}.npy")
            np.save(tmp, array, allow_pickle=False)
            tmp.replace(cached[name])
            hashes[name] = array
            bar.update(1)
    order = [t["name"] for t in tasks]
    counts = [len(hashes[n]) for n in order]
    allh = np.concatenate([hashes[n] for n in order]) if order else np.zeros((0, 2), np.uint64)
    position = np.arange(len(allh))
    idx = np.lexsort((position, allh[:, 1], allh[:, 0]))  # equal digests together, earliest first
    sorted_h = allh[idx]
    repeat = np.zeros(len(allh), dtype=bool)
    if len(allh) > 1:
        repeat[1:] = np.all(sorted_h[1:] == sorted_h[:-1], axis=1)
    duplicate = np.zeros(len(allh), dtype=bool)
    duplicate[idx] = repeat
    drops, offset = {}, 0
    for name, n in zip(order, counts):
        drops[name] = np.flatnonzero(duplicate[offset : offset + n]).tolist()
        offset += n
    return drops


@dataclass
class PrepareOptions:
    """How `prepare` works (the flags of `bloomberg-style prepare-data` are these fields)."""

    workers: int = 1  # encoding processes, one core each
    text_field: str = "text"  # JSON field / parquet column with the text
    batch_size: int = 256  # documents per encode_batch call
    num_parts: int | None = None  # None: 4 per worker
    part_bytes: int = DEFAULT_PART_BYTES  # at most about this many input bytes per part
    dedup: str = "none"  # "none" | "exact"
    overwrite: bool = False  # discard existing output and start over
    merge: bool = True  # False: keep only the parts (name the manifest as a domain)
    progress: bool = True


def prepare(
    inputs: list[str],
    tokenizer: str | Path,
    output: str | Path,
    *,
    workers: int = 1,
    text_field: str = "text",
    batch_size: int = 256,
    num_parts: int | None = None,
    part_bytes: int = DEFAULT_PART_BYTES,
    dedup: str = "none",
    overwrite: bool = False,
    merge: bool = True,
    slice_spec: tuple[int, int] | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Prepare (or resume) OUTPUT's parts, then finalize unless this is one slice; return the manifest."""
    if workers < 1:
        raise PrepareError(f"--workers must be >= 1, got {workers}")
    if batch_size < 1:
        raise PrepareError(f"--batch-size must be >= 1, got {batch_size}")
    if dedup not in ("none", "exact"):
        raise PrepareError(f"--dedup must be none or exact, got {dedup!r}")
    if dedup == "exact" and slice_spec is not None:
        raise PrepareError("--dedup exact compares every document with every other: run it without --slice")
    if overwrite and slice_spec is not None:
        raise PrepareError(
            "--overwrite with --slice would delete the other tasks' parts: clear the output first"
        )
    output = check_output_prefix(output)
    files = resolve_inputs(inputs)
    tok = tokenizer_identity(tokenizer)
    slices = slice_spec[1] if slice_spec else 1
    if num_parts is None:
        total = sum(f.stat().st_size for f in files)
        num_parts = max(4 * workers * slices, math.ceil(total / max(1, part_bytes)))
    fresh = new_manifest(files, tok, text_field=text_field, dedup=dedup, num_parts=num_parts)

    manifest = load_manifest(output)
    if overwrite:
        remove_output(output)
        manifest = None
    elif manifest is not None:
        why = manifest_mismatch(manifest, fresh)
        if why:
            raise PrepareError(
                f"{manifest_path(output)}: {why}. Rerun with --overwrite to prepare everything again "
                "(or write to a new --output)"
            )
    elif (
        bin_path(output).exists()
        or idx_path(output).exists()
        or (parts_dir(output).exists() and slice_spec is None)  # array tasks start side by side
    ):
        raise PrepareError(
            f"{output}: a shard or parts folder already exists there without a manifest; "
            "rerun with --overwrite to replace it"
        )
    if manifest is None:
        manifest = fresh
        parts_dir(output).mkdir(parents=True, exist_ok=True)
        save_manifest(output, manifest)
    elif manifest.get("complete") and slice_spec is None:
        if manifest.get("merged") or not merge:
            log(f"{output}: already complete ({len(manifest['parts'])} parts), nothing to do")
            return manifest
        return finalize(output, merge=True, log=log)  # the parts are done; only the merge was not asked for

    parts = manifest["parts"]
    mine = slice_bounds(*slice_spec, len(parts)) if slice_spec else range(len(parts))
    tasks = []
    for i in mine:
        part = parts[i]
        tasks.append(
            {
                "name": part["name"],
                "prefix": str(part_prefix(output, part["name"])),
                "files": [manifest["inputs"][j]["path"] for j in part["inputs"]],
                "text_field": text_field,
                "batch_size": batch_size,
                "vocab_size": tok["vocab_size"],
                "eod_id": tok["eod_id"],
                "dtype": tok["dtype"],
                "tokenizer": tok["path"],
                "tokenizer_sha256": tok["sha256"],
                "drop": [],
            }
        )
    done = {t["name"]: s for t in tasks if (s := _part_finished(output, manifest, parts[int(t["name"][5:])]))}
    todo = [t for t in tasks if t["name"] not in done]
    reused = len(done)
    if slice_spec is None:
        manifest["finished"] = {n: _finished_entry(s) for n, s in done.items()}
        save_manifest(output, manifest)
    log(
        f"{output}: {len(tasks)} part(s){f' (slice {slice_spec[0]}/{slice_spec[1]})' if slice_spec else ''}, "
        f"{reused} already finished, {len(todo)} to encode with {workers} worker(s)"
    )
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    start = time.perf_counter()
    if todo:
        from tqdm.auto import tqdm

        pool = _pool(min(workers, len(todo)) if dedup == "none" else workers, tok["path"])
        try:
            if dedup == "exact":
                drops = _dedup_drops(output, manifest, tasks, pool, progress)
                for t in todo:
                    t["drop"] = drops[t["name"]]
            with tqdm(
                total=sum(parts[int(t["name"][5:])]["bytes"] for t in todo),
                unit="B",
                unit_scale=True,
                desc=f"encoding {output.name}",
                disable=not progress,
            ) as bar:
                for n, entry in enumerate(pool.imap_unordered(_encode_part, todo), start=1):
                    name = entry.pop("name")
                    if slice_spec is None:
                        manifest["finished"][name] = entry
                        save_manifest(output, manifest)
                    bar.update(parts[int(name[5:])]["bytes"])
                    if kill_after and n >= kill_after:
                        os.kill(os.getpid(), signal.SIGKILL)  # a real kill, mid-run (tests)
        finally:
            pool.terminate()
            pool.join()
    manifest["last_run"] = {
        "parts_reused": reused,
        "parts_encoded": len(todo),
        "workers": workers,
        "seconds": round(time.perf_counter() - start, 3),
    }
    if slice_spec is not None:
        return manifest
    save_manifest(output, manifest)
    return finalize(output, merge=merge, log=log)


def remove_output(output: Path) -> None:
    for path in (manifest_path(output), bin_path(output), idx_path(output), stats_path(output)):
        path.unlink(missing_ok=True)
    if parts_dir(output).is_dir():
        shutil.rmtree(parts_dir(output))


def finalize(output: str | Path, *, merge: bool = True, log=print) -> dict[str, Any]:
    """Check the manifest (every input in exactly one finished part, token counts add up), then merge."""
    output = check_output_prefix(output)
    manifest = load_manifest(output)
    if manifest is None:
        raise PrepareError(f"{manifest_path(output)}: no manifest (run prepare_data on the inputs first)")
    seen = sorted(i for p in manifest["parts"] for i in p["inputs"])
    if seen != list(range(len(manifest["inputs"]))):
        raise PrepareError(f"{manifest_path(output)}: the plan does not list every input exactly once")
    missing, finished = [], {}
    for part in manifest["parts"]:
        stats = _part_finished(output, manifest, part)
        if stats is None:
            missing.append(part["name"])
            continue
        _, lengths, _ = read_index(idx_path(part_prefix(output, part["name"])))
        if int(lengths.sum()) != stats.tokens or len(lengths) != stats.documents:
            raise PrepareError(
                f"{part_prefix(output, part['name'])}: index holds {len(lengths)} documents / "
                f"{int(lengths.sum())} tokens, its stats say {stats.documents} / {stats.tokens}"
            )
        finished[part["name"]] = _finished_entry(stats)
    if missing:
        raise PrepareError(
            f"{manifest_path(output)}: {len(missing)} of {len(manifest['parts'])} parts unfinished "
            f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}); run the missing slices again"
        )
    totals = {k: sum(f[k] for f in finished.values()) for k in ("documents", "tokens", "bytes")}
    totals["duplicates_dropped"] = sum(f["duplicates_dropped"] for f in finished.values())
    totals["empty_documents_skipped"] = sum(f["empty_documents_skipped"] for f in finished.values())
    if totals["documents"] == 0:
        raise CorpusError(f"empty corpus: {len(manifest['inputs'])} file(s) hold no non-empty documents")
    manifest.update(finished=finished, totals=totals, complete=True, merged=False)
    if merge:
        _merge(output, manifest)
        manifest["merged"] = True
    save_manifest(output, manifest)
    log(
        f"{output}: {len(finished)} parts, {totals['documents']:,} documents, {totals['tokens']:,} tokens"
        + (f", {totals['duplicates_dropped']:,} duplicates dropped" if manifest["dedup"] == "exact" else "")
        + (f"; merged into {bin_path(output)}" if merge else "")
    )
    return manifest


def _merge(output: Path, manifest: dict[str, Any]) -> None:
    tok, totals = manifest["tokenizer"], manifest["totals"]
    tag = f"tmp-{os.getpid()}"
    tmp_bin, tmp_idx = (
        output.with_name(f"{output.name}.bin.{tag}"),
        output.with_name(f"{output.name}.idx.{tag}"),
    )
    try:
        parts = [part_prefix(output, p["name"]) for p in manifest["parts"]]
        merge_documents(parts, tmp_bin, tmp_idx, np.dtype(tok["dtype"]).type)
    except BaseException:
        tmp_bin.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)
        raise
    tmp_bin.replace(bin_path(output))
    tmp_idx.replace(idx_path(output))
    ShardStats(
        prefix=str(output),
        documents=totals["documents"],
        tokens=totals["tokens"],
        bytes=totals["bytes"],
        bytes_per_token=round(totals["bytes"] / totals["tokens"], 4),
        empty_documents_skipped=totals["empty_documents_skipped"],
        vocab_size=tok["vocab_size"],
        eod_id=tok["eod_id"],
        dtype=tok["dtype"],
        tokenizer=tok["path"],
        inputs=[r["path"] for r in manifest["inputs"]],
        seconds=manifest.get("last_run", {}).get("seconds", 0.0),
        duplicates_dropped=totals["duplicates_dropped"],
        tokenizer_sha256=tok["sha256"],
    ).save(stats_path(output))


# ---------------------------------------------------------------- command line


__all__ = [
    "PrepareError",
    "PrepareOptions",
    "finalize",
    "manifest_parts",
    "manifest_path",
    "prepare",
]


# ---------------------------------------------------------------- raw inputs in a run config

INLINE_LIMIT_BYTES = 256 << 20  # above this, a multi-rank run asks for prepare_data first


def check_inline_preparation(data: Any, world_size: int, limit_bytes: int = INLINE_LIMIT_BYTES) -> None:
    """Refuse, before any process group exists, raw inputs too large to tokenize inside a multi-rank run.

    A run config's raw `inputs` are tokenized by rank 0 while the other ranks
    wait in a collective; past a few hundred MB that wait outlasts the
    collective timeout. Called before the process group starts, this names the
    prepare_data commands to run first instead. Small inputs (the demo, tests)
    and single-process runs are built in the run as before.
    """
    from bloomberg_style.config import ConfigError
    from bloomberg_style.data.parts import parts_ready

    if world_size <= 1:
        return
    missing = [d for d in data.domains if d.inputs and not parts_ready([d.prefix, *d.prefixes])]
    if not missing:
        return
    try:
        size = sum(f.stat().st_size for d in missing for f in resolve_inputs(d.inputs))
    except CorpusError as err:
        raise ConfigError(f"data.domains: {err}") from None
    if size <= limit_bytes:
        return
    commands = "\n".join(
        f"  python launch/prepare_data.py --input {' '.join(d.inputs)} --tokenizer {data.tokenizer} "
        f"--output {d.prefix} --workers $(nproc)"
        for d in missing
    )
    raise ConfigError(
        f"data.domains: {size / 1e9:.2f} GB of raw inputs have no token shards yet; tokenizing them inside a "
        f"{world_size}-rank run would keep the other ranks waiting past the collective timeout. "
        f"Prepare them first, then start the run again:\n{commands}"
    )
