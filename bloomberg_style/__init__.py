"""bloomberg-style: train domain LLMs the BloombergGPT way.

The package is layered; a module may import only from its own package and from packages on
lower layers, never upward and never sideways (tests/test_layers.py checks every import,
function-level ones included, and that no import cycle exists). Bottom to top:

    0  atomic, configlib         crash-safe writes; the config engine (YAML, file:line errors)
    1  config                    the run configuration sections
    2  corpus, demo, model,        corpus readers; the seeded demo generators; the network;
       controllers                 the loss-spike / LR controllers
    3  tokenizer, sizing           numeric-aware Unigram tokenizer (reads corpora);
                                   shapes, FLOPs, memory, the size ladder (pure arithmetic)
    4  data                        corpus + tokenizer -> token shards, domain mixtures
    5  artifacts                   everything on disk: run folders, checkpoints, HF / adapter
                                   folders; resolve(path), load_model, load_tokenizer
    6  training                    DeepSpeed pretraining: the loop, checkpoint writing, resume
    7  evaluation, export          held-out loss and few-shot tasks; checkpoint -> HF folder
    8  sft                         supervised fine-tuning stages, LoRA, chat
    9  cli                         the `bloomberg-style` command

`tokenizer` is a top-level package of its own (it ships the tokenizer alone); it sits on
layer 3. docs/architecture.md draws the same picture.
"""

__version__ = "0.1.0"

# Bottom to top; tests/test_layers.py reads this. Names are packages or modules directly
# under bloomberg_style/, plus the top-level `tokenizer` package.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("atomic", "configlib"),
    ("config",),
    ("corpus", "demo", "model", "controllers"),
    ("tokenizer", "sizing"),
    ("data",),
    ("artifacts",),
    ("training",),
    ("evaluation", "export"),
    ("sft",),
    ("cli",),
)
