"""Tokenizer benchmark: ours vs byte-level BPE vs SentencePiece, split-and-merge vs monolithic.

    python benchmarks/tokenizer.py                       # the built-in demo corpus
    python benchmarks/tokenizer.py --vocab-size 32768 --input \
        sec10k:../shared/data/sec_10k_edgar_crawler \
        phrasebank:../shared/data/financial_phrasebank/Sentences_50Agree.txt \
        wikitext:../shared/data/wikitext2/wiki.test.raw

Every source is split into train (9 of 10 documents) and held-out (every
10th); all tokenizers are trained on the same train text with the same
vocabulary size and measured on the held-out text:

1. tokens and bytes/token, per source and domain: ours (split and merge) vs
   byte-level BPE with GPT-2's pre-tokenizer (tokenizers BpeTrainer) vs
   SentencePiece Unigram with its default settings on the raw text;
2. split and merge (8 chunks, 2 workers) vs one monolithic chunk: wall time,
   CPU time, peak RSS (largest process, and the sum over the process tree,
   sampled), held-out tokens;
3. peak RSS of split and merge as the training text grows 1x, 2x, 4x (1/8,
   1/4, 1/2 of it, one source) in 2, 4, 8 chunks of the same size;
4. encode throughput (MB/s) with one Rust thread and with all threads.

Inputs are ``[ADAPTER:]PATH``; adapters turn public data sets into documents:
``sec10k`` (EDGAR-CORPUS JSON filings: item_* sections joined), ``phrasebank``
(``sentence@label`` lines, UTF-8 or Latin-1; label dropped), ``wikitext``
(raw WikiText split into articles at `` = Title = `` lines), ``corpus``
(anything ``bloomberg_style.corpus`` reads). Without a prefix the adapter
is guessed from the path. sec10k and phrasebank count as financial text,
wikitext as general; a corpus source is financial if its name says so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bloomberg_style.corpus import iter_texts  # noqa: E402
from tokenizer import EOD_TOKEN, NumericUnigramTokenizer  # noqa: E402

ADAPTERS = ("sec10k", "phrasebank", "wikitext", "corpus")
_DIGITS = re.compile("[0-9]")
FINANCIAL = "financial"
GENERAL = "general"


# ---------------------------------------------------------------- inputs


@dataclass
class Source:
    name: str
    domain: str
    train: list[str] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)

    @property
    def train_bytes(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.train)

    @property
    def heldout_bytes(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.heldout)


def sec10k_documents(path: Path) -> Iterator[str]:
    """One document per filing: its item_* sections in order, blank line between."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise SystemExit(f"{path}: no .json filings")
    for f in files:
        record = json.loads(f.read_text(encoding="utf-8"))
        items = [v.strip() for k, v in record.items() if k.startswith("item_") and isinstance(v, str)]
        text = "\n\n".join(i for i in items if i)
        if text:
            yield text


def phrasebank_documents(path: Path) -> Iterator[str]:
    """One document per sentence; the files are Latin-1 except the AllAgree one."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for line in text.splitlines():
        sentence, _, label = line.rpartition("@")
        if sentence.strip() and label.strip() in ("positive", "negative", "neutral"):
            yield sentence.strip() + "\n"


_WIKI_TITLE = re.compile(r"^ = [^=].* = $")


def wikitext_documents(path: Path) -> Iterator[str]:
    """One document per article (a top-level `` = Title = `` line starts one)."""
    article: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if _WIKI_TITLE.match(line.rstrip("\n")) and any(s.strip() for s in article):
            yield "".join(article)
            article = []
        article.append(line)
    if any(s.strip() for s in article):
        yield "".join(article)


def guess_adapter(path: Path) -> str:
    if path.is_dir() and any(path.glob("*.json")) and not any(path.glob("*.jsonl")):
        sample = json.loads(next(iter(sorted(path.glob("*.json")))).read_text(encoding="utf-8"))
        if isinstance(sample, dict) and any(k.startswith("item_") for k in sample):
            return "sec10k"
    if path.suffix == ".raw" or path.name.startswith("wiki."):
        return "wikitext"
    if path.suffix == ".txt" and path.is_file():
        head = path.read_bytes()[:4000].decode("latin-1").splitlines()[:5]
        if head and all(re.search(r"@(positive|negative|neutral)\s*$", h) for h in head):
            return "phrasebank"
    return "corpus"


def load_source(spec: str, heldout_every: int) -> Source:
    adapter, sep, rest = spec.partition(":")
    if not sep or adapter not in ADAPTERS:
        adapter, rest = guess_adapter(Path(spec)), spec
    path = Path(rest)
    if not path.exists():
        raise SystemExit(f"{path}: no such file or folder")
    if adapter == "sec10k":
        docs, domain = sec10k_documents(path), FINANCIAL
    elif adapter == "phrasebank":
        docs, domain = phrasebank_documents(path), FINANCIAL
    elif adapter == "wikitext":
        docs, domain = wikitext_documents(path), GENERAL
    else:
        docs = iter_texts([path])
        domain = FINANCIAL if re.search(r"fin|sec|10k|bank", path.name, re.I) else GENERAL
    source = Source(name=f"{adapter}:{path.name}", domain=domain)
    for i, doc in enumerate(docs):
        (source.heldout if i % heldout_every == heldout_every - 1 else source.train).append(doc)
    if not source.heldout or not source.train:
        raise SystemExit(f"{spec}: too few documents to hold out every {heldout_every}th")
    return source


def nbytes_of(text: str) -> int:
    return len(text.encode("utf-8"))


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return path


# ---------------------------------------------------------------- measuring a process tree


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), in MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run cmd; wall time, CPU time of the whole tree, peak of the tree's summed RSS (sampled 10/s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_mb(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "tree_peak_rss_mb": peak, "stdout": out}


def train_ours(
    files: list[Path], out: Path, vocab: int, chunk_vocab: int, workers: int, split: list[str]
) -> dict[str, Any]:
    cmd = [sys.executable, str(REPO / "launch" / "train_tokenizer.py"), "--input", *map(str, files)]
    cmd += ["--output", str(out), "--vocab-size", str(vocab), "--chunk-vocab-size", str(chunk_vocab)]
    cmd += ["--workers", str(workers), "--quiet", *split]
    measured = run_measured(cmd)
    stats = json.loads((out / "training_stats.json").read_text())
    peak = stats["peak_rss_mb"]
    measured.pop("stdout")
    return measured | {
        "largest_process_rss_mb": max(peak["main"], peak["largest_worker"]),
        "main_rss_mb": peak["main"],
        "main_after_merge_mb": peak["main_after_merge"],
        "largest_worker_rss_mb": peak["largest_worker"],
        "chunks": len(stats["chunks"]),
        "chunk_mb": [round(b / 1e6, 2) for b in stats["bytes_per_chunk"]],
        "tokens_before_pruning": stats["tokens_before_pruning"],
        "vocab_size": stats["vocab_size"],
        "tokenizer": out,
    }


# ---------------------------------------------------------------- baselines


def train_bpe(texts: list[str], vocab: int, split_digits: bool = False):
    """Byte-level BPE with GPT-2's pre-tokenizer regex, trained like ours: same text, same V (EOD included).

    ``split_digits`` isolates every digit first, as ours does: it separates the
    cost of spelling numbers digit by digit from the rest of the comparison.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def train_sentencepiece_default(texts: list[str], vocab: int, work: Path):
    """SentencePiece Unigram, default settings, on the raw train text (one line a sentence).

    Only hard_vocab_limit is relaxed, so a corpus too small for V does not abort.
    """
    import sentencepiece as spm

    corpus = work / "sp_train.txt"
    corpus.write_text("".join(t if t.endswith("\n") else t + "\n" for t in texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(work / "sp_default"),
        model_type="unigram",
        vocab_size=vocab,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=str(work / "sp_default.model"))


# ---------------------------------------------------------------- throughput


THROUGHPUT = """
import json, sys, time
sys.path.insert(0, {repo!r})
from tokenizer import NumericUnigramTokenizer
tok = NumericUnigramTokenizer.load({tok!r})
texts = [json.loads(l)["text"] for l in open({texts!r}, encoding="utf-8")]
n = sum(len(t.encode("utf-8")) for t in texts)
tok.encode_batch(texts[:50])  # warm up the thread pool
best, cpu = 0.0, 0.0
for _ in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    ids = tok.encode_batch(texts)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if n / dt / 1e6 > best:
        best, cpu = n / dt / 1e6, n / dc / 1e6
print(json.dumps({{"mb_per_s": best, "mb_per_cpu_s": cpu, "mb": n / 1e6, "tokens": sum(map(len, ids))}}))
"""


def encode_throughput(tok_dir: Path, texts_file: Path, threads: int | None) -> dict[str, float]:
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    else:
        env.pop("RAYON_NUM_THREADS", None)
    code = THROUGHPUT.format(repo=str(REPO), tok=str(tok_dir), texts=str(texts_file))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def pct(ours: float, base: float) -> str:
    return f"{100 * (ours - base) / base:+.1f}%"


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", help="[ADAPTER:]PATH ... (default: the demo corpus)")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help="V for every tokenizer, EOD included (default: 8192 demo, 32768)",
    )
    parser.add_argument("--chunk-vocab-size", type=int, default=None, help="default: the vocab size")
    parser.add_argument("--chunks", type=int, default=8, help="split-and-merge chunks")
    parser.add_argument("--workers", type=int, default=2, help="split-and-merge worker processes")
    parser.add_argument("--heldout-every", type=int, default=10, help="every Nth document is held out")
    parser.add_argument("--demo-docs", type=int, default=1200, help="demo corpus documents per domain")
    parser.add_argument("--max-train-mb", type=float, default=None, help="cap each source's train text")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 1x/2x RSS growth runs")
    parser.add_argument(
        "--output", default=None, help="folder for tokenizers and results.json (default: temp)"
    )
    args = parser.parse_args(argv)
    vocab = args.vocab_size or (32768 if args.input else 8192)  # the 3 MB demo supports ~15k pieces
    chunk_vocab = args.chunk_vocab_size or vocab
    load_start = os.getloadavg()
    started = time.perf_counter()
    work = Path(args.output or tempfile.mkdtemp(prefix="tokbench-"))
    work.mkdir(parents=True, exist_ok=True)

    if args.input:
        specs = args.input
    else:
        from bloomberg_style.demo.corpus import write_demo_corpus

        written = write_demo_corpus(work / "demo", docs_per_domain=args.demo_docs)
        specs = [f"corpus:{work / 'demo' / domain}" for domain in written]
    sources = [load_source(s, args.heldout_every) for s in specs]
    if args.max_train_mb:
        cap = int(args.max_train_mb * 1e6)
        for s in sources:
            kept, size = [], 0
            for t in s.train:
                if size >= cap:
                    break
                kept.append(t)
                size += len(t.encode("utf-8"))
            s.train = kept
    train_dir = work / "train"
    train_dir.mkdir(exist_ok=True)
    train_files = [write_jsonl(train_dir / f"{i}.jsonl", s.train) for i, s in enumerate(sources)]
    all_train = [t for s in sources for t in s.train]
    one_file = write_jsonl(train_dir / "all.jsonl", all_train)  # monolithic: one source, one chunk
    all_held = [t for s in sources for t in s.heldout]
    write_jsonl(work / "heldout.jsonl", all_held)
    total_train = sum(s.train_bytes for s in sources)
    print(
        f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} (cores: {os.cpu_count()})"
    )
    for s in sources:
        print(
            f"  {s.name:<40} {s.domain:<9} train {len(s.train):>6} docs {s.train_bytes / 1e6:7.2f} MB"
            f"   held-out {len(s.heldout):>5} docs {s.heldout_bytes / 1e6:6.2f} MB"
        )

    # 1-2: ours, split and merge vs monolithic (fresh processes: clean peak memory)
    print("training ours: monolithic (1 chunk, 1 worker) ...", flush=True)
    mono = train_ours([one_file], work / "ours_mono", vocab, chunk_vocab, 1, ["--chunks", "1"])
    print(f"training ours: split and merge ({args.chunks} chunks, {args.workers} workers) ...", flush=True)
    split = train_ours(
        train_files, work / "ours_split", vocab, chunk_vocab, args.workers, ["--chunks", str(args.chunks)]
    )
    print("training baselines: byte-level BPE, SentencePiece default ...", flush=True)
    t0 = time.perf_counter()
    bpe = train_bpe(all_train, vocab)
    bpe_s = time.perf_counter() - t0
    bpe_digits = train_bpe(all_train, vocab, split_digits=True)
    t0 = time.perf_counter()
    sp = train_sentencepiece_default(all_train, vocab, work)
    sp_s = time.perf_counter() - t0

    ours_split = NumericUnigramTokenizer.load(split["tokenizer"])
    ours_mono = NumericUnigramTokenizer.load(mono["tokenizer"])
    coders = {
        "ours (split+merge)": lambda ts: [len(x) for x in ours_split.encode_batch(ts)],
        "ours (monolithic)": lambda ts: [len(x) for x in ours_mono.encode_batch(ts)],
        "BPE (GPT-2 regex)": lambda ts: [len(e.ids) for e in bpe.encode_batch(ts, add_special_tokens=False)],
        "SentencePiece default": lambda ts: [len(x) for x in sp.encode(ts)],
        "BPE, digits split": lambda ts: [
            len(e.ids) for e in bpe_digits.encode_batch(ts, add_special_tokens=False)
        ],
    }
    sizes = {
        "ours (split+merge)": ours_split.vocab_size,
        "ours (monolithic)": ours_mono.vocab_size,
        "BPE (GPT-2 regex)": bpe.get_vocab_size(),
        "SentencePiece default": sp.get_piece_size(),
        "BPE, digits split": bpe_digits.get_vocab_size(),
    }
    groups: dict[str, list[str]] = {s.name: s.heldout for s in sources}
    for domain in (FINANCIAL, GENERAL):
        texts = [t for s in sources if s.domain == domain for t in s.heldout]
        if texts and sum(s.domain == domain for s in sources) > 1:
            groups[f"all {domain}"] = texts
    groups["all held-out"] = all_held
    tokens = {g: {name: sum(fn(texts)) for name, fn in coders.items()} for g, texts in groups.items()}
    nbytes = {g: sum(len(t.encode("utf-8")) for t in texts) for g, texts in groups.items()}

    # 3: peak RSS as the corpus grows 1x, 2x, 4x (1/8, 1/4, 1/2 of the shuffled train text, one
    # source) in 2, 4, 8 chunks: the chunk size stays 1/16 of the train text
    growth = []
    if not args.skip_scaling:
        mixed = list(all_train)
        random.Random(0).shuffle(mixed)
        for label, n_chunks in (("1x", 2), ("2x", 4), ("4x", 8)):
            part, size = [], 0
            for t in mixed:
                if size >= n_chunks * total_train / 16:
                    break
                part.append(t)
                size += len(t.encode("utf-8"))
            file = write_jsonl(train_dir / f"growth-{label}.jsonl", part)
            print(f"growth run {label}: {size / 1e6:.2f} MB ...", flush=True)
            r = train_ours(
                [file],
                work / f"ours_growth_{label}",
                vocab,
                chunk_vocab,
                args.workers,
                ["--chunks", str(n_chunks)],
            )
            growth.append((label, size, r))

    # 4: encode throughput (held-out text, topped up with train text to at least 2 MB)
    print("encode throughput ...", flush=True)
    thr, size = list(all_held), sum(nbytes_of(t) for t in all_held)
    for t in all_train:
        if size >= 2e6:
            break
        thr.append(t)
        size += nbytes_of(t)
    thr_texts = write_jsonl(work / "throughput.jsonl", thr)
    one = encode_throughput(split["tokenizer"], thr_texts, 1)
    many = encode_throughput(split["tokenizer"], thr_texts, None)
    load_end = os.getloadavg()

    # ------------------------------------------------------------ report
    print()
    print(f"## Held-out tokens (V = {vocab:,}; trained on {total_train / 1e6:.2f} MB)")
    print("actual vocabulary sizes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    print()
    header = ["held-out text", "MB", "digits", *[f"{k} tokens (B/tok)" for k in coders]]
    header += ["ours vs BPE", "ours vs SP", "ours vs BPE digits split"]
    rows = []
    for g, texts in groups.items():
        t = tokens[g]
        cells = [f"{t[k]:,} ({nbytes[g] / t[k]:.2f})" for k in coders]
        digits = sum(len(_DIGITS.findall(x)) for x in texts)
        ours = t["ours (split+merge)"]
        rows.append(
            [g, f"{nbytes[g] / 1e6:.2f}", f"{digits:,}", *cells, pct(ours, t["BPE (GPT-2 regex)"]),
             pct(ours, t["SentencePiece default"]), pct(ours, t["BPE, digits split"])]
        )  # fmt: skip
    print(markdown(rows, header))
    print(f"\ntraining wall time: BPE {bpe_s:.1f} s, SentencePiece default {sp_s:.1f} s")

    print(f"\n## Split and merge ({args.chunks} chunks, {args.workers} workers) vs monolithic (1 chunk)")
    held_mono = tokens["all held-out"]["ours (monolithic)"]
    held_split = tokens["all held-out"]["ours (split+merge)"]
    header = ["run", "chunks", "wall s", "CPU s", "largest process RSS MB", "tree RSS MB", "held-out tokens"]
    rows = [
        ["monolithic", str(mono["chunks"]), f"{mono['wall_s']:.1f}", f"{mono['cpu_s']:.1f}",
         f"{mono['largest_process_rss_mb']:.0f}", f"{mono['tree_peak_rss_mb']:.0f}", f"{held_mono:,}"],
        ["split+merge", str(split["chunks"]), f"{split['wall_s']:.1f}", f"{split['cpu_s']:.1f}",
         f"{split['largest_process_rss_mb']:.0f}", f"{split['tree_peak_rss_mb']:.0f}", f"{held_split:,}"],
        ["split / mono", "", f"{split['wall_s'] / mono['wall_s']:.2f}", f"{split['cpu_s'] / mono['cpu_s']:.2f}",
         f"{split['largest_process_rss_mb'] / mono['largest_process_rss_mb']:.2f}",
         f"{split['tree_peak_rss_mb'] / mono['tree_peak_rss_mb']:.2f}", pct(held_split, held_mono)],
    ]  # fmt: skip
    print(markdown(rows, header))
    print(
        f"merged pieces before pruning: split {split['tokens_before_pruning']:,}, "
        f"mono {mono['tokens_before_pruning']:,}; split chunk sizes (MB): {split['chunk_mb']}"
    )
    if growth:
        print(
            f"\n## Peak RSS of split and merge as the training text grows (chunks of {total_train / 16e6:.2f} MB)"
        )
        header = ["corpus", "train MB", "chunks", "pieces before pruning", "largest worker RSS MB"]
        header += ["main RSS MB (after merge)", "tree RSS MB", "wall s"]
        rows = [
            [name, f"{size / 1e6:.2f}", str(r["chunks"]), f"{r['tokens_before_pruning']:,}",
             f"{r['largest_worker_rss_mb']:.0f}", f"{r['main_rss_mb']:.0f} ({r['main_after_merge_mb']:.0f})",
             f"{r['tree_peak_rss_mb']:.0f}", f"{r['wall_s']:.1f}"]
            for name, size, r in growth
        ]  # fmt: skip
        print(markdown(rows, header))
    print("\n## Encode throughput (ours, encode_batch)")
    print(
        markdown(
            [
                ["1 thread", f"{one['mb_per_s']:.2f}", f"{one['mb_per_cpu_s']:.2f}"],
                [f"all threads ({os.cpu_count()})", f"{many['mb_per_s']:.2f}", f"{many['mb_per_cpu_s']:.2f}"],
            ],
            ["threads", f"MB/s wall ({one['mb']:.1f} MB)", "MB per CPU-second"],
        )
    )
    elapsed = time.perf_counter() - started
    print(
        f"\nload average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; "
        f"benchmark wall time {elapsed:.0f} s"
    )
    results = {
        "vocab_size": vocab,
        "chunk_vocab_size": chunk_vocab,
        "sources": [
            {
                "name": s.name,
                "domain": s.domain,
                "train_bytes": s.train_bytes,
                "heldout_bytes": s.heldout_bytes,
            }
            for s in sources
        ],
        "vocab_sizes": sizes,
        "heldout_tokens": tokens,
        "heldout_bytes": nbytes,
        "mono": {k: v for k, v in mono.items() if k != "tokenizer"},
        "split": {k: v for k, v in split.items() if k != "tokenizer"},
        "growth": [
            {"corpus": n, "bytes": b, **{k: v for k, v in r.items() if k != "tokenizer"}}
            for n, b, r in growth
        ],
        "throughput": {"one_thread": one, "all_threads": many},
        "loadavg": {"start": load_start, "end": load_end},
        "wall_s": elapsed,
    }
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
