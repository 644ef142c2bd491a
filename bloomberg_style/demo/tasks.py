"""Example few-shot task files in the shape of the paper's FPB and Headline, from templates.

The public sets (Financial PhraseBank, the Gold-commodity Headline set) have licenses of
their own, so the repository ships look-alikes instead, drawn from a seed in the same
invented world as the demo corpus (its companies, tickers, sectors, indexes):

    fpb-demo       one sentence from a financial report or news item; is it positive,
                   negative or neutral for the company? (FPB's labels and its skew
                   toward neutral: 50% neutral, 30% positive, 20% negative, exactly)
    headline-demo  a market headline and a yes/no question about it, as in Headline
                   ("Does the news headline talk about price going up?")

Both use 3 shots so that most prompts fit the demo model's 256-token context (the paper
used 5 for FPB, FiQA SA and Headline with 2,048 tokens: pass --shots 5). Prompts are
"text / Question: ... / Answer: word", the question-answer form used for
these tasks in few-shot evaluation. A seed gives byte-identical files; configs/eval/*.jsonl are these files for seed 1234 (a test checks
they still match).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bloomberg_style.demo.corpus import (
    BROKERS,
    INDEX_NAMES,
    QUARTERS,
    WEEKDAYS,
    company,
    fmt_date,
    money,
    random_date,
)

FPB_HEADER = {
    "task": "fpb-demo",
    "description": "FPB-style sentiment of one financial sentence (synthetic, from the demo world)",
    "prompt": "{text}\nQuestion: what is the sentiment?\nAnswer:",
    "labels": {"positive": "positive", "negative": "negative", "neutral": "neutral"},
    "shots": 3,
    "metric": "weighted_f1",
}
HEADLINE_HEADER = {
    "task": "headline-demo",
    "description": "Headline-style yes/no questions about market headlines (synthetic, from the demo world)",
    "prompt": "{text}\nQuestion: {question}\nAnswer:",
    "labels": {"yes": "Yes", "no": "No"},
    "shots": 3,
    "metric": "weighted_f1",
}


def _positive(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    product = rng.choice(sec.products)
    driver = rng.choice(sec.drivers).format(product=product)
    x = rng.uniform(2, 18)
    return rng.choice(
        [
            f"Shares of {co.name} {rng.choice(['rose', 'climbed', 'jumped', 'gained'])} {x:.1f}% after the "
            f"company reported {rng.choice(QUARTERS)}-quarter earnings that beat analysts' estimates.",
            f"{co.short} raised its full-year revenue forecast on {driver}.",
            f"{co.name} reported revenue of {money(rng.uniform(50, 9000))}, up {x:.1f}% from a year earlier, "
            f"driven by {driver}.",
            f"{co.short} announced a ${rng.randint(1, 20) * 250:,} million share buyback program.",
            f"{co.short} won a large contract for {product}.",
            f"Operating income at {co.short} rose {x:.1f}% to {money(rng.uniform(20, 3000))}, and the "
            f"operating margin improved to {rng.uniform(8, 30):.1f}%.",
        ]
    )


def _negative(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    headwind = rng.choice(sec.headwinds)
    x = rng.uniform(2, 14)
    return rng.choice(
        [
            f"Shares of {co.name} {rng.choice(['fell', 'dropped', 'slid', 'declined'])} {x:.1f}% after the "
            f"company cut its full-year outlook, citing {headwind}.",
            f"{co.name} reported revenue of {money(rng.uniform(50, 9000))}, down {x:.1f}% from a year "
            f"earlier, as it faced {headwind}.",
            f"{co.short} reported {rng.choice(QUARTERS)}-quarter revenue below analysts' estimates.",
            f"{co.short} disclosed an investigation into its sales of {rng.choice(sec.products)}.",
            f"Net income at {co.short} declined {x:.1f}% to {money(rng.uniform(5, 900))} because of {headwind}.",
            f"{rng.choice(BROKERS)} lowered its price target on {co.ticker} after {co.short} warned of {headwind}.",
        ]
    )


def _neutral(rng: random.Random) -> str:
    co = company(rng)
    sec = co.sector
    hour = rng.choice([8, 9, 10])
    return rng.choice(
        [
            f"{co.short} will host a conference call at {hour}:{rng.choice(['00', '30'])} a.m. Eastern Time "
            "to discuss the results.",
            f"{co.name} is headquartered in {co.city} and employs about {co.employees:,} people.",
            f"{co.name} ({co.exchange}: {co.ticker}) makes {rng.choice(sec.products)} and "
            f"{rng.choice(sec.products)}.",
            f"{co.short} operates through {len(sec.segments)} reportable segments: {', '.join(sec.segments)}.",
            f"The company was founded in {co.founded} and is {'an' if sec.description[0] in 'aeiou' else 'a'} "
            f"{sec.description}.",
            f"{co.cfo.full}, Chief Financial Officer, will join {co.ceo.full} on the call.",
        ]
    )


def _shuffled_labels(shares: dict[str, float], n: int, rng: random.Random) -> list[str]:
    """n labels in exactly these shares (rounded; the last label takes the rest), shuffled."""
    labels: list[str] = []
    for label, share in list(shares.items())[:-1]:
        labels += [label] * round(share * n)
    labels += [list(shares)[-1]] * (n - len(labels))
    rng.shuffle(labels)
    return labels


def fpb_style_examples(n: int, seed: int, split: str = "test") -> list[dict[str, str]]:
    """n sentiment examples: 50% neutral, 30% positive, 20% negative, in a seeded order."""
    makers: dict[str, Callable[[random.Random], str]] = {
        "positive": _positive,
        "negative": _negative,
        "neutral": _neutral,
    }
    labels = _shuffled_labels(
        {"neutral": 0.5, "positive": 0.3, "negative": 0.2}, n, random.Random(f"fpb:{seed}:{split}")
    )
    return [
        {"text": makers[label](random.Random(f"fpb:{seed}:{split}:{i}")), "label": label}
        for i, label in enumerate(labels)
    ]


def _headline(rng: random.Random) -> tuple[str, str]:
    """(headline, direction) with direction "up" or "down"."""
    direction = rng.choice(["up", "down"])
    up = direction == "up"
    co = company(rng)
    x = rng.uniform(2, 15)
    day = random_date(rng, 2006, 2024)
    index = rng.choice(INDEX_NAMES)
    options = [
        f"{co.ticker} Shares {'Jump' if up else 'Slide'} After {co.short} {'Beats' if up else 'Disappoints'}",
        f"{co.short} Stock {'Climbs' if up else 'Falls'} {x:.1f}% {'on Buyback Plan' if up else 'as Outlook Is Cut'}",
        f"Market Wrap: {index} {'Advances' if up else 'Retreats'} on {WEEKDAYS[day.weekday()]}",
        f"{index} {'Rises' if up else 'Drops'} {x / 5:.2f}% to Close on {fmt_date(day)}",
        f"{co.short} {'Rallies After Raising' if up else 'Sinks After Cutting'} Its Revenue Forecast",
    ]
    return rng.choice(options), direction


def headline_style_examples(n: int, seed: int, split: str = "test") -> list[dict[str, str]]:
    """n (headline, question) examples, half answered yes; questions ask about a rise or a fall."""
    answers = _shuffled_labels({"yes": 0.5, "no": 0.5}, n, random.Random(f"headline:{seed}:{split}"))
    out = []
    for i, answer in enumerate(answers):
        rng = random.Random(f"headline:{seed}:{split}:{i}")
        text, direction = _headline(rng)
        asked = direction if answer == "yes" else {"up": "down", "down": "up"}[direction]
        question = f"Does the news headline talk about price going {asked}?"
        out.append({"text": text, "question": question, "label": answer})
    return out


def task_lines(header: dict[str, Any], train: list[dict], test: list[dict]) -> list[str]:
    """The JSONL lines of a task file: header, then train examples, then test examples."""
    lines = [json.dumps(header, ensure_ascii=False)]
    lines += [json.dumps({**ex, "split": "train"}, ensure_ascii=False) for ex in train]
    lines += [json.dumps({**ex, "split": "test"}, ensure_ascii=False) for ex in test]
    return lines


def write_demo_tasks(
    out_dir: str | Path, seed: int = 1234, n_train: int = 40, n_test: int = 60
) -> list[Path]:
    """Write out_dir/fpb_demo.jsonl and out_dir/headline_demo.jsonl; return their paths."""
    if n_train < 0 or n_test < 1:
        raise ValueError(f"need n_train >= 0 and n_test >= 1, got {n_train} and {n_test}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, header, make in (
        ("fpb_demo.jsonl", FPB_HEADER, fpb_style_examples),
        ("headline_demo.jsonl", HEADLINE_HEADER, headline_style_examples),
    ):
        path = out / name
        lines = task_lines(header, make(n_train, seed, "train"), make(n_test, seed, "test"))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m bloomberg_style.demo.tasks [OUT_DIR]
    import sys

    for p in write_demo_tasks(sys.argv[1] if len(sys.argv) > 1 else "configs/eval"):
        print(p)
