"""Evaluation the paper's way: held-out loss per domain, bits per byte, few-shot tasks.

metrics      loss, perplexity, bits per byte, accuracy, weighted F1 (pure Python)
scoring      batched per-token log-likelihoods of a model (FP32 log-softmax)
lm_loss      per-domain loss / perplexity / bits per byte on token shards or raw text
fewshot      JSONL task files, seeded shots, plain / calibrated / length-normalised scoring
gen_tasks    generation-scored task files (NER, ConvFinQA): greedy answers, task metrics
generation   batched greedy decoding (where a KV-cached step plugs in)
entities     NER answers as text, entity-level F1
convfinqa_dsl  ConvFinQA's program language, evaluated safely; exact match
converters/  public data sets (FPB, FiQA SA, Headline, NER, ConvFinQA) -> task files
parallel     task scoring split over data-parallel ranks
sharded      ZeRO-3 inference (--shard-weights): each rank holds 1/N of the weights
in_loop      task scores during pretraining and task_scores.png
lm_eval_task our task files as local lm-evaluation-harness tasks
loading      artifacts.resolve(path) -> model, tokenizer, run config, checked for evaluation
report       results.json, results.md, per-example predictions
run          what launch/evaluate.py does

The demo task files come from bloomberg_style/demo/tasks.py; the unigram baseline the
trainer's summary compares against is data/unigram.py. Nothing is imported here, so `bloomberg_style.evaluation.metrics` loads without torch.
"""
