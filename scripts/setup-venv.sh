#!/usr/bin/env bash
# Create (or refresh) the host SDK environment in .venv from requirements/host.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.requirements-installed
if [ -f "$stamp" ] && cmp -s requirements/host.txt "$stamp"; then
  exit 0
fi
python=$(command -v python3.11 || command -v python3)
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "[venv] Python >= 3.10 is required (found $("$python" --version))" >&2; exit 1; }
echo "[venv] creating .venv with $("$python" --version) and requirements/host.txt ..." >&2
"$python" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet --progress-bar off -r requirements/host.txt
.venv/bin/pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/pip install --quiet --no-deps -e .
cp requirements/host.txt "$stamp"
echo "[venv] ready" >&2
