#!/usr/bin/env bash
# Every benchmark, each measuring its alternatives side by side in one run (ratios, not
# absolute times: these machines are shared and noisy), in the runtime image. Results go to
# bench/results/<name>.md. `make bench` or `bash scripts/bench.sh statistics serving`; `pipeline`
# (ours vs TFX end to end, on the shared Chicago-taxi file) runs from the host's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(statistics training serving feature_serving pipeline)
mkdir -p bench/results
for name in "${names[@]}"; do
  printf '\n==> bench/%s.py\n' "$name" >&2
  if [ "$name" = pipeline ]; then
    # It drives kfp.local and Docker from the host SDK environment (TFX runs in its own image).
    BENCH_COMMAND="bash scripts/bench.sh pipeline" .venv/bin/python bench/pipeline.py > "bench/results/$name.md.tmp"
  else
    bash scripts/in-runtime.sh python "bench/$name.py" > "bench/results/$name.md.tmp"
  fi
  if [ -s "bench/results/$name.md.tmp" ]; then  # empty: skipped (it said why)
    mv "bench/results/$name.md.tmp" "bench/results/$name.md"
    cat "bench/results/$name.md"
  else
    rm "bench/results/$name.md.tmp"
  fi
done
