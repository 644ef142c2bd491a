"""No code runs from files someone hands you: the index cache and checkpoint weights.

Each test plants a real payload (a pickle that creates a marker file when unpickled),
first shows that an unguarded load would run it, then that our loaders refuse it.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from bloomberg_style.data.cache_safety import UnsafeIndexCache, check_index_cache, npy_needs_pickle


class Payload:
    """Unpickling this creates `marker`: stands for any code a planted file could run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_npy(path, marker) -> None:
    np.save(path, np.array([Payload(str(marker)), 1], dtype=object), allow_pickle=True)


def test_planted_pickle_npy_would_run_and_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    probe = tmp_path / "probe.npy"
    plant_npy(probe, tmp_path / "ran_in_probe")
    np.load(probe, allow_pickle=True)  # what megatron-core does with its cache files
    assert (tmp_path / "ran_in_probe").exists()  # the payload is real

    marker = tmp_path / "ran"
    plant_npy(cache / "0123abcd-GPTDataset-train-document_index.npy", marker)
    np.save(cache / "fine-sample_index.npy", np.arange(10, dtype=np.int64))  # megatron's kind of file
    assert not npy_needs_pickle(cache / "fine-sample_index.npy")
    with pytest.raises(UnsafeIndexCache, match="document_index.npy"):
        check_index_cache(cache)
    assert not marker.exists()
    check_index_cache(cache, trust=True)  # the user said so: no refusal (and nothing loaded here)


def test_build_datasets_refuses_a_planted_cache_before_megatron_loads_it(tmp_path, small_data):
    from bloomberg_style.data.mixture import DomainSpec, build_datasets

    cache = tmp_path / "shared_cache"
    cache.mkdir()
    marker = tmp_path / "ran"
    plant_npy(cache / "planted.npy", marker)
    domains = [DomainSpec(d["name"], d["prefix"], d["weight"]) for d in small_data["domains"]]
    with pytest.raises(UnsafeIndexCache, match="planted.npy"):
        build_datasets(
            domains, seq_len=64, seed=1, train_samples=8, eod_id=0, vocab_size=1024,
            valid_fraction=0.05, cache_dir=cache,
        )  # fmt: skip
    assert not marker.exists()


def _fake_checkpoint(tmp_path, files: list[str], marker):
    step = tmp_path / "checkpoints" / "step_00000001"
    step.mkdir(parents=True)
    (step / "trainer_state.json").write_text(json.dumps({"model_config": {"hidden_size": 8}}))
    for name in files:
        torch.save({"module": {"w": torch.zeros(2)}, "hook": Payload(str(marker))}, step / name)
    (tmp_path / "checkpoints" / "latest").write_text("step_00000001")
    return step


@pytest.mark.parametrize(
    "files",
    [
        ["mp_rank_00_model_states.pt"],  # ZeRO 0: the module saved whole
        ["mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"],  # ZeRO 1-3
    ],
)
def test_checkpoint_weights_load_without_unpickling(tmp_path, files):
    from bloomberg_style.artifacts import load_checkpoint_state_dict

    marker = tmp_path / "ran"
    step = _fake_checkpoint(tmp_path, files, marker)
    torch.load(step / files[0], weights_only=False)  # the unguarded load runs the payload
    assert marker.exists()
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match="refused to unpickle"):
        load_checkpoint_state_dict(step)
    assert not marker.exists()
    from bloomberg_style.artifacts import safe_load

    assert torch.load is safe_load._ORIGINAL_LOAD  # the guard is undone after the load
