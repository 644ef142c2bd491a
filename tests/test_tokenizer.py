"""Numeric-aware byte-level Unigram tokenizer: pretokenization, training, merge, round trips."""

from __future__ import annotations

import json
import math
import pickle
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, TOKENIZER_SAMPLES, synthetic_lines
from tokenizer import (
    BYTE_SYMBOLS,
    EOD_ID,
    EOD_TOKEN,
    TRAINERS,
    NumericUnigramTokenizer,
    UnigramModel,
    build_pre_tokenizer,
    count_pretokens,
    from_byte_level,
    merge_unigram_models,
    pretokenize,
    prune_unigram_model,
    to_byte_level,
    train_from_texts,
    train_unigram,
)

VOCAB = 800

# ---------------------------------------------------------------- corpus


LINES = synthetic_lines()
SAMPLES = TOKENIZER_SAMPLES


@pytest.fixture(scope="module")
def tok() -> NumericUnigramTokenizer:
    return NumericUnigramTokenizer.train(LINES, VOCAB)


# ---------------------------------------------------------------- pretokenization


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("$1,234.56", ["$", "1", ",", "2", "3", "4", ".", "5", "6"]),
        ("The Dow rose", ["The Dow rose"]),
        ("The Dow rose 12%", ["The Dow rose ", "1", "2", "%"]),
        ("Hello, world!!!\n\nNext", ["Hello", ", ", "world", "!!!\n\n", "Next"]),
        ("price: €5 日本", ["price", ": €", "5", " ", "日本"]),  # a space goes with letters first
        ("café", ["caf", "é"]),
        ("a\tb\x00c", ["a", "\t", "b", "\x00", "c"]),
        ("", []),
    ],
)
def test_pretokenize_cases(text: str, pieces: list[str]) -> None:
    assert pretokenize(text) == pieces


def rust_pieces(text: str) -> list[str]:
    return [p for p, _ in build_pre_tokenizer().pre_tokenize_str(text)]


MIXED = st.text(alphabet=st.sampled_from(list("aZq 0 9.,$%\n\t-€日本\x00😀é<|>")), max_size=60)
# every code point, surrogates included (st.text() leaves out category Cs)
ANY_CODE_POINT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
WITH_SURROGATES = st.text(alphabet=st.sampled_from(list("ab 1.\x00日😀") + ["\udc80", "\ud800", "\udfff"]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), MIXED))
def test_python_pretokenizer_matches_rust(text: str) -> None:
    pieces = pretokenize(text)
    assert "".join(pieces) == text
    assert rust_pieces(text) == [to_byte_level(p) for p in pieces]


def test_byte_symbols_match_rust_bytelevel() -> None:
    from tokenizers import pre_tokenizers

    assert len(set(BYTE_SYMBOLS)) == 256
    assert set(BYTE_SYMBOLS) == set(pre_tokenizers.ByteLevel.alphabet())
    assert BYTE_SYMBOLS[ord(" ")] == "Ġ" and BYTE_SYMBOLS[ord("\n")] == "Ċ" and BYTE_SYMBOLS[ord("A")] == "A"
    for text in ["€", "日本", "😀", "\x00\x7f\x80\xa0\xad\xff", "".join(chr(c) for c in range(1, 128))]:
        assert "".join(rust_pieces(text)) == to_byte_level(text)
        assert from_byte_level(to_byte_level(text)).decode("utf-8") == text


# ---------------------------------------------------------------- the trained tokenizer


def test_vocab_layout_bytes_and_eod(tok: NumericUnigramTokenizer) -> None:
    assert tok.vocab_size == VOCAB
    assert tok.eod_id == EOD_ID == 0
    assert tok.token_to_id(EOD_TOKEN) == 0
    for b, symbol in enumerate(BYTE_SYMBOLS):
        assert tok.token_to_id(symbol) == 1 + b
    assert tok.decode([tok.eod_id]) == EOD_TOKEN


def test_digits_stand_alone(tok: NumericUnigramTokenizer) -> None:
    for i in range(tok.vocab_size):
        piece = tok.id_to_token(i)
        if any(c.isdigit() and c.isascii() for c in piece):
            assert len(piece) == 1, piece
    ids = tok.encode("Revenue rose to $12,345,678.90 in 2023")
    digit_ids = [i for i in ids if tok.id_to_token(i).isdigit()]
    assert [tok.id_to_token(i) for i in digit_ids] == list("1234567890" + "2023")


def test_learns_multiword_pieces_and_compresses(tok: NumericUnigramTokenizer) -> None:
    text = "".join(LINES[:50])
    ids = tok.encode(text)
    assert len(ids) < 0.5 * len(text.encode("utf-8"))  # far better than one token per byte
    assert any(" " in tok.decode([i]).strip(" ") for i in range(257, tok.vocab_size))  # e.g. "The Dow"


def test_training_learns_nothing_unseen(tok: NumericUnigramTokenizer) -> None:
    corpus = "".join(LINES).encode("utf-8")
    for i in range(257, tok.vocab_size):
        assert from_byte_level(tok.id_to_token(i)) in corpus


ROUND_TRIP_CASES = [
    "",
    "\x00",
    "a\x00b\x00\x00",
    "😀🚀 emoji 👨‍👩‍👧",
    "日本語のテキスト、中文文本。",
    "x" * 200_000,
    "The Dow rose " * 5_000,
    "\n\n\r\n\t  \u2028\ufeff",
    EOD_TOKEN,
    f"one{EOD_TOKEN}two {EOD_TOKEN}\n{EOD_TOKEN}{EOD_TOKEN}",
    "$1,234.56 € £ ¥ 12½ ¹²³",
    "\U0010ffff\ue000\ufffd",
]


@pytest.mark.parametrize("text", ROUND_TRIP_CASES, ids=range(len(ROUND_TRIP_CASES)))
def test_round_trip_cases(tok: NumericUnigramTokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.eod_id not in ids  # plain text never yields EOD, even when it spells it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(), MIXED, ANY_CODE_POINT, WITH_SURROGATES))
def test_round_trip_any_text(tok: NumericUnigramTokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.eod_id not in ids
    for i in ids:  # numeric guarantee on the output: a token with a digit is that digit alone
        piece = tok.id_to_token(i)
        assert len(piece) == 1 or not DIGIT_SET.intersection(piece), piece


DIGIT_SET = set("0123456789")


def test_multiword_pieces_span_words(tok: NumericUnigramTokenizer) -> None:
    """Letters-and-spaces pieces may cover several words; no piece mixes letters with anything else."""
    multi = []
    for i in range(257, tok.vocab_size):
        text = tok.decode([i])
        if any(c.isalpha() and c.isascii() for c in text):
            assert all((c.isascii() and c.isalpha()) or c == " " for c in text), repr(text)
            if len(text.strip(" ").split(" ")) >= 2:
                multi.append(text)
    assert multi, "expected pieces such as 'The Dow' spanning two words"
    ids = tok.encode("The Dow rose 12%")
    assert any(len(tok.decode([i]).strip().split(" ")) >= 2 for i in ids)


def test_very_long_line(tok: NumericUnigramTokenizer) -> None:
    line = "".join(LINES).replace("\n", " ") * 3  # one line, ~0.2 MB, words, digits, CJK, emoji
    line += "😀" * 5_000 + "日本" * 5_000 + "\x00" * 1_000 + "7" * 10_000
    ids = tok.encode(line)
    assert tok.decode(ids) == line
    assert sum(1 for i in ids if tok.id_to_token(i) == "7") >= 10_000


def test_encode_batch_equals_encode(tok: NumericUnigramTokenizer) -> None:
    texts = LINES[:40] + ["", EOD_TOKEN, "日本 😀"]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]


LONE_SURROGATES = ["abc\udc80", "\udc80\udcff", "\ud83d\ude00 x", "a.\udfff!\ud800", "12\udc80 rose 3"]


@pytest.mark.parametrize("text", LONE_SURROGATES)
def test_lone_surrogates_round_trip(tok: NumericUnigramTokenizer, text: str) -> None:
    """A surrogate becomes the byte tokens of its surrogatepass form and decodes back to itself."""
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode_batch(["fine", text]) == [tok.encode("fine"), ids]
    surrogate_bytes = [i - 1 for i in ids if 1 <= i <= 256 and i - 1 == 0xED]
    assert surrogate_bytes, "each surrogate is spelled with byte tokens ED xx xx"
    # tokenizers' own decode (and lone_surrogates=False) cannot give a surrogate back: U+FFFD instead
    assert "\ufffd" in tok.decode(ids, lone_surrogates=False)


def test_decode_matches_tokenizers_for_invalid_utf8(tok: NumericUnigramTokenizer) -> None:
    """Cut characters give the same U+FFFD runs as tokenizers; only ED A0-BF 80-BF means a surrogate."""
    rng = random.Random(0)
    for _ in range(500):
        ids = [rng.randrange(1, 257) for _ in range(rng.randint(1, 8))]
        if any(ids[k] - 1 == 0xED and 0xA0 <= ids[k + 1] - 1 <= 0xBF for k in range(len(ids) - 1)):
            continue
        assert tok.decode(ids) == tok.backend.decode(ids)
    euro = tok.encode("€")  # bytes E2 82 AC
    assert tok.decode([1 + 0xE2, 1 + 0x82]) == "\ufffd"
    assert tok.decode(euro) == "€"


def test_lone_surrogate_in_training_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"document 1.*U\+DC80 at index 3"):
        train_unigram(["ok", "bad\udc80"], 300)
    with pytest.raises(TypeError, match="texts\\[0\\]"):
        NumericUnigramTokenizer.train(["a b c"], 300).encode_batch([b"bytes"])  # type: ignore[list-item]


def test_decode_rejects_unknown_ids(tok: NumericUnigramTokenizer) -> None:
    with pytest.raises(ValueError, match=f"token id {VOCAB}"):
        tok.decode([1, VOCAB])
    with pytest.raises(ValueError, match="token id -1"):
        tok.decode([-1])


# ---------------------------------------------------------------- save / load / transformers


def test_save_load_identical_ids(tok: NumericUnigramTokenizer, tmp_path: Path) -> None:
    tok.save(tmp_path)
    for loaded in (
        NumericUnigramTokenizer.load(tmp_path),
        NumericUnigramTokenizer.load(tmp_path / "tokenizer.json"),
    ):
        assert loaded.vocab_size == tok.vocab_size and loaded.eod_id == tok.eod_id
        assert loaded.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)
    clone = pickle.loads(pickle.dumps(loaded))  # worker processes get the tokenizer this way
    assert clone.encode_batch(SAMPLES) == tok.encode_batch(SAMPLES)


def test_transformers_loads_identical_ids(tok: NumericUnigramTokenizer, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok.save(tmp_path)
    auto = AutoTokenizer.from_pretrained(tmp_path)
    raw = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    assert auto.eos_token_id == tok.eod_id
    for text in SAMPLES:
        ours = tok.encode(text)
        assert auto(text)["input_ids"] == ours
        assert raw(text)["input_ids"] == ours
        assert auto.decode(ours) == text


def test_load_rejects_other_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    other = Tokenizer(models.Unigram([(EOD_TOKEN, 0.0), ("a", -1.0)], unk_id=None))
    other.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="pre_tokenizer"):
        NumericUnigramTokenizer.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        NumericUnigramTokenizer.load(tmp_path / "nowhere")


# ---------------------------------------------------------------- train / merge / prune


def byte_pieces(log_p: float) -> list[tuple[str, float]]:
    return [(s, log_p) for s in BYTE_SYMBOLS]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_train_unigram_model(trainer: str) -> None:
    model = train_unigram(LINES, VOCAB, trainer=trainer)
    assert model.bytes_seen == sum(len(t.encode("utf-8")) for t in LINES)
    assert VOCAB - 60 <= len(model.pieces) <= VOCAB - 1  # SentencePiece may stop short on tiny data
    built = NumericUnigramTokenizer.from_model(model)  # checks: digits alone, byte symbols, no EOD
    assert built.decode(built.encode(LINES[0])) == LINES[0]
    assert set(BYTE_SYMBOLS) <= {p for p, _ in model.pieces}
    assert math.isclose(sum(model.probabilities().values()), 1.0, rel_tol=1e-9)
    assert EOD_TOKEN not in dict(model.pieces)
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_unigram(LINES, 100)
    with pytest.raises(ValueError, match="no text"):
        train_unigram(["", ""], 300, trainer=trainer)
    with pytest.raises(ValueError, match="trainer='bpe'"):
        train_unigram(LINES, 300, trainer="bpe")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), MIXED), max_size=5))
def test_count_pretokens_matches_rust(texts: list[str]) -> None:
    """The trainer's input (counted Python pieces) is what the Rust encoder will segment."""
    rust = Counter(p for t in texts for p in rust_pieces(t))
    assert count_pretokens(texts) == rust


def test_merge_weights_by_bytes() -> None:
    a = UnigramModel(pieces=[("x", math.log(0.5)), ("y", math.log(0.5))], bytes_seen=1)
    b = UnigramModel(pieces=[("x", math.log(0.25)), ("z", math.log(0.75))], bytes_seen=3)
    merged = merge_unigram_models([a, b])
    p = merged.probabilities()
    assert merged.bytes_seen == 4
    assert p == pytest.approx({"x": 0.25 * 0.5 + 0.75 * 0.25, "y": 0.25 * 0.5, "z": 0.75 * 0.75})
    assert [piece for piece, _ in merged.pieces] == ["z", "x", "y"]  # most probable first
    assert math.isclose(sum(math.exp(lp) for _, lp in merged.pieces), 1.0)


def test_merge_is_hierarchical() -> None:
    """Merging chunks within domains, then domains, equals merging all chunks at once."""
    rng = random.Random(1)
    vocab = ["a", "b", "c", "d", "ab", "cd", "abc"]
    chunks = []
    for _ in range(6):
        pieces = [(v, math.log(rng.random())) for v in rng.sample(vocab, rng.randint(2, len(vocab)))]
        chunks.append(UnigramModel(pieces=pieces, bytes_seen=rng.randint(1, 1000)))
    flat = merge_unigram_models(chunks)
    tree = merge_unigram_models([merge_unigram_models(chunks[:2]), merge_unigram_models(chunks[2:])])
    assert tree.bytes_seen == flat.bytes_seen
    assert tree.probabilities() == pytest.approx(flat.probabilities())


def test_merge_rejects_empty_weight() -> None:
    with pytest.raises(ValueError, match="model 1 has bytes_seen=0"):
        merge_unigram_models([UnigramModel([("a", 0.0)], 5), UnigramModel([("a", 0.0)], 0)])
    with pytest.raises(ValueError, match="at least one"):
        merge_unigram_models([])


def test_prune_keeps_bytes_and_renormalises() -> None:
    # bytes are the least probable pieces, so only the "always keep" rule saves them
    learned = [(f"w{chr(97 + i)}", math.log(0.5**i)) for i in range(10)]
    model = UnigramModel(pieces=learned + byte_pieces(-50.0), bytes_seen=7)
    pruned = prune_unigram_model(model, 256 + 1 + 3)  # room for 3 learned pieces + EOD
    kept = dict(pruned.pieces)
    assert len(kept) == 259 and set(BYTE_SYMBOLS) <= set(kept)
    assert {p for p in kept if p not in BYTE_SYMBOLS} == {"wa", "wb", "wc"}
    assert math.isclose(sum(math.exp(lp) for lp in kept.values()), 1.0)
    assert math.isclose(kept["wa"] - kept["wb"], math.log(2))  # ratios unchanged
    assert pruned.bytes_seen == 7
    built = NumericUnigramTokenizer.from_model(pruned)
    assert built.vocab_size == 260 and built.eod_id == 0 and built.id_to_token(257) == "wa"


def test_split_and_merge_tokenizer_round_trips() -> None:
    parts = [train_unigram(LINES[:200], 500), train_unigram(LINES[200:], 500)]
    merged = merge_unigram_models(parts)
    assert merged.bytes_seen == sum(len(t.encode("utf-8")) for t in LINES)
    assert len(merged.pieces) > max(len(p.pieces) for p in parts)  # the union of both chunks
    built = NumericUnigramTokenizer.from_model(prune_unigram_model(merged, 600))
    assert built.vocab_size == min(600, len(merged.pieces) + 1)
    for text in SAMPLES:
        assert built.decode(built.encode(text)) == text


def test_from_model_rejects_bad_pieces() -> None:
    good = byte_pieces(-6.0)
    with pytest.raises(ValueError, match="'12'"):
        NumericUnigramTokenizer.from_model(UnigramModel(good + [("12", -1.0)], 1))
    with pytest.raises(ValueError, match="'a1'"):
        NumericUnigramTokenizer.from_model(UnigramModel(good + [("a1", -1.0)], 1))
    with pytest.raises(ValueError, match="byte symbols"):
        NumericUnigramTokenizer.from_model(UnigramModel(good[1:], 1))
    with pytest.raises(ValueError, match="not a byte-level symbol"):
        NumericUnigramTokenizer.from_model(UnigramModel(good + [("a b", -1.0)], 1))


def test_unigram_model_file_round_trip(tmp_path: Path) -> None:
    model = UnigramModel(pieces=[("ĠtheĠ", -1.5), ("日", -2.0)], bytes_seen=42)
    model.save(tmp_path / "m.json")
    assert UnigramModel.load(tmp_path / "m.json") == model


# ---------------------------------------------------------------- end to end


def test_train_from_texts_writes_stats(tmp_path: Path) -> None:
    stats = train_from_texts(iter(LINES), tmp_path / "tok", vocab_size=600, show_progress=False)
    saved = json.loads((tmp_path / "tok" / "training_stats.json").read_text())
    assert saved == stats
    assert stats["documents"] == len(LINES) and stats["vocab_size"] == 600
    assert stats["bytes"] == sum(len(t.encode("utf-8")) for t in LINES)
    assert NumericUnigramTokenizer.load(tmp_path / "tok").vocab_size == 600


@pytest.mark.slow
def test_launch_script(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"doc{i}.txt").write_text("".join(LINES[i * 100 : (i + 1) * 100]), encoding="utf-8")
    out = tmp_path / "tok"
    cmd = [
        sys.executable,
        str(REPO / "launch" / "train_tokenizer.py"),
        "--input",
        str(corpus),
        "--output",
        str(out),
    ]
    done = subprocess.run([*cmd, "--vocab-size", "400"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["documents"] == 4 and stats["vocab_size"] == 400
    bad = subprocess.run(
        [*cmd[:3], str(tmp_path / "missing"), *cmd[4:]], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0 and "missing" in bad.stderr
