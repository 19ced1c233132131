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


def test_every_setting_is_an_analyze_flag_and_every_flag_a_setting():
    """A knob declared in AnalyzeConfig but not on the command line (or the reverse) is documented and dead."""
    import dataclasses

    import typer

    from ptdiag.cli import app
    from ptdiag.config import AnalyzeConfig

    command = typer.main.get_command(app).commands["analyze"]
    params = {p.name for p in command.params} - {"config_file", "dry_run", "quiet"}
    fields = {f.name for f in dataclasses.fields(AnalyzeConfig)}
    assert params - {"fmt"} | {"format"} == fields
    for p in command.params:  # unset flags must not override the budget or the config file
        if p.name not in ("dry_run", "quiet"):
            assert p.default is None or p.default == () or p.default == [], p.name


def test_comma_lists_and_repeatable_flags_become_the_settings_types(tmp_path):
    from ptdiag.cli.analyze_cmd import settings_from_flags

    flags = settings_from_flags({"baseline_fractions": "0.5,1", "baseline_seeds": "0,1", "strategies": "lp, lpft",
                                 "model": ["a", "b"], "probe_cs": "0.1", "out": tmp_path, "seed": 3})
    assert flags == {"baseline_fractions": (0.5, 1.0), "baseline_seeds": (0, 1), "strategies": ("lp", "lpft"),
                     "model": ("a", "b"), "probe_cs": (0.1,), "out": str(tmp_path), "seed": 3}
