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
    "from_hf_state_dict",
    "load_hf_folder",
    "save_hf_folder",
    "to_hf_config",
    "to_hf_state_dict",
]
