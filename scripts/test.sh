#!/usr/bin/env bash
# The whole test suite, from a fresh machine: host environment, Docker, images, then
#   1. lint and the compiled-spec check,
#   2. side by side: runtime tests inside the runtime image (real TFDV, TensorFlow, MLflow,
#      KServe), host tests (SDK, compiled specs, fake KFP/Kubernetes/Vertex servers) and the
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

# The three suites side by side: each runs its tests one at a time and keeps about one core
# busy, so on two cores together they take about as long as the longest alone. Each one's
# output is printed whole when all are done (and is in $logs while they run).
logs=$(mktemp -d)
suite() {  # suite NAME COMMAND...: in the background, output in $logs/NAME.log
  local name=$1; shift
  (
    set +e; start=$SECONDS
    "$@" >"$logs/$name.log" 2>&1 </dev/null
    code=$?; echo "$code" >"$logs/$name.code"
    echo "[test] $name tests finished (exit $code) in $((SECONDS - start)) s" >&2
  ) &
}
# The tests that write the HTML reports run once, inside the host's browser check
# (tests/host/test_reports_in_browser.py runs them in this image and fails if they fail).
mapfile -t browser_checked < <(python3 -c "import runpy
for test, _ in runpy.run_path('tests/runtime/report_pages.py')['PAGES'].values(): print('--deselect=tests/runtime/' + test)")
step "runtime tests (in the runtime image), host tests and local-pipeline tests, side by side (output in $logs)"
trap 'trap - TERM; kill 0' INT TERM  # background jobs ignore Ctrl-C: stop them with the script
pytest=(-m pytest -p no:cacheprovider --durations=15)
suite runtime bash scripts/in-runtime.sh python "${pytest[@]}" "${browser_checked[@]}" tests/runtime "$@"
suite host .venv/bin/python "${pytest[@]}" tests/host "$@"
suite local-pipeline .venv/bin/python "${pytest[@]}" tests/local "$@"
wait
failed=0
for name in runtime host local-pipeline; do
  step "$name tests"; cat "$logs/$name.log"
  pytest_status "$name tests" "$(cat "$logs/$name.code")" || failed=1
done
rm -rf "$logs"
exit $failed
