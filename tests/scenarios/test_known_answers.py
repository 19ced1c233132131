"""Known-answer scenarios on real Fashion-MNIST images, run through `analyze` (slow: minutes each on 2 cores).

Expected answers follow the paper (method.md §5, §8). The verdict logic is never tuned to these runs;
docs/VALIDATION.md records what was measured. Out-of-support shifts must give the paper's verdict. The no-shift
control cannot be *shown* equivalent at this size (the pooled gap's 90 % interval is ± 2.1-2.2 points wide against
a ± 2-point margin: `inconclusive` at every seed, VALIDATION.md), so it must read `no-shift` or `inconclusive` for
want of data, never a shift, with a gap within ± 3 points. The in-support (dataset-bias) scenarios sit at the
decision boundary at this scale — LP-FT's ER_in is about +4 to +6 points with an interval that touches 0, so the
verdict moves between `dataset-bias` and `inconclusive` with float-level changes — so for them the test checks what
is robust: the support split, a gap made of bias, a verdict that never claims pre-training fixes it, and
pre-training closing well under the whole in-support drop.
"""

import json

import pytest
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.scenarios import get_scenario
from ptdiag.scenarios.sources import fashion_mnist_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install "
                       "dataset-fashion-mnist)"),
]


def _analyze(name: str, params: dict, tmp_path) -> dict:
    data = get_scenario(name).generate(tmp_path / "data", n_reference=4000, n_shift=2000, seed=0, **params)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(data.reference_dir), "--shift", str(data.shift_dir),
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("name", ["unseen-tint", "invert"])
def test_out_of_support_verdicts_match_the_paper(name, tmp_path):
    results = _analyze(name, {}, tmp_path)
    assert results["verdict"]["kind"] == "pretraining-helps", results["verdict"]
    support = results["support"]
    assert support["n_out"] / (support["n_in"] + support["n_out"]) > 0.9
    primary = next(p for p in results["pretrained"] if p["name"] == results["verdict"]["primary"])
    assert primary["er_out"]["lower"] > 0.2  # at least 20 points above the baselines out-of-support


def test_no_shift_control_is_never_called_a_shift(tmp_path):
    results = _analyze("no-shift", {}, tmp_path)
    verdict = results["verdict"]
    assert verdict["kind"] in ("no-shift", "inconclusive"), verdict
    if verdict["kind"] == "inconclusive":  # for want of data, and it says so
        assert any("too little data" in reason for reason in verdict["reasons"]), verdict["reasons"]
    support = results["support"]
    assert support["n_out"] / (support["n_in"] + support["n_out"]) < 0.05  # nothing to extrapolate to
    gap = verdict["effects"]["pooled_gap"]
    assert -0.03 < gap["lower"] and gap["upper"] < 0.03  # within the ± 3 points VALIDATION.md measured at 4 seeds


@pytest.mark.parametrize("name, params", [("tint-bias", {"p": 0.5}), ("label-shift", {})])
def test_in_support_shifts_are_bias_and_pretraining_does_not_close_them(name, params, tmp_path):
    results = _analyze(name, params, tmp_path)
    support = results["support"]
    assert support["n_in"] / (support["n_in"] + support["n_out"]) > 0.85
    assert results["verdict"]["kind"] in ("dataset-bias", "inconclusive"), results["verdict"]
    primary = next(p for p in results["pretrained"] if p["name"] == results["verdict"]["primary"])
    line = next(d for d in results["decomposition"]["baseline"] if primary["name"] in d["name"])
    assert line["bias_component"] > max(line["extrapolation_component"] or 0.0, 0.0)
    assert primary["share_recovered"]["in_support"] < 0.75  # most of the in-support drop remains


def test_the_helping_recipe_is_named_even_when_another_leads_on_reference_accuracy(tmp_path):
    """Unseen tint at 300 reference / 400 shifted images, seed 0 (docs/VALIDATION.md §1): the linear probe leads on
    reference accuracy (80.0 against 76.7 % measured) while LP-FT recovers more of the extrapolation gap. The verdict
    judges each recipe on its own evidence: `pretraining-helps`, naming LP-FT, the recipe with the larger recovery."""
    data = get_scenario("unseen-tint").generate(tmp_path / "data", n_reference=300, n_shift=400, seed=0)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(data.reference_dir), "--shift", str(data.shift_dir),
                                      "--out", str(out), "-q", "--seed", "0"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    verdict = results["verdict"]
    assert verdict["kind"] == "pretraining-helps", verdict["reasons"]
    assert verdict["helping_recipe"].endswith("/lpft"), verdict["helping_recipe"]
    rows = {p["strategy"].split("/")[-1]: p for p in results["pretrained"]}
    assert rows["lpft"]["er_out"]["mid"] > rows["lp"]["er_out"]["mid"]
