"""The three HTML reports (data gate, model gate, monitor) in a real browser, offline.

The pages come from the runtime tests that write and check them, run in the runtime image
(``tests/runtime/report_pages.py``: real TFDV statistics, SavedModels, MLflow, prediction
logs). Each page is opened once in headless Chromium (Debian's, installed by
scripts/ensure-chromium.sh) with its console logged to stderr: any console message (a script
error, a request the page's Content-Security-Policy blocked) fails the test, and the rendered
DOM must hold every inline SVG chart the page was written with. A screenshot of each page is
left in the test's tmp_path (1200x2000), for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from components.verdict import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
MIN_CHARTS = {"validate_data": 2, "evaluate_model": 5, "monitor_model": 4}
"""Charts each fixture page has at least (the runtime tests pin the exact titles)."""
_POLICY = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
_SVG = re.compile(r"<svg .*?</svg>", re.DOTALL)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium on PATH: run scripts/ensure-chromium.sh (scripts/test.sh does)")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """{component: its HTML page}, written by the runtime tests in the runtime image."""
    out = subprocess.run(
        ["bash", "scripts/in-runtime.sh", "python", "-m", "tests.runtime.report_pages"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, f"the runtime tests writing the pages failed:\n{out.stderr[-4000:]}"
    folder = tmp_path_factory.mktemp("pages")
    written = {}
    for component, page in json.loads(out.stdout).items():
        written[component] = folder / f"{component}.html"
        written[component].write_text(page)
    assert set(written) == set(MIN_CHARTS)
    return written


def open_page(page: Path, screenshot: Path) -> tuple[str, list[str]]:
    """Loads ``page`` in headless Chromium: (the rendered DOM, the console messages)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [
            chromium(), "--headless", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={profile}", "--window-size=1200,2000", f"--screenshot={screenshot}",
            # Nothing may leave the machine even if a page asked: every host name fails to resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", page.as_uri(),
        ]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses its sandbox as root (CI)
        out = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, [line for line in out.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.parametrize("component", sorted(MIN_CHARTS))
def test_report_renders_offline_with_every_chart_and_no_error(pages, component, tmp_path):
    source = pages[component].read_text()
    screenshot = tmp_path / f"{component}.png"
    dom, console = open_page(pages[component], screenshot)

    assert console == [], f"{component}: the browser reported {console}"
    assert _POLICY in dom, f"{component}: the page must declare {_POLICY} (no scripts, no requests)"
    charts = _SVG.findall(source)
    assert len(charts) >= MIN_CHARTS[component]
    assert dom.count("<svg ") == len(charts), f"{component}: the browser dropped a chart"
    for chart in charts:
        svg = ET.fromstring(chart)  # well-formed: every text escaped
        assert svg.get("role") == "img" and svg.find("{http://www.w3.org/2000/svg}title").text
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_script_or_an_external_request_fails_the_check(pages, tmp_path):
    """The check above can fail: the same page with an external image and script is caught."""
    page = tmp_path / "mutated.html"
    page.write_text(pages["validate_data"].read_text().replace(
        "</body>", '<img src="https://example.com/x.png"><script src="http://example.com/x.js"></script></body>'
    ))
    _, console = open_page(page, tmp_path / "mutated.png")
    assert any("https://example.com/x.png" in line and "Content Security Policy" in line for line in console)
    assert any("http://example.com/x.js" in line for line in console), console
