"""Install bloomberg-style: pip install -e ".[dev]"."""

from pathlib import Path

from setuptools import find_packages, setup

README = Path(__file__).with_name("README.md")

setup(
    name="bloomberg-style",
    version="0.1.0",
    description="Train domain LLMs the BloombergGPT way: numeric-aware tokenizer, "
    "BLOOM decoder, DeepSpeed pretraining, controllers, SFT stages.",
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["bloomberg_style", "bloomberg_style.*", "tokenizer", "tokenizer.*"]),
    # The demo configs, SFT recipes and task files that commands use by default ship inside the
    # package (read with importlib.resources); the top-level configs/ is a symlink to them.
    package_data={
        "bloomberg_style": ["py.typed", "configs/*/*.yaml", "configs/*/*.json", "configs/*/*.jsonl"]
    },
    entry_points={"console_scripts": ["bloomberg-style = bloomberg_style.cli.main:main"]},
    install_requires=[
        "torch>=2.4,<3",
        "deepspeed>=0.15,<0.21",
        "megatron-core>=0.12,<0.20",
        "sentencepiece>=0.2,<0.3",
        "tokenizers>=0.20,<0.30",
        "numpy>=1.26,<3",
        "wandb>=0.17,<1",
        "pyyaml>=6,<7",
        "tqdm>=4.66,<5",
        "matplotlib>=3.8,<4",
        "safetensors>=0.4,<1",
        "pyarrow>=14",
        "peft>=0.10,<1",  # LoRA stages
        "transformers>=4.44,<6",  # the Hugging Face bridge, tokenizer export, lm-eval, HF SFT bases
        "bm25s>=0.3,<0.4",  # knowledge retrieval in chat (BM25)
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "pytest-xdist>=3.5,<4",  # the suite runs on two workers (README)
            "hypothesis>=6.100,<7",
            "ruff>=0.6",
            "scikit-learn>=1.3,<2",  # the weighted-F1 cross-check in tests/test_evaluation_metrics.py
            "lm-eval>=0.4.5,<0.5",  # tests/test_evaluation_lm_eval.py: our scores under lm-eval-harness
        ],
    },
)
