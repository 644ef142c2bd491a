"""Converters from the public data sets' published formats to task files.

Each fixture is written here in the public format (no downloads); records are checked
exactly. Every source is given as test=PATH or train=PATH so the split is fixed.
"""

from __future__ import annotations

import json

import pytest

from bloomberg_style.cli.evaluate import main as evaluate_main
from bloomberg_style.evaluation.converters import ConvertError, Source, convert, parse_source
from bloomberg_style.evaluation.fewshot import load_task
from bloomberg_style.evaluation.gen_tasks import load_generation_task


def run_convert(tmp_path, name, *sources):
    out = tmp_path / f"{name}.jsonl"
    assert evaluate_main(["--convert", name, *sources, "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return out, lines[0], lines[1:]


def test_fpb_latin1_and_utf8_files(tmp_path):
    latin = tmp_path / "Sentences_50Agree.txt"
    latin.write_bytes(
        "Sales in Espa\u00f1a rose 5 % .@positive\nThe board met .@neutral\n".encode("iso-8859-1")
    )
    allagree = tmp_path / "Sentences_AllAgree.txt"
    allagree.write_text("Profit fell to EUR 1.2 mn .@negative\n", encoding="utf-8")
    out, header, records = run_convert(tmp_path, "fpb", f"train={latin}", f"test={allagree}")
    assert header["shots"] == 5 and header["labels"] == {
        "positive": "positive",
        "negative": "negative",
        "neutral": "neutral",
    }
    assert records == [
        {"text": "Sales in Espa\u00f1a rose 5 % .", "label": "positive", "split": "train"},
        {"text": "The board met .", "label": "neutral", "split": "train"},
        {"text": "Profit fell to EUR 1.2 mn .", "label": "negative", "split": "test"},
    ]
    task = load_task(out)  # a valid classification task file
    assert len(task.test) == 1 and len(task.train) == 2


def test_fpb_bad_label_names_file_and_line(tmp_path, capsys):
    src = tmp_path / "Sentences_75Agree.txt"
    src.write_text("Fine .@neutral\nOdd row without label\n", encoding="iso-8859-1")
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--convert", "fpb", str(src), "--output", str(tmp_path / "o.jsonl")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{src}:2: expected 'sentence@label'" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_plain_path_split_is_seeded_and_stable(tmp_path):
    src = tmp_path / "Sentences_66Agree.txt"
    src.write_text("".join(f"Row {i} .@neutral\n" for i in range(200)), encoding="iso-8859-1")
    a = convert("fpb", [parse_source(str(src), 0.25, seed=7)])[1]
    b = convert("fpb", [parse_source(str(src), 0.25, seed=7)])[1]
    c = convert("fpb", [parse_source(str(src), 0.25, seed=8)])[1]
    assert a == b and a != c
    assert 30 <= sum(r["split"] == "test" for r in a) <= 70


def test_fiqa_sa_thresholds(tmp_path):
    src = tmp_path / "task1_headline_ABSA_train.json"
    data = {
        "1": {"sentence": "Tesco shares slump", "info": [{"target": "Tesco", "sentiment_score": "-0.52",
                                                          "aspects": "['Stock/Price Action']", "snippets": "['slump']"}]},
        "2": {"sentence": "BP and Shell flat", "info": [
            {"target": "BP", "sentiment_score": "0.05", "aspects": "[]", "snippets": "[]"},
            {"target": "Shell", "sentiment_score": "0.1", "aspects": "[]", "snippets": "[]"}]},
    }  # fmt: skip
    src.write_text(json.dumps(data), encoding="utf-8")
    out, header, records = run_convert(tmp_path, "fiqa-sa", f"test={src}")
    assert header["shots"] == 5
    assert [(r["text"], r["target"], r["label"], r["id"], r["split"]) for r in records] == [
        ("Tesco shares slump", "Tesco", "negative", "1", "test"),
        ("BP and Shell flat", "BP", "neutral", "2", "test"),
        ("BP and Shell flat", "Shell", "positive", "2", "test"),
    ]
    assert load_task(out).render(load_task(out).test[0]).endswith("sentiment on Tesco?\nAnswer:")
    data["2"]["info"][0]["sentiment_score"] = "high"
    src.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConvertError, match=r"entry '2': info\[0\].sentiment_score 'high'"):
        convert("fiqa-sa", [Source(src, "test")])


HEADLINE = (
    "Dates,URL,News,Price or Not,Direction Up,Direction Constant,Direction Down,PastPrice,FuturePrice,"
    "PastNews,FutureNews,Asset Comparision,Price Sentiment\n"
    '28-01-2016,http://x,"gold falls to Rs 30,800",1,0,0,1,1,0,0,0,0,negative\n'
)


def test_headline_one_question_per_column(tmp_path):
    src = tmp_path / "gold-dataset-sinha-khandait.csv"
    src.write_text(HEADLINE, encoding="utf-8")
    out, header, records = run_convert(tmp_path, "headline", f"test={src}")
    assert header["labels"] == {"yes": "Yes", "no": "No"} and header["shots"] == 5
    assert len(records) == 9
    assert records[0] == {"text": "gold falls to Rs 30,800", "question": "Does the news headline talk about price?",
                          "label": "yes", "split": "test"}  # fmt: skip
    assert [r["label"] for r in records] == ["yes", "no", "no", "yes", "yes", "no", "no", "no", "no"]
    assert records[3]["question"] == "Does the news headline talk about price going down?"
    load_task(out)
    tsv = tmp_path / "gold.tsv"
    tsv.write_text("News\tDirection Up\nGold up\t1\n", encoding="utf-8")
    assert convert("headline", [Source(tsv, "test")])[1] == [
        {"text": "Gold up", "question": "Does the news headline talk about price going up?", "label": "yes", "split": "test"}
    ]  # fmt: skip


def test_headline_unknown_column_or_value_is_an_error(tmp_path):
    src = tmp_path / "gold.csv"
    src.write_text("News,Direction Up,Mood\nGold up,1,1\n", encoding="utf-8")
    with pytest.raises(ConvertError, match=r"gold.csv:1: unknown column\(s\) \['Mood'\]"):
        convert("headline", [Source(src, "test")])
    src.write_text("News,Direction Up\nGold up,1\nGold down,maybe\n", encoding="utf-8")
    with pytest.raises(ConvertError, match=r"gold.csv:3: column 'Direction Up' is 'maybe'"):
        convert("headline", [Source(src, "test")])


NER = """-DOCSTART- -X- O O

Apple NNP B-ORG
hired VBD O
Tim NNP B-PER
Cook NNP I-PER
in IN O
New NNP I-LOC
York NNP I-LOC
. . O

The DT O
Euro NNP I-MISC
rose VBD O
"""


def test_ner_conll_iob1_and_iob2(tmp_path):
    src = tmp_path / "test.txt"
    src.write_text(NER, encoding="utf-8")
    out, header, records = run_convert(tmp_path, "ner", f"test={src}")
    assert header["type"] == "generation" and header["shots"] == 20 and header["metric"] == "entity_f1"
    assert records == [
        {"text": "Apple hired Tim Cook in New York .", "target": "Apple (ORG); Tim Cook (PER); New York (LOC)",
         "entities": [["ORG", "Apple"], ["PER", "Tim Cook"], ["LOC", "New York"]], "split": "test"},
        {"text": "The Euro rose", "target": "none", "entities": [], "split": "test"},
    ]  # fmt: skip
    task = load_generation_task(out)
    assert task.render(task.test[0]) == "Apple hired Tim Cook in New York .\nEntities:"
    src.write_text("Apple B-COMPANY\n", encoding="utf-8")
    with pytest.raises(ConvertError, match=r"test.txt:1: tag 'B-COMPANY'"):
        convert("ner", [Source(src, "test")])


CONVFINQA = [
    {
        "id": "Single_JKHY/2009/page_28.pdf-3",
        "pre_text": ["net cash from operating activities rose ."],
        "post_text": ["amounts in thousands ."],
        "table": [["", "2009", "2008"], ["net cash", "206588", "181001"]],
        "annotation": {
            "dialogue_break": [
                "what is the net cash in 2009?",
                "what is the change?",
                "what is the growth rate?",
            ],
            "turn_program": [
                "206588",
                "subtract(206588, 181001)",
                "subtract(206588, 181001), divide(#0, 181001)",
            ],
            "exe_ans_list": [206588.0, 25587.0, 0.14136],
        },
    }
]


def test_convfinqa_one_example_per_turn_with_gold_history(tmp_path):
    src = tmp_path / "dev.json"
    src.write_text(json.dumps(CONVFINQA), encoding="utf-8")
    out, header, records = run_convert(tmp_path, "convfinqa", f"test={src}")
    assert header["shots"] == 0 and header["metric"] == "convfinqa_em"
    document = "net cash from operating activities rose .\n | 2009 | 2008\nnet cash | 206588 | 181001\namounts in thousands ."
    assert [r["text"] for r in records] == [
        document,
        document + "\nQuestion: what is the net cash in 2009?\nAnswer: 206588.0",
        document + "\nQuestion: what is the net cash in 2009?\nAnswer: 206588.0"
        "\nQuestion: what is the change?\nAnswer: 25587.0",
    ]
    assert [(r["question"], r["target"], r["answer"], r["id"]) for r in records][2] == (
        "what is the growth rate?", "subtract(206588, 181001), divide(#0, 181001)", 0.14136,
        "Single_JKHY/2009/page_28.pdf-3#2",
    )  # fmt: skip
    load_generation_task(out)


def test_convfinqa_mismatched_program_is_reported(tmp_path, capsys):
    bad = json.loads(json.dumps(CONVFINQA))
    bad[0]["annotation"]["exe_ans_list"][1] = 1.0
    src = tmp_path / "dev.json"
    src.write_text(json.dumps(bad), encoding="utf-8")
    records = convert("convfinqa", [Source(src, "test")])[1]
    assert len(records) == 3
    assert "entry 1 (Single_JKHY/2009/page_28.pdf-3) turn 1: 'subtract(206588, 181001)' gives 25587.0" in (
        capsys.readouterr().err
    )
    del bad[0]["annotation"]["turn_program"]
    src.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ConvertError, match="annotation needs dialogue_break, turn_program and exe_ans_list"):
        convert("convfinqa", [Source(src, "test")])


def test_convert_refuses_to_overwrite_and_unknown_names(tmp_path, capsys):
    src = tmp_path / "Sentences_AllAgree.txt"
    src.write_text("Up .@positive\n", encoding="utf-8")
    out = tmp_path / "fpb.jsonl"
    out.write_text("keep me\n")
    for argv, message in (
        (["--convert", "fpb", f"test={src}", "--output", str(out)], "exists; pass --force"),
        (["--convert", "sst2", str(src), "--output", str(tmp_path / "x.jsonl")], "unknown data set 'sst2'"),
        (["--convert", "fpb", f"train={src}", "--output", str(tmp_path / "y.jsonl")], "no test examples"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            evaluate_main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
