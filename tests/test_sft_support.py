"""The built-in demo instruction set."""

from __future__ import annotations


def test_demo_data_is_deterministic_and_parses(tmp_path):
    from bloomberg_style.demo.instructions import FILES, finance_chat, finance_instructions, write_demo_data
    from bloomberg_style.sft.formats import load_examples

    assert finance_instructions(30, seed=5) == finance_instructions(30, seed=5)
    assert finance_instructions(30, seed=5) != finance_instructions(30, seed=6)
    paths = write_demo_data(tmp_path / "d", records=25, seed=1)
    assert [p.name for p in paths] == list(FILES)
    first = [p.read_bytes() for p in paths]
    write_demo_data(tmp_path / "d2", records=25, seed=1)
    assert [(tmp_path / "d2" / n).read_bytes() for n in FILES] == first

    alpaca, report = load_examples([str(paths[0])], "alpaca")
    assert len(alpaca) == 25 and report.malformed == 0
    kinds = {e.turns[0].content.split()[0] for e in alpaca}
    assert len(kinds) >= 4  # several task families, not one template
    qa, _ = load_examples([str(paths[1])], "qa", {"question": "patient", "answer": "doctor"})
    assert all(e.turns[0].content.startswith("Hi doctor") for e in qa)
    chat, report = load_examples([str(paths[2])], "auto")
    assert report.formats == {str(paths[2]): "conversation"}
    assert all(len(e.turns) == 4 for e in chat)
    # Answers follow from the question: the worked example uses the numbers it states.
    example = finance_chat(1, seed=3)[0]["messages"]
    assert example[1]["content"].startswith("The ")
