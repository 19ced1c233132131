"""One declaration per setting: the flags, `--help`, the config-file keys and docs/OPTIONS.md all derive from it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import typer
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.cli._options import default_text, flag, help_text, options_markdown
from ptdiag.config import BUDGETS, AnalyzeConfig, read_config_file, resolve_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "OPTIONS.md"
runner = CliRunner()


def _analyze():
    return typer.main.get_command(app).commands["analyze"]


def test_docs_options_table_is_current():
    text = options_markdown()
    if os.environ.get("PTDIAG_UPDATE_GOLDEN"):
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, "docs/OPTIONS.md is stale: run `make options`"


def test_every_setting_has_one_flag_with_its_declared_help():
    options = {p.name: p for p in _analyze().params if p.param_type_name == "option"}
    assert options, "no options found: Typer's parameter classes changed"
    for field in dataclasses.fields(AnalyzeConfig):
        option = options[field.name]
        assert flag(field.name) in option.opts
        assert option.help == help_text(field.name)
        assert field.metadata["help"].replace("|", "\\|") in options_markdown()


def test_help_states_per_budget_defaults_from_the_budget_table():
    assert default_text("image_size") == "quick: 64 px; standard: 128 px; full: 224 px"
    assert default_text("epsilon") == "0.2"
    assert default_text("max_reference").endswith("full: all")
    for budget, overrides in BUDGETS.items():
        config = resolve_config({"budget": budget})
        for name, value in overrides.items():
            assert getattr(config, name) == value, (budget, name)


def test_a_config_file_key_and_its_flag_set_the_same_setting(tmp_path):
    for key in ("ft-seeds", "ft_seeds"):
        path = tmp_path / f"{key}.toml"
        path.write_text(f"{key} = 2\n")
        assert read_config_file(path) == {"ft_seeds": 2}
        assert resolve_config({}, path).ft_seeds == 2
    assert resolve_config({"ft_seeds": 5}, tmp_path / "ft_seeds.toml").ft_seeds == 5  # flags win


def test_choices_are_checked_by_the_parser_with_the_same_exit_code():
    result = runner.invoke(app, ["analyze", "--train", "a", "--shift", "b", "--scale", "linear"])
    assert result.exit_code == 2 and "linear" in result.output


def test_inspect_shares_the_source_options_with_analyze():
    inspect_params = {p.name: p for p in typer.main.get_command(app).commands["inspect"].params}
    analyze_params = {p.name: p for p in _analyze().params}
    for name in ("train", "shift", "format", "cache_dir", "train_split", "shift_split", "image_column",
                 "label_column", "label_map"):
        assert inspect_params[name].opts == analyze_params[name].opts
        assert inspect_params[name].help == analyze_params[name].help
        assert inspect_params[name].type_descriptor.annotation == analyze_params[name].type_descriptor.annotation


def test_a_config_file_value_outside_the_choices_names_the_flag(tmp_path):
    import pytest

    from ptdiag.errors import UsageError

    path = tmp_path / "c.toml"
    path.write_text('format = "zip"\n')
    with pytest.raises(UsageError, match="--format must be one of imagefolder"):
        resolve_config({}, path)
