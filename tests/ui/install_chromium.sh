#!/usr/bin/env bash
# Install Chromium from the system's packages for the browser tests (tests/ui).
# Debian/Ubuntu, as root: never downloads a browser build of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium is missing; install it as root: sudo apt-get install chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "Chromium is missing and apt-get is not available; install Chromium and set WORKBOOK_CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
