"""The package layout: stages in folders, data flowing one way, no import cycle, no oversized module."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ptdiag"
# Each stage may import only from the stages listed after it (and the shared top-level primitives).
ALLOWED = {
    "data": set(),
    "stats": set(),
    "remedies": {"data", "stats"},
    "engine": {"data", "stats", "remedies"},
    "scenarios": {"data"},
    "report": {"stats", "data"},  # renderers read the results and the data reports (ptdiag inspect)
    "cli": {"data", "engine", "stats", "report", "scenarios", "remedies"},
}
TOP_LEVEL = {"__init__", "__main__", "_io", "errors", "config", "schema", "api"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """ptdiag modules imported by `path` (any depth, lazy imports included), resolved to module names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ptdiag"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _exists(candidate) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ptdiag"))
    return found


def _exists(module: str) -> bool:
    rel = PACKAGE.parent.joinpath(*module.split("."))
    return rel.with_suffix(".py").exists() or (rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_top_level_holds_only_entry_points_and_shared_primitives():
    assert {p.stem for p in PACKAGE.glob("*.py")} == TOP_LEVEL


def test_no_import_cycle():
    graph = _graph()
    # Package __init__ files that only re-export are part of their package; ignore edges into a parent package.
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep == node or node.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(dep):], dep]))
            if state.get(dep) is None and dep in graph:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])


def test_stages_import_one_way():
    for module, deps in _graph().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in ALLOWED:
            continue
        stage = parts[1]
        for dep in deps:
            dparts = dep.split(".")
            if len(dparts) < 2 or dparts[1] not in ALLOWED or dparts[1] == stage:
                continue
            assert dparts[1] in ALLOWED[stage], f"{module} imports {dep}: {stage} must not depend on {dparts[1]}"


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def test_stats_import_without_torch():
    code = "import sys, ptdiag.stats, ptdiag.stats.score, ptdiag.stats.verdict; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_every_job_kind_documents_its_params_and_job_function():
    import ast

    for path in sorted((PACKAGE / "engine" / "jobkinds").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        jobs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("run_")]
        params = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Params")]
        assert jobs and params, path.name
        for node in jobs + params:
            assert ast.get_docstring(node), f"{path.name}: {node.name} has no docstring"
