"""Knowledge retrieval (issue 15): BM25 over a small built-in table, the model's keywords with
a lexical fallback, and chat --knowledge showing the retrieved ids."""

from __future__ import annotations

import json

import pytest

from bloomberg_style.cli.chat import main as chat_main
from bloomberg_style.sft.retrieval import (
    KnowledgeBase,
    KnowledgeError,
    Retriever,
    parse_keywords,
    terms,
)

TABLE = [
    {"id": "flu", "title": "Influenza", "text": "Fever, cough, sore throat and muscle aches. Rest, fluids; antivirals early."},
    {"id": "mi", "title": "Myocardial infarction", "text": "Crushing chest pain spreading to the left arm, sweating. Call emergency services."},
    {"id": "derm", "title": "Contact dermatitis", "text": "An itchy red rash where the skin touched an irritant. Avoid it; steroid cream."},
    {"id": "migraine", "title": "Migraine", "text": "Throbbing headache on one side, nausea, light sensitivity. Rest in a dark room."},
    {"id": "gerd", "title": "Reflux", "text": "Burning pain behind the breastbone after meals, sour taste. Antacids help."},
]  # fmt: skip


@pytest.fixture
def kb_file(tmp_path):
    path = tmp_path / "kb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TABLE), encoding="utf-8")
    return path


def test_terms_and_keyword_parsing():
    assert terms("I have a Fever and a cough!") == ["fever", "cough"]
    assert terms("头痛") == ["头", "痛"]  # each CJK character is a term
    assert parse_keywords(" fever, sore throat;\nCough\n\nignored after a blank line") == [
        "fever",
        "sore",
        "throat",
        "cough",
    ]


def test_bm25_ranks_the_matching_passage_first(kb_file):
    kb = KnowledgeBase.load(kb_file)
    top = kb.search(terms("crushing chest pain in my left arm"), k=3)
    assert top[0][0].id == "mi"
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert kb.search(["zebra"], k=3) == []  # no known term: nothing rather than noise
    assert kb.search(terms("itchy rash"), k=1)[0][0].id == "derm"


def test_model_keywords_used_when_usable_else_lexical(kb_file):
    kb = KnowledgeBase.load(kb_file)
    asked: list[str] = []

    def model_says(reply: str):
        def ask(prompt: str) -> str:
            asked.append(prompt)
            return reply

        return ask

    found = Retriever(kb, top_k=2, ask_model=model_says("headache, nausea"))("my head hurts")
    assert found.keyword_source == "model" and found.keywords == ["headache", "nausea"]
    assert found.passages[0][0].id == "migraine"
    assert "my head hurts" in asked[0] and asked[0].rstrip().endswith("Keywords:")
    # Gibberish from the model (no term the knowledge base knows): the question's own words.
    found = Retriever(kb, top_k=2, ask_model=model_says("qqq zzkx"))("burning pain after meals")
    assert found.keyword_source == "lexical" and found.passages[0][0].id == "gerd"
    # One known word among noise is still noise.
    found_noise = Retriever(kb, top_k=2, ask_model=model_says("neece, rest, gent, contrac"))("itchy rash")
    assert found_noise.keyword_source == "lexical" and found_noise.passages[0][0].id == "derm"
    prompt = found.prompt()
    assert "[gerd] Reflux:" in prompt and prompt.endswith("Question: burning pain after meals")
    assert "[gerd] Reflux" in found.shown()


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "title": "t"}', "missing field"),
        ("not json", "not JSON"),
        ('{"id": true, "title": "t", "text": "x"}', "id must be"),
    ],
)
def test_bad_knowledge_base_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(TABLE[0]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message) as err:
        KnowledgeBase.load(path)
    assert f"{path}:2" in str(err.value)


def test_chat_with_knowledge_shows_retrieved_ids(tiny_hf_base_factory, kb_file, capsys):
    folder = tiny_hf_base_factory("qwen2")
    argv = ["--model", str(folder), "--knowledge", str(kb_file), "--temperature", "0"]
    argv += ["--max-new-tokens", "8", "--no-stream", "--prompt", "I have a fever and a cough, what is it?"]
    assert chat_main(argv) == 0
    err = capsys.readouterr().err
    assert "retrieved:" in err and "[flu] Influenza" in err
    assert "keywords (" in err


def test_chat_with_a_bad_knowledge_base_exits_2(tiny_hf_base_factory, tmp_path, capsys):
    missing = tmp_path / "none.jsonl"
    code = chat_main(
        ["--model", str(tiny_hf_base_factory("glm")), "--knowledge", str(missing), "--prompt", "hi"]
    )
    assert code == 2
    assert str(missing) in capsys.readouterr().err
