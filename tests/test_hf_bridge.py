"""Our BLOOM and transformers' BloomForCausalLM compute the same function, both directions."""

from __future__ import annotations

import pytest
import torch

from bloomberg_style.artifacts import load_pretrained
from bloomberg_style.artifacts.hf import _expected_shapes
from bloomberg_style.export import (
    config_from_hf,
    from_hf_state_dict,
    load_hf_folder,
    save_hf_folder,
    to_hf_config,
    to_hf_state_dict,
)
from bloomberg_style.model import BloomForCausalLM, ModelConfig

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_thread")


SHAPES = [
    dict(vocab_size=101, hidden_size=64, num_layers=3, num_heads=4),
    dict(vocab_size=83, hidden_size=72, num_layers=2, num_heads=6),  # non-power-of-two heads
]


def ours(seed: int, **shape) -> BloomForCausalLM:
    """Our model with random weights, LayerNorms and biases perturbed away from 1 and 0."""
    torch.manual_seed(seed)
    model = BloomForCausalLM(ModelConfig(**shape)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    return model


def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_expected_shapes_match_the_model() -> None:
    cfg = ModelConfig(**SHAPES[1])
    model = BloomForCausalLM(cfg)
    assert _expected_shapes(cfg) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_ours_to_hf_same_logits(shape: dict, impl: str) -> None:
    model = ours(0, **shape, attention_impl=impl)
    hf = transformers.BloomForCausalLM(to_hf_config(model.config)).eval()
    hf.load_state_dict(to_hf_state_dict(model), strict=True)
    ids = torch.randint(0, shape["vocab_size"], (3, 17))
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(hf, ids), model(ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_hf_to_ours_same_logits(shape: dict) -> None:
    torch.manual_seed(1)
    hf_cfg = to_hf_config(ModelConfig(**shape))
    hf = transformers.BloomForCausalLM(hf_cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    cfg = config_from_hf(hf.config)
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads) == tuple(shape.values())
    model = BloomForCausalLM(cfg).eval()
    model.load_state_dict(from_hf_state_dict(hf.state_dict(), cfg), strict=True)
    assert model.lm_head.weight is model.transformer.word_embeddings.weight
    ids = torch.randint(0, shape["vocab_size"], (2, 21))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf_logits(hf, ids), rtol=0, atol=1e-5)


def test_hf_folder_round_trip(tmp_path) -> None:
    model = ours(2, **SHAPES[1])
    folder = save_hf_folder(model, tmp_path / "hf", eos_token_id=5)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert (hf.config.eos_token_id, hf.config.bos_token_id) == (5, None)
    ids = torch.randint(0, SHAPES[1]["vocab_size"], (2, 11))
    with torch.no_grad():
        expected = model(ids)
        torch.testing.assert_close(hf_logits(hf, ids), expected, rtol=0, atol=1e-5)
        for loaded in (load_hf_folder(folder), load_pretrained(folder)):
            assert loaded.lm_head.weight is loaded.transformer.word_embeddings.weight and not loaded.training
            torch.testing.assert_close(loaded.eval()(ids), expected, rtol=0, atol=0)
        low_folder = save_hf_folder(model, tmp_path / "bf16", dtype=torch.bfloat16)
        low = load_hf_folder(low_folder)
        assert low.transformer.word_embeddings.weight.dtype == torch.bfloat16
        hf_low = transformers.AutoModelForCausalLM.from_pretrained(low_folder)
        assert hf_low.dtype == torch.bfloat16


def test_key_variants_are_accepted() -> None:
    model = ours(3, **SHAPES[0])
    state = model.state_dict()
    # Saved from a bare BloomModel (bigscience checkpoints): no "transformer." prefix, no head.
    bare = {k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"}
    restored = from_hf_state_dict(bare, model.config)
    assert set(restored) == set(state)
    assert all(torch.equal(restored[k], state[k]) for k in state)
    # Wrapped by an engine or torch.compile.
    wrapped = {"module._orig_mod." + k: v for k, v in state.items() if k != "lm_head.weight"}
    out = to_hf_state_dict(wrapped)
    assert set(out) == set(state) and out["lm_head.weight"] is out["transformer.word_embeddings.weight"]


def test_bridge_errors_name_the_problem() -> None:
    model = ours(4, **SHAPES[0])
    cfg = model.config
    state = dict(model.state_dict())
    state["transformer.h.1.mlp.dense_h_to_4h.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"transformer\.h\.1\.mlp\.dense_h_to_4h\.weight"):
        from_hf_state_dict(state, cfg)
    state = dict(model.state_dict())
    del state["transformer.ln_f.bias"]
    with pytest.raises(ValueError, match="ln_f.bias"):
        from_hf_state_dict(state, cfg)
    state = dict(model.state_dict())
    state["lm_head.weight"] = torch.randn_like(state["lm_head.weight"])
    with pytest.raises(ValueError, match="untied"):
        from_hf_state_dict(state, cfg)
    with pytest.raises(ValueError, match="apply_residual_connection_post_layernorm"):
        config_from_hf({**to_hf_config(cfg).to_dict(), "apply_residual_connection_post_layernorm": True})
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_folder("/nonexistent/folder")


def test_greedy_generate_matches_transformers() -> None:
    model = ours(5, **SHAPES[1])
    hf = transformers.BloomForCausalLM(to_hf_config(model.config)).eval()
    hf.load_state_dict(to_hf_state_dict(model), strict=True)
    prompt = torch.randint(0, SHAPES[1]["vocab_size"], (2, 5))
    mine = model.generate(prompt, max_new_tokens=12)
    theirs = hf.generate(prompt, max_new_tokens=12, do_sample=False, attention_mask=torch.ones_like(prompt))
    assert mine.shape == (2, 17) and torch.equal(mine[:, :5], prompt)
    assert torch.equal(mine, theirs)


def test_generate_stops_at_eos_and_pads_finished_rows() -> None:
    model = ours(6, **SHAPES[0])
    prompt = torch.randint(0, SHAPES[0]["vocab_size"], (3, 4))
    free = model.generate(prompt, max_new_tokens=6)
    eos = int(free[0, 5])  # a token row 0 emits: it stops there
    out = model.generate(prompt, max_new_tokens=6, eos_token_id=eos, pad_token_id=0)
    assert eos in out[0, 4:].tolist()
    for row in range(3):  # every row: the free continuation up to its first eos, then padding
        gen, ref = out[row, 4:].tolist(), free[row, 4 : 4 + out.shape[1] - 4].tolist()
        cut = ref.index(eos) + 1 if eos in ref else len(ref)
        assert gen[:cut] == ref[:cut] and all(t == 0 for t in gen[cut:])


def test_from_pretrained_reads_hf_bin_with_weights_only(tmp_path) -> None:
    model = ours(7, **SHAPES[0])
    folder = tmp_path / "bin"
    folder.mkdir()
    to_hf_config(model.config).save_pretrained(folder)
    state = {k: v.clone() for k, v in to_hf_state_dict(model).items() if k != "lm_head.weight"}
    torch.save(state, folder / "pytorch_model.bin")
    loaded = load_pretrained(folder)
    assert not loaded.training
    ids = torch.randint(0, SHAPES[0]["vocab_size"], (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=0)


class _Payload:
    """Unpickling this runs code: exactly what loading must never do."""

    def __reduce__(self):
        return (print, ("payload ran",))


def test_loading_never_unpickles_arbitrary_objects(tmp_path, capsys) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    to_hf_config(ModelConfig(**SHAPES[0])).save_pretrained(folder)
    torch.save({"transformer.word_embeddings.weight": _Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
        load_pretrained(folder)
    assert "payload ran" not in capsys.readouterr().out


def test_from_pretrained_explains_an_unknown_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a Hugging Face folder"):
        load_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "missing")


def test_speed_benchmark_runs_and_reports_a_ratio(capsys, tmp_path) -> None:
    """benchmarks/model_speed.py end to end on a toy shape (timing only; memory is tested in test_model)."""
    import runpy

    from tests.conftest import REPO

    main = runpy.run_path(str(REPO / "benchmarks" / "model_speed.py"), run_name="model_speed")["main"]
    png = tmp_path / "speed.png"
    assert (
        main(["--shapes", "micro", "--repeats", "2", "--threads", "1", "--no-memory", "--plot", str(png)])
        == 0
    )
    assert png.stat().st_size > 10_000
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("micro"))
    ours, theirs, ratio = (float(x) for x in row.split()[8:11])
    assert ours > 0 and theirs > 0 and ratio > 0
    with pytest.raises(SystemExit):
        main(["--shapes", "huge"])


GPU_IMAGE_LACKS = ("deepspeed", "megatron", "flash_attn", "wandb", "bitsandbytes")


def test_speed_benchmark_needs_none_of_what_the_gpu_image_lacks() -> None:
    """The GPU check (benchmarks/gpu_check.sh) runs on an image with torch, triton and
    transformers only: the benchmark runs with deepspeed, megatron-core, flash-attn, wandb and
    bitsandbytes unimportable, and --gpu without CUDA refuses with exit code 2."""
    import subprocess
    import sys

    from tests.conftest import REPO

    def run(*args: str) -> subprocess.CompletedProcess:
        code = (
            "import runpy, sys\n"
            f"for name in {GPU_IMAGE_LACKS!r}: sys.modules[name] = None\n"
            f"sys.argv = ['model_speed.py', *{list(args)!r}]\n"
            "sys.exit(runpy.run_path('benchmarks/model_speed.py', run_name='model_speed')['main']())\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
        )

    ok = run("--shapes", "micro", "--repeats", "2", "--threads", "1", "--no-memory")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert any(line.startswith("micro") for line in ok.stdout.splitlines())
    refused = run("--gpu")
    assert refused.returncode == 2 and "needs a CUDA device" in refused.stderr
