"""Does fine-tuning on a small curated set of shifted images beat the large biased reference? (paper implication 2)

    .venv/bin/python benchmarks/validation/curated_finetune.py RUN [--sizes 50,100,200,500] [--seed 0]

On a finished quick-budget run (top-block LP-FT, so the frozen lower blocks' activations are cached in RUN/jobs/):
the shifted set is split in two halves; from one half `ptdiag curate`'s selection (predicted class × density-ratio
strata, k-center on the features) and a random subset of the same size are labelled and the pre-trained model is
fine-tuned on each (the quick recipe: LP head, top blocks, the run's chosen learning rate), alone and added to the
reference training set; every model is scored on the *other* half (cross-fitted, both ways), beside the run's own
LP-FT trained on the reference alone. Prints one Markdown row per size for docs/VALIDATION.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import LinearProbe, load_head
from ptdiag.engine.models import BackboneSpec, create_pretrained
from ptdiag.engine.partial import predict_upper, split_at, train_top
from ptdiag.engine.rundata import prepare_data
from ptdiag.engine.train import TrainConfig
from ptdiag.remedies.curate import select_shift

MIN_STEPS = 60  # small sets get more epochs so every variant trains at least this many steps


def _job_arrays(run: Path, prefix: str) -> dict[str, np.ndarray]:
    found = sorted((run / "jobs").glob(f"{prefix}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise SystemExit(f"{run}/jobs: no {prefix}*.npz (a quick-budget run with the top-block recipe is needed)")
    with np.load(found[0], allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _fine_tune(model_name: str, n_classes: int, from_block: int, probe: dict[str, np.ndarray],
               views: list[np.ndarray], labels: np.ndarray, lr: float, seed: int):
    torch.manual_seed(seed)
    model = create_pretrained(BackboneSpec(model_name), n_classes)
    load_head(model, LinearProbe(probe["weight"], probe["bias"], 0.0, 0.0, {}))
    split = split_at(model, from_block)
    epochs = max(3, math.ceil(MIN_STEPS * 32 / len(labels)))
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=32, seed=seed, freeze_bn=True, label_smoothing=0.0,
                      weight_decay=0.1)
    train_top(split, views, labels, cfg, torch.device("cpu"))
    return split


def main(run: Path, sizes: list[int], seed: int) -> None:
    results = json.loads((run / "results.json").read_text())
    config = AnalyzeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in results["config"].items()})
    data = prepare_data(config, run, lambda *_: None)
    classes = list(results["data"]["reference"]["classes"])
    model_name = config.model[0]
    acts = _job_arrays(run, f"activations-{model_name}-top")
    probe = _job_arrays(run, f"probe-{model_name}-")
    features = _job_arrays(run, f"features-{model_name}-")["shift"].astype(np.float32)
    lpft = next(r for r in results["pretrained"] if r["strategy"] == "lpft")
    lr = float(lpft["lr"])
    pred = pd.read_parquet(run / "predictions.parquet")
    shift_rows = pred[(pred["model"] == lpft["name"]) & (pred["set"] == "shift")]
    rho = shift_rows[shift_rows["seed"] == shift_rows["seed"].min()].sort_values("example_id")[
        "density_ratio"].to_numpy()
    predicted = shift_rows[shift_rows["seed"] == shift_rows["seed"].min()].sort_values("example_id")[
        "prediction"].to_numpy()
    lpft_correct = shift_rows.groupby("example_id")["correct"].mean().sort_index().to_numpy()
    shift_y, train_y = data.shift.labels, data.part("train").labels
    in_support = rho >= config.epsilon
    views = [acts[f"train_view{v}"] for v in range(sum(k.startswith("train_view") for k in acts))]
    halves = np.random.default_rng(seed).permutation(len(shift_y)) % 2
    print(f"{run.name}: {len(shift_y)} shifted images ({in_support.mean():.0%} in support), halves of "
          f"{np.bincount(halves).tolist()}, LP-FT lr {lr:g}, reference-only LP-FT in-support accuracy "
          f"{100 * lpft_correct[in_support].mean():.1f} %")
    print("| labelled shifted images | curated alone | random alone | curated + reference | random + reference | "
          "LP-FT on the reference only |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        scores: dict[str, list[float]] = {}
        for half in (0, 1):
            pool, held = np.flatnonzero(halves == half), np.flatnonzero(halves != half)
            if n > len(pool):
                continue
            chosen = {"curated": pool[select_shift(features[pool], predicted[pool], rho[pool], config.epsilon, n,
                                                   classes).index],
                      "random": np.random.default_rng(seed + n + half).choice(pool, n, replace=False)}
            for name, picks in chosen.items():
                own = [acts["shift"][picks]]
                for variant, (v, y) in {"alone": (own, shift_y[picks]),
                                        "+ reference": ([np.concatenate([w, own[0]]) for w in views],
                                                        np.concatenate([train_y, shift_y[picks]]))}.items():
                    split = _fine_tune(model_name, len(classes), config.ft_from_block, probe, v, y, lr, seed)
                    out = predict_upper(split, acts["shift"][held], torch.device("cpu")).argmax(1)
                    mask = in_support[held]
                    scores.setdefault(f"{name} {variant}", []).append(float((out == shift_y[held])[mask].mean()))
            scores.setdefault("reference", []).append(float(lpft_correct[held][in_support[held]].mean()))
        if not scores:
            continue
        cells = [f"{100 * np.mean(scores[k]):.1f}" for k in ("curated alone", "random alone", "curated + reference",
                                                            "random + reference", "reference")]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--sizes", default="50,100,200,500")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.run, [int(s) for s in args.sizes.split(",")], args.seed)
