"""The paper's five public financial tasks, converted and scored on a checkpoint, with
majority-class baselines: the closing table of docs/evaluation.md.

    python benchmarks/financial_tasks.py --checkpoint runs/demo --fpb /work/shared/data/financial_phrasebank

FPB comes from the real Financial PhraseBank files (--fpb folder, Sentences_AllAgree.txt).
FiQA SA, Headline, NER and ConvFinQA come from SMALL HAND-WRITTEN FIXTURES in each data
set's published format, written below (the real sets are not redistributable here): their
numbers show the pipeline works end to end, not how well a model does on the real sets.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

# benchmarks/tokenizer.py would shadow the tokenizer package: import from the repository root.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bloomberg_style.cli.evaluate import main as evaluate_main  # noqa: E402
from bloomberg_style.evaluation.run import EvalOptions, evaluate  # noqa: E402

COMPANIES = [
    "Nokia",
    "Tesco",
    "Barclays",
    "Unilever",
    "Siemens",
    "Apple",
    "BP",
    "Vodafone",
    "Glencore",
    "Airbus",
]
PEOPLE = ["Tim Cook", "Jamie Dimon", "Mary Barra", "Satya Nadella", "Rupert Soames"]
PLACES = ["London", "Helsinki", "New York", "Frankfurt", "Tokyo"]


def fiqa_fixture(path: Path, rng: random.Random) -> None:
    """FiQA 2018 task 1 JSON: {id: {"sentence", "info": [{"target", "sentiment_score", ...}]}} (hand-written)."""
    phrases = [("shares surge after strong results", 0.7), ("cuts guidance, stock slumps", -0.6),
               ("to hold annual meeting in May", 0.0), ("beats estimates, raises dividend", 0.55),
               ("faces probe over accounting", -0.45), ("announces board changes", 0.02)]  # fmt: skip
    data = {}
    for i in range(40):
        company = rng.choice(COMPANIES)
        phrase, score = rng.choice(phrases)
        data[str(1000 + i)] = {
            "sentence": f"{company} {phrase}",
            "info": [{"target": company, "sentiment_score": f"{score + rng.uniform(-0.05, 0.05):.3f}",
                      "aspects": "['Stock/Price Action']", "snippets": f"['{phrase}']"}],
        }  # fmt: skip
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def headline_fixture(path: Path, rng: random.Random) -> None:
    """The gold news headline CSV (Sinha & Khandait), hand-written rows."""
    columns = ["Dates", "URL", "News", "Price or Not", "Direction Up", "Direction Constant", "Direction Down",
               "PastPrice", "FuturePrice", "PastNews", "FutureNews", "Asset Comparision", "Price Sentiment"]  # fmt: skip
    kinds = [("gold prices rise to Rs {n} per 10 gram", [1, 1, 0, 0, 1, 0, 0, 0, 0], "positive"),
             ("gold falls ${n} as dollar firms", [1, 0, 0, 1, 1, 0, 0, 0, 0], "negative"),
             ("gold steady at ${n} an ounce", [1, 0, 1, 0, 1, 0, 0, 0, 0], "neutral"),
             ("gold may climb to ${n} next year, analysts say", [1, 1, 0, 0, 0, 1, 0, 0, 0], "positive"),
             ("gold outshines silver, up {n} bps", [1, 1, 0, 0, 1, 0, 0, 0, 1], "positive"),
             ("jewellers to strike next week over excise duty", [0, 0, 0, 0, 0, 0, 0, 1, 0], "none")]  # fmt: skip
    lines = [",".join(columns)]
    for i in range(24):
        text, flags, sentiment = rng.choice(kinds)
        lines.append(f'0{1 + i % 9}-03-2017,http://example.com/{i},"{text.format(n=rng.randint(100, 3100))}",'
                     + ",".join(map(str, flags)) + f",{sentiment}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def ner_fixture(path: Path, rng: random.Random) -> None:
    """CoNLL token/tag lines (IOB2), hand-written sentences."""
    out = ["-DOCSTART- -X- O O", ""]
    for _ in range(36):
        company, person, place = rng.choice(COMPANIES), rng.choice(PEOPLE), rng.choice(PLACES)
        pattern = rng.choice(["{c} said {p} will join the board in {l} .", "{p} of {c} spoke in {l} .",
                              "Shares of {c} fell in {l} trading .", "The loan was signed by {p} ."])  # fmt: skip
        for word in pattern.split():
            if word in ("{c}", "{p}", "{l}"):
                name, kind = {"{c}": (company, "ORG"), "{p}": (person, "PER"), "{l}": (place, "LOC")}[word]
                for j, piece in enumerate(name.split()):
                    out.append(f"{piece} NNP {'B' if j == 0 else 'I'}-{kind}")
            else:
                out.append(f"{word} XX O")
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


def convfinqa_fixture(path: Path, rng: random.Random) -> None:
    """ConvFinQA dialogue JSON, hand-written entries (gold programs checked by the converter)."""
    entries = []
    for i in range(8):
        a, b = rng.randint(1000, 9000), rng.randint(1000, 9000)
        change = a - b
        entries.append({
            "id": f"HAND/{2010 + i}/page_{i}.pdf-1",
            "pre_text": [f"the following table shows net revenue for {2010 + i} and {2009 + i} ."],
            "post_text": ["amounts in millions ."],
            "table": [["", str(2010 + i), str(2009 + i)], ["net revenue", f"$ {a}", f"$ {b}"]],
            "annotation": {
                "dialogue_break": [f"what was net revenue in {2010 + i}?", f"and in {2009 + i}?",
                                   "what was the change?", "what is the percent change?"],
                "turn_program": [str(a), str(b), f"subtract({a}, {b})", f"subtract({a}, {b}), divide(#0, {b})"],
                "exe_ans_list": [float(a), float(b), float(change), round(change / b, 5)],
            },
        })  # fmt: skip
    path.write_text(json.dumps(entries, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default="runs/demo")
    parser.add_argument(
        "--fpb", default="/work/shared/data/financial_phrasebank", help="folder of Sentences_*.txt"
    )
    parser.add_argument("--work", default="runs/financial_tasks", help="where fixtures and task files go")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--limit", type=int, default=0, help="first N test examples per task")
    args = parser.parse_args(argv)
    work = Path(args.work)
    (work / "fixtures").mkdir(parents=True, exist_ok=True)
    rng = random.Random(18)
    sources = {
        "fpb": [str(Path(args.fpb) / "Sentences_AllAgree.txt")],
        "fiqa-sa": [str(work / "fixtures" / "task1_headline_ABSA_HANDWRITTEN.json")],
        "headline": [str(work / "fixtures" / "gold_headlines_HANDWRITTEN.csv")],
        "ner": [str(work / "fixtures" / "ner_HANDWRITTEN.conll")],
        "convfinqa": [str(work / "fixtures" / "convfinqa_HANDWRITTEN.json")],
    }
    fiqa_fixture(Path(sources["fiqa-sa"][0]), rng)
    headline_fixture(Path(sources["headline"][0]), rng)
    ner_fixture(Path(sources["ner"][0]), rng)
    convfinqa_fixture(Path(sources["convfinqa"][0]), rng)
    tasks = []
    for name, files in sources.items():
        out = work / f"{name}.jsonl"
        # hand-written fixtures: half scored; FPB: the 20% test split of the published file
        fraction = "0.2" if name == "fpb" else "0.5"
        code = evaluate_main(
            ["--convert", name, *files, "--output", str(out), "--force", "--test-fraction", fraction]
        )
        if code:
            return code
        tasks.append(str(out))
    report = evaluate(EvalOptions(checkpoint=args.checkpoint, tasks=tasks, dtype=args.dtype, limit=args.limit,
                                  output=str(work / "results"), data=[], text=[]),
                      log=lambda m: print(m, flush=True))  # fmt: skip
    print("\n| task | source | shots | test items | metric | model | majority baseline |")
    print("|---|---|---:|---:|---|---:|---:|")
    for t in report.tasks:
        src = "real (Financial PhraseBank AllAgree)" if t.task == "fpb" else "hand-written fixture"
        print(f"| {t.task} | {src} | {t.shots} | {t.items} | weighted F1 ({t.best_rule}) | "
              f"{t.weighted_f1 * 100:.2f} | {t.majority['weighted_f1'] * 100:.2f} |")  # fmt: skip
    for g in report.generation:
        print(f"| {g.task} | hand-written fixture | {g.shots} | {g.items} | {g.metric} | {g.score * 100:.2f} | "
              f"{g.majority['score'] * 100:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
