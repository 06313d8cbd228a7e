#!/usr/bin/env bash
# Every benchmark, each measuring its alternatives side by side in one run (ratios, not
# absolute times: these machines are shared and noisy), in the runtime image. Results go to
# bench/results/<name>.md. `make bench` or `bash scripts/bench.sh statistics serving`.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(statistics training serving feature_serving)
mkdir -p bench/results
for name in "${names[@]}"; do
  printf '\n==> bench/%s.py\n' "$name" >&2
  bash scripts/in-runtime.sh python "bench/$name.py" > "bench/results/$name.md.tmp"
  mv "bench/results/$name.md.tmp" "bench/results/$name.md"
  cat "bench/results/$name.md"
done
