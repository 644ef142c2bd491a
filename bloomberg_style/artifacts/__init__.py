"""Everything on disk: run folders, checkpoints, Hugging Face and adapter folders, tokenizer copies.

`resolve(path)` says what a path holds (a `ModelRef`); `load_model(ref, dtype, device)` and
`load_tokenizer(ref)` load it. layout.py names every file and folder; nothing else does.

layout     the names: run folder, checkpoints/, step tags, latest, trainer_state.json, best tag
refs       resolve(path) -> ModelRef (kind, weights folder, run folder, adapter base, tokenizer)
load       load_model, load_tokenizer, load_pretrained, save_model (HF folder + tokenizer copy)
checkpoint our DeepSpeed checkpoints -> FP32 state dict -> model (gathers ZeRO shards)
hf         the Hugging Face BLOOM format: config and state-dict conversion, folders in and out
adapter    a peft LoRA adapter folder onto its base model
"""

from .checkpoint import load_checkpoint_model, load_checkpoint_state_dict
from .layout import adapter_base, copy_tokenizer, resolve_checkpoint, run_folder_of
from .load import load_model, load_pretrained, load_tokenizer, save_model
from .refs import ModelRef, model_kind, resolve, tokenizer_dir

__all__ = [
    "ModelRef",
    "adapter_base",
    "copy_tokenizer",
    "load_checkpoint_model",
    "load_checkpoint_state_dict",
    "load_model",
    "load_pretrained",
    "load_tokenizer",
    "model_kind",
    "resolve",
    "resolve_checkpoint",
    "run_folder_of",
    "save_model",
    "tokenizer_dir",
]
