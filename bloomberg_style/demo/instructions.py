"""The built-in instruction set for the CPU demo: generated from templates, from a seed.

Three files, one per stage of the demo recipe and one per data format:

    finance_instructions.jsonl  Alpaca records: headline sentiment, earnings summaries,
                                ticker extraction, term definitions, percentage changes
    medical_qa.jsonl            QA records under ChatDoctor-like keys `patient` / `doctor`
    finance_chat.jsonl          two-turn conversations (`messages`: user/assistant)

Everything (companies, numbers, symptoms) is invented by the generator; answers follow
from the question by fixed rules, so a small model can learn them and token F1 moves.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from bloomberg_style.atomic import atomic_write_text

FILES = ("finance_instructions.jsonl", "medical_qa.jsonl", "finance_chat.jsonl")

_PREFIXES = ["Northwind", "Blue Ridge", "Harbor", "Summit", "Redwood", "Granite", "Silverline", "Cedar",
             "Lakeside", "Ironwood", "Bright Path", "Oakmont"]  # fmt: skip
_SUFFIXES = ["Holdings", "Bank", "Energy", "Motors", "Foods", "Systems", "Capital", "Pharma"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_CITIES = ["Chicago", "Boston", "Denver", "Atlanta", "Seattle", "Dallas"]
_QUARTERS = ["first", "second", "third", "fourth"]

_HEADLINES = {
    "positive": [
        "{co} shares jump {p}% after profit beats estimates",
        "{co} raises full-year guidance on strong demand",
        "{co} wins ${n} million contract",
        "{co} raises its dividend by {p}%",
    ],
    "negative": [
        "{co} shares slide {p}% after revenue miss",
        "{co} cuts its outlook as costs rise",
        "{co} faces ${n} million fine from regulators",
        "{co} suspends its dividend",
    ],
    "neutral": [
        "{co} to report quarterly results on {day}",
        "{co} names a new chief financial officer",
        "{co} holds its annual shareholder meeting in {city}",
    ],
}

TERMS = {
    "price to earnings ratio": "the share price divided by the earnings per share, a measure of how much "
    "investors pay for each dollar of profit.",
    "dividend yield": "the yearly dividend per share divided by the share price, the cash return of a stock.",
    "market capitalization": "the share price times the number of shares outstanding, the market value of "
    "a company.",
    "bond coupon": "the fixed interest a bond pays each year, as a percentage of its face value.",
    "operating margin": "operating income divided by revenue, the share of sales left after running costs.",
    "free cash flow": "the cash from operations minus capital spending, the money a company can return to "
    "investors.",
    "leverage ratio": "total debt divided by equity, a measure of how much a company borrows.",
    "earnings per share": "net income divided by the number of shares outstanding.",
    "liquidity": "how quickly an asset can be sold for cash without moving its price.",
    "volatility": "how much a price moves up and down over time, often measured by the standard deviation "
    "of returns.",
}

_EXAMPLES = {
    "price to earnings ratio": "If a share costs ${a} and earnings per share are ${b}, the ratio is {q}.",
    "dividend yield": "If a share costs ${a} and pays ${b} a year, the dividend yield is {pct}%.",
    "market capitalization": "A company with {b} million shares at ${a} each is worth ${prod} million.",
    "bond coupon": "A bond with a face value of $1000 and a {b}% coupon pays ${c} a year.",
    "operating margin": "With revenue of ${a} million and operating income of ${b} million, the margin is {pct}%.",
    "free cash flow": "With ${a} million from operations and ${b} million of capital spending, free cash "
    "flow is ${diff} million.",
    "leverage ratio": "With ${a} million of debt and ${b} million of equity, the ratio is {q}.",
    "earnings per share": "With net income of ${a} million and {b} million shares, earnings per share are ${q}.",
    "liquidity": "A large company stock with {b} million shares traded a day is very liquid.",
    "volatility": "A stock that moves {b}% on a typical day is more volatile than one that moves 1%.",
}

_CONDITIONS = [
    ("a sore throat and a mild fever", "a viral throat infection",
     "Rest, drink warm fluids and take paracetamol for the fever.",
     "See a doctor if it lasts more than a week or you have trouble swallowing."),
    ("a dry cough and a runny nose", "a common cold",
     "Rest, drink plenty of fluids and use saline nose drops.",
     "See a doctor if you become short of breath."),
    ("a headache behind the eyes", "tension headache or eye strain",
     "Take regular breaks from screens, sleep well and drink enough water.",
     "See a doctor at once if the headache is sudden and severe."),
    ("heartburn after meals", "acid reflux",
     "Eat smaller meals, avoid lying down after eating and cut down on coffee.",
     "See a doctor if you have trouble swallowing or lose weight."),
    ("pain in the lower back", "a muscle strain",
     "Keep moving gently, use a warm pack and take ibuprofen if you can.",
     "See a doctor if the pain spreads down a leg or you feel numbness."),
    ("an itchy red rash on the arms", "contact dermatitis",
     "Avoid the soap or plant that caused it and use a mild steroid cream.",
     "See a doctor if the rash spreads or blisters."),
    ("stomach cramps and diarrhea", "a stomach infection",
     "Drink oral rehydration solution and eat plain food.",
     "See a doctor if there is blood in the stool or it lasts more than three days."),
    ("trouble sleeping at night", "insomnia",
     "Keep a regular bedtime, avoid screens before bed and skip caffeine after noon.",
     "See a doctor if it lasts more than a month."),
]  # fmt: skip

_DURATIONS = ["two days", "three days", "five days", "a week", "two weeks"]


def _company(rng: random.Random) -> tuple[str, str]:
    prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
    ticker = (prefix.replace(" ", "")[:3] + suffix[0]).upper()
    return f"{prefix} {suffix}", ticker


def finance_instructions(n: int, seed: int = 1) -> list[dict[str, str]]:
    """Alpaca records {instruction, input, output}."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        co, ticker = _company(rng)
        kind = rng.randrange(5)
        if kind == 0:
            label = rng.choice(sorted(_HEADLINES))
            headline = rng.choice(_HEADLINES[label]).format(
                co=co,
                p=rng.randint(2, 18),
                n=rng.randint(20, 900),
                day=rng.choice(_DAYS),
                city=rng.choice(_CITIES),
            )
            records.append({
                "instruction": "What is the sentiment of this financial headline? Answer with positive, negative or neutral.",
                "input": headline,
                "output": label,
            })  # fmt: skip
        elif kind == 1:
            up = rng.random() < 0.6
            rev, pct, ni, q = (
                rng.randint(50, 900),
                rng.randint(1, 25),
                rng.randint(5, 120),
                rng.choice(_QUARTERS),
            )
            records.append({
                "instruction": "Summarize the earnings report in one sentence.",
                "input": f"{co} reported revenue of ${rev} million for the {q} quarter, {'up' if up else 'down'} "
                f"{pct}% from a year earlier. Net income was ${ni} million.",
                "output": f"{co}'s {q} quarter revenue {'rose' if up else 'fell'} {pct}% to ${rev} million, "
                f"with net income of ${ni} million.",
            })  # fmt: skip
        elif kind == 2:
            up = rng.random() < 0.5
            records.append({
                "instruction": "Extract the company name and the ticker symbol.",
                "input": f"Shares of {co} ({ticker}) {'rose' if up else 'fell'} {rng.randint(1, 12)}% on {rng.choice(_DAYS)}.",
                "output": f"Company: {co}. Ticker: {ticker}.",
            })  # fmt: skip
        elif kind == 3:
            term = rng.choice(sorted(TERMS))
            records.append({"instruction": f"Explain the term {term} in one sentence.", "input": "",
                            "output": f"The {term} is {TERMS[term]}"})  # fmt: skip
        else:
            a = rng.randint(20, 200)
            b = a + rng.choice([-1, 1]) * rng.randint(1, a // 2)
            change = 100.0 * (b - a) / a
            records.append({
                "instruction": "By what percentage did the price change?",
                "input": f"The share price moved from ${a} to ${b}.",
                "output": f"The price {'rose' if b > a else 'fell'} by {abs(change):.1f}%, from ${a} to ${b}.",
            })  # fmt: skip
    return records


def medical_qa(n: int, seed: int = 2) -> list[dict[str, str]]:
    """QA records under the keys `patient` and `doctor`."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        symptom, cause, advice, warning = rng.choice(_CONDITIONS)
        age, sex, duration = rng.randint(18, 75), rng.choice(["man", "woman"]), rng.choice(_DURATIONS)
        records.append({
            "patient": f"Hi doctor, I am a {age}-year-old {sex}. I have had {symptom} for {duration}. What should I do?",
            "doctor": f"Hi. {symptom[0].upper() + symptom[1:]} for {duration} is most often caused by {cause}. "
            f"{advice} {warning}",
        })  # fmt: skip
    return records


def finance_chat(n: int, seed: int = 3) -> list[dict]:
    """Two-turn conversations: a definition, then a worked example with numbers."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        term = rng.choice(sorted(TERMS))
        a, b = rng.randint(20, 200), rng.randint(2, 19)
        example = _EXAMPLES[term].format(
            a=a, b=b, q=f"{a / b:.1f}", pct=f"{100.0 * b / a:.1f}", prod=a * b, c=10 * b, diff=a - b
        )
        records.append({
            "messages": [
                {"role": "user", "content": f"What does {term} mean?"},
                {"role": "assistant", "content": f"The {term} is {TERMS[term]}"},
                {"role": "user", "content": "Can you give an example?"},
                {"role": "assistant", "content": example},
            ]
        })  # fmt: skip
    return records


def write_demo_data(out_dir: str | Path, records: int = 400, seed: int = 1) -> list[Path]:
    """Write the three files (atomically) unless they exist; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    makers = (finance_instructions, medical_qa, finance_chat)
    paths = []
    for offset, (name, make) in enumerate(zip(FILES, makers)):
        path = out / name
        paths.append(path)
        if path.is_file():
            continue
        lines = (json.dumps(r, ensure_ascii=False) for r in make(records, seed=seed + offset))
        atomic_write_text(path, "\n".join(lines) + "\n")
    return paths
