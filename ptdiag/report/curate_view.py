"""What `ptdiag curate` prints: how the set was chosen, how many images per stratum, and where the manifest is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def curate_lines(method: str, rows: Sequence[Mapping[str, Any]], manifest: str, source: str) -> list[str]:
    """One line per class ("predicted Bag: out-of-support 2, in-support, low ratio 1, ..."), then the manifest."""
    per_class: dict[str, Counter] = {}
    for row in rows:
        head, _, band = str(row["stratum"]).partition(" / ")
        per_class.setdefault(head, Counter())[band or "chosen"] += 1
    width = max((len(c) for c in per_class), default=0)
    lines = [f"curated: {method}", ""]
    for head in sorted(per_class):
        parts = ", ".join(f"{band} {k}" for band, k in per_class[head].items())  # rows come in band order
        lines.append(f"  {head:<{width}}  {parts}")
    lines.append("")
    if rows and all(row["stratum"] == "random" for row in rows):
        lines.append(f"manifest: {manifest} (fill in the empty `label` column, then rerun `ptdiag analyze` with "
                     f"--shift-labels {manifest})")
    elif source == "shift":
        lines.append(f"manifest: {manifest} (fill in the empty `label` column, then use it as --train, alone or "
                     "with the reference, or add it to the reference folder)")
    else:
        lines.append(f"manifest: {manifest} (labelled: `ptdiag analyze --train {manifest} --shift ...` reads it)")
    return lines
