"""bloomberg-style: train domain LLMs the BloombergGPT way."""

__version__ = "0.1.0"
