"""Checks across the pair: class alignment by name, duplicates, train/shift leakage, size and conversion findings."""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

import numpy as np

from ptdiag.data.types import MAX_LISTED, Finding, ImageSet, quote_names


def align_classes(ref: ImageSet, shift: ImageSet, listed: dict[str, dict[str, int]]) -> tuple[list[str], list[Finding]]:
    """Shared class names in reference order; errors for shift-only classes, warnings for train-only ones."""
    findings = []
    ref_present = [c for c, n in ref.class_counts().items() if n]
    shift_present = [c for c, n in shift.class_counts().items() if n]
    if not ref_present or not shift_present:
        return ref_present if not shift_present else [], findings  # the empty set is reported already
    # A shift class that train lists but could not read (or that discovery restricted) is still "not in train".
    extra = [c for c in shift_present if c not in ref_present]
    if extra:
        never = [c for c in extra if c not in listed.get("train", {})]
        kind = "not in train" if len(never) == len(extra) else "with no usable train images"
        findings.append(
            Finding(
                "error",
                "shift-classes-not-in-train",
                f"shift has {len(extra)} class(es) {kind}: {quote_names(extra)}{name_hint(extra, ref_present)}",
                str(shift.source),
            )
        )
    absent = [c for c in listed.get("train", {}) if c not in shift_present]
    if absent:
        findings.append(
            Finding(
                "warning",
                "train-classes-not-in-shift",
                f"train has {len(absent)} class(es) absent from shift: {quote_names(sorted(absent))}; the reference is "
                "restricted to the shared classes",
                str(ref.source),
            )
        )
    shared = [c for c in ref_present if c in shift_present]
    all_train = sorted(listed.get("train", {}))
    if len(all_train) == 1:
        findings.append(
            Finding(
                "error",
                "one-class",
                f"train has only one class ('{all_train[0]}'); a classifier needs at least two",
                str(ref.source),
            )
        )
    elif len(shared) == 1:
        findings.append(
            Finding(
                "error",
                "one-class",
                f"train and shift share only one class ('{shared[0]}'); at least two are needed",
                str(shift.source),
            )
        )
    elif not shared:
        findings.append(
            Finding("error", "no-shared-classes", "train and shift have no class name in common", str(shift.source))
        )
    return shared, findings


def name_hint(missing: list[str], known: list[str]) -> str:
    """'; did you mean ...' for names that differ only in case or spelling, or the label-map advice for numbers."""
    by_folded = {name.casefold(): name for name in known}
    guesses = []
    for name in missing:
        match = by_folded.get(name.casefold()) or next(iter(difflib.get_close_matches(name, known, n=1)), None)
        if match:
            guesses.append(f"'{name}' -> '{match}'")
    if guesses:
        shown = ", ".join(guesses[:MAX_LISTED]) + (" ..." if len(guesses) > MAX_LISTED else "")
        how = "classes are matched by exact name; rename the folders or pass --label-map FILE"
        return f" (did you mean {shown}? {how})"
    if missing and all(name.lstrip("-").isdigit() for name in missing):
        return (" (integer labels: pass --label-map FILE naming the class of each label, e.g. a CSV of"
                " 'label,name' rows; see the README's input formats)")
    return ""


def within_duplicates(image_set: ImageSet, findings: list[Finding]) -> int:
    """Count images whose content repeats inside one set; warn when the copies disagree on the label."""
    by_hash: dict[str, set[int]] = {}
    for digest, label in zip(image_set.hashes, image_set.labels, strict=True):
        by_hash.setdefault(digest, set()).add(int(label))
    n_dup = len(image_set) - len(by_hash)
    if n_dup:
        findings.append(
            Finding(
                "info",
                "duplicates-within",
                f"{image_set.role}: {n_dup} image(s) are exact copies of another image in the same set",
                str(image_set.source),
            )
        )
    conflicting = [d for d, labels in by_hash.items() if len(labels) > 1]
    if conflicting:
        example = image_set.paths[image_set.hashes.index(conflicting[0])]
        findings.append(
            Finding(
                "warning",
                "conflicting-labels",
                f"{image_set.role}: {len(conflicting)} image(s) appear under more than one class, e.g. {example}",
                str(example),
            )
        )
    return n_dup


def leakage(reference: ImageSet, shift: ImageSet, drop: bool, findings: list[Finding]):
    """Pairs of identical files across the sets; optionally drop them from the reference (never from shift)."""
    shift_by_hash: dict[str, Path] = {}
    for path, digest in zip(shift.paths, shift.hashes, strict=True):
        shift_by_hash.setdefault(digest, path)
    leaked = [
        (str(p), str(shift_by_hash[d]))
        for p, d in zip(reference.paths, reference.hashes, strict=True)
        if d in shift_by_hash
    ]
    if not leaked:
        return leaked, reference
    action = (
        "removed from the reference so no shift image is trained on"
        if drop
        else "kept in both sets (drop_leaked=False)"
    )
    findings.append(
        Finding(
            "warning",
            "leakage",
            f"{len(leaked)} train image(s) also appear in shift (same bytes), e.g. {leaked[0][0]} = "
            f"{leaked[0][1]}; {action}",
            leaked[0][0],
        )
    )
    if drop:
        leaked_hashes = set(shift_by_hash)
        reference = reference.subset(np.array([d not in leaked_hashes for d in reference.hashes], dtype=bool))
    return leaked, reference


def size_findings(reference: ImageSet, shift: ImageSet, min_per_class: int) -> list[Finding]:
    out = []
    for image_set in (reference, shift):
        small = {c: n for c, n in image_set.class_counts().items() if n < min_per_class}
        if small and (image_set.labels >= 0).all() and len(image_set):  # unlabelled images: class sizes unknown
            listed = ", ".join(f"'{c}' ({n})" for c, n in list(small.items())[:MAX_LISTED])
            more = f" and {len(small) - MAX_LISTED} more" if len(small) > MAX_LISTED else ""
            out.append(
                Finding(
                    "warning",
                    "small-class",
                    f"{image_set.role}: {len(small)} class(es) have fewer than {min_per_class} usable "
                    f"images: {listed}{more}",
                    str(image_set.source),
                )
            )
    return out


def conversion_findings(image_set: ImageSet) -> list[Finding]:
    out = []
    converted = Counter(m for m in image_set.modes if m != "RGB")
    if converted:
        modes = ", ".join(f"{mode} {n}" for mode, n in converted.most_common())
        out.append(
            Finding(
                "info",
                "converted-to-rgb",
                f"{image_set.role}: converted to RGB: {modes} (alpha composited on white, 16-bit scaled to 8-bit)",
                str(image_set.source),
            )
        )
    return out
