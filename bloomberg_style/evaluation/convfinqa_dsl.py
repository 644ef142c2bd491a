"""ConvFinQA's (and FinQA's) program language, evaluated without eval().

A program is steps separated by commas, each `op(arg, arg)`:

    subtract(206588, 181001), divide(#0, 181001)

ops: add, subtract, multiply, divide, exp (a ** b), greater (a > b -> "yes"/"no") and the
table ops table_max / table_min / table_sum / table_average(ROW NAME, none), which read the
numbers of the table row whose first cell is ROW NAME. Arguments: numbers (commas, $ and
a trailing % allowed; "5%" is 0.05 as in FinQA's str_to_num), const_N (const_m1 = -1),
#N (step N's result). The program's value is its last step's; a bare number is its own value.

Exact match (the ConvFinQA score): both sides normalised (numbers rounded to 5 decimals,
as ConvFinQA's gold `exe_ans` are; yes/no lowercased) and compared. A model answer that is
not a program may be a plain number or yes/no.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_STEP = re.compile(r"\s*([a-z_]+)\(([^()]*)\)\s*(?:,|$)")
BINARY = ("add", "subtract", "multiply", "divide", "exp", "greater")
TABLE = ("table_max", "table_min", "table_sum", "table_average")


class ProgramError(ValueError):
    """A program that does not parse or cannot be evaluated."""


def to_number(text: str) -> float:
    """'1,234.5' / '$12' / '5%' / 'const_100' / 'const_m1' / '(3.2)' -> float; ProgramError if none."""
    s = text.strip()
    if s.startswith("const_"):
        s = s[6:].replace("m", "-", 1) if s[6:].startswith("m") else s[6:]
    negative = s.startswith("(") and s.endswith(")")
    s = s.strip("()").replace(",", "").replace("$", "").strip()
    percent = s.endswith("%")
    s = s.rstrip("%").strip()
    try:
        value = float(s)
    except ValueError:
        raise ProgramError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ProgramError(f"not a finite number: {text!r}")
    value = -value if negative else value
    return value / 100 if percent else value


def parse_program(program: str) -> list[tuple[str, list[str]]]:
    """'op(a, b), op(#0, c)' -> [(op, [a, b]), (op, [#0, c])]."""
    text = program.strip()
    steps, pos = [], 0
    while pos < len(text):
        match = _STEP.match(text, pos)
        if not match:
            raise ProgramError(f"cannot parse the program at {text[pos : pos + 30]!r}")
        op, args = match[1], [a.strip() for a in match[2].split(",")]
        if op not in BINARY + TABLE:
            raise ProgramError(f"unknown operation {op!r}")
        if len(args) != 2:
            raise ProgramError(f"{op} takes two arguments, got {args}")
        steps.append((op, args))
        pos = match.end()
    if not steps:
        raise ProgramError("empty program")
    return steps


def _row(table: Sequence[Sequence[str]], name: str) -> list[float]:
    for row in table or []:
        if row and str(row[0]).strip().lower() == name.strip().lower():
            values = []
            for cell in row[1:]:
                try:
                    values.append(to_number(str(cell)))
                except ProgramError:
                    continue
            if values:
                return values
            raise ProgramError(f"table row {name!r} has no numbers")
    raise ProgramError(f"no table row named {name!r}")


def execute(program: str, table: Sequence[Sequence[str]] | None = None) -> float | str:
    """The value of a program (a float, or "yes"/"no" for greater); a bare number is a program
    (ConvFinQA writes a looked-up value as "206588")."""
    if "(" not in program:
        return to_number(program)
    results: list[float | str] = []

    def arg(a: str) -> float:
        if a.startswith("#"):
            try:
                value = results[int(a[1:])]
            except (ValueError, IndexError):
                raise ProgramError(f"{a} refers to no earlier step") from None
            if isinstance(value, str):
                raise ProgramError(f"{a} is {value!r}, not a number")
            return value
        return to_number(a)

    for op, (a, b) in parse_program(program):
        if op in TABLE:
            values = _row(table or [], a)
            value: float | str = {"table_max": max, "table_min": min, "table_sum": sum}.get(
                op, lambda v: sum(v) / len(v)
            )(values)
        else:
            x, y = arg(a), arg(b)
            if op == "add":
                value = x + y
            elif op == "subtract":
                value = x - y
            elif op == "multiply":
                value = x * y
            elif op == "divide":
                if y == 0:
                    raise ProgramError("division by zero")
                value = x / y
            elif op == "exp":
                if abs(y) > 1000:
                    raise ProgramError(f"exponent {y} is out of range")
                try:
                    power = x**y
                except (OverflowError, ZeroDivisionError):
                    raise ProgramError(f"exp({x}, {y}) overflows") from None
                if isinstance(power, complex):
                    raise ProgramError(f"exp({x}, {y}) is not real")
                value = float(power)
            else:  # greater
                value = "yes" if x > y else "no"
        if isinstance(value, float) and not math.isfinite(value):
            raise ProgramError(f"{op}({a}, {b}) is not finite")
        results.append(value)
    return results[-1]


def normalise(value: float | str) -> float | str | None:
    """Numbers rounded to 5 decimals, yes/no lowercased; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return round(float(value), 5) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = str(value).strip().lower().rstrip(".")
    if text in ("yes", "no"):
        return text
    try:
        return round(to_number(text), 5) + 0.0
    except ProgramError:
        return None


def answer_value(output: str, table: Sequence[Sequence[str]] | None = None) -> float | str | None:
    """What a model's output means: its program's value, else a plain number or yes/no; None if neither."""
    line = output.strip().split("\n", 1)[0].strip()
    try:
        return normalise(execute(line, table))
    except ProgramError:
        return normalise(line)


def exact_match(output: str, gold: float | str, table: Sequence[Sequence[str]] | None = None) -> bool:
    value = answer_value(output, table)
    return value is not None and value == normalise(gold)
