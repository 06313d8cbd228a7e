"""The three HTML reports as the runtime tests write them, for the browser check on the host.

``python -m tests.runtime.report_pages`` (in the runtime image: ``bash scripts/in-runtime.sh
python -m tests.runtime.report_pages``) runs the runtime tests that write and check each page,
then prints ``{"validate_data": html, "evaluate_model": html, "monitor_model": html}`` as JSON
on stdout (pytest's own output goes to stderr). tests/host/test_reports_in_browser.py opens
them in Chromium: the pages it judges are exactly the ones the runtime tests asserted on.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = {  # component: (test, the page in the test's tmp_path)
    "validate_data": (
        "test_validate_data.py::test_html_report_draws_every_failing_feature_over_the_previous_run_and_serving",
        "report.html",
    ),
    "evaluate_model": ("test_evaluate_model.py::test_html_report_draws_the_candidate_over_the_baseline",
                       "report.html"),
    "monitor_model": ("test_monitor_model.py::test_html_report_draws_the_skewed_features_and_the_predictions",
                      "out/report.html"),
}


def chart_titles(page: str) -> list[str]:
    """The accessible title of every inline SVG chart, in page order."""
    return re.findall(r"<svg [^>]*role=\"img\"[^>]*><title>([^<]*)</title>", page)


def main() -> int:
    import pytest

    with tempfile.TemporaryDirectory(prefix="report-pages-") as base:
        with contextlib.redirect_stdout(sys.stderr):
            code = pytest.main(["-p", "no:cacheprovider", "-q", "-W", "ignore", f"--basetemp={base}",
                                *(str(HERE / test) for test, _ in PAGES.values())])
        if code != 0:
            return int(code)
        pages = {}
        for component, (test, page) in PAGES.items():
            # pytest names a test's tmp_path after the test, cut to 30 characters.
            folder = Path(base) / (re.sub(r"\W", "_", test.split("::")[1])[:30] + "0")
            pages[component] = (folder / page).read_text()
    json.dump(pages, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
