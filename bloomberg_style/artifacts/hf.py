"""Hugging Face BLOOM format, in and out.

Our parameter names and fused QKV layout are HF BLOOM's ([heads, q|k|v,
head_dim] rows), so the bridge is a rename at most: drop wrapper prefixes,
add or drop the tied `lm_head.weight`, accept checkpoints saved from a bare
`BloomModel` (no `transformer.` prefix). Every key and shape is checked.
`transformers` is needed only for `to_hf_config`/`save_hf_folder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from bloomberg_style.model.config import ModelConfig
from bloomberg_style.model.model import BloomForCausalLM

from .hf_shards import DEFAULT_MAX_SHARD_BYTES, remove_stale_weights, write_safetensors_shards

LM_HEAD = "lm_head.weight"
EMBEDDING = "transformer.word_embeddings.weight"
# Prefixes that wrappers add to state-dict keys: DDP/DeepSpeed engines and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _require_transformers():
    try:
        import transformers
    except ImportError as err:  # a dev extra, not an install requirement
        raise ImportError("Hugging Face export needs transformers: pip install transformers") from err
    return transformers


def to_hf_config(cfg: ModelConfig, **extra: Any):
    """transformers.BloomConfig of the same architecture; extra kwargs (eos_token_id, ...) pass through.

    Token ids default to None rather than BloomConfig's 1/2 (BLOOM's tokenizer, not ours):
    pass eos_token_id=tokenizer.eod_id when exporting a trained model.
    """
    transformers = _require_transformers()
    extra = {"bos_token_id": None, "eos_token_id": None, **extra}
    return transformers.BloomConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        n_layer=cfg.num_layers,
        n_head=cfg.num_heads,
        layer_norm_epsilon=cfg.layer_norm_eps,
        initializer_range=cfg.initializer_std,
        hidden_dropout=cfg.hidden_dropout,
        attention_dropout=cfg.attention_dropout,
        apply_residual_connection_post_layernorm=False,
        pretraining_tp=1,
        slow_but_exact=False,
        tie_word_embeddings=True,
        architectures=["BloomForCausalLM"],
        **extra,
    )


def config_from_hf(bloom_config: Any, **overrides: Any) -> ModelConfig:
    """ModelConfig from a transformers.BloomConfig or its config.json dict."""
    c = bloom_config.to_dict() if hasattr(bloom_config, "to_dict") else dict(bloom_config)
    if c.get("model_type", "bloom") != "bloom":
        raise ValueError(f"not a BLOOM config: model_type={c.get('model_type')!r}")
    if c.get("apply_residual_connection_post_layernorm", False):
        raise ValueError("apply_residual_connection_post_layernorm=True is not supported (pre-LN only)")
    if not c.get("tie_word_embeddings", True):
        raise ValueError("tie_word_embeddings=False is not supported (the LM head is the embedding)")

    def pick(*names: str, default: Any = None) -> Any:
        for n in names:
            if c.get(n) is not None:
                return c[n]
        if default is None:
            raise ValueError(f"BLOOM config lacks {names[0]!r}")
        return default

    fields = dict(
        vocab_size=pick("vocab_size"),
        hidden_size=pick("hidden_size", "n_embed"),
        num_layers=pick("n_layer", "num_hidden_layers"),
        num_heads=pick("n_head", "num_attention_heads"),
        max_seq_len=pick("seq_length", "max_position_embeddings", default=2048),
        layer_norm_eps=pick("layer_norm_epsilon", default=1e-5),
        init_std=pick("initializer_range", default=0.02),
        hidden_dropout=float(pick("hidden_dropout", default=0.0)),
        attention_dropout=float(pick("attention_dropout", default=0.0)),
    )
    return ModelConfig.from_dict({**fields, **overrides})


def strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every key of the HF/our state dict (tied head included) with its shape."""
    d, f, v = cfg.hidden_size, cfg.ffn_hidden_size, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {EMBEDDING: (v, d), LM_HEAD: (v, d)}
    for ln in ("transformer.word_embeddings_layernorm", "transformer.ln_f"):
        shapes.update({f"{ln}.weight": (d,), f"{ln}.bias": (d,)})
    for i in range(cfg.num_layers):
        p = f"transformer.h.{i}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            shapes.update({f"{p}{ln}.weight": (d,), f"{p}{ln}.bias": (d,)})
        for name, (n_out, n_in) in {
            "self_attention.query_key_value": (3 * d, d),
            "self_attention.dense": (d, d),
            "mlp.dense_h_to_4h": (f, d),
            "mlp.dense_4h_to_h": (d, f),
        }.items():
            shapes.update({f"{p}{name}.weight": (n_out, n_in), f"{p}{name}.bias": (n_out,)})
    return shapes


def _check(state: dict[str, torch.Tensor], cfg: ModelConfig, what: str) -> None:
    expected = _expected_shapes(cfg)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{what}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    for k, shape in expected.items():
        if tuple(state[k].shape) != shape:
            raise ValueError(f"{what}: {k} has shape {tuple(state[k].shape)}, config expects {shape}")


def to_hf_state_dict(
    model_or_state_dict: BloomForCausalLM | dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """HF BloomForCausalLM state dict (tensors shared, not copied; lm_head.weight included)."""
    if isinstance(model_or_state_dict, BloomForCausalLM):
        state, cfg = model_or_state_dict.state_dict(), model_or_state_dict.config
    else:
        state, cfg = dict(model_or_state_dict), None
    out = {strip_wrappers(k): v for k, v in state.items()}
    out.setdefault(LM_HEAD, out.get(EMBEDDING))
    if out[LM_HEAD] is None:
        raise ValueError(f"state dict has neither {EMBEDDING!r} nor {LM_HEAD!r}")
    if cfg is not None:
        _check(out, cfg, "to_hf_state_dict")
    return out


def our_key(hf_key: str) -> str:
    """Our name for a HF BLOOM state-dict key: wrappers stripped, `transformer.` added to the
    keys of a bare BloomModel (e.g. bigscience/bloom-*)."""
    key = strip_wrappers(hf_key)
    return key if key == LM_HEAD or key.startswith("transformer.") else "transformer." + key


def from_hf_state_dict(state_dict: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our state dict from a HF BLOOM one (BloomForCausalLM or bare BloomModel keys), checked against cfg."""
    out = {our_key(key): value for key, value in state_dict.items()}
    if EMBEDDING not in out:
        raise ValueError(f"HF state dict lacks the word embedding ({EMBEDDING!r})")
    head = out.setdefault(LM_HEAD, out[EMBEDDING])
    if head is not out[EMBEDDING] and not torch.equal(head, out[EMBEDDING]):
        raise ValueError("lm_head.weight differs from the word embedding: untied heads are not supported")
    _check(out, cfg, "from_hf_state_dict")
    return out


def hf_weight_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensors a HF folder of this config stores, in order (the tied head is not stored)."""
    shapes = _expected_shapes(cfg)
    shapes.pop(LM_HEAD)  # tied: safetensors refuses shared storage, transformers re-ties it
    return shapes


def write_hf_config(cfg: ModelConfig, out: Path, dtype: torch.dtype, **config_extra: Any) -> None:
    """config.json for transformers, naming the dtype the weights are saved in."""
    transformers = _require_transformers()
    hf_config = to_hf_config(cfg, **config_extra)
    saved_dtype = str(dtype).removeprefix("torch.")
    major = int(transformers.__version__.split(".")[0])  # transformers 5 renamed torch_dtype to dtype
    setattr(hf_config, "dtype" if major >= 5 else "torch_dtype", saved_dtype)
    hf_config.save_pretrained(out)


def save_hf_folder(
    model: BloomForCausalLM,
    out_dir: str | Path,
    dtype: torch.dtype | None = None,
    metadata: dict[str, str] | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    **config_extra,
) -> Path:
    """Write config.json + safetensors weights loadable by transformers.AutoModelForCausalLM.

    One model.safetensors, or shards with an index past max_shard_bytes (hf_shards.py).
    metadata (str -> str) goes into the safetensors header, e.g. the source checkpoint.
    """
    _require_transformers()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in to_hf_state_dict(model).items()}
    dtype = dtype or next(iter(state.values())).dtype
    remove_stale_weights(out)
    write_safetensors_shards(out, hf_weight_shapes(model.config), lambda: state, dtype, max_shard_bytes,
                             metadata, progress=False)  # fmt: skip
    write_hf_config(model.config, out, dtype, **config_extra)
    return out


def _safetensors_keys(folder: Path) -> dict[str, Path] | None:
    """HF name -> the safetensors file holding it (a shard index or one model.safetensors), or
    None when the folder has no safetensors weights."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {key: folder / file for key, file in weight_map.items()}
    single = folder / "model.safetensors"
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), framework="pt") as f:
            return dict.fromkeys(f.keys(), single)
    return None


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a HF folder: safetensors (index or single file), else pytorch_model.bin
    (sharded or not) through torch's weights-only loader."""
    from safetensors.torch import load_file

    def load_bin(file: Path) -> dict[str, torch.Tensor]:
        return torch.load(file, map_location="cpu", weights_only=True)

    files = _safetensors_keys(folder)
    bin_index = folder / "pytorch_model.bin.index.json"
    if files is not None:
        shards, loader = sorted(set(files.values())), lambda file: load_file(str(file))
    elif bin_index.is_file():
        weight_map = json.loads(bin_index.read_text(encoding="utf-8"))["weight_map"]
        shards, loader = sorted({folder / name for name in weight_map.values()}), load_bin
    elif (folder / "pytorch_model.bin").is_file():
        shards, loader = [folder / "pytorch_model.bin"], load_bin
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors, pytorch_model.bin or shard index found")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(loader(shard))
    return state


class SafetensorsTensor:
    """One tensor of a safetensors file, read only when `.contiguous()` asks for it.

    The file is opened for that one read, so nothing stays mapped: filling a partitioned
    model tensor by tensor from a 50B folder holds one tensor at a time.
    """

    def __init__(self, file: Path, key: str):
        from safetensors import safe_open

        self.file, self.key = file, key
        with safe_open(str(file), framework="pt") as f:
            self.shape = torch.Size(f.get_slice(key).get_shape())

    def contiguous(self) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self.file), framework="pt") as f:
            return f.get_tensor(self.key)


def open_hf_weights(path: str | Path) -> dict[str, Any]:
    """Our names -> tensors of a HF BLOOM folder, read lazily from safetensors (tied head
    included); .bin folders are read whole (weights_only)."""
    folder = Path(path)
    files = _safetensors_keys(folder)
    if files is not None:
        raw: dict[str, Any] = {key: SafetensorsTensor(file, key) for key, file in files.items()}
    else:
        raw = _read_weights(folder)
    out = {our_key(key): value for key, value in raw.items()}
    out.setdefault(LM_HEAD, out.get(EMBEDDING))
    return out


def load_hf_folder(path: str | Path, dtype: torch.dtype | None = None) -> BloomForCausalLM:
    """Our model (eval mode) from a HF BLOOM folder; no transformers needed, nothing unpickled."""
    folder = Path(path)
    config_file = folder / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{folder}: no config.json (not a Hugging Face model folder)")
    cfg = config_from_hf(json.loads(config_file.read_text()))
    state = from_hf_state_dict(_read_weights(folder), cfg)
    with torch.device("meta"):
        model = BloomForCausalLM(cfg)
    model.load_state_dict(state, assign=True)
    model.lm_head.weight = model.transformer.word_embeddings.weight  # assign=True replaced the tie
    if dtype is not None:
        model.to(dtype)
    return model.eval()
