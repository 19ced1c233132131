"""The verdict's thresholds: one frozen dataclass read by the line diagnostics, the support split and the rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerdictConfig:
    """Rules' thresholds. All accuracy quantities are fractions (0.02 = 2 points).

    Attributes:
        material_margin: smallest effect (ER, gap component) that counts as material, as a fraction (the
            `--material-points` flag divided by 100).
        material_share: below this share of a gap, the advice says pre-training recovers "a little of" it (the
            share words the advice; it never decides the kind).
        min_r2: below this r² the line-fit check warns. Nothing switches on r²: `analyze`, `score` and `er` trust
            the line by its prediction band at the candidate (a flat, precise line has r² ≈ 0).
        min_baselines: fewer baseline models than this gives the baselines check a WARN (the line's t* grows fast).
        recommended_baselines: fewer than this gives a warning only.
        min_runs: fewer baseline *training runs* than this (checkpoints of one run count once) fails the
            baselines check and makes the verdict inconclusive: the cluster bootstrap over runs has almost nothing
            to resample.
        recommended_runs: fewer runs than this gives a warning and caps the confidence at medium.
        min_ref_spread: baselines' reference-accuracy range below this makes the slope poorly determined.
        min_split_examples: a support split with fewer shifted examples cannot support claims about it, and fewer
            shifted examples in all make the verdict inconclusive.
        n_nearest: comparators for the nonparametric comparison when no baseline reaches the model's accuracy.
        confidence_level: level of every interval (line band, bootstrap, binomial).
    """

    material_margin: float = 0.02
    material_share: float = 0.25
    min_r2: float = 0.8
    min_baselines: int = 10
    recommended_baselines: int = 20
    min_runs: int = 3
    recommended_runs: int = 6
    min_ref_spread: float = 0.05
    min_split_examples: int = 50
    n_nearest: int = 3
    confidence_level: float = 0.95
