"""lm-eval compatibility: an exported folder scores under `lm_eval --model hf` as under our scorer.

Needs lm-eval (in the dev extra: `pip install -e ".[dev]"`); skipped without it. Runs
fully offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE): a local model folder, a local task.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
import torch

from bloomberg_style.artifacts.hf import save_hf_folder
from bloomberg_style.evaluation.fewshot import load_task, score_task, split_continuation
from bloomberg_style.evaluation.lm_eval_task import jinja_prompt, write_lm_eval_task
from bloomberg_style.evaluation.scoring import continuation_logprobs
from bloomberg_style.model import BloomForCausalLM, ModelConfig
from tests.conftest import REPO, host_env

LABELS = {"positive": "positive", "negative": "negative", "neutral": "neutral"}


@pytest.fixture(scope="module")
def exported(small_data, tmp_path_factory):
    """A tiny model and its tokenizer saved as a Hugging Face folder."""
    from tokenizer import NumericUnigramTokenizer

    tok = NumericUnigramTokenizer.load(small_data["tokenizer"])
    torch.manual_seed(3)
    cfg = ModelConfig.preset(
        "tiny", vocab_size=1024, hidden_size=32, num_layers=2, num_heads=4, max_seq_len=128
    )
    model = BloomForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper than the init, so choices differ by more than rounding
        model.transformer.word_embeddings.weight.mul_(20)
    hf = save_hf_folder(model, tmp_path_factory.mktemp("hf") / "model", eos_token_id=tok.eod_id)
    tok.save(hf)
    return model, tok, hf


def zero_shot_task(tmp_path):
    """The shipped FPB-style examples with the answer right after "Answer:" (lm-eval's tokenization)."""
    lines = (REPO / "configs" / "eval" / "fpb_demo.jsonl").read_text(encoding="utf-8").splitlines()
    header = {**json.loads(lines[0]), "task": "fpb-lm-eval", "target_delimiter": "", "shots": 0}
    tests = [line for line in lines[1:] if '"split": "test"' in line][:9]
    path = tmp_path / "fpb_lm_eval.jsonl"
    path.write_text("\n".join([json.dumps(header), *tests]) + "\n", encoding="utf-8")
    return load_task(path)


def test_jinja_prompt():
    assert (
        jinja_prompt("{text}\nQuestion: {question}\nAnswer:") == "{{text}}\nQuestion: {{question}}\nAnswer:"
    )
    with pytest.raises(ValueError, match="format spec"):
        jinja_prompt("{text:>10}")


@pytest.mark.slow
def test_transformers_model_scores_like_ours(exported, tmp_path):
    """The exported folder under transformers gives our continuation log-likelihoods."""
    transformers = pytest.importorskip("transformers")
    model, tok, hf = exported
    theirs = transformers.AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    task = zero_shot_task(tmp_path)
    requests = [split_continuation(tok, task.context(e, []), w) for e in task.test for w in LABELS]
    ours = continuation_logprobs(model, requests, batch_size=4)
    via_hf = continuation_logprobs(theirs, requests, batch_size=4)  # no hidden_states: the logits path
    for (a, n), (b, m) in zip(ours, via_hf):
        assert n == m and a == pytest.approx(b, abs=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-eval is not installed (optional)")
def test_lm_eval_harness_matches_our_scorer(exported, tmp_path):
    model, tok, hf = exported
    task = zero_shot_task(tmp_path)
    yaml_path = write_lm_eval_task(task, tmp_path / "tasks")
    out = tmp_path / "lm_eval_out"
    lm_eval = shutil.which("lm_eval") or shutil.which("lm-eval")
    command = [lm_eval] if lm_eval else [sys.executable, "-m", "lm_eval"]
    env = {
        **host_env(),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),  # nothing read from or written to the user's cache
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.run(
        [*command, "run", "--model", "hf", "--model_args", f"pretrained={hf},dtype=float32"]
        + ["--tasks", "fpb_lm_eval", "--include_path", str(yaml_path.parent), "--device", "cpu"]
        + ["--batch_size", "4", "--log_samples", "--output_path", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    samples_files = list(out.rglob("samples_fpb_lm_eval_*.jsonl"))
    assert len(samples_files) == 1
    samples = sorted(
        (json.loads(line) for line in samples_files[0].read_text().splitlines()), key=lambda s: s["doc_id"]
    )
    ours = score_task(model, tok, task, shots=0, bos=False, rule="plain")
    assert len(samples) == len(ours.predictions) == 9
    gaps = [abs(float(r[0][0]) - lp) for s, p in zip(samples, ours.predictions)
            for r, lp in zip(s["resps"], p["logprobs"].values())]  # fmt: skip
    print(f"lm-eval vs ours: {len(gaps)} log-likelihoods, max |difference| {max(gaps):.2e}")
    for sample, prediction in zip(samples, ours.predictions):
        theirs = [float(r[0][0]) for r in sample["resps"]]
        assert theirs == pytest.approx(list(prediction["logprobs"].values()), abs=1e-3)
        assert sample["acc"] == float(prediction["plain"] == prediction["gold"])
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["results"]["fpb_lm_eval"]["acc,none"] == pytest.approx(ours.rules["plain"]["accuracy"])
