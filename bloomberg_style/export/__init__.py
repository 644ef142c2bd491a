"""Our checkpoints -> Hugging Face BLOOM folders (`export_hf`), and the format conversions.

The HF format itself (state-dict names, config.json, reading and writing folders) lives in
artifacts/hf.py with the rest of the on-disk layout; it is re-exported here for callers that
think of it as "the exporter".
"""

from bloomberg_style.artifacts.hf import (
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
    "save_hf_folder",
    "to_hf_config",
    "to_hf_state_dict",
]


def __getattr__(name: str):
    # Lazy: export_hf imports deepspeed's ZeRO gatherer when used.
    if name == "export_hf":
        from .folder import export_hf

        return export_hf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
