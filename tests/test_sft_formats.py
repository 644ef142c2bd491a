"""Formats, templates and label masks, checked token by token on hand-built records;
malformed records and bad recipes fail with file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bloomberg_style.sft.collate import IGNORE_INDEX, build_rows, encode_example, pad_rows
from bloomberg_style.sft.formats import DataError, detect_format, load_examples, parse_record
from bloomberg_style.sft.recipe import RecipeError, load_recipe
from bloomberg_style.sft.schedule import SFTSchedule
from bloomberg_style.sft.templates import get_template
from tests.conftest import REPO, write_jsonl, write_recipe

EOD = 0


def expected(tok, parts: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """ids and shifted labels from (text, trained) parts written out by hand; "<EOD>" is the end token."""
    ids, trained = [], []
    for text, train in parts:
        piece = [EOD] if text == "<EOD>" else tok.encode(text)
        ids += piece
        trained += [train] * len(piece)
    labels = [ids[t + 1] if trained[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)] + [IGNORE_INDEX]
    return ids, labels


def row_of(example, template, tok) -> dict:
    rows, stats = build_rows([example], template, tok, max_length=10_000)
    assert stats.rows == 1
    return rows[0]


def test_alpaca_masks_exactly_the_response(demo_tokenizer):
    tok = demo_tokenizer
    record = {"instruction": "Classify the headline.", "input": "Acme shares jump 5%", "output": "positive"}
    row = row_of(parse_record(record, "alpaca", *_fields("alpaca")), get_template("alpaca"), tok)
    prompt = (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nClassify the headline.\n\n### Input:\nAcme shares jump 5%\n\n### Response:\n"
    )
    ids, labels = expected(tok, [(prompt, False), ("positive", True), ("<EOD>", True)])
    assert row["tokens"].tolist() == ids
    assert row["labels"].tolist() == labels
    assert row["loss_mask"].tolist() == [float(v != IGNORE_INDEX) for v in labels]
    # The trained positions spell exactly the reply and the end token.
    trained = [v for v in labels if v != IGNORE_INDEX]
    assert tok.decode(trained[:-1]) == "positive" and trained[-1] == EOD

    no_input = {"instruction": "Define EBITDA.", "output": "Earnings before interest."}
    row = row_of(parse_record(no_input, "alpaca", *_fields("alpaca")), get_template("alpaca"), tok)
    prompt = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nDefine EBITDA.\n\n### Response:\n"
    )
    ids, labels = expected(tok, [(prompt, False), ("Earnings before interest.", True), ("<EOD>", True)])
    assert row["tokens"].tolist() == ids and row["labels"].tolist() == labels


def _fields(fmt: str, **custom) -> tuple[dict, str]:
    from bloomberg_style.sft.formats import resolve_fields

    return resolve_fields(fmt, custom, "test"), "test.jsonl:1"


def test_chinese_qa_fields_and_template(demo_tokenizer, tmp_path):
    tok = demo_tokenizer
    path = write_jsonl(tmp_path / "zh.jsonl", [{"问题": "感冒了怎么办？", "答案": "多喝水，注意休息。"}])
    examples, report = load_examples([str(path)], "auto")
    assert report.formats[str(path)] == "qa"
    row = row_of(examples[0], get_template("qa-zh"), tok)
    ids, labels = expected(
        tok, [("问：感冒了怎么办？\n答：", False), ("多喝水，注意休息。", True), ("<EOD>", True)]
    )
    assert row["tokens"].tolist() == ids and row["labels"].tolist() == labels
    # 问/答 keys, declared explicitly.
    example = parse_record({"问": "头疼", "答": "休息"}, "qa", *_fields("qa", question="问", answer="答"))
    assert [t.content for t in example.turns] == ["头疼", "休息"]
    assert detect_format({"问": "a", "答": "b"}, "x")[1] == {"question": "问", "answer": "答"}


def test_conversation_trains_every_assistant_turn(demo_tokenizer):
    tok = demo_tokenizer
    record = {
        "conversations": [
            {"from": "system", "value": "You are a finance tutor.\n"},
            {"from": "human", "value": "What is a bond?"},
            {"from": "gpt", "value": "A loan to an issuer."},
            {"from": "human", "value": "And a coupon?"},
            {"from": "gpt", "value": "The interest it pays."},
        ]
    }
    fmt, fields = detect_format(record, "x")
    assert fmt == "conversation"
    row = row_of(parse_record(record, fmt, fields, "x"), get_template("chat"), tok)
    ids, labels = expected(
        tok,
        [
            ("You are a finance tutor.\nUser: What is a bond?\nAssistant: ", False),
            ("A loan to an issuer.", True),
            ("<EOD>", True),
            ("\nUser: And a coupon?\nAssistant: ", False),
            ("The interest it pays.", True),
            ("<EOD>", True),
        ],
    )
    assert row["tokens"].tolist() == ids and row["labels"].tolist() == labels


def test_packing_and_padding_keep_masks(demo_tokenizer):
    tok = demo_tokenizer
    records = [{"question": f"q{i}?", "answer": f"answer number {i}"} for i in range(5)]
    examples = [parse_record(r, "qa", *_fields("qa")) for r in records]
    template = get_template("qa")
    singles = [encode_example(e, template, tok) for e in examples]
    sizes = [len(s.ids) for s in singles]
    max_length = sizes[0] + sizes[1]  # the first two fit one row exactly
    rows, stats = build_rows(examples, template, tok, max_length=max_length, packing=True)
    assert stats.rows == len(rows) < 5 and stats.examples == 5
    first = rows[0]
    assert first["tokens"].tolist() == singles[0].ids + singles[1].ids
    # Labels of the packed row are the two examples' labels joined: the first prompt token of
    # the second example is never a target, so no loss crosses the boundary.
    alone = [build_rows([e], template, tok, 10_000)[0][0]["labels"].tolist() for e in examples[:2]]
    assert first["labels"].tolist() == alone[0][:-1] + [IGNORE_INDEX] + alone[1]
    assert sum(len(r["tokens"]) for r in rows) == sum(sizes)

    batch = pad_rows(rows, pad_id=EOD, multiple=8)
    width = batch["tokens"].shape[1]
    assert width % 8 == 0 and width >= max(len(r["tokens"]) for r in rows)
    for i, row in enumerate(rows):
        n = len(row["tokens"])
        assert batch["labels"][i, n:].eq(IGNORE_INDEX).all() and batch["loss_mask"][i, n:].eq(0).all()
        assert batch["labels"][i, :n].tolist() == row["labels"].tolist()


def test_too_long_truncated_or_dropped_and_counted(demo_tokenizer):
    tok = demo_tokenizer
    long_answer = "The price rose by ten percent over the quarter. " * 20
    examples = [
        parse_record({"question": "Why?", "answer": long_answer}, "qa", *_fields("qa")),
        parse_record({"question": "How much " * 80, "answer": "Ten."}, "qa", *_fields("qa")),
        parse_record({"question": "Ok?", "answer": "Yes."}, "qa", *_fields("qa")),
    ]
    template = get_template("qa")
    rows, stats = build_rows(examples, template, tok, max_length=64, too_long="truncate")
    assert (stats.truncated, stats.dropped_no_target, stats.dropped_too_long, stats.rows) == (1, 1, 0, 2)
    assert len(rows[0]["tokens"]) == 64 and rows[0]["labels"][-1] == IGNORE_INDEX
    rows, stats = build_rows(examples, template, tok, max_length=64, too_long="drop")
    assert (stats.truncated, stats.dropped_too_long, stats.rows) == (0, 2, 1)


def test_malformed_records_report_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"instruction": "a", "output": "b"}) + "\n\n" + json.dumps({"instruction": "c"}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"bad\.jsonl:3: alpaca record lacks field 'output'"):
        load_examples([str(bad)], "alpaca")
    examples, report = load_examples([str(bad)], "alpaca", bad_records="skip")
    assert len(examples) == 1 and report.malformed == 1 and "bad.jsonl:3" in report.problems[0]

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "a", "answer": "b"}\n{"question": "a", \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not valid JSON"):
        load_examples([str(broken)])

    array = tmp_path / "array.json"
    array.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c",\n   "output": 7}\n]\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"array\.json:3: field 'output' must be a string"):
        load_examples([str(array)], "alpaca")

    turns = tmp_path / "turns.jsonl"
    write_jsonl(turns, [{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}])
    with pytest.raises(DataError, match=r"turns\.jsonl:1: messages\[1\]: field 'role' is 'bot'"):
        load_examples([str(turns)])
    write_jsonl(turns, [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(DataError, match=r"turns\.jsonl:1: a conversation must end with an assistant turn"):
        load_examples([str(turns)])
    with pytest.raises(DataError, match="matches no data file"):
        load_examples([str(tmp_path / "missing" / "*.jsonl")])
    with pytest.raises(DataError, match="cannot tell the format"):
        load_examples([str(write_jsonl(tmp_path / "odd.jsonl", [{"text": "x"}]))])


RECIPE = {
    "name": "r",
    "base": "some/base",
    "output_dir": "out",
    "defaults": {"lr": 1.0e-4, "epochs": 2, "data": {"max_length": 128}},
    "stages": [
        {"name": "one", "data": {"train": ["a.jsonl"]}},
        {"name": "two", "method": "lora", "lr": 3.0e-4, "data": {"train": ["b.jsonl"], "max_length": 64}},
    ],
}


def test_recipe_defaults_and_overrides(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", RECIPE)
    r = load_recipe(path)
    assert [s.lr for s in r.stages] == [1e-4, 3e-4]
    assert [s.data.max_length for s in r.stages] == [128, 64]
    assert r.stage_dir(r.stages[1]) == Path("out") / "two"
    r = load_recipe(path, ["stages.*.epochs=1", "stages.two.lora.rank=4", "defaults.weight_decay=0.1"])
    assert [s.epochs for s in r.stages] == [1, 1] and r.stages[1].lora.rank == 4
    assert [s.weight_decay for s in r.stages] == [0.1, 0.1]
    r = load_recipe(path, ["stages.0.lr=5e-5"], base="other/base")
    assert r.stages[0].lr == 5e-5 and r.base == "other/base"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"stages": [{"name": "one", "data": {"train": ["a"]}, "learning_rate": 1}]}, r":\d+: stages\[0\]\.learning_rate: unknown key"),
        ({"stages": [{"name": "one", "data": {"train": ["a"]}, "lr": "fast"}]}, r":\d+: stages\[0\]\.lr: expected a number"),
        ({"stages": [{"name": "one", "data": {"train": ["a"], "format": "csv"}}]}, r"stages\[0\]\.data\.format: must be auto"),
        ({"stages": [{"name": "one", "data": {"train": ["a"]}, "template": "vicuna"}]}, r"unknown template 'vicuna'"),
        ({"stages": [{"name": "one", "data": {"train": ["a"]}, "global_batch_size": 6, "micro_batch_size": 4}]}, "not divisible"),
        ({"stages": [{"name": "one", "method": "lora", "lora": {"target_modules": ["q_proj"]}, "data": {"train": ["a"]}}]}, r"lora\.target_modules: choose from"),
        ({"stages": [{"name": "one", "data": {"train": ["a"]}}, {"name": "one", "data": {"train": ["b"]}}]}, "used twice"),
        ({"defaults": {"lr": -1}}, r":5: stages\[0\]\.lr \(from defaults\.lr\): must be > 0"),
    ],
)  # fmt: skip
def test_bad_recipes_name_file_line_and_key(tmp_path, change, message):
    path = write_recipe(tmp_path / "bad.yaml", {**RECIPE, **change})
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_shipped_recipes_load_with_the_papers_settings():
    recipes = {p.stem: load_recipe(p) for p in sorted((REPO / "configs" / "sft").glob("*.yaml"))}
    assert {"chatdoctor", "huatuo", "med-chatglm", "fingpt-lora", "lawgpt-lora", "demo"} <= set(recipes)
    cd = recipes["chatdoctor"]
    assert [s.name for s in cd.stages] == ["alpaca", "genmedgpt", "healthcaremagic", "icliniq"]
    for s in cd.stages:
        assert (s.global_batch_size, s.lr, s.epochs, s.data.max_length) == (192, 2e-5, 3, 512)
        assert (s.warmup_ratio, s.weight_decay, s.schedule, s.method) == (0.03, 0.0, "cosine", "full")
    for name in ("huatuo", "med-chatglm"):
        s = recipes[name].stages[0]
        assert (s.data.max_length, s.lr, s.epochs, s.schedule, s.warmup_ratio) == (
            256,
            5e-5,
            3,
            "linear",
            0.1,
        )
    assert all(s.method == "lora" for n in ("fingpt-lora", "lawgpt-lora") for s in recipes[n].stages)
    demo = recipes["demo"]
    assert demo.base == "runs/demo" and [s.method for s in demo.stages] == ["full", "full", "lora"]


def test_schedules():
    cos = SFTSchedule.from_ratio("cosine", 1.0, 0.0, 0.1, 100)
    assert cos.warmup_steps == 10 and cos.lr_at(0) == pytest.approx(0.1) and cos.lr_at(9) == 1.0
    assert cos.lr_at(55) == pytest.approx(0.5) and cos.lr_at(100) == pytest.approx(0.0)
    lin = SFTSchedule.from_ratio("linear", 1.0, 0.0, 0.1, 100)
    assert lin.lr_at(55) == pytest.approx(0.5) and lin.lr_at(32.5) == pytest.approx(0.75)
    assert SFTSchedule.from_ratio("constant", 1.0, 0.0, 0.0, 100).lr_at(99) == 1.0
    lrs = np.array([cos.lr_at(s) for s in range(10, 101)])
    assert (np.diff(lrs) <= 0).all()


def test_missing_base_says_how_to_make_it(tmp_path):
    from bloomberg_style.sft.chain import check_base

    recipe = load_recipe(REPO / "configs" / "sft" / "demo.yaml", [f"base={tmp_path / 'runs' / 'demo'}"])
    with pytest.raises(RecipeError, match=r"demo\.yaml: base .*does not exist.*python launch/pretrain\.py"):
        check_base(recipe, recipe.base)
    (tmp_path / "runs" / "demo").mkdir(parents=True)  # a run folder without a finished checkpoint
    with pytest.raises(RecipeError, match=r"no complete checkpoint.*python launch/pretrain\.py"):
        check_base(recipe, recipe.base)
