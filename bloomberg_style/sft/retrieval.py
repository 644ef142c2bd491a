"""Knowledge retrieval for chat, as ChatDoctor answers (Li et al. 2023, its "autonomous
knowledge retrieval"): the model first names the keywords of the question, the keywords
retrieve passages from a knowledge base, and the passages go into the prompt.

ChatDoctor matched terms against a disease database and Wikipedia; here the matching is
BM25 (Robertson & Zaragoza 2009) by the `bm25s` library over a JSONL knowledge base, one
record a line: {"id": ..., "title": ..., "text": ...}. A model's keywords are used when at
least half of them occur in the knowledge base; otherwise (a small or untuned model says
nothing usable) the question's own content words are the query (the lexical fallback).
Terms are lower-cased words of letters/digits and single CJK characters (Chinese has no
spaces), English stopwords (bm25s' extended list) dropped.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_TERM = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)

# The keyword prompt, after ChatDoctor's: the model lists the terms to look the question up by.
KEYWORD_PROMPT = (
    "A question is given below. Extract the keywords that are best for looking up the answer "
    "in a medical or domain knowledge base.\n"
    "---------------------\n{question}\n---------------------\n"
    "Give the keywords separated by commas.\nKeywords: "
)

# How the retrieved passages enter the prompt; each is cited by its id.
KNOWLEDGE_PROMPT = (
    "Answer the question using the knowledge below when it is relevant; cite passages by their "
    "[id].\n{passages}\nQuestion: {question}"
)


class KnowledgeError(ValueError):
    """A knowledge base file that cannot be used (the message names the file and line)."""


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str

    def render(self, max_chars: int = 0) -> str:
        text = self.text if not max_chars or len(self.text) <= max_chars else self.text[:max_chars] + "..."
        return f"[{self.id}] {self.title}: {text}"


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def terms(text: str) -> list[str]:
    """Lower-cased search terms of `text`, stopwords and one-letter words dropped."""
    stop = _stopwords()
    out = []
    for t in _TERM.findall(text.lower()):
        if t in stop or (len(t) == 1 and t.isascii()):
            continue
        out.append(t)
    return out


def parse_keywords(output: str) -> list[str]:
    """The model's keyword list (comma, semicolon or newline separated) as search terms."""
    first = output.strip().split("\n\n")[0]
    found: list[str] = []
    for piece in re.split(r"[,;\n、，]", first):
        for t in terms(piece):
            if t not in found:
                found.append(t)
    return found


@dataclass
class KnowledgeBase:
    passages: list[Passage]
    source: str = ""
    _index: object = field(default=None, repr=False)
    _vocab: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeBase:
        path = Path(path)
        if not path.is_file():
            raise KnowledgeError(f"knowledge base {path} not found (a JSONL file: id, title, text)")
        passages, seen = [], set()
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise KnowledgeError(f"{path}:{n}: not JSON ({exc.msg})") from None
                passages.append(_passage(record, f"{path}:{n}"))
                if passages[-1].id in seen:
                    raise KnowledgeError(f"{path}:{n}: id {passages[-1].id!r} is used twice")
                seen.add(passages[-1].id)
        if not passages:
            raise KnowledgeError(f"knowledge base {path} has no records")
        return cls(passages, str(path)).build()

    @classmethod
    def from_records(cls, records: list[dict], source: str = "records") -> KnowledgeBase:
        return cls([_passage(r, f"{source}[{i}]") for i, r in enumerate(records)], source).build()

    def build(self) -> KnowledgeBase:
        import bm25s

        corpus = [terms(f"{p.title} {p.text}") for p in self.passages]
        self._vocab = {t for doc in corpus for t in doc}
        self._index = bm25s.BM25()
        self._index.index(corpus, show_progress=False)
        return self

    def known(self, query: list[str]) -> list[str]:
        return [t for t in query if t in self._vocab]

    def search(self, query: list[str], k: int = 3) -> list[tuple[Passage, float]]:
        """The k best passages for the query terms by BM25 (those scoring 0 left out)."""
        query = self.known(query)
        if not query or k < 1:
            return []
        k = min(k, len(self.passages))
        docs, scores = self._index.retrieve([query], k=k, show_progress=False)
        return [(self.passages[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def _passage(record: object, where: str) -> Passage:
    if not isinstance(record, dict):
        raise KnowledgeError(f"{where}: a record must be an object with id, title, text")
    missing = [k for k in ("id", "title", "text") if k not in record]
    if missing:
        raise KnowledgeError(f"{where}: missing field(s) {missing} (records need id, title, text)")
    if not isinstance(record["text"], str) or not isinstance(record["title"], str):
        raise KnowledgeError(f"{where}: title and text must be strings")
    if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        raise KnowledgeError(f"{where}: id must be a string or an integer, got {record['id']!r}")
    return Passage(str(record["id"]), record["title"], record["text"])


@dataclass
class Retrieval:
    question: str
    keywords: list[str]
    keyword_source: str  # "model" or "lexical"
    passages: list[tuple[Passage, float]]

    def prompt(self, max_chars: int = 1200) -> str:
        """The user message the model answers: passages first, then the question."""
        if not self.passages:
            return self.question
        block = "\n".join(p.render(max_chars) for p, _ in self.passages)
        return KNOWLEDGE_PROMPT.replace("{passages}", block).replace("{question}", self.question)

    def shown(self) -> str:
        """What the user sees: the keywords and each retrieved passage with its id."""
        head = f"keywords ({self.keyword_source}): {', '.join(self.keywords) or '-'}"
        if not self.passages:
            return head + "\nretrieved: nothing"
        lines = [f"  [{p.id}] {p.title} (BM25 {s:.2f})" for p, s in self.passages]
        return "\n".join([head, "retrieved:", *lines])


@dataclass
class Retriever:
    """Keywords by the model (if it gives usable ones), then BM25 over the knowledge base."""

    kb: KnowledgeBase
    top_k: int = 3
    ask_model: Callable[[str], str] | None = None  # prompt text -> the model's reply

    def keywords(self, question: str) -> tuple[list[str], str]:
        if self.ask_model is not None:
            said = parse_keywords(self.ask_model(KEYWORD_PROMPT.replace("{question}", question)))
            if said and 2 * len(self.kb.known(said)) >= len(said):  # mostly real terms, not noise
                return said, "model"
        return terms(question), "lexical"

    def __call__(self, question: str) -> Retrieval:
        keywords, source = self.keywords(question)
        return Retrieval(question, keywords, source, self.kb.search(keywords, self.top_k))
