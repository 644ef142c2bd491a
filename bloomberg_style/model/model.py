"""The BLOOM decoder as BloombergGPT trained it, in one file.

token ids -> word embedding -> LayerNorm -> L x [pre-LN attention with ALiBi,
pre-LN GELU MLP] -> final LayerNorm -> tied LM head. Parameter names and the
fused QKV layout follow Hugging Face BLOOM, so export is a rename at most.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .alibi import alibi_bias, alibi_slopes
from .config import ModelConfig
from .init import init_weights

IGNORE_INDEX = -100


class Attention(nn.Module):
    """Causal multi-head self-attention, ALiBi-biased, softmax in FP32."""

    def __init__(self, config: ModelConfig, layer_number: int) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.layer_number = layer_number  # 1-based, as query-key layer scaling counts it
        self.impl = config.attention_impl
        self.query_key_layer_scaling = config.query_key_layer_scaling
        # Fused QKV, HF BLOOM layout: output rows are [head, (q|k|v), head_dim].
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = nn.Dropout(config.attention_dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x [batch, seq, hidden]; bias [heads, seq, seq] (ALiBi + causal -inf)."""
        batch, seq, hidden = x.shape
        qkv = self.query_key_value(x).view(batch, seq, self.num_heads, 3, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(dim=3))  # each [batch, heads, seq, head_dim]

        if self.impl == "sdpa":
            # Fused kernel; it accumulates the softmax in FP32 internally for bf16/fp16 inputs.
            dropout_p = self.attention_dropout.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p)
        else:
            # Query-key layer scaling: divide by the layer number in the compute dtype (keeps deep
            # layers' scores in fp16 range), multiply it back in FP32 where the softmax runs.
            coeff = float(self.layer_number) if self.query_key_layer_scaling else 1.0
            scores = (q * (1.0 / (math.sqrt(self.head_dim) * coeff))) @ k.transpose(-2, -1)
            scores = scores.float() * coeff + bias.float()  # [batch, heads, seq, seq], FP32
            probs = F.softmax(scores, dim=-1).to(v.dtype)
            probs = self.attention_dropout(probs)
            y = probs @ v  # [batch, heads, seq, head_dim]

        y = y.transpose(1, 2).reshape(batch, seq, hidden)
        return self.dense(y)


class MLP(nn.Module):
    """hidden -> 4*hidden -> GELU (tanh form) -> hidden."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense_h_to_4h = nn.Linear(config.hidden_size, config.ffn_hidden_size)
        self.dense_4h_to_h = nn.Linear(config.ffn_hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LN transformer layer: x + drop(attn(LN(x))), then x + drop(mlp(LN(x)))."""

    def __init__(self, config: ModelConfig, layer_number: int) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attention = Attention(config, layer_number)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.hidden_dropout(self.self_attention(self.input_layernorm(x), bias))
        x = x + self.hidden_dropout(self.mlp(self.post_attention_layernorm(x)))
        return x


class BloomForCausalLM(nn.Module):
    """BLOOM causal LM: ALiBi, embedding LayerNorm, pre-LN blocks, tied output embedding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = ModelConfig.from_dict(config.to_dict())  # own copy: set_dropout edits it
        c = self.config
        self.transformer = nn.ModuleDict(
            dict(
                word_embeddings=nn.Embedding(c.vocab_size, c.hidden_size),
                word_embeddings_layernorm=nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps),
                h=nn.ModuleList([Block(c, layer_number=i + 1) for i in range(c.num_layers)]),
                ln_f=nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps),
            )
        )
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.word_embeddings.weight  # tied, no output bias
        # Swap in e.g. deepspeed.checkpointing.checkpoint; called as fn(block, x, bias).
        self.checkpoint_fn: Callable[..., torch.Tensor] = partial(checkpoint, use_reentrant=False)
        self._bias_cache: tuple[tuple, torch.Tensor] | None = None
        init_weights(self)

    # ---- forward -------------------------------------------------------------------------

    def alibi(self, seq_len: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """ALiBi + causal bias [heads, seq, seq], shared by all layers and cached per shape."""
        key = (seq_len, dtype, device)
        if self._bias_cache is None or self._bias_cache[0] != key:
            slopes = alibi_slopes(self.config.num_heads)
            self._bias_cache = (key, alibi_bias(slopes, seq_len, dtype=dtype, device=device))
        return self._bias_cache[1]

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        loss_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [batch, seq, vocab]; or, given labels, the mean FP32 cross-entropy.

        labels are already shifted: labels[:, t] is the target of position t; -100 is
        ignored. loss_mask (optional, same shape) weights tokens; 0 drops them.
        """
        self._check_inputs(input_ids, labels, loss_mask)
        x = self.transformer.word_embeddings(input_ids)
        x = self.transformer.word_embeddings_layernorm(x)
        # Eager adds the bias in FP32; sdpa wants it in the compute dtype.
        bias_dtype = torch.float32 if self.config.attention_impl == "eager" else x.dtype
        bias = self.alibi(input_ids.shape[1], bias_dtype, x.device)
        recompute = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.transformer.h:
            x = self.checkpoint_fn(block, x, bias) if recompute else block(x, bias)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        if labels is None:
            return logits
        return self.loss(logits, labels, loss_mask)

    @staticmethod
    def loss(
        logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean cross-entropy in FP32 over tokens with label != -100 and loss_mask != 0."""
        per_token = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
        )
        weight = (labels.flatten() != IGNORE_INDEX).float()
        if loss_mask is not None:
            weight = weight * loss_mask.flatten().float()
        # An all-masked batch gives 0 (with a graph), not NaN.
        return (per_token * weight).sum() / weight.sum().clamp(min=1.0)

    def _check_inputs(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None, loss_mask: torch.Tensor | None
    ) -> None:
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.long, torch.int32):
            raise ValueError(
                f"input_ids must be an integer tensor [batch, seq], got {input_ids.dtype} "
                f"of shape {tuple(input_ids.shape)}"
            )
        if input_ids.device.type == "cpu" and input_ids.numel() > 0:  # free check; on GPU it would sync
            lo, hi = int(input_ids.min()), int(input_ids.max())
            if lo < 0 or hi >= self.config.vocab_size:
                raise ValueError(
                    f"input_ids must be in [0, vocab_size={self.config.vocab_size}), got values in [{lo}, {hi}]"
                )
        for name, t in (("labels", labels), ("loss_mask", loss_mask)):
            if t is not None and t.shape != input_ids.shape:
                raise ValueError(
                    f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(t.shape)}"
                )

    # ---- run-time controls ---------------------------------------------------------------

    def set_dropout(self, attention: float | None = None, hidden: float | None = None) -> None:
        """Change dropout rates mid-run (the paper switched to 0.1 at step 129,900)."""
        for name, rate in (("attention", attention), ("hidden", hidden)):
            if rate is not None and (isinstance(rate, bool) or not 0.0 <= float(rate) < 1.0):
                raise ValueError(f"{name} dropout must be in [0, 1), got {rate!r}")
        for module in self.modules():
            if isinstance(module, Attention) and attention is not None:
                module.attention_dropout.p = float(attention)
            if isinstance(module, Block) and hidden is not None:
                module.hidden_dropout.p = float(hidden)
        if attention is not None:
            self.config.attention_dropout = float(attention)
        if hidden is not None:
            self.config.hidden_dropout = float(hidden)

    def set_activation_checkpointing(self, enabled: bool) -> None:
        self.config.activation_checkpointing = bool(enabled)

    def num_parameters(self) -> int:
        """Unique parameters (the tied head counted once); full sizes under ZeRO-3 too."""
        return sum(getattr(p, "ds_numel", p.numel()) for p in self.parameters())

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> BloomForCausalLM:
        """Load a Hugging Face BLOOM folder (config.json + safetensors or .bin weights)."""
        from ..export.hf import load_hf_folder

        return load_hf_folder(path, dtype=dtype)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay every weight matrix (embedding/LM head included, as Megatron
    and the paper do), no decay on biases and LayerNorm weights (all 1-D tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():  # unique parameters: the tied embedding appears once
        if not p.requires_grad:
            continue
        shape = getattr(p, "ds_shape", p.shape)  # ZeRO-3 partitions leave p.shape empty
        (decay if len(shape) >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
