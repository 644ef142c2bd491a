"""Split-and-merge training at corpus scale (BloombergGPT, arXiv 2303.17564 section 2.3).

No single Unigram trainer can hold the statistics of hundreds of GB, so:

    scan    read every source once: bad input fails here, naming file and line,
            before any training; documents and bytes are counted so chunk
            sizes and progress (bytes/s, time left) are exact
    split   stream each source into chunk files (JSONL, one document a line) of
            about the same size; at most workers + 2 chunk files exist at once
            (one per worker, one queued, one being written)
    train   one Unigram model per chunk, each in a fresh worker process
    merge   chunk models into their source's model as they finish, source
            models into the corpus model, by byte-weighted probability averaging
    prune   the vocab_size - 1 most probable pieces plus all 256 bytes,
            renormalised; EOD is added at id 0

A *source* is one input argument (a file, a folder or a glob): chunks never
mix sources, like the paper's chunks never mixed domains. Pass each domain
as its own input. The merge is linear, so the hierarchy does not change the
result (``merge_hierarchical`` equals one flat merge); it keeps each source's
model on disk for inspection.

Memory: the main process holds one document at a time plus the merged union
of pieces; a worker holds one chunk. Neither grows with the corpus size.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import resource
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bloomberg_style.corpus import CorpusError, CorpusStats, Document, iter_documents, resolve_inputs
from tokenizer.merge import ModelMerger, prune_unigram_model
from tokenizer.numeric_unigram import NumericUnigramTokenizer
from tokenizer.pretokenize import PRETOKENIZE_PATTERN
from tokenizer.sweep import plot_sweep, vocab_sweep
from tokenizer.unigram import MIN_VOCAB_SIZE, TRAINERS, UnigramModel, train_unigram, utf8_len

DEFAULT_CHUNK_BYTES = 32 << 20  # ~4 CPU-minutes and ~1.1 GB peak per chunk with the SentencePiece trainer


@dataclass
class Source:
    """One input argument and the corpus files it resolves to."""

    name: str
    files: list[Path]
    documents: int = 0
    bytes: int = 0  # UTF-8 bytes of the documents used for training (held-out ones excluded)
    chunks: int = 0  # planned number of chunks
    heldout_documents: int = 0
    heldout_bytes: int = 0


@dataclass
class ChunkResult:
    source: int
    index: int
    path: str
    documents: int
    bytes: int
    pieces: int
    train_seconds: float
    peak_rss_mb: float


@dataclass
class Holdout:
    """Deterministic held-out sample: every ``every``-th document, up to ``max_bytes``.

    A fresh instance makes the same choices on every pass over the same inputs.
    """

    every: int = 0  # 0: hold nothing out
    max_bytes: int = 0
    seen: int = 0
    bytes: int = 0
    texts: list[str] = field(default_factory=list)

    def take(self, text: str, nbytes: int, keep: bool = False) -> bool:
        self.seen += 1
        if self.every and self.seen % self.every == 0 and self.bytes + nbytes <= self.max_bytes:
            self.bytes += nbytes
            if keep:
                self.texts.append(text)
            return True
        return False


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    Linux's VmHWM belongs to the process's own address space. getrusage's
    ru_maxrss is kept across fork and exec, so a worker started by a large
    parent would report the parent's size; it is only the fallback.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def resolve_sources(inputs: Sequence[str | Path]) -> list[Source]:
    """One Source per input argument; a file named by two inputs is an error (it would count twice)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise CorpusError("no corpus inputs given (expected files, folders or globs)")
    sources: list[Source] = []
    owner: dict[Path, str] = {}
    for raw in inputs:
        files = resolve_inputs([raw])
        for f in files:
            key = f.resolve()
            if key in owner:
                raise CorpusError(f"{f}: named by two inputs ({owner[key]!r} and {str(raw)!r})")
            owner[key] = str(raw)
        sources.append(Source(name=str(raw), files=files))
    return sources


def checked_documents(source: Source, text_field: str) -> Iterator[tuple[Document, int]]:
    """Documents of a source with their UTF-8 size (iter_documents names a lone surrogate's line)."""
    stats = CorpusStats()
    for doc in iter_documents(source.files, text_field, stats):
        yield doc, utf8_len(doc.text, f"{doc.source}:{doc.record}")


def scan_sources(
    sources: list[Source], text_field: str, holdout: Holdout, show_progress: bool = False
) -> None:
    """Read everything once: validate, count documents and training bytes per source."""
    on_disk = sum(f.stat().st_size for s in sources for f in s.files)
    with tqdm(
        total=on_disk, unit="B", unit_scale=True, desc="scanning corpus", disable=not show_progress
    ) as bar:
        for s in sources:
            for _doc, n in checked_documents(s, text_field):
                bar.update(n)
                if holdout.take("", n):
                    s.heldout_documents += 1
                    s.heldout_bytes += n
                else:
                    s.documents += 1
                    s.bytes += n
            if s.documents == 0:
                raise CorpusError(f"{s.name}: no documents left for training after holding out a sample")


def plan_chunks(sources: list[Source], chunks: int | None, chunk_bytes: int | None) -> None:
    """Set each source's number of chunks: ``chunks`` in all (split by bytes) or ``chunk_bytes`` each."""
    if chunks is not None and chunk_bytes is not None:
        raise ValueError("give chunks or chunk_bytes, not both")
    if chunks is None:
        size = chunk_bytes if chunk_bytes is not None else DEFAULT_CHUNK_BYTES
        if size < 1:
            raise ValueError(f"chunk_bytes={size} must be positive")
        for s in sources:
            s.chunks = max(1, math.ceil(s.bytes / size))
        return
    if chunks < 1:
        raise ValueError(f"chunks={chunks} must be at least 1")
    total = sum(s.bytes for s in sources)
    quotas = [chunks * s.bytes / total for s in sources]
    for s, q in zip(sources, quotas):
        s.chunks = max(1, math.floor(q))
    spare = chunks - sum(s.chunks for s in sources)
    # largest remainder: the sources furthest below their quota get the spare chunks
    by_shortfall = sorted(range(len(sources)), key=lambda i: -(quotas[i] - sources[i].chunks))
    for i in by_shortfall[: max(spare, 0)]:
        sources[i].chunks += 1


def split_long_document(text: str, nbytes: int, max_bytes: int) -> list[tuple[str, int]]:
    """Cut a document larger than max_bytes at line ends, so a chunk's size stays bounded."""
    if nbytes <= max_bytes:
        return [(text, nbytes)]
    parts: list[tuple[str, int]] = []
    buf: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        n = len(line.encode("utf-8"))
        if buf and size + n > max_bytes:
            parts.append(("".join(buf), size))
            buf, size = [], 0
        buf.append(line)
        size += n
    if buf:
        parts.append(("".join(buf), size))
    return parts


def train_chunk(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: train one chunk file into a model file; report size, time and this process's peak RSS."""
    start = time.perf_counter()
    texts = []
    with open(task["chunk_path"], encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line))
    model = train_unigram(
        texts,
        task["vocab_size"],
        max_piece_length=task["max_piece_length"],
        trainer=task["trainer"],
        num_threads=task["num_threads"],
        tmp_dir=Path(task["chunk_path"]).parent,
    )
    model.save(task["model_path"])
    os.remove(task["chunk_path"])
    return {
        "documents": len(texts),
        "bytes": model.bytes_seen,
        "pieces": len(model.pieces),
        "train_seconds": round(time.perf_counter() - start, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


class ChunkWriter:
    """Writes one source's documents into ``n_chunks`` files of about equal size.

    A chunk closes once the source's running byte count passes its share
    (k * bytes / n_chunks), so the last chunk gets the remainder and the count
    is exact unless single documents span several shares.
    """

    def __init__(self, work: Path, source: int, n_chunks: int, source_bytes: int):
        self.work, self.source, self.n_chunks = work, source, n_chunks
        self.target = source_bytes / n_chunks
        self.index = 0  # index of the chunk being written
        self.total = 0  # bytes written for this source
        self.file = None
        self.path = ""

    def add(self, text: str, nbytes: int) -> tuple[int, str] | None:
        """Append a document; return (index, path) of the chunk it completed, if any."""
        if self.file is None:
            self.path = str(self.work / f"chunk-{self.source:03d}-{self.index:05d}.jsonl")
            self.file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - open across add() calls
        self.file.write(json.dumps(text, ensure_ascii=False) + "\n")
        self.total += nbytes
        if self.index < self.n_chunks - 1 and self.total >= (self.index + 1) * self.target:
            return self.close()
        return None

    def close(self) -> tuple[int, str] | None:
        """Close the open chunk, if any, and return its (index, path)."""
        if self.file is None:
            return None
        self.file.close()
        self.file = None
        self.index += 1
        return self.index - 1, self.path


class HierarchicalMerger:
    """Chunk models into their source's model, finished sources into the corpus model.

    Workers finish in any order; models are merged in chunk order and sources
    in input order (later ones wait as files on disk), so the float sums, and
    hence the tokenizer, do not depend on timing.
    """

    def __init__(self, sources: list[Source], work: Path, keep_files: bool = False):
        self.sources, self.work, self.keep_files = sources, work, keep_files
        self.submitted = [0] * len(sources)
        self.merged = [0] * len(sources)
        self.ready: list[dict[int, str]] = [{} for _ in sources]  # finished chunk index -> model file
        self.streamed = [False] * len(sources)  # every chunk of the source submitted
        self.current = ModelMerger()  # the source being merged: self.next_source
        self.next_source = 0
        self.corpus = ModelMerger()
        self.source_models: list[dict[str, Any]] = []

    def chunk_submitted(self, source: int) -> None:
        self.submitted[source] += 1

    def chunk_done(self, source: int, index: int, model_path: str) -> None:
        self.ready[source][index] = model_path
        self._advance()

    def source_streamed(self, source: int) -> None:
        self.streamed[source] = True
        self._advance()

    def _advance(self) -> None:
        while self.next_source < len(self.sources):
            i = self.next_source
            while self.merged[i] in self.ready[i]:
                path = self.ready[i].pop(self.merged[i])
                self.current.add(
                    UnigramModel.load(path), name=f"{self.sources[i].name} chunk {self.merged[i]}"
                )
                if not self.keep_files:
                    os.remove(path)
                self.merged[i] += 1
            if not (self.streamed[i] and self.merged[i] == self.submitted[i]):
                return
            model = self.current.result()
            model.save(self.work / f"source-{i:03d}.json")
            self.corpus.add(model, name=self.sources[i].name)
            self.source_models.append(
                {"source": self.sources[i].name, "bytes": model.bytes_seen, "pieces": len(model.pieces)}
            )
            self.current = ModelMerger()
            self.next_source += 1


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_options(
    vocab_size: int,
    chunk_vocab_size: int,
    workers: int,
    trainer: str,
    chunks: int | None,
    chunk_bytes: int | None,
    sweep: tuple[int, int, int] | None,
    heldout_every: int,
) -> None:
    """ValueError naming the option, before anything is read or written."""
    for name, value in (("vocab_size", vocab_size), ("chunk_vocab_size", chunk_vocab_size)):
        if value < MIN_VOCAB_SIZE:
            raise ValueError(f"{name}={value} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    if trainer not in TRAINERS:
        raise ValueError(f"trainer={trainer!r}; expected one of {TRAINERS}")
    if chunks is not None and chunk_bytes is not None:
        raise ValueError("give chunks or chunk_bytes, not both")
    if (chunks is not None and chunks < 1) or (chunk_bytes is not None and chunk_bytes < 1):
        raise ValueError(f"chunks={chunks} and chunk_bytes={chunk_bytes} must be positive")
    if sweep is not None and not (MIN_VOCAB_SIZE <= sweep[0] <= sweep[1] and sweep[2] >= 1):
        raise ValueError(f"sweep={sweep}: need {MIN_VOCAB_SIZE} <= lo <= hi and points >= 1")
    if sweep is not None and heldout_every < 1:
        raise ValueError(f"heldout_every={heldout_every} must be at least 1 for a sweep")


@dataclass
class ChunkPool:
    """Streams the sources into chunk files and trains each in a worker process as it closes.

    At most `workers` chunks run and one more waits, so at most workers + 2 chunk files are
    on disk; finished chunk models go to the merger at once.
    """

    sources: list[Source]
    work: Path
    merger: HierarchicalMerger
    workers: int
    task: dict[str, Any]  # vocab_size, trainer, max_piece_length, num_threads of every chunk
    show_progress: bool = True
    results: list[ChunkResult] = field(default_factory=list)
    in_flight: dict[cf.Future, tuple[int, int, str]] = field(default_factory=dict)
    total_chunks: int = field(init=False, default=0)
    bar: Any = field(init=False, default=None)  # tqdm over the bytes streamed

    def run(self, text_field: str, holdout: Holdout) -> None:
        self.total_chunks = sum(s.chunks for s in self.sources)
        self.bar = tqdm(
            total=sum(s.bytes for s in self.sources),
            unit="B",
            unit_scale=True,
            desc=f"chunks 0/{self.total_chunks}",
            disable=not self.show_progress,
        )
        ctx = multiprocessing.get_context("spawn")  # tokenizers' Rust threads do not survive fork
        with cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, max_tasks_per_child=1) as pool:
            try:
                for i, source in enumerate(self.sources):
                    self.stream_source(pool, i, source, text_field, holdout)
                while self.in_flight:
                    self.wait_for_one()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                self.bar.close()

    def stream_source(
        self, pool: cf.Executor, i: int, source: Source, text_field: str, holdout: Holdout
    ) -> None:
        writer = ChunkWriter(self.work, i, source.chunks, source.bytes)
        for doc, n in checked_documents(source, text_field):
            if holdout.take(doc.text, n, keep=True):
                continue
            for part, m in split_long_document(doc.text, n, max(1, math.ceil(writer.target))):
                if (closed := writer.add(part, m)) is not None:
                    self.dispatch(pool, i, closed)
        if (closed := writer.close()) is not None:
            self.dispatch(pool, i, closed)
        self.merger.source_streamed(i)

    def wait_for_one(self) -> None:
        done, _ = cf.wait(self.in_flight, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            i, j, model_path = self.in_flight.pop(fut)
            try:
                info = fut.result()
            except Exception as e:
                raise RuntimeError(f"training chunk {j} of {self.sources[i].name!r} failed: {e}") from e
            self.merger.chunk_done(i, j, model_path)
            self.results.append(ChunkResult(source=i, index=j, path=model_path, **info))
            self.bar.update(info["bytes"])
            self.bar.set_description(f"chunks {len(self.results)}/{self.total_chunks}")

    def dispatch(self, pool: cf.Executor, i: int, closed: tuple[int, str]) -> None:
        j, chunk_path = closed
        while len(self.in_flight) > self.workers:  # running + one queued: at most workers + 2 files on disk
            self.wait_for_one()
        model_path = chunk_path.removesuffix(".jsonl") + ".model.json"
        task = {"chunk_path": chunk_path, "model_path": model_path, **self.task}
        self.in_flight[pool.submit(train_chunk, task)] = (i, j, model_path)
        self.merger.chunk_submitted(i)


def save_tokenizer(merged: UnigramModel, vocab_size: int, out: Path) -> NumericUnigramTokenizer:
    """merged_model.json (the unpruned union) and the tokenizer pruned to `vocab_size`."""
    merged.save(out / "merged_model.json")  # the unpruned union: prune it again for another size
    tok = NumericUnigramTokenizer.from_model(prune_unigram_model(merged, vocab_size))
    tok.save(out)
    if tok.vocab_size < vocab_size:
        warnings.warn(
            f"the chunk models hold only {len(merged.pieces)} distinct pieces, so the tokenizer has "
            f"{tok.vocab_size} tokens, not {vocab_size}: the corpus is too small for that vocabulary",
            stacklevel=3,
        )
    return tok


def run_sweep(
    merged: UnigramModel, holdout: Holdout, sweep: tuple[int, int, int], out: Path, heldout_every: int
) -> dict[str, Any]:
    """Prune to each sweep size, encode the held-out sample; vocab_sweep.json and .png."""
    if not holdout.texts:
        raise CorpusError(
            f"sweep: no held-out documents (every {heldout_every}th document, at most "
            f"{holdout.max_bytes} bytes); lower heldout_every"
        )
    rows = vocab_sweep(merged, holdout.texts, sweep)
    result = {
        "heldout_documents": len(holdout.texts),
        "heldout_bytes": holdout.bytes,
        "optimum_vocab_size": min(rows, key=lambda r: r["bits"])["vocab_size"],
        "rows": rows,
    }
    (out / "vocab_sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_sweep(rows, out / "vocab_sweep.png", title=f"held-out sample: {holdout.bytes / 1e6:.2f} MB")
    return result


def training_stats(
    sources: list[Source],
    pool: ChunkPool,
    merged: UnigramModel,
    tok: NumericUnigramTokenizer,
    vocab_size: int,
    seconds: tuple[float, float],
    main_rss_after_merge: float,
) -> dict[str, Any]:
    """What training_stats.json records: sizes, options, per-chunk rows, timings, memory."""
    chunk_rows = []
    for r in sorted(pool.results, key=lambda r: (r.source, r.index)):
        row = asdict(r)
        row["source"] = sources[r.source].name
        row.pop("path")
        chunk_rows.append(row)
    return {
        "documents": sum(s.documents for s in sources),
        "bytes": merged.bytes_seen,
        "vocab_size": tok.vocab_size,
        "requested_vocab_size": vocab_size,
        "tokens_before_pruning": len(merged.pieces) + 1,  # the merged union, + EOD
        "eod_id": tok.eod_id,
        "trainer": pool.task["trainer"],
        "chunk_vocab_size": pool.task["vocab_size"],
        "max_piece_length": pool.task["max_piece_length"],
        "pretokenize_pattern": PRETOKENIZE_PATTERN,
        "workers": pool.workers,
        "threads_per_worker": pool.task["num_threads"],
        "sources": [
            {k: v for k, v in asdict(s).items() if k != "files"} | {"files": len(s.files)} for s in sources
        ],
        "source_models": pool.merger.source_models,
        "chunks": chunk_rows,
        "bytes_per_chunk": [r["bytes"] for r in chunk_rows],
        "scan_seconds": round(seconds[0], 3),
        "train_merge_seconds": round(seconds[1], 3),
        "peak_rss_mb": {
            "main_after_merge": round(main_rss_after_merge, 1),
            "main": round(peak_rss_mb(), 1),
            "largest_worker": round(max((r.peak_rss_mb for r in pool.results), default=0.0), 1),
        },
    }


def train_split_merge(
    inputs: Sequence[str | Path],
    output_dir: str | Path,
    *,
    vocab_size: int = 131072,
    chunks: int | None = None,
    chunk_bytes: int | None = None,
    chunk_vocab_size: int = 65536,
    workers: int | None = None,
    text_field: str = "text",
    trainer: str = "sentencepiece",
    max_piece_length: int = 16,
    sweep: tuple[int, int, int] | None = None,
    heldout_every: int = 50,
    heldout_max_bytes: int = 8 << 20,
    keep_work: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train the tokenizer split-and-merge; write it and training_stats.json to output_dir; return the stats.

    ``chunks`` (in all, shared out by bytes) or ``chunk_bytes`` (per chunk,
    default 32 MiB) sets the split. With ``sweep=(lo, hi, points)`` a held-out
    sample (every ``heldout_every``-th document, at most ``heldout_max_bytes``)
    stays out of training, and the merged model is pruned to ``points`` sizes
    in [lo, hi] to find the one that minimises the sample's encoded size
    (written to vocab_sweep.json and vocab_sweep.png).
    """
    start = time.perf_counter()
    workers = workers if workers is not None else available_cpus()
    check_options(vocab_size, chunk_vocab_size, workers, trainer, chunks, chunk_bytes, sweep, heldout_every)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a directory")
    sources = resolve_sources(inputs)  # missing paths fail before anything is written
    out.mkdir(parents=True, exist_ok=True)

    def new_holdout() -> Holdout:
        return Holdout(every=heldout_every if sweep else 0, max_bytes=heldout_max_bytes)

    # 1. Scan: sizes of every source (and the held-out sample), then the chunk plan.
    scan_start = time.perf_counter()
    scan_sources(sources, text_field, new_holdout(), show_progress)
    plan_chunks(sources, chunks, chunk_bytes)
    scan_seconds = time.perf_counter() - scan_start

    # 2. Split and train: stream chunks to worker processes, merge their models as they finish.
    work = out / "split_merge_work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    threads = max(1, available_cpus() // workers)  # a lone chunk may use the idle cores
    pool = ChunkPool(
        sources,
        work,
        HierarchicalMerger(sources, work, keep_files=keep_work),
        workers,
        {"vocab_size": chunk_vocab_size, "trainer": trainer, "max_piece_length": max_piece_length,
         "num_threads": threads},
        show_progress,
    )  # fmt: skip
    holdout = new_holdout()
    train_start = time.perf_counter()
    pool.run(text_field, holdout)
    train_seconds = time.perf_counter() - train_start

    # 3. Prune the merged model to the vocabulary and save the tokenizer.
    merged = pool.merger.corpus.result()
    main_rss_after_merge = peak_rss_mb()
    tok = save_tokenizer(merged, vocab_size, out)

    # 4. Statistics, and the vocabulary sweep on the held-out sample if asked.
    seconds = (scan_seconds, train_seconds)
    stats = training_stats(sources, pool, merged, tok, vocab_size, seconds, main_rss_after_merge)
    if sweep is not None:
        stats["sweep"] = run_sweep(merged, holdout, sweep, out, heldout_every)
    stats["peak_rss_mb"]["main"] = round(peak_rss_mb(), 1)  # again: the sweep may have raised it
    if not keep_work:
        shutil.rmtree(work)
    stats["wall_time_s"] = round(time.perf_counter() - start, 3)
    (out / "training_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


# ---- across nodes: one chunk per job (--chunk-only K/N), then one merge (--merge-only) ----------

CHUNKS_DIR = "chunks"  # OUTPUT/chunks/: plan.json, chunk-SSS-IIIII.model.json and .stats.json
PLAN_FORMAT = "bloomberg_style.tokenizer_chunks/1"


def parse_chunk_spec(text: str) -> tuple[int, int]:
    """ "3/16" -> (3, 16): chunk K of N, 0 <= K < N."""
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"chunk_only={text!r}: expected K/N, e.g. 0/16") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"chunk_only={text!r}: need 0 <= K < N")
    return k, n


def chunk_plan(sources: list[Source], task: dict[str, Any], text_field: str) -> dict[str, Any]:
    """What every chunk job must agree on: the sources (files, documents, bytes, chunks) and
    the per-chunk training options. Its sha256 goes into every chunk's stats."""
    import hashlib

    plan = {
        "format": PLAN_FORMAT,
        "text_field": text_field,
        "chunk_options": {k: task[k] for k in ("vocab_size", "trainer", "max_piece_length")},
        "sources": [
            {"name": s.name, "files": [str(f.resolve()) for f in s.files], "documents": s.documents,
             "bytes": s.bytes, "chunks": s.chunks}
            for s in sources
        ],
    }  # fmt: skip
    plan["sha256"] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
    return plan


def chunk_name(source: int, index: int) -> str:
    return f"chunk-{source:03d}-{index:05d}"


def train_chunk_only(
    inputs: Sequence[str | Path],
    output_dir: str | Path,
    chunk: tuple[int, int],
    *,
    chunks: int | None = None,
    chunk_bytes: int | None = None,
    chunk_vocab_size: int = 65536,
    text_field: str = "text",
    trainer: str = "sentencepiece",
    max_piece_length: int = 16,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train chunk K of N (all sources' chunks numbered in input order) into OUTPUT/chunks/.

    Every job scans the inputs (a read pass, counting bytes) to compute the same plan as the
    single-machine run, streams only the source that holds chunk K, keeps that chunk's
    documents and trains it in this process on all its cores. With `chunks` unset the plan has
    N chunks in all (as `--chunks N`); with `chunk_bytes` the plan must come out at N.
    """
    k, n = chunk
    if chunks is None and chunk_bytes is None:
        chunks = n
    if chunks is not None and chunks != n:
        raise ValueError(f"chunk_only={k}/{n} but chunks={chunks}: give the same N (or leave chunks out)")
    check_options(MIN_VOCAB_SIZE, chunk_vocab_size, 1, trainer, chunks, chunk_bytes, None, 1)
    sources = resolve_sources(inputs)
    scan_sources(sources, text_field, Holdout(), show_progress)
    plan_chunks(sources, chunks, chunk_bytes)
    total = sum(s.chunks for s in sources)
    if total != n:
        raise ValueError(f"chunk_only={k}/{n}: chunk_bytes={chunk_bytes} gives {total} chunks; use N={total}")
    task = {"vocab_size": chunk_vocab_size, "trainer": trainer, "max_piece_length": max_piece_length,
            "num_threads": available_cpus()}  # fmt: skip
    plan = chunk_plan(sources, task, text_field)
    out = Path(output_dir) / CHUNKS_DIR
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "plan.json", plan)  # every job writes the same file

    i, j = locate_chunk(sources, k)
    source = sources[i]
    work = out / f"work-{chunk_name(i, j)}-{os.getpid()}"
    work.mkdir()
    try:
        chunk_path = _stream_one_chunk(work, i, j, source, text_field)
        name = chunk_name(i, j)
        tmp_model = work / f"{name}.model.json"
        info = train_chunk({"chunk_path": chunk_path, "model_path": str(tmp_model), **task})
        os.replace(tmp_model, out / f"{name}.model.json")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = {"chunk": k, "of": n, "source": source.name, "source_index": i, "index": j,
             "plan_sha256": plan["sha256"], **info}  # fmt: skip
    atomic_write_json(out / f"{name}.stats.json", stats)  # last: the chunk is finished
    return stats


def locate_chunk(sources: list[Source], k: int) -> tuple[int, int]:
    """(source, index within it) of global chunk k; chunks are numbered source after source."""
    first = 0
    for i, s in enumerate(sources):
        if k < first + s.chunks:
            return i, k - first
        first += s.chunks
    raise ValueError(f"chunk {k} is past the plan's {first} chunks")


def _stream_one_chunk(work: Path, i: int, j: int, source: Source, text_field: str) -> str:
    """Write source i's chunk j exactly as the single-machine split does; other chunks are dropped."""
    writer = ChunkWriter(work, i, source.chunks, source.bytes)
    for doc, n in checked_documents(source, text_field):
        for part, m in split_long_document(doc.text, n, max(1, math.ceil(writer.target))):
            if (closed := writer.add(part, m)) is not None:
                if closed[0] == j:
                    return closed[1]
                os.remove(closed[1])
    closed = writer.close()
    if closed is None or closed[0] != j:
        raise CorpusError(f"{source.name}: chunk {j} came out empty (fewer documents than chunks)")
    return closed[1]


def merge_chunks(
    output_dir: str | Path, *, vocab_size: int = 131072, keep_work: bool = False
) -> dict[str, Any]:
    """Merge the chunk models of OUTPUT/chunks/ (every one of the plan's chunks must be there)
    in the single-machine order, prune, and write the tokenizer and training_stats.json."""
    start = time.perf_counter()
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size={vocab_size} is below {MIN_VOCAB_SIZE} (256 byte symbols + EOD)")
    out = Path(output_dir)
    folder = out / CHUNKS_DIR
    if not (folder / "plan.json").is_file():
        raise FileNotFoundError(f"{folder / 'plan.json'}: no chunk plan (run the --chunk-only jobs first)")
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    names = [(i, j) for i, s in enumerate(plan["sources"]) for j in range(s["chunks"])]
    missing, stale, rows = [], [], []
    for k, (i, j) in enumerate(names):
        stats_file = folder / f"{chunk_name(i, j)}.stats.json"
        if not stats_file.is_file() or not (folder / f"{chunk_name(i, j)}.model.json").is_file():
            missing.append(k)
            continue
        row = json.loads(stats_file.read_text(encoding="utf-8"))
        if row.get("plan_sha256") == plan["sha256"]:
            rows.append(row)
        else:
            stale.append(k)
    if missing or stale:
        raise ValueError(
            f"{folder}: of {len(names)} chunks, missing {missing[:20]}"
            f"{', stale (another plan) ' + str(stale[:20]) if stale else ''}: rerun --chunk-only K/{len(names)} "
            "for those K (Slurm: resubmit those array indices)"
        )
    corpus, source_models = ModelMerger(), []
    for i, s in enumerate(plan["sources"]):  # chunk order within a source, sources in input order
        merger = ModelMerger()
        for j in range(s["chunks"]):
            merger.add(
                UnigramModel.load(folder / f"{chunk_name(i, j)}.model.json"), name=f"{s['name']} chunk {j}"
            )
        model = merger.result()
        corpus.add(model, name=s["name"])
        source_models.append({"source": s["name"], "bytes": model.bytes_seen, "pieces": len(model.pieces)})
    merged = corpus.result()
    tok = save_tokenizer(merged, vocab_size, out)
    stats = {
        "documents": sum(s["documents"] for s in plan["sources"]),
        "bytes": merged.bytes_seen,
        "vocab_size": tok.vocab_size,
        "requested_vocab_size": vocab_size,
        "tokens_before_pruning": len(merged.pieces) + 1,
        "eod_id": tok.eod_id,
        **plan["chunk_options"],
        "pretokenize_pattern": PRETOKENIZE_PATTERN,
        "mode": "merge-only",
        "plan_sha256": plan["sha256"],
        "sources": [
            {k: v for k, v in s.items() if k != "files"} | {"files": len(s["files"])} for s in plan["sources"]
        ],
        "source_models": source_models,
        "chunks": sorted(rows, key=lambda r: r["chunk"]),
        "merge_seconds": round(time.perf_counter() - start, 3),
    }
    if not keep_work:
        shutil.rmtree(folder)
    (out / "training_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return stats


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
