"""Supervised fine-tuning in stages: instruction formats, templates, full and LoRA training,
held-out evaluation, chat.

recipe      recipe YAML -> Recipe / StageSpec dataclasses, validation, overrides
formats     Alpaca / QA (configurable keys, 问题/答案 ...) / conversation records -> Example
templates   prompt templates: which tokens are context and which are trained
collate     token rows with exact label masks, packing or padding
lora        peft LoRA on the model's linear layers, merge
train       one stage through DeepSpeed (the pretraining trainer), export, eval
chain       stages in order, skipping finished ones
evaluate    held-out loss, token precision/recall/F1, BERTScore from a local model
generate    temperature / top-k / top-p sampling, streaming
chat        multi-turn sessions with a stage's template

The demo recipe's generated instruction set is bloomberg_style/demo/instructions.py; model
paths are resolved and loaded by bloomberg_style/artifacts.
"""
