#!/usr/bin/env bash
# Make sure a Docker daemon answers. On a fresh Debian/Ubuntu machine where we are root,
# install Debian's docker.io and start dockerd; anywhere else, say what to do.
set -euo pipefail

log() { printf '[docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Docker daemon answers and this is not root on Debian/Ubuntu."
  log "Start Docker (or install it: https://docs.docker.com/engine/install/), then run this again."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io (about a minute) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

log "starting dockerd (log: /var/log/dockerd.log) ..."
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "daemon is up."
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/dockerd.log:"
tail -20 /var/log/dockerd.log >&2
exit 1
