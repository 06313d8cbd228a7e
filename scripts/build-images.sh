#!/usr/bin/env bash
# Build the project's images: the CPU runtime (always) and the GPU trainer (with --gpu).
# Reuses Docker's layer cache, so a second run with unchanged requirements takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[images] %s\n' "$*" >&2; }
images_py() { python3 -c "import runpy; m = runpy.run_path('components/images.py'); print($1)"; }

# The tag names the locks the images install (components/images.py LOCK): refuse to build other
# packages under it.
if [ "$(images_py "m['LOCK']")" != "$(images_py "m['lock_digest']('.')")" ]; then
  log "the lock files changed but LOCK in components/images.py did not: run scripts/lock-requirements.sh"
  exit 1
fi

bash scripts/ensure-docker.sh
bash scripts/ensure-base-image.sh

# Optional CA bundle for a TLS-intercepting proxy: pip's own variable names it.
if [ -n "${PIP_CERT:-}" ] && [ -s "$PIP_CERT" ]; then
  cmp -s "$PIP_CERT" images/certs/extra-ca.crt 2>/dev/null || cp "$PIP_CERT" images/certs/extra-ca.crt
else
  rm -f images/certs/extra-ca.crt
fi

# Without the buildx plugin the Docker CLI refuses BuildKit; the classic builder does the job.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

build() {  # build IMAGE DOCKERFILE [build args...]
  local tag=$1 dockerfile=$2; shift 2
  local start=$SECONDS
  log "building $tag from $dockerfile (cold: 10-20 min, mostly pip; warm: seconds) ..."
  docker build --build-arg BASE_IMAGE="${BASE_IMAGE:-debian:trixie-slim}" "$@" \
    -f "$dockerfile" -t "$tag" . 2>&1 | sed -u 's/^/  /'
  log "built $tag in $((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')"
}

runtime=$(images_py "m['RUNTIME']")
build "$runtime" images/runtime/Dockerfile
if [ "${1:-}" = "--gpu" ]; then
  build "$(images_py "m['TRAINER_GPU']")" images/trainer-gpu/Dockerfile --build-arg RUNTIME_IMAGE="$runtime"
fi
