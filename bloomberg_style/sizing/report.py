"""The sizing result as a plain-text report and as a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .calculator import SizingResult
from .chinchilla import APPROACHES, EPOCH, HOFFMANN
from .data_limit import SizeOption
from .memory import COMPONENTS, GIB, MemoryEstimate
from .shape import LEVINE_DEPTH_RATE, LEVINE_LOG_SCALE

COLUMN_NAMES = {"deepspeed_buffers": "ds buffers", "step_temporaries": "step temp"}  # table headers


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to width; the first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return indent + "  ".join(out).rstrip()

    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths), *map(line, rows)])


def _pairs(rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{indent}{k.ljust(width)}  {v}" for k, v in rows)


def _b(x: float, digits: int = 2) -> str:
    return f"{x / 1e9:,.{digits}f}B"


def _gib(x: float) -> str:
    return f"{x / GIB:,.1f}"


def _option_row(o: SizeOption) -> list[str]:
    return [
        o.name,
        _b(o.params),
        _b(o.tokens, 0),
        f"{o.tokens / o.params:.1f}",
        f"{o.share_of_budget:.1%}",
        f"{o.loss_hoffmann:.4f}",
        f"{o.loss_epoch:.4f}",
        "yes" if o.data_ok else "no",
    ]


def format_report(r: SizingResult) -> str:
    b, c, s, p, i = r.budget, r.choice, r.shape, r.plan, r.inputs
    out = []
    out.append("Compute budget")
    out.append(
        _pairs(
            [
                [
                    "GPU",
                    f"{b.gpu.name} (dense BF16 peak {b.gpu.peak_bf16_tflops:g} TFLOP/s, {b.gpu.memory_gib:g} GiB)",
                ],
                ["GPU-hours", f"{b.gpu_hours:,.0f}"],
                [
                    "rate per GPU",
                    f"{b.hardware_tflops:.1f} TFLOP/s hardware (HFU {b.hfu:.1%}), "
                    f"{b.model_tflops:.1f} model (MFU {b.mfu:.1%})",
                ],
                ["recompute factor", f"{b.recompute_factor:g} (model / hardware FLOPs)"],
                ["budget C", f"{b.flops:.3e} FLOPs = GPU-hours x 3600 x rate x recompute factor"],
                ["buffer", f"{b.buffer:.0%} held back -> C' = {b.usable_flops:.3e} FLOPs to plan with"],
            ]
        )
    )

    out.append(
        f"\nCompute-optimal size for C = {b.flops:.3e} (loss: nats/token by approach 3, "
        f"H = Hoffmann, E = Epoch AI)"
    )
    out.append(
        _table(
            ["approach", "params", "tokens", "tok/param", "loss H", "loss E", "formula"],
            [
                [
                    APPROACHES[o.approach],
                    _b(o.params),
                    _b(o.tokens, 0),
                    f"{o.tokens / o.params:.1f}",
                    f"{HOFFMANN.loss(o.params, o.tokens):.4f}",
                    f"{EPOCH.loss(o.params, o.tokens):.4f}",
                    o.formula,
                ]
                for o in r.optima
            ],
        )
    )

    planned = r.data.take(r.shape_option.tokens)
    out.append("\nData (usable = tokens x epochs; the plan takes the minimum shares first)")
    out.append(
        _table(
            ["source", "tokens", "epochs", "usable", "min share", "planned", "share"],
            [
                [
                    name,
                    _b(t, 1),
                    f"{r.data.epochs[name]:g}",
                    _b(r.data.usable[name], 1),
                    f"{r.data.min_share[name]:.0%}" if name in r.data.min_share else "-",
                    _b(planned[name], 1),
                    f"{planned[name] / r.shape_option.tokens:.1%}",
                ]
                for name, t in r.data.tokens.items()
            ],
        )
    )
    held = c.options[1]
    status = (
        f"data-limited: approach {c.approach} wants {_b(held.tokens, 0)} tokens within the buffer"
        if c.data_limited
        else f"not data-limited: approach {c.approach} needs {_b(held.tokens, 0)}"
    )
    out.append(f"  allowed D_all = {_b(c.data_tokens, 1)} tokens ({status})")

    out.append(
        f"\nSize options (approach {c.approach}; % of C is 6ND / C; cap {_b(c.max_params)} parameters)"
    )
    out.append(
        _table(
            ["option", "params", "tokens", "tok/param", "% of C", "loss H", "loss E", "data ok"],
            [_option_row(o) for o in [*c.options, r.shape_option]],
        )
    )

    out.append(
        f"\nShape (Levine et al. 2020: hidden = exp({LEVINE_LOG_SCALE}) exp({LEVINE_DEPTH_RATE} L), "
        f"rounded to whole heads and a multiple of 128)"
    )
    out.append(
        _table(
            ["layers", "rule width", "hidden", "heads", "head size", "FFN", "vocab", "parameters"],
            [
                [
                    str(s.layers),
                    f"{s.rule_width:,.0f}",
                    f"{s.hidden:,}",
                    str(s.heads),
                    str(s.head_dim),
                    f"{s.ffn:,}",
                    f"{s.vocab_size:,}",
                    f"{s.params:,}",
                ]
            ],
        )
    )

    per_n = p.flops_per_token / s.params
    attention = "with" if i.attention_flops else "without"
    out.append(
        f"\nPlan on {p.gpus} x {b.gpu.name} at {p.hardware_tflops:.1f} TFLOP/s "
        f"({per_n:.2f}N = {p.flops_per_token:.3e} FLOPs/token {attention} attention, recompute counted)"
    )
    rows = [
        [
            str(k + 1),
            f"{ph.sequences:,}",
            f"{ph.sequences * s.seq_len:,}",
            f"{ph.steps:,}",
            _b(ph.tokens, 1),
            f"{ph.seconds_per_step:.1f}",
            f"{ph.steps * ph.seconds_per_step / 86400:.1f}",
        ]
        for k, ph in enumerate(p.phases)
    ]
    rows.append(["total", "", "", f"{p.steps:,}", _b(p.tokens, 1), "", f"{p.days:.1f}"])
    out.append(_table(["phase", "batch (seq)", "tokens/step", "steps", "tokens", "s/step", "days"], rows))
    out.append(
        f"  {p.gpu_hours:,.0f} GPU-hours = {p.gpu_hours / b.gpu_hours:.1%} of the budget; "
        f"{p.hardware_flops:.3e} hardware FLOPs"
    )

    m = r.memory
    replicas = i.gpus // i.shard_group
    out.append(
        f"\nMemory per GPU on {b.gpu.name} ({b.gpu.memory_gib:g} GiB, {m.headroom:.0%} kept free -> "
        f"{_gib(m.usable)} GiB usable), micro batch {m.micro_batch} x {s.seq_len:,}, "
        f"shard group {i.shard_group} x {replicas} replicas; GiB"
    )
    out.append(
        _table(
            ["ZeRO", "checkpointing", *(COLUMN_NAMES.get(c, c) for c in COMPONENTS), "total", "fits"],
            [_memory_row(e) for e in r.memory_table],
        )
    )
    out.append(
        f"  requested: ZeRO {m.zero_stage}, checkpointing {'on' if m.checkpointing else 'off'}: "
        f"{_gib(m.total)} GiB -> {'fits' if m.fits else 'does NOT fit'}"
    )
    for note in r.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


def _memory_row(e: MemoryEstimate) -> list[str]:
    return [
        str(e.zero_stage),
        "on" if e.checkpointing else "off",
        *(_gib(v) for v in e.components().values()),
        _gib(e.total),
        "yes" if e.fits else "no",
    ]


def _option_dict(o: SizeOption) -> dict[str, Any]:
    return {
        "name": o.name,
        "params": o.params,
        "tokens": o.tokens,
        "flops": o.flops,
        "share_of_budget": o.share_of_budget,
        "loss_hoffmann": o.loss_hoffmann,
        "loss_epoch": o.loss_epoch,
        "data_ok": o.data_ok,
    }


def _memory_dict(e: MemoryEstimate) -> dict[str, Any]:
    return {
        "zero_stage": e.zero_stage,
        "shard_group": e.shard_group,
        "micro_batch": e.micro_batch,
        "checkpointing": e.checkpointing,
        "bytes": {**e.components(), "total": e.total, "usable": e.usable},
        "fits": e.fits,
    }


def result_to_dict(r: SizingResult) -> dict[str, Any]:
    """Every number of the report, JSON-serialisable."""
    b, c, s, p = r.budget, r.choice, r.shape, r.plan
    return {
        "budget": {
            "gpu": b.gpu.name,
            "peak_bf16_tflops": b.gpu.peak_bf16_tflops,
            "gpu_hours": b.gpu_hours,
            "hardware_tflops": b.hardware_tflops,
            "model_tflops": b.model_tflops,
            "hfu": b.hfu,
            "mfu": b.mfu,
            "recompute_factor": b.recompute_factor,
            "buffer": b.buffer,
            "flops": b.flops,
            "usable_flops": b.usable_flops,
        },
        "optima": [
            {
                "approach": o.approach,
                "label": o.label,
                "params": o.params,
                "tokens": o.tokens,
                "formula": o.formula,
                "loss_hoffmann": HOFFMANN.loss(o.params, o.tokens),
                "loss_epoch": EPOCH.loss(o.params, o.tokens),
            }
            for o in r.optima
        ],
        "data": {
            "tokens": r.data.tokens,
            "epochs": r.data.epochs,
            "min_share": r.data.min_share,
            "usable": r.data.usable,
            "allowed": r.data.total,
            "planned": r.data.take(r.shape_option.tokens),
        },
        "choice": {
            "approach": c.approach,
            "data_limited": c.data_limited,
            "target_params": c.params,
            "max_params": c.max_params,
            "options": [_option_dict(o) for o in c.options],
        },
        "shape": {
            "layers": s.layers,
            "rule_width": s.rule_width,
            "hidden": s.hidden,
            "heads": s.heads,
            "head_dim": s.head_dim,
            "ffn": s.ffn,
            "vocab_size": s.vocab_size,
            "seq_len": s.seq_len,
            "params": s.params,
            **{f"option_{k}": v for k, v in _option_dict(r.shape_option).items()},
        },
        "plan": {
            "gpus": p.gpus,
            "hardware_tflops": p.hardware_tflops,
            "flops_per_token": p.flops_per_token,
            "steps": p.steps,
            "tokens": p.tokens,
            "days": p.days,
            "gpu_hours": p.gpu_hours,
            "hardware_flops": p.hardware_flops,
            "phases": [
                {
                    "sequences": ph.sequences,
                    "steps": ph.steps,
                    "tokens": ph.tokens,
                    "seconds_per_step": ph.seconds_per_step,
                }
                for ph in p.phases
            ],
        },
        "memory": {
            "gpu": b.gpu.name,
            "memory_gib": b.gpu.memory_gib,
            "requested": _memory_dict(r.memory),
            "table": [_memory_dict(e) for e in r.memory_table],
        },
        "notes": r.notes,
    }
