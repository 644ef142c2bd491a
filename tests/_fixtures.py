"""Fixtures shared by the data tests: a real NumericUnigramTokenizer trained on the demo corpus.

Import the fixture into a test module (`from tests._fixtures import demo_tokenizer`);
the trained tokenizer is cached per session, so modules share one training.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bloomberg_style.demo.corpus import generate_financial_documents, generate_general_documents

TOKENIZER_DOCS_PER_DOMAIN = 40  # ~2 s of training on 2 cores
TOKENIZER_VOCAB = 512


@functools.cache
def _train_demo_tokenizer(base: Path) -> Path:
    from tokenizer import NumericUnigramTokenizer

    texts = generate_financial_documents(TOKENIZER_DOCS_PER_DOMAIN, seed=7) + generate_general_documents(
        TOKENIZER_DOCS_PER_DOMAIN, seed=7
    )
    return NumericUnigramTokenizer.train(texts, TOKENIZER_VOCAB).save(base / "demo_tokenizer")


@pytest.fixture(scope="session")
def demo_tokenizer_dir(tmp_path_factory) -> Path:
    """Folder of a 512-token tokenizer trained on 40 + 40 demo documents (seed 7)."""
    return _train_demo_tokenizer(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def demo_tokenizer(demo_tokenizer_dir):
    from tokenizer import NumericUnigramTokenizer

    return NumericUnigramTokenizer.load(demo_tokenizer_dir)
