"""From per-example correctness to the statistics sections of results.json (fit, ER, decomposition, verdict).

`score(evals, support, config)` is the entry point `ptdiag analyze` calls once every model is evaluated:

* baselines (from-scratch) define the line; pre-trained evaluations sharing a name are seeds of one candidate and
  are averaged (per example, so the paired bootstrap still pairs them);
* ER per candidate on the whole shifted set and, with a support split, on its in-/out-of-support parts, each with
  the line's band and a paired bootstrap interval;
* a weak line (r² below `VerdictConfig.min_r2`) switches that split to the nonparametric comparison;
* the gap decomposition and the verdict (see ptdiag.stats.verdict).

Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ptdiag.errors import DataError
from ptdiag.stats.decompose import (
    GapDecomposition,
    decompose_baseline,
    decompose_gap,
    er_consistency,
    split_accuracies,
)
from ptdiag.stats.intervals import Check, Interval
from ptdiag.stats.line import (
    Comparison,
    LineFit,
    bootstrap_er,
    compare_nonparametric,
    diagnose_fit,
    effective_robustness,
    fit_line,
    share_of_drop_recovered,
)
from ptdiag.stats.support import SupportSplit
from ptdiag.stats.thresholds import VerdictConfig
from ptdiag.stats.verdict import (
    CandidateEvidence,
    Components,
    GapObservation,
    SplitEffect,
    Verdict,
    VerdictInputs,
    choose_primary,
    decide,
)

KINDS = ("baseline", "pretrained")
SPLITS = ("shift", "in_support", "out_of_support")
_ER_KEYS = {"shift": "er", "in_support": "er_in", "out_of_support": "er_out"}


@dataclass
class ModelEval:
    """One evaluated model.

    Attributes:
        name: e.g. "smallcnn-f0.5-s1-e4" or "tf_efficientnet_lite0/lp"; pre-trained evals sharing a name are seeds.
        kind: "baseline" (from scratch) or "pretrained".
        ref_correct: bool per reference-test example, same order for every model.
        shift_correct: bool per shifted example, same order for every model.
        meta: copied into the results row (baselines: arch, fraction, epoch, seed; pre-trained: model, strategy,
            lr, seed, val_acc).
    """

    name: str
    kind: str
    ref_correct: np.ndarray
    shift_correct: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatsConfig:
    """Statistics settings.

    Attributes:
        scale: "probit" (the paper's) or "logit".
        epsilon: out-of-support threshold; None keeps the support split's own.
        bootstrap: paired-bootstrap replicates (0 turns the bootstrap interval off).
        seed: seeds the bootstrap.
        verdict: thresholds of the rules.
    """

    scale: str = "probit"
    epsilon: float | None = 0.2
    bootstrap: int = 1000
    seed: int = 0
    verdict: VerdictConfig = field(default_factory=VerdictConfig)


@dataclass(frozen=True)
class Candidate:
    """A pre-trained candidate with its seeds averaged per example."""

    name: str
    ref_correct: np.ndarray  # float in [0, 1]: mean over seeds
    shift_correct: np.ndarray
    meta: dict[str, Any]
    seed_ref_acc: tuple[float, ...]
    seed_shift_acc: tuple[float, ...]


@dataclass
class Scores:
    baselines: list[dict[str, Any]]
    pretrained: list[dict[str, Any]]
    fits: dict[str, LineFit | None]
    support: SupportSplit | None
    decomposition: dict[str, Any]
    verdict: Verdict
    checks: list[Check]
    warnings: list[str]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baselines": self.baselines,
            "pretrained": self.pretrained,
            "fit": {s: (f.to_dict() if f is not None else None) for s, f in self.fits.items()},
            "support": self.support.to_dict() if self.support is not None else None,
            "decomposition": self.decomposition,
            "verdict": self.verdict.to_dict(),
            "warnings": list(self.warnings),
            "statistics": self.settings,
        }


def score(evals: list[ModelEval], support: SupportSplit | None, config: StatsConfig = StatsConfig()) -> Scores:
    """Compute the baseline lines, ER per candidate and split, the gap decomposition and the verdict.

    Raises:
        DataError: unknown kind, mismatched example counts, a support split of the wrong length, fewer than 3
            baselines, or baselines without any spread in reference accuracy.
    """
    vcfg = config.verdict
    baselines, candidates, n_ref, n_shift = _prepare(evals)
    if support is not None:
        if support.rho_shift.shape != (n_shift,):
            raise DataError(f"support split covers {support.rho_shift.size} shifted examples, the evaluations "
                            f"{n_shift}")
        if config.epsilon is not None and config.epsilon != support.epsilon:
            support = support.at_epsilon(config.epsilon)
    mask = support.in_support if support is not None else None
    n_split = {"shift": n_shift, "in_support": int(mask.sum()) if mask is not None else 0,
               "out_of_support": int((~mask).sum()) if mask is not None else 0}

    base_acc = _accuracies([b.ref_correct for b in baselines], [b.shift_correct for b in baselines], mask)
    cand_acc = _accuracies([c.ref_correct for c in candidates], [c.shift_correct for c in candidates], mask)
    fits = {split: _fit_split(base_acc, split, n_ref, n_split[split], config) for split in SPLITS}
    checks: list[Check] = []
    for split, fit in fits.items():
        if fit is not None:
            checks += diagnose_fit(fit, vcfg, split)
    usable = {s: f is not None and f.r2 >= vcfg.min_r2 for s, f in fits.items()}

    boot = _bootstrap(baselines, candidates, mask, n_split, config) if candidates else {}
    names = [b.name for b in baselines]
    rows, evidences = [], []
    for i, cand in enumerate(candidates):
        row, effects = _candidate_row(i, cand, cand_acc, base_acc, names, fits, usable, boot, n_split, vcfg)
        rows.append(row)
        evidences.append(effects)

    decomposition, components = _decomposition(candidates, cand_acc, base_acc, rows, fits, usable, support, vcfg)
    cand_evidence = [
        CandidateEvidence(
            name=c.name, strategy=str(c.meta.get("strategy", "")), ref_acc=cand_acc["ref"][i],
            selection_acc=float(c.meta.get("val_acc", cand_acc["ref"][i])), effects=evidences[i],
            baseline_components=components[i], extrapolation_distance=rows[i]["extrapolation_distance"] or 0.0,
        )
        for i, c in enumerate(candidates)
    ]
    if cand_evidence:
        primary = choose_primary(cand_evidence).name
        for row in rows:
            row["primary"] = row["name"] == primary
    gaps = [GapObservation(m.name, acc_r, acc_s, n_ref, n_shift)
            for m, acc_r, acc_s in zip([*baselines, *candidates], [*base_acc["ref"], *cand_acc["ref"]],
                                       [*base_acc["shift"], *cand_acc["shift"]], strict=True)]
    verdict = decide(
        VerdictInputs(
            candidates=cand_evidence, gaps=gaps, support_available=support is not None,
            n_in=support.n_in if support else None, n_out=support.n_out if support else None,
            pi_in=support.pi_in if support else None, pi_out=support.pi_out if support else None,
            n_baselines=len(baselines), checks=checks,
        ),
        vcfg,
    )
    warnings = [c.message for c in checks if c.status in ("WARN", "FAIL")]
    warnings += [f"{r['name']}: reference accuracy {100 * r['ref_acc']:.1f}% is {r['extrapolation_distance']:.2f} "
                 f"{config.scale} units outside the baselines' range: the line is extrapolated there"
                 for r in rows if r["extrapolated"]]
    settings = {"scale": config.scale, "epsilon": support.epsilon if support else config.epsilon,
                "bootstrap": config.bootstrap, "seed": config.seed, "verdict_config": asdict(vcfg),
                "n_reference_test": n_ref, "n_shift": n_shift}
    return Scores(
        baselines=[_baseline_row(b, base_acc, i) for i, b in enumerate(baselines)], pretrained=rows, fits=fits,
        support=support, decomposition=decomposition, verdict=verdict, checks=checks, warnings=warnings,
        settings=settings,
    )


# --- preparation -----------------------------------------------------------------------------------------------


def _prepare(evals: list[ModelEval]) -> tuple[list[ModelEval], list[Candidate], int, int]:
    if not evals:
        raise DataError("no model evaluations to score")
    n_ref, n_shift = np.size(evals[0].ref_correct), np.size(evals[0].shift_correct)
    for e in evals:
        if e.kind not in KINDS:
            raise DataError(f"model {e.name!r}: kind must be 'baseline' or 'pretrained' (got {e.kind!r})")
        if np.size(e.ref_correct) != n_ref or np.size(e.shift_correct) != n_shift:
            raise DataError(f"model {e.name!r}: evaluated on {np.size(e.ref_correct)} reference / "
                            f"{np.size(e.shift_correct)} shifted examples, expected {n_ref} / {n_shift}")
    if n_ref == 0 or n_shift == 0:
        raise DataError("models were evaluated on an empty reference test set or shifted set")
    baselines = [e for e in evals if e.kind == "baseline"]
    groups: OrderedDict[str, list[ModelEval]] = OrderedDict()
    for e in evals:
        if e.kind == "pretrained":
            groups.setdefault(e.name, []).append(e)
    return baselines, [_average_seeds(name, seeds) for name, seeds in groups.items()], int(n_ref), int(n_shift)


def _average_seeds(name: str, seeds: list[ModelEval]) -> Candidate:
    ref = np.vstack([np.asarray(s.ref_correct, dtype=float) for s in seeds])
    shift = np.vstack([np.asarray(s.shift_correct, dtype=float) for s in seeds])
    meta = dict(seeds[0].meta)
    if len(seeds) > 1:
        meta["seed"] = None  # several seeds: see "seeds"
        meta["seeds"] = [s.meta.get("seed") for s in seeds]
        if all("val_acc" in s.meta for s in seeds):
            meta["val_acc"] = float(np.mean([s.meta["val_acc"] for s in seeds]))
    return Candidate(name, ref.mean(axis=0), shift.mean(axis=0), meta,
                     tuple(float(a) for a in ref.mean(axis=1)), tuple(float(a) for a in shift.mean(axis=1)))


def _accuracies(ref: list[np.ndarray], shift: list[np.ndarray], mask: np.ndarray | None) -> dict[str, list]:
    out: dict[str, list] = {"ref": [], "shift": [], "in_support": [], "out_of_support": []}
    for r, s in zip(ref, shift, strict=True):
        out["ref"].append(float(np.mean(r)))
        out["shift"].append(float(np.mean(s)))
        acc_in, acc_out = split_accuracies(s, mask)
        out["in_support"].append(acc_in)
        out["out_of_support"].append(acc_out)
    return out


def _fit_split(acc: dict[str, list], split: str, n_ref: int, n_y: int, config: StatsConfig) -> LineFit | None:
    y = acc[split]
    if split != "shift" and (n_y == 0 or any(v is None for v in y)):
        return None
    return fit_line(acc["ref"], y, scale=config.scale, ref_n=n_ref, y_n=n_y,  # type: ignore[arg-type]
                    confidence=config.verdict.confidence_level)


def _bootstrap(baselines: list[ModelEval], candidates: list[Candidate], mask: np.ndarray | None,
               n_split: dict[str, int], config: StatsConfig) -> dict[str, list[tuple[float, float] | None]]:
    if config.bootstrap <= 0:
        return {}
    subsets = {"shift": np.ones(n_split["shift"], dtype=bool)}
    if mask is not None:
        subsets.update({s: m for s, m in (("in_support", mask), ("out_of_support", ~mask)) if m.any()})
    return bootstrap_er(
        np.vstack([b.ref_correct for b in baselines]), np.vstack([b.shift_correct for b in baselines]),
        np.vstack([c.ref_correct for c in candidates]), np.vstack([c.shift_correct for c in candidates]),
        subsets=subsets, scale=config.scale, n_boot=config.bootstrap, seed=config.seed,  # type: ignore[arg-type]
        confidence=config.verdict.confidence_level,
    )


# --- rows ------------------------------------------------------------------------------------------------------


def _baseline_row(model: ModelEval, acc: dict[str, list], i: int) -> dict[str, Any]:
    return {"name": model.name, **model.meta, "ref_acc": acc["ref"][i], "shift_acc": acc["shift"][i],
            "in_acc": acc["in_support"][i], "out_acc": acc["out_of_support"][i]}


def _candidate_row(i: int, cand: Candidate, acc: dict[str, list], base: dict[str, list], names: list[str],
                   fits: dict[str, LineFit | None], usable: dict[str, bool],
                   boot: dict[str, list[tuple[float, float] | None]], n_split: dict[str, int],
                   vcfg: VerdictConfig) -> tuple[dict[str, Any], dict[str, SplitEffect]]:
    ref = acc["ref"][i]
    k = len(cand.seed_ref_acc)
    row: dict[str, Any] = {
        "name": cand.name, **cand.meta, "ref_acc": ref, "shift_acc": acc["shift"][i],
        "in_acc": acc["in_support"][i], "out_acc": acc["out_of_support"][i], "n_seeds": k,
        "seed_spread": _seed_spread(cand) if k > 1 else None,
        "shift_acc_se": float(np.sqrt(acc["shift"][i] * (1 - acc["shift"][i]) / n_split["shift"])),
    }
    whole = fits["shift"]
    assert whole is not None  # the whole-shift line always exists (fit_line raised otherwise)
    row["predicted_shift_acc"] = float(whole.predict(ref))
    distance = whole.extrapolation_distance(ref)
    row["extrapolated"], row["extrapolation_distance"] = distance > 0, distance
    effects: dict[str, SplitEffect] = {}
    shares: dict[str, float | None] = {}
    comparisons: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        y = acc[split][i]
        fit = fits[split]
        er = effective_robustness(fit, ref, y) if fit is not None and y is not None else None
        interval = _boot_interval(boot.get(split), i, er)
        row[_ER_KEYS[split]] = er.to_dict() if er else None
        row[_ER_KEYS[split] + "_bootstrap"] = interval.to_dict() if interval else None
        shares[split] = share_of_drop_recovered(fit, ref, er.mid) if er else None
        comparison = _comparison(names, base, split, ref, y, n_split[split], vcfg)
        if comparison is not None:
            comparisons[split] = comparison.to_dict()
        evidence = "line" if usable[split] and er is not None else "nonparametric" if comparison else "none"
        effects[split] = SplitEffect(
            er=er.envelope(interval) if er else None, share=shares[split], evidence=evidence,
            comparison=comparison.difference if comparison else None,
            comparison_matched=comparison.matched if comparison else True,
        )
    row["share_recovered"] = shares
    row["comparison"] = comparisons
    row["evidence"] = effects["shift"].evidence
    row["evidence_by_split"] = {s: e.evidence for s, e in effects.items()}
    return row, effects


def _seed_spread(cand: Candidate) -> dict[str, float]:
    """1.96·SD/√k over seeds (the paper's seed error bar; not part of the ER interval)."""
    k = len(cand.seed_ref_acc)
    return {"ref_acc": float(1.96 * np.std(cand.seed_ref_acc, ddof=1) / np.sqrt(k)),
            "shift_acc": float(1.96 * np.std(cand.seed_shift_acc, ddof=1) / np.sqrt(k))}


def _boot_interval(bounds: list[tuple[float, float] | None] | None, i: int, er: Interval | None) -> Interval | None:
    if not bounds or er is None or bounds[i] is None:
        return None
    lo, hi = bounds[i]  # type: ignore[misc]
    return Interval(min(lo, er.mid), er.mid, max(hi, er.mid))


def _comparison(names: list[str], base: dict[str, list], split: str, ref: float, y: float | None, n_y: int,
                vcfg: VerdictConfig) -> Comparison | None:
    if y is None or any(v is None for v in base[split]) or n_y == 0:
        return None
    return compare_nonparametric(names, base["ref"], base[split], ref, y, y_n=n_y, n_nearest=vcfg.n_nearest,
                                 confidence=vcfg.confidence_level)


# --- decomposition ---------------------------------------------------------------------------------------------


def _decomposition(candidates: list[Candidate], acc: dict[str, list], base: dict[str, list], rows: list[dict],
                   fits: dict[str, LineFit | None], usable: dict[str, bool], support: SupportSplit | None,
                   vcfg: VerdictConfig) -> tuple[dict[str, Any], list[Components | None]]:
    if support is None:
        return ({"pi_in": None, "pi_out": None, "baseline": [], "pretrained": [],
                 "note": "support split not available: the gap cannot be decomposed"}, [None] * len(candidates))
    pi_in, pi_out = support.pi_in, support.pi_out
    base_rows: list[GapDecomposition] = []
    cand_rows: list[GapDecomposition] = []
    components: list[Components | None] = []
    base_in = np.array([np.nan if v is None else v for v in base["in_support"]])
    base_out = np.array([np.nan if v is None else v for v in base["out_of_support"]])
    for i, cand in enumerate(candidates):
        ref = acc["ref"][i]
        line = decompose_baseline(
            f"baseline line at {cand.name}", ref, pi_in=pi_in, pi_out=pi_out, fit_in=fits["in_support"],
            fit_out=fits["out_of_support"], use_line=usable, baseline_ref=np.array(base["ref"]),
            baseline_in=base_in, baseline_out=base_out, n_nearest=vcfg.n_nearest,
        )
        base_rows.append(line)
        components.append(Components(line.gap, line.bias_component, line.extrapolation_component))
        own = decompose_gap(cand.name, ref, acc["in_support"][i], acc["out_of_support"][i], pi_in, pi_out)
        check = er_consistency(_mid(rows[i]["er"]), _mid(rows[i]["er_in"]), _mid(rows[i]["er_out"]), pi_in, pi_out)
        cand_rows.append(GapDecomposition(own.name, own.ref_acc, own.gap, own.bias_component,
                                          own.extrapolation_component, own.method, check))
    section = {"pi_in": pi_in, "pi_out": pi_out, "n_in": support.n_in, "n_out": support.n_out,
               "epsilon": support.epsilon, "baseline": [r.to_dict() for r in base_rows],
               "pretrained": [r.to_dict() for r in cand_rows]}
    return section, components


def _mid(interval: dict[str, float] | None) -> float | None:
    return None if interval is None else interval["mid"]
