"""HTML report: one offline file (no external references), a plot for every section with data,
escaped user strings, thumbnails as data URIs, and identical output for identical results."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _reporting import FIXTURE_NAMES, HOSTILE, fixture
from PIL import Image

from ptdiag.report import render_html, thumbnail_data_uri, write_html

SECTIONS = (
    "verdict",
    "data",
    "line",
    "er",
    "support",
    "decomposition",
    "galleries",
    "recommendations",
    "reproducibility",
)


class _Collector(HTMLParser):
    """Every element, every URL-bearing attribute and the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "poster", "data", "action") and value is not None:
                self.urls.append(value)
            if name == "style" and value:
                self.styles.append(value)

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: render_html(fixture(name)) for name in FIXTURE_NAMES}


@pytest.mark.parametrize("name", ["basic", "inconclusive", "no_support"])
def test_no_http_anywhere(rendered, name):
    # Stronger than "no http resource": the file has no http(s) URL at all. Inline SVG needs no xmlns
    # namespace URIs in HTML5, and the renderer strips them with matplotlib's DOCTYPE and RDF metadata.
    html = rendered[name]
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_only_inline_and_fragment_references(rendered, name):
    # Holds even for the hostile fixture, whose user strings contain "http://...": they are text, not attributes.
    doc = parse(rendered[name])
    assert "script" not in doc.tags and "link" not in doc.tags and "iframe" not in doc.tags
    assert all(url.startswith(("#", "data:image/png;base64,")) for url in doc.urls), doc.urls
    assert not any(re.search(r"url\(\s*['\"]?(?!#|data:)", s) or "@import" in s for s in doc.styles)


def test_every_section_is_present(rendered):
    for name in FIXTURE_NAMES:
        for section_id in SECTIONS:
            assert f'id="{section_id}"' in rendered[name], (name, section_id)


def test_svg_plot_for_every_section_with_data(rendered):
    html = rendered["basic"]
    for panel in ("line-shift", "line-in_support", "line-out_of_support"):
        assert "<svg" in section(html, panel), panel
    for plot in ("support-histogram", "support-epsilon", "support-calibration", "decomposition-chart"):
        assert "<svg" in section(html, plot), plot
    assert html.count("<svg") == 7


def test_sections_without_data_say_so(rendered):
    html = rendered["no_support"]
    assert html.count("<svg") == 1  # only the whole-shift line: no support split, no components
    assert "in-support: not available" in html and "out-of-support: not available" in html
    assert "Not available: the support split did not run" in html
    assert "No image galleries in this run." in html


def test_probit_axes_are_labelled_in_accuracy_percent():
    from matplotlib.figure import Figure
    from scipy.stats import norm

    from ptdiag.report.plots import _probit_axis

    ax = Figure().add_subplot()
    _probit_axis(ax.xaxis, norm.ppf(0.55), norm.ppf(0.97))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["60%", "70%", "80%", "90%", "95%"]
    assert ax.get_xticks() == pytest.approx(norm.ppf([0.6, 0.7, 0.8, 0.9, 0.95]))


def test_minimal_results_render_everywhere():
    """Every optional part absent or empty: no fits, no models, no support, no galleries, no extras."""
    from _reporting import fixed_console

    from ptdiag.report import render_markdown, render_summary, render_terminal

    results = fixture("no_support")
    results["fit"] = {"shift": None, "in_support": None, "out_of_support": None}
    results["pretrained"], results["baselines"] = [], []
    results["decomposition"] = {"baseline": [], "pretrained": []}
    results["verdict"] = {"kind": "inconclusive", "confidence": "low", "reasons": [], "recommendations": []}
    for key in ("warnings", "galleries"):
        results.pop(key, None)
    html = render_html(results)
    assert "<svg" not in html and "No pre-trained models in this run." in html
    markdown = render_markdown(results)
    assert markdown.startswith("## ptdiag: Inconclusive") and "| Pre-trained model |" not in markdown
    console = fixed_console()
    render_terminal(results, console)
    render_summary(results, console)
    assert "no pre-trained models in this run" in console.file.getvalue()


def test_hostile_strings_are_escaped(rendered):
    html = rendered["hostile"]
    assert HOSTILE not in html
    assert "<script" not in html
    assert "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")  # only as escaped text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in html  # the config dump
    assert 'title="/data/shift/it&#39;s &#34;odd&#34; &lt;x&gt;.png"' in html  # quotes inside an attribute


def test_svg_ids_are_unique_across_plots(rendered):
    ids = re.findall(r'\sid="([^"]+)"', rendered["basic"])
    assert len(ids) == len(set(ids))


def test_rendering_is_deterministic(rendered):
    assert render_html(fixture("basic")) == rendered["basic"]


def _png(path: Path, size: tuple[int, int] = (300, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


def test_gallery_thumbnails_are_data_uris_and_missing_files_are_noted(tmp_path):
    results = fixture("basic")
    image = _png(tmp_path / "shift" / "bag" / 'odd "name".png')
    image.chmod(0o444)  # the user's files are only read
    before = image.stat().st_mtime_ns
    results["galleries"]["most_out_of_support"][0]["path"] = str(image)
    results["galleries"]["most_shift_like_reference"][0]["path"] = "relative/img.png"
    _png(tmp_path / "relative" / "img.png")
    html = render_html(results, image_root=tmp_path)
    gallery = section(html, "galleries")
    assert gallery.count('src="data:image/png;base64,') == 2  # absolute path + path relative to image_root
    assert "image not readable" in gallery  # /data/shift/shirt/0002.png does not exist here
    assert image.stat().st_mtime_ns == before


def test_thumbnail_is_small(tmp_path):
    uri = thumbnail_data_uri(str(_png(tmp_path / "big.png", (1000, 500))))
    import base64
    import io

    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as thumb:
        assert max(thumb.size) == 96
    assert thumbnail_data_uri(str(tmp_path / "nope.png")) is None
    (tmp_path / "not-image.png").write_text("hello")
    assert thumbnail_data_uri(str(tmp_path / "not-image.png")) is None


def test_write_html_writes_one_file(tmp_path):
    target = write_html(fixture("basic"), tmp_path / "out" / "report.html")
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_decomposition_chart_with_an_empty_split():
    """No out-of-support examples: the extrapolation component is None (π_out = 0), the chart still shows the bias."""
    results = fixture("basic")
    for row in results["decomposition"]["baseline"] + results["decomposition"]["pretrained"]:
        row["extrapolation_component"] = None
    assert "<svg" in section(render_html(results), "decomposition-chart")


def test_write_html_keeps_a_report_rendered_from_the_same_results(tmp_path):
    """A rerun of a finished analysis does not redraw its plots; changed results do, and so does reuse=False."""
    target = tmp_path / "report.html"
    write_html(fixture("basic"), target)
    target.write_text(target.read_text(encoding="utf-8") + "<!-- marker -->", encoding="utf-8")
    write_html(fixture("basic"), target)
    assert target.read_text(encoding="utf-8").endswith("<!-- marker -->")
    changed = fixture("basic")
    changed["verdict"]["reasons"] = [*changed["verdict"]["reasons"], "one more reason"]
    write_html(changed, target)
    assert "<!-- marker -->" not in target.read_text(encoding="utf-8")
    assert "one more reason" in target.read_text(encoding="utf-8")
    target.write_text(target.read_text(encoding="utf-8") + "<!-- marker -->", encoding="utf-8")
    write_html(changed, target, reuse=False)
    assert "<!-- marker -->" not in target.read_text(encoding="utf-8")


def test_embedded_thumbnails_are_used_and_anything_else_is_ignored():
    """Thumbnails the analysis embeds (images inside datasets/shards) are shown; a forged value is not rendered."""
    results = fixture("basic")
    results["galleries"]["most_out_of_support"][0]["thumbnail"] = "data:image/png;base64,iVBORw0KGgo="
    results["galleries"]["in_support_baseline_errors"][0]["thumbnail"] = 'javascript:alert(1)" onerror="x'
    gallery = section(render_html(results), "galleries")
    assert gallery.count('src="data:image/png;base64,iVBORw0KGgo="') == 1
    assert "javascript" not in gallery and "onerror" not in gallery
