import pytest

from bloomberg_style.config import ConfigError, RunConfig, apply_override
from bloomberg_style.training.pretrain import DEMO_CONFIG
from bloomberg_style.training.schedule import WarmupCosineSchedule


def test_demo_config_loads_and_overrides():
    cfg = RunConfig.load(DEMO_CONFIG, ["train.steps=7", "optim.lr=6e-3", "data.domains.1.weight=0.25"])
    assert cfg.train.steps == 7
    assert cfg.optim.lr == pytest.approx(6e-3)  # PyYAML reads 6e-3 as a string: coerced
    assert cfg.data.domains[1].weight == 0.25
    assert [d.name for d in cfg.data.domains] == ["financial", "general"]


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stpes'\]"):
        RunConfig.load(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.precision=fp16", "train.precision"),
        ("train.zero_stage=5", "train.zero_stage"),
        ("optim.min_lr=1.0", "optim.min_lr"),
        ("train.steps=abc", "expected an integer"),
        ("data.domains.0.weight=0", r"data.domains\[0\].weight"),
        ("logging.wandb=maybe", "logging.wandb"),
        ("data.valid_seed=-1", "data.valid_seed must be an integer >= 0"),
        ("data.valid_seed=1.5", "data.valid_seed: expected an integer"),
    ],
)
def test_bad_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(DEMO_CONFIG, [override])


def test_valid_seed_is_its_own_setting():
    cfg = RunConfig.load(DEMO_CONFIG, ["train.seed=5"])
    assert cfg.data.valid_seed == 1234  # a changed train.seed leaves the validation draw alone
    assert RunConfig.load(DEMO_CONFIG, ["data.valid_seed=0"]).data.valid_seed == 0


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        RunConfig.load(tmp_path / "nope.yaml")


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_override({}, "train.steps")
    with pytest.raises(ConfigError, match="not an index"):
        apply_override({"data": {"domains": [{}]}}, "data.domains.3.weight=1")


def test_batch_arithmetic():
    cfg = RunConfig.load(DEMO_CONFIG, ["train.global_batch_size=12", "train.micro_batch_size=2"])
    assert cfg.train.grad_accumulation(3) == 2
    with pytest.raises(ConfigError, match="not divisible"):
        cfg.train.grad_accumulation(4)


def test_hash_ignores_runtime_only_settings():
    a = RunConfig.load(DEMO_CONFIG)
    b = RunConfig.load(DEMO_CONFIG, ["train.exit_at_step=3", "logging.progress=false"])
    c = RunConfig.load(DEMO_CONFIG, ["optim.lr=1e-3"])
    assert a.hash() == b.hash() != c.hash()


def test_yaml_round_trip():
    cfg = RunConfig.load(DEMO_CONFIG)
    again = RunConfig.from_dict(__import__("yaml").safe_load(cfg.to_yaml()))
    assert again == cfg


def test_warmup_cosine_schedule():
    s = WarmupCosineSchedule(peak_lr=6e-5, min_lr=6e-6, warmup_steps=1800, decay_steps=10000)
    assert s.lr_at(0) == pytest.approx(6e-5 / 1800)
    assert s.lr_at(1799) == pytest.approx(6e-5)
    assert s.lr_at(1800) == pytest.approx(6e-5)
    assert s.lr_at(1800 + 5000) == pytest.approx((6e-5 + 6e-6) / 2)
    assert s.lr_at(1800 + 10000) == pytest.approx(6e-6)
    assert s.lr_at(10**7) == pytest.approx(6e-6)
    lrs = [s.lr_at(k) for k in range(1800, 11800, 100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    s.scale(2 / 3)
    assert s.lr_at(1800) == pytest.approx(4e-5) and s.min_lr == pytest.approx(4e-6)
    with pytest.raises(ValueError):
        s.scale(0)


def test_model_overrides_mirror_model_config():
    """config.py cannot import model/: its typed overrides must be exactly ModelConfig's fields."""
    import dataclasses
    import typing

    from bloomberg_style.config import ModelOverrides
    from bloomberg_style.model import ModelConfig

    ours = typing.get_type_hints(ModelOverrides)
    theirs = typing.get_type_hints(ModelConfig)
    assert [f.name for f in dataclasses.fields(ModelOverrides)] == [
        f.name for f in dataclasses.fields(ModelConfig)
    ]
    for name, hint in theirs.items():
        assert ours[name] == hint | None, name


def test_model_overrides_are_typed_with_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  preset: tiny\n  overrides:\n    hidden_size: 64\n    num_layrs: 2\n")
    with pytest.raises(ConfigError, match=r"run.yaml:5: model.overrides.num_layrs: unknown key"):
        RunConfig.load(path)
    path.write_text("model:\n  overrides:\n    hidden_size: wide\n")
    with pytest.raises(ConfigError, match=r"run.yaml:3: model.overrides.hidden_size: expected an integer"):
        RunConfig.load(path)
    path.write_text("model:\n  overrides:\n    max_seq_len: 512\n")
    with pytest.raises(ConfigError, match=r"run.yaml:3: model.overrides.max_seq_len is set by the run"):
        RunConfig.load(path)


def test_model_config_from_run():
    """Preset + the overrides the YAML gave; the rest from the run; config.yaml shows only what was written."""
    from bloomberg_style.model import ModelConfig

    cfg = RunConfig.load(DEMO_CONFIG, ["model.overrides.num_layers=3", "model.overrides.layer_norm_eps=1e-6"])
    model = ModelConfig.from_run(cfg, vocab_size=1000)
    assert model.num_layers == 3 and model.layer_norm_eps == 1e-6
    assert model.vocab_size == 1024 and model.max_seq_len == cfg.data.seq_len
    assert cfg.to_dict()["model"]["overrides"] == {**RunConfig.load(DEMO_CONFIG).to_dict()["model"]["overrides"],
                                                   "num_layers": 3, "layer_norm_eps": 1e-6}  # fmt: skip
    bad = RunConfig.load(DEMO_CONFIG, ["model.overrides.num_heads=7"])
    with pytest.raises(ConfigError, match="model: ModelConfig.hidden_size"):
        ModelConfig.from_run(bad, vocab_size=1000)


def test_schedule_from_run():
    cfg = RunConfig.load(DEMO_CONFIG, ["train.steps=100", "optim.warmup_steps=10", "optim.decay_steps=0"])
    s = WarmupCosineSchedule.from_run(cfg)
    assert (s.peak_lr, s.min_lr, s.warmup_steps, s.decay_steps) == (cfg.optim.lr, cfg.optim.min_lr, 10, 90)
