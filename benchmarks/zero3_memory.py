"""Per-rank memory of ZeRO-3 on CPU gloo ranks, stage by stage, beside the planner's estimate.

    python benchmarks/zero3_memory.py                       # tiny + ladder-350m-shaped, 2/4/8 ranks
    python benchmarks/zero3_memory.py --models tiny --ranks 2 4

Each configuration is launched with the deepspeed launcher; every rank records its current
and peak host RSS after: process start (imports, process group), construction under
deepspeed.zero.Init (training/engine_build.py), deepspeed.initialize, step 1 and step 2
(bf16, micro batch 1, seq 128, AdamW). The baseline is the same launch's start line, so
the ratios are against a measurement from the same run. The planner
(sizing/memory.py, ZeRO-3 over all ranks) is printed per component beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = {
    "tiny": dict(preset="tiny", vocab_size=8192),
    # ladder-350m with the demo's 8,192-token vocabulary: 219M parameters (the rehearsal's model).
    "ladder-350m": dict(preset="ladder-350m", vocab_size=8192),
    "ladder-125m": dict(preset="ladder-125m", vocab_size=8192),
}
SEQ = 128
MIB = 2**20


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(model: str, out: Path) -> None:
    import deepspeed
    import torch

    from bloomberg_style.model import ModelConfig, param_groups
    from bloomberg_style.training.engine_build import build_model
    from bloomberg_style.training.memory_report import peak_memory_bytes

    deepspeed.init_distributed(dist_backend="gloo")
    torch.set_num_threads(1)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    spec = dict(MODELS[model])
    cfg = ModelConfig.preset(spec.pop("preset"), max_seq_len=SEQ, **spec)
    from bloomberg_style.training.deepspeed_config import zero3_buffer_sizes

    ds = {
        "train_batch_size": world,
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": True},
        "zero_optimization": {"stage": 3, "overlap_comm": False, "contiguous_gradients": True,
                              **zero3_buffer_sizes(cfg.hidden_size, cfg.num_layers, cfg.vocab_size)},
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "torch_adam": True}},
        "steps_per_print": 10**9,
    }  # fmt: skip
    marks: list[tuple[str, int, int, float]] = []
    t0 = time.perf_counter()

    def mark(label: str) -> None:
        torch.distributed.barrier()
        marks.append((label, current_rss(), peak_memory_bytes(), time.perf_counter() - t0))

    mark("start")
    torch.manual_seed(0)
    model = build_model(cfg, ds)
    mark("zero.Init build")
    engine, *_ = deepspeed.initialize(model=model, model_parameters=param_groups(model, 0.1), config=ds)
    mark("deepspeed.initialize")
    gen = torch.Generator().manual_seed(rank)
    for step in (1, 2):
        tokens = torch.randint(0, cfg.vocab_size, (1, SEQ), generator=gen)
        loss = engine(tokens, labels=tokens, loss_mask=torch.ones_like(tokens, dtype=torch.float32))
        engine.backward(loss)
        if step == 1:
            mark("forward+backward 1")
        engine.step()
        mark(f"step {step}")
    every: list = [None] * world
    torch.distributed.all_gather_object(every, marks)
    if rank == 0:
        out.write_text(json.dumps({"params": model.num_parameters(), "marks": every}), encoding="utf-8")


def planner(model: str, ranks: int) -> dict[str, float]:
    from bloomberg_style.model import ModelConfig
    from bloomberg_style.sizing.accelerators import get_accelerator
    from bloomberg_style.sizing.memory import estimate_memory
    from bloomberg_style.sizing.shape import Shape

    spec = dict(MODELS[model])
    c = ModelConfig.preset(spec.pop("preset"), **spec)
    shape = Shape(c.num_layers, c.hidden_size, c.num_heads, c.vocab_size, SEQ, float(c.hidden_size))
    e = estimate_memory(shape, get_accelerator("a100-40gb"), zero_stage=3, shard_group=ranks,
                        micro_batch=1, checkpointing=False)  # fmt: skip
    return {**e.components(), "total": e.total}


def run(model: str, ranks: int, port: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "marks.json"
        env = {**os.environ, "DS_ACCELERATOR": "cpu", "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(ranks), "--master_port",
               str(port), __file__, "--worker", model, str(out)]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{model} on {ranks} ranks failed:\n{proc.stderr[-3000:]}")
        return {**json.loads(out.read_text()), "wall": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny", "ladder-350m"], choices=sorted(MODELS))
    p.add_argument("--ranks", nargs="+", type=int, default=[2, 4, 8])
    p.add_argument("--port", type=int, default=29611)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--local_rank", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return
    results = []
    for model in args.models:
        for ranks in args.ranks:
            r = run(model, ranks, args.port)
            fp32 = 4 * r["params"]
            plan = planner(model, ranks)
            print(f"\n{model}: {r['params']:,} parameters (FP32 {fp32 / MIB:.0f} MiB), {ranks} ranks, "
                  f"wall {r['wall']:.0f}s")  # fmt: skip
            print(f"  {'stage':<22}{'max current RSS':>16}{'max peak RSS':>14}{'peak - start':>14}"
                  f"{'x FP32 model':>14}{'bytes/param':>13}")  # fmt: skip
            start = max(m[0][2] for m in r["marks"])
            for i, (label, *_rest) in enumerate(r["marks"][0]):
                cur = max(m[i][1] for m in r["marks"])
                peak = max(m[i][2] for m in r["marks"])
                above = peak - start
                print(f"  {label:<22}{cur / MIB:>14.0f}Mi{peak / MIB:>12.0f}Mi{above / MIB:>12.0f}Mi"
                      f"{above / fp32:>14.2f}{above / r['params']:>13.2f}")  # fmt: skip
            parts = ", ".join(f"{k} {v / MIB:.0f}" for k, v in plan.items())
            print(f"  planner (MiB per rank, no activation checkpointing): {parts}")
            results.append({"model": model, "ranks": ranks, **r, "planner": plan})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
