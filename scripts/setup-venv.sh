#!/usr/bin/env bash
# Create (or refresh) the host SDK environment in .venv: requirements/host.txt, which installs
# the project (editable) with the dependencies pinned in pyproject.toml, plus the dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.requirements-installed
# Both files hold pins (pyproject.toml: the SDK's; host.txt: the tools'), so either refreshes.
if [ -f "$stamp" ] && cat requirements/host.txt pyproject.toml | cmp -s - "$stamp"; then
  exit 0
fi
python=$(command -v python3.11 || command -v python3)
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "[venv] Python >= 3.10 is required (found $("$python" --version))" >&2; exit 1; }
echo "[venv] creating .venv with $("$python" --version) and requirements/host.txt ..." >&2
"$python" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet --progress-bar off -r requirements/host.txt
cat requirements/host.txt pyproject.toml > "$stamp"
echo "[venv] ready" >&2
