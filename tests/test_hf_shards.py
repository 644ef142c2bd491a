"""Sharded safetensors with an index: the layout a 50B export uses, on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from bloomberg_style.artifacts.hf import load_hf_folder, save_hf_folder
from bloomberg_style.artifacts.hf_shards import INDEX_FILE, SINGLE_FILE, parse_size, plan_shards
from bloomberg_style.model import BloomForCausalLM, ModelConfig

transformers = pytest.importorskip("transformers")

CFG = dict(vocab_size=256, hidden_size=64, num_layers=3, num_heads=4, max_seq_len=64)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5GB", 5 * 10**9),
        ("500MB", 5 * 10**8),
        ("2GiB", 2 * 2**30),
        ("1.5KB", 1500),
        ("4096", 4096),
        (77, 77),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "5 parsecs", "0", "-3MB", ""])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="max shard size"):
        parse_size(text)


def test_plan_shards_keeps_order_and_gives_a_big_tensor_its_own_file():
    shapes = {"a": (10,), "b": (10,), "big": (100,), "c": (5,), "d": (5,)}
    assert plan_shards(shapes, itemsize=1, max_shard_bytes=25) == [["a", "b"], ["big"], ["c", "d"]]
    assert plan_shards(shapes, itemsize=4, max_shard_bytes=10**6) == [list(shapes)]


def test_sharded_folder_loads_in_transformers_and_ours(tmp_path):
    torch.manual_seed(0)
    model = BloomForCausalLM(ModelConfig(**CFG)).eval()
    out = save_hf_folder(model, tmp_path / "hf", max_shard_bytes=20_000, eos_token_id=0)
    index = json.loads((out / INDEX_FILE).read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 3 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert not (out / SINGLE_FILE).exists() and "lm_head.weight" not in index["weight_map"]
    stored = sum(p.numel() for p in model.parameters()) * 4  # tied head stored once
    assert index["metadata"]["total_size"] == stored

    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(ids)
        torch.testing.assert_close(load_hf_folder(out)(ids), reference, rtol=0, atol=0)
        hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
        torch.testing.assert_close(hf(input_ids=ids).logits, reference, rtol=0, atol=1e-5)

    # Written again as one file into the same folder: no stale shard or index is left to mix in.
    save_hf_folder(model, out)
    assert (out / SINGLE_FILE).is_file() and not (out / INDEX_FILE).exists()
    assert not list(out.glob("model-*-of-*.safetensors"))
