"""launch/sft.py end to end on one process: a full stage, then a LoRA stage (adapter only)
from its result; stop mid-stage, resume, skip the finished stage; launch/chat.py --prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bloomberg_style.demo.instructions import finance_chat, finance_instructions
from bloomberg_style.training.metrics import read_jsonl
from tests.conftest import check, run_script, tiny_defaults, write_jsonl, write_recipe

pytestmark = pytest.mark.slow

TARGETS = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")


def test_chain_resume_skip_and_chat(tmp_path, sft_base):
    from bloomberg_style.artifacts import load_model

    alpaca = write_jsonl(tmp_path / "data" / "fin.jsonl", finance_instructions(48, seed=4))
    chat = write_jsonl(tmp_path / "data" / "chat.jsonl", finance_chat(32, seed=5))
    out = tmp_path / "out"
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        {
            "name": "chain",
            "base": str(sft_base),
            "output_dir": str(out),
            "template": "qa",
            "logging": {"wandb": "disabled", "progress": False},
            "defaults": tiny_defaults(),
            "stages": [
                {"name": "a", "data": {"train": [str(alpaca)], "format": "alpaca"}},
                {
                    "name": "b",
                    "method": "lora",
                    "template": "chat",
                    "lr": 1.0e-2,
                    "epochs": 1,
                    "eval": {"max_records": 2, "max_new_tokens": 6, "compare_base": False},
                    "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "merge": False},
                    "data": {"train": [str(chat)]},
                },
            ],
        },
    )

    # Run 1: stage a completes, stage b stops at step 2 with a checkpoint.
    log = check(run_script("sft.py", ["--recipe", str(recipe), "--set", "stages.b.exit_at_step=2"]))
    a, b = out / "a", out / "b"
    assert (a / "COMPLETE").is_file() and not (b / "COMPLETE").exists()
    assert "trainable parameters: " in log and "stopped at step 2" in log
    for name in ("config.json", "model.safetensors", "tokenizer.json", "eval.json", "eval.md", "sft.json",
                 "metrics.jsonl", "events.jsonl", "config.yaml"):  # fmt: skip
        assert (a / name).is_file(), name
    assert not (a / "checkpoints").exists()  # removed once the model was exported
    assert (b / "checkpoints" / "latest").read_text().strip() == "step_00000002"

    report = json.loads((a / "eval.json").read_text())
    assert report["after"]["loss"] < report["before"]["loss"] - 0.5
    assert report["after"]["loss_exported_fp32"] == pytest.approx(report["after"]["loss"], rel=1e-4)
    assert {"precision", "recall", "f1"} <= set(report["after"]) and report["after"]["records"] == 3
    assert "| token F1 |" in (a / "eval.md").read_text()

    # Run 2: a is skipped, b resumes from its checkpoint and finishes.
    log = check(run_script("sft.py", ["--recipe", str(recipe)]))
    assert "stage a: complete" in log and "skipping" in log and "resumed from" in log
    # merge: false -> the stage folder is the adapter, naming stage a's folder as its base.
    from bloomberg_style.artifacts import adapter_base, model_kind

    assert (
        (b / "COMPLETE").is_file() and model_kind(b) == "adapter" and not (b / "model.safetensors").exists()
    )
    assert Path(adapter_base(b)) == a.resolve() and (b / "adapter" / "adapter_model.safetensors").is_file()
    steps = [r["step"] for r in read_jsonl(b / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, steps[-1] + 1))  # every step logged once across the resume
    assert json.loads((b / "sft.json").read_text())["template"]["name"] == "chat"

    # Weights were passed on: b (its base + adapter, merged on load) keeps a's untouched tensors,
    # which differ from the original base's.
    base, ma, mb = (load_model(p).state_dict() for p in (sft_base, a, b))
    for key in ma:
        targeted = any(f".{t}.weight" in key for t in TARGETS)
        if key.endswith("layernorm.weight") or key == "transformer.word_embeddings.weight":
            assert not torch.equal(ma[key], base[key]), key
        if not targeted:
            assert torch.equal(mb[key], ma[key]), key
    assert any(not torch.equal(mb[k], ma[k]) for k in ma if any(f".{t}.weight" in k for t in TARGETS))

    # Chat one-shot on stage a: the same seeded answer as an in-process session with its template.
    from bloomberg_style.artifacts import load_tokenizer
    from bloomberg_style.sft.chat import ChatSession, template_for_model
    from bloomberg_style.sft.generate import SamplingConfig

    question = "Explain the term leverage ratio in one sentence."
    sampling = [
        "--temperature",
        "1.0",
        "--top-k",
        "0",
        "--top-p",
        "1.0",
        "--seed",
        "7",
        "--max-new-tokens",
        "12",
    ]
    proc = run_script("chat.py", ["--model", str(a), "--prompt", question, *sampling, "--no-stream"])
    check(proc)
    cfg = SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=12, seed=7)
    session = ChatSession(load_model(a), load_tokenizer(a), template_for_model(a), cfg)
    assert session.template.name == "qa"
    expected = session.reply(question)
    assert expected.strip() and proc.stdout == expected + "\n"
    pieces: list[str] = []  # streaming: the pieces printed one by one add up to the answer
    session.reset()
    session.sampling.seed = 7
    assert session.reply(question, on_text=pieces.append) == expected == "".join(pieces)
    # Multi-turn: the second prompt holds the first exchange, rendered by the template.
    ids = session.prompt_ids("And an example?")
    assert (
        session.tok.decode(ids)
        == f"Question: {question}\nAnswer: {expected}<|endoftext|>\nQuestion: And an example?\nAnswer: "
    )
