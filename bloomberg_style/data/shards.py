"""Token shards: a corpus encoded once into a megatron-core IndexedDataset.

    PREFIX.bin         token ids, document after document, each followed by EOD
    PREFIX.idx         megatron-core index: one sequence (= one document) per entry
    PREFIX.stats.json  documents, tokens, bytes, bytes per token, tokenizer, inputs

The ids are stored as uint16 when the vocabulary fits (< 65,500 ids, the
threshold megatron-core's own preprocessing uses) and int32 otherwise, so a
2^17-token BloombergGPT vocabulary takes 4 bytes per token and a demo one 2.

The .bin and .idx are written under temporary names and renamed at the end,
so an interrupted run never leaves a half-written shard behind a valid name.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from bloomberg_style.atomic import atomic_write_text
from bloomberg_style.corpus import CorpusStats, iter_documents, resolve_inputs


class ShardTokenizer(Protocol):
    """What shards need from a tokenizer (NumericUnigramTokenizer has it)."""

    @property
    def eod_id(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...


@dataclass
class ShardStats:
    """What a shard holds; saved as PREFIX.stats.json."""

    prefix: str
    documents: int
    tokens: int  # including one EOD per document
    bytes: int  # UTF-8 bytes of the documents' text
    bytes_per_token: float
    empty_documents_skipped: int
    vocab_size: int
    eod_id: int
    dtype: str
    tokenizer: str | None
    inputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    duplicates_dropped: int = 0  # prepare_data --dedup exact
    tokenizer_sha256: str = ""  # sha256 of tokenizer.json (prepare_data's parts)

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, prefix: str | Path) -> ShardStats:
        path = stats_path(prefix)
        if not path.is_file():
            raise FileNotFoundError(f"no shard stats at {path}")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def import_megatron_datasets():
    """megatron.core.datasets, imported without its warnings about GPU kernels and deprecations.

    Importing megatron.core takes several seconds (it loads its model code),
    so modules here import it on first use, not at import time.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Transformer Engine and Apex are not installed")
        warnings.simplefilter("ignore", DeprecationWarning)  # megatron's own model-code deprecations
        import megatron.core.datasets.blended_megatron_dataset_builder
        import megatron.core.datasets.gpt_dataset
        import megatron.core.datasets.indexed_dataset  # noqa: F401
    return megatron.core.datasets


def token_dtype(vocab_size: int) -> type[np.unsignedinteger] | type[np.signedinteger]:
    """uint16 below 65,500 ids (megatron-core's DType.optimal_dtype rule), else int32."""
    return np.uint16 if vocab_size < 65_500 else np.int32


def bin_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.bin")


def idx_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.idx")


def stats_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}.stats.json")


def shard_exists(prefix: str | Path) -> bool:
    return bin_path(prefix).is_file() and idx_path(prefix).is_file()


# Worker processes (workers > 1) each hold one copy of the tokenizer.
_WORKER_TOKENIZER: ShardTokenizer | None = None


def _init_worker(tokenizer: ShardTokenizer) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = tokenizer


def _encode_in_worker(texts: list[str]) -> list[list[int]]:
    assert _WORKER_TOKENIZER is not None
    return _WORKER_TOKENIZER.encode_batch(texts)


def _batches(texts: Iterable[str], batch_size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class HFFolderTokenizer:
    """A Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json) for shards and training.

    Read with the `tokenizers` library alone (no transformers import in prepare_data's
    workers). The end-of-document id is the folder's eos token, as BLOOM/LLaMA pretraining
    separates documents; no other special token is added to a document (no BOS).
    """

    def __init__(self, folder: str | Path):
        from tokenizers import Tokenizer

        self.path = Path(folder)
        file, config_file = self.path / "tokenizer.json", self.path / HF_TOKENIZER_CONFIG
        if not file.is_file():
            raise TokenizerFolderError(
                f"{self.path}: no tokenizer.json (a Hugging Face fast tokenizer folder)"
            )
        try:
            config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        except json.JSONDecodeError as exc:
            raise TokenizerFolderError(f"{config_file}: not valid JSON ({exc})") from None
        self.backend = Tokenizer.from_file(str(file))
        eos = config.get("eos_token")
        eos = eos.get("content") if isinstance(eos, dict) else eos
        eos_id = self.backend.token_to_id(eos) if isinstance(eos, str) else None
        if eos_id is None:
            raise TokenizerFolderError(
                f"{config_file}: no eos_token{f' ({eos!r} is not in the vocabulary)' if eos else ''}; "
                "set eos_token there: it separates the documents of a shard"
            )
        self.eos_token, self._eod_id = eos, int(eos_id)

    @property
    def eod_id(self) -> int:
        return self._eod_id

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)


HF_TOKENIZER_CONFIG = "tokenizer_config.json"


class TokenizerFolderError(ValueError):
    """A tokenizer folder that cannot be used (the message names the file)."""


def is_hf_tokenizer_folder(folder: str | Path) -> bool:
    """A tokenizer.json that is not our numeric Unigram one (a BPE, WordPiece ... or a foreign Unigram)."""
    folder = Path(folder)
    file = folder / "tokenizer.json"
    if not file.is_file():
        return False
    try:
        kind = json.loads(file.read_text(encoding="utf-8"))["model"]["type"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False  # our loader names the bad file
    return kind != "Unigram" or ((folder / HF_TOKENIZER_CONFIG).is_file() and not _loads_as_ours(folder))


def _loads_as_ours(folder: Path) -> bool:
    from tokenizer import NumericUnigramTokenizer

    try:
        NumericUnigramTokenizer.load(folder)
    except ValueError:
        return False
    return True


def load_run_tokenizer(folder: str | Path) -> ShardTokenizer:
    """`data.tokenizer` of a run: our NumericUnigramTokenizer (the default), or any Hugging
    Face tokenizer folder (continued pretraining of an existing model, e.g. BLOOM's BPE)."""
    given = Path(folder)
    folder = given.parent if given.is_file() else given  # a tokenizer.json file names its folder
    if is_hf_tokenizer_folder(folder):
        return HFFolderTokenizer(folder)
    from tokenizer import NumericUnigramTokenizer

    return NumericUnigramTokenizer.load(given)


def tokenizer_sha256(folder: str | Path) -> str:
    """sha256 of a tokenizer folder's tokenizer.json: the identity shards record."""
    file = Path(folder)
    file = file / "tokenizer.json" if file.is_dir() else file
    digest = hashlib.sha256()
    with open(file, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ShardTokenizerMismatch(ValueError):
    """Shards written with another tokenizer than the run's (the message names both)."""


def check_shard_tokenizer(prefix: str | Path, tokenizer_dir: str | Path) -> None:
    """Refuse a shard written with another tokenizer than `tokenizer_dir`'s.

    The shard's PREFIX.stats.json records the sha256 of the tokenizer.json it was encoded
    with (prepare_data, write_token_shard); a shard without it (older ones) is compared on
    vocabulary size and end-of-document id. A shard with no stats file is let through: its
    ids are still checked against the vocabulary by megatron's dataset builder.
    """
    if not stats_path(prefix).is_file():
        return
    try:
        stats = ShardStats.load(prefix)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ShardTokenizerMismatch(f"{stats_path(prefix)}: unreadable shard stats ({exc})") from None
    folder = Path(tokenizer_dir)
    file = folder / "tokenizer.json" if folder.is_dir() else folder
    fix = (
        "re-run prepare_data with this tokenizer, or set data.tokenizer to the one the shards were made with"
    )
    if stats.tokenizer_sha256:
        sha = tokenizer_sha256(file)
        if sha != stats.tokenizer_sha256:
            raise ShardTokenizerMismatch(
                f"shard {prefix} was encoded with tokenizer sha256 {stats.tokenizer_sha256[:12]}… "
                f"({stats.tokenizer}), but the run's tokenizer {file} has sha256 {sha[:12]}…: {fix}"
            )
        return
    tok = load_run_tokenizer(folder if folder.is_dir() else folder.parent)
    if (stats.vocab_size, stats.eod_id) != (int(tok.vocab_size), int(tok.eod_id)):
        raise ShardTokenizerMismatch(
            f"shard {prefix} was encoded with a {stats.vocab_size}-token tokenizer (EOD id {stats.eod_id}, "
            f"{stats.tokenizer}), but the run's tokenizer {folder} has {tok.vocab_size} tokens "
            f"(EOD id {tok.eod_id}): {fix}"
        )


def _load_tokenizer(tokenizer: ShardTokenizer | str | Path) -> tuple[ShardTokenizer, str | None]:
    if isinstance(tokenizer, (str, Path)):
        return load_run_tokenizer(tokenizer), str(Path(tokenizer).resolve())
    for attribute in ("eod_id", "vocab_size", "encode_batch"):
        if not hasattr(tokenizer, attribute):
            raise TypeError(f"tokenizer {type(tokenizer).__name__} has no {attribute!r}")
    path = getattr(tokenizer, "path", None)
    return tokenizer, str(path) if path else None


def write_token_shard(
    paths: Sequence[str | Path],
    tokenizer: ShardTokenizer | str | Path,
    output_prefix: str | Path,
    *,
    text_field: str = "text",
    workers: int = 1,
    batch_size: int = 256,
    progress: bool = True,
) -> ShardStats:
    """Encode every document of `paths` and write PREFIX.bin/.idx/.stats.json.

    Each document becomes one sequence of the index: its tokens followed by
    EOD. `tokenizer` is a tokenizer object or a directory saved by
    NumericUnigramTokenizer. With workers=1 batches are encoded in this process
    (the tokenizers library already uses all cores); workers > 1 spreads
    batches over that many processes, which helps when reading and JSON
    parsing dominate. Document order is the corpus order either way.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    files = resolve_inputs(paths)  # fail on a bad path before any work
    tok, tokenizer_path = _load_tokenizer(tokenizer)
    vocab_size, eod = int(tok.vocab_size), int(tok.eod_id)
    if not 0 <= eod < vocab_size:
        raise ValueError(f"tokenizer eod_id {eod} is outside its vocabulary [0, {vocab_size})")
    dtype = token_dtype(vocab_size)
    prefix = Path(output_prefix)
    if prefix.name in ("", ".", ".."):
        raise ValueError(f"output prefix {output_prefix!r} needs a file name part, e.g. shards/financial")
    if prefix.suffix in (".bin", ".idx"):
        raise ValueError(
            f"output prefix {output_prefix!r} ends in {prefix.suffix}; give it without: {prefix.with_suffix('')}"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    IndexedDatasetBuilder = import_megatron_datasets().indexed_dataset.IndexedDatasetBuilder  # slow import

    start = time.perf_counter()
    corpus_stats = CorpusStats()
    texts = (d.text for d in iter_documents(files, text_field, corpus_stats))
    tmp_bin = prefix.with_name(f"{prefix.name}.bin.tmp-{os.getpid()}")
    tmp_idx = prefix.with_name(f"{prefix.name}.idx.tmp-{os.getpid()}")
    builder = IndexedDatasetBuilder(str(tmp_bin), dtype=dtype)
    documents = tokens = 0
    pool = None
    try:
        if workers == 1:
            encoded = map(tok.encode_batch, _batches(texts, batch_size))
        else:
            pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (tok,))
            encoded = pool.imap(_encode_in_worker, _batches(texts, batch_size))
        with tqdm(desc=f"encoding {prefix.name}", unit=" docs", disable=not progress) as bar:
            for batch in encoded:
                for ids in batch:
                    row = np.asarray(ids + [eod], dtype=np.int64)
                    if row.min() < 0 or row.max() >= vocab_size:
                        raise ValueError(
                            f"tokenizer produced id {int(row.max())} outside its vocabulary of {vocab_size}"
                        )
                    builder.add_document(row.astype(dtype), [row.size])
                    tokens += row.size
                documents += len(batch)
                bar.update(len(batch))
        builder.finalize(str(tmp_idx))
    except BaseException:
        builder.data_file.close()
        for tmp in (tmp_bin, tmp_idx):
            tmp.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()

    stats = ShardStats(
        prefix=str(prefix),
        documents=documents,
        tokens=tokens,
        bytes=corpus_stats.bytes,
        bytes_per_token=round(corpus_stats.bytes / tokens, 4),
        empty_documents_skipped=corpus_stats.empty_skipped,
        vocab_size=vocab_size,
        eod_id=eod,
        dtype=np.dtype(dtype).name,
        tokenizer=tokenizer_path,
        inputs=[str(f) for f in files],
        seconds=round(time.perf_counter() - start, 3),
        tokenizer_sha256=tokenizer_sha256(tokenizer_path) if tokenizer_path else "",
    )
    tmp_bin.replace(bin_path(prefix))  # the three renames come last, after all the work succeeded
    tmp_idx.replace(idx_path(prefix))
    stats.save(stats_path(prefix))
    return stats


def read_token_shard(prefix: str | Path):
    """The megatron-core IndexedDataset at PREFIX (ds[i] = document i's ids, EOD last)."""
    IndexedDataset = import_megatron_datasets().indexed_dataset.IndexedDataset

    missing = [str(p) for p in (bin_path(prefix), idx_path(prefix)) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"token shard {prefix}: missing {', '.join(missing)} (run prepare_data first)"
        )
    return IndexedDataset(str(prefix))
