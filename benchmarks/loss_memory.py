"""Peak memory and time of the LM-head loss, forward + backward: chunked against the full-logits ones.

Three losses over the same hidden states [tokens, hidden] and tied weight [vocab, hidden], FP32:
- new: model/loss.py lm_head_cross_entropy, logits made and freed one chunk at a time;
- current: the LM head's full logits, then loss.py's fused softmax cross-entropy;
- F.cross_entropy: full logits, then torch.nn.functional.cross_entropy.

Memory method: each loss runs in its own spawned process (a fresh heap), with glibc told to
return every freed block of 64 KiB or more to the OS at once, so the resident set follows live
tensors. The inputs and the weight are made first; the peak is the process's high-water RSS
(Linux VmHWM, reset through /proc/self/clear_refs just before the step) minus its RSS at that
point (model/memory.py peak_memory_bytes). It counts everything the step allocates: logits,
softmax buffers, the gradients of hidden and weight. Tracemalloc would see none of it (torch's
allocations bypass Python's allocator). Time is the median of the measured step and --repeats more.

    python benchmarks/loss_memory.py                     # 4,096 tokens x vocab 131,072, hidden 1,024
    python benchmarks/loss_memory.py --tokens 1024 --vocab 32768
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.model.loss import chunk_tokens, cross_entropy, lm_head_cross_entropy  # noqa: E402
from bloomberg_style.sizing.measure import cpu_peak_supported, peak_memory_bytes  # noqa: E402

LOSSES = ("new", "current", "F.cross_entropy")


def run_loss(
    name: str, tokens: int, vocab: int, hidden: int, repeats: int, threads: int
) -> tuple[int | None, float]:
    """(peak bytes of one forward + backward, median seconds per step) for loss `name`, in this process."""
    cpu_peak_supported()  # malloc settings first, before anything big is allocated
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(tokens, hidden, generator=g).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=g) * 0.02).requires_grad_()
    labels = torch.randint(0, vocab, (tokens,), generator=g)
    weight = torch.full((tokens,), 1.0 / tokens)

    def step() -> None:
        if name == "new":
            loss = lm_head_cross_entropy(h, w, labels, weight)
        elif name == "current":
            loss = cross_entropy(h @ w.t(), labels, weight)
        else:
            loss = F.cross_entropy(h @ w.t(), labels)
        loss.backward()
        h.grad = w.grad = None

    start = time.perf_counter()
    peak, _ = peak_memory_bytes(step)  # the first step: nothing cached from before
    times = [time.perf_counter() - start]
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return peak, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=131072)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=0, help="timed steps after the measured one")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if not cpu_peak_supported():
        print("peak RSS cannot be measured here (needs Linux with glibc)", file=sys.stderr)
        return 2
    full_logits = args.tokens * args.vocab * 4
    print(
        f"torch {torch.__version__}, {args.tokens} tokens x vocab {args.vocab}, hidden {args.hidden}, FP32, "
        f"chunk {chunk_tokens(args.vocab)} tokens; full FP32 logits = {full_logits / 2**20:.0f} MiB"
    )
    context = multiprocessing.get_context("spawn")
    results = {}
    for name in LOSSES:  # one at a time: each fresh process has the machine's memory to itself
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results[name] = pool.submit(
                run_loss, name, args.tokens, args.vocab, args.hidden, args.repeats, args.threads
            ).result()
        print(f"  {name}: done", flush=True)
    print(f"{'loss':<18}{'peak MiB':>10}{'x full logits':>15}{'s/step':>9}")
    for name, (peak, seconds) in results.items():
        print(f"{name:<18}{peak / 2**20:>10.0f}{peak / full_logits:>15.2f}{seconds:>9.3f}")
    ratio = results["new"][0] / results["F.cross_entropy"][0]
    print(f"peak ratio new/F.cross_entropy: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
