#!/usr/bin/env bash
# The whole test suite, from a fresh machine: host environment, Docker, images, then
#   1. lint and the compiled-spec check,
#   2. runtime tests inside the runtime image (real TFDV, TensorFlow, MLflow, KServe),
#   3. host tests (SDK, compiled specs, fake KFP/Kubernetes/Vertex servers) and the
#      kfp.local runs of the compiled pipelines in the runtime image.
# "No tests collected" (pytest exit 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
pytest_status() {  # pytest_status NAME CODE
  case $2 in
    0) ;;
    5) echo "$1: pytest collected no tests" >&2; return 1 ;;
    *) echo "$1: pytest failed (exit $2)" >&2; return "$2" ;;
  esac
}

step "host environment"; bash scripts/setup-venv.sh
step "images"; bash scripts/build-images.sh
step "headless Chromium (the HTML reports in a browser)"; bash scripts/ensure-chromium.sh
step "lint"; .venv/bin/ruff check .
step "compiled specs"; .venv/bin/python compile.py --check

step "runtime tests (in the runtime image)"
# The tests that write the HTML reports run once, inside the host's browser check
# (tests/host/test_reports_in_browser.py runs them in this image and fails if they fail).
mapfile -t browser_checked < <(python3 -c "import runpy
for test, _ in runpy.run_path('tests/runtime/report_pages.py')['PAGES'].values(): print('--deselect=tests/runtime/' + test)")
set +e
bash scripts/in-runtime.sh python -m pytest -p no:cacheprovider --durations=15 "${browser_checked[@]}" tests/runtime "$@"
runtime=$?
step "host and local-pipeline tests"
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 tests/host tests/local "$@"
host=$?
set -e
pytest_status "runtime tests" $runtime && pytest_status "host tests" $host
