#!/usr/bin/env bash
# Make sure a headless Chromium is there for the browser check of the HTML reports
# (tests/host/test_reports_in_browser.py). On Debian/Ubuntu as root, install Debian's
# chromium package; anywhere else, say what to do. Does nothing when one is installed.
set -euo pipefail

log() { printf '[chromium] %s\n' "$*" >&2; }

for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    exit 0
  fi
done

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Chromium found and this is not root on Debian/Ubuntu."
  log "Install Chromium (or Chrome) on PATH, then run this again."
  exit 1
fi

log "installing Debian's chromium (headless browser for the report tests) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
log "installed: $(chromium --version)"
