"""`ptdiag report --json`: the results re-emitted exactly as stored, after validation against the schema."""

from __future__ import annotations

import json
from typing import Any

from ptdiag.schema import validate_results


def render_json(results: dict[str, Any], source: str = "results") -> str:
    """Validate (raising ResultsError naming `source`) and serialise with a trailing newline."""
    validate_results(results, source=source)
    return json.dumps(results, indent=2, ensure_ascii=False) + "\n"
