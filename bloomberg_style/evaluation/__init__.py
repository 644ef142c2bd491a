"""Evaluation the paper's way: held-out loss per domain, bits per byte, few-shot tasks.

metrics      loss, perplexity, bits per byte, accuracy, weighted F1 (pure Python)
scoring      batched per-token log-likelihoods of a model (FP32 log-softmax)
lm_loss      per-domain loss / perplexity / bits per byte on token shards or raw text
fewshot      JSONL task files, seeded shots, plain / calibrated / length-normalised scoring
lm_eval_task our task files as local lm-evaluation-harness tasks
loading      artifacts.resolve(path) -> model, tokenizer, run config, checked for evaluation
report       results.json, results.md, per-example predictions
run          what launch/evaluate.py does

The demo task files come from bloomberg_style/demo/tasks.py; the unigram baseline the
trainer's summary compares against is data/unigram.py. Nothing is imported here, so `bloomberg_style.evaluation.metrics` loads without torch.
"""
