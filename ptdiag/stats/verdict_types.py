"""The verdict's data: one recipe's evidence, the inputs of a decision, a recipe's call, and the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ptdiag.stats.intervals import Check, Interval


@dataclass(frozen=True)
class CandidateEvidence:
    """One pre-trained recipe (its seeds averaged).

    Attributes:
        quantities: name → interval, names as in `ptdiag.stats.resampling` (gap, bias, extrapolation,
            remaining_*, recovered_*, share_*, er_shift, er_in_support, er_out_of_support, acc_*).
        beyond_band: split → the recipe's ER lies outside the baseline line's prediction band there (the
            line is trusted to separate it from a from-scratch model's own scatter).
        selection_acc: reference-only accuracy that picks the best-reference recipe (val_acc, else ref_acc).
        adjusted: intervals at other levels: the recoveries (recovered_*) at the multiplicity-corrected level, and
            ``gap_tost``, the line's gap at the recipe's reference accuracy at the equivalence (TOST) level; empty:
            use `quantities`.
    """

    name: str
    strategy: str
    ref_acc: float
    selection_acc: float
    quantities: Mapping[str, Interval | None]
    beyond_band: Mapping[str, bool] = field(default_factory=dict)
    adjusted: Mapping[str, Interval | None] = field(default_factory=dict)

    def judged(self, name: str) -> Interval | None:
        """The interval the verdict reads for `name`: at its adjusted level when there is one."""
        return self.adjusted.get(name) or self.quantities.get(name)


@dataclass(frozen=True)
class VerdictInputs:
    candidates: Sequence[CandidateEvidence]
    pooled_gap: Interval | None
    support_available: bool
    n_in: int | None = None
    n_out: int | None = None
    pi_in: float | None = None
    pi_out: float | None = None
    n_runs: int | None = None
    stability: float | None = None
    checks: Sequence[Check] = ()


class Recommendation(NamedTuple):
    """One thing to do: a stable code (a `verdict_text.REMEDIES` key or `measured-<method>`; reports key their
    explanations on it), the sentence with this run's numbers, and those numbers as (name, value) pairs."""

    code: str
    text: str
    numbers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Verdict:
    kind: str
    confidence: str
    evidence: str
    reasons: list[str]
    recommendations: list[Recommendation]
    checks: list[Check] = field(default_factory=list)
    primary: str | None = None
    decided_on: list[str] = field(default_factory=list)
    stability: float | None = None
    effects: dict[str, dict[str, object] | None] = field(default_factory=dict)
    recipes: list[dict[str, object]] = field(default_factory=list)
    helping: str | None = None
    equivalence_margin: float | None = None  # smallest ± margin at which "no shift" could be shown (fraction)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "confidence": self.confidence, "evidence": self.evidence, "primary": self.primary,
            "decided_on": list(self.decided_on), "stability": self.stability, "effects": dict(self.effects),
            "helping_recipe": self.helping, "recipes": list(self.recipes),
            "equivalence_margin": self.equivalence_margin,
            "reasons": list(self.reasons), "recommendations": [r.text for r in self.recommendations],
            "recommendation_codes": [r.code for r in self.recommendations],
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The verdict of a results.json (`to_dict`'s inverse); results without codes get empty ones."""
        texts = list(data.get("recommendations") or [])
        codes = list(data.get("recommendation_codes") or [""] * len(texts))
        return cls(
            kind=data["kind"], confidence=data["confidence"], evidence=data.get("evidence", ""),
            reasons=list(data.get("reasons") or []),
            recommendations=[Recommendation(code, text) for code, text in zip(codes, texts, strict=True)],
            checks=[Check(c["name"], c["status"], c["message"]) for c in data.get("checks") or []],
            primary=data.get("primary"), decided_on=list(data.get("decided_on") or []),
            stability=data.get("stability"), effects=dict(data.get("effects") or {}),
            recipes=list(data.get("recipes") or []), helping=data.get("helping_recipe"),
            equivalence_margin=data.get("equivalence_margin"),
        )


@dataclass(frozen=True)
class RecipeCall:
    """One recipe's classes and kind, and whether it may carry each claim."""

    evidence: CandidateEvidence
    classes: Mapping[str, str]
    kind: str
    failed: str | None
    admissible_out: bool  # out-of-support (or shifted) accuracy not below the best-reference recipe's
    admissible_in: bool  # in-support accuracy not below the best-reference recipe's

    @property
    def bias_shown_absent(self) -> bool:
        """No material bias is left: the recipe's own in-support drop, or the baselines' bias component, is
        negligible."""
        return self.classes["remaining_bias"] == "negligible" or self.classes["bias"] in ("negligible",
                                                                                        "material-negative")
