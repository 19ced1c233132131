"""`ptdiag score --predictions`: the statistics on a per-(model, example) table, and clear errors for bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.stats.simulate import SCENARIOS, draw

runner = CliRunner()


def table() -> pd.DataFrame:
    return _table().copy()


@cache
def _table() -> pd.DataFrame:
    scenario = replace(SCENARIOS["extrapolation-flat"], n_ref=400, n_shift=500, er_out=1.0)
    evals, support = draw(scenario, np.random.default_rng(0))
    frames = []
    for e in evals:
        for set_name, correct in (("reference", e.ref_correct), ("shift", e.shift_correct)):
            frame = pd.DataFrame({"model": e.name, "kind": e.kind, "example": np.arange(correct.size),
                                  "set": set_name, "correct": correct.astype(int), "run": e.run, "seed": e.seed})
            if set_name == "shift":
                frame["support"] = np.where(support.in_support, "in", "out")
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("score") / "predictions.csv"
    table().to_csv(path, index=False)
    return path


def test_score_prints_the_verdict_and_writes_the_sections(good_csv, tmp_path):
    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["score", "--predictions", str(good_csv), "--json", str(out), "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    assert "pretraining-helps" in result.output
    doc = json.loads(out.read_text())
    assert {"fit", "decomposition", "pretrained", "verdict"} <= set(doc)
    assert doc["verdict"]["kind"] == "pretraining-helps" and doc["verdict"]["primary"] in ("vit/s0", "vit/s1")
    row = doc["pretrained"][0]
    assert {"name", "er", "er_in", "er_out"} <= set(row) and set(row["er_out"]) >= {"lower", "mid", "upper"}
    assert row["n_seeds"] == 3 and doc["statistics"]["n_runs"] == 8


def test_parquet_and_rho_column(tmp_path):
    frame = table()
    frame["rho"] = np.where(frame["support"] == "out", 0.01, np.where(frame["set"] == "shift", 2.0, np.nan))
    frame = frame.drop(columns="support")
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    out = tmp_path / "s.json"
    result = runner.invoke(app, ["score", "--predictions", str(path), "--json", str(out), "--bootstrap", "100",
                                 "--epsilon", "0.2"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["decomposition"]["pi_out"] == pytest.approx(0.9, abs=0.02)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t.drop(columns="correct"), "missing column(s) correct"),
    (lambda t: t.assign(correct=t["correct"].where(t.index != 5, 2)), "row 6 has 2"),
    (lambda t: t.assign(kind=t["kind"].where(t.index != 3, "zoo")), "column 'kind' must be one of"),
    (lambda t: t.assign(set=t["set"].where(t.index != 0, "test")), "row 1 has 'test'"),
    (lambda t: t.drop(index=[0]), "has no row for 1 of the 400 reference examples"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "repeats model"),
])
def test_bad_input_names_the_column_or_row_and_exits_3(tmp_path, mutate, message):
    path = tmp_path / "bad.csv"
    mutate(table()).to_csv(path, index=False)
    result = runner.invoke(app, ["score", "--predictions", str(path), "--bootstrap", "50"])
    assert result.exit_code == 3 and message in result.output, result.output


def test_score_says_how_many_runs_it_assumed_without_a_run_column(good_csv, tmp_path):
    frame = pd.read_csv(good_csv).drop(columns=["run"])
    path = tmp_path / "no-run.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["score", "--predictions", str(path), "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    n = frame.loc[frame["kind"] == "baseline", "model"].nunique()
    assert f"{n} runs assumed (no `run` column)" in " ".join(result.output.split())


def test_score_without_pretrained_rows_is_a_clear_data_error(good_csv, tmp_path):
    frame = pd.read_csv(good_csv)
    path = tmp_path / "baselines-only.csv"
    frame[frame["kind"] == "baseline"].to_csv(path, index=False)
    result = runner.invoke(app, ["score", "--predictions", str(path)])
    assert result.exit_code == 3 and "no pre-trained model evaluations" in result.output


def test_unlabelled_shift_rows_are_estimated_from_the_labelled_ones(tmp_path):
    """`correct` empty on 400 of 500 shifted examples (the same for every model), confidence columns given: the
    verdict still reads pretraining-helps on estimates, marked as such; a ragged pattern is a data error."""
    scenario = replace(SCENARIOS["labelled-300-extrapolation"], n_ref=400, n_shift=500, er_out=1.0)
    evals, support = draw(scenario, np.random.default_rng(0))
    hidden = np.random.default_rng(1).permutation(500)[:400]
    frames = []
    for e in evals:
        for set_name, correct, scores in (("reference", e.ref_correct, e.ref_scores),
                                          ("shift", e.shift_correct, e.shift_scores)):
            values = correct.astype(float)
            if set_name == "shift":
                values[hidden] = np.nan
            frames.append(pd.DataFrame({"model": e.name, "kind": e.kind, "example": np.arange(correct.size),
                                        "set": set_name, "correct": values, "run": e.run, "seed": e.seed,
                                        "max_softmax": scores[0], "neg_entropy": scores[1],
                                        **({"support": np.where(support.in_support, "in", "out")}
                                           if set_name == "shift" else {})}))
    frame = pd.concat(frames, ignore_index=True)
    path, out = tmp_path / "p.csv", tmp_path / "s.json"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["score", "--predictions", str(path), "--json", str(out), "--bootstrap", "200"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["statistics"]["shift_labels"]["labelled"] == 100
    assert all(r["estimated"] for r in doc["pretrained"]) and doc["verdict"]["kind"] == "pretraining-helps"
    ragged = frame.copy()
    first_shift = ragged.index[(ragged["set"] == "shift") & ragged["correct"].notna()][0]
    ragged.loc[first_shift, "correct"] = np.nan
    ragged.to_csv(path, index=False)
    bad = runner.invoke(app, ["score", "--predictions", str(path)])
    assert bad.exit_code == 3 and "unlabelled for every model" in bad.output
