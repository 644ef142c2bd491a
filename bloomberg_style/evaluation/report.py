"""An evaluation's results as JSON (for programs) and a markdown table (for people).

OUT/results.json          model, settings, one entry per domain and per task
OUT/results.md            the same numbers as tables
OUT/predictions/TASK.jsonl  per test example: gold label, each rule's prediction, log-likelihoods
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloomberg_style.evaluation.fewshot import RULES, TaskResult
from bloomberg_style.evaluation.gen_tasks import GenerationResult
from bloomberg_style.evaluation.lm_loss import DomainResult


@dataclass
class EvalReport:
    model: dict[str, Any]
    settings: dict[str, Any]
    domains: list[DomainResult] = field(default_factory=list)
    tasks: list[TaskResult] = field(default_factory=list)
    generation: list[GenerationResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "settings": self.settings,
            "domains": {d.name: d.to_dict() for d in self.domains},
            "tasks": {t.task: t.to_dict() for t in self.tasks},
            **({"generation": {g.task: g.to_dict() for g in self.generation}} if self.generation else {}),
        }

    def to_markdown(self) -> str:
        lines = [f"# Evaluation of {self.model.get('source')}"]
        if self.model.get("step") is not None:
            lines[0] += f" (step {self.model['step']})"
        if self.domains:
            lines += [
                "",
                "## Held-out loss per domain",
                "",
                "| domain | split | documents | tokens | bytes | loss (nats/token) | perplexity | bits/byte |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for d in self.domains:
                approx = "" if d.bytes_exact else " ~"
                lines.append(
                    f"| {d.name} | {d.split} | {d.documents:,} | {d.tokens:,} | {d.bytes:,}{approx} | "
                    f"{d.loss:.4f} | {d.perplexity:.2f} | {d.bits_per_byte:.4f}{approx} |"
                )
            if not all(d.bytes_exact for d in self.domains):
                lines.append("\n~ bytes estimated from the shard's .stats.json (no tokenizer given)")
        if self.tasks:
            rule_cols = " | ".join(f"{r} F1" for r in RULES)
            lines += [
                "",
                "## Few-shot tasks (likelihood scoring; best of three rules)",
                "",
                f"| task | shots | items | best rule | accuracy | weighted F1 | {rule_cols} | majority F1 |",
                "|---|---:|---:|---|---:|---:|" + "---:|" * len(RULES) + "---:|",
            ]
            for t in self.tasks:
                per_rule = " | ".join(f"{t.rules[r]['weighted_f1'] * 100:.2f}" for r in RULES)
                lines.append(
                    f"| {t.task} | {t.shots} | {t.items} | {t.best_rule} | {t.accuracy * 100:.2f} | "
                    f"{t.weighted_f1 * 100:.2f} | {per_rule} | {t.majority['weighted_f1'] * 100:.2f} |"
                )
            notes = [
                f"{t.task}: {t.shots_dropped} example(s) got fewer shots to fit the context"
                + (f", {t.truncated} cut on the left" if t.truncated else "")
                for t in self.tasks
                if t.shots_dropped or t.truncated
            ]
            if notes:
                lines += [""] + [f"- {n}" for n in notes]
        if self.generation:
            lines += ["", "## Generation tasks (greedy decoding)", "", "| task | shots | items | metric | score | majority |",
                      "|---|---:|---:|---|---:|---:|"]  # fmt: skip
            for g in self.generation:
                lines.append(f"| {g.task} | {g.shots} | {g.items} | {g.metric} | {g.score * 100:.2f} | "
                             f"{g.majority['score'] * 100:.2f} |")  # fmt: skip
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "results.json", "markdown": out / "results.md"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        if self.tasks or self.generation:
            (out / "predictions").mkdir(exist_ok=True)
        for t in [*self.tasks, *self.generation]:
            path = out / "predictions" / f"{t.task}.jsonl"
            path.write_text("".join(json.dumps(p) + "\n" for p in t.predictions), encoding="utf-8")
            paths[f"predictions/{t.task}"] = path
        return paths
