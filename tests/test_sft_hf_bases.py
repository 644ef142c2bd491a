"""SFT on Hugging Face bases (issue 15): tiny LLaMA, Qwen2 and GLM models built from their
config classes (random weights) with a BPE tokenizer trained in conftest.py; no downloads."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from bloomberg_style.artifacts import load_model, load_tokenizer, tokenizer_dir
from bloomberg_style.artifacts.hf_base import HFBaseError, HFCausalLM, HFTokenizer, load_hf_base
from bloomberg_style.sft.chat_masks import encode_conversation, encode_prompt, hf_batch
from bloomberg_style.sft.collate import row_arrays
from bloomberg_style.sft.generate import SamplingConfig, generate_text, hf_generate_ids
from bloomberg_style.sft.lora import apply_lora, default_lora_targets, export_merged_hf, merge
from bloomberg_style.sft.prompt_tuning import PrefixSpec, apply_prefix_tuning, prompt_parameters
from bloomberg_style.sft.recipe import LoraSpec
from bloomberg_style.sft.templates import Turn, get_template

TURNS = [
    Turn("user", "Hello!"),
    Turn("assistant", "Rest and fluids help."),
    Turn("user", "Thank you"),
    Turn("assistant", "goodbye."),
]
# What each family's template trains: every reply and the end-of-turn text after it.
TRAINED_RUNS = {
    "qwen2": ["Rest and fluids help.<|im_end|>\n", "goodbye.<|im_end|>\n"],  # its ChatML template
    "llama": [" Rest and fluids help.</s>", " goodbye.</s>"],  # its [INST] template
    "glm": ["Rest and fluids help.<|endoftext|>", "goodbye.<|endoftext|>"],  # no template: our "chat"
}
FULL_TEXT = {
    "qwen2": "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\nRest and fluids help.<|im_end|>\n<|im_start|>user\nThank you<|im_end|>\n"
    "<|im_start|>assistant\ngoodbye.<|im_end|>\n",
    "llama": "<s><<SYS>>Be kind.<</SYS>>[INST] Hello! [/INST] Rest and fluids help.</s>"
    "[INST] Thank you [/INST] goodbye.</s>",
    "glm": "Be kind.User: Hello!\nAssistant: Rest and fluids help.<|endoftext|>\nUser: Thank you\n"
    "Assistant: goodbye.<|endoftext|>",
}


def _template_for(tok: HFTokenizer):
    return None if tok.chat_template else get_template("chat")


def _runs(ids: list[int], targets: list[bool]) -> list[list[int]]:
    runs, current = [], []
    for i, t in zip(ids, targets):
        if t:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def test_label_masks_are_exact_per_family(tiny_hf_base):
    family, folder = tiny_hf_base
    base = load_hf_base(folder)
    assert base.family == family and not base.remote_code
    tok = base.tokenizer
    enc = encode_conversation(TURNS, tok, _template_for(tok), system="Be kind.")
    decode = tok.hf.decode
    assert decode(enc.ids) == FULL_TEXT[family]
    runs = _runs(enc.ids, enc.targets)
    assert [decode(r) for r in runs] == TRAINED_RUNS[family]
    assert getattr(enc, "straddling", 0) == 0
    # The prompt for the second reply is exactly the conversation up to that reply's span.
    prompt = encode_prompt(TURNS[:3], tok, _template_for(tok), system="Be kind.")
    first_trained_of_reply2 = len(enc.ids) - len(runs[1])
    assert enc.ids[: len(prompt)] == prompt and len(prompt) == first_trained_of_reply2


def test_pad_token_and_attention_mask(tiny_hf_base):
    family, folder = tiny_hf_base
    tok = load_hf_base(folder).tokenizer
    if family == "glm":  # its tokenizer has no pad token: pad = eos
        assert tok.pad_id == tok.eod_id
    long = encode_conversation(TURNS, tok, _template_for(tok))
    short = encode_conversation(TURNS[:2], tok, _template_for(tok))
    batch = hf_batch([long, short], tok.pad_id)
    # The mask comes from the lengths, so a real eos at a row's end is attended even when pad = eos.
    assert batch["attention_mask"].sum(1).tolist() == [len(long.ids), len(short.ids)]
    assert batch["attention_mask"][1, len(short.ids) - 1] == 1
    assert (batch["labels"][1, len(short.ids) :] == -100).all()


def test_our_shifted_loss_equals_transformers_loss(tiny_hf_base):
    """HFCausalLM takes our collate rows (labels already shifted) and gives the same mean
    reply-token loss as transformers computes from its own (unshifted) labels."""
    family, folder = tiny_hf_base
    base = load_hf_base(folder)
    tok = base.tokenizer
    enc = encode_conversation(TURNS, tok, _template_for(tok))
    row = row_arrays(enc.ids, enc.targets)
    ours = HFCausalLM(base.model)(
        torch.from_numpy(row["tokens"])[None],
        labels=torch.from_numpy(row["labels"])[None],
        loss_mask=torch.from_numpy(row["loss_mask"])[None],
    )
    batch = hf_batch([enc], tok.pad_id)
    theirs = base.model(**batch).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_model_io_dispatches_hf_bases(tiny_hf_base):
    family, folder = tiny_hf_base
    model = load_model(folder)
    tok = load_tokenizer(tokenizer_dir(folder))
    assert isinstance(model, HFCausalLM) and isinstance(tok, HFTokenizer)
    assert model.hf.config.model_type == family


def test_lora_defaults_merge_and_export(tiny_hf_base, tmp_path):
    family, folder = tiny_hf_base
    base = load_hf_base(folder)
    expected = {"llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"], "glm": ["q_proj", "v_proj"]}
    assert default_lora_targets(base.model) == expected[family]
    with pytest.raises(ValueError, match="query_key_value"):
        apply_lora(base.model, LoraSpec(rank=4), targets=["query_key_value"])
    peft_model = apply_lora(base.model, LoraSpec(rank=4, alpha=8, dropout=0.0), targets=["auto"])
    torch.manual_seed(1)
    with torch.no_grad():  # B starts at zero; give it values so the merge has something to fold in
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    ids = torch.tensor([encode_conversation(TURNS, base.tokenizer, _template_for(base.tokenizer)).ids])
    peft_model.eval()
    adapted = peft_model(input_ids=ids).logits
    plain = load_hf_base(folder).model(input_ids=ids).logits
    assert (adapted - plain).abs().max() > 1e-3  # the adapters change the output
    out = export_merged_hf(peft_model, base.tokenizer, tmp_path / "merged")
    reloaded = load_hf_base(out)
    torch.testing.assert_close(reloaded.model(input_ids=ids).logits, adapted, rtol=1e-4, atol=1e-5)
    assert not any("lora" in n for n, _ in reloaded.model.named_parameters())


def test_lora_merge_in_memory_equals_adapter(tiny_hf_base_factory):
    base = load_hf_base(tiny_hf_base_factory("llama"))
    peft_model = apply_lora(
        base.model, LoraSpec(rank=2, alpha=4, dropout=0.0), targets=["q_proj", "down_proj"]
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    adapted = peft_model(input_ids=ids).logits
    torch.testing.assert_close(merge(peft_model)(input_ids=ids).logits, adapted, rtol=1e-4, atol=1e-5)


def test_prefix_tuning_trains_only_its_prompt_parameters(tiny_hf_base):
    family, folder = tiny_hf_base
    base = load_hf_base(folder)
    tok = base.tokenizer
    frozen = {n: p.detach().clone() for n, p in base.model.named_parameters()}
    model = apply_prefix_tuning(base.model, PrefixSpec(num_virtual_tokens=4))
    prompt = prompt_parameters(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert prompt and trainable == set(prompt)
    before = {n: p.detach().clone() for n, p in prompt.items()}
    batch = hf_batch([encode_conversation(TURNS, tok, _template_for(tok))], tok.pad_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(5):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(not torch.equal(before[n], p) for n, p in prompt.items())
    for n, p in base.model.named_parameters():  # the base is bit-for-bit unchanged
        assert torch.equal(frozen[n], p), n


def test_generate_with_cache_equals_without(tiny_hf_base):
    family, folder = tiny_hf_base
    base = load_hf_base(folder)
    tok = base.tokenizer
    prompt = encode_prompt(TURNS[:1], tok, _template_for(tok))
    cfg = SamplingConfig(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=24)
    # A random model rarely says eos; no stop id so all 24 tokens are compared.
    cached = hf_generate_ids(base.model, prompt, cfg, use_cache=True)
    uncached = hf_generate_ids(base.model, prompt, cfg, use_cache=False)
    assert len(cached) == 24 and cached == uncached
    # And generate_text (chat, answer evaluation) goes the same way, through HFCausalLM too.
    pieces: list[str] = []
    text = generate_text(HFCausalLM(base.model), tok, prompt, cfg, on_text=pieces.append)
    ids = hf_generate_ids(base.model, prompt, cfg, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size)
    assert text == tok.decode(ids) and "".join(pieces) == text


def test_remote_code_needs_explicit_trust(tiny_hf_base_factory, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_hf_base_factory("qwen2"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HFBaseError, match="trust_remote_code: true") as err:
        load_hf_base(folder)
    assert str(folder) in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU error path")
def test_qlora_refused_without_cuda_before_loading(tmp_path):
    from bloomberg_style.artifacts.quantize import QLoraUnavailable

    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))  # no weights: never read
    with pytest.raises(QLoraUnavailable, match="CUDA"):
        load_hf_base(folder, load_in_4bit=True)


def _qa_rows(tok, n: int, offset: int = 0, style: int = 1):
    from bloomberg_style.sft.collate import row_arrays

    facts = ["fever", "cough", "rest", "fluids", "dividend", "price", "contract", "offer"]
    rows = []
    for i in range(offset, offset + n):
        a, b = facts[i % len(facts)], facts[(i * 3 + 1) % len(facts)]
        reply = f"{a} and {b} help." if style == 1 else f"Thank you, {b}, goodbye."
        turns = [Turn("user", f"Hello! {a}?"), Turn("assistant", reply)]
        enc = encode_conversation(turns, tok, _template_for(tok))
        rows.append(row_arrays(enc.ids, enc.targets))
    return rows


@pytest.mark.slow
def test_deepspeed_engine_chains_full_then_lora_on_a_hf_base(tiny_hf_base_factory, tmp_path):
    """The stage trainer's seam, driven by hand: HFCausalLM in a real DeepSpeed engine (one
    gloo rank, ZeRO-2) trains on our collate rows, full then LoRA; held-out loss falls in
    both, and the exported merged model scores what the engine scored."""
    import deepspeed

    from bloomberg_style.artifacts.hf_base import save_hf_model, shape_config
    from bloomberg_style.model import param_groups
    from bloomberg_style.sft.collate import pad_rows
    from bloomberg_style.sft.evaluate import heldout_loss
    from bloomberg_style.sft.lora import adapter_state, load_adapter_state
    from bloomberg_style.training.distributed import init_distributed

    init_distributed(torch.get_num_threads())
    folder = tiny_hf_base_factory("llama")
    tok = load_tokenizer(folder)
    train, valid = _qa_rows(tok, 16), _qa_rows(tok, 4, offset=16)
    assert shape_config(load_model(folder).config)["num_layers"] == 2

    def run(model, lr: float, train, valid, steps: int = 20):
        config = {
            "train_batch_size": 4,
            "train_micro_batch_size_per_gpu": 4,
            "optimizer": {"type": "AdamW", "params": {"lr": lr, "torch_adam": True}},
            "zero_optimization": {"stage": 2},
        }
        engine, *_ = deepspeed.initialize(
            model=model, model_parameters=param_groups(model, 0.0), config=config
        )
        before = heldout_loss(engine.module, valid, tok.pad_id)
        for step in range(steps):
            engine.train()
            batch = pad_rows([train[(step * 4 + j) % len(train)] for j in range(4)], tok.pad_id)
            loss = engine(batch["tokens"], labels=batch["labels"], loss_mask=batch["loss_mask"])
            engine.backward(loss)
            engine.step()
        return engine, before, heldout_loss(engine.module, valid, tok.pad_id)

    engine, before, after = run(load_model(folder), 3e-3, train, valid)
    print(f"stage 1 (full): held-out loss {before:.3f} -> {after:.3f}")
    assert after < before - 0.5, (before, after)
    stage1 = save_hf_model(engine.module.hf, tok, tmp_path / "full")

    lora_model = apply_lora(load_model(stage1), LoraSpec(rank=4, alpha=8, dropout=0.0))
    trainable = {n for n, p in lora_model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in n for n in trainable)
    # Stage 2 learns a new reply style; it starts from stage 1's weights.
    train, valid2 = _qa_rows(tok, 16, style=2), _qa_rows(tok, 4, offset=16, style=2)
    assert heldout_loss(load_model(stage1), valid, tok.pad_id) == pytest.approx(after, rel=1e-4)
    engine, before2, after2 = run(lora_model, 2e-2, train, valid2)
    print(f"stage 2 (LoRA): held-out loss {before2:.3f} -> {after2:.3f}")
    assert after2 < before2 - 0.2, (before2, after2)
    fresh = apply_lora(load_model(stage1), LoraSpec(rank=4, alpha=8, dropout=0.0))
    load_adapter_state(fresh, adapter_state(engine.module.state_dict()))
    exported = export_merged_hf(fresh, tok, tmp_path / "lora")
    assert heldout_loss(load_model(exported), valid2, tok.pad_id) == pytest.approx(after2, rel=1e-4)
