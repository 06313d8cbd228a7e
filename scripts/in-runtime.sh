#!/usr/bin/env bash
# Run a command in the runtime image with this checkout mounted read-only at /src (so tests
# and benchmarks see the working tree), host networking (so it reaches local servers), and
# ../shared/datasets at /datasets when that folder exists.
set -euo pipefail
cd "$(dirname "$0")/.."
image=$(python3 -c "import runpy; print(runpy.run_path('components/images.py')['RUNTIME'])")
args=(--rm --network host -v "$PWD:/src:ro" -w /src -e PYTHONPATH=/src)
if [ -d ../shared/datasets ]; then
  args+=(-v "$(cd ../shared/datasets && pwd):/datasets:ro" -e CT_DATASETS=/datasets)
fi
[ -t 0 ] && [ -t 1 ] && args+=(-it)
exec docker run "${args[@]}" "$image" "$@"
