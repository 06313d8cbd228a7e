#!/usr/bin/env bash
# Make sure the base image the Dockerfiles start from exists locally. Pull it when a registry
# answers; otherwise (air-gapped machines, no registry mirror) build an equivalent offline with
# debootstrap from the Debian package mirror and `docker import` it under the same name.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-debian:trixie-slim}
SUITE=${BASE_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[base-image] %s\n' "$*" >&2; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi

log "pulling $BASE_IMAGE ..."
if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi

log "no registry answers; building $BASE_IMAGE offline with debootstrap ($SUITE, about a minute) ..."
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    log "debootstrap is missing: install it (apt-get install debootstrap) or make $BASE_IMAGE available."
    exit 1
  fi
fi
# debootstrap on an older host may not know the newer suite: the sid script covers it.
script=/usr/share/debootstrap/scripts/$SUITE
[ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid

rootfs=$(mktemp -d /tmp/base-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" "$script" \
  | grep --line-buffered -E '^I: (Retrieving|Validating|Extracting|Installing|Configuring) (Release|Packages|base system|core)|^I: Base system' >&2 || true
[ -x "$rootfs/bin/sh" ] || { log "debootstrap failed"; exit 1; }
# Keep the image small, as the slim image is.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
log "built $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
