"""The CI gate: judge a results.json against the user's rules and map the outcome to an exit code.

Used by `ptdiag check` and by `ptdiag analyze --fail-on ...`. It only reads results; nothing is recomputed.
Thresholds are in accuracy points (0-100), results store accuracies as fractions (0-1).

Example:
    >>> gate = run_gate(results, fail_on=parse_fail_on("dataset-bias,inconclusive"), min_er_out=5.0)
    >>> gate.exit_code  # 0 pass, 1 gate failed, 4 inconclusive (asked to fail on it)
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ptdiag.errors import EXIT_GATE_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, UsageError
from ptdiag.schema import VERDICT_KINDS, share_is_quotable

Status = Literal["PASS", "WARN", "FAIL", "INCONCLUSIVE"]


@dataclass(frozen=True)
class GateCheck:
    """One line of the gate's output."""

    name: str
    status: Status
    message: str


@dataclass(frozen=True)
class GateResult:
    """All checks, the overall status (PASS, FAIL or INCONCLUSIVE) and the process exit code."""

    checks: list[GateCheck] = field(default_factory=list)
    verdict_kind: str = ""
    status: Literal["PASS", "FAIL", "INCONCLUSIVE"] = "PASS"
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fail_on(text: str | None) -> set[str]:
    """Parse a comma list of verdict kinds such as "dataset-bias,both,inconclusive".

    Raises:
        UsageError: for a name that is not a verdict kind (the message lists the valid ones).
    """
    kinds = {part.strip().lower() for part in (text or "").split(",") if part.strip()}
    for kind in sorted(kinds):
        if kind not in VERDICT_KINDS:
            close = difflib.get_close_matches(kind, VERDICT_KINDS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise UsageError(
                f"--fail-on: unknown verdict kind '{kind}'; expected a comma list of {', '.join(VERDICT_KINDS)}",
                hint=hint,
            )
    return kinds


def collect_warnings(results: dict[str, Any]) -> list[str]:
    """Every warning a run recorded, in order and without duplicates.

    Sources: top-level `warnings`, `support.warnings`, and data findings at level warning or error.
    """
    messages: list[str] = list(results.get("warnings") or [])
    support = results.get("support") or {}
    messages += list(support.get("warnings") or [])
    for finding in (results.get("data") or {}).get("findings") or []:
        if finding.get("level") in ("warning", "error"):
            messages.append(str(finding.get("message", finding.get("code", "data finding"))))
    return list(dict.fromkeys(str(m) for m in messages))


def run_gate(
    results: dict[str, Any],
    fail_on: set[str] | frozenset[str] = frozenset(),
    max_bias_component: float | None = None,
    min_er_out: float | None = None,
    fail_if_warning: bool = False,
    min_remedy_recovery: float | None = None,
    allow_estimated: bool = False,
) -> GateResult:
    """Judge validated results against the gate's rules.

    Args:
        results: a results.json dict (schema_version 2), already validated.
        fail_on: verdict kinds that fail the gate (see `parse_fail_on`).
        max_bias_component: fail when the baseline line's bias component exceeds this many accuracy points.
        min_er_out: fail when the best pre-trained model's out-of-support ER (mid estimate) is below this
            many accuracy points.
        fail_if_warning: fail when the run recorded any warning (otherwise warnings only WARN).
        min_remedy_recovery: fail when no applicable measured remedy recovers at least this percentage (0-100)
            of the baseline gap (mid estimate of its `recovered.gap`).
        allow_estimated: gate on shifted accuracies estimated from a labelled sample (`data.shift_labelled` is
            "sample"); without it such a run is inconclusive for the gate (exit 4) and says why.

    Returns:
        A GateResult; exit_code is 4 when the verdict is inconclusive and `fail_on` contains
        "inconclusive", else 1 when any check failed, else 0.
    """
    verdict_kind = results["verdict"]["kind"]
    checks = [_verdict_check(results["verdict"], fail_on)]
    if max_bias_component is not None:
        checks.append(_bias_check(results, max_bias_component))
    if min_er_out is not None:
        checks.append(_er_out_check(results, min_er_out))
    if min_remedy_recovery is not None:
        checks.append(_remedy_check(results, min_remedy_recovery))
    checks.append(_warnings_check(results, fail_if_warning))
    estimated = _estimated_check(results, allow_estimated)
    if estimated is not None:
        checks.insert(0, estimated)

    if ((verdict_kind == "inconclusive" and "inconclusive" in fail_on)
            or (estimated is not None and estimated.status == "INCONCLUSIVE")):
        status, code = "INCONCLUSIVE", EXIT_INCONCLUSIVE
    elif any(check.status == "FAIL" for check in checks):
        status, code = "FAIL", EXIT_GATE_FAILED
    else:
        status, code = "PASS", EXIT_OK
    return GateResult(checks=checks, verdict_kind=verdict_kind, status=status, exit_code=code)


def _estimated_check(results: dict[str, Any], allow: bool) -> GateCheck | None:
    """Estimated shifted accuracies are gated on only when asked (--allow-estimated)."""
    data = results["data"]
    if data.get("shift_labelled", "all") == "all":
        return None
    if data["shift_labelled"] == "none":
        return GateCheck("estimated", "INCONCLUSIVE", "the shifted set is unlabelled: no ER or verdict to gate on; "
                         "label a random sample and rerun with --shift-labels")
    what = (f"shifted accuracies are estimated from {data['shift'].get('n_labelled', 0):,} labelled of "
            f"{data['shift']['n']:,} shifted images")
    if allow:
        return GateCheck("estimated", "WARN", f"{what}; gated on them (--allow-estimated)")
    return GateCheck("estimated", "INCONCLUSIVE", f"{what}; add --allow-estimated to gate on estimates, or label "
                     "the shifted set")


def _verdict_check(verdict: dict[str, Any], fail_on: set[str] | frozenset[str]) -> GateCheck:
    kind, confidence = verdict["kind"], verdict.get("confidence", "?")
    described = f"verdict is '{kind}' (confidence {confidence})"
    if kind in fail_on:
        return GateCheck("verdict", "FAIL", f"{described}, listed in --fail-on")
    if kind == "inconclusive":
        # Not asked to fail on it, but an inconclusive run answers nothing: never a silent PASS.
        return GateCheck("verdict", "WARN", f"{described}; add 'inconclusive' to --fail-on to fail on it")
    return GateCheck("verdict", "PASS", f"{described}, not in --fail-on")


def _bias_check(results: dict[str, Any], limit_points: float) -> GateCheck:
    rows = [r for r in results["decomposition"]["baseline"] if r.get("bias_component") is not None]
    if not rows:
        return GateCheck("bias-component", "WARN",
                         f"no bias component in the results ({_why_missing(results, 'n_in')})")
    # Several rows (one per pre-trained model's reference accuracy): judge the largest, i.e. the worst case.
    worst = max(rows, key=lambda r: r["bias_component"])
    value = 100 * worst["bias_component"]
    where = f"{value:.1f} points (of a {100 * worst['gap']:.1f}-point gap, {worst['name']})"
    if value > limit_points:
        return GateCheck("bias-component", "FAIL", f"bias component {where} > {limit_points:g}")
    return GateCheck("bias-component", "PASS", f"bias component {where} <= {limit_points:g}")


def _why_missing(results: dict[str, Any], count: str) -> str:
    """Why a split-specific number is absent: the split did not run, or it found no image on that side."""
    support = results.get("support")
    if not support:
        return "the support split did not run"
    side = "out-of-support" if count == "n_out" else "in-support"
    if not support.get(count):
        return f"the support split found no {side} shifted image at ε = {support['epsilon']:g}"
    return f"too few {side} images to estimate it"


def _er_out_check(results: dict[str, Any], min_points: float) -> GateCheck:
    models = [m for m in results["pretrained"] if m.get("er_out") is not None]
    if not models:
        return GateCheck("er-out", "WARN", f"no out-of-support ER in the results ({_why_missing(results, 'n_out')})")
    # Judge the verdict's primary candidate (chosen on reference data only); picking the model with the best
    # shifted ER_out would select on the shifted set. Older results without a primary fall back to the best.
    primary = (results.get("verdict") or {}).get("primary")
    chosen = next((m for m in models if m["name"] == primary), None) or max(models, key=lambda m: m["er_out"]["mid"])
    er = chosen["er_out"]
    value = 100 * er["mid"]
    label = "ER_out" if chosen["name"] == primary else "best ER_out"
    where = f"{value:+.1f} [{100 * er['lower']:+.1f}, {100 * er['upper']:+.1f}] points ({chosen['name']})"
    if value < min_points:
        return GateCheck("er-out", "FAIL", f"{label} {where} < {min_points:g}")
    return GateCheck("er-out", "PASS", f"{label} {where} >= {min_points:g}")


def _remedy_check(results: dict[str, Any], min_percent: float) -> GateCheck:
    rows = [r for r in results.get("remedies") or [] if r.get("applicable")]
    measured = [r for r in rows if share_is_quotable((r.get("recovered") or {}).get("gap"))]
    if not measured:
        why = ("no applicable remedy" if not rows else
               "no remedy has a quotable share of the gap (the gap is too small or too uncertain to divide by)")
        where = results.get("remedies_note") or "see the remedies section"
        return GateCheck("remedy-recovery", "WARN", f"{why} in the results ({where})")
    best = max(measured, key=lambda r: r["recovered"]["gap"]["mid"])
    share = best["recovered"]["gap"]
    where = (f"{100 * share['mid']:.0f} % [{100 * share['lower']:.0f}, {100 * share['upper']:.0f}] of the gap "
             f"({best['name']})")
    if 100 * share["mid"] < min_percent:
        return GateCheck("remedy-recovery", "FAIL", f"best remedy recovers {where} < {min_percent:g} %")
    return GateCheck("remedy-recovery", "PASS", f"best remedy recovers {where} >= {min_percent:g} %")


def _warnings_check(results: dict[str, Any], fail_if_warning: bool) -> GateCheck:
    warnings = collect_warnings(results)
    if not warnings:
        return GateCheck("warnings", "PASS", "no warnings")
    first = warnings[0] + (f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else "")
    status: Status = "FAIL" if fail_if_warning else "WARN"
    return GateCheck("warnings", status, f"{len(warnings)} warning(s): {first}")
