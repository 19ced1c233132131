"""The HTML report in a real browser (headless Chromium): it renders, logs nothing to the console, makes
no network request, and a screenshot can be taken.

Network requests are read from Chromium's own net log, where requests a page starts carry the page's
origin as initiator while the browser's background services (component updater, time sync) carry
"not an origin"; those are not the report's and are ignored. As a second guard nothing can leave the
machine anyway: every host name resolves to nothing and the proxy is a closed local port.
A control page with a remote image and a console.error proves the harness does catch both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from _reporting import HOSTILE, fixture
from PIL import Image

from ptdiag.report import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI sets PTDIAG_REQUIRE_BROWSER=1 so a missing Chromium fails these tests instead of skipping them unseen.
REQUIRED = os.environ.get("PTDIAG_REQUIRE_BROWSER") == "1"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                       reason="Chromium is not installed (Debian: apt-get install chromium; `make test` does as root)"),
]
_LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:", "blob:")


@dataclass
class BrowserRun:
    dom: str
    console: list[str]
    requests: list[str]
    screenshot: Path


def _closed_port() -> tuple[socket.socket, int]:
    """A bound but non-listening local port: connections to it are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def _page_requests(netlog: Path) -> list[str]:
    text = netlog.read_text(encoding="utf-8", errors="replace")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # killed before closing the file: close the event list ourselves
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        if params.get("initiator") == "not an origin":  # the browser's own background traffic
            continue
        if not params["url"].startswith(_LOCAL_SCHEMES):
            urls.append(params["url"])
    return urls


def open_in_chromium(page: Path, workdir: Path, window: str = "1200,3000") -> BrowserRun:
    workdir.mkdir(parents=True, exist_ok=True)
    netlog, shot = workdir / "netlog.json", workdir / "shot.png"
    sock, port = _closed_port()
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", f"--proxy-server=127.0.0.1:{port}",
        f"--log-net-log={netlog}", f"--screenshot={shot}", f"--window-size={window}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = re.findall(r":CONSOLE[^\]]*\]\s*(.*)", proc.stderr)
    return BrowserRun(dom=proc.stdout, console=console, requests=_page_requests(netlog), screenshot=shot)


def _images(tmp_path: Path) -> dict:
    results = fixture("basic")
    for i, items in enumerate(results["galleries"].values()):
        path = tmp_path / "images" / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (40 * i, 120, 200)).save(path)
        items[0]["path"] = str(path)
    return results


def test_report_renders_offline_without_console_output(tmp_path):
    page = write_html(_images(tmp_path), tmp_path / "report.html")
    run = open_in_chromium(page, tmp_path / "chromium")
    assert run.requests == []
    assert run.console == []
    assert 'id="reproducibility"' in run.dom and run.dom.count("<svg") == 7
    assert run.dom.count('src="data:image/png;base64,') == 3
    with Image.open(run.screenshot) as shot:
        assert shot.size == (1200, 3000)
        low, high = shot.convert("L").getextrema()
        assert high - low > 100  # something was drawn, not a blank page


def test_hostile_report_runs_no_script(tmp_path):
    page = write_html(fixture("hostile"), tmp_path / "hostile.html")
    run = open_in_chromium(page, tmp_path / "chromium")
    assert run.requests == [] and run.console == []
    assert "<script" not in run.dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run.dom and HOSTILE not in run.dom


def test_harness_catches_requests_and_console_errors(tmp_path):
    page = tmp_path / "control.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
        '<script>console.error("ptdiag-control")</script></body></html>'
    )
    run = open_in_chromium(page, tmp_path / "chromium")
    assert run.requests == ["http://example.invalid/x.png"]
    assert any("ptdiag-control" in line for line in run.console)


_MEASURE = """<script>
window.addEventListener("load", () => {
  const table = document.getElementById("remedies-table").getBoundingClientRect();
  const widest = document.documentElement.scrollWidth;
  document.body.setAttribute("data-measured", JSON.stringify({right: table.right, page: widest,
                                                              view: window.innerWidth}));
});
</script></body>"""


@pytest.mark.parametrize("width", [1400, 800])
def test_remedies_table_fits_the_window_without_sideways_scrolling(tmp_path, width):
    from _reporting import remedy_results as _results

    page = write_html(_results(name="tf_efficientnet_lite0/lpft-with-a-long-name"), tmp_path / "report.html")
    measured = tmp_path / "measured.html"  # a test copy with a measuring script; the report itself has none
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE), encoding="utf-8")
    run = open_in_chromium(measured, tmp_path / "chromium", window=f"{width},2000")
    found = re.search(r'data-measured="([^"]+)"', run.dom)
    assert found, "the measuring script did not run"
    sizes = json.loads(found.group(1).replace("&quot;", '"'))
    assert sizes["page"] <= sizes["view"], sizes  # no horizontal scrollbar
    assert sizes["right"] <= sizes["view"], sizes
