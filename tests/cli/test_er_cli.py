"""`ptdiag er --accuracies models.csv`: good tables, JSON shape, and every bad-CSV case (exit 3, one line)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ptdiag.cli import app

runner = CliRunner()

HEADER = "model,kind,ref_acc,shift_acc,ref_n,shift_n"
BASELINES = ["b1,baseline,0.62,0.41,500,1000", "b2,baseline,0.68,0.46,500,1000", "b3,baseline,0.71,0.49,500,1000",
             "b4,baseline,0.76,0.55,500,1000", "b5,baseline,0.83,0.63,500,1000"]
GOOD = "\n".join([HEADER, *BASELINES, "lp,pretrained,0.86,0.78,500,1000"]) + "\n"


def write(tmp_path, text, name="models.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_csv_prints_table_and_writes_json(tmp_path):
    csv = write(tmp_path, GOOD)
    out_json = tmp_path / "er.json"
    result = runner.invoke(app, ["er", "--accuracies", str(csv), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert "lp" in result.output and "ER" in result.output
    doc = json.loads(out_json.read_text())
    assert doc["schema_version"] == 2
    assert set(doc["fit"]["shift"]) >= {"n", "slope", "intercept", "r2", "residual_se", "ref_range"}
    lp = next(m for m in doc["models"] if m["model"] == "lp")
    assert set(lp) >= {"model", "kind", "ref_acc", "shift_acc", "predicted_shift_acc", "er", "extrapolated"}
    assert lp["extrapolated"] is True and lp["er"]["lower"] > 0.05
    assert "in_support" not in doc["fit"]


def test_split_columns_add_split_fits_and_logit_scale(tmp_path):
    rows = [HEADER + ",in_acc,out_acc"] + [f"{b},{0.05 + i / 10:.2f},{i / 20:.2f}" for i, b in enumerate(BASELINES, 1)]
    rows.append("lp,pretrained,0.86,0.78,500,1000,0.6,")  # blank out_acc for a pre-trained row is allowed
    out_json = tmp_path / "er.json"
    result = runner.invoke(app, ["er", "--accuracies", str(write(tmp_path, "\n".join(rows))), "--scale", "logit",
                                 "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out_json.read_text())
    assert doc["scale"] == "logit" and {"in_support", "out_of_support"} <= set(doc["fit"])
    lp = next(m for m in doc["models"] if m["model"] == "lp")
    assert lp["er_in"] is not None and lp["er_out"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,kind,ref_acc\nb1,baseline,0.5\n", "missing column(s) shift_acc"),
        (GOOD.replace("0.78", "1.3"), "shift_acc 1.3 is outside [0, 1]"),
        (GOOD.replace("0.62", "-0.1"), "ref_acc -0.1 is outside [0, 1]"),
        ("\n".join([HEADER, *BASELINES[:2], "lp,pretrained,0.86,0.78,500,1000"]), "only 2 baseline row(s)"),
        (GOOD.replace("0.68", "abc"), "ref_acc 'abc' is not a number"),
        (GOOD.replace("b3,baseline", "b3,zoo"), "kind 'zoo' must be baseline or pretrained"),
        (GOOD.replace("b2,", "b1,"), "appears more than once"),
        (GOOD.replace(",1000\nlp", ",-5\nlp"), "not a positive whole number"),
        (GOOD.replace("0.71,0.49", "0.71,"), "shift_acc is blank"),
        ("", "not a readable CSV"),
    ],
)
def test_bad_csv_gives_one_line_naming_the_file_and_exit_3(tmp_path, text, message):
    csv = write(tmp_path, text)
    result = runner.invoke(app, ["er", "--accuracies", str(csv)])
    assert result.exit_code == 3, result.output
    assert message in result.output and str(csv) in result.output
    assert "Traceback" not in result.output


def test_missing_file_exit_3(tmp_path):
    missing = tmp_path / "nope.csv"
    result = runner.invoke(app, ["er", "--accuracies", str(missing)])
    assert result.exit_code == 3 and f"{missing}: no such file" in result.output


def test_subprocess_python_m_ptdiag_er(tmp_path):
    bad = write(tmp_path, GOOD.replace("0.78", "2"), "bad.csv")
    proc = subprocess.run([sys.executable, "-m", "ptdiag", "er", "--accuracies", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3
    assert "outside [0, 1]" in proc.stderr and str(bad) in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
    good = subprocess.run([sys.executable, "-m", "ptdiag", "er", "--accuracies", str(write(tmp_path, GOOD))],
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and "lp" in good.stdout


def test_a_flat_precise_line_is_trusted_by_its_prediction_band(tmp_path):
    """r² ≈ 0 (baselines at the floor of the shifted set, tight scatter) must not demote the line: a candidate far
    above it stands out of the band, one on it does not (issue 11: trust by the band, not by r²)."""
    rng = __import__("numpy").random.default_rng(0)
    rows = [f"b{i},baseline,{ref:.3f},{0.10 + rng.normal(0, 0.004):.4f},2000,2000"
            for i, ref in enumerate([0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.6, 0.7, 0.8])]
    csv = write(tmp_path, "\n".join([HEADER, *rows, "lpft,pretrained,0.84,0.80,2000,2000",
                                     "plain,pretrained,0.84,0.10,2000,2000"]) + "\n")
    out_json = tmp_path / "er.json"
    result = runner.invoke(app, ["er", "--accuracies", str(csv), "--json", str(out_json)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    doc = json.loads(out_json.read_text())
    assert doc["fit"]["shift"]["r2"] < 0.3
    models = {m["model"]: m for m in doc["models"]}
    assert models["lpft"]["evidence"] == "line" and models["lpft"]["er"]["lower"] > 0.6
    assert models["lpft"]["prediction_band"]["shift"]["beyond"] is True
    assert models["plain"]["prediction_band"]["shift"]["beyond"] is False
    band = models["plain"]["prediction_band"]["shift"]
    assert band["lower"] < models["plain"]["predicted_shift_acc"] < band["upper"]
    assert "inside the baselines' scatter" in result.output
