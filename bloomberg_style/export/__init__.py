"""Export to and import from the Hugging Face BLOOM format."""

from .hf import (
    config_from_hf,
    from_hf_state_dict,
    load_hf_folder,
    save_hf_folder,
    to_hf_config,
    to_hf_state_dict,
)

__all__ = [
    "config_from_hf",
    "export_hf",
    "from_hf_state_dict",
    "load_hf_folder",
    "load_pretrained",
    "save_hf_folder",
    "to_hf_config",
    "to_hf_state_dict",
]


def __getattr__(name: str):
    # Lazy: these import the training package (checkpoint layout) and deepspeed when used.
    if name == "export_hf":
        from .folder import export_hf

        return export_hf
    if name == "load_pretrained":
        from .checkpoint import load_pretrained

        return load_pretrained
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
