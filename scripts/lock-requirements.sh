#!/usr/bin/env bash
# Regenerate the images' lock files from the requirements.txt beside them: every package at an
# exact version with the hashes of its files, which the Dockerfiles install and nothing else.
#   images/runtime/requirements.lock      <- images/runtime/requirements.txt
#   images/trainer-gpu/requirements.lock  <- the runtime's requirements + images/trainer-gpu's,
#                                            the runtime's packages held at their locked versions
# The resolver (uv) runs inside the runtime Dockerfile's `venv` stage: the image's own Debian
# trixie, Python 3.13 and x86_64. On the host it would pick other wheels, or none (TFDV 1.21 ships
# only glibc >= 2.39 wheels). Then LOCK in components/images.py (the image tag) and the manifests
# that name the runtime image follow the new locks; recompile the goldens as printed at the end.
# Usage: bash scripts/lock-requirements.sh [uv pip compile options, e.g. --upgrade-package mlflow]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[lock] %s\n' "$*" >&2; }
images_py() { python3 -c "import runpy; m = runpy.run_path('components/images.py'); print($1)"; }

bash scripts/ensure-docker.sh
bash scripts/ensure-base-image.sh
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

log "building the runtime image's venv stage (cached after the first build) ..."
stage=$(docker build -q --target venv --build-arg BASE_IMAGE="${BASE_IMAGE:-debian:trixie-slim}" \
  -f images/runtime/Dockerfile .)

# Optional CA bundle for a TLS-intercepting proxy, as in scripts/build-images.sh.
args=(--rm --user "$(id -u):$(id -g)" -e HOME=/tmp -v "$PWD/images:/images")
if [ -n "${PIP_CERT:-}" ] && [ -s "$PIP_CERT" ]; then
  args+=(-v "$(realpath "$PIP_CERT"):/tmp/ca.crt:ro" -e PIP_CERT=/tmp/ca.crt -e SSL_CERT_FILE=/tmp/ca.crt)
fi

# The header names this script, not uv's command line, so the files depend on their inputs only.
log "resolving with uv ($(grep -o '^uv==[^ ]*' images/runtime/installer.lock)) for $(docker run --rm "$stage" python --version) ..."
docker run "${args[@]}" "$stage" bash -euo pipefail -c '
  pip install --quiet --require-hashes --no-deps --target /tmp/uv -r /images/runtime/installer.lock
  compile() { /tmp/uv/bin/uv pip compile --quiet --generate-hashes --python /opt/venv/bin/python \
    --custom-compile-command "bash scripts/lock-requirements.sh" "$@"; }
  cd /images
  compile runtime/requirements.txt -o runtime/requirements.lock "$@"
  compile runtime/requirements.txt trainer-gpu/requirements.txt -c runtime/requirements.lock \
    -o trainer-gpu/requirements.lock "$@"
' lock "$@"

old=$(images_py "m['TAG']")
digest=$(images_py "m['lock_digest']('.')")
sed -i "s/^LOCK = \".*\"/LOCK = \"$digest\"/" components/images.py
new=$(images_py "m['TAG']")
if [ "$old" != "$new" ]; then
  grep -rlF "$old" manifests | xargs -r sed -i "s/$old/$new/g"
  log "the locks changed: image tag $old -> $new (components/images.py, manifests/)."
  log "next: bash scripts/build-images.sh; .venv/bin/python compile.py; commit the locks, images.py,"
  log "the manifests and the regenerated goldens together."
else
  log "the locks are unchanged (tag $new)."
fi
