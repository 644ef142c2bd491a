"""prepare_data throughput: MB/s per worker, 1 -> 2 workers, raw encode ceiling, resume after a kill.

    python benchmarks/prepare_data.py                     # ../shared/data text (what is present)
    python benchmarks/prepare_data.py --repeat 2 --vocab-size 8192

Builds a corpus of .jsonl files from the local real text (SEC 10-K filings:
item_* sections joined, one document per filing; WikiText-2 articles;
ChatDoctor and Alpaca records), trains a tokenizer on a sample of it, then
measures, end to end (process start to merged shard, `launch/prepare_data.py`
in a subprocess):

1. the raw single-core `tokenizers` encode_batch rate on the same text (one
   Rust thread): the ceiling a worker can reach;
2. --workers 1 and --workers 2: MB/s of UTF-8 text in total and per worker,
   and the 1 -> 2 ratio (targets: >= 1 MB/s per worker, >= 1.7x);
3. a run SIGKILLed after half of its parts, then rerun: the rerun's time
   against an uninterrupted run, and that the outputs are byte-identical.

The machine may be shared: `uptime` is printed before and after, and ratios
are only as good as the load allows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared/data next to the clone (or next to the folder of worktrees holding it)
SHARED = next((p / "shared" / "data" for p in (REPO.parent, REPO.parent.parent) if (p / "shared" / "data").is_dir()),
              REPO.parent / "shared" / "data")  # fmt: skip
sys.path.insert(0, str(REPO))

RAW_ENCODE = """
import os, sys, json, time
os.environ["TOKENIZERS_PARALLELISM"] = "false"; os.environ["RAYON_NUM_THREADS"] = "1"
sys.path.insert(0, {repo!r})
from tokenizer import NumericUnigramTokenizer
tok = NumericUnigramTokenizer.load({tok!r})
texts = [json.loads(l)["text"] for f in sorted(os.listdir({corpus!r})) for l in open(os.path.join({corpus!r}, f))]
n = sum(len(t.encode("utf-8")) for t in texts)
t0 = time.perf_counter()
for i in range(0, len(texts), 256):
    tok.encode_batch(texts[i:i + 256])
print(json.dumps({{"bytes": n, "seconds": time.perf_counter() - t0}}))
"""


def _adapters():
    spec = importlib.util.spec_from_file_location("bench_tokenizer", REPO / "benchmarks" / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build_corpus(out: Path, files: int, max_mb: float = 0.0) -> tuple[list[str], int]:
    """Real text from ../shared/data as `files` .jsonl files (documents dealt round-robin)."""
    bench = _adapters()
    texts: list[str] = []
    if (SHARED / "sec_10k_edgar_crawler").is_dir():
        texts += list(bench.sec10k_documents(SHARED / "sec_10k_edgar_crawler"))
    for name in ("wiki.test.raw", "wiki.valid.tokens", "wiki.test.tokens"):
        if (SHARED / "wikitext2" / name).is_file():
            texts += list(bench.wikitext_documents(SHARED / "wikitext2" / name))
    for path in (
        SHARED / "chatdoctor_genmedgpt5k" / "chatdoctor5k.json",
        SHARED / "alpaca_subset" / "alpaca_5000.json",
    ):
        if path.is_file():
            for r in json.loads(path.read_text(encoding="utf-8")):
                texts.append("\n".join(str(r.get(k, "")) for k in ("instruction", "input", "output")).strip())
    texts = [t for t in texts if t.strip()]
    if max_mb:  # every k-th document, so every source stays in
        total = sum(len(t.encode("utf-8")) for t in texts)
        step = max(1, round(total / (max_mb * 1e6)))
        texts = texts[::step]
    if not texts:
        raise SystemExit(f"no text found under {SHARED}")
    out.mkdir(parents=True, exist_ok=True)
    streams = [open(out / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(files)]  # noqa: SIM115
    for i, t in enumerate(texts):
        streams[i % files].write(json.dumps({"text": t}) + "\n")
    for s in streams:
        s.close()
    return texts, sum(len(t.encode("utf-8")) for t in texts)


CPU_SECONDS: dict[str, float] = {}  # label -> CPU seconds of the last such subprocess (and its workers)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(corpus: Path, tok: Path, output: Path, workers: int, parts: int, env: dict | None = None):
    cmd = [sys.executable, str(REPO / "launch" / "prepare_data.py"), "--input", str(corpus), "--tokenizer",
           str(tok), "--output", str(output), "--workers", str(workers), "--parts", str(parts), "--no-progress"]  # fmt: skip
    t0, c0 = time.perf_counter(), child_cpu()
    done = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, capture_output=True,
                          text=True)  # fmt: skip
    CPU_SECONDS[f"workers {workers}"] = child_cpu() - c0
    return done, time.perf_counter() - t0


def best_of(n: int, fn):
    return min(fn() for _ in range(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument(
        "--parts", type=int, default=8, help="parts per run (the same for every worker count)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; the fastest is reported")
    parser.add_argument("--max-mb", type=float, default=0.0, help="use about this much of the text (0: all)")
    parser.add_argument("--sample-mb", type=float, default=2.0, help="tokenizer training sample")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        texts, nbytes = build_corpus(work / "corpus", files=2 * args.parts, max_mb=args.max_mb)
        mb = nbytes / 1e6
        print(f"corpus: {len(texts):,} documents, {mb:.1f} MB of UTF-8 text, {2 * args.parts} .jsonl files")

        from tokenizer import NumericUnigramTokenizer

        t0 = time.perf_counter()
        sample, size = [], 0
        for t in texts[::4]:  # a spread-out sample of about 2 MB: enough for a benchmark vocabulary
            sample.append(t)
            size += len(t)
            if size > args.sample_mb * 1e6:
                break
        NumericUnigramTokenizer.train(sample, args.vocab_size).save(work / "tok")
        print(
            f"tokenizer: {args.vocab_size} tokens trained on a {args.sample_mb:g} MB sample in {time.perf_counter() - t0:.0f}s"
        )

        code = RAW_ENCODE.format(repo=str(REPO), tok=str(work / "tok"), corpus=str(work / "corpus"))
        raw = best_of(args.repeat, lambda: json.loads(subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)["seconds"])  # fmt: skip
        ceiling = mb / raw

        def timed(workers: int) -> float:
            out = work / f"w{workers}-{time.monotonic_ns()}" / "shard"
            done, seconds = prepare(work / "corpus", work / "tok", out, workers, args.parts)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            return seconds

        one = best_of(args.repeat, lambda: timed(1))
        cpu_one = CPU_SECONDS["workers 1"]
        two = best_of(args.repeat, lambda: timed(2))
        cpu_two = CPU_SECONDS["workers 2"]

        whole = work / "whole" / "shard"
        _, whole_s = prepare(work / "corpus", work / "tok", whole, 2, args.parts)
        killed = work / "killed" / "shard"
        k, killed_s = prepare(work / "corpus", work / "tok", killed, 2, args.parts,
                              env={"BLOOMBERG_STYLE_PREPARE_KILL_AFTER": str(args.parts // 2)})  # fmt: skip
        time.sleep(2)  # let the orphaned workers of the killed run finish their part and exit
        resumed, resumed_s = prepare(work / "corpus", work / "tok", killed, 2, args.parts)
        last = json.loads(resumed.stdout)["last_run"]
        same = all(
            Path(f"{killed}{s}").read_bytes() == Path(f"{whole}{s}").read_bytes() for s in (".bin", ".idx")
        )

    rows = [
        ("raw encode_batch, 1 Rust thread (ceiling)", raw, ceiling, ceiling),
        ("prepare_data --workers 1 (end to end)", one, mb / one, mb / one),
        ("prepare_data --workers 2 (end to end)", two, mb / two, mb / two / 2),
    ]
    print("\n| run | seconds | MB/s | MB/s per worker |\n|---|---|---|---|")
    for name, s, rate, per in rows:
        print(f"| {name} | {s:.2f} | {rate:.2f} | {per:.2f} |")
    print(
        f"\n1 -> 2 workers: {one / two:.2f}x (target >= 1.7x); per worker {mb / two / 2:.2f} MB/s (target >= 1)"
    )
    print(f"end-to-end per worker vs raw ceiling: {mb / one / ceiling:.0%} (workers 1)")
    print(
        f"kill after {args.parts // 2} of {args.parts} parts (rc {k.returncode}, {killed_s:.2f}s), rerun "
        f"{resumed_s:.2f}s vs uninterrupted {whole_s:.2f}s ({resumed_s / whole_s:.0%}); reused "
        f"{last['parts_reused']} parts, encoded {last['parts_encoded']}; byte-identical: {same}"
    )
    # Wall time on a loaded machine measures the other tenants; CPU seconds do not (much).
    print(
        f"CPU seconds (all processes of the run): workers 1 {cpu_one:.1f}s = {mb / cpu_one:.2f} MB per CPU-second; "
        f"workers 2 {cpu_two:.1f}s = {mb / cpu_two:.2f} MB per CPU-second "
        f"(1 -> 2 workers on free cores: at most {2 * cpu_one / cpu_two:.2f}x)"
    )
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
