"""The demo corpus: deterministic, two domains, and numbers that are consistent inside a document."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bloomberg_style.corpus import iter_documents
from bloomberg_style.demo.corpus import (
    DEFAULT_DOCS_PER_DOMAIN,
    MONTHS,
    generate_financial_documents,
    generate_general_documents,
    write_demo_corpus,
)

NUM = r"([\d,]+\.\d+)"


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def financial() -> list[str]:
    return generate_financial_documents(300, seed=3)


@pytest.fixture(scope="module")
def general() -> list[str]:
    return generate_general_documents(300, seed=3)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a = write_demo_corpus(tmp_path / "a", seed=11, docs_per_domain=30, docs_per_file=20)
    b = write_demo_corpus(tmp_path / "b", seed=11, docs_per_domain=30, docs_per_file=20)
    c = write_demo_corpus(tmp_path / "c", seed=12, docs_per_domain=30, docs_per_file=20)
    assert sorted(a) == ["financial", "general"]
    assert [p.relative_to(tmp_path / "a") for ps in a.values() for p in ps] == [
        p.relative_to(tmp_path / "b") for ps in b.values() for p in ps
    ]
    for domain in a:
        assert [p.name for p in a[domain]] == ["part-00000.jsonl", "part-00001.jsonl"]
        assert [p.read_bytes() for p in a[domain]] == [p.read_bytes() for p in b[domain]]
        assert [p.read_bytes() for p in a[domain]] != [p.read_bytes() for p in c[domain]]
    texts = [d.text for d in iter_documents([tmp_path / "a" / "financial"])]
    assert texts == generate_financial_documents(30, seed=11)


def test_documents_do_not_depend_on_how_many_are_drawn():
    assert generate_general_documents(40, seed=5)[:10] == generate_general_documents(10, seed=5)
    assert generate_financial_documents(0) == []
    with pytest.raises(ValueError, match="docs_per_domain"):
        write_demo_corpus("unused", docs_per_domain=0)


def test_domains_differ_and_financial_is_numeric(financial, general):
    def share(docs, pattern):
        return sum(bool(re.search(pattern, d)) for d in docs) / len(docs)

    assert share(financial, r"\d") == 1.0 and share(financial, r"\d+\.\d%") > 0.8
    assert share(financial, r"\$[\d,]+\.\d") > 0.9
    assert share(financial, r"\((?:(?:NYSE|Nasdaq): )?[A-Z]{2,4}\)") > 0.6  # tickers
    assert share(general, r"\$[\d,]+\.\d") < 0.05  # general prose has no prices
    kinds = {d.split("\n", 1)[0].split()[0] for d in financial}
    assert len(set(financial)) == len(financial) and len(kinds) > 100  # varied companies, no duplicates
    # thousands of distinct words across a few hundred documents: not a tiny template vocabulary
    words = {w for d in general for w in re.findall(r"[A-Za-z]+", d)}
    assert len(words) > 2000


def test_earnings_release_numbers_add_up(financial):
    checked = 0
    for doc in financial:
        m = re.search(rf"Revenue of \${NUM} million, (up|down) {NUM}% from \${NUM} million", doc)
        if not m or "Revenue by Segment" not in doc:
            continue
        now, direction, growth, before = number(m[1]), m[2], number(m[3]), number(m[4])
        assert round(abs(now / before - 1) * 100, 1) == growth and (direction == "up") == (now >= before)
        table = doc.split("Revenue by Segment (in millions)\n")[1].split("\n\n")[0].splitlines()[2:]
        segments = [number(re.findall(r"\$([\d,]+\.\d)", row)[0]) for row in table[:-1]]
        total = number(re.findall(r"\$([\d,]+\.\d)", table[-1])[0])
        assert table[-1].startswith("| Total") and total == now
        assert round(sum(segments), 1) == total
        checked += 1
    assert checked > 30


def test_income_statement_rows_are_consistent(financial):
    checked = 0
    for doc in financial:
        if "Results of Operations" not in doc:
            continue
        rows = {}
        for line in doc.splitlines():
            m = re.match(r"([A-Z][A-Za-z ,]+?)\s{2,}(-?[\d,]+\.\d)\s+(-?[\d,]+\.\d)\s", line)
            if m:
                rows[m[1].strip()] = (number(m[2]), number(m[3]))
        for i in range(2):
            assert round(rows["Net revenue"][i] - rows["Cost of revenue"][i], 1) == rows["Gross profit"][i]
            expenses = (
                rows["Selling, general and administrative"][i]
                + rows.get("Research and development", (0, 0))[i]
            )
            assert round(rows["Gross profit"][i] - expenses, 1) == rows["Operating income"][i]
            assert (
                round(rows["Income before income taxes"][i] - rows["Provision for income taxes"][i], 1)
                == (rows["Net income"][i])
            )
        checked += 1
    assert checked > 30


def test_stock_moves_match_prices(financial):
    checked = 0
    for doc in financial:
        m = re.search(rf"(rose|climbed|jumped|gained|fell|dropped|slid|declined) {NUM}% to \${NUM} in", doc)
        close = re.search(rf"The stock had closed at \${NUM}", doc)
        if not (m and close):
            continue
        now, before = number(m[3]), number(close[1])
        assert round(abs(now / before - 1) * 100, 1) == number(m[2])
        assert (m[1] in {"rose", "climbed", "jumped", "gained"}) == (now >= before)
        checked += 1
    assert checked > 20


def test_biography_ages_follow_from_dates(general):
    month = "|".join(MONTHS)
    checked = 0
    for doc in general:
        m = re.search(rf"\(({month}) (\d+), (\d+) – ({month}) (\d+), (\d+)\)", doc)
        age = re.search(r"at the age of (\d+)\. A street", doc)
        if not (m and age):
            continue
        born = dt.date(int(m[3]), MONTHS.index(m[1]) + 1, int(m[2]))
        died = dt.date(int(m[6]), MONTHS.index(m[4]) + 1, int(m[5]))
        expected = died.year - born.year - ((died.month, died.day) < (born.month, born.day))
        assert int(age[1]) == expected
        checked += 1
    assert checked > 20


@pytest.mark.slow
def test_default_size_is_a_few_megabytes(tmp_path):
    files = write_demo_corpus(tmp_path)
    sizes = {domain: sum(p.stat().st_size for p in paths) for domain, paths in files.items()}
    assert 2_000_000 < sum(sizes.values()) < 4_000_000
    assert all(size > 800_000 for size in sizes.values())
    assert sum(1 for _ in iter_documents([tmp_path])) == 2 * DEFAULT_DOCS_PER_DOMAIN
