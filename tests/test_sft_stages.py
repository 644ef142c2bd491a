"""launch/sft.py on a tiny HF LLaMA base, 2 gloo ranks: full (ZeRO-3, built sharded) ->
LoRA (ZeRO-3) -> P-tuning v2 (ZeRO-2), with the tokenizer's own chat template, best-checkpoint
export and eval.knowledge; then chat on the P-tuned model with --knowledge."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bloomberg_style.training.metrics import read_jsonl
from tests.conftest import check, run_script, tiny_defaults, write_jsonl, write_recipe

FACTS = ["fever", "cough", "rest", "fluids", "dividend", "price", "contract", "offer"]
KNOWLEDGE = [
    {"id": "flu-1", "title": "Influenza", "text": "Influenza spreads by droplets; fever and cough."},
    {"id": "div-1", "title": "Dividend", "text": "Dividend yield is the dividend over the price."},
    {"id": "law-1", "title": "Contract", "text": "A contract needs an offer and acceptance."},
]


def qa_records(n: int, style: int) -> list[dict]:
    out = []
    for i in range(n):
        a, b = FACTS[i % len(FACTS)], FACTS[(i * 3 + 1) % len(FACTS)]
        reply = f"{a} and {b} help." if style == 1 else f"Thank you, {b}, goodbye."
        out.append({"instruction": f"Hello! {a}?", "input": "", "output": reply})
    return out


def _recipe(tmp_path, stages: list[dict], **top) -> dict:
    return {"name": "r", "base": str(tmp_path / "base"), "output_dir": str(tmp_path / "out"), **top,
            "stages": stages}  # fmt: skip


@pytest.mark.parametrize(
    "stages, message",
    [
        ([{"name": "p", "method": "ptuning", "data": {"train": ["a"]}}, {"name": "b", "data": {"train": ["a"]}}],
         r"stages\[0\]\.method: a P-tuning stage must be the last stage"),
        ([{"name": "a", "export": "latest", "data": {"train": ["a"]}}], r"stages\[0\]\.export: must be best"),
        ([{"name": "a", "method": "qlora", "zero_stage": 3, "data": {"train": ["a"]}}],
         r"stages\[0\]\.zero_stage: QLoRA stages use ZeRO 0-2"),
    ],
)  # fmt: skip
def test_stage_methods_and_export_are_checked_with_the_recipe(tmp_path, stages, message):
    from bloomberg_style.sft.recipe import RecipeError, load_recipe

    path = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, stages))
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)


def test_tokenizer_template_and_lora_under_zero3_are_accepted(tmp_path, tiny_hf_base_factory):
    from bloomberg_style.artifacts import load_tokenizer
    from bloomberg_style.config import ConfigError
    from bloomberg_style.sft.collate import build_rows
    from bloomberg_style.sft.formats import Example
    from bloomberg_style.sft.recipe import load_recipe
    from bloomberg_style.sft.templates import Turn
    from bloomberg_style.sft.train import check_stage_fits

    stages = [{"name": "a", "method": "lora", "zero_stage": 3, "data": {"train": ["a"]}}]
    r = load_recipe(write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, stages, template="tokenizer")))
    assert r.template_for(r.stages[0]) is None and r.stages[0].export == "best"
    example = Example([Turn("user", "Hello! fever?"), Turn("assistant", "Rest and fluids help.")])
    llama = load_tokenizer(tiny_hf_base_factory("llama"))
    check_stage_fits(r.stages[0], llama, None, tmp_path, "here")
    rows, stats = build_rows([example], None, llama, 64)  # the [INST] chat template's masks
    trained = [int(t) for t, m in zip(rows[0]["labels"], rows[0]["loss_mask"]) if m]
    assert llama.decode(trained).strip() == "Rest and fluids help."
    if not torch.cuda.is_available():  # QLoRA stops here, before any record or weight is read
        qlora = dataclasses.replace(r.stages[0], method="qlora", zero_stage=2)
        with pytest.raises(ConfigError, match="needs a CUDA GPU"):
            check_stage_fits(qlora, llama, None, tmp_path, "here")
    glm = load_tokenizer(tiny_hf_base_factory("glm"))  # no chat template
    with pytest.raises(ConfigError, match="has no chat template"):
        check_stage_fits(r.stages[0], glm, None, tmp_path, "here")


@pytest.mark.slow
def test_two_rank_chain_full_lora_ptuning_on_a_hf_base(tmp_path, tiny_hf_base_factory):
    from bloomberg_style.sft.train import StageRunConfig  # noqa: F401  (the module imports)

    base = tiny_hf_base_factory("llama")
    first = write_jsonl(tmp_path / "one.jsonl", qa_records(40, style=1))
    second = write_jsonl(tmp_path / "two.jsonl", qa_records(40, style=2))
    kb = write_jsonl(tmp_path / "kb.jsonl", KNOWLEDGE)
    out = tmp_path / "out"
    defaults = tiny_defaults(
        epochs=4, save_interval=100, eval_interval=2, data={"max_length": 48, "valid_fraction": 0.2},
        eval={"max_records": 2, "max_new_tokens": 4, "compare_base": False},
    )  # fmt: skip
    recipe = write_recipe(
        tmp_path / "r.yaml",
        {
            "name": "hf-chain",
            "base": str(base),
            "output_dir": str(out),
            "template": "tokenizer",
            "logging": {"wandb": "disabled", "progress": False},
            "defaults": defaults,
            "stages": [
                {"name": "full", "zero_stage": 3, "data": {"train": [str(first)], "format": "alpaca"}},
                {
                    "name": "lora",
                    "method": "lora",
                    "zero_stage": 3,
                    "lr": 5.0e-2,
                    "lora": {"rank": 4, "alpha": 8, "dropout": 0.0},
                    "data": {"train": [str(second)], "format": "alpaca"},
                },
                {
                    "name": "ptuning",
                    "method": "ptuning",
                    "lr": 2.0e-2,
                    "ptuning": {"num_virtual_tokens": 4},
                    "data": {"train": [str(first)], "format": "alpaca"},
                    "eval": {
                        "max_records": 2,
                        "max_new_tokens": 4,
                        "compare_base": False,
                        "knowledge": str(kb),
                    },
                },
            ],  # fmt: skip
        },
    )
    log = check(run_script("sft.py", ["--recipe", str(recipe)], ranks=2, timeout=900))
    reports = {s: json.loads((out / s / "eval.json").read_text()) for s in ("full", "lora", "ptuning")}
    for stage, report in reports.items():
        print(f"{stage}: held-out loss {report['before']['loss']:.3f} -> {report['after']['loss']:.3f}")
    full, lora, pt = reports["full"], reports["lora"], reports["ptuning"]
    assert full["template"] == "tokenizer" and "ZeRO 3" in log
    # Both ZeRO-3 stages built the base already partitioned (transformers' zero.Init path).
    assert "44,192 of 44,192 parameters built partitioned" in log, log  # full: every parameter
    assert "44,192 of 45,088 parameters built partitioned" in log, log  # LoRA: adapters added after
    assert full["after"]["loss"] < full["before"]["loss"] - 0.5, full
    assert lora["after"]["loss"] < lora["before"]["loss"] - 0.1, lora
    assert pt["after"]["loss"] < pt["before"]["loss"], pt

    # Each stage exported its best checkpoint: the lowest held-out loss the trainer logged
    # (after step 0), and the exported FP32 model scores exactly that.
    for stage, report in reports.items():
        valid = [(r["step"], r["valid/heldout/loss"]) for r in read_jsonl(out / stage / "metrics.jsonl")
                 if "valid/heldout/loss" in r and r["step"] > 0]  # fmt: skip
        best_step, best_loss = min(valid, key=lambda v: v[1])
        assert report["exported"]["step"] == best_step, (stage, valid, report["exported"])
        assert report["after"]["loss_exported_fp32"] == pytest.approx(best_loss, rel=1e-4), stage

    # Full under ZeRO-3: a HF folder of the base's family; LoRA: merged HF folder + adapter;
    # P-tuning: only the prefix encoder trained (4 virtual tokens x 2 layers x key and value
    # x 2 KV heads x 8 head dims).
    from bloomberg_style.artifacts import load_model

    assert json.loads((out / "full" / "config.json").read_text())["model_type"] == "llama"
    assert (out / "lora" / "adapter" / "adapter_config.json").is_file()
    assert pt["trainable_parameters"] == 4 * 2 * 2 * 2 * 8, pt["trainable_parameters"]
    assert json.loads((out / "ptuning" / "adapter_config.json").read_text())["peft_type"] == "PREFIX_TUNING"
    tuned, lora_model = load_model(out / "ptuning"), load_model(out / "lora")
    base_names = dict(tuned.hf.base_model.named_parameters())
    for name, p in lora_model.hf.named_parameters():  # the P-tuning stage left its base unchanged
        assert torch.equal(base_names[name], p), name
    assert all("retrieved" in s for s in pt["samples"]) and pt["samples"][0]["retrieved"]

    chat = check(run_script("chat.py", ["--model", str(out / "ptuning"), "--knowledge", str(kb),
                                        "--prompt", "Hello! fever and cough?", "--max-new-tokens", "4"]))  # fmt: skip
    assert "flu-1" in chat


@pytest.mark.parametrize("export", ["best", "final"])
def test_export_takes_the_best_checkpoint_unless_told_final(tmp_path, tiny_hf_base_factory, export):
    """Two checkpoints of a full stage on a HF base, the older one named best: `export: best`
    writes its weights, `export: final` the newer one's."""
    from bloomberg_style.artifacts import load_model, load_tokenizer
    from bloomberg_style.artifacts.hf_base import shape_config
    from bloomberg_style.artifacts.layout import tag_for_step
    from bloomberg_style.sft.recipe import Recipe, StageSpec
    from bloomberg_style.sft.train import StageContext, export_stage_model

    base = tiny_hf_base_factory("llama")
    model, tok = load_model(base), load_tokenizer(base)
    out = tmp_path / "stage"
    saved = {}
    for step, shift in ((4, 0.5), (8, -0.5)):  # step 4 is the best, step 8 the last
        tag = tag_for_step(step)
        folder = out / "checkpoints" / tag
        folder.mkdir(parents=True)
        weights = {k: v + shift for k, v in model.state_dict().items()}
        torch.save({"module": weights}, folder / "mp_rank_00_model_states.pt")
        state = {"step": step, "best_tag": tag_for_step(4), "model_config": shape_config(model.config),
                 "last_valid": {"heldout": 1.0 + step}}  # fmt: skip
        (folder / "trainer_state.json").write_text(json.dumps(state))
        saved[step] = weights["hf.lm_head.weight"]
    (out / "checkpoints" / "latest").write_text(tag_for_step(8))
    stage = StageSpec(name="s", method="full", export=export)
    ctx = StageContext(Recipe(name="r", base=str(base)), stage, str(base), out, tok, base, None, None, 1, 0)
    exported = export_stage_model(ctx)
    want = 4 if export == "best" else 8
    assert exported.name == tag_for_step(want)
    torch.testing.assert_close(load_model(out).hf.lm_head.weight, saved[want])
