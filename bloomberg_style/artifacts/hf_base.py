"""Any local Hugging Face causal LM as an SFT base: LLaMA, Mistral, Qwen2, BLOOM, GLM, GPT-NeoX ...

The folder's own tokenizer comes with it (AutoTokenizer) and, when its tokenizer_config.json
holds one, its own chat template. Our BLOOM with our NumericUnigramTokenizer is not loaded
here: artifacts/load.py keeps loading it exactly as before and sends every other HF folder here.

Remote code (a folder whose config.json has an `auto_map`, e.g. THUDM/chatglm-6b) runs the
folder's Python files, so it is refused unless the caller passes trust_remote_code=True.
Nothing is downloaded: every load is local_files_only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch


class HFBaseError(ValueError):
    """A HF base folder that cannot be used as asked (the message names the folder)."""


@dataclass
class HFBase:
    model: torch.nn.Module
    tokenizer: HFTokenizer
    family: str  # transformers' model_type: "llama", "qwen2", "glm", ...
    path: Path
    remote_code: bool  # the folder's own modelling code was run


class HFTokenizer:
    """A transformers tokenizer with the small interface our SFT code uses.

    encode() adds no special tokens (templates place them), eod_id is the end-of-sequence
    id (the token a reply ends with) and pad_id the id padding uses. A tokenizer without a
    pad token pads with its eos token; padded positions are told apart by the attention
    mask built from row lengths, never by comparing ids with pad_id.
    """

    def __init__(self, hf_tokenizer, where: str = "tokenizer"):
        self.hf = hf_tokenizer
        if hf_tokenizer.eos_token_id is None:
            raise HFBaseError(
                f"{where}: the tokenizer has no eos token; set eos_token in tokenizer_config.json "
                "(replies are trained to end with it and generation stops at it)"
            )
        if hf_tokenizer.pad_token_id is None:
            hf_tokenizer.pad_token = hf_tokenizer.eos_token  # documented choice: pad = eos
        self.pad_id: int = int(hf_tokenizer.pad_token_id)

    @property
    def eod_id(self) -> int:
        return int(self.hf.eos_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def chat_template(self) -> str | None:
        return getattr(self.hf, "chat_template", None) or None

    def encode(self, text: str) -> list[int]:
        return list(self.hf.encode(text, add_special_tokens=False))

    def decode(self, ids) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def save(self, directory: str | Path) -> Path:
        self.hf.save_pretrained(str(directory))
        return Path(directory)


def read_config(path: str | Path) -> dict:
    file = Path(path) / "config.json"
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HFBaseError(f"{file}: cannot read the model config ({exc})") from None


def is_our_bloom(path: str | Path) -> bool:
    """Our BloomForCausalLM folder (a stage output, export_hf): model_type bloom and, if the
    folder has a tokenizer, our Unigram one. A foreign BLOOM (BPE tokenizer) is a HF base."""
    path = Path(path)
    if read_config(path).get("model_type") != "bloom":
        return False
    tok = path / "tokenizer.json"
    if not tok.is_file():
        return True
    try:
        model_type = json.loads(tok.read_text(encoding="utf-8"))["model"]["type"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return False
    return model_type == "Unigram"


def needs_remote_code(path: str | Path) -> bool:
    return bool(read_config(path).get("auto_map"))


def check_remote_code(path: str | Path, trust_remote_code: bool) -> None:
    if needs_remote_code(path) and not trust_remote_code:
        raise HFBaseError(
            f"{path}: this model needs its own Python code (config.json has an auto_map), which "
            "runs when it loads; set trust_remote_code: true in the recipe (or pass "
            "--trust-remote-code) only if you trust that folder's code"
        )


def load_hf_tokenizer(path: str | Path, trust_remote_code: bool = False) -> HFTokenizer:
    from transformers import AutoTokenizer

    path = Path(path)
    try:
        hf = AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise HFBaseError(f"{path}: cannot load its tokenizer with AutoTokenizer ({exc})") from None
    return HFTokenizer(hf, where=str(path))


def load_hf_base(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    load_in_4bit: bool = False,
) -> HFBase:
    """Model (eval mode) and tokenizer of a local HF causal-LM folder.

    load_in_4bit loads the base quantised to 4-bit NF4 for QLoRA (CUDA and bitsandbytes
    only; checked before anything is loaded).
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise HFBaseError(f"{path}: not a Hugging Face model folder (no config.json)")
    check_remote_code(path, trust_remote_code)
    kwargs: dict = {}
    if load_in_4bit:
        from .quantize import check_qlora_supported, qlora_config

        check_qlora_supported(str(path))
        kwargs.update(quantization_config=qlora_config(dtype), device_map={"": 0})
    tokenizer = load_hf_tokenizer(path, trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(path),
            dtype=dtype,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise HFBaseError(f"{path}: AutoModelForCausalLM cannot load it ({exc})") from None
    family = str(getattr(model.config, "model_type", "") or "unknown")
    return HFBase(model.eval(), tokenizer, family, path, remote_code=needs_remote_code(path))


def save_hf_model(model: torch.nn.Module, tokenizer: HFTokenizer, out_dir: str | Path) -> Path:
    """A HF folder (safetensors) that load_hf_base reads back, tokenizer included."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save(out)
    return out


class HFCausalLM(torch.nn.Module):
    """A HF causal LM behind our model's call: model(tokens) -> logits [batch, seq, vocab];
    model(tokens, labels, loss_mask) -> mean loss over loss_mask.

    Labels are already shifted (collate.row_arrays: labels[t] is the token after t), so the
    loss is taken here, not by transformers (which would shift again). Rows are right-padded,
    which is exact for a causal model: no real token attends to a later pad.
    """

    def __init__(self, hf_model: torch.nn.Module):
        super().__init__()
        self.hf = hf_model

    @property
    def config(self):
        """transformers' config (vocab_size, to_dict() ...) of the wrapped model."""
        return self.hf.config

    def set_activation_checkpointing(self, enabled: bool) -> None:
        if enabled:
            self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        elif getattr(self.hf, "is_gradient_checkpointing", False):
            self.hf.gradient_checkpointing_disable()

    def forward(
        self,
        tokens: torch.Tensor,
        labels: torch.Tensor | None = None,
        loss_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = self.hf(input_ids=tokens, attention_mask=attention_mask, use_cache=False).logits
        if labels is None:
            return logits
        losses = torch.nn.functional.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none"
        )
        if loss_mask is None:
            loss_mask = (labels != -100).float()
        mask = loss_mask.flatten().to(losses.dtype)
        return (losses * mask).sum() / mask.sum().clamp(min=1.0)


def hf_model_of(model: torch.nn.Module) -> torch.nn.Module | None:
    """The transformers (or peft) model that can `generate`, or None for our BLOOM."""
    if isinstance(model, HFCausalLM):
        return model.hf
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        return None
    if isinstance(model, PreTrainedModel):
        return model
    base = getattr(model, "base_model", None)  # a peft wrapper
    if base is not None and isinstance(getattr(base, "model", None), PreTrainedModel):
        return model
    return None


def shape_config(hf_config) -> dict:
    """A HF config in the keys our trainer's checkpoint metadata and FLOP count read
    (vocab_size, hidden_size, num_layers, num_heads, dropouts, seq_length)."""
    get = lambda *names, default=0: next(  # noqa: E731
        (getattr(hf_config, n) for n in names if getattr(hf_config, n, None) is not None), default
    )
    return {
        "model_type": hf_config.model_type,
        "vocab_size": int(get("vocab_size")),
        "hidden_size": int(get("hidden_size", "n_embd", "d_model")),
        "num_layers": int(get("num_hidden_layers", "n_layer", "num_layers")),
        "num_heads": int(get("num_attention_heads", "n_head")),
        "seq_length": int(get("max_position_embeddings", "seq_length", "n_positions")),
        "attention_dropout": float(get("attention_dropout", "attn_pdrop", default=0.0)),
        "hidden_dropout": float(get("hidden_dropout", "resid_pdrop", default=0.0)),
    }
