"""`ptdiag demo` wiring: scenario folders, one run directory per scenario, the side-by-side table."""

import json
from pathlib import Path

import pytest
from rich.console import Console

from ptdiag.report.demo_view import demo_table
from ptdiag.scenarios.demo import DEMO_SCENARIOS, run_demo
from ptdiag.scenarios.sources import fashion_mnist_available

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "results_basic.json").read_text())


@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install "
                    "dataset-fashion-mnist)")
def test_run_demo_generates_both_pairs_and_runs_each(tmp_path):
    seen = []

    def fake_analyze(config):
        seen.append(config)
        return FIXTURE

    rows = run_demo(tmp_path, {"budget": "quick", "seed": 0}, fake_analyze, n_reference=60, n_shift=40)
    assert [r.key for r in rows] == [d.key for d in DEMO_SCENARIOS] == ["dataset-bias", "extrapolation"]
    for row, config in zip(rows, seen, strict=True):
        assert config.out == str(tmp_path / row.key) and config.budget == "quick"
        assert Path(config.train).is_relative_to(tmp_path / "data") and Path(config.train).name == "reference"
        assert len(list(Path(config.shift).rglob("*.png"))) == 40


def test_demo_table_shows_expected_and_measured_verdicts():
    rows = [type("Row", (), {"key": "dataset-bias", "expected": "dataset-bias", "run_dir": Path("x"),
                             "results": FIXTURE})()]
    console = Console(width=200, record=True, color_system=None)
    console.print(demo_table(rows))
    text = console.export_text()
    assert "dataset-bias" in text and FIXTURE["verdict"]["kind"] in text
    assert "+11.0" in text and "[+8.0, +14.0]" in text and "30.0 % out-of-" in text


@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install "
                    "dataset-fashion-mnist)")
def test_generate_only_writes_the_scenario_folders_and_trains_nothing(tmp_path):
    from typer.testing import CliRunner

    from ptdiag.cli import app

    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--generate-only", "--n-reference", "60",
                                      "--n-shift", "40"])
    assert result.exit_code == 0, result.output
    for demo in DEMO_SCENARIOS:
        assert len(list((tmp_path / "data" / demo.key / "shift").rglob("*.png"))) == 40
        assert not (tmp_path / demo.key).exists()  # no run folder: nothing was analysed
