"""The attention path a run reports is the one resolve_impl picks, with the fallback's reason."""

from __future__ import annotations

import torch

from bloomberg_style.training.attention_report import attention_path, describe


def test_auto_on_cpu_reports_sdpa_and_why_not_flash():
    report = attention_path("auto", torch.device("cpu"), torch.bfloat16)
    assert report["path"] == "sdpa" and "CUDA" in report["fallback_reason"]
    assert "not flash because flash-attention needs CUDA" in describe(report)


def test_explicit_path_has_no_fallback_reason():
    for impl in ("sdpa", "eager"):
        report = attention_path(impl, torch.device("cpu"), torch.float32)
        assert report == {"requested": impl, "path": impl, "fallback_reason": None}
        assert describe(report) == f"attention: {impl} (attention_impl={impl})"


def test_flash_requested_reports_the_fallback_without_a_second_warning(recwarn):
    report = attention_path("flash", torch.device("cpu"), torch.float32)
    assert report["path"] == "sdpa" and report["fallback_reason"]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_report_is_the_models_own_choice():
    """One source of truth: what the log says is what the model's forward runs (attention.choose)."""
    from bloomberg_style.model import BloomForCausalLM, ModelConfig

    for impl in ("auto", "sdpa", "eager", "flash", "flex"):
        for dropout in (0.0, 0.1):
            model = BloomForCausalLM(
                ModelConfig(vocab_size=97, hidden_size=32, num_layers=1, num_heads=4, attention_impl=impl,
                            attention_dropout=dropout)
            ).train()  # fmt: skip
            report = attention_path(impl, torch.device("cpu"), torch.float32, dropout, model.config.head_dim)
            assert report["path"] == model.attention_choice("cpu").impl, (impl, dropout)


def test_flex_with_attention_dropout_reports_its_own_fallback():
    report = attention_path("flex", torch.device("cpu"), torch.float32, dropout_p=0.1)
    assert report["path"] == "sdpa" and "dropout" in report["fallback_reason"]
    assert "; not flex because" in describe(report)
