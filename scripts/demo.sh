#!/usr/bin/env bash
# The main job, from a fresh machine: host environment, Docker, images, then the demo
# (launch/demo.py). Extra arguments go to the demo, e.g. --data my.csv --label y.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
bash scripts/build-images.sh
exec .venv/bin/python -m launch.demo "$@"
