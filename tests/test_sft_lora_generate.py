"""LoRA trains only adapters and merges exactly; sampling, streaming and answer scoring."""

from __future__ import annotations

import shutil

import pytest
import torch

from bloomberg_style.model import BloomForCausalLM, ModelConfig
from bloomberg_style.sft.evaluate import answer_tokens, bertscore, token_prf
from bloomberg_style.sft.generate import SamplingConfig, TextStream, filter_logits, generate_ids, next_token
from bloomberg_style.sft.lora import apply_lora, load_adapter, merge, save_adapter, trainable_parameters
from bloomberg_style.sft.recipe import LORA_TARGETS, LoraSpec
from tests.conftest import TINY, make_tiny_base


def tiny_model(seed: int = 0) -> BloomForCausalLM:
    torch.manual_seed(seed)
    return BloomForCausalLM(ModelConfig(**TINY)).eval()


@pytest.mark.slow
def test_lora_trains_only_adapters_and_merge_gives_the_same_logits(tmp_path):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(1, TINY["vocab_size"], (4, 24))
    base_logits = model(x).detach()

    spec = LoraSpec(rank=4, alpha=8, dropout=0.0, target_modules=list(LORA_TARGETS))
    peft_model = apply_lora(model, spec)
    trainable, total = trainable_parameters(peft_model)
    d, layers = TINY["hidden_size"], TINY["num_layers"]
    # r*(in+out) per target: qkv (d -> 3d), dense (d -> d), h_to_4h (d -> 4d), 4h_to_h (4d -> d).
    assert trainable == layers * spec.rank * ((d + 3 * d) + (d + d) + (d + 4 * d) + (4 * d + d))
    assert total == trainable + sum(v.numel() for k, v in before.items() if k != "lm_head.weight")
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)

    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    losses = []
    for _ in range(5):
        loss = peft_model(x, labels=torch.roll(x, -1, dims=1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    peft_model.eval()
    state = peft_model.get_base_model().state_dict()
    for key, value in before.items():  # the base weights did not move (targets sit under base_layer)
        module, leaf = key.rsplit(".", 1)
        current = state[key] if key in state else state[f"{module}.base_layer.{leaf}"]
        assert torch.equal(current, value), key
    adapted = peft_model(x).detach()
    assert not torch.allclose(adapted, base_logits, atol=1e-4)  # the adapters changed the function

    save_adapter(peft_model, tmp_path / "adapter", "somewhere")
    reloaded = load_adapter(tiny_model(), tmp_path / "adapter").eval()
    torch.testing.assert_close(reloaded(x), adapted, rtol=0, atol=1e-6)

    merged = merge(peft_model)
    assert type(merged) is BloomForCausalLM
    assert merged.lm_head.weight is merged.transformer.word_embeddings.weight
    torch.testing.assert_close(merged(x), adapted, rtol=1e-5, atol=1e-5)
    # Only the targeted matrices changed in the merge.
    after = merged.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"transformer.h.{i}.{m}.weight" for i in range(layers) for m in (
        "self_attention.query_key_value", "self_attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")}  # fmt: skip


def test_adapter_folder_loads_through_model_io(tmp_path, demo_tokenizer_dir):
    from bloomberg_style.artifacts import load_model, model_kind, tokenizer_dir

    base = make_tiny_base(tmp_path / "base", demo_tokenizer_dir)
    peft_model = apply_lora(load_model(base), LoraSpec(rank=2, alpha=4, dropout=0.0))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
    x = torch.randint(1, TINY["vocab_size"], (2, 16))
    expected = peft_model.eval()(x).detach()
    save_adapter(peft_model, tmp_path / "adapter", str(base))
    assert model_kind(tmp_path / "adapter") == "adapter"
    assert tokenizer_dir(tmp_path / "adapter") == base
    torch.testing.assert_close(load_model(tmp_path / "adapter")(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_kind(tmp_path / "nothing")


def test_filters_and_sampling():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    kept = filter_logits(logits, top_k=2).isfinite()
    assert kept.tolist() == [True, True, False, False, False]
    probs = torch.softmax(logits, -1)  # 0.636, 0.234, 0.086, ...
    assert filter_logits(logits, top_p=0.5).isfinite().tolist() == [True, False, False, False, False]
    assert filter_logits(logits, top_p=0.8).isfinite().sum() == 2
    assert filter_logits(logits, top_p=float(probs[:3].sum()) + 1e-6).isfinite().sum() == 4
    assert next_token(logits, SamplingConfig(temperature=0)) == 0
    g = torch.Generator().manual_seed(0)
    draws = {next_token(logits, SamplingConfig(temperature=1.0, top_k=2, top_p=1.0), g) for _ in range(200)}
    assert draws == {0, 1}
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0).validate()


@pytest.mark.slow
def test_generation_is_seeded_and_stops(demo_tokenizer):
    model = tiny_model()
    cfg = SamplingConfig(temperature=1.0, top_k=50, top_p=0.95, max_new_tokens=12, seed=3)
    a = list(generate_ids(model, [5, 6, 7], cfg, vocab_limit=demo_tokenizer.vocab_size))
    b = list(generate_ids(model, [5, 6, 7], cfg, vocab_limit=demo_tokenizer.vocab_size))
    assert a == b and len(a) == 12 and max(a) < demo_tokenizer.vocab_size
    greedy = SamplingConfig(temperature=0, max_new_tokens=12)
    first = next(generate_ids(model, [5, 6, 7], greedy))
    assert list(generate_ids(model, [5, 6, 7], greedy, stop_ids=(first,))) == []


def test_text_stream_holds_back_cut_characters(demo_tokenizer):
    text = "利润增长 12%, 股价上涨 — ok"
    ids = demo_tokenizer.encode(text)
    stream = TextStream(demo_tokenizer)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_token_overlap_scores():
    assert answer_tokens("The P/E ratio is 10.") == ["the", "p", "e", "ratio", "is", "10"]
    assert answer_tokens("多喝水") == ["多", "喝", "水"]
    assert token_prf("rest and fluids", "rest and drink fluids") == pytest.approx((1.0, 0.75, 6 / 7))
    assert token_prf("nothing", "rest") == (0.0, 0.0, 0.0)
    p, r, f = token_prf("多喝水休息", "多喝热水")
    assert (p, r) == pytest.approx((3 / 5, 3 / 4))


def test_bertscore_from_a_local_encoder(tmp_path, demo_tokenizer_dir):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "encoder"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=512, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)  # fmt: skip
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(demo_tokenizer_dir / name, folder / name)
    same = bertscore(["the price rose"], ["the price rose"], str(folder))
    assert same == pytest.approx((1.0, 1.0, 1.0), abs=1e-5)
    p, r, f = bertscore(["the price rose sharply today"], ["interest rates fell"], str(folder))
    assert 0 < f < 0.999 and f == pytest.approx(2 * p * r / (p + r))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        bertscore(["a"], ["b"], "roberta-large")
