"""Speed of the attention paths (eager, sdpa, flex; flash on CUDA when it imports), forward + backward.

The kernel alone, at the model_speed.py shapes: q, k, v [batch, heads, seq, head_dim] with the
ALiBi + causal mask each path needs (made once, as the model caches it). Warm-up first (flex
compiles there), then the median of --repeats steps, the paths alternating step by step so load
from other processes falls on all alike. This is the measurement behind `auto`'s CPU choice
(attention.CPU_AUTO; docs/model.md).

    python benchmarks/attention_speed.py                    # CPU, fp32
    python benchmarks/attention_speed.py --device cuda --dtype bfloat16 --shapes 1.3b
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from bloomberg_style.model.alibi import alibi_bias, alibi_slopes  # noqa: E402
from bloomberg_style.model.attention import (  # noqa: E402
    causal_block_mask,
    eager_attention,
    flash_attention,
    flash_unavailable_reason,
    flex_attention,
    sdpa_attention,
)

# (batch, heads, seq, head_dim): model_speed.py's tiny/long/wide shapes and ladder-1.3b at 2,048.
SHAPES = {
    "tiny": (8, 8, 256, 32),
    "long": (2, 8, 1024, 32),
    "wide": (4, 8, 256, 64),
    "1.3b": (4, 16, 2048, 128),
}


def make_paths(batch, heads, seq, head_dim, dtype, device, grad: bool):
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (
        torch.randn(batch, heads, seq, head_dim, generator=g, device=device, dtype=dtype).requires_grad_(grad)
        for _ in range(3)
    )
    slopes = alibi_slopes(heads).to(device)
    fp32_bias = alibi_bias(slopes, seq, device=device)
    low_bias = fp32_bias.to(dtype)
    mask = causal_block_mask(seq, device)
    paths = {
        "eager": lambda: eager_attention(q, k, v, fp32_bias, 0.0, 1),
        "sdpa": lambda: sdpa_attention(q, k, v, low_bias, 0.0),
        "flex": lambda: flex_attention(q, k, v, slopes, mask),
    }
    if flash_unavailable_reason(q.device, dtype) is None:
        qf, kf, vf = (t.detach().transpose(1, 2).contiguous().requires_grad_(grad) for t in (q, k, v))
        paths["flash"] = lambda: flash_attention(qf, kf, vf, slopes, 0.0)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="tiny,long,wide", help=f"comma list of {', '.join(SHAPES)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--forward-only", action="store_true", help="inference: no backward")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(
        f"torch {torch.__version__}, {device}, {args.dtype}, {torch.get_num_threads()} threads, "
        f"{'forward' if args.forward_only else 'forward + backward'}; ms per call (median)"
    )
    print(
        f"{'shape':<8}{'b x h x s x d':>18}"
        + "".join(f"{p:>9}" for p in ("eager", "sdpa", "flex", "flash"))
        + "  fastest"
    )
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        paths = make_paths(*shape, dtype, device, grad=not args.forward_only)

        def call(fn):
            out = fn()
            if not args.forward_only:
                out.backward(torch.ones_like(out))
            sync()

        times = {p: [] for p in paths}
        for fn in paths.values():
            call(fn)  # warm-up: flex compiles here
        for r in range(args.repeats):
            for p in paths if r % 2 == 0 else reversed(list(paths)):
                start = time.perf_counter()
                call(paths[p])
                times[p].append(time.perf_counter() - start)
        ms = {p: 1000 * statistics.median(t) for p, t in times.items()}
        cells = "".join(
            f"{ms[p]:>9.2f}" if p in ms else f"{'-':>9}" for p in ("eager", "sdpa", "flex", "flash")
        )
        print(f"{name:<8}{' x '.join(map(str, shape)):>18}{cells}  {min(ms, key=ms.get)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
