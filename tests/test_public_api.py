import subprocess
import sys

import ptdiag


def test_every_public_name_resolves():
    for name in ptdiag.__all__:
        assert getattr(ptdiag, name) is not None, name


def test_import_is_light():
    code = "import sys, ptdiag; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_type_checkers_see_every_lazy_export():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(ptdiag.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {(node.module, alias.name) for node in block.body for alias in node.names if alias.asname == alias.name}
    assert seen == {(module, name) for name, module in ptdiag._EXPORTS.items()}


def test_results_is_a_typed_read_only_view_with_its_renderers(tmp_path):
    import copy
    import json

    import pytest
    from _reporting import fixture

    data = fixture("basic")
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(data))
    results = ptdiag.load(run)
    assert results["verdict"]["kind"] == data["verdict"]["kind"]  # the dict's keys, as before
    verdict = results.verdict
    assert isinstance(verdict, ptdiag.Verdict) and verdict.kind == data["verdict"]["kind"]
    assert [r.text for r in verdict.recommendations] == data["verdict"]["recommendations"]
    assert verdict.to_dict()["recommendations"] == data["verdict"]["recommendations"]
    assert repr(results).startswith(f"Results(kind={verdict.kind!r}")
    page = results.to_html(tmp_path / "report.html")
    assert page == (tmp_path / "report.html").read_text(encoding="utf-8") and "<html" in page
    assert "iframe srcdoc=" in results._repr_html_() and "<html" not in results._repr_html_()
    assert verdict.kind in results.to_markdown()
    assert results.gate({verdict.kind}).exit_code != 0
    edited = results.to_dict()
    edited["verdict"]["kind"] = "edited"
    assert results["verdict"]["kind"] == data["verdict"]["kind"]  # to_dict is a copy
    broken = copy.deepcopy(data)
    del broken["verdict"]
    from ptdiag.errors import ResultsError

    with pytest.raises(ResultsError):
        ptdiag.Results(broken)


def test_verdict_round_trips_through_its_dict():
    from _reporting import FIXTURE_NAMES, fixture

    for name in FIXTURE_NAMES:
        original = fixture(name)["verdict"]
        again = ptdiag.Verdict.from_dict(original).to_dict()
        assert {k: again[k] for k in original if k in again} == {k: original[k] for k in original if k in again}


def test_analyze_takes_settings_or_a_config_not_both():
    import pytest

    with pytest.raises(TypeError, match="either"):
        ptdiag.analyze(ptdiag.AnalyzeConfig(), budget="quick")


def test_recommendations_carry_the_numbers_they_quote():
    from ptdiag.stats.verdict_text import REMEDIES, _advice

    rec = _advice("no-action", margin="2")
    assert rec.code == "no-action" and dict(rec.numbers) == {"margin": "2"}
    assert rec.text == REMEDIES["no-action"].format(margin="2")
