"""Training-step speed and peak memory: our BLOOM against transformers.BloomForCausalLM.

Same shape, same weights, same batch, same optimizer (torch AdamW), one process. A step is
forward + loss + backward + AdamW. The two models alternate step by step (and swap who goes
first every repeat), so load from other processes falls on both alike; the table gives
the median tokens/s of each, the median of the per-pair ratios and their quartiles (how
noisy the machine was). Peak memory is measured
for one step with and without activation checkpointing (CPU: peak RSS; CUDA: the
allocator's peak), each in a fresh process: a clean heap, and the CPU measurement changes
malloc's settings.

    python benchmarks/model_speed.py                        # CPU shapes, fp32
    python benchmarks/model_speed.py --threads 1 --repeats 9
    python benchmarks/model_speed.py --plot model_speed.png   # the table as a bar chart too
    python benchmarks/model_speed.py --device cuda --dtype bfloat16 --preset ladder-1.3b \\
        --batch 4 --seq 2048 --no-hf                       # GPU: tokens/s and MFU of a preset
    python benchmarks/model_speed.py --gpu                  # GPU check: every path, one table

GPU mode (--gpu; benchmarks/gpu_check.sh): a preset (ladder-1.3b) in bf16 at --seq 2048. For each
of ours with attention flex, sdpa and flash (when flash-attn imports), first uncompiled, then with
every block torch.compile'd, and for HF BloomForCausalLM of the same shape and weights: the
largest micro batch that fits (doubling from 1 until CUDA runs out of memory, at most
--max-batch), then the median step time at that batch. It prints tokens/s, model TFLOP/s
((6N + 12 L s D) FLOPs per token, no recompute), MFU against the device's dense BF16 peak
(model/flops.py PEAK_TFLOPS) and the allocator's peak memory, one row per path as it finishes.
Only torch, triton and transformers are needed (no deepspeed, no flash-attn).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.export import to_hf_config, to_hf_state_dict  # noqa: E402
from bloomberg_style.model import BloomForCausalLM, ModelConfig  # noqa: E402
from bloomberg_style.sizing.flops import detect_peak_tflops, flops_per_token, model_flops_utilization  # noqa: E402
from bloomberg_style.sizing.measure import cpu_peak_supported, peak_memory_bytes  # noqa: E402


@dataclass(frozen=True)
class Shape:
    name: str
    vocab: int
    hidden: int
    layers: int
    heads: int
    batch: int
    seq: int


# CPU shapes: the demo model, a longer sequence (attention-heavy) and a wider model (matmul-heavy).
SHAPES = {
    "micro": Shape("micro", 512, 64, 2, 4, 2, 64),  # smoke test only
    "tiny": Shape("tiny", 8192, 256, 4, 8, 8, 256),
    "long": Shape("long", 8192, 256, 4, 8, 2, 1024),
    "wide": Shape("wide", 8192, 512, 4, 8, 4, 256),
}


def build_pair(
    shape: Shape, dtype: torch.dtype, device: torch.device, checkpointing: bool, with_hf: bool, **ours_kw
):
    """(ours, HF or None) with identical weights, in train mode, dropout 0."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        num_layers=shape.layers,
        num_heads=shape.heads,
        max_seq_len=shape.seq,
        activation_checkpointing=checkpointing,
        **ours_kw,
    )
    ours = BloomForCausalLM(cfg).to(device=device, dtype=dtype).train()
    hf = None
    if with_hf:
        import transformers

        hf = transformers.BloomForCausalLM(to_hf_config(cfg)).to(device=device, dtype=dtype).train()
        hf.load_state_dict(to_hf_state_dict(ours))
        if checkpointing and hasattr(hf, "activation_checkpointing_enable"):  # transformers >= 5
            hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif checkpointing:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return ours, hf


def make_step(model, hf: bool, ids: torch.Tensor):
    """One training step; ours takes shifted labels, HF shifts `labels=ids` itself: same tokens."""
    try:  # one fused kernel for all parameters (CPU and CUDA); the same optimizer for both models
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -100)], dim=1)
    sync = torch.cuda.synchronize if ids.device.type == "cuda" else (lambda: None)

    def step() -> float:
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss if hf else model(ids, labels=labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        return float(loss.detach())

    return step


def time_pair(steps: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each, alternating, the first one swapped every repeat."""
    for step in steps.values():  # warm-up: allocations, optimizer state, kernel selection
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def memory_of(shape: Shape, args: argparse.Namespace, name: str, checkpointing: bool) -> int | None:
    """Peak memory of one steady-state step, in a fresh process (a clean heap) for CPU numbers."""
    if args.device == "cpu":
        cpu_peak_supported()  # malloc settings first, before this process allocates anything big
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype, device = getattr(torch, args.dtype), torch.device(args.device)
    ours, hf = build_pair(shape, dtype, device, checkpointing, name == "hf", **ours_options(args))
    ids = torch.randint(0, shape.vocab, (shape.batch, shape.seq), device=device)
    step = make_step(hf if name == "hf" else ours, name == "hf", ids)
    step()  # optimizer state exists: the steady-state step is what gets measured
    return peak_memory_bytes(step, device)[0]


def measure_memory(shapes: list[Shape], args: argparse.Namespace) -> dict[tuple, int | None]:
    """{(shape name, model, checkpointing): peak bytes}, each in its own spawned process."""
    names = ("ours",) if args.no_hf else ("ours", "hf")
    jobs = [(shape, name, ck) for shape in shapes for name in names for ck in (False, True)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {(s.name, n, ck): pool.submit(memory_of, s, args, n, ck) for s, n, ck in jobs}
        return {key: future.result() for key, future in futures.items()}


def ours_options(args: argparse.Namespace) -> dict:
    return dict(attention_impl=args.attention, compile_blocks=args.compile)


def mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f}"


# ---- GPU mode -------------------------------------------------------------------------------


def largest_batch(run_step, max_batch: int) -> int:
    """The largest power-of-two micro batch (<= max_batch) for which run_step(batch) fits; 0 if none."""
    best, batch = 0, 1
    while batch <= max_batch:
        try:
            run_step(batch)
            best = batch
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            gc.collect()
            torch.cuda.empty_cache()
        batch *= 2
    return best


def gpu_row(name: str, model, hf: bool, cfg: ModelConfig, n_params: int, args, batch: int | None) -> dict:
    """Find the batch (unless given), then time args.repeats steps there: one table row."""
    seq, device = args.seq, torch.device("cuda")

    def run_step(b: int) -> None:
        ids = torch.randint(0, cfg.vocab_size, (b, seq), device=device)
        step = make_step(model, hf, ids)
        step()
        del step
        model.zero_grad(set_to_none=True)

    if batch is None:
        batch = largest_batch(run_step, args.max_batch)
    row = {"name": name, "batch": batch}
    if batch == 0:
        return row
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    step = make_step(model, hf, ids)
    for _ in range(2):  # warm-up: compilation, autotuning, optimizer state
        step()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()  # ends with torch.cuda.synchronize
        times.append(time.perf_counter() - start)
    tokens_per_s = batch * seq / statistics.median(times)
    tflops = flops_per_token(cfg, n_params, seq) * tokens_per_s / 1e12
    peak = detect_peak_tflops()
    row.update(
        tok_s=tokens_per_s,
        tflops=tflops,
        mfu=None if peak is None else tflops / peak,
        mem=torch.cuda.max_memory_allocated(),
    )
    del step
    model.zero_grad(set_to_none=True)
    gc.collect()
    torch.cuda.empty_cache()
    return row


def print_gpu_row(row: dict) -> None:
    if row["batch"] == 0:
        print(f"{row['name']:<22}{'batch 1 does not fit':>20}", flush=True)
        return
    mfu = "n/a" if row["mfu"] is None else f"{row['mfu']:.1%}"
    print(
        f"{row['name']:<22}{row['batch']:>6}{row['tok_s']:>12.0f}{row['tflops']:>9.1f}{mfu:>8}"
        f"{row['mem'] / 2**30:>10.1f}",
        flush=True,
    )


def gpu_main(args: argparse.Namespace) -> int:
    """Every path of ours (compile off, then on) and HF, same preset, bf16, one table."""
    from bloomberg_style.model.attention import flash_unavailable_reason

    if not torch.cuda.is_available():
        print("--gpu needs a CUDA device", file=sys.stderr)
        return 2
    device, dtype = torch.device("cuda"), torch.bfloat16
    torch.backends.cuda.matmul.allow_tf32 = True
    preset = args.preset or "ladder-1.3b"
    impls = ["flex", "sdpa"] + (["flash"] if flash_unavailable_reason(device, dtype) is None else [])
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name()}, peak {detect_peak_tflops()} TFLOP/s bf16, "
        f"{preset}, seq {args.seq}, bf16; paths: ours {impls} (compile off/on), HF; "
        f"flash: {flash_unavailable_reason(device, dtype) or 'available'}",
        flush=True,
    )
    print(f"{'path':<22}{'batch':>6}{'tokens/s':>12}{'TFLOP/s':>9}{'MFU':>8}{'peak GiB':>10}", flush=True)
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset, max_seq_len=args.seq)
    with torch.device(device):
        ours = BloomForCausalLM(cfg)
    ours = ours.to(dtype).train()
    n = ours.num_parameters()
    rows, batches = [], {}
    if not args.no_hf:  # first, so the baseline is in the table even if the time limit cuts the run short
        import transformers

        with torch.device(device):
            hf = transformers.BloomForCausalLM(to_hf_config(cfg))
        hf = hf.to(dtype).train()
        hf.load_state_dict(to_hf_state_dict(ours))
        row = gpu_row("HF BloomForCausalLM", hf, True, cfg, n, args, None)
        print_gpu_row(row)
        rows.append(row)
        del hf
        gc.collect()
        torch.cuda.empty_cache()
    for compiled in (False, True):
        if compiled:
            for block in ours.transformer.h:
                block.compile()  # regional: one graph shared by every block
        for impl in impls:
            ours.config.attention_impl = impl
            ours._bias_cache.clear()
            name = f"ours {impl}{' compiled' if compiled else ''}"
            # Compiled runs reuse the eager batch: compiling fuses, it does not grow memory.
            row = gpu_row(name, ours, False, ours.config, n, args, batches.get(impl) if compiled else None)
            batches.setdefault(impl, row["batch"])
            chosen = ours.attention_choice(device)
            row["name"] += "" if chosen.impl == impl else f" (ran {chosen.impl})"
            print_gpu_row(row)
            rows.append(row)
    hf_row = rows.pop(0) if not args.no_hf else None
    best = max((r for r in rows if r.get("tok_s")), key=lambda r: r["tok_s"], default=None)
    if best is not None and hf_row is not None and hf_row.get("tok_s"):
        print(
            f"best of ours ({best['name']}) / HF tokens/s: {best['tok_s'] / hf_row['tok_s']:.2f}", flush=True
        )
    return 0


def plot_rows(rows: list[dict], path: Path, title: str) -> None:
    """Tokens/s of ours and HF per shape as bars, each pair labelled with its median ratio and
    the pair ratios' quartiles: the table, for people who read plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["shape"].name for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 + 1.6 * len(rows)), 4.5))
    ax.bar([i - 0.2 for i in x], [r["ours"] for r in rows], width=0.4, label="ours")
    ax.bar([i + 0.2 for i in x], [r.get("hf", 0) for r in rows], width=0.4, label="HF BloomForCausalLM")
    for i, r in zip(x, rows):
        if "ratio" in r:
            q1, q3 = r["spread"]
            ax.annotate(f"{r['ratio']:.2f}x\n({q1:.2f}-{q3:.2f})", (i, max(r["ours"], r["hf"])),
                        ha="center", va="bottom", fontsize=9)  # fmt: skip
    ax.set_xticks(list(x), names)
    ax.set_ylabel("training tokens/s (forward, loss, backward, AdamW)")
    ax.set_title(f"{title}\nratio: median of the alternating pairs (their quartiles)", fontsize=9)
    ax.set_ylim(0, 1.4 * max(max(r["ours"], r.get("hf", 0)) for r in rows))
    ax.legend(loc="upper right", ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gpu", action="store_true", help="GPU check: every attention path, compile off/on, and HF"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="GPU mode: largest micro batch tried")
    parser.add_argument("--shapes", default="tiny,long,wide", help=f"comma list of {', '.join(SHAPES)}")
    parser.add_argument("--preset", help="a ModelConfig preset instead of --shapes (with --batch, --seq)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=9, help="alternating pairs timed per shape")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--attention", default="auto", help="our attention_impl")
    parser.add_argument("--compile", action="store_true", help="our blocks torch.compile'd (inductor)")
    parser.add_argument("--no-hf", action="store_true", help="ours only (e.g. a preset too big for HF eager)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--plot", type=Path, help="also draw the CPU table as a bar chart (PNG)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gpu:
        return gpu_main(args)
    if args.preset:
        p = ModelConfig.preset(args.preset)
        shapes = [
            Shape(args.preset, p.vocab_size, p.hidden_size, p.num_layers, p.num_heads, args.batch, args.seq)
        ]
    else:
        unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
        if unknown:
            parser.error(f"unknown shapes {unknown}; known: {', '.join(SHAPES)}")
        shapes = [SHAPES[s] for s in args.shapes.split(",")]
    dtype, device = getattr(torch, args.dtype), torch.device(args.device)
    ours_kw = ours_options(args)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"torch {torch.__version__}, device {device}, {args.dtype}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
        f"ours: attention_impl={args.attention}{', compiled blocks' if args.compile else ''}"
    )
    rows = []
    for shape in shapes:
        ours, hf = build_pair(shape, dtype, device, False, not args.no_hf, **ours_kw)
        ids = torch.randint(0, shape.vocab, (shape.batch, shape.seq), device=device)
        steps = {"ours": make_step(ours, False, ids)}
        if hf is not None:
            steps["hf"] = make_step(hf, True, ids)
        times = time_pair(steps, args.repeats)
        tokens = shape.batch * shape.seq
        row = {"shape": shape, "ours": tokens / statistics.median(times["ours"])}
        if hf is not None:
            row["hf"] = tokens / statistics.median(times["hf"])
            pairs = [h / o for o, h in zip(times["ours"], times["hf"])]
            row["ratio"] = statistics.median(pairs)
            row["spread"] = statistics.quantiles(pairs, n=4)[::2] if len(pairs) > 1 else pairs * 2
        n = ours.num_parameters()
        peak = detect_peak_tflops() if device.type == "cuda" else None
        if peak is not None:
            row["mfu"] = model_flops_utilization(ours.config, n, shape.seq, row["ours"], peak)
        row["tflops"] = flops_per_token(ours.config, n, shape.seq) * row["ours"] / 1e12
        del ours, hf, steps
        rows.append(row)
        print(
            f"  {shape.name}: ours {row['ours']:.0f} tok/s, HF {row.get('hf', float('nan')):.0f} tok/s",
            flush=True,
        )
    memory = {} if args.no_memory else measure_memory(shapes, args)

    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    header = (
        f"{'shape':<12}{'L x D, heads':>14}{'batch x seq':>13}{'ours tok/s':>12}{'HF tok/s':>10}{'ratio':>7}"
        f"{'pairs IQR':>11}{'model TFLOP/s':>15}"
        + ("" if args.no_memory else f"{'peak MiB ours/HF':>18}{'ckpt ours/HF':>14}")
        + (f"{'MFU':>7}" if any("mfu" in r for r in rows) else "")
    )
    print(header)
    for r in rows:
        s = r["shape"]
        line = (
            f"{s.name:<12}{f'{s.layers} x {s.hidden}, {s.heads}':>14}{f'{s.batch} x {s.seq}':>13}"
            f"{r['ours']:>12.0f}{r.get('hf', float('nan')):>10.0f}{r.get('ratio', float('nan')):>7.2f}"
            f"{'-'.join(f'{q:.2f}' for q in r.get('spread', [])) or 'n/a':>11}{r['tflops']:>15.3f}"
        )
        if memory:
            for ck, width in ((False, 18), (True, 14)):
                line += (
                    f"{mb(memory[s.name, 'ours', ck]) + ' / ' + mb(memory.get((s.name, 'hf', ck))):>{width}}"
                )
        if "mfu" in r:
            line += f"{r['mfu']:>7.1%}"
        print(line)
    print(
        f"load average after: {load_after[0]:.1f}; ratio = median over alternating pairs of HF s/step / ours, "
        "pairs IQR = their quartiles (a wide range: the machine was noisy, rerun)"
    )
    if args.plot:
        plot_rows(
            rows, args.plot, f"torch {torch.__version__}, {args.dtype}, {torch.get_num_threads()} threads"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
