"""ConvFinQA (Chen et al. 2022): the dialogue JSON (train.json / dev.json), a list of
{"id", "pre_text": [..], "post_text": [..], "table": [[..]], "annotation":
{"dialogue_break": [questions], "turn_program": [programs], "exe_ans_list": [answers]}}.

One example per turn: the report (pre text, table as "a | b | c" rows, post text), the
earlier turns with their gold answers (the paper conditions on the gold history), the
question. 0 shots (Table 8). The model should write the program; its value (evaluated by
evaluation/convfinqa_dsl.py) must equal the gold answer after normalisation. Each gold
program is executed at conversion; a turn whose program does not give its gold answer is
kept (the gold answer is the reference) and reported on stderr with its entry and turn.
"""

from __future__ import annotations

from typing import Any

from bloomberg_style.evaluation.converters import ConvertError, Source, note, read_json
from bloomberg_style.evaluation.convfinqa_dsl import ProgramError, execute, normalise

HEADER = {
    "task": "convfinqa",
    "type": "generation",
    "description": "ConvFinQA turns with the gold history; exact match of the output program's value",
    "prompt": "{text}\nQuestion: {question}\nAnswer:",
    "shots": 0,
    "metric": "convfinqa_em",
    "max_new_tokens": 48,
}


def render_document(entry: dict[str, Any]) -> str:
    table = "\n".join(" | ".join(str(c) for c in row) for row in entry["table"])
    return "\n".join([" ".join(entry["pre_text"]), table, " ".join(entry["post_text"])]).strip()


def _as_answer(value: Any) -> float | str:
    return value if isinstance(value, str) else float(value)


def convert(sources: list[Source]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for source in sources:
        data = read_json(source)
        if not isinstance(data, list):
            raise ConvertError(f"{source.path}: expected a JSON list of dialogues, got {type(data).__name__}")
        for row, entry in enumerate(data, 1):
            where = f"{source.path}: entry {row} ({entry.get('id', '?') if isinstance(entry, dict) else '?'})"
            if not isinstance(entry, dict):
                raise ConvertError(f"{where}: not an object")
            for key in ("pre_text", "post_text", "table", "annotation"):
                if key not in entry:
                    raise ConvertError(f"{where}: no {key!r}")
            ann = entry["annotation"]
            try:
                questions, programs, answers = (
                    ann["dialogue_break"],
                    ann["turn_program"],
                    ann["exe_ans_list"],
                )
            except (KeyError, TypeError):
                raise ConvertError(
                    f"{where}: annotation needs dialogue_break, turn_program and exe_ans_list"
                ) from None
            if not len(questions) == len(programs) == len(answers) or not questions:
                raise ConvertError(
                    f"{where}: {len(questions)} questions, {len(programs)} programs, {len(answers)} answers"
                )
            document = render_document(entry)
            history = []
            for turn, (question, program, answer) in enumerate(zip(questions, programs, answers)):
                try:
                    value = normalise(execute(program, entry["table"]))
                except ProgramError as err:
                    raise ConvertError(f"{where} turn {turn}: program {program!r}: {err}") from None
                if value != normalise(
                    _as_answer(answer)
                ):  # kept (the gold answer is the reference), reported
                    note(f"{where} turn {turn}: {program!r} gives {value}, the gold answer is {answer!r}")
                records.append(
                    {
                        "text": "\n".join([document, *history]),
                        "question": str(question),
                        "target": program,
                        "answer": _as_answer(answer),
                        "table": entry["table"],
                        "id": f"{entry.get('id', row)}#{turn}",
                        "split": source.split_of(row),
                    }
                )
                history.append(f"Question: {question}\nAnswer: {answer}")
    return dict(HEADER), records
