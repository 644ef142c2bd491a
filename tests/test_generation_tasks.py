"""Generation-scored tasks: entity F1 and ConvFinQA exact match on hand-checkable outputs,
the safe program evaluator, and batched greedy decoding against the SFT sampler."""

from __future__ import annotations

import json

import pytest
import torch

from bloomberg_style.evaluation.convfinqa_dsl import ProgramError, answer_value, exact_match, execute
from bloomberg_style.evaluation.entities import entity_f1, format_entities, parse_entities
from bloomberg_style.evaluation.fewshot import TaskError

TABLE = [
    ["", "2009", "2008", "2007"],
    ["net income", "$ 1,000", "800", "(200)"],
    ["revenue", "5000", "4000", "n/a"],
]


def test_entity_f1_by_hand():
    gold = [[("ORG", "Apple"), ("PER", "Tim Cook")], [("LOC", "Paris")], []]
    predicted = [
        parse_entities("Apple (ORG); Tim Cook (ORG)"),  # 1 right, 1 wrong type
        parse_entities("Paris (LOC); Euro (MISC)"),  # MISC is not scored
        parse_entities("none"),
    ]
    # tp 2, predicted 3 (Apple, Tim Cook/ORG, Paris), gold 3 -> F1 = 2 * 2 / (3 + 3)
    assert entity_f1(gold, predicted) == pytest.approx(4 / 6)
    assert entity_f1([[("PER", "A")]], [[("PER", "A"), ("PER", "A")]]) == pytest.approx(
        2 / 3
    )  # one match only
    assert entity_f1([[]], [[]]) == 1.0
    assert parse_entities("  Tim   Cook (PER) ; garbage ; New York (LOC)") == [
        ("PER", "Tim Cook"),
        ("LOC", "New York"),
    ]
    assert format_entities([("ORG", "Apple")]) == "Apple (ORG)" and format_entities([]) == "none"


def test_convfinqa_programs():
    assert execute("subtract(206588, 181001), divide(#0, 181001)") == pytest.approx(25587 / 181001)
    assert execute("add(const_100, const_m1)") == 99
    assert execute("multiply(5%, 200)") == pytest.approx(10)
    assert execute("exp(1.1, 2)") == pytest.approx(1.21)
    assert execute("greater(3, 2)") == "yes" and execute("greater(2, 3)") == "no"
    assert execute("table_sum(net income, none)", TABLE) == pytest.approx(1600)
    assert execute("table_average(revenue, none)", TABLE) == pytest.approx(4500)
    assert (
        execute("table_max(Net Income, none)", TABLE) == 1000
        and execute("table_min(net income, none)", TABLE) == -200
    )
    assert execute("206588") == 206588
    for bad, message in (
        ("divide(1, 0)", "division by zero"),
        ("subtract(1, #3)", "#3 refers to no earlier step"),
        ("__import__('os').system('true')", "cannot parse"),
        ("power(2, 3)", "unknown operation 'power'"),
        ("add(1)", "takes two arguments"),
        ("table_max(profit, none)", "no table row named 'profit'"),
        ("exp(10, 5000)", "out of range"),
        ("exp(-8, 0.5)", "not real"),
    ):
        with pytest.raises(ProgramError, match=message.replace("(", r"\(").replace(")", r"\)")):
            execute(bad, TABLE)


def test_convfinqa_exact_match_normalises_numbers():
    gold = 0.14136  # ConvFinQA's exe_ans, rounded to 5 decimals
    assert exact_match("subtract(206588, 181001), divide(#0, 181001)", gold)
    assert exact_match("subtract(206588, 181001), divide(#0, 181001)\nmore text", gold)  # first line only
    assert exact_match(" 0.14136", gold) and exact_match("$25,587", 25587.0)
    assert not exact_match("0.1414", gold)
    assert not exact_match("divide(1, 0)", gold)  # an invalid program scores 0, never raises
    assert exact_match("greater(3, 2)", "yes") and not exact_match("Yes it is", "yes")
    assert answer_value("table_sum(revenue, none)", TABLE) == 9000.0 and answer_value("hello") is None


@pytest.fixture(scope="module")
def tiny(small_data):
    from bloomberg_style.model import BloomForCausalLM, ModelConfig
    from tokenizer import NumericUnigramTokenizer

    tok = NumericUnigramTokenizer.load(small_data["tokenizer"])
    torch.manual_seed(5)
    cfg = ModelConfig.preset(
        "tiny", vocab_size=1024, hidden_size=32, num_layers=2, num_heads=4, max_seq_len=96
    )
    model = BloomForCausalLM(cfg).eval()
    with torch.no_grad():
        model.transformer.word_embeddings.weight.mul_(20)  # peaked logits: argmax is not a near tie
    return model, tok


def test_batched_greedy_equals_the_sft_sampler_at_temperature_0(tiny):
    from bloomberg_style.evaluation.generation import greedy_generate
    from bloomberg_style.sft.generate import SamplingConfig, generate_ids

    model, tok = tiny
    prompts = [tok.encode(t) for t in ("Shares of", "The company reported revenue of $3.5 billion", "Net")]
    batched = greedy_generate(
        model, prompts, 12, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size, batch_size=3
    )
    cfg = SamplingConfig(temperature=0, max_new_tokens=12)
    for prompt, ours in zip(prompts, batched):
        reference = list(generate_ids(model, prompt, cfg, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size))
        assert ours == reference and ours
    assert (
        greedy_generate(model, prompts, 12, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size, batch_size=1)
        == batched
    )


def test_greedy_decoding_follows_the_models_agree(tiny):
    """A model with `agree` (the ZeRO-3 wrapper: rank 0's tokens) decides the tokens and the stop."""
    from bloomberg_style.evaluation.generation import greedy_generate

    model, tok = tiny
    prompts = [
        tok.encode(t) for t in ("The company reported revenue of $3.5 billion", "Net")
    ]  # longest first
    free = greedy_generate(model, prompts, 6, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size)
    assert [len(a) for a in free] == [6, 6]  # this model never stops early by itself

    class Agreeing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config, self.calls = model, model.config, 0

        def forward(self, batch):
            return self.inner(batch)

        def agree(self, tokens):  # the "rank 0" tokens: prompt 1 stops at step 2, prompt 0 at step 4
            self.calls += 1
            stop = torch.tensor([self.calls == 4, self.calls == 2])[: len(tokens)]
            return torch.where(stop, torch.full_like(tokens, tok.eod_id), tokens)

    agreeing = Agreeing()
    answers = greedy_generate(agreeing, prompts, 6, stop_ids=(tok.eod_id,), vocab_limit=tok.vocab_size)
    assert answers == [free[0][:3], free[1][:1]] and agreeing.calls == 4


def write_ner_task(path, shots=20):
    header = {"task": "ner-t", "type": "generation", "prompt": "{text}\nEntities:", "shots": shots,
              "metric": "entity_f1", "max_new_tokens": 8}  # fmt: skip
    rows = [{"text": f"Apple hired Tim Cook number {i} in New York .", "target": "Apple (ORG); Tim Cook (PER)",
             "entities": [["ORG", "Apple"], ["PER", "Tim Cook"]], "split": "train" if i < 25 else "test"}
            for i in range(28)]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def write_fpb_task(path):
    """A 2-label classification task of 7 test examples, 2 shots each (drawn from the others)."""
    header = {
        "task": "fpb-t",
        "prompt": "{text}\nAnswer:",
        "labels": {"up": "up", "down": "down"},
        "shots": 2,
    }
    rows = [
        {"text": f"Shares {'rose' if i % 3 else 'fell'} {i}%", "label": "up" if i % 3 else "down"}
        for i in range(7)
    ]
    path.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def test_generation_task_scored_end_to_end(tiny, tmp_path):
    from bloomberg_style.evaluation.gen_tasks import load_generation_task, score_generation_task, task_score

    model, tok = tiny
    task = load_generation_task(write_ner_task(tmp_path / "ner.jsonl"))
    result = score_generation_task(model, tok, task, batch_size=2)
    assert result.items == 3 and result.shots == 20 and result.metric == "entity_f1"
    assert result.shots_dropped == 3  # 20 shots never fit 96 - 8 tokens
    outputs = [p["output"] for p in result.predictions]
    assert result.score == task_score(task, task.test, outputs)
    assert all("\n" not in o for o in outputs)
    # the most frequent gold answer, given to every item, gets every entity right
    assert result.majority == {"answer": "Apple (ORG); Tim Cook (PER)", "score": 1.0}


def test_generation_task_file_errors(tmp_path):
    from bloomberg_style.evaluation.gen_tasks import load_generation_task

    path = write_ner_task(tmp_path / "ner.jsonl")
    lines = path.read_text().splitlines()
    row = json.loads(lines[3])
    del row["entities"]
    path.write_text("\n".join([lines[0], lines[1], lines[2], json.dumps(row)]) + "\n")
    with pytest.raises(TaskError, match=r"ner.jsonl:4: metric entity_f1 needs the field 'entities'"):
        load_generation_task(path)
    header = {**json.loads(lines[0]), "metric": "bleu"}
    path.write_text(json.dumps(header) + "\n" + lines[1] + "\n")
    with pytest.raises(TaskError, match="'metric' must be one of"):
        load_generation_task(path)


def test_in_loop_scores_and_plot(tiny, tmp_path):
    from bloomberg_style.evaluation.fewshot import load_task, score_task
    from bloomberg_style.evaluation.in_loop import plot_task_scores, score_tasks_in_loop

    model, tok = tiny
    fpb = tmp_path / "fpb.jsonl"
    header = {
        "task": "fpb-t",
        "prompt": "{text}\nAnswer:",
        "labels": {"up": "up", "down": "down"},
        "shots": 1,
    }
    rows = [{"text": f"Shares rose {i}%", "label": "up"} for i in range(3)] + [
        {"text": "Shares fell", "label": "down"}
    ]
    fpb.write_text("\n".join(json.dumps(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    ner = write_ner_task(tmp_path / "ner.jsonl", shots=0)
    model.train()
    scores = score_tasks_in_loop(model, tok, [fpb, ner], batch_size=4)
    assert model.training  # put back as it was
    model.eval()
    assert list(scores) == ["task/fpb-t", "task/ner-t"]
    direct = score_task(model, tok, load_task(fpb), rule="calibrated")
    assert scores["task/fpb-t"] == direct.weighted_f1
    assert 0.0 <= scores["task/ner-t"] <= 1.0
    metrics = tmp_path / "metrics.jsonl"
    records = [
        {"step": 5, "loss": 3.0},
        {"step": 10, **scores},
        {"step": 20, **{k: v / 2 for k, v in scores.items()}},
    ]
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\n{cut", encoding="utf-8")
    png = plot_task_scores(metrics, tmp_path / "task_scores.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_task_scores(tmp_path / "none.jsonl", tmp_path / "x.png") is None


def test_eval_section_of_the_run_config(tmp_path):
    from bloomberg_style.config import EvalSection, RunConfig
    from bloomberg_style.configlib import ConfigError

    task = tmp_path / "t.jsonl"
    task.write_text("{}\n")
    EvalSection(tasks=[str(task)], task_interval=100).validate()
    with pytest.raises(ConfigError, match="task_interval is 0"):
        EvalSection(tasks=[str(task)]).validate()
    with pytest.raises(ConfigError, match="no such file"):
        EvalSection(tasks=[str(tmp_path / "missing.jsonl")], task_interval=5).validate()
    assert RunConfig().eval == EvalSection()  # no tasks unless asked


@pytest.mark.slow
def test_data_parallel_evaluation_equals_one_process(tiny, tmp_path):
    """Two gloo ranks (torchrun) score a classification and a generation task as one process does."""
    import subprocess
    import sys

    from bloomberg_style.artifacts.hf import save_hf_folder
    from tests.conftest import REPO, host_env

    model, tok = tiny
    hf = save_hf_folder(model, tmp_path / "hf", eos_token_id=tok.eod_id)
    tok.save(hf)
    fpb = write_fpb_task(tmp_path / "fpb.jsonl")
    ner = write_ner_task(tmp_path / "ner.jsonl", shots=2)
    common = ["--checkpoint", str(hf), "--tasks", str(fpb), str(ner), "--device", "cpu", "--batch-size", "2"]
    env = {**host_env(), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    results = {}
    for name, launcher in (
        ("one", [sys.executable]),
        (
            "two",
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                "2",
                "--master_port",
                "29533",
            ],
        ),
    ):
        out = tmp_path / name
        proc = subprocess.run([*launcher, str(REPO / "launch" / "evaluate.py"), *common, "--output", str(out)],
                              capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        results[name] = json.loads((out / "results.json").read_text())
    one, two = results["one"], results["two"]
    assert two["settings"]["ranks"] == 2 and one["settings"]["ranks"] == 1
    for key in ("rules", "best_rule", "items", "majority", "shots_dropped"):
        assert two["tasks"]["fpb-t"][key] == one["tasks"]["fpb-t"][key]
    for key in ("score", "items", "majority"):
        assert two["generation"]["ner-t"][key] == one["generation"]["ner-t"][key]
    assert (tmp_path / "two" / "predictions" / "ner-t.jsonl").read_text() == (
        tmp_path / "one" / "predictions" / "ner-t.jsonl"
    ).read_text()


@pytest.mark.slow
def test_sharded_evaluation_equals_one_process(tiny, small_data, tmp_path):
    """--shard-weights (ZeRO-3 inference, 2 deepspeed ranks, and 1 rank without a launcher) scores a
    shard, a classification and a generation task as a plain one-process evaluation does, and
    each rank holds half the weights."""
    import subprocess

    from bloomberg_style.artifacts.hf import save_hf_folder
    from tests.conftest import launch_command, launch_env

    model, tok = tiny
    hf = save_hf_folder(model, tmp_path / "hf", eos_token_id=tok.eod_id)
    tok.save(hf)
    fpb, ner = write_fpb_task(tmp_path / "fpb.jsonl"), write_ner_task(tmp_path / "ner.jsonl", shots=2)
    prefix = next(d["prefix"] for d in small_data["domains"] if d["name"] == "financial")
    common = ["--checkpoint", str(hf), "--data", f"financial={prefix}", "--max-tokens", "700",
              "--tasks", str(fpb), str(ner), "--batch-size", "2"]  # fmt: skip
    results, logs = {}, {}
    for name, ranks, extra in (
        ("one", 1, []),
        ("z3x1", 1, ["--shard-weights"]),
        ("z3x2", 2, ["--shard-weights"]),
    ):
        out = tmp_path / name
        cmd = launch_command("evaluate.py", [*common, *extra, "--output", str(out)], ranks=ranks)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=launch_env({"OMP_NUM_THREADS": "1"}),
                              timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
        results[name], logs[name] = json.loads((out / "results.json").read_text()), proc.stdout
    one = results["one"]
    for name in ("z3x1", "z3x2"):
        z3 = results[name]
        part = z3["settings"]["shard_weights"]
        ranks = 2 if name == "z3x2" else 1
        n = part["parameters"]
        assert part["ranks"] == ranks and part["partitioned"] == n > 20
        assert f"ZeRO-3: {n} of {n} parameters partitioned over {ranks} ranks" in logs[name]
        for held in part["per_rank"]:  # the partitions, alignment padding included
            assert part["elements"] / ranks <= held <= part["elements"] / ranks + n
        got, want = z3["domains"]["financial"], one["domains"]["financial"]
        assert got["tokens"] == want["tokens"] > 0 and abs(got["loss"] - want["loss"]) < 1e-5
        for key in ("rules", "best_rule", "items", "majority", "shots_dropped"):
            assert z3["tasks"]["fpb-t"][key] == one["tasks"]["fpb-t"][key], key
        for key in ("score", "items", "majority"):
            assert z3["generation"]["ner-t"][key] == one["generation"]["ner-t"][key], key
        assert (tmp_path / name / "predictions" / "ner-t.jsonl").read_text() == (
            tmp_path / "one" / "predictions" / "ner-t.jsonl"
        ).read_text()
    assert results["z3x2"]["settings"]["ranks"] == 2


def test_shard_weights_refusals_come_before_the_model_loads(tmp_path, capsys):
    """--shard-weights with --device, a foreign Hugging Face model or an adapter: exit 2, a clear message."""
    from bloomberg_style.cli.evaluate import main

    bloom = tmp_path / "bloom"
    bloom.mkdir()
    (bloom / "config.json").write_text(json.dumps({"model_type": "bloom"}))  # resolved, never loaded
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(bloom)}))
    for args, message in (
        ([str(bloom), "--device", "cpu"], "--device cpu with --shard-weights"),
        ([str(llama)], "is a Hugging Face model that is not our BLOOM"),
        ([str(adapter)], "is an adapter folder; merge it into its base first"),
    ):
        with pytest.raises(SystemExit) as info:
            main(["--checkpoint", *args, "--shard-weights"])
        assert info.value.code == 2
        assert message in capsys.readouterr().err
