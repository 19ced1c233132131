import pytest

from ptdiag.config import BUDGETS, AnalyzeConfig, resolve_config
from ptdiag.errors import UsageError


def test_precedence_budget_file_flags(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('ft-epochs = 7\nbaseline_fractions = [0.5, 1.0]\nseed = 3\n')
    cfg = resolve_config({"budget": "standard", "seed": 9, "train": "a", "shift": "b"}, cfg_file)
    assert cfg.image_size == BUDGETS["standard"]["image_size"]  # budget
    assert cfg.ft_epochs == 7 and cfg.baseline_fractions == (0.5, 1.0)  # file
    assert cfg.seed == 9  # flag beats file


def test_yaml_config_and_unknown_key(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("model: [resnet18, tf_efficientnet_lite0]\nepsilon: 0.1\n")
    cfg = resolve_config({}, good)
    assert cfg.model == ("resnet18", "tf_efficientnet_lite0") and cfg.epsilon == 0.1
    bad = tmp_path / "bad.yaml"
    bad.write_text("epsilonn: 0.1\n")
    with pytest.raises(UsageError, match="did you mean 'epsilon'"):
        resolve_config({}, bad)
    with pytest.raises(UsageError, match="cannot read"):
        resolve_config({}, tmp_path / "missing.toml")


@pytest.mark.parametrize("flags, message", [
    ({"budget": "huge"}, "--budget"),
    ({"epsilon": 1.5}, "--epsilon"),
    ({"strategies": ("lp", "zs")}, "--strategies"),
    ({"baseline_eval_epochs": (9,), "baseline_epochs": 3}, "--baseline-eval-epochs"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "--val-fraction"),
])
def test_invalid_settings_name_the_flag(flags, message):
    with pytest.raises(UsageError, match=message):
        resolve_config(flags)


def test_quick_budget_has_enough_baseline_points():
    cfg = AnalyzeConfig()
    assert len(cfg.baseline_fractions) * len(cfg.baseline_seeds) * len(cfg.baseline_eval_epochs) >= 12
    std = resolve_config({"budget": "standard"})
    assert len(std.baseline_fractions) * len(std.baseline_seeds) * len(std.baseline_eval_epochs) >= 20
