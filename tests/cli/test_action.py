"""The composite GitHub Action (action.yml): its structure, and its run steps executed as a script offline.

`ptdiag analyze` is stubbed (it writes a fixture results.json); `report`, `check` and the verdict step are real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from _reporting import fixture

ROOT = Path(__file__).resolve().parents[2]
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))


def test_action_structure(action):
    assert action["name"] and action["description"]
    assert set(action["inputs"]) == {"train", "shift", "budget", "fail-on", "shift-labels"}
    assert action["inputs"]["train"]["required"] and action["inputs"]["shift"]["required"]
    assert action["inputs"]["budget"]["default"] == "quick"
    assert action["outputs"]["verdict"]["value"] == "${{ steps.verdict.outputs.verdict }}"
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    ids = [s.get("id") for s in steps]
    assert "verdict" in ids
    for step in steps:
        assert ("run" in step) != ("uses" in step)
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], "inputs reach scripts through env only"
    upload = next(s for s in steps if "uses" in s)
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"].endswith("report.html")


def _resolve(value: str, context: dict[str, str]) -> str:
    return EXPR.sub(lambda m: context[m.group(1)], str(value))


def _condition(expr: str | None, context: dict[str, str]) -> bool:
    """The few `if:` forms the action uses."""
    if expr is None or expr == "always()":
        return True
    match = re.fullmatch(r"inputs\.([\w-]+) (==|!=) ''", expr)
    assert match, f"unexpected condition {expr!r}"
    empty = context[f"inputs.{match.group(1)}"] == ""
    return empty if match.group(2) == "==" else not empty


def _stub(bin_dir: Path, results: dict) -> None:
    """A `ptdiag` on PATH whose analyze writes `results` into --out; every other command is the real CLI."""
    (bin_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    script = bin_dir / "ptdiag"
    script.write_text(
        f"""#!{sys.executable}
import json, pathlib, subprocess, sys
args = sys.argv[1:]
if args[0] == "analyze":
    out = pathlib.Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text((pathlib.Path({str(bin_dir)!r}) / "results.json").read_text())
    (pathlib.Path({str(bin_dir)!r}) / "analyze-args.json").write_text(json.dumps(args))
    sys.exit(0)
sys.exit(subprocess.call([sys.executable, "-m", "ptdiag", *args]))
""",
        encoding="utf-8",
    )
    script.chmod(0o755)


def _run_action(action: dict, tmp_path: Path, inputs: dict[str, str],
                results: dict | None = None) -> tuple[int, dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, results or fixture("basic"))
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    output, summary = tmp_path / "github_output", tmp_path / "step_summary.md"
    context = {"github.action_path": str(ROOT), "runner.temp": str(temp)}
    context.update({f"inputs.{k}": inputs.get(k, spec.get("default", "")) for k, spec in action["inputs"].items()})
    base_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_ACTIONS": "true",
                "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    for step in action["runs"]["steps"]:
        if step.get("id") == "install" or "uses" in step or not _condition(step.get("if"), context):
            continue  # no network: ptdiag is already installed; artifact upload is GitHub's
        env = {**base_env, **{k: _resolve(v, context) for k, v in (step.get("env") or {}).items()}}
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True, text=True,
                              timeout=180, cwd=tmp_path)
        if proc.returncode:
            return proc.returncode, _outputs(output), temp / "ptdiag-run"
    return 0, _outputs(output), temp / "ptdiag-run"


def _outputs(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def test_action_steps_run_offline_and_gate(action, tmp_path):
    code, outputs, run = _run_action(action, tmp_path, {"train": "data/ref", "shift": "data/new", "fail-on": "both"})
    assert outputs == {"verdict": fixture("basic")["verdict"]["kind"]} == {"verdict": "both"}
    assert code == 1  # the verdict 'both' is in fail-on: the gate step fails the job
    assert (run / "report.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    args = json.loads((tmp_path / "bin" / "analyze-args.json").read_text())
    assert args[args.index("--train") + 1] == "data/ref" and args[args.index("--budget") + 1] == "quick"
    assert ET.parse(run / "junit.xml").getroot().get("failures") == "1"
    assert "## ptdiag check: FAIL" in (tmp_path / "step_summary.md").read_text(encoding="utf-8")


def test_action_without_fail_on_passes_and_writes_the_summary(action, tmp_path):
    code, outputs, run = _run_action(action, tmp_path, {"train": "a", "shift": "b"})
    assert code == 0 and outputs["verdict"] == "both"
    assert not (run / "junit.xml").exists()
    assert (tmp_path / "step_summary.md").read_text(encoding="utf-8").strip()


def test_action_passes_shift_labels_and_gates_on_the_estimates(action, tmp_path):
    """With `shift-labels`, analyze gets --shift-labels and the gate reads the estimated verdict (--allow-estimated):
    'both' in fail-on fails the job (1), not 4 for estimated numbers."""
    results = fixture("basic")
    results["data"] |= {"shift_labelled": "sample"}
    results["data"]["shift"]["n_labelled"] = 200
    code, _, _ = _run_action(action, tmp_path, {"train": "a", "shift": "b", "fail-on": "both",
                                               "shift-labels": "labels.csv"}, results)
    args = json.loads((tmp_path / "bin" / "analyze-args.json").read_text())
    assert args[args.index("--shift-labels") + 1] == "labels.csv"
    assert code == 1
