"""Known-answer scenarios on real Fashion-MNIST images, run through `analyze` (slow: minutes each on 2 cores).

Each scenario's expected verdict follows the paper (method.md §5, §8). The verdict logic is never tuned to these
runs; docs/VALIDATION.md records what was measured, including any scenario that does not reproduce.
"""

import json

import pytest
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.datasets import fashion_mnist_available
from ptdiag.scenarios import get_scenario

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install "
                       "dataset-fashion-mnist)"),
]

NOT_REPRODUCED = pytest.mark.xfail(
    reason="does not reproduce at this scale: pre-training recovers ~45 % of the in-support tint gap (ER +5.8 "
           "[+2.1, +9.9]) and ptdiag reports 'inconclusive'; see docs/VALIDATION.md", strict=False)

CASES = [
    pytest.param("tint-bias", {"p": 0.5}, id="tint-bias", marks=NOT_REPRODUCED),
    pytest.param("unseen-tint", {}, id="unseen-tint"),
    pytest.param("invert", {}, id="invert"),
    pytest.param("label-shift", {}, id="label-shift"),
    pytest.param("no-shift", {}, id="no-shift"),
]


@pytest.mark.parametrize("name, params", CASES)
def test_scenario_verdict_matches_the_paper(name, params, tmp_path):
    scenario = get_scenario(name)
    data = scenario.generate(tmp_path / "data", n_reference=4000, n_shift=2000, seed=0, **params)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(data.reference_dir), "--shift", str(data.shift_dir),
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["kind"] in scenario.expected, results["verdict"]
