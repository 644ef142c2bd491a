"""Domain mixtures: training and validation datasets from token shards.

BloombergGPT trained on a fixed mixture (FinPile 51%, public data 49%) and
watched validation loss per source. Here each domain is one token shard
(`DomainSpec`); megatron-core's GPTDataset cuts a domain into rows and its
BlendedDataset interleaves the domains.

Weights. `weight` w_i is the probability that a training token comes from
domain i (weights are normalised, so 3 and 1 mean 75% / 25%). Every row has
exactly seq_len tokens, so sampling rows in proportion to w_i gives token
proportions w_i; megatron's blending index is deterministic and keeps the
running proportions within one row of the target at every prefix.

Splits. Each shard's documents are split into train and validation parts
(`valid_fraction`, or a megatron split string "train,valid,test"). The part
sizes are megatron's, but the documents are drawn through a seeded
permutation of the whole shard (`split_documents`), not taken as its tail, so
a date-ordered shard is validated across all its dates. The draw depends only
on `valid_seed` and the shard's document count: a resume or a rollback (which
reshuffles training positions, training/data_order.py) keeps the same
validation documents, and so does a changed training seed. Training uses the
blend of the train parts; each domain has its own validation dataset covering
its whole validation part once (the last, partial row is padded and masked
out by loss_mask).

Rows. GPTDataset shuffles documents (seeded), joins them with the EOD
already stored after each document, and cuts the stream into rows of
seq_len + 1 tokens. A sample is a dict of torch tensors:

    tokens        int64 [seq_len]  row[:-1]
    labels        int64 [seq_len]  row[1:]  (next-token targets)
    loss_mask     float32 [seq_len]  1.0, or 0.0 on padding (validation's last row)
    position_ids  int64 [seq_len]  0..seq_len-1
    dataset_id    int16 scalar (numpy), train samples only: index of the domain

Documents are not masked from each other: like the paper, attention runs
across EOD inside a row. Sample i is a pure function of (shards, seed,
valid_seed, seq_len, sizes), so every rank reads the same global index the same way.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bloomberg_style.data.cache_safety import check_index_cache
from bloomberg_style.data.parts import expand_prefixes
from bloomberg_style.data.shards import import_megatron_datasets, read_token_shard, shard_exists, stats_path


@dataclass(frozen=True)
class DomainSpec:
    """One domain: a name, its token shards, and its share of training tokens.

    `prefix` and `prefixes` are shard prefixes, prepare_data outputs (their
    manifest's parts) or globs (see data/parts.py); a domain of many parts
    gives each part a share of the domain's weight in proportion to its tokens.
    """

    name: str
    prefix: str
    weight: float = 1.0
    prefixes: tuple[str, ...] = ()

    def parts(self) -> list[str]:
        """The shard prefixes this domain stands for (absolute), in order."""
        entries = [e for e in (self.prefix, *self.prefixes) if e]
        found = [str(Path(p).resolve()) for p in expand_prefixes(entries)]
        return found or [
            str(Path(e).resolve()) for e in entries[:1]
        ]  # a missing shard fails in _check_domains


class _DomainIds:
    """A blend over parts whose samples carry their domain's index, not their part's, as dataset_id."""

    def __init__(self, blend: Any, domain_of_part: list[int]):
        self.blend = blend
        self.domain_of_part = np.asarray(domain_of_part, dtype=np.int16)

    def __len__(self) -> int:
        return len(self.blend)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.blend[index])
        sample["dataset_id"] = self.domain_of_part[int(sample["dataset_id"])]
        return sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self.blend, name)


@dataclass
class MixtureDatasets:
    """The blended training dataset and one validation dataset per domain."""

    train: Any  # megatron BlendedDataset
    valid: dict[str, Any]  # domain name -> megatron GPTDataset
    domains: list[DomainSpec]
    seq_len: int
    split: str
    cache_dir: Path
    summary: dict[str, dict[str, int]] = field(default_factory=dict)


class MegatronTokenizerInfo:
    """The part of a tokenizer that GPTDataset reads: eod, vocab_size, and an identity for its cache.

    GPTDataset needs no encoding (shards hold ids); it reads `eod` (for masks),
    `vocab_size` (token width) and `pad` if present. We define no pad: megatron
    then pads short validation rows with -1, which it masks out of the loss
    and replaces by id 0 in tokens/labels. `unique_identifiers` goes into
    megatron's cache key.
    """

    def __init__(self, eod_id: int, vocab_size: int):
        self.eod = int(eod_id)
        self.vocab_size = int(vocab_size)
        self.unique_identifiers = {
            "class": type(self).__name__,
            "eod": self.eod,
            "vocab_size": self.vocab_size,
        }


def ensure_process_group() -> bool:
    """Start a one-process gloo group if torch.distributed has none; return True if started.

    megatron-core's dataset builders call torch.distributed.get_rank() and
    barrier(). Under a launcher (deepspeed, torchrun) the training script has
    already initialised the group and this does nothing. Run by hand (tests,
    notebooks, the single-process CPU demo) it starts a group of one on
    127.0.0.1 with a free port. A process that a launcher started with
    WORLD_SIZE > 1 must initialise the real group first; this refuses to
    hide that mistake behind a group of one.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        raise RuntimeError(
            f"WORLD_SIZE={world} but torch.distributed is not initialised: call "
            "deepspeed.init_distributed() (or torch.distributed.init_process_group) before building datasets"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    return True


def split_string(valid_fraction: float | None = None, split: str | None = None) -> str:
    """A megatron split string "train,valid,test" from a validation fraction or given as is."""
    if (valid_fraction is None) == (split is None):
        raise ValueError("give exactly one of valid_fraction or split")
    if split is not None:
        parts = [p.strip() for p in split.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError as err:
            raise ValueError(f"split {split!r}: expected numbers like '98,2,0'") from err
        if len(values) > 3 or any(v < 0 or not math.isfinite(v) for v in values) or values[0] <= 0:
            raise ValueError(f"split {split!r}: expected up to 3 non-negative weights with train > 0")
        values += [0.0] * (3 - len(values))
        if values[2] > 0:
            raise ValueError(f"split {split!r}: the test part must be 0 (evaluation uses separate shards)")
        return ",".join(_fixed(v) for v in values)
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    return f"{_fixed(1.0 - valid_fraction)},{_fixed(valid_fraction)},0"


def _fixed(value: float) -> str:
    """Fixed-point text: megatron's split parser reads digits and dots only (no 1e-06)."""
    return f"{value:.12f}".rstrip("0").rstrip(".") or "0"


def split_bounds(split: str, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Ranges megatron gives the train and validation splits of an n-document shard.

    These are positions in `document_order`, not document ids: their lengths are
    the split sizes, `split_documents` turns them into documents.
    """
    config = import_megatron_datasets().blended_megatron_dataset_config
    matrix = config.convert_split_vector_to_split_matrix(config.parse_and_normalize_split(split))
    ranges = [(int(round(m[0] * n)), int(round(m[1] * n))) if m is not None else (0, 0) for m in matrix[:2]]
    return ranges[0], ranges[1]


def document_order(n: int, valid_seed: int) -> np.ndarray:
    """The seeded permutation of an n-document shard that the split is cut from.

    Seeded by (valid_seed, n) only: the same shard gives the same draw from any folder,
    on any rank, at every resume; another valid_seed gives another draw.
    """
    return np.random.default_rng([int(valid_seed), int(n)]).permutation(n)


def split_documents(n: int, split: str, valid_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) document ids of an n-document shard, each sorted (file order).

    megatron's split sizes, drawn across the whole shard: the two parts are disjoint and,
    with no test part, cover it. The seeded GPTDataset maps megatron's contiguous ranges
    through the same `document_order`, so these are exactly the documents it reads.
    """
    order = document_order(n, valid_seed)
    (t0, t1), (v0, v1) = split_bounds(split, n)
    return np.sort(order[t0:t1]), np.sort(order[v0:v1])


_SEEDED_CLASSES: tuple[type, type] | None = None


def seeded_split_classes() -> tuple[type, type]:
    """(SeededSplitGPTDataset, SeededSplitGPTDatasetConfig), made on first use (megatron loads lazily).

    megatron's builder gives each split a contiguous range of document ids; the dataset
    maps it through `document_order` before GPTDataset builds its indices. Its class name
    and the config's `valid_seed` enter megatron's cache key (`unique_identifiers`), so an
    index cache of the old contiguous split, or of another draw, is never reused.
    """
    global _SEEDED_CLASSES
    if _SEEDED_CLASSES is None:
        gpt = import_megatron_datasets().gpt_dataset

        @dataclass
        class SeededSplitGPTDatasetConfig(gpt.GPTDatasetConfig):
            """GPTDatasetConfig with the seed of the train/validation document draw."""

            valid_seed: int = 1234

        class SeededSplitGPTDataset(gpt.GPTDataset):
            """GPTDataset whose split documents are drawn with `valid_seed` (see split_documents)."""

            def __init__(
                self, indexed_dataset, dataset_path, indexed_indices, num_samples, index_split, config
            ):
                if indexed_indices is not None:  # None only with megatron's fast_cache_load, unused here
                    n = self.numel_low_level_dataset(indexed_dataset)
                    order = document_order(n, config.valid_seed)
                    indexed_indices = np.sort(order[indexed_indices]).astype(np.int32)
                super().__init__(
                    indexed_dataset, dataset_path, indexed_indices, num_samples, index_split, config
                )

            @staticmethod
            def _key_config_attributes() -> list[str]:
                return [*gpt.GPTDataset._key_config_attributes(), "valid_seed"]

        _SEEDED_CLASSES = (SeededSplitGPTDataset, SeededSplitGPTDatasetConfig)
    return _SEEDED_CLASSES


def _check_domains(
    domains: list[DomainSpec],
    vocab_size: int,
    split: str,
    parts: dict[str, list[str]] | None = None,
    valid_seed: int = 1234,
) -> dict[str, dict[str, int]]:
    """Validate names, weights and shards before megatron builds anything; return per-domain counts."""
    if not domains:
        raise ValueError("no domains given")
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise ValueError(f"domain names must be unique, got {names}")
    summary = {}
    for d in domains:
        if not (isinstance(d.weight, (int, float)) and math.isfinite(d.weight) and d.weight > 0):
            raise ValueError(f"domain {d.name!r}: weight must be a positive number, got {d.weight!r}")
        counts = dict.fromkeys(
            ("documents", "train_documents", "valid_documents", "train_tokens", "valid_tokens"), 0
        )
        for prefix in (parts or {}).get(d.name, [d.prefix]):
            if not shard_exists(prefix):
                raise FileNotFoundError(
                    f"domain {d.name!r}: no token shard at {prefix} (.bin/.idx); run launch/prepare_data.py"
                )
            if stats_path(prefix).is_file():
                stats = json.loads(stats_path(prefix).read_text(encoding="utf-8"))
                # The model's vocabulary may be padded beyond the tokenizer's (e.g. to a multiple of 128).
                if stats.get("vocab_size") is not None and stats["vocab_size"] > vocab_size:
                    raise ValueError(
                        f"domain {d.name!r}: shard {prefix} was written with a {stats['vocab_size']}-token "
                        f"tokenizer, larger than the model's vocab_size {vocab_size}"
                    )
            shard = read_token_shard(prefix)
            n = len(shard)
            train_docs, valid_docs = split_documents(n, split, valid_seed)
            lengths = shard.sequence_lengths
            counts["documents"] += n
            counts["train_documents"] += len(train_docs)
            counts["valid_documents"] += len(valid_docs)
            counts["train_tokens"] += int(lengths[train_docs].sum())
            counts["valid_tokens"] += int(lengths[valid_docs].sum())
            counts.setdefault("part_tokens", []).append(int(lengths.sum()))
            del shard, lengths
        summary[d.name] = counts
        n = counts["documents"]
        if counts["train_documents"] == 0:
            raise ValueError(f"domain {d.name!r}: split {split} leaves no training documents out of {n}")
        if _valid_part(split) and counts["valid_documents"] == 0:
            raise ValueError(
                f"domain {d.name!r}: split {split} leaves no validation documents out of {n}; "
                "use more documents or a larger validation fraction"
            )
    return summary


def build_datasets(
    domains: list[DomainSpec],
    *,
    seq_len: int,
    seed: int,
    train_samples: int,
    eod_id: int,
    vocab_size: int,
    valid_fraction: float | None = None,
    split: str | None = None,
    valid_seed: int = 1234,
    cache_dir: str | Path | None = None,
    trust_cache: bool = False,
) -> MixtureDatasets:
    """Training blend and per-domain validation datasets (see the module docstring).

    `train_samples` rows of seq_len tokens are indexed for training (a
    domain is repeated for more epochs if it is too small). Give the split as
    `valid_fraction` (default 0.02) or a split string; `valid_seed` draws which
    documents of each shard are held out (`split_documents`; `seed` only
    shuffles rows and does not move documents between the parts). megatron caches its
    indices in `cache_dir` (default: an `index_cache` folder next to the
    first shard; launch/pretrain.py puts it in the run folder); they are built
    once by rank 0 and read by the others. A cache file numpy would unpickle is
    refused unless `trust_cache` (data/cache_safety.py). Must
    be called on every rank when torch.distributed has several.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if train_samples < 1:
        raise ValueError(f"train_samples must be >= 1, got {train_samples}")
    if isinstance(valid_seed, bool) or not isinstance(valid_seed, (int, np.integer)) or valid_seed < 0:
        raise ValueError(f"valid_seed must be a non-negative integer, got {valid_seed!r}")
    if not 0 <= eod_id < vocab_size:
        raise ValueError(f"eod_id {eod_id} is outside the vocabulary [0, {vocab_size})")
    if valid_fraction is None and split is None:
        valid_fraction = 0.02
    split = split_string(valid_fraction, split)
    parts = {d.name: d.parts() for d in domains}
    domains = [
        DomainSpec(d.name, parts[d.name][0], float(d.weight), tuple(parts[d.name][1:])) for d in domains
    ]
    summary = _check_domains(domains, vocab_size, split, parts, valid_seed)
    part_tokens = {name: summary[name].pop("part_tokens") for name in summary}
    megatron = import_megatron_datasets()
    BlendedMegatronDatasetBuilder = megatron.blended_megatron_dataset_builder.BlendedMegatronDatasetBuilder
    GPTDataset, GPTDatasetConfig = seeded_split_classes()
    cache = Path(cache_dir) if cache_dir is not None else Path(domains[0].prefix).parent / "index_cache"
    cache.mkdir(parents=True, exist_ok=True)
    ensure_process_group()
    check_index_cache(cache, trust_cache)  # before megatron loads anything with allow_pickle=True
    import torch.distributed

    torch.distributed.barrier()  # every rank checked before rank 0 starts writing new indices

    def config(blend: tuple[list[str], list[float] | None]) -> GPTDatasetConfig:
        return GPTDatasetConfig(
            random_seed=seed,
            sequence_length=seq_len,
            blend=blend,
            split=split,
            path_to_cache=str(cache),
            tokenizer=MegatronTokenizerInfo(eod_id, vocab_size),
            reset_position_ids=False,
            reset_attention_mask=False,
            eod_mask_loss=False,
            create_attention_mask=False,  # the model builds its causal ALiBi mask itself
            drop_last_partial_validation_sequence=False,  # validation covers every token once
            valid_seed=int(valid_seed),
        )

    def built_on_every_rank() -> bool:
        return True

    # Training: a weighted blend (a BlendedDataset even for one domain, so samples always carry
    # dataset_id). Megatron needs an integer size for every split of a weighted blend; the
    # validation blend it builds here is minimal and unused.
    # A domain of several parts: each part gets the domain's weight in proportion to its tokens.
    prefixes = [p for d in domains for p in parts[d.name]]
    weights = [d.weight * t / sum(part_tokens[d.name]) for d in domains for t in part_tokens[d.name]]
    domain_of_part = [i for i, d in enumerate(domains) for _ in parts[d.name]]
    valid_size = 1 if _valid_part(split) else 0
    train, _, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [train_samples, valid_size, 0], built_on_every_rank, config((prefixes, weights))
    ).build()
    if len(prefixes) > len(domains):
        train = _DomainIds(train, domain_of_part)

    # Validation: one unweighted single-prefix build per domain; size None = the whole split once.
    valid = {}
    if _valid_part(split):
        for d in domains:
            _, valid_ds, _ = BlendedMegatronDatasetBuilder(
                GPTDataset, [0, None, 0], built_on_every_rank, config((parts[d.name], None))
            ).build()
            valid[d.name] = valid_ds
    return MixtureDatasets(train, valid, domains, seq_len, split, cache, summary)


def _valid_part(split: str) -> bool:
    return float(split.split(",")[1]) > 0
