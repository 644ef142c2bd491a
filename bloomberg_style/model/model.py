"""The BLOOM decoder as BloombergGPT trained it (attention kernels in attention.py).

token ids -> word embedding -> LayerNorm -> L x [pre-LN attention with ALiBi,
pre-LN GELU MLP] -> final LayerNorm -> tied LM head. Parameter names and the
fused QKV layout follow Hugging Face BLOOM, so export is a rename at most.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .alibi import alibi_bias, alibi_slopes
from .attention import (
    AttentionChoice,
    causal_block_mask,
    choose,
    decoding_impl,
    eager_attention,
    flash_attention,
    flex_attention,
    resolve_impl,
    sdpa_attention,
)
from .config import ModelConfig
from .init import init_weights
from .kv_cache import KVCache
from .loss import cross_entropy, lm_head_cross_entropy

IGNORE_INDEX = -100


class Attention(nn.Module):
    """Causal multi-head self-attention with ALiBi; the kernel is chosen per forward (attention.py)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.query_key_layer_scaling = config.query_key_layer_scaling
        # Fused QKV, HF BLOOM layout: output rows are [head, (q|k|v), head_dim].
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = nn.Dropout(config.attention_dropout)

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor,
        impl: str,
        layer_number: int,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """x [batch, seq, hidden]; bias as `BloomForCausalLM.attention_bias` made it for `impl`;
        layer_number (1-based) for query-key layer scaling. With a cache, this forward's keys
        and values are stored and the queries attend to the cached ones too."""
        batch, seq, hidden = x.shape
        qkv = self.query_key_value(x).view(batch, seq, self.num_heads, 3, self.head_dim)
        dropout_p = self.attention_dropout.p if self.training else 0.0
        if impl == "flash":
            q, k, v = qkv.unbind(dim=3)  # each [batch, seq, heads, head_dim]
            if cache is not None:  # only a cache's first forward runs flash (decoding_impl)
                cache.update(layer_number - 1, k.transpose(1, 2), v.transpose(1, 2))
            y = flash_attention(q, k, v, bias, dropout_p)
        else:
            q, k, v = (t.transpose(1, 2) for t in qkv.unbind(dim=3))  # each [batch, heads, seq, head_dim]
            if cache is not None:
                k, v = cache.update(layer_number - 1, k, v)  # [batch, heads, cached + seq, head_dim]
            if impl == "sdpa":
                y = sdpa_attention(q, k, v, bias, dropout_p)
            elif impl == "flex":
                slopes, block_mask = bias
                y = flex_attention(q, k, v, slopes, block_mask)
            else:
                layer = layer_number if self.query_key_layer_scaling else None
                y = eager_attention(q, k, v, bias, dropout_p, layer)
            y = y.transpose(1, 2)
        return self.dense(y.reshape(batch, seq, hidden))


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

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attention = Attention(config)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor,
        impl: str,
        layer_number: int,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        # layer_number is an argument, not a module constant, so torch.compile traces one graph for all layers.
        attention = self.self_attention(self.input_layernorm(x), bias, impl, layer_number, cache)
        x = x + self.hidden_dropout(attention)
        x = x + self.hidden_dropout(self.mlp(self.post_attention_layernorm(x)))
        return x


class LMHead(nn.Linear):
    """The tied output projection; given labels, it returns the chunked FP32 cross-entropy instead
    of the logits (loss.py), so no [tokens, vocab] tensor exists in training. The loss runs inside
    this module's forward so that ZeRO-3's hooks have gathered the weight when it is used."""

    def forward(
        self,
        hidden: torch.Tensor,
        labels: torch.Tensor | None = None,
        token_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if labels is None:
            return super().forward(hidden)
        return lm_head_cross_entropy(hidden, self.weight, labels, token_weight)


class BloomForCausalLM(nn.Module):
    """BLOOM causal LM: ALiBi, embedding LayerNorm, pre-LN blocks, tied output embedding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = ModelConfig.from_dict(config.to_dict())  # own copy: set_dropout edits it
        c = self.config
        self.transformer = nn.ModuleDict(
            dict(
                # _weight skips nn.Embedding's own N(0, 1) init (init_weights sets the paper's), which
                # on the meta device takes seconds at 131,072 x 7,680.
                word_embeddings=nn.Embedding(
                    c.vocab_size, c.hidden_size, _weight=torch.empty(c.vocab_size, c.hidden_size)
                ),
                word_embeddings_layernorm=nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps),
                h=nn.ModuleList([Block(c) for _ in range(c.num_layers)]),
                ln_f=nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps),
            )
        )
        self.lm_head = LMHead(c.hidden_size, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.word_embeddings.weight  # tied, no output bias
        self._bias_cache: dict[tuple, torch.Tensor] = {}
        init_weights(self)
        if c.compile_blocks:
            for block in self.transformer.h:
                block.compile(backend=c.compile_backend)  # in place: parameter names do not change

    # ---- forward -------------------------------------------------------------------------

    def attention_bias(
        self, impl: str, seq_len: int, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor | tuple:
        """What `impl` needs, shared by all layers and cached: the slopes [heads] (flash), the slopes
        and the causal BlockMask (flex), or the ALiBi + causal bias [heads, seq, seq] in FP32 (eager)
        or the compute dtype (sdpa)."""
        key = (impl, seq_len if impl != "flash" else 0, dtype, device)
        if key not in self._bias_cache:
            if len(self._bias_cache) >= 4:  # shapes change rarely (eval, generation): keep it small
                self._bias_cache.clear()
            slopes = alibi_slopes(self.config.num_heads).to(device)
            if impl == "flash":
                self._bias_cache[key] = slopes  # flash-attn wants FP32 slopes
            elif impl == "flex":
                self._bias_cache[key] = (slopes, causal_block_mask(seq_len, device))
            else:
                bias_dtype = torch.float32 if impl == "eager" else dtype
                self._bias_cache[key] = alibi_bias(slopes, seq_len, dtype=bias_dtype, device=device)
        return self._bias_cache[key]

    def decoding_bias(
        self,
        impl: str,
        seq_len: int,
        past_len: int,
        attention_mask: torch.Tensor | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor:
        """The eager/sdpa bias for seq_len new queries after past_len cached positions:
        ALiBi + causal [heads, seq, past + seq]; with an attention_mask [batch, past + seq]
        (0 = padding) [batch, heads, seq, past + seq], where real queries do not see padding
        keys. Padding queries keep their causal keys, so no row is all -inf; nothing reads them."""
        slopes = alibi_slopes(self.config.num_heads)
        bias = alibi_bias(slopes, seq_len, dtype=torch.float32, device=device, past_len=past_len)
        if attention_mask is not None:
            keep = attention_mask.to(device=device, dtype=torch.bool)
            hide = ~keep[:, None, None, :] & keep[:, None, past_len:, None]  # [batch, 1, seq, keys]
            bias = bias.masked_fill(hide, float("-inf"))
        return bias.to(torch.float32 if impl == "eager" else dtype)

    def attention_choice(
        self, device: torch.device | str, dtype: torch.dtype | None = None
    ) -> AttentionChoice:
        """Which attention path a forward on `device` in `dtype` (default: the weights') runs, and why."""
        dtype = dtype or self.transformer.word_embeddings.weight.dtype
        dropout_p = self.config.attention_dropout if self.training else 0.0
        return choose(
            self.config.attention_impl, torch.device(device), dtype, dropout_p, self.config.head_dim
        )

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Final-LayerNorm output [batch, seq, hidden], before the LM head.

        With a cache, input_ids are the positions after the cached ones; their keys and values
        are added to it. attention_mask [batch, cached + seq] marks padding with 0 (left-padded
        batched generation)."""
        x = self.transformer.word_embeddings(input_ids)
        x = self.transformer.word_embeddings_layernorm(x)
        dropout_p = self.config.attention_dropout if self.training else 0.0
        impl = resolve_impl(self.config.attention_impl, x.device, x.dtype, dropout_p, self.config.head_dim)
        seq, past = input_ids.shape[1], cache.length if cache is not None else 0
        if past or attention_mask is not None:  # not square-causal-unpadded: eager or sdpa
            impl = decoding_impl(impl, x.device)
            bias = self.decoding_bias(impl, seq, past, attention_mask, x.dtype, x.device)
        else:
            bias = self.attention_bias(impl, seq, x.dtype, x.device)
        recompute = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.transformer.h):
            layer = i + 1  # 1-based, as query-key layer scaling counts
            if recompute:
                x = self._checkpointed(block, x, bias, impl, layer)
            else:
                x = block(x, bias, impl, layer, cache)
        if cache is not None:
            cache.advance(seq)
        return self.transformer.ln_f(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        loss_mask: torch.Tensor | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Logits [batch, seq, vocab]; or, given labels, the mean FP32 cross-entropy.

        labels are already shifted: labels[:, t] is the target of position t; -100 is
        ignored. loss_mask (optional, same shape) weights tokens; 0 drops them.
        Generation: a KVCache keeps keys and values across calls (then input_ids are the new
        positions only); attention_mask [batch, cached + seq] marks left padding with 0;
        logits_to_keep=N returns the last N positions' logits only (0 = all), as in transformers.
        """
        self._check_inputs(input_ids, labels, loss_mask, attention_mask, cache)
        hidden = self.hidden_states(input_ids, attention_mask, cache)
        if labels is None:
            return self.lm_head(hidden[:, -logits_to_keep:] if logits_to_keep else hidden)
        labels, weight = self.token_weights(labels, loss_mask)
        return self.lm_head(hidden.flatten(0, 1), labels, weight)  # chunked: never [tokens, vocab]

    def _checkpointed(self, block: Block, *args) -> torch.Tensor:
        """Run `block(*args)` keeping only its inputs; the backward pass recomputes the rest."""
        if self.config.activation_checkpointing_impl == "deepspeed":
            import deepspeed

            return deepspeed.checkpointing.checkpoint(block, *args)
        return checkpoint(block, *args, use_reentrant=False)

    @staticmethod
    def token_weights(
        labels: torch.Tensor, loss_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels [N] with -100 -> 0, FP32 weights [N] summing to 1 over tokens with label != -100
        and loss_mask != 0): the mean loss becomes a plain weighted sum; all-masked gives 0, not NaN."""
        labels = labels.flatten()
        weight = (labels != IGNORE_INDEX).float()
        if loss_mask is not None:
            weight = weight * loss_mask.flatten().float()
        return labels.clamp(min=0), weight / weight.sum().clamp(min=1.0)

    @staticmethod
    def loss(
        logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean FP32 cross-entropy of given logits [batch, seq, vocab] (forward's chunked loss equals it)."""
        labels, weight = BloomForCausalLM.token_weights(labels, loss_mask)
        return cross_entropy(logits.flatten(0, 1), labels, weight)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Greedy decoding: append argmax tokens; rows that emitted eos continue with pad (default eos).

        With the KV cache each step reads only its new token; use_cache=False re-reads the whole
        sequence every step (the reference the cache is tested against). Prompts of unequal
        length: model/generate.py's greedy_generate (left padding). For serving, export the
        folder to transformers or a serving stack.
        """
        was_training = self.training
        self.eval()
        pad = eos_token_id if pad_token_id is None else pad_token_id
        cache = KVCache(capacity=input_ids.shape[1] + max_new_tokens) if use_cache else None
        ids, new = input_ids, input_ids  # new: what the next forward reads
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        for _ in range(max_new_tokens):
            hidden = self.hidden_states(new if use_cache else ids, cache=cache)
            next_id = self.lm_head(hidden[:, -1]).argmax(dim=-1)
            if eos_token_id is not None:
                next_id = torch.where(done, torch.full_like(next_id, pad), next_id)
                done |= next_id == eos_token_id
            ids, new = torch.cat([ids, next_id[:, None]], dim=1), next_id[:, None]
            if eos_token_id is not None and bool(done.all()):
                break
        self.train(was_training)
        return ids

    def _check_inputs(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None,
        loss_mask: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
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
        if attention_mask is not None:
            want = (input_ids.shape[0], input_ids.shape[1] + (cache.length if cache is not None else 0))
            if tuple(attention_mask.shape) != want:
                raise ValueError(
                    f"attention_mask must be [batch, cached + new positions] = {want}, "
                    f"got {tuple(attention_mask.shape)}"
                )
        if labels is not None and labels.device.type == "cpu" and labels.numel() > 0:
            bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= self.config.vocab_size))
            if bool(bad.any()):
                raise ValueError(
                    f"labels must be in [0, vocab_size={self.config.vocab_size}) or {IGNORE_INDEX}, "
                    f"got {int(labels[bad][0])}"
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
